"""``Renderer``: batched multi-camera rendering of a scene plus moving bodies.

Example::

    from egosim.sensors import CameraSpec, Renderer
    specs = [CameraSpec(uuid="rgb", modality="rgb"), CameraSpec(uuid="depth", modality="depth")]
    r = Renderer(scene)                          # backend="embree" by default
    obs = r.render(specs, cam_to_world)          # (N, 4, 4) -> obs["rgb"]: (N, H, W, 3) uint8
    obs["depth"], obs["depth_valid"]             # (N, H, W) float32 metres, (N, H, W) bool

``cam_to_world`` is the rig (head) pose in OpenCV axes; each spec's ``position`` and
``orientation_rpy`` place the sensor in that rig. Specs that share a geometry and a pose
in the rig (e.g. an RGB, a depth and a semantic spec of one camera) share their rays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from egosim.sensors.backend_embree import EmbreeBackend, GroupRequest
from egosim.sensors.camera import check_poses, sensor_extrinsic
from egosim.sensors.lighting import Lighting
from egosim.sensors.noise import apply_depth_noise, sub_poses_from_velocity
from egosim.sensors.scene_contract import DynamicMesh, SceneArrays
from egosim.sensors.spec import CameraSpec

__all__ = ["BACKENDS", "Renderer"]

BACKENDS: tuple[str, ...] = ("embree", "pybullet")


def _geometry_key(spec: CameraSpec) -> CameraSpec:
    """The part of a spec that defines its rays (camera frame)."""
    return spec.model_copy(update={
        "uuid": "_", "modality": "depth", "position": (0.0, 0.0, 0.0),
        "orientation_rpy": (0.0, 0.0, 0.0), "depth_noise": None, "motion_blur": None,
        "intrinsics": spec.focal_principal(), "intrinsics_jitter": None,
    })


class Renderer:
    """Renders :class:`CameraSpec` cameras at batches of poses.

    Args:
        scene: any object meeting :class:`~egosim.sensors.scene_contract.SceneLike`.
        backend: ``embree`` (default; Embree ray casting, every modality and projection)
            or ``pybullet`` (TinyRenderer reference: pinhole, rgb/depth/semantic/instance).
        lighting: RGB lighting; default :class:`Lighting` (); see :meth:`set_lighting`.
        seed: seed or ``numpy.random.Generator`` for noise, blur choice and intrinsics
            jitter when ``render`` gets no ``rng``.
        num_threads: ray-casting threads (embree), default all cores.
    """

    def __init__(self, scene: object, backend: str = "embree", lighting: Lighting | None = None,
                 seed=None, num_threads: int | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.scene = SceneArrays.from_scene(scene)
        self.backend_name = backend
        if backend == "embree":
            self.backend = EmbreeBackend(self.scene, num_threads=num_threads)
        else:
            from egosim.sensors.backend_pybullet import PybulletBackend

            self.backend = PybulletBackend(self.scene)
        self.lighting = lighting or Lighting()
        self.rng = np.random.default_rng(seed)
        self._meshes: list[DynamicMesh] = []

    def set_lighting(self, lighting: Lighting) -> None:
        """Use ``lighting`` from now on (e.g. ``Lighting.sample(seed)`` once per episode)."""
        if not isinstance(lighting, Lighting):
            raise TypeError(f"lighting must be a Lighting, got {type(lighting).__name__}")
        self.lighting = lighting

    def set_dynamic_meshes(self, meshes: Sequence[DynamicMesh | tuple]) -> None:
        """Replace the moving meshes shown in every camera (call once per frame).

        Args:
            meshes: :class:`DynamicMesh` objects or tuples ``(triangles (T, 3, 3),
                semantic, instance, albedo[, self_visible])``, world frame. Only their own
                small BVH is rebuilt; the static scene's is kept.
        """
        checked = []
        for k, m in enumerate(meshes):
            if not isinstance(m, DynamicMesh):
                if not isinstance(m, tuple) or not 3 <= len(m) <= 5:
                    raise TypeError(f"meshes[{k}] must be a DynamicMesh or a tuple (triangles, "
                                    "semantic, instance[, albedo[, self_visible]])")
                m = DynamicMesh(*m)
            checked.append(m.checked(k))
        self._meshes = checked
        self.backend.set_dynamic_meshes(checked)

    def close(self) -> None:
        """Release backend resources (the pybullet client)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def render(self, specs: CameraSpec | Sequence[CameraSpec], cam_to_world: np.ndarray, *,
               wearer: int | Sequence[int] | np.ndarray | None = None,
               velocity: np.ndarray | None = None, sub_poses: np.ndarray | None = None,
               rng=None) -> dict[str, np.ndarray]:
        """Render every spec at every pose.

        Args:
            specs: one spec or a sequence with distinct uuids.
            cam_to_world: ``(N, 4, 4)`` or ``(4, 4)`` rigid rig-to-world poses (OpenCV
                axes, metres).
            wearer: index (into the dynamic meshes) of the body wearing the rig, per pose
                (``(N,)``) or for all; -1 or None for none. That body's faces outside its
                ``self_visible`` mask are hidden in those poses.
            velocity: ``(N, 6)`` rig velocity (world linear m/s, angular rad/s), used by
                specs with ``motion_blur``.
            sub_poses: ``(N, S, 4, 4)`` rig poses over the exposure, used instead of
                ``velocity`` by specs with ``motion_blur``.
            rng: seed or Generator for this call's noise; default the renderer's own.

        Returns:
            ``{uuid: array}`` with the batch first (dropped for a single ``(4, 4)`` pose):
            rgb ``(N, H, W, 3)`` uint8; depth ``(N, H, W)`` float32 z-depth in metres (0 =
            invalid) plus ``f"{uuid}_valid"`` ``(N, H, W)`` bool; semantic / instance
            ``(N, H, W)`` int32 (-1 = nothing hit); normal ``(N, H, W, 3)`` float32 in the
            camera frame.
        """
        specs = self._check_specs(specs)
        poses, single = check_poses(cam_to_world)
        n = poses.shape[0]
        wear = self._check_wearer(wearer, n)
        g = self.rng if rng is None else np.random.default_rng(rng)

        requests: list[GroupRequest] = []
        index: dict[tuple, int] = {}
        where: list[int] = []
        for s in specs:
            if s.modality not in self.backend.modalities:
                raise ValueError(f"backend '{self.backend_name}' cannot render modality "
                                 f"'{s.modality}' (spec '{s.uuid}'); it supports "
                                 f"{sorted(self.backend.modalities)}")
            resolved = s.jittered(g) if s.intrinsics_jitter is not None else s
            geom = _geometry_key(resolved)
            key = (geom, s.position, s.orientation_rpy)
            if key not in index:
                index[key] = len(requests)
                requests.append(GroupRequest(geom, poses @ sensor_extrinsic(s), frozenset(),
                                             wear))
            q = requests[index[key]]
            q.want = q.want | {s.modality}
            where.append(index[key])

        blur_jobs = self._blur_jobs(specs, requests, where, poses, velocity, sub_poses, wear, g)
        results = self.backend.render(requests + [j[1] for j in blur_jobs], self.lighting)

        out: dict[str, np.ndarray] = {}
        blur_by_spec = {j[0]: (j[2], j[3], results[len(requests) + k])
                        for k, j in enumerate(blur_jobs)}
        for s, gi in zip(specs, where, strict=True):
            arr = results[gi][s.modality]
            if s.modality == "rgb":
                if s.uuid in blur_by_spec:
                    frames, samples, res = blur_by_spec[s.uuid]
                    arr = arr.copy()
                    blurred = res["rgb"].reshape((len(frames), samples) + arr.shape[1:])
                    arr[frames] = (blurred.astype(np.float32).mean(axis=1) + 0.5).astype(np.uint8)
            elif s.modality == "depth":
                valid = results[gi]["valid"]
                if s.depth_noise is not None:
                    arr, valid = apply_depth_noise(arr, valid, s.depth_noise, g)
                out[f"{s.uuid}_valid"] = valid
            out[s.uuid] = arr
        if single:
            out = {k: v[0] for k, v in out.items()}
        return out

    # -- helpers --------------------------------------------------------------------
    @staticmethod
    def _check_specs(specs) -> list[CameraSpec]:
        if isinstance(specs, CameraSpec):
            specs = [specs]
        specs = list(specs)
        if not specs:
            raise ValueError("specs must hold at least one CameraSpec")
        keys: set[str] = set()
        for k, s in enumerate(specs):
            if not isinstance(s, CameraSpec):
                raise TypeError(f"specs[{k}] must be a CameraSpec, got {type(s).__name__}")
            names = [s.uuid] + ([f"{s.uuid}_valid"] if s.modality == "depth" else [])
            for name in names:
                if name in keys:
                    raise ValueError(f"output key '{name}' is produced twice; uuids must differ")
                keys.add(name)
        return specs

    def _check_wearer(self, wearer, n: int) -> np.ndarray | None:
        if wearer is None:
            return None
        w = np.asarray(wearer)
        if w.ndim == 0:
            w = np.full(n, int(w))
        if w.shape != (n,) or not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"wearer must be an int or ({n},) ints, got shape {w.shape}")
        if np.any((w < -1) | (w >= len(self._meshes))):
            raise ValueError(f"wearer values must be -1 or in [0, {len(self._meshes) - 1}] "
                             f"(indices into the dynamic meshes), got {w.tolist()}")
        return w.astype(np.int64)

    def _blur_jobs(self, specs, requests, where, poses, velocity, sub_poses, wear, g):
        jobs = []
        for s, gi in zip(specs, where, strict=True):
            mb = s.motion_blur
            if mb is None:
                continue
            n = poses.shape[0]
            frames = np.nonzero(g.random(n) < mb.probability)[0]
            if sub_poses is not None:
                sub, _ = check_poses(np.asarray(sub_poses).reshape(-1, 4, 4), "sub_poses")
                if np.shape(sub_poses)[0] != n:
                    raise ValueError(f"sub_poses must have shape ({n}, S, 4, 4), "
                                     f"got {np.shape(sub_poses)}")
                sub = sub.reshape(n, -1, 4, 4)
            elif velocity is not None:
                sub = sub_poses_from_velocity(poses, velocity, mb.exposure_s, mb.samples)
            else:
                raise ValueError(f"spec '{s.uuid}' has motion_blur: pass velocity= or sub_poses=")
            if len(frames) == 0:
                continue
            k = sub.shape[1]
            q = requests[gi]
            w = None if wear is None else np.repeat(wear[frames], k)
            rig = sub[frames].reshape(-1, 4, 4)
            jobs.append((s.uuid, GroupRequest(q.geometry, rig @ sensor_extrinsic(s),
                                              frozenset({"rgb"}), w), frames, k))
        return jobs
