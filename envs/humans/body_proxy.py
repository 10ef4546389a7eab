"""Posed SMPL-X bodies of other humans as render meshes: a coarse proxy with appearance colours.

A head camera sees the other humans as posed meshes. The full body (10475 vertices, 20946
faces) is more than a small ego view resolves, and each frame's dynamic meshes get a new BVH,
so they are drawn with a :class:`BodyProxy`: vertex clusters of the SMPL-X topology, whose
vertices are the means of posed full-body vertices, coloured by the body's
:func:`~egosim.envs.humans.sample_appearance` colours. :meth:`BodyProxy.meshes` turns posed
bodies into :class:`egosim.sensors.DynamicMesh` objects for ``egosim.sensors.Renderer``:
one per human, instance ``instance_base + i``, the wearer seeing only its own hands and feet.

Frame: whatever frame the posed vertices are in (the world frame: metres, z up).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BodyProxy", "sample_face_colors", "INSTANCE_BASE"]

#: Instance id of human ``i``'s mesh is ``INSTANCE_BASE + i`` (as the env's capsules).
INSTANCE_BASE = 1000


class BodyProxy:
    """A coarse render mesh of the SMPL-X topology by vertex clustering.

    The template's vertices (procedural neutral body, rest pose, m) are grouped by body
    part and by a ``cell``-metre grid; a proxy vertex is the mean of its group's posed
    vertices, and the faces whose corners fall in three different groups are kept once.
    Groups never span two body parts, so the proxy follows the skinning of each limb.

    Args:
        faces: ``(F, 3)`` SMPL-X faces of the bodies to draw (the motion prior's).
        cell: grid size (m); 0.04 gives about 1450 vertices and 2950 faces, which a
            160-pixel view cannot tell from the full mesh.

    Attributes:
        faces: ``(F', 3)`` int64 proxy faces (indices of proxy vertices).
        self_visible: ``(F',)`` bool, faces on the hands and feet (seen by their wearer).
        num_vertices_full: vertices of the full body (10475).
    """

    def __init__(self, faces: np.ndarray, cell: float = 0.04) -> None:
        import scipy.sparse as sp

        from egosim.envs.humans.body_parts import BODY_PART_NAMES, body_part_labels
        from egosim.envs.humans.procedural.generator import procedural_model_path

        with np.load(procedural_model_path("neutral")) as data:
            template = np.asarray(data["v_template"], np.float64)
        faces = np.asarray(faces, np.int64)
        if faces.max() >= len(template):
            raise ValueError(f"faces index {faces.max() + 1} vertices; the SMPL-X template "
                             f"has {len(template)}")
        labels = body_part_labels()
        key = np.column_stack([labels, np.floor(template / cell).astype(np.int64)])
        _, group = np.unique(key, axis=0, return_inverse=True)
        group = group.reshape(-1)
        count = int(group.max()) + 1
        self.num_vertices_full = len(template)
        weights = 1.0 / np.bincount(group, minlength=count)[group]
        self._avg = sp.csr_matrix((weights, (group, np.arange(len(template)))),
                                  shape=(count, len(template)))
        f = group[faces]
        keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        f = f[keep]
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        self.faces = f[np.sort(first)]
        ends = [i for i, p in enumerate(BODY_PART_NAMES) if p.endswith(("hand", "foot"))]
        part = np.zeros(count, np.int64)
        part[group] = labels
        self.self_visible = np.isin(part, ends)[self.faces].all(axis=1)

    def vertices(self, full: np.ndarray) -> np.ndarray:
        """Proxy vertices ``(..., V', 3)`` of posed full-body vertices ``(..., 10475, 3)``."""
        lead = full.shape[:-2]
        flat = np.moveaxis(full.reshape((-1,) + full.shape[-2:]), 0, 1).reshape(
            full.shape[-2], -1)
        out = self._avg @ flat.astype(np.float64)
        return np.moveaxis(out.reshape(out.shape[0], -1, 3), 1, 0).reshape(
            lead + (out.shape[0], 3))

    def face_colors(self, vertex_colors: np.ndarray) -> np.ndarray:
        """``(F', 3)`` face colours from per-vertex colours ``(10475, 3)`` in [0, 1]."""
        return np.clip((self._avg @ vertex_colors)[self.faces].mean(axis=1), 0.0, 1.0)

    def meshes(self, vertices: np.ndarray, face_colors: Sequence[np.ndarray] | np.ndarray,
               semantic: int, instance_base: int = INSTANCE_BASE) -> list:
        """Posed bodies as renderer meshes, one :class:`egosim.sensors.DynamicMesh` each.

        Args:
            vertices: ``(N, 10475, 3)`` posed full-body vertices or ``(N, V', 3)`` proxy
                vertices (:meth:`vertices`), metres, world frame.
            face_colors: ``(N, F', 3)`` per-face colours in [0, 1] (:meth:`face_colors`,
                :func:`sample_face_colors`).
            semantic: semantic class of every face (the scenes' ``person`` class).
            instance_base: human ``i`` gets instance ``instance_base + i``.

        Returns:
            ``N`` meshes; their ``self_visible`` masks show a wearer its hands and feet.
        """
        from egosim.sensors import DynamicMesh

        v = np.asarray(vertices)
        if v.ndim != 3 or v.shape[-1] != 3:
            raise ValueError(f"vertices must have shape (N, V, 3); got {v.shape}")
        if v.shape[1] == self.num_vertices_full:
            v = self.vertices(v)
        if len(face_colors) != len(v):
            raise ValueError(f"face_colors has {len(face_colors)} bodies, vertices {len(v)}")
        return [DynamicMesh(v[i][self.faces], int(semantic), instance_base + i,
                            face_colors[i], self.self_visible) for i in range(len(v))]


def sample_face_colors(proxy: BodyProxy, n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, F', 3)`` proxy face colours of ``n`` bodies, one
    :func:`~egosim.envs.humans.sample_appearance` draw from ``rng`` each, in order."""
    from egosim.envs.humans.appearance import sample_appearance

    return np.stack([proxy.face_colors(sample_appearance(rng).vertex_colors)
                     for _ in range(n)])
