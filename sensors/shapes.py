"""Small triangle soups (boxes, capsules) and a minimal :class:`SceneLike` built from them.

Used for scene geometry (:mod:`egosim.envs.scenes` builds its rooms and furniture from
:func:`box_triangles`), gaze markers, stand-in bodies and test scenes. Triangles are wound
counter-clockwise seen from outside (``(v1 - v0) x (v2 - v0)`` points out of the solid), so
geometric normals point outwards and each primitive is a closed surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SimpleScene", "box_triangles", "capsule_triangles"]

# Corner ``i`` takes the ``hi`` coordinate on axis ``k`` where bit ``k`` of ``i`` is set
# (bit 0 -> x, bit 1 -> y, bit 2 -> z). Each quad is counter-clockwise seen from outside.
_BOX_QUADS = np.array([
    [0, 2, 3, 1],  # z min, normal -z
    [4, 5, 7, 6],  # z max, normal +z
    [0, 1, 5, 4],  # y min, normal -y
    [2, 6, 7, 3],  # y max, normal +y
    [0, 4, 6, 2],  # x min, normal -x
    [1, 3, 7, 5],  # x max, normal +x
])
_BOX_TRIS = np.stack([_BOX_QUADS[:, [0, 1, 2]], _BOX_QUADS[:, [0, 2, 3]]], axis=1).reshape(-1, 3)
_BOX_BITS = (np.arange(8)[:, None] >> np.arange(3)[None, :]) & 1


def box_triangles(lo: ArrayLike, hi: ArrayLike) -> np.ndarray:
    """An axis-aligned closed box from corner ``lo`` to corner ``hi``.

    Args:
        lo, hi: ``(3,)`` opposite corners in metres, ``lo < hi`` component-wise (a box of
            centre ``c`` and edge lengths ``s`` is ``box_triangles(c - s / 2, c + s / 2)``).

    Returns:
        ``(12, 3, 3)`` float64 triangles with outward normals, two per side in the order
        bottom (-z), top (+z), -y, +y, -x, +x (rows 2-3 are the top).

    Raises:
        ValueError: a corner is not ``(3,)``, or ``hi <= lo`` on some axis.
    """
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    if lo.shape != (3,) or hi.shape != (3,) or np.any(hi <= lo):
        raise ValueError(f"box corners must be (3,) with lo < hi, got lo={lo}, hi={hi}")
    corners = np.where(_BOX_BITS == 1, hi, lo)
    return corners[_BOX_TRIS]


def capsule_triangles(base, height: float, radius: float, segments: int = 16,
                      rings: int = 4) -> np.ndarray:
    """A closed upright capsule (cylinder + two hemispheres): ``(T, 3, 3)`` float32.

    Args:
        base: ``(3,)`` the lowest point, metres (z up).
        height: total height, metres (>= 2 * radius).
        radius: metres.
        segments: divisions around the axis; rings: divisions of each hemisphere.
    """
    if height < 2 * radius or radius <= 0:
        raise ValueError(f"capsule needs radius > 0 and height >= 2 radius, got {height}, {radius}")
    half = np.linspace(0.0, np.pi / 2, rings + 1)
    phis = np.concatenate([half, half + np.pi / 2])  # polar angle from the top
    zc = np.concatenate([np.full(rings + 1, height - radius), np.full(rings + 1, radius)])
    th = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring_pts = np.stack([
        np.outer(np.sin(phis), np.cos(th)) * radius,
        np.outer(np.sin(phis), np.sin(th)) * radius,
        np.repeat((zc + np.cos(phis) * radius)[:, None], segments, axis=1),
    ], axis=-1) + np.asarray(base, np.float64)
    tris = []
    for i in range(len(phis) - 1):
        for j in range(segments):
            k = (j + 1) % segments
            a, b, c, d = ring_pts[i, j], ring_pts[i, k], ring_pts[i + 1, j], ring_pts[i + 1, k]
            tris.append([a, c, d])
            tris.append([a, d, b])
    tris = np.array(tris)
    area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    return tris[area > 1e-12].astype(np.float32)


@dataclass
class SimpleScene:
    """A :class:`~egosim.sensors.scene_contract.SceneLike` assembled from triangle soups.

    Use :meth:`add` to append parts; attributes follow the scene contract.
    """

    triangles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3, 3), np.float32))
    face_semantic: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    face_instance: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    face_albedo: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))

    def add(self, triangles: np.ndarray, semantic: int, instance: int,
            albedo=(0.7, 0.7, 0.7)) -> SimpleScene:
        """Append ``triangles`` ``(T, 3, 3)`` with one semantic/instance id and colour."""
        t = np.asarray(triangles, np.float32).reshape(-1, 3, 3)
        n = len(t)
        self.triangles = np.concatenate([self.triangles, t])
        self.face_semantic = np.concatenate([self.face_semantic, np.full(n, semantic, np.int32)])
        self.face_instance = np.concatenate([self.face_instance, np.full(n, instance, np.int32)])
        alb = np.broadcast_to(np.asarray(albedo, np.float32), (n, 3))
        self.face_albedo = np.concatenate([self.face_albedo, alb])
        return self
