"""The default camera backend: Embree ray casting on the BVH of a :class:`RayCaster`.

For every camera geometry the unit ray directions in the camera frame are computed once
and cached, with their distances to the near and far planes. A ``render`` call splits all
cameras and poses into work items of up to a few hundred thousand rays, and a thread pool
runs each item end to end: for each of its poses, rotate the cached rays (one 3x3
product) and cast them from the camera centre, compositing the dynamic meshes (Embree
releases the GIL); then, pose by pose, write depth, ids, colour and normals straight into
the output images with vectorised table look-ups (numpy releases the GIL in its loops
too, so shading on one thread overlaps casting on the others).

Clipping matches OpenGL's: rays stop at the far plane, and the few rays whose first hit
lies in front of the near plane (camera z < near) are cast again from the near plane.

Shading is flat (one geometric normal per triangle, surfaces two-sided), so what a hit
shows is tabulated per face, in one 16-byte record fetched by a single gather: the lit
colour of its front and back side, packed in 32-bit words (recomputed per lighting), its
semantic and its instance id. Textured face sides point instead into pre-lit copies of
the texel atlas, so that a textured pixel costs one more gather (or, when the lighting
would need too many copies, texels are multiplied by the tabulated light per pixel).

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
from egosim.sensors.scene_contract import DynamicMesh, SceneArrays
from egosim.sensors.spec import CameraSpec

__all__ = ["EmbreeBackend", "GroupRequest"]

# Work items: of up to 1 / _ITEMS_PER_THREAD of a thread's share of the rays, and from
# _ITEM_MIN_RAYS to _ITEM_MAX_RAYS rays. Large items cast many poses in a row (the BVH
# stays in the caches), then shade them in a row (so do the shading tables); the last
# items of a call are smaller, so that the threads finish together.
_ITEMS_PER_THREAD = 2
_ITEM_MIN_RAYS = 16384
_ITEM_MAX_RAYS = 262144
# At most this many rays of one pose are cast and shaded at once: their 3x3 rotations and
# normal products stay below the size at which OpenBLAS starts threads of its own.
_POSE_MAX_RAYS = 65536
_LIT_MAX_TEXELS = 1 << 22  # pre-lit atlas copies (packed words) kept at most
# Packed colours are < 2 ** 24: words from here on mark textured face sides, and hold
# _TEXTURED + the start of the side's pre-lit copy (< _LIT_MAX_TEXELS).
_TEXTURED = np.uint32(1 << 24)


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
    dirs_t: np.ndarray  # (3, P') float32 unit directions, camera frame, valid pixels only
    dz: np.ndarray  # (P',) float32 z of the unit direction
    near_t: np.ndarray  # (P',) float32 distance from the camera centre to the near plane
    far_t: np.ndarray  # (P',) float32 distance from the camera centre to the far plane
    span: np.ndarray  # (P',) float32 distance along the ray from the near to the far plane
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
        self._static_tex = None
        self._lit: np.ndarray | None = None  # pre-lit atlas copies, packed (see _lit_atlas)
        self._lit_key: Lighting | None = None
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
        # One 16-byte record per face: what a hit on it shows, fetched by a single gather
        # (one cache miss): colour words of its front and back side (filled per lighting
        # by _light_tables), semantic id, instance id.
        rec = np.zeros((1 + s.num_faces + nd, 4), np.int32)
        rec[:, 2] = np.concatenate([[-1], s.semantic, dyn_sem])
        rec[:, 3] = np.concatenate([[-1], s.instance, dyn_ins])
        self._rec = rec
        self._rec_items = rec.view("V16").reshape(-1)
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
        """Lit colour of every face side, in the face records.

        Rows ``side * (F+1) + face + 1`` of ``_light`` hold the light factor (float32
        RGB) of each face side (side 0: the ray sees the winding (front) side; side 1:
        the back side; row 0 of each side is the background). Columns 0 and 1 of the
        face records hold the lit colour of the front and back side packed as
        ``r | g << 8 | b << 16``; on textured faces they hold ``_TEXTURED`` plus the
        start of the side's pre-lit atlas copy in ``_lit`` (or just ``_TEXTURED`` when
        ``_lit`` is None: texels are then lit per pixel). The static scene's part is
        cached per lighting; the dynamic part is recomputed per frame.
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
        packed = _pack(_quantise(np.concatenate(colour))).reshape(2, -1)
        if self._tex is not None:
            self._lit_atlas()
            faces = np.flatnonzero(self._tex)
            packed[:, faces] = _TEXTURED
            if self._lit is not None:  # where each side's pre-lit copy starts in _lit
                packed[:, faces] += self._lit_group.reshape(2, -1).astype(np.uint32)
        self._rec[:, :2] = packed.T.view(np.int32)
        self._light_key = lighting

    # -- rays -----------------------------------------------------------------------
    def _camera_rays(self, geom: CameraSpec) -> _Rays:
        r = self._rays.get(geom)
        if r is None:
            dirs, valid = pixel_rays(geom)
            sel = None if valid.all() else np.nonzero(valid)[0]
            d = dirs if sel is None else dirs[sel]
            dz = np.ascontiguousarray(d[:, 2])
            r = _Rays(np.ascontiguousarray(d.T), dz, (geom.near / dz).astype(np.float32),
                      (geom.far / dz).astype(np.float32),
                      ((geom.far - geom.near) / dz).astype(np.float32), sel, len(valid))
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
        total = sum(q.poses.shape[0] * r.dz.shape[0] for q, r in zip(requests, rays,
                                                                     strict=True))
        target = min(max(total // (_ITEMS_PER_THREAD * self.num_threads), _ITEM_MIN_RAYS),
                     _ITEM_MAX_RAYS)
        items = []
        for k, (q, r) in enumerate(zip(requests, rays, strict=True)):
            n, p = q.poses.shape[0], r.dz.shape[0]
            chunk = min(target, _POSE_MAX_RAYS)
            if p > chunk:  # big images: one pose per item, split by pixels
                step = math.ceil(p / math.ceil(p / chunk))
                items += [(k, i, i + 1, a, min(a + step, p)) for i in range(n)
                          for a in range(0, p, step)]
            else:  # small images: several whole poses per item, fewer towards the end
                i, per = 0, max(1, target // p)
                while i < n:  # guided: big items first, then smaller ones to even out
                    m = min(per, max(1, math.ceil((n - i) / (2 * self.num_threads))))
                    items.append((k, i, i + m, 0, p))
                    i += m

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
        n, p = q.poses.shape[0], r.dz.shape[0]
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
        """Poses ``[i0, i1)``, camera rays ``[a, b)``: cast them all, then write outputs.

        Casting every pose of the item before shading any keeps the BVH warm in the
        caches during the casts and the shading tables warm during the shading. Items
        cover whole images or a pixel range of one image, so every ``out[...][i, a:b]``
        is a contiguous row of its image and is written in place.
        """
        hits = [self._cast_pose(q, r, i, a, b) for i in range(i0, i1)]
        for i, h in zip(range(i0, i1), hits, strict=True):
            self._shade_pose(q, r, out, i, a, b, *h)

    def _cast_pose(self, q: GroupRequest, r: _Rays, i: int, a: int, b: int) -> tuple:
        """Cast camera rays ``[a, b)`` at pose ``i``; returns the hits (see :meth:`_cast`)
        with ``z`` (camera z of the hit, float32) for tfar, the world-frame directions
        ``(3, p)`` and the rotation (float32)."""
        p = b - a
        pose = q.poses[i]
        wearer = -1 if q.wearer is None else int(q.wearer[i])
        rot = pose[:3, :3].astype(np.float32)
        dirs_t = np.dot(rot, r.dirs_t[:, a:b])  # (3, p) world-frame unit directions
        dirs = dirs_t.T  # (p, 3) view; Embree reads any strides
        centre = pose[:3, 3].astype(np.float32)
        # Every ray starts at the camera centre: one origin with stride 0 (Embree's binding
        # wants a writable buffer; it only reads it).
        org = np.ndarray((p, 3), np.float32, centre, 0, (0, centre.itemsize))
        z, prim, ng, u, v = self._cast(org, dirs, r.far_t[a:b].copy(), wearer)
        near = np.float32(q.geometry.near)
        dz = r.dz[a:b]
        z *= dz
        if z.min() < near:  # first hits in front of the near plane: cast again from it
            j = np.flatnonzero(z < near)
            dj = dirs[j]
            oj = dj * r.near_t[a:b][j, None]
            oj += centre
            tj, pj, nj, uj, vj = self._cast(oj, dj, r.span[a:b][j], wearer)
            prim[j], ng[j], u[j], v[j] = pj, nj, uj, vj
            tj *= dz[j]
            tj += near
            z[j] = tj
        return z, prim, ng, u, v, dirs_t, rot

    def _shade_pose(self, q: GroupRequest, r: _Rays, out: dict, i: int, a: int, b: int,
                    z: np.ndarray, prim: np.ndarray, ng: np.ndarray, u: np.ndarray,
                    v: np.ndarray, dirs_t: np.ndarray, rot: np.ndarray) -> None:
        """Write the outputs of pose ``i``, camera rays ``[a, b)``, from its hits."""
        p = b - a
        if "depth" in out:
            hit = out["valid"][i, a:b]
            np.greater_equal(prim, 0, out=hit)
            np.multiply(z, hit, out=out["depth"][i, a:b])
        f1 = prim + np.int32(1)  # table row of the hit face; row 0 = nothing hit
        if "semantic" in out or "instance" in out or "rgb" in out:
            # Every index is in range by construction: mode="clip" skips the checks.
            rec = self._rec_items.take(f1, mode="clip").view(np.int32).reshape(p, 4)
            if "semantic" in out:
                out["semantic"][i, a:b] = rec[:, 2]
            if "instance" in out:
                out["instance"][i, a:b] = rec[:, 3]
        if "rgb" not in out and "normal" not in out:
            return
        # The ray sees the back side of its face where it runs along the face's normal.
        dot = ng[:, 0] * dirs_t[0]
        tmp = ng[:, 1] * dirs_t[1]
        dot += tmp
        np.multiply(ng[:, 2], dirs_t[2], out=tmp)
        dot += tmp
        back = dot > 0
        if "rgb" in out:
            col = np.where(back, rec[:, 1], rec[:, 0]).view(np.uint32)
            if self._tex is not None:
                self._texture(col, back, f1, u, v)
            _store_rgb(out["rgb"][i, a:b], col)
        if "normal" in out:
            nrm = np.take(self._normals, f1, axis=0, mode="clip")
            nrm[back] *= -1.0
            np.dot(nrm, rot, out=out["normal"][i, a:b])  # world to camera: R^T n

    def _cast(self, org: np.ndarray, dirs: np.ndarray, tmax: np.ndarray, wearer: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Nearest hits on the static scene and the dynamic meshes ``wearer`` sees.

        Args:
            org, dirs: ``(M, 3)`` float32 origins and unit directions (any strides).
            tmax: ``(M,)`` float32 ray lengths; consumed (it becomes the returned tfar).
            wearer: index of the dynamic mesh wearing the camera, or -1.

        Returns:
            tfar, prim (face in the tables' numbering minus 1; -1 on a miss), Ng, u, v as
            :meth:`RayCaster.intersect_raw` returns them.
        """
        tfar, prim, ng, u, v = self.caster.intersect_raw(org, dirs, tmax)
        if self._meshes:
            caster, face_map = self._dyn_caster(wearer)
            td, pd, nd, ud, vd = caster.intersect_raw(org, dirs, tfar.copy())
            src = np.flatnonzero((pd >= 0) & (td < tfar))
            if len(src):
                tfar[src], ng[src], u[src], v[src] = td[src], nd[src], ud[src], vd[src]
                prim[src] = np.int32(self.scene.num_faces) + face_map[pd[src]]
        return tfar, prim, ng, u, v

    def _texture(self, col: np.ndarray, back: np.ndarray, f1: np.ndarray, u: np.ndarray,
                 v: np.ndarray) -> None:
        """Overwrite the packed colours ``col`` of rays that hit textured faces (those
        ``>= _TEXTURED``, see :meth:`_light_tables`): nearest texel x light of the side."""
        j = np.flatnonzero(col >= _TEXTURED)
        if len(j) == 0:
            return
        fj = f1.take(j, mode="clip")
        texel = self._texel_index(fj, u.take(j, mode="clip"), v.take(j, mode="clip"))
        if self._lit is not None:  # pre-lit copies: one gather
            base = col.take(j, mode="clip")
            base -= _TEXTURED
            texel += base.view(np.int32)
            col[j] = self._lit.take(texel, mode="clip")
            return
        row = np.take(back, j, mode="clip") * np.int32(len(self._alb))
        row += fj
        c = np.take(self.scene.atlas.texels, texel, axis=0, mode="clip").astype(np.float32)
        c *= np.take(self._light, row, axis=0, mode="clip")
        col[j] = _pack(_quantise(c * np.float32(1.0 / 255.0)))

    def _texture_tables(self) -> None:
        """Per textured face: an affine map from barycentrics to texel coordinates.

        ``_tex_affine[f + 1]`` is one 32-byte item, float32 ``[x0, y0, x1 - x0, y1 - y0,
        x2 - x0, y2 - y0, 0, 0]`` with corner texel coordinates ``x = s W``,
        ``y = (1 - t) H``, each face shifted by whole texture periods so its coordinates
        are >= 0 (truncation is then floor).
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
        # Padded to 32-byte rows: numpy gathers items of 32 bytes much faster than of 24.
        aff = np.zeros((f + 1, 8), np.float32)
        aff[1:, :6] = np.stack([x[:, 0], y[:, 0], x[:, 1] - x[:, 0], y[:, 1] - y[:, 0],
                                x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]], axis=1)
        self._tex_affine = aff.view("V32").reshape(-1)
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
        tabulated (packed uint32, ``_lit``) so that a textured pixel costs one gather,
        and ``_lit_group`` gives the start of each textured face side's copy (front sides
        first, then back sides). Otherwise ``_lit = None`` and texels are lit per pixel.
        """
        if self._lit_key == self._static_light_key:
            return
        faces = np.flatnonzero(self._tex)  # textured faces are static: same rows every frame
        rows = np.concatenate([faces, faces + len(self._alb)])
        key = np.round(self._light[rows] * 1024.0).astype(np.int32)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        texels = self.scene.atlas.texels
        self._lit, self._lit_group = None, (inv.reshape(-1) * len(texels)).astype(np.int32)
        if len(uniq) * len(texels) <= _LIT_MAX_TEXELS:
            lit = [_quantise(texels * (g / 1024.0 / 255.0)) for g in uniq.astype(np.float32)]
            self._lit = _pack(np.concatenate(lit))
        self._lit_key = self._static_light_key

    def _texel_index(self, fj: np.ndarray, uj: np.ndarray, vj: np.ndarray) -> np.ndarray:
        """Atlas index ``(M,)`` int32 of the nearest texel at barycentrics ``uj, vj`` of
        textured faces ``fj`` (table numbering), repeating."""
        a = self._tex_affine.take(fj, mode="clip").view(np.float32).reshape(-1, 8)
        x = uj * a[:, 2]  # x = x0 + u (x1 - x0) + v (x2 - x0), in place
        x += a[:, 0]
        tmp = vj * a[:, 4]
        x += tmp
        y = uj * a[:, 3]
        y += a[:, 1]
        np.multiply(vj, a[:, 5], out=tmp)
        y += tmp
        x, y = x.astype(np.int32), y.astype(np.int32)
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
        return y


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


def _pack(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``(..., 3)`` colours to uint32 ``(...)`` words ``r | g << 8 | b << 16``."""
    c = rgb.astype(np.uint32)
    return c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)


def _store_rgb(dst: np.ndarray, col: np.ndarray) -> None:
    """Unpack words ``col`` ``(M,)`` uint32 (see :func:`_pack`; overwritten) into ``dst``,
    a C-contiguous ``(M, 3)`` uint8 array: r and g as one little-endian 16-bit store per
    pixel, then b (two strided copies instead of a slow 3-byte gather)."""
    flat = dst.reshape(-1)
    rg = np.ndarray((len(col),), np.dtype("<u2"), buffer=flat, strides=(3,))
    np.copyto(rg, col, casting="unsafe")  # keeps the low 16 bits
    np.right_shift(col, 16, out=col)
    np.copyto(flat[2::3], col, casting="unsafe")
