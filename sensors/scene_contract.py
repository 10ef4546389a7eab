"""What a renderer needs from a scene: the ``SceneLike`` contract and its checked form.

``egosim.sensors`` never imports ``egosim.envs``; any object with these attributes can
be rendered (``egosim.envs.scenes.Scene`` is one):

========================  ===================  =========================================
attribute                 shape, dtype         meaning
========================  ===================  =========================================
``triangles``             (F, 3, 3) float32    vertices, metres, world frame, z up
``face_semantic``         (F,) int32           semantic class id per face (>= 0)
``face_instance``         (F,) int32           instance id per face (>= 0)
``face_albedo``           (F, 3) float32       diffuse colour in [0, 1]
``textures`` (optional)   list of (H, W, 3)    uint8 images
``face_texture`` (opt.)   (F,) int32           texture index per face, -1 for none
``face_uv`` (optional)    (F, 3, 2) float32    per-corner texture coordinates; ``v`` up
                                               (OBJ / trimesh convention: texel row =
                                               ``(1 - v) * H``), repeating outside [0, 1]
========================  ===================  =========================================

A textured face shows its texture colour (nearest texel) instead of ``face_albedo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["DynamicMesh", "SceneArrays", "SceneLike", "TextureAtlas"]


@runtime_checkable
class SceneLike(Protocol):
    """The attributes a renderer reads from a scene (see the module table)."""

    triangles: np.ndarray
    face_semantic: np.ndarray
    face_instance: np.ndarray
    face_albedo: np.ndarray


@dataclass(frozen=True)
class TextureAtlas:
    """All textures flattened into one array for a single vectorised texel gather.

    Attributes:
        texels: ``(sum H_k W_k, 3)`` uint8, texture ``k`` row-major from ``offset[k]``.
        width, height, offset: ``(K,)`` int64 per texture.
    """

    texels: np.ndarray
    width: np.ndarray
    height: np.ndarray
    offset: np.ndarray

    @classmethod
    def build(cls, textures: list[np.ndarray]) -> TextureAtlas:
        """Flatten ``textures`` (each ``(H, W, 3)`` uint8, or RGBA whose alpha is dropped)."""
        flat, w, h = [], [], []
        for k, tex in enumerate(textures):
            a = np.asarray(tex)
            if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8 or a.size == 0:
                raise ValueError(f"textures[{k}] must be (H, W, 3) uint8, got {a.shape} {a.dtype}")
            flat.append(a[..., :3].reshape(-1, 3))
            h.append(a.shape[0])
            w.append(a.shape[1])
        sizes = np.array([x.shape[0] for x in flat], np.int64)
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(np.ascontiguousarray(np.concatenate(flat)), np.array(w, np.int64),
                   np.array(h, np.int64), offset)

    def sample(self, tex: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Nearest texels, repeating.

        Args:
            tex: ``(M,)`` texture indices; uv: ``(M, 2)`` coordinates.

        Returns:
            ``(M, 3)`` float32 colours in [0, 1].
        """
        w, h = self.width[tex], self.height[tex]
        x = np.floor(uv[:, 0] * w).astype(np.int64) % w
        y = np.floor((1.0 - uv[:, 1]) * h).astype(np.int64) % h
        return self.texels[self.offset[tex] + y * w + x].astype(np.float32) * (1.0 / 255.0)


