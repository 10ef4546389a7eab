"""Camera trajectories: camera-to-world poses per frame, resampling and velocities.

Poses are ``(T, 4, 4)`` OpenCV camera-to-world matrices at a fixed frame rate; frame
``k`` is at time ``k / fps`` seconds. EgoGen's motion runs at 40 fps; EgoM2P's camera
trajectories are 30 fps and its videos 8 fps.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from egosim.sensors.camera import check_poses

__all__ = ["canonicalize", "pose_velocity", "resample_poses"]


def resample_poses(poses: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a trajectory to another frame rate.

    Translation is interpolated linearly, rotation by spherical linear interpolation
    (slerp). Output frame ``j`` is at ``j / dst_fps`` seconds, for every ``j`` with that
    time within the input's span ``[0, (T - 1) / src_fps]``.

    Args:
        poses: ``(T, 4, 4)`` rigid camera-to-world poses, ``T >= 1``.
        src_fps, dst_fps: input and output rates, Hz (> 0).

    Returns:
        ``(T', 4, 4)`` float64 poses, ``T' = floor((T - 1) * dst_fps / src_fps) + 1``.
    """
    if not (src_fps > 0 and dst_fps > 0):
        raise ValueError(f"src_fps and dst_fps must be > 0, got {src_fps}, {dst_fps}")
    p, single = check_poses(poses, "poses")
    if single:
        raise ValueError("poses must have shape (T, 4, 4)")
    t_in = np.arange(p.shape[0]) / src_fps
    count = int(np.floor((p.shape[0] - 1) * dst_fps / src_fps + 1e-9)) + 1
    t_out = np.minimum(np.arange(count) / dst_fps, t_in[-1])
    out = np.tile(np.eye(4), (count, 1, 1))
    if p.shape[0] == 1:
        out[:] = p[0]
        return out
    for axis in range(3):
        out[:, axis, 3] = np.interp(t_out, t_in, p[:, axis, 3])
    out[:, :3, :3] = Slerp(t_in, Rotation.from_matrix(p[:, :3, :3]))(t_out).as_matrix()
    return out


def pose_velocity(poses: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame camera velocity by central differences (one-sided at the ends).

    Args:
        poses: ``(T, 4, 4)`` camera-to-world, ``T >= 2``.
        fps: frame rate, Hz.

    Returns:
        ``(T, 6)``: linear velocity of the camera centre (world, m/s) and angular
        velocity (world, rad/s), as :class:`~egosim.sensors.MotionBlur` takes.
    """
    p, _ = check_poses(poses, "poses")
    if p.shape[0] < 2:
        raise ValueError("pose_velocity needs at least 2 poses")
    idx = np.arange(p.shape[0])
    a, b = np.maximum(idx - 1, 0), np.minimum(idx + 1, p.shape[0] - 1)
    span = (b - a) / fps
    lin = (p[b, :3, 3] - p[a, :3, 3]) / span[:, None]
    rel = Rotation.from_matrix(p[b, :3, :3] @ np.transpose(p[a, :3, :3], (0, 2, 1)))
    ang = rel.as_rotvec() / span[:, None]
    return np.concatenate([lin, ang], axis=1)


def canonicalize(poses: np.ndarray) -> np.ndarray:
    """Express a trajectory relative to its first pose: ``inv(T_0) @ T_k`` (EgoM2P)."""
    p, _ = check_poses(poses, "poses")
    return np.linalg.inv(p[0]) @ p
