"""Facial landmarks in SMPL-X's format (face index + barycentric coordinates).

SMPL-X's 68 landmarks follow the iBUG-300W order: 0-16 jaw contour (from the body's right
ear, ``-x``, to its left), 17-21 right brow, 22-26 left brow, 27-30 nose bridge, 31-35 nostrils,
36-41 right eye, 42-47 left eye, 48-59 outer lips, 60-67 inner lips. ``lmk_faces_idx`` and
``lmk_bary_coords`` hold the 51 static ones (17-67); ``dynamic_lmk_faces_idx`` ``(79, 17)`` and
``dynamic_lmk_bary_coords`` ``(79, 17, 3)`` hold the contour for neck yaw bins of -39..39
degrees. The procedural body uses the same frontal contour in every bin (its face is not
detailed enough for yaw-dependent silhouettes).

Points are designed on the frontal face in floor coordinates (m) and projected onto the mesh
along ``+z`` (contour: outward from the head axis).
"""

from __future__ import annotations

import numpy as np

from egosim.envs.humans.procedural.anatomy import ray_exit

__all__ = ["landmark_points_2d", "facial_landmarks", "NUM_STATIC", "NUM_CONTOUR", "NUM_YAW_BINS"]

NUM_STATIC = 51
NUM_CONTOUR = 17
NUM_YAW_BINS = 79


def landmark_points_2d() -> np.ndarray:
    """The 68 designed landmark positions ``(68, 2)`` as ``(x, y)`` floor coordinates (m)."""
    pts: list[tuple[float, float]] = []
    for th in np.linspace(-np.radians(80), np.radians(80), 17):  # contour, right to left
        pts.append((0.064 * np.sin(th), 1.60 - 0.105 * np.cos(th)))
    brow_x = (0.055, 0.046, 0.036, 0.026, 0.014)
    brow_y = (1.624, 1.631, 1.634, 1.633, 1.628)
    pts += [(-x, y) for x, y in zip(brow_x, brow_y, strict=True)]  # right brow, outer->inner
    pts += [(x, y) for x, y in zip(brow_x[::-1], brow_y[::-1], strict=True)]  # left brow
    pts += [(0.0, y) for y in (1.606, 1.592, 1.578, 1.566)]  # bridge to tip
    pts += [(x, 1.556) for x in (-0.014, -0.007, 0.0, 0.007, 0.014)]  # nostrils
    eye = [(-0.014, 0.0), (-0.005, 0.004), (0.006, 0.004), (0.014, 0.0), (0.006, -0.004),
           (-0.005, -0.004)]  # relative to the eye centre, starting at the outer corner
    pts += [(-0.032 - dx, 1.600 + dy) for dx, dy in eye]  # right eye (outer is -x)
    left = [(0.018, 0.0), (0.026, 0.004), (0.037, 0.004), (0.046, 0.0), (0.037, -0.004),
            (0.026, -0.004)]  # left eye from the inner corner, as iBUG orders it
    pts += [(x, 1.600 + dy) for x, dy in left]
    outer = [(-0.025, 1.527), (-0.016, 1.533), (-0.006, 1.536), (0.0, 1.535), (0.006, 1.536),
             (0.016, 1.533), (0.025, 1.527), (0.016, 1.520), (0.006, 1.517), (0.0, 1.516),
             (-0.006, 1.517), (-0.016, 1.520)]
    inner = [(-0.02, 1.527), (-0.007, 1.529), (0.0, 1.529), (0.007, 1.529), (0.02, 1.527),
             (0.007, 1.525), (0.0, 1.525), (-0.007, 1.525)]
    pts += outer + inner
    return np.asarray(pts, dtype=np.float64)


def _barycentric(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, p - a
    d00 = (v0 * v0).sum(1)
    d01 = (v0 * v1).sum(1)
    d11 = (v1 * v1).sum(1)
    d20 = (v2 * v0).sum(1)
    d21 = (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    bary = np.stack([1.0 - v - w, v, w], axis=1)
    bary = np.clip(bary, 0.0, 1.0)
    return bary / bary.sum(1, keepdims=True)


def facial_landmarks(vertices: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """Landmark arrays in SMPL-X's npz layout for a mesh in floor coordinates.

    Args:
        vertices: ``(V, 3)`` template vertices (m, floor coordinates).
        faces: ``(F, 3)`` triangles (final vertex order).

    Returns:
        dict with ``lmk_faces_idx`` ``(51,)`` int64, ``lmk_bary_coords`` ``(51, 3)``,
        ``dynamic_lmk_faces_idx`` ``(79, 17)`` int64, ``dynamic_lmk_bary_coords``
        ``(79, 17, 3)``.
    """
    xy = landmark_points_2d()
    anchors = np.zeros((68, 3))
    dirs = np.zeros((68, 3))
    # contour: from the head axis outward through the designed point
    th = np.linspace(-np.radians(80), np.radians(80), 17)
    anchors[:17] = np.stack([np.zeros(17), xy[:17, 1], np.full(17, 0.01)], axis=1)
    dirs[:17] = np.stack([np.sin(th), np.zeros(17), np.cos(th)], axis=1)
    anchors[17:] = np.stack([xy[17:, 0], xy[17:, 1], np.zeros(51)], axis=1)
    dirs[17:] = np.array([0.0, 0.0, 1.0])
    pts, fidx = ray_exit(vertices, faces, anchors, dirs)
    bary = _barycentric(pts, vertices[faces[fidx]])
    contour_f = np.tile(fidx[:17][None], (NUM_YAW_BINS, 1))
    contour_b = np.tile(bary[:17][None], (NUM_YAW_BINS, 1, 1))
    return {
        "lmk_faces_idx": fidx[17:].astype(np.int64),
        "lmk_bary_coords": bary[17:],
        "dynamic_lmk_faces_idx": contour_f.astype(np.int64),
        "dynamic_lmk_bary_coords": contour_b,
    }
