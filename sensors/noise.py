"""Sensor noise: Kinect-style depth noise and motion-blur sub-poses (models in :mod:`.spec`).

Every function takes a ``numpy.random.Generator``; the same generator state gives the
same bytes.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from egosim.sensors.spec import DepthNoise

__all__ = ["apply_depth_noise", "sub_poses_from_velocity"]


def apply_depth_noise(depth: np.ndarray, valid: np.ndarray, model: DepthNoise,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply :class:`DepthNoise` to a batch of z-depth images.

    Args:
        depth: ``(N, H, W)`` float32 z-depth in metres, 0 where invalid.
        valid: ``(N, H, W)`` bool.
        model: the noise parameters (see :class:`~egosim.sensors.spec.DepthNoise`).
        rng: generator; draws a fixed number of values per pixel, so results do not depend
            on how many pixels are valid.

    Returns:
        Noisy ``depth`` (float32, 0 where invalid) and the new ``valid`` mask.
    """
    z = depth.astype(np.float64)
    ok = valid.copy()
    gauss = rng.standard_normal(z.shape)
    u_edge = rng.random(z.shape)
    u_rand = rng.random(z.shape)

    # Edges are found on the clean depth: structured light fails where depth jumps.
    edge = np.zeros_like(ok)
    thr = model.edge_threshold * np.where(ok, z, np.inf)
    for axis in (1, 2):
        for step in (1, -1):
            zn = np.roll(z, step, axis=axis)
            okn = np.roll(ok, step, axis=axis)
            jump = ~okn | (np.abs(zn - z) > thr)
            # np.roll wraps around: image borders are not edges.
            border = [slice(None)] * 3
            border[axis] = 0 if step == 1 else -1
            jump[tuple(border)] = False
            edge |= jump
    edge &= ok

    sigma = model.sigma_base + model.sigma_quad * (z - model.z_ref) ** 2
    z = z + sigma * gauss
    if model.subpixel > 0:
        fb = model.focal_px * model.baseline_m
        with np.errstate(divide="ignore"):
            disp = fb / np.where(z > 0, z, np.inf)
        q = np.round(disp / model.subpixel) * model.subpixel
        with np.errstate(divide="ignore"):
            z = np.where(q > 0, fb / np.where(q > 0, q, 1.0), 0.0)
    ok &= z > 0
    ok &= ~(edge & (u_edge < model.edge_dropout))
    ok &= u_rand >= model.random_dropout
    ok &= (z >= model.min_range) & (z <= model.max_range)
    return np.where(ok, z, 0.0).astype(np.float32), ok


def sub_poses_from_velocity(cam_to_world: np.ndarray, velocity: np.ndarray,
                            exposure_s: float, samples: int) -> np.ndarray:
    """Poses spread over an exposure at constant twist, centred on each frame's pose.

    Args:
        cam_to_world: ``(N, 4, 4)`` poses at mid-exposure.
        velocity: ``(N, 6)``: linear velocity of the camera centre (world frame, m/s),
            then angular velocity (world frame, rad/s).
        exposure_s: shutter time, seconds.
        samples: sub-poses per frame, evenly spaced over ``[-exposure_s/2, exposure_s/2]``.

    Returns:
        ``(N, samples, 4, 4)`` camera-to-world poses.
    """
    t = np.asarray(cam_to_world, np.float64)
    vel = np.asarray(velocity, np.float64)
    if vel.shape != (t.shape[0], 6) or not np.all(np.isfinite(vel)):
        raise ValueError(f"velocity must be finite with shape ({t.shape[0]}, 6), got {vel.shape}")
    taus = np.linspace(-exposure_s / 2.0, exposure_s / 2.0, samples)
    out = np.repeat(t[:, None], samples, axis=1)
    for k, tau in enumerate(taus):
        rot = Rotation.from_rotvec(vel[:, 3:] * tau).as_matrix()
        out[:, k, :3, :3] = rot @ t[:, :3, :3]
        out[:, k, :3, 3] = t[:, :3, 3] + vel[:, :3] * tau
    return out