def _arr(obj: object, name: str, dtype, shape_tail: tuple, n: int | None) -> np.ndarray:
    if not hasattr(obj, name):
        raise TypeError(f"scene has no attribute '{name}' (see egosim.sensors.SceneLike)")
    a = np.asarray(getattr(obj, name))
    bad_n = n is not None and a.ndim > 0 and a.shape[0] != n
    if a.ndim != 1 + len(shape_tail) or a.shape[1:] != shape_tail or bad_n:
        want = ("F",) + shape_tail
        raise ValueError(f"scene.{name} must have shape {want} (F = {n}), got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


@dataclass(frozen=True)
class SceneArrays:
    """A validated, contiguous copy of a scene's render attributes (the contract above).

    ``texture`` and ``uv`` are None when the scene has no textures.
    """

    triangles: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    albedo: np.ndarray
    texture: np.ndarray | None = None
    uv: np.ndarray | None = None
    atlas: TextureAtlas | None = field(default=None, repr=False)

    @property
    def num_faces(self) -> int:
        return int(self.triangles.shape[0])

    @classmethod
    def from_scene(cls, scene: object) -> SceneArrays:
        """Check ``scene`` against :class:`SceneLike` and copy its arrays."""
        tris = _arr(scene, "triangles", np.float32, (3, 3), None)
        n = tris.shape[0]
        if not np.all(np.isfinite(tris)):
            raise ValueError("scene.triangles contains NaN or inf")
        sem = _arr(scene, "face_semantic", np.int32, (), n)
        ins = _arr(scene, "face_instance", np.int32, (), n)
        alb = _arr(scene, "face_albedo", np.float32, (3,), n)
        if n and (alb.min() < 0.0 or alb.max() > 1.0):
            raise ValueError("scene.face_albedo must lie in [0, 1]")
        textures = getattr(scene, "textures", None)
        if not textures:
            return cls(tris, sem, ins, alb)
        tex = _arr(scene, "face_texture", np.int32, (), n)
        uv = _arr(scene, "face_uv", np.float32, (3, 2), n)
        if n and (tex.min() < -1 or tex.max() >= len(textures)):
            raise ValueError(f"scene.face_texture must be in [-1, {len(textures) - 1}]")
        return cls(tris, sem, ins, alb, tex, uv, TextureAtlas.build(list(textures)))


@dataclass(frozen=True)
class DynamicMesh:
    """A mesh that moves every frame (a posed human), rendered on top of the static scene.

    Attributes:
        triangles: ``(T, 3, 3)`` world-frame vertices, metres.
        semantic: semantic class id of every face (e.g. the scene's ``person`` class).
        instance: instance id (one per human).
        albedo: ``(3,)`` colour or ``(T, 3)`` per-face colours in [0, 1].
        self_visible: optional ``(T,)`` bool, the faces its wearer sees of itself (hands
            and feet); when a pose is rendered *as worn by* this mesh (``wearer=`` in
            :meth:`Renderer.render`), its other faces are hidden. None: all visible.
    """

    triangles: np.ndarray
    semantic: int
    instance: int
    albedo: np.ndarray | tuple[float, float, float] = (0.8, 0.6, 0.5)
    self_visible: np.ndarray | None = None

    def checked(self, index: int) -> DynamicMesh:
        """A copy with arrays converted and checked; ``index`` names it in errors."""
        tris = np.ascontiguousarray(np.asarray(self.triangles, np.float32))
        if tris.ndim != 3 or tris.shape[1:] != (3, 3):
            raise ValueError(f"meshes[{index}].triangles must be (T, 3, 3), got {tris.shape}")
        if not np.all(np.isfinite(tris)):
            raise ValueError(f"meshes[{index}].triangles contains NaN or inf")
        t = tris.shape[0]
        alb = np.asarray(self.albedo, np.float32)
        if alb.shape == (3,):
            alb = np.broadcast_to(alb, (t, 3))
        if alb.shape != (t, 3) or alb.min(initial=0) < 0 or alb.max(initial=0) > 1:
            raise ValueError(f"meshes[{index}].albedo must be (3,) or ({t}, 3) in [0, 1]")
        vis = None
        if self.self_visible is not None:
            vis = np.asarray(self.self_visible, bool)
            if vis.shape != (t,):
                raise ValueError(f"meshes[{index}].self_visible must be ({t},) bool, "
                                 f"got {vis.shape}")
        return DynamicMesh(tris, int(self.semantic), int(self.instance),
                           np.ascontiguousarray(alb), vis)
