"""Vectorised rotation helpers for motion data (numpy, float64).

Conventions: quaternions are stored scalar-LAST ``(x, y, z, w)`` (scipy's order) unless a
name says ``wxyz``; axis-angle vectors ("rotvec") are ``(..., 3)`` in radians; rotation
matrices are ``(..., 3, 3)`` and act on column vectors (``p' = R @ p``). Yaw is the angle
(rad, counter-clockwise) about the world ``+z`` axis.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = [
    "wxyz_to_xyzw",
    "quat_normalize",
    "quat_slerp",
    "rotvec_to_matrix",
    "matrix_to_rotvec",
    "rotvec_to_quat",
    "quat_to_rotvec",
    "rot_z",
    "heading_of",
    "wrap_angle",
    "resample_times",
    "resample_linear",
    "resample_rotvec",
    "slerp_rotvec",
]


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    """Reorder quaternions ``(..., 4)`` from ``(w, x, y, z)`` to ``(x, y, z, w)``."""
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 1:4], q[..., :1]], axis=-1)


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)``; a zero quaternion becomes the identity."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    ident = np.zeros_like(q)
    ident[..., 3] = 1.0
    return np.where(n > 1e-12, q / np.maximum(n, 1e-12), ident)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation between unit quaternions ``(..., 4)`` (xyzw), shortest arc.

    Args:
        q0, q1: start and end quaternions, broadcastable shapes ``(..., 4)``.
        w: weight in ``[0, 1]``, broadcastable to ``(...)`` (0 gives ``q0``).

    Returns:
        ``(..., 4)`` unit quaternions.
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    w = np.asarray(w, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    safe = np.where(small, 1.0, sin_t)
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / safe)
    b = np.where(small, w, np.sin(w * theta) / safe)
    return quat_normalize(a * q0 + b * q1)


def _flat(x: np.ndarray, tail: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[: x.ndim - len(tail)]
    return x.reshape((-1,) + tail), lead


def rotvec_to_matrix(rv: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` (rad) -> rotation matrices ``(..., 3, 3)``."""
    flat, lead = _flat(rv, (3,))
    return Rotation.from_rotvec(flat).as_matrix().reshape(lead + (3, 3))


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> axis-angle ``(..., 3)`` (rad, angle in [0, pi])."""
    flat, lead = _flat(m, (3, 3))
    return Rotation.from_matrix(flat).as_rotvec().reshape(lead + (3,))


def rotvec_to_quat(rv: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` -> unit quaternions ``(..., 4)`` (xyzw)."""
    flat, lead = _flat(rv, (3,))
    return Rotation.from_rotvec(flat).as_quat().reshape(lead + (4,))


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` (xyzw, normalised here) -> axis-angle ``(..., 3)``."""
    flat, lead = _flat(quat_normalize(q), (4,))
    return Rotation.from_quat(flat).as_rotvec().reshape(lead + (3,))


def rot_z(angle: np.ndarray | float) -> np.ndarray:
    """Rotation(s) about ``+z`` by ``angle`` (rad): ``(3, 3)``, or ``(..., 3, 3)`` for arrays."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], -2)


def heading_of(global_orient: np.ndarray) -> np.ndarray:
    """Heading (rad) of SMPL-X bodies in the z-up world.

    Args:
        global_orient: ``(..., 3)`` axis-angle body->world (SMPL-X body: ``+z`` forward).

    Returns:
        ``(...)`` yaw of the body's forward axis projected on the floor, ``atan2(f_y, f_x)``.
    """
    fwd = rotvec_to_matrix(global_orient)[..., :, 2]
    return np.arctan2(fwd[..., 1], fwd[..., 0])


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to ``[-pi, pi)``."""
    return (np.asarray(a, dtype=np.float64) + np.pi) % (2.0 * np.pi) - np.pi


def resample_times(duration: float, fps: float) -> np.ndarray:
    """Sample times ``k / fps`` for ``k = 0..floor(duration * fps + 1e-6)`` (s), ``(K,)``."""
    n = int(np.floor(duration * fps + 1e-6)) + 1
    return np.arange(n, dtype=np.float64) / fps


def _bracket(t_src: np.ndarray, t_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t_src = np.asarray(t_src, dtype=np.float64)
    if t_src.ndim != 1 or t_src.size < 1 or np.any(np.diff(t_src) < 0):
        raise ValueError("t_src must be a non-empty, non-decreasing (T,) array of times")
    t = np.clip(np.asarray(t_dst, dtype=np.float64), t_src[0], t_src[-1])
    if t_src.size == 1:
        return np.zeros(t.shape, dtype=np.int64), np.zeros(t.shape)
    i = np.clip(np.searchsorted(t_src, t, side="right") - 1, 0, t_src.size - 2)
    span = t_src[i + 1] - t_src[i]
    frac = np.where(span > 0, (t - t_src[i]) / np.where(span > 0, span, 1.0), 0.0)
    return i, np.clip(frac, 0.0, 1.0)


def resample_linear(x: np.ndarray, t_src: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``x`` ``(T, ...)`` sampled at ``t_src`` ``(T,)`` to ``t_dst``.

    Times outside ``[t_src[0], t_src[-1]]`` are clamped. Returns ``(K, ...)``.
    """
    x = np.asarray(x, dtype=np.float64)
    i, f = _bracket(t_src, t_dst)
    if x.shape[0] == 1:
        return np.repeat(x, len(i), axis=0)
    f = f.reshape(f.shape + (1,) * (x.ndim - 1))
    return (1.0 - f) * x[i] + f * x[i + 1]


def resample_rotvec(rv: np.ndarray, t_src: np.ndarray, t_dst: np.ndarray) -> np.ndarray:
    """Slerp resampling of rotations ``(T, ..., 3)`` (axis-angle) to ``t_dst``; ``(K, ..., 3)``."""
    rv = np.asarray(rv, dtype=np.float64)
    q = rotvec_to_quat(rv)
    i, f = _bracket(t_src, t_dst)
    if rv.shape[0] == 1:
        return np.repeat(rv, len(i), axis=0)
    f = f.reshape(f.shape + (1,) * (rv.ndim - 2))
    return quat_to_rotvec(quat_slerp(q[i], q[i + 1], f))


def slerp_rotvec(a: np.ndarray, b: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Slerp between axis-angle rotations ``a`` and ``b`` (``(..., 3)``) with weight ``w``."""
    return quat_to_rotvec(quat_slerp(rotvec_to_quat(a), rotvec_to_quat(b), w))
