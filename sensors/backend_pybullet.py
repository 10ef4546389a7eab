"""Reference camera backend: pybullet's TinyRenderer (CPU rasteriser) on the same triangles.

The scene's triangles are loaded as mesh visual shapes, one body per (semantic,
instance) pair (split in chunks that fit pybullet's command buffer), so the segmentation
buffer (body ids) maps back to semantic and instance ids. Each body gets its faces' mean
albedo as a flat colour; textures are not uploaded, so its RGB is only indicative.

OpenCV intrinsics are turned into an OpenGL projection (pixel centres at integers; the
half-pixel offset of TinyRenderer's sampling is compensated), the OpenCV camera-to-world
into an OpenGL view matrix, and the non-linear depth buffer into metric z-depth:
``z = far * near / (far - (far - near) * d)``.

It renders pinhole cameras and the modalities rgb, depth, semantic and instance; it is
slow (one ``getCameraImage`` per pose and camera) and kept as the reference the tests
compare the Embree backend against.
"""

from __future__ import annotations

import numpy as np

from egosim.sensors.backend_embree import GroupRequest
from egosim.sensors.camera import intrinsics_matrix
from egosim.sensors.lighting import Lighting
from egosim.sensors.scene_contract import DynamicMesh, SceneArrays

__all__ = ["PybulletBackend", "gl_projection", "gl_view"]

_MAX_FACES = 15000  # per visual shape; pybullet rejects much larger vertex lists
# TinyRenderer's pixel samples sit half a pixel away from OpenCV's pixel centres (its
# rows count from the bottom edge, its columns from the left): shifting the principal
# point by (-0.5, +0.5) px makes its depth and coverage match ray casting through pixel
# centres exactly (measured on box scenes; see tests/test_sensors_pybullet.py).
_SAMPLE_OFFSET = (-0.5, 0.5)


def gl_projection(spec, offset: tuple[float, float] = _SAMPLE_OFFSET) -> np.ndarray:
    """``(4, 4)`` OpenGL projection matrix equivalent to a pinhole spec's intrinsics.

    NDC x runs from -1 at ``u = -0.5`` to +1 at ``u = W - 0.5``; NDC y from +1 at the top
    edge to -1 at the bottom edge; ``offset`` shifts the principal point (pixels) to match
    a rasteriser's sample positions.
    """
    k = intrinsics_matrix(spec)
    h, w = spec.resolution
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2] + offset[0], k[1, 2] + offset[1]
    n, f = spec.near, spec.far
    p = np.zeros((4, 4))
    p[0, 0] = 2.0 * fx / w
    p[0, 2] = 1.0 - 2.0 * (cx + 0.5) / w
    p[1, 1] = 2.0 * fy / h
    p[1, 2] = 2.0 * (cy + 0.5) / h - 1.0
    p[2, 2] = -(f + n) / (f - n)
    p[2, 3] = -2.0 * f * n / (f - n)
    p[3, 2] = -1.0
    return p


def gl_view(cam_to_world: np.ndarray) -> np.ndarray:
    """``(4, 4)`` OpenGL view (world to camera with y up, z backward) of an OpenCV pose."""
    return np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(cam_to_world)


class PybulletBackend:
    """TinyRenderer reference renderer, in its own ``p.DIRECT`` client."""

    name = "pybullet"
    modalities = frozenset({"rgb", "depth", "semantic", "instance"})

    def __init__(self, scene: SceneArrays) -> None:
        import pybullet as p

        self._p = p
        self.client = p.connect(p.DIRECT)
        self.scene = scene
        self._body_ids: dict[int, tuple[int, int]] = {}
        self._dynamic_bodies: list[int] = []
        self._load(scene.triangles, scene.semantic, scene.instance, scene.albedo, dynamic=False)
        self._lut_dirty = True

    def close(self) -> None:
        """Disconnect the pybullet client."""
        if self.client is not None and self._p.isConnected(self.client):
            self._p.disconnect(self.client)
        self.client = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _load(self, tris, sem, ins, alb, dynamic: bool) -> None:
        p = self._p
        keys = np.stack([sem, ins], axis=1)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
        for g, (s, i) in enumerate(uniq):
            faces = order[bounds[g]:bounds[g + 1]]
            rgba = list(alb[faces].mean(axis=0)) + [1.0]
            for c in range(0, len(faces), _MAX_FACES):
                chunk = tris[faces[c:c + _MAX_FACES]].reshape(-1, 3).astype(np.float64)
                verts, idx = np.unique(chunk, axis=0, return_inverse=True)
                vs = p.createVisualShape(p.GEOM_MESH, vertices=verts.tolist(),
                                         indices=idx.reshape(-1).astype(int).tolist(),
                                         rgbaColor=rgba, physicsClientId=self.client)
                body = p.createMultiBody(baseMass=0, baseVisualShapeIndex=vs,
                                         physicsClientId=self.client)
                self._body_ids[body] = (int(s), int(i))
                if dynamic:
                    self._dynamic_bodies.append(body)

    def set_dynamic_meshes(self, meshes: list[DynamicMesh]) -> None:
        """Replace the dynamic meshes: removes their old bodies and creates new ones."""
        for b in self._dynamic_bodies:
            self._p.removeBody(b, physicsClientId=self.client)
            self._body_ids.pop(b, None)
        self._dynamic_bodies = []
        for m in meshes:
            t = m.triangles.shape[0]
            self._load(m.triangles, np.full(t, m.semantic), np.full(t, m.instance), m.albedo,
                       dynamic=True)
        self._lut_dirty = True

    def _luts(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lut_dirty:
            size = max(self._body_ids, default=0) + 2
            self._sem_lut = np.full(size, -1, np.int32)
            self._ins_lut = np.full(size, -1, np.int32)
            for b, (s, i) in self._body_ids.items():
                self._sem_lut[b + 1], self._ins_lut[b + 1] = s, i
            self._lut_dirty = False
        return self._sem_lut, self._ins_lut

    def render(self, requests: list[GroupRequest], lighting: Lighting) -> list[dict]:
        """Same contract as :meth:`EmbreeBackend.render` (pinhole, no normals, no wearer)."""
        p = self._p
        sem_lut, ins_lut = self._luts()
        out = []
        for q in requests:
            g = q.geometry
            if g.projection != "pinhole":
                raise ValueError("backend 'pybullet' supports projection 'pinhole' only, "
                                 f"got '{g.projection}'")
            if q.wearer is not None and np.any(q.wearer >= 0):
                raise ValueError("backend 'pybullet' does not support wearer= (hidden bodies)")
            h, w = g.resolution
            n = q.poses.shape[0]
            proj = gl_projection(g).T.reshape(-1).tolist()
            res = {k: [] for k in ("depth", "valid", "rgb", "semantic", "instance")}
            for pose in q.poses:
                view = gl_view(pose).T.reshape(-1).tolist()
                _, _, rgb, dbuf, seg = p.getCameraImage(
                    w, h, viewMatrix=view, projectionMatrix=proj,
                    renderer=p.ER_TINY_RENDERER, shadow=0,
                    lightDirection=list(-np.asarray(lighting.direction)),
                    lightColor=list(lighting.light_color),
                    lightAmbientCoeff=lighting.ambient, lightDiffuseCoeff=lighting.diffuse,
                    lightSpecularCoeff=0.0, physicsClientId=self.client)
                dbuf = np.asarray(dbuf, np.float64).reshape(h, w)
                seg = np.asarray(seg, np.int64).reshape(h, w)
                hit = (seg >= 0) & (dbuf < 1.0)
                z = g.far * g.near / (g.far - (g.far - g.near) * dbuf)
                res["depth"].append(np.where(hit, z, 0.0).astype(np.float32))
                res["valid"].append(hit)
                seg = np.where(hit, seg & ((1 << 24) - 1), -1)
                res["semantic"].append(sem_lut[seg + 1])
                res["instance"].append(ins_lut[seg + 1])
                rgb = np.asarray(rgb, np.uint8).reshape(h, w, 4)[..., :3]
                res["rgb"].append(rgb.copy())
            want = set(q.want) | ({"valid"} if "depth" in q.want else set())
            out.append({k: np.stack(v).reshape((n,) + v[0].shape) for k, v in res.items()
                        if k in want})
        return out
