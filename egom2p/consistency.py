"""Ground-truth consistency of a clip: does its depth agree with its own camera poses?

:func:`warped_depth_error` unprojects video frame ``k``'s depth, moves the points by the
clip's poses of frames ``k`` and ``k + 1`` into frame ``k + 1``'s camera and compares their
z with frame ``k + 1``'s depth, bilinearly sampled where the point lands. On static pixels
the two agree when the depth, the intrinsics, the poses and the clock that pairs a video
frame with its pose are all right; a pose one frame late (``pose_lag=1``) makes them
disagree, so the check has teeth. It works on any clip in the layout of
:mod:`egosim.egom2p.clips` (a user's own clips too) that has ``depth``, ``intrinsics`` and
``video_camera``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from egosim.sensors import CameraSpec, project, unproject

__all__ = ["warped_depth_error"]


def _bilinear(depth: np.ndarray, static: np.ndarray, uv: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear depth at pixel coordinates ``uv`` ``(M, 2)`` (inside ``[0, W-1) x [0, H-1)``)
    and whether its four pixels are all static hits (``(M,)`` float, ``(M,)`` bool)."""
    u0, v0 = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    a, b = uv[:, 0] - u0, uv[:, 1] - v0
    corners = [(v0, u0, (1 - a) * (1 - b)), (v0, u0 + 1, a * (1 - b)),
               (v0 + 1, u0, (1 - a) * b), (v0 + 1, u0 + 1, a * b)]
    value = sum(depth[v, u] * w for v, u, w in corners)
    ok = np.logical_and.reduce([(depth[v, u] > 0) & static[v, u] for v, u, _ in corners])
    return value, ok


def warped_depth_error(clip: Mapping[str, Any], pose_lag: int = 0,
                       first_dynamic_id: int = 1000) -> float:
    """Median relative difference between each video frame's depth warped into the next
    frame and that frame's depth, over static pixels of all frame pairs.

    Args:
        clip: a clip dict with ``depth`` ``(K, H, W)`` float z-depth in metres (0: no hit),
            ``intrinsics`` ``(3, 3)`` pixels, ``video_camera`` ``(K, 4, 4)`` OpenCV
            camera-to-world of each video frame, and optionally ``instance`` ``(K, H, W)``
            int ids (pixels with an id ``>= first_dynamic_id`` are people, which move:
            left out; without ``instance`` every hit pixel counts).
        pose_lag: compare frame ``k + 1``'s depth with frame ``k`` moved by the pose of
            frame ``k + 1 + pose_lag`` (0: the right pose; 1: a control that should fail).
        first_dynamic_id: the first instance id of a moving body.

    Returns:
        the median of ``|d_{k+1}(uv) - z| / z`` (unitless; 0.01 = 1 %).

    Raises:
        KeyError: the clip lacks ``depth``, ``intrinsics`` or ``video_camera``.
        ValueError: no static pixel lands inside the next frame.
    """
    for key in ("depth", "intrinsics", "video_camera"):
        if key not in clip:
            raise KeyError(f"clip lacks {key!r}, needed by warped_depth_error")
    depth = np.asarray(clip["depth"], np.float64)
    k_mat = np.asarray(clip["intrinsics"], np.float64)
    poses = np.asarray(clip["video_camera"], np.float64)
    frames, h, w = depth.shape
    static = (np.asarray(clip["instance"]) < first_dynamic_id if "instance" in clip
              else np.ones(depth.shape, bool))
    spec = CameraSpec(uuid="depth", modality="depth", resolution=(h, w),
                      intrinsics=(k_mat[0, 0], k_mat[1, 1], k_mat[0, 2], k_mat[1, 2]))
    rel = []
    for k in range(frames - 1 - pose_lag):
        d0, d1 = depth[k], depth[k + 1]
        pts = unproject(d0, spec)[(d0 > 0) & static[k]]
        move = np.linalg.inv(poses[k + 1 + pose_lag]) @ poses[k]
        q = pts @ move[:3, :3].T + move[:3, 3]
        uv, inside = project(q, spec)
        inside &= (uv[:, 0] >= 0) & (uv[:, 0] < w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < h - 1)
        other, keep = _bilinear(d1, static[k + 1], uv[inside])
        z = q[inside, 2][keep]
        rel.append(np.abs(other[keep] - z) / z)
    values = np.concatenate(rel) if rel else np.zeros(0)
    if values.size == 0:
        raise ValueError("no static pixel of the clip lands inside the next frame")
    return float(np.median(values))
