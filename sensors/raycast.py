"""Batched ray casting against a triangle soup, on the CPU, through Embree (``embreex``).

This is the one ray-casting kernel of the package: scene walkability (downward rays),
ego-sensing rays and the ``embree`` camera backend all call :class:`RayCaster`.
It knows triangles only, nothing about humans or tasks.

``embreex`` releases the GIL while Embree traverses its BVH, so a batch is split in
chunks over a small thread pool: on this project's 2-core machine two threads cast about
twice the rays of one.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from embreex import rtcore_scene as rtcs
from embreex.mesh_construction import TriangleMesh

__all__ = ["RayCaster", "RayHits", "default_num_threads"]

_MIN_CHUNK = 4096


def default_num_threads() -> int:
    """Threads used for ray casting: ``EGOSIM_RAY_THREADS`` or the number of CPU cores."""
    env = os.environ.get("EGOSIM_RAY_THREADS")
    if env:
        return max(1, int(env))
    return max(1, os.cpu_count() or 1)


@dataclass
class RayHits:
    """First hits of a batch of ``N`` rays.

    Attributes:
        t: ``(N,)`` float32, distance along the (unit) ray direction in metres; ``inf``
            where the ray hit nothing within its range.
        face: ``(N,)`` int64 index of the hit triangle; ``-1`` on a miss.
        normal: ``(N, 3)`` float32 unit geometric normal of the hit triangle, oriented by
            the triangle's winding ``(v1 - v0) x (v2 - v0)``; zeros on a miss.
        uv: ``(N, 2)`` float32 barycentric coordinates ``(u, v)`` of the hit (weights of
            ``v1`` and ``v2``); zeros on a miss.
    """

    t: np.ndarray
    face: np.ndarray
    normal: np.ndarray
    uv: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """``(N,)`` bool, True where the ray hit a triangle."""
        return self.face >= 0


class RayCaster:
    """Casts batches of rays against a fixed set of triangles.

    Args:
        triangles: ``(F, 3, 3)`` vertex positions in metres (any frame; hits come back in
            the same frame). Converted to float32. ``F`` may be 0 (every ray misses).
        num_threads: threads to split large batches over; default
            :func:`default_num_threads`.

    The BVH is built once here; build a new ``RayCaster`` when the triangles change
    (dynamic bodies get a caster of their own so the static scene is never rebuilt).
    """

    def __init__(self, triangles: np.ndarray, num_threads: int | None = None) -> None:
        tris = np.ascontiguousarray(np.asarray(triangles, dtype=np.float32))
        if tris.ndim != 3 or tris.shape[1:] != (3, 3):
            raise ValueError(f"triangles must have shape (F, 3, 3), got {tris.shape}")
        if not np.all(np.isfinite(tris)):
            raise ValueError("triangles contain NaN or inf")
        self._triangles = tris
        self.num_faces = int(tris.shape[0])
        self.num_threads = num_threads or default_num_threads()
        self._scene = None
        if self.num_faces:
            self._scene = rtcs.EmbreeScene()
            self._mesh = TriangleMesh(self._scene, tris)
        self._pool: ThreadPoolExecutor | None = None

    def _run(self, o: np.ndarray, d: np.ndarray, tmax: np.ndarray | None) -> dict:
        if tmax is None:
            return self._scene.run(o, d, output=1)
        return self._scene.run(o, d, dists=tmax, output=1)

    def intersect_raw(
        self, origins: np.ndarray, unit_directions: np.ndarray, tmax: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First hits without :meth:`cast`'s checks and post-processing (the hot path).

        Args:
            origins: ``(M, 3)`` float32 origins, metres; any strides (a stride-0 view of
                one origin shared by every ray works), writable buffer (only read).
            unit_directions: ``(M, 3)`` float32 UNIT directions (not checked); any strides.
            tmax: ``(M,)`` writable C-contiguous float32 maximum distances, metres; may be
                overwritten (Embree writes the hit distances into it and returns it as
                ``tfar``).

        Returns:
            ``tfar`` (float32 ``(M,)``, ``tmax`` on a miss), ``prim`` (int32, -1 on a miss),
            ``Ng`` (float32 ``(M, 3)`` unnormalised, winding-oriented normals), and the
            barycentric ``u``, ``v`` (float32). Runs on the calling thread.
        """
        m = origins.shape[0]
        if self._scene is None or m == 0:
            return (np.array(tmax, np.float32), np.full(m, -1, np.int32),
                    np.zeros((m, 3), np.float32), np.zeros(m, np.float32),
                    np.zeros(m, np.float32))
        res = self._run(origins, unit_directions, tmax)
        return res["tfar"], res["primID"], res["Ng"], res["u"], res["v"]

    def cast(
        self,
        origins: np.ndarray,
        directions: np.ndarray,
        tmax: float | np.ndarray | None = None,
    ) -> RayHits:
        """Cast ``N`` rays and return their first hits.

        Args:
            origins: ``(N, 3)`` ray origins, metres.
            directions: ``(N, 3)`` ray directions; normalised here, so ``t`` is metric.
            tmax: optional maximum distance (scalar or ``(N,)``), metres; farther hits
                are reported as misses.
        """
        o = np.ascontiguousarray(np.asarray(origins, dtype=np.float32).reshape(-1, 3))
        d = np.asarray(directions, dtype=np.float32).reshape(-1, 3)
        if o.shape != d.shape:
            raise ValueError(f"origins {o.shape} and directions {d.shape} differ in shape")
        n = o.shape[0]
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0) or not np.all(np.isfinite(norm)):
            raise ValueError("ray directions must be finite and non-zero")
        d = np.ascontiguousarray(d / norm)
        tm = None
        if tmax is not None:
            # A writable copy: Embree's binding refuses read-only buffers (broadcast views).
            tm = np.array(np.broadcast_to(np.asarray(tmax, np.float32), (n,)), np.float32)
        t = np.full(n, np.inf, np.float32)
        face = np.full(n, -1, np.int64)
        normal = np.zeros((n, 3), np.float32)
        uv = np.zeros((n, 2), np.float32)
        if n == 0 or self._scene is None:
            return RayHits(t, face, normal, uv)

        chunks = max(1, min(self.num_threads, n // _MIN_CHUNK))
        bounds = np.linspace(0, n, chunks + 1).astype(int)

        def work(i: int) -> None:
            a, b = bounds[i], bounds[i + 1]
            res = self._run(o[a:b], d[a:b], None if tm is None else tm[a:b])
            prim = res["primID"].astype(np.int64)
            ok = prim >= 0
            face[a:b] = prim
            t[a:b] = np.where(ok, res["tfar"], np.inf)
            ng = res["Ng"]
            nn = np.linalg.norm(ng, axis=1, keepdims=True)
            normal[a:b] = np.where(ok[:, None], ng / np.maximum(nn, 1e-30), 0.0)
            uv[a:b, 0] = np.where(ok, res["u"], 0.0)
            uv[a:b, 1] = np.where(ok, res["v"], 0.0)

        if chunks == 1:
            work(0)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.num_threads)
            list(self._pool.map(work, range(chunks)))
        return RayHits(t, face, normal, uv)

    def __getstate__(self) -> dict:
        # The Embree BVH is not picklable: ship the triangles and rebuild on arrival.
        return {"triangles": self._triangles, "num_threads": self.num_threads}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["triangles"], state["num_threads"])
