"""Triangle-soup helpers: vertex welding, closedness, face normals and areas."""

from __future__ import annotations

import numpy as np

__all__ = ["weld", "is_closed", "face_normals", "face_areas", "rotation_matrix_rpy"]


def weld(triangles: np.ndarray, tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Indexed mesh from a triangle soup, merging vertices closer than ``tol`` (grid snap).

    Args:
        triangles: ``(F, 3, 3)`` vertex positions, metres.
        tol: snapping cell size in metres.

    Returns:
        ``V`` float64 ``(N, 3)`` unique vertices and ``F`` int64 ``(F, 3)`` indices.
    """
    pts = np.asarray(triangles, np.float64).reshape(-1, 3)
    keys = np.round(pts / tol).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return pts[first], inverse.reshape(-1, 3).astype(np.int64)


def is_closed(faces: np.ndarray) -> bool:
    """True when every directed edge ``a->b`` is matched by as many ``b->a`` edges.

    That holds for any union of closed, consistently oriented surfaces (also when they
    touch or share edges), for which the winding number is an integer everywhere.
    Degenerate triangles (repeated vertex) are ignored.

    Args:
        faces: ``(F, 3)`` int vertex indices from :func:`weld`.
    """
    f = np.asarray(faces, np.int64)
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    if f.shape[0] == 0:
        return False
    a = f.reshape(-1)
    b = f[:, [1, 2, 0]].reshape(-1)
    n = int(a.max()) + 1
    fwd = a * n + b
    bwd = b * n + a
    uf, cf = np.unique(fwd, return_counts=True)
    ub, cb = np.unique(bwd, return_counts=True)
    return bool(uf.shape == ub.shape and np.array_equal(uf, ub) and np.array_equal(cf, cb))


def face_normals(triangles: np.ndarray) -> np.ndarray:
    """``(F, 3)`` unit normals ``(v1 - v0) x (v2 - v0)`` (zeros for degenerate faces)."""
    t = np.asarray(triangles, np.float64)
    n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 0, n / np.maximum(length, 1e-300), 0.0)


def face_areas(triangles: np.ndarray) -> np.ndarray:
    """``(F,)`` triangle areas in square metres."""
    t = np.asarray(triangles, np.float64)
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def rotation_matrix_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """``(3, 3)`` rotation of URDF/SDF fixed-axis roll-pitch-yaw (radians): Rz Ry Rx."""
    cr, sr = np.cos(roll), np.sin(roll)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx
