"""The default camera backend: Embree ray casting on the BVH of a :class:`RayCaster`.

For every camera geometry the unit ray directions in the camera frame are computed once
and cached. A ``render`` call splits all cameras and poses into work items of a few tens
of thousands of rays, and a thread pool runs each item end to end: rotate the cached
rays by the pose, cast them (Embree releases the GIL), composite the dynamic meshes, and
write depth, ids, colour and normals straight into the output images with vectorised
table look-ups. Rays start on the near plane and stop at the far plane, so clipping
matches OpenGL's.

Shading is flat (one geometric normal per triangle, surfaces two-sided), so the lit
colour of each face side is tabulated once per lighting and the colour of a pixel is a
single gather; textured faces multiply their texel by the tabulated light.

Dynamic meshes (posed humans) live in a second, small :class:`RayCaster` rebuilt whenever
they change; the static scene's BVH is built once. The two are composited per ray by
the nearest hit.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from egosim.sensors.camera import pixel_rays
from egosim.sensors.lighting import Lighting
from egosim.sensors.raycast import RayCaster, default_num_threads
from egosim.sensors.scene import DynamicMesh, SceneArrays
from egosim.sensors.spec import CameraSpec

__all__ = ["EmbreeBackend", "GroupRequest"]

_ITEM_MIN_RAYS = 16384
_ITEM_MAX_RAYS = 131072


@dataclass
class GroupRequest:
    """Poses to render with one camera geometry.

    Attributes:
        geometry: a spec whose resolution, projection, intrinsics, near and far define the
            rays (its uuid, modality and pose in the rig are ignored here).
        poses: ``(N, 4, 4)`` float64 sensor-to-world poses (OpenCV axes).
        want: modalities to produce, a subset of {rgb, depth, semantic, instance, normal}.
        wearer: ``(N,)`` int64 index of the dynamic mesh wearing the camera, or -1; None
            when no pose is worn.
    """

    geometry: CameraSpec
    poses: np.ndarray
    want: frozenset
    wearer: np.ndarray | None = None


@dataclass
class _Rays:
    dirs: np.ndarray  # (P', 3) float32 unit, camera frame, only the valid pixels
    dirs_t: np.ndarray  # (3, P') float32, dirs transposed (contiguous rows)
    near_t: np.ndarray  # (3, P') float32 ray points on the near plane, camera frame
    span: np.ndarray  # (P',) float32 distance along the ray from near to far plane
    dz: np.ndarray  # (P',) float32 z of the unit direction
    sel: np.ndarray | None  # (P',) pixel indices, None when every pixel has a ray
    num_pixels: int


class EmbreeBackend:
    """Embree renderer over a validated scene (see :class:`SceneArrays`)."""

    name = "embree"
    modalities = frozenset({"rgb", "depth", "semantic", "instance", "normal"})

    def __init__(self, scene: SceneArrays, num_threads: int | None = None) -> None:
        self.scene = scene
        self.num_threads = num_threads or default_num_threads()
        self.caster = RayCaster(scene.triangles, num_threads=self.num_threads)
        self._pool = ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 else None
        self._rays: dict[CameraSpec, _Rays] = {}
        self._static_normals = _unit_normals(scene.triangles)
        self._static_light_key: Lighting | None = None
        self._lit_key: Lighting | None = None
        self._static_tex = None
        if scene.texture is not None:
            self._texture_tables()
        self.set_dynamic_meshes([])

    # -- dynamic meshes -------------------------------------------------------------
    def set_dynamic_meshes(self, meshes: list[DynamicMesh]) -> None:
        """Replace the dynamic meshes (already checked); rebuilds only their small BVH."""
        s = self.scene
        self._meshes = meshes
        self._dyn_tris = (np.concatenate([m.triangles for m in meshes]) if meshes
                          else np.zeros((0, 3, 3), np.float32))
        sizes = [m.triangles.shape[0] for m in meshes]
        self._dyn_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        nd = len(self._dyn_tris)
        dyn_sem = np.repeat(np.array([m.semantic for m in meshes], np.int32), sizes)
        dyn_ins = np.repeat(np.array([m.instance for m in meshes], np.int32), sizes)
        dyn_alb = (np.concatenate([m.albedo for m in meshes]) if meshes
                   else np.zeros((0, 3), np.float32))
        # Tables are indexed by face + 1 so that a miss (-1) reads row 0.
        self._sem = np.concatenate([[-1], s.semantic, dyn_sem]).astype(np.int32)
        self._ins = np.concatenate([[-1], s.instance, dyn_ins]).astype(np.int32)
        self._alb = np.concatenate([np.zeros((1, 3), np.float32), s.albedo, dyn_alb])
        self._normals = np.concatenate([np.zeros((1, 3), np.float32), self._static_normals,
                                        _unit_normals(self._dyn_tris)])
        self._tex = None
        if self._static_tex is not None:
            self._tex = np.concatenate([self._static_tex, np.zeros(nd, bool)])
        self._light_key: Lighting | None = None
        self._dyn_casters: dict[int, tuple[RayCaster, np.ndarray]] = {}
        if meshes:
            self._dyn_casters[-1] = (RayCaster(self._dyn_tris, self.num_threads),
                                     np.arange(nd, dtype=np.int32))

    def _dyn_caster(self, wearer: int) -> tuple[RayCaster, np.ndarray]:
        """Caster of the dynamic meshes as seen by ``wearer`` (its hidden faces removed)."""
        if wearer not in self._dyn_casters:
            vis = self._meshes[wearer].self_visible
            keep = np.ones(len(self._dyn_tris), bool)
            if vis is not None:
                keep[self._dyn_start[wearer]:self._dyn_start[wearer + 1]] = vis
            idx = np.nonzero(keep)[0].astype(np.int32)
            self._dyn_casters[wearer] = (RayCaster(self._dyn_tris[idx], self.num_threads), idx)
        return self._dyn_casters[wearer]

    # -- tables ---------------------------------------------------------------------
    def _light_tables(self, lighting: Lighting) -> None:
        """Lit colour (uint8) and light factor per face side: rows ``side * (F+1) + face + 1``.

        Side 0: the ray sees the winding (front) side; side 1: the back side. The static
        scene's part is cached per lighting; the dynamic part is recomputed per frame.
        """
        if self._light_key == lighting:
            return
        if self._static_light_key != lighting:
            self._static_light = _lit(self._static_normals, self.scene.albedo, lighting)
            self._static_light_key = lighting
        nd = len(self._dyn_tris)
        dyn = _lit(self._normals[-nd:] if nd else np.zeros((0, 3), np.float32),
                   self._alb[-nd:] if nd else np.zeros((0, 3), np.float32), lighting)
        bg = np.asarray(lighting.background, np.float32)[None]
        one = np.ones((1, 3), np.float32)
        light = [np.concatenate([one, s[0], d[0]]) for s, d in
                 zip(self._static_light, dyn, strict=True)]
        colour = [np.concatenate([bg, s[1], d[1]]) for s, d in
                  zip(self._static_light, dyn, strict=True)]
        self._light = np.concatenate(light)
        self._colour = _quantise(np.concatenate(colour))
        if self._tex is not None:
            self._lit_atlas()
        self._light_key = lighting

    # -- rays -----------------------------------------------------------------------
    def _camera_rays(self, geom: CameraSpec) -> _Rays:
        r = self._rays.get(geom)
        if r is None:
            dirs, valid = pixel_rays(geom)
            sel = None if valid.all() else np.nonzero(valid)[0]
            d = dirs if sel is None else dirs[sel]
            dz = d[:, 2].copy()
            near = (d * (geom.near / dz)[:, None]).T
            r = _Rays(np.ascontiguousarray(d), np.ascontiguousarray(d.T),
                      np.ascontiguousarray(near, np.float32),
                      ((geom.far - geom.near) / dz).astype(np.float32), dz, sel, len(valid))
            if len(self._rays) >= 64:  # jittered intrinsics make new geometries
                self._rays.clear()
            self._rays[geom] = r
        return r

    # -- rendering ------------------------------------------------------------------
    def render(self, requests: list[GroupRequest], lighting: Lighting) -> list[dict]:
        """Render every request; all rays are cast together over the thread pool.

        Returns, per request, a dict with the wanted modalities among ``depth``
        (``(N, H, W)`` float32 z-depth, 0 invalid) plus ``valid`` (bool), ``semantic`` and
        ``instance`` (int32, -1 on a miss), ``rgb`` (uint8 ``(N, H, W, 3)``) and ``normal``
        (float32 ``(N, H, W, 3)``, camera frame, facing the camera).
        """
        if any("rgb" in q.want for q in requests):
            self._light_tables(lighting)
        rays = [self._camera_rays(q.geometry) for q in requests]
        outs = [self._allocate(q, r) for q, r in zip(requests, rays, strict=True)]
        total = sum(q.poses.shape[0] * r.dirs.shape[0] for q, r in zip(requests, rays,
                                                                       strict=True))
        target = min(max(total // (4 * self.num_threads), _ITEM_MIN_RAYS), _ITEM_MAX_RAYS)
        items = []
        for k, (q, r) in enumerate(zip(requests, rays, strict=True)):
            n, p = q.poses.shape[0], r.dirs.shape[0]
            if p >= target:  # big images: one pose per item, split by pixels
                step = math.ceil(p / math.ceil(p / target))
                items += [(k, i, i + 1, a, min(a + step, p)) for i in range(n)
                          for a in range(0, p, step)]
            else:  # small images: several whole poses per item
                per = max(1, target // p)
                items += [(k, i, min(i + per, n), 0, p) for i in range(0, n, per)]

        def work(item: tuple) -> None:
            k, i0, i1, a, b = item
            self._render_item(requests[k], rays[k], outs[k], i0, i1, a, b)

        if self._pool is None or len(items) == 1:
            for it in items:
                work(it)
        else:
            for f in [self._pool.submit(work, it) for it in items]:
                f.result()
        return [self._finish(q, r, o) for q, r, o in zip(requests, rays, outs, strict=True)]

    def _allocate(self, q: GroupRequest, r: _Rays) -> dict:
        n, p = q.poses.shape[0], r.dirs.shape[0]
        shapes = {"depth": ((), np.float32), "valid": ((), bool), "semantic": ((), np.int32),
                  "instance": ((), np.int32), "rgb": ((3,), np.uint8),
                  "normal": ((3,), np.float32)}
        want = set(q.want) | ({"valid"} if "depth" in q.want else set())
        return {k: np.empty((n, p) + shapes[k][0], shapes[k][1]) for k in want}

    def _finish(self, q: GroupRequest, r: _Rays, out: dict) -> dict:
        h, w = q.geometry.resolution
        n = q.poses.shape[0]
        res = {}
        for k, v in out.items():
            tail = v.shape[2:]
            if r.sel is not None:
                fill = {"semantic": -1, "instance": -1}.get(k, 0)
                img = np.full((n, r.num_pixels) + tail, fill, v.dtype)
                img[:, r.sel] = v
                v = img
            res[k] = v.reshape((n, h, w) + tail)
        return res

    def _render_item(self, q: GroupRequest, r: _Rays, out: dict, i0: int, i1: int,
                     a: int, b: int) -> None:
        """Rays of poses ``[i0, i1)`` and camera rays ``[a, b)``: cast and write outputs."""
        k, p = i1 - i0, b - a
        rot = q.poses[i0:i1, :3, :3].astype(np.float32)
        dirs = np.empty((k, p, 3), np.float32)
        org = np.empty((k, p, 3), np.float32)
        for i in range(k):
            pose = q.poses[i0 + i]
            _rotate(r.dirs_t[:, a:b], pose[:3, :3], None, dirs[i])
            _rotate(r.near_t[:, a:b], pose[:3, :3], pose[:3, 3], org[i])
        span = np.empty((k, p), np.float32)
        span[:] = r.span[a:b]
        dirs, org, span = dirs.reshape(-1, 3), org.reshape(-1, 3), span.reshape(-1)
        tfar, prim, ng, u, v = self.caster.intersect_raw(org, dirs, span)
        if self._meshes:
            w = -1 if q.wearer is None else q.wearer[i0:i1]
            tfar, prim, ng, u, v = self._composite(org, dirs, span, tfar, prim, ng, u, v, w, p)
        hit = prim >= 0
        f1 = prim + 1
        # Items cover whole images or a pixel range of one image, so every out[...][sl] is
        # contiguous and its reshape(-1) a view: np.take(..., out=) writes into the image.
        sl = (slice(i0, i1), slice(a, b))
        if "depth" in out:
            z = out["depth"][sl]
            np.multiply(tfar.reshape(k, p), r.dz[a:b], out=z)
            z += np.float32(q.geometry.near)
            z *= hit.reshape(k, p)
            out["valid"][sl] = hit.reshape(k, p)
        if "semantic" in out:
            np.take(self._sem, f1, out=out["semantic"][sl].reshape(-1))
        if "instance" in out:
            np.take(self._ins, f1, out=out["instance"][sl].reshape(-1))
        if "rgb" in out or "normal" in out:
            back = (ng[:, 0] * dirs[:, 0] + ng[:, 1] * dirs[:, 1] + ng[:, 2] * dirs[:, 2]) > 0
        if "rgb" in out:
            row = f1 + back * np.int32(len(self._alb))
            rgb = out["rgb"][sl].reshape(-1, 3)
            np.take(self._colour, row, axis=0, out=rgb)
            if self._tex is not None:
                self._texture(rgb, f1, row, u, v)
        if "normal" in out:
            nrm = np.take(self._normals, f1, axis=0)
            nrm[back] *= -1.0
            np.einsum("kpi,kij->kpj", nrm.reshape(k, p, 3), rot, out=out["normal"][sl])

    def _texture_tables(self) -> None:
        """Per textured face: an affine map from barycentrics to texel coordinates.

        ``_tex_affine[f + 1] = [x0, y0, x1 - x0, y1 - y0, x2 - x0, y2 - y0]`` with corner
        texel coordinates ``x = s W``, ``y = (1 - t) H``, each face shifted by whole
        texture periods so its coordinates are >= 0 (truncation is then floor).
        """
        s = self.scene
        f = len(s.texture)
        tex = s.texture
        at = s.atlas
        k = np.maximum(tex, 0)
        w = at.width[k].astype(np.float64)[:, None]
        h = at.height[k].astype(np.float64)[:, None]
        x = s.uv[:, :, 0].astype(np.float64) * w
        y = (1.0 - s.uv[:, :, 1].astype(np.float64)) * h
        x += w * np.ceil(np.maximum(-x.min(axis=1, keepdims=True), 0.0) / w)
        y += h * np.ceil(np.maximum(-y.min(axis=1, keepdims=True), 0.0) / h)
        aff = np.zeros((f + 1, 6), np.float32)
        aff[1:] = np.stack([x[:, 0], y[:, 0], x[:, 1] - x[:, 0], y[:, 1] - y[:, 0],
                            x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]], axis=1)
        self._tex_affine = aff
        self._tex_w = np.concatenate([[1], at.width[k]]).astype(np.int32)
        self._tex_h = np.concatenate([[1], at.height[k]]).astype(np.int32)
        self._tex_off = np.concatenate([[0], at.offset[k]]).astype(np.int32)
        self._static_tex = np.concatenate([[False], tex >= 0])
        self._single_tex = None
        if len(at.width) == 1:
            self._single_tex = (np.int32(at.width[0]), np.int32(at.height[0]))

    def _lit_atlas(self) -> None:
        """Pre-lit copies of the atlas, one per distinct light factor of textured faces.

        With flat shading every textured face side has one light factor; when the
        distinct factors are few (a textured floor: one per side), the lit texels are
        tabulated so that a textured pixel costs one gather. Otherwise
        ``_lit = None`` and texels are lit per pixel.
        """
        n_rows = len(self._alb)
        faces = np.flatnonzero(self._tex)  # textured faces are static: same rows every frame
        if self._lit_key != self._static_light_key:
            rows = np.concatenate([faces, faces + n_rows])
            key = np.round(self._light[rows] * 1024.0).astype(np.int32)
            uniq, inv = np.unique(key, axis=0, return_inverse=True)
            texels = self.scene.atlas.texels
            self._lit, self._lit_group = None, inv.reshape(-1) * len(texels)
            if len(uniq) * len(texels) <= (1 << 22):
                lit = [_quantise(texels * (g / 1024.0 / 255.0)) for g in uniq.astype(np.float32)]
                self._lit = np.ascontiguousarray(np.concatenate(lit)).view("V3").reshape(-1)
            self._lit_key = self._static_light_key
        if self._lit is not None:
            self._lit_off = np.zeros(2 * n_rows, np.int32)
            self._lit_off[np.concatenate([faces, faces + n_rows])] = self._lit_group

    def _texture(self, rgb: np.ndarray, f1: np.ndarray, row: np.ndarray, u: np.ndarray,
                 v: np.ndarray) -> None:
        """Overwrite the colour of rays that hit textured faces: nearest texel x light."""
        j = np.flatnonzero(np.take(self._tex, f1))
        if len(j) == 0:
            return
        fj = f1[j]
        a = np.take(self._tex_affine, fj, axis=0)
        uj, vj = u[j], v[j]
        x = (a[:, 0] + uj * a[:, 2] + vj * a[:, 4]).astype(np.int32)
        y = (a[:, 1] + uj * a[:, 3] + vj * a[:, 5]).astype(np.int32)
        if self._single_tex is not None:  # one texture: no per-face size look-ups
            w, h = self._single_tex
            if (w & (w - 1)) == 0 and (h & (h - 1)) == 0:  # powers of two: mask, no division
                x &= w - 1
                y &= h - 1
            else:
                x %= w
                y %= h
            y *= w
        else:
            w = np.take(self._tex_w, fj)
            x %= w
            y %= np.take(self._tex_h, fj)
            y *= w
            y += np.take(self._tex_off, fj)
        y += x
        rj = row[j]
        out = rgb.view("V3").reshape(-1)
        if self._lit is not None:
            y += np.take(self._lit_off, rj)
            np.put(out, j, np.take(self._lit, y))
            return
        texel = np.take(self.scene.atlas.texels, y, axis=0).astype(np.float32)
        texel *= np.take(self._light, rj, axis=0)
        np.put(out, j, _quantise(texel * np.float32(1.0 / 255.0)).view("V3").reshape(-1))

    def _composite(self, org, dirs, span, tfar, prim, ng, u, v, wearer, p):
        """Replace static hits by nearer hits on the dynamic meshes (per-pose wearer)."""
        n_static = np.int32(self.scene.num_faces)
        wear = np.repeat(np.broadcast_to(np.asarray(wearer), (org.shape[0] // p,)), p)
        tfar, prim, ng, u, v = tfar.copy(), prim.copy(), ng.copy(), u.copy(), v.copy()
        for w in np.unique(wear):
            caster, face_map = self._dyn_caster(int(w))
            if np.all(wear == w):
                idx = None
                td, pd, nd, ud, vd = caster.intersect_raw(org, dirs, span)
                near_t = tfar
            else:
                idx = np.nonzero(wear == w)[0]
                td, pd, nd, ud, vd = caster.intersect_raw(org[idx], dirs[idx], span[idx])
                near_t = tfar[idx]
            src = np.nonzero((pd >= 0) & (td < near_t))[0]
            dst = src if idx is None else idx[src]
            tfar[dst], ng[dst], u[dst], v[dst] = td[src], nd[src], ud[src], vd[src]
            prim[dst] = n_static + face_map[pd[src]]
        return tfar, prim, ng, u, v


def _rotate(vec_t: np.ndarray, rot: np.ndarray, trans: np.ndarray | None,
            out: np.ndarray) -> None:
    """``out[j] = rot @ vec_t[:, j] (+ trans)`` for ``vec_t`` ``(3, P)``, ``out`` ``(P, 3)``.

    Written as nine scaled row sums rather than ``matmul``: for an inner dimension of 3,
    BLAS is slower, and its own threads fight the renderer's on a busy machine.
    """
    tmp = np.empty(vec_t.shape[1], np.float32)
    for c in range(3):
        np.multiply(vec_t[0], np.float32(rot[c, 0]), out=tmp)
        tmp += vec_t[1] * np.float32(rot[c, 1])
        tmp += vec_t[2] * np.float32(rot[c, 2])
        if trans is not None:
            tmp += np.float32(trans[c])
        out[:, c] = tmp


def _unit_normals(tris: np.ndarray) -> np.ndarray:
    """``(F, 3)`` float32 unit normals ``(v1 - v0) x (v2 - v0)`` (zeros if degenerate)."""
    n = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]).astype(np.float32)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _lit(normals: np.ndarray, albedo: np.ndarray,
         lighting: Lighting) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Per side (front, back): light factor ``(F, 3)`` and lit colour ``(F, 3)``, float32."""
    amb = np.float32(lighting.ambient) * np.asarray(lighting.ambient_color, np.float32)
    col = np.float32(lighting.diffuse) * np.asarray(lighting.light_color, np.float32)
    cos = normals @ (-np.asarray(lighting.direction, np.float32))
    out = []
    for c in (cos, -cos):
        light = amb + np.maximum(c, 0.0)[:, None] * col
        out.append((light.astype(np.float32), (albedo * light).astype(np.float32)))
    return tuple(out)


def _quantise(colour: np.ndarray) -> np.ndarray:
    """Linear [0, 1] colour to uint8: ``round(255 * clip(c, 0, 1))``."""
    return (np.clip(colour, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
