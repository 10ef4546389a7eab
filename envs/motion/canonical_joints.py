"""EgoGen's canonical frame of a motion primitive.

For a primitive whose first frame has pelvis joint ``p``, left hip ``l`` and right hip ``r``
(z-up world, metres):

* origin: ``p`` (the pelvis joint itself, NOT projected to the floor: the floor lies at
  ``z = -origin[2]`` in the canonical frame);
* ``x``: from the left hip to the right hip, projected on the floor (``z`` component dropped)
  and normalised;
* ``z``: world up ``(0, 0, 1)``;
* ``y = z × x``: the body's forward direction on the floor.

``rot = [x y z]`` (columns) maps canonical to world coordinates::

    world = rot @ canon + origin        canon = rot.T @ (world - origin)
"""

from __future__ import annotations

import numpy as np

__all__ = ["canonical_frame", "canonicalize", "uncanonicalize", "canonicalize_params"]


def canonical_frame(pelvis: np.ndarray, left_hip: np.ndarray, right_hip: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``(N, 3, 3)`` (canonical -> world) and origin ``(N, 3)`` from ``(N, 3)`` joints.

    Raises:
        ValueError: shape mismatch, or a hip axis that is vertical (no floor projection).
    """
    p = np.asarray(pelvis, dtype=np.float64)
    lh = np.asarray(left_hip, dtype=np.float64)
    rh = np.asarray(right_hip, dtype=np.float64)
    if p.ndim != 2 or p.shape[-1] != 3 or lh.shape != p.shape or rh.shape != p.shape:
        raise ValueError(f"pelvis, left_hip, right_hip must all have shape (N, 3); got "
                         f"{p.shape}, {lh.shape}, {rh.shape}")
    x = rh - lh
    x[:, 2] = 0.0
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    if np.any(n < 1e-8):
        raise ValueError("hip axis is vertical in some primitive: canonical x is undefined")
    x = x / n
    z = np.broadcast_to(np.array([0.0, 0.0, 1.0]), x.shape)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1), p.copy()


def canonicalize(points: np.ndarray, pelvis: np.ndarray, left_hip: np.ndarray,
                 right_hip: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Express world points of ``N`` primitives in their canonical frames.

    Args:
        points: ``(N, T, K, 3)`` world points (e.g. ``K = 67`` markers), or ``(N, ..., 3)``.
        pelvis, left_hip, right_hip: ``(N, 3)`` first-frame joints (world).

    Returns:
        ``canon`` (same shape as ``points``), ``rot (N, 3, 3)`` canonical -> world and
        ``origin (N, 3)``.
    """
    rot, origin = canonical_frame(pelvis, left_hip, right_hip)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] != rot.shape[0] or pts.shape[-1] != 3:
        raise ValueError(f"points must have shape (N={rot.shape[0]}, ..., 3); got {pts.shape}")
    extra = (1,) * (pts.ndim - 2)
    o = origin.reshape((-1,) + extra + (3,))
    flat = (pts - o).reshape(pts.shape[0], -1, 3)
    canon = np.einsum("nji,nkj->nki", rot, flat).reshape(pts.shape)
    return canon, rot, origin


def uncanonicalize(canon: np.ndarray, rot: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Inverse of :func:`canonicalize`: ``(N, ..., 3)`` canonical points -> world points."""
    c = np.asarray(canon, dtype=np.float64)
    r = np.asarray(rot, dtype=np.float64)
    o = np.asarray(origin, dtype=np.float64)
    if r.shape != (c.shape[0], 3, 3) or o.shape != (c.shape[0], 3):
        raise ValueError(f"rot must be (N, 3, 3) and origin (N, 3) with N = {c.shape[0]}; "
                         f"got {r.shape}, {o.shape}")
    flat = c.reshape(c.shape[0], -1, 3)
    world = np.einsum("nij,nkj->nki", r, flat) + o[:, None]
    return world.reshape(c.shape)


def canonicalize_params(global_orient: np.ndarray, transl: np.ndarray, pelvis_rest: np.ndarray,
                        rot: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-X ``global_orient`` and ``transl`` of world bodies in canonical frames.

    SMPL-X rotates about the rest pelvis ``J0`` and then adds ``transl``, so the world pelvis
    is ``J0 + transl``; in the canonical frame the orientation is ``rot^T G`` and the pelvis
    ``rot^T (J0 + transl - origin)``.

    Args:
        global_orient: ``(N, T, 3)`` axis-angle body -> world.
        transl: ``(N, T, 3)`` (m).
        pelvis_rest: ``(N, 3)`` rest pelvis joint ``J0`` of each primitive's body shape.
        rot, origin: from :func:`canonicalize`.

    Returns:
        ``global_orient (N, T, 3)`` and ``transl (N, T, 3)`` that reproduce the canonical
        points when fed to SMPL-X with the same body pose and shape.
    """
    from egosim.envs.motion.rotations_numpy import matrix_to_rotvec, rotvec_to_matrix

    g = rotvec_to_matrix(global_orient)
    rt = np.swapaxes(np.asarray(rot, dtype=np.float64), -1, -2)
    g_c = matrix_to_rotvec(rt[:, None] @ g)
    j0 = np.asarray(pelvis_rest, dtype=np.float64)[:, None]
    p = np.asarray(transl, dtype=np.float64) + j0 - np.asarray(origin)[:, None]
    p_c = np.einsum("nij,ntj->nti", rt, p)
    return g_c, p_c - j0
