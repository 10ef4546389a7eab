"""Closed vertical cylinders and a builder that labels the faces of triangle primitives.

Boxes are :func:`egosim.sensors.shapes.box_triangles`. Every primitive is a closed surface
with outward-facing normals (counter-clockwise winding seen from outside, i.e.
``(v1 - v0) x (v2 - v0)`` points out of the solid), so a scene made of them is a union of
closed solids: the walkability ray test and the SDF sign by winding number rely on that.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cylinder_triangles", "MeshBuilder"]


def cylinder_triangles(
    center: np.ndarray, radius: float, z0: float, z1: float, segments: int = 12
) -> np.ndarray:
    """Vertical closed cylinder (a prism with ``segments`` sides).

    Args:
        center: ``(2,)`` axis position ``(x, y)`` in metres.
        radius: circumradius in metres.
        z0, z1: bottom and top heights in metres, ``z0 < z1``.
        segments: number of side facets (>= 3).

    Returns:
        ``(4 * segments, 3, 3)`` float64 triangles with outward normals.
    """
    if not (radius > 0 and z1 > z0 and segments >= 3):
        raise ValueError(
            f"cylinder needs radius > 0, z1 > z0, segments >= 3; got {radius}, {z0}, {z1}, "
            f"{segments}"
        )
    a = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = np.stack([center[0] + radius * np.cos(a), center[1] + radius * np.sin(a)], axis=1)
    nxt = np.roll(np.arange(segments), -1)
    b0 = np.concatenate([ring, np.full((segments, 1), z0)], axis=1)
    b1 = np.concatenate([ring, np.full((segments, 1), z1)], axis=1)
    c0 = np.array([center[0], center[1], z0])
    c1 = np.array([center[0], center[1], z1])
    i = np.arange(segments)
    top = np.stack([np.broadcast_to(c1, (segments, 3)), b1[i], b1[nxt]], axis=1)
    bottom = np.stack([np.broadcast_to(c0, (segments, 3)), b0[nxt], b0[i]], axis=1)
    side_a = np.stack([b0[i], b0[nxt], b1[nxt]], axis=1)
    side_b = np.stack([b0[i], b1[nxt], b1[i]], axis=1)
    return np.concatenate([top, bottom, side_a, side_b])


class MeshBuilder:
    """Accumulates labelled triangles; :meth:`arrays` returns the scene arrays.

    Each :meth:`add` call appends triangles with one semantic class, one instance id
    and one linear-RGB albedo; optional texture index and per-vertex UVs.
    """

    def __init__(self) -> None:
        self._tris: list[np.ndarray] = []
        self._sem: list[np.ndarray] = []
        self._inst: list[np.ndarray] = []
        self._alb: list[np.ndarray] = []
        self._tex: list[np.ndarray] = []
        self._uv: list[np.ndarray] = []
        self._next_instance = 1

    def new_instance(self) -> int:
        """A fresh instance id (1, 2, 3, ... in call order; 0 stays 'no instance')."""
        iid = self._next_instance
        self._next_instance += 1
        return iid

    def add(
        self,
        triangles: np.ndarray,
        semantic: int,
        instance: int,
        albedo: np.ndarray,
        texture: int = -1,
        uv: np.ndarray | None = None,
    ) -> None:
        """Append ``(F, 3, 3)`` triangles (metres) with their labels.

        Args:
            triangles: ``(F, 3, 3)`` vertex positions.
            semantic: class id (see :mod:`egosim.envs.scenes.classes`).
            instance: instance id from :meth:`new_instance` (or 0).
            albedo: ``(3,)`` linear RGB in [0, 1].
            texture: index into the scene's texture list, or -1.
            uv: optional ``(F, 3, 2)`` texture coordinates (zeros when omitted).
        """
        tris = np.asarray(triangles, np.float64).reshape(-1, 3, 3)
        n = tris.shape[0]
        self._tris.append(tris)
        self._sem.append(np.full(n, semantic, np.int32))
        self._inst.append(np.full(n, instance, np.int32))
        self._alb.append(np.broadcast_to(np.clip(albedo, 0.0, 1.0), (n, 3)).astype(np.float32))
        self._tex.append(np.full(n, texture, np.int32))
        self._uv.append(np.zeros((n, 3, 2), np.float32) if uv is None else uv.astype(np.float32))

    @property
    def num_faces(self) -> int:
        """Number of triangles added so far."""
        return int(sum(t.shape[0] for t in self._tris))

    def arrays(self) -> dict[str, np.ndarray]:
        """Concatenated arrays: ``triangles`` float32 ``(F,3,3)``, ``face_semantic``,
        ``face_instance``, ``face_texture`` int32 ``(F,)``, ``face_albedo`` float32
        ``(F,3)``, ``face_uv`` float32 ``(F,3,2)``."""
        if not self._tris:
            raise ValueError("MeshBuilder is empty: add triangles first")
        return {
            "triangles": np.concatenate(self._tris).astype(np.float32),
            "face_semantic": np.concatenate(self._sem),
            "face_instance": np.concatenate(self._inst),
            "face_albedo": np.concatenate(self._alb),
            "face_texture": np.concatenate(self._tex),
            "face_uv": np.concatenate(self._uv),
        }
