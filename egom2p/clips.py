"""EgoM2P's 2-second multimodal clips, cut from the head-camera streams of simulated humans.

:class:`ClipBuilder` runs the batched simulation (:class:`egosim.envs.simulation.Simulation`,
``worlds`` scenes of 1-4 humans stepped together, the humans driven by the configured
controller) and turns what it simulated (its per-frame rollout seam,
:meth:`~egosim.envs.simulation.Simulation.add_step_hook`) into clips: each human's head
camera (:class:`egosim.sensors.HeadRecorder`: at the eyes, turning with the head) renders its
view of the scene and of the other humans (posed SMPL-X bodies as coarse
:class:`~egosim.envs.humans.body_proxy.BodyProxy` meshes in their appearance colours), and its
eyes look at what it attends to.

Clip layout (``T`` = ``pose_samples`` = 60, ``K`` = ``video_frames`` = 16, ``S`` =
``video_size``; modalities not in ``modalities`` are left out):

==============  ======================  ===================================================
key             shape, dtype            meaning
==============  ======================  ===================================================
rgb             (K, S, S, 3) uint8      head-camera video
depth           (K, S, S) float32       z-depth, metres, 0 = no hit (or dropped by noise)
camera          (T, 4, 4) float64       OpenCV camera-to-world poses made canonical:
                                        ``inv(P_0) @ P_j`` (``camera[0]`` is the identity)
camera_9d       (T, 9) float32          :func:`egosim.egom2p.camera_9d.camera_9d`: first two
                                        rotation columns and translation, z-scored with the
                                        shipped statistics
video_camera    (K, 4, 4) float64       the pose of each video frame, same canonical frame
gaze            (T, 2) float32          gaze point in the video camera, [-1, 1] (-1 = left /
                                        top edge: ``2 (u + 0.5) / S - 1``); 0 where invalid
gaze_valid      (T,) bool               gaze in front of the camera and inside the image
intrinsics      (3, 3) float64          ``K`` of the video camera at ``S`` (jittered when
                                        ``augment.intrinsics_jitter``)
video_times     (K,) float64            seconds since the clip start: ``k / video_fps``
pose_times      (T,) float64            seconds since the clip start: ``j / pose_fps``
meta            dict                    ``scene_spec``, ``scene_seed`` (-1: none),
                                        ``world``, ``human``, ``humans``, ``human_id``,
                                        ``episode``, ``segment``, ``start_s`` (clip start,
                                        seconds since the episode start), ``seed``,
                                        ``worker``, ``index``, ``controller``, and
                                        ``attention`` (``kind``, ``instance``,
                                        ``eye_state``: ``(T,)`` per gaze sample)
==============  ======================  ===================================================

With ``ClipBuilder(hmr=True)`` a clip also holds ``hmr``, a dict of human-mesh-recovery
labels of the other humans per video frame (:mod:`egosim.egom2p.datasets.hmr`).

``camera`` and ``camera_9d`` come with modality ``camera`` (with ``video_camera``);
``gaze`` and ``gaze_valid`` with ``gaze``; ``intrinsics``, the times and ``meta`` always.

**Clock.** A clip is ``seconds`` (2 s) of motion: 80 consecutive simulated frames at 40 fps
(``f0 .. f0 + 79``, frame 0 the episode's start pose), on one clock starting at the clip's
first frame. Video frame ``k`` is the simulated frame ``f0 + 5 k`` (40 / 8 = 5, exact: its
pose and its bodies are the simulated ones, ``video_camera[k]``). Camera pose and gaze
sample ``j`` is at ``j / 30`` s, between simulated frames: its pose is interpolated from the
40 fps head-camera poses (:func:`egosim.sensors.resample_poses`: slerp of the rotations,
linear translations), its eye positions linearly. Video frames and pose samples share
instants every 0.5 s (``k = 4 m``, ``j = 15 m``).

**Episodes.** A worker simulates ``worlds`` scenes of ``N`` humans, ``N`` drawn per episode
from ``humans``; scenes come from the worker's pool (``scene``). An episode gives each human
``clips_per_episode`` consecutive clips (a human reaching its goal gets a new one at once,
so it keeps walking); clips never straddle a reset. A wearer whose pelvis is, at any frame
of the segment, over no floor (:meth:`~egosim.envs.scenes.Scene.has_floor`: it walked
through a wall out of the building and sees nothing) gives no clip for that segment
(counted in ``clips_dropped``); once half the wearers of a segment are lost so, the
episode ends early. Within a segment (one clip time window)
clips are ordered world by world, human by human.

**Rendering.** Each (wearer, video frame) is rendered with its own dynamic meshes: the
other humans whose bounding spheres meet the view frustum (coarse posed bodies,
``proxy_cell_m``, instance ``1000 + i``) and, with ``self_body``, the wearer's own hands and
feet when they are in view; a wearer's frames without any are rendered in one batched
call. RGB and depth share their rays (one call renders both).

**Gaze** (attention rule, seeded by the clip's own generator). A human's gaze is a sequence
of *looks*, each lasting a Gamma(2, mean ``attention.look_mean_s``) time. At the start of
a look, the candidates are: *path*, the route point ``path_ahead_m`` ahead along the
human's route, on the floor (else the first of 1.5, 2, 0.75, 0.5 times that distance in
view and in line of sight, :data:`PATH_FRACTIONS`); *goal*, the current goal on the
floor; *person*, another human's head within ``person_max_m``; *object*, a scene object
(furniture class) within ``object_max_m``, looked at on the surface point its centre's
ray hits. A candidate must project within
``view_margin`` of the image half-size and be in line of sight of the eyes (the scene, not
the other humans, occludes). A kind is drawn with the ``*_weight`` weights among the kinds
with candidates, then one of its candidates uniformly; with none, the eyes look at what
the camera's optical axis hits (kind *ahead*). People are tracked as they move; other
targets are fixed points. A look ends early when its target leaves the image. The eye
model (:class:`egosim.sensors.EyeModel`, unless ``attention.eye_model`` is false) adds
fixational drift, pursuit and saccades around the target track. ``meta["attention"]``:
``kind`` int8 (:data:`ATTENTION_KINDS` index), ``instance`` int32 (scene instance or
``1000 + i`` for human ``i`` of the world, as rendered; -1 unknown), ``eye_state`` int8
(``egosim.sensors.gaze`` FIXATION / SACCADE / PURSUIT).

**Randomness.** Clip ``i`` of worker ``w`` under base seed ``s``: its gaze generators come
from ``SeedSequence([s, w, 0, i])``; episode ``j``'s (starts, goals, seed motions, humans per
scene, controller seed, lighting and appearance, goal renewals) from ``SeedSequence([s, w,
1, j])``; the scene pool from ``SeedSequence([s, w, 2])``; sensor noise of world ``e`` in
segment ``t`` of episode ``j`` from ``SeedSequence([s, w, 3, j, t, e])``. A builder keeps its
simulation, scenes and renderers across clips, so clip ``i`` is a pure function of ``(s, w,
i)`` for a builder that made clips ``0 .. i - 1`` before it (the stream's workers do);
torch runs on one thread while the builder steps (the same bytes in any process).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from egosim.egom2p.camera_9d import camera_9d
from egosim.egom2p.config import MOTION_FPS, AttentionSection, ClipConfig

__all__ = ["ATTENTION_KINDS", "STAGES", "Attention", "ClipBuilder", "Scenery", "attend",
           "load_controller", "resolve_clip_config"]

#: Attention kinds, by their code in ``meta["attention"]["kind"]``.
ATTENTION_KINDS: tuple[str, ...] = ("path", "goal", "person", "object", "ahead")
#: Timed stages of the builder (seconds in :attr:`ClipBuilder.times`).
STAGES: tuple[str, ...] = ("scene", "policy", "motion", "skin", "render", "gaze", "assemble")
#: Semantic classes a human may look at as objects.
OBJECT_CLASSES: tuple[str, ...] = ("table", "chair", "sofa", "bed", "shelf", "cabinet",
                                   "plant", "lamp", "object")
#: Route points looked at, in order of preference: these fractions of ``path_ahead_m``.
PATH_FRACTIONS: tuple[float, ...] = (1.0, 1.5, 2.0, 0.75, 0.5)
_HEAD_BACK_M = 0.05  # a head's gaze target: this far behind the eye midpoint
_BUFFER_KEYS = ("markers", "joints", "eyes", "global_orient", "body_pose", "transl")


def resolve_clip_config(config: ClipConfig | str | dict | None = None,
                        overrides: Sequence[str] | dict[str, Any] | None = None) -> ClipConfig:
    """A validated :class:`ClipConfig`: None (the defaults), a shipped config name or YAML
    path, a dict, or a config; ``overrides`` are dotted ``key=value`` items.

    Raises:
        egosim.config.ConfigError: unknown key or bad value (names the key and the rule).
    """
    from egosim.envs.env_base import resolve_config

    if isinstance(overrides, tuple):
        overrides = list(overrides)
    return resolve_config(config, overrides, ClipConfig)


def load_controller(path: str) -> Callable[..., Callable[[dict[str, np.ndarray]], np.ndarray]]:
    """The controller factory at ``'module:attribute'`` (imported by name).

    Raises:
        ValueError: the module or attribute does not exist (names the config key).
    """
    from egosim.config import import_callable

    return import_callable(path, "controller")


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)


# -- attention --------------------------------------------------------------------------


@dataclass
class Scenery:
    """What one wearer can look at during a clip, on the pose clock (``T`` samples).

    Attributes:
        path: ``(T, P, 3)`` route points ahead (m, world, on the floor), preferred first.
        goal: ``(T, 3)`` the current goal (m, world, on the floor).
        people: ``(J, T, 3)`` other humans' head points (m, world).
        people_ids: ``(J,)`` their instance ids as rendered.
        objects: ``(O, 3)`` scene objects' centres (m, world).
        object_ids: ``(O,)`` their instance ids.
    """

    path: np.ndarray
    goal: np.ndarray
    people: np.ndarray
    people_ids: np.ndarray
    objects: np.ndarray
    object_ids: np.ndarray


@dataclass
class Attention:
    """Look-at targets of one wearer on the pose clock.

    Attributes:
        target: ``(T, 3)`` float64 world points (m) the eyes aim at.
        kind: ``(T,)`` int8 index into :data:`ATTENTION_KINDS`.
        instance: ``(T,)`` int32 instance id of the target (-1 unknown).
    """

    target: np.ndarray
    kind: np.ndarray
    instance: np.ndarray


def _project(points: np.ndarray, pose: np.ndarray, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """``points (M, 3)`` world -> ``(xy (M, 2) in [-1, 1], valid (M,))`` in camera ``pose``."""
    from egosim.sensors import gaze_points_2d

    p = np.asarray(points, np.float64).reshape(-1, 3)
    return gaze_points_2d(p, np.broadcast_to(pose, (len(p), 4, 4)), spec)


def _in_view(points: np.ndarray, pose: np.ndarray, spec: Any, margin: float) -> np.ndarray:
    xy, ok = _project(points, pose, spec)
    with np.errstate(invalid="ignore"):
        return ok & (np.abs(xy) <= margin).all(axis=1)


def _sight(caster: Any, eye: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays eye -> points: ``(free (M,), hit face (M,))``; free: nothing static before the
    point (within 5 cm); the face is the first hit up to 5 cm past it (-1: none)."""
    d = np.asarray(points, np.float64) - eye
    dist = np.linalg.norm(d, axis=1)
    hits = caster.cast(np.broadcast_to(eye, d.shape), d, dist + 0.05)
    return hits.t >= dist - 0.05, hits.face


def attend(poses: np.ndarray, spec: Any, scenery: Scenery, caster: Any,
           face_instance: np.ndarray, cfg: AttentionSection, fps: float,
           rng: np.random.Generator) -> Attention:
    """The attention rule of the module docstring ("Gaze") for one wearer.

    Args:
        poses: ``(T, 4, 4)`` camera-to-world poses of the pose clock (OpenCV, m).
        spec: the video camera (``egosim.sensors.CameraSpec``; view tests project into it).
        scenery: the candidates.
        caster: a ``egosim.sensors.RayCaster`` of the static scene (line of sight).
        face_instance: ``(F,)`` instance id of each of the caster's faces.
        cfg: the rule's parameters.
        fps: the pose clock's rate (Hz).
        rng: the look durations' and choices' generator.
    """
    t_len = len(poses)
    target = np.zeros((t_len, 3))
    kind = np.full(t_len, -1, np.int8)
    inst = np.full(t_len, -1, np.int32)
    weights = {0: cfg.path_weight, 1: cfg.goal_weight, 2: cfg.person_weight,
               3: cfg.object_weight}
    k = 0
    while k < t_len:
        pose = poses[k]
        eye = pose[:3, 3]
        cands: dict[int, list[tuple[np.ndarray, int]]] = {}  # kind -> [(track (T,3), id)]

        def fixed(p: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.asarray(p, np.float64), (t_len, 3))

        if weights[0] > 0 and scenery.path.shape[1]:
            pts = scenery.path[k]
            ok = _in_view(pts, pose, spec, cfg.view_margin)
            if ok.any():
                free, face = _sight(caster, eye, pts[ok])
                if free.any():
                    m = int(np.argmax(free))
                    cands[0] = [(fixed(pts[ok][m]), int(face_instance[face[m]])
                                 if face[m] >= 0 else -1)]
        if weights[1] > 0 and _in_view(scenery.goal[k:k + 1], pose, spec, cfg.view_margin)[0]:
            free, face = _sight(caster, eye, scenery.goal[k:k + 1])
            if free[0]:
                cands[1] = [(fixed(scenery.goal[k]),
                             int(face_instance[face[0]]) if face[0] >= 0 else -1)]
        if weights[2] > 0 and len(scenery.people):
            heads = scenery.people[:, k]
            near = np.linalg.norm(heads - eye, axis=1) <= cfg.person_max_m
            ok = near & _in_view(heads, pose, spec, cfg.view_margin)
            if ok.any():
                free, _ = _sight(caster, eye, heads[ok])
                idx = np.nonzero(ok)[0][free]
                if len(idx):
                    cands[2] = [(scenery.people[j], int(scenery.people_ids[j])) for j in idx]
        if weights[3] > 0 and len(scenery.objects):
            near = np.linalg.norm(scenery.objects - eye, axis=1) <= cfg.object_max_m
            ok = near & _in_view(scenery.objects, pose, spec, cfg.view_margin)
            if ok.any():
                idx = np.nonzero(ok)[0]
                d = scenery.objects[idx] - eye
                hits = caster.cast(np.broadcast_to(eye, d.shape), d,
                                   np.linalg.norm(d, axis=1) + 1.0)
                seen = hits.face >= 0
                seen[seen] = face_instance[hits.face[seen]] == scenery.object_ids[idx][seen]
                if seen.any():
                    dn = d / np.linalg.norm(d, axis=1, keepdims=True)
                    surf = eye + dn * hits.t[:, None]
                    cands[3] = [(fixed(surf[m]), int(scenery.object_ids[idx[m]]))
                                for m in np.nonzero(seen)[0]
                                if _in_view(surf[m:m + 1], pose, spec, cfg.view_margin)[0]]
                    if not cands[3]:
                        del cands[3]
        if cands:
            kinds = sorted(cands)
            w = np.array([weights[c] for c in kinds], np.float64)
            if w.sum() <= 0:
                w = np.ones(len(kinds))
            chosen = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
            track, ident = cands[chosen][int(rng.integers(len(cands[chosen])))]
        else:  # nothing to look at: what the optical axis hits
            chosen = 4
            z = pose[:3, 2]
            hit = caster.cast(eye[None], z[None], 20.0)
            dist = float(hit.t[0]) if np.isfinite(hit.t[0]) else 5.0
            track = fixed(eye + z * dist)
            ident = int(face_instance[hit.face[0]]) if hit.face[0] >= 0 else -1
        steps = max(1, int(round(rng.gamma(2.0, cfg.look_mean_s / 2.0) * fps)))
        end = min(t_len, k + steps)
        if end - k > 1:  # end the look early once its target leaves the image
            _, seen = _project_track(track[k + 1:end], poses[k + 1:end], spec)
            if not seen.all():
                end = k + 1 + int(np.argmin(seen))
        target[k:end] = track[k:end]
        kind[k:end] = chosen
        inst[k:end] = ident
        k = end
    return Attention(target, kind, inst)


def _project_track(points: np.ndarray, poses: np.ndarray, spec: Any
                   ) -> tuple[np.ndarray, np.ndarray]:
    from egosim.sensors import gaze_points_2d

    if not len(points):
        return np.zeros((0, 2)), np.zeros(0, bool)
    return gaze_points_2d(points, poses, spec)


# -- the builder ------------------------------------------------------------------------


def _interp_rows(a: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``a (F, ...)`` at fractional frame indices ``u (T,)``."""
    i0 = np.clip(np.floor(u).astype(np.int64), 0, len(a) - 1)
    i1 = np.minimum(i0 + 1, len(a) - 1)
    w = (u - i0).reshape((-1,) + (1,) * (a.ndim - 1))
    return (1.0 - w) * a[i0] + w * a[i1]


class _Buffer:
    """Per-frame arrays of every human of one simulation since the segment start."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []
        self.start = 0
        self.count = 0

    def clear(self, start: dict[str, np.ndarray]) -> None:
        self.chunks, self.start, self.count = [start], 0, 1

    def add(self, chunk: dict[str, np.ndarray]) -> None:
        self.chunks.append(chunk)
        self.count += next(iter(chunk.values())).shape[1]

    def take(self, first: int, n: int) -> dict[str, np.ndarray]:
        """Frames ``first .. first + n - 1`` (episode frame numbers); frames before
        ``first + n`` are dropped from the buffer."""
        whole = {k: np.concatenate([c[k] for c in self.chunks], axis=1)
                 for k in self.chunks[0]}
        a = first - self.start
        out = {k: v[:, a:a + n] for k, v in whole.items()}
        keep = first + n - self.start
        self.chunks = [{k: v[:, keep:] for k, v in whole.items()}]
        self.start += keep
        self.count -= keep
        return out


@dataclass
class _World:
    """One world's episode extras (the simulation's :class:`World` holds the rest)."""

    spec: str
    seed: int | None
    renew_rng: np.random.Generator
    colors: np.ndarray  # (N, F', 3) proxy face colours
    lighting: Any


class ClipBuilder:
    """Makes clips without end (see the module docstring).

    Args:
        config: a :class:`ClipConfig`, a shipped config name or YAML path, a dict, or None
            (the defaults).
        overrides: dotted ``key=value`` overrides of ``config``.
        seed: the base seed ``s``.
        worker: the worker index ``w`` (streams of different workers differ).
        threads: ray-casting threads of the renderers (torch always gets one).
        extra_views: additional ``CameraSpec`` modalities of the video camera to put in each
            clip under their name (``"instance"``, ``"semantic"``: ``(K, S, S)`` int32;
            ``"normal"``), e.g. for tests and previews.
        hmr: add ``clip["hmr"]``, human-mesh-recovery labels of the other humans in each
            video frame (SMPL-X parameters and joints in the camera frame, 2-D joints with
            visibility, instance masks and boxes: :mod:`egosim.egom2p.datasets.hmr`); the
            other keys are the same bytes as without it.

    Attributes:
        cfg: the resolved config.
        times: seconds spent per stage (:data:`STAGES`) since construction.
        clips_made: clips returned so far.
        clips_dropped: clips not made because their wearer's pelvis was, at some frame,
            over no floor (it walked out of the building: its view is of nothing).
    """

    def __init__(self, config: ClipConfig | str | dict | None = None,
                 overrides: Sequence[str] | dict[str, Any] | None = None, *, seed: int = 0,
                 worker: int = 0, threads: int = 1, extra_views: Sequence[str] = (),
                 hmr: bool = False) -> None:
        from egosim.envs.config import LocomotionEnvConfig
        from egosim.envs.env_base import resolve_config
        from egosim.sensors import CameraSpec

        if seed < 0 or worker < 0:
            raise ValueError(f"seed and worker must be >= 0; got {seed}, {worker}")
        self.cfg = resolve_clip_config(config, overrides)
        cfg = self.cfg
        self.seed, self.worker, self.threads = int(seed), int(worker), int(threads)
        env = resolve_config(cfg.env, cfg.env_overrides, LocomotionEnvConfig)
        steps = -(-cfg.clips_per_episode * cfg.motion_frames // 18) + 1
        self.env_cfg = env.model_copy(update={
            "scene": env.scene.model_copy(update={
                "options": dict(cfg.scene.options),
                "cache_size": max(env.scene.cache_size, cfg.scene.pool_size + cfg.worlds)}),
            "reward": env.reward.model_copy(update={"penetration_vertices": 16}),
            "episode": env.episode.model_copy(update={
                "max_steps": max(env.episode.max_steps, steps)}),
            "cameras": env.cameras.model_copy(update={"specs": []})}, deep=True)
        self.factory = load_controller(cfg.controller)
        s = cfg.video_size
        common = {"resolution": (s, s), "hfov_deg": cfg.hfov_deg, "near": cfg.near_m,
                  "far": cfg.far_m}
        self._rgb = CameraSpec(uuid="rgb", modality="rgb", **common)
        self._depth = CameraSpec(uuid="depth", modality="depth", **common)
        self._extra = tuple(CameraSpec(uuid=m, modality=m, **common) for m in extra_views)
        self.hmr = bool(hmr)
        self.times = dict.fromkeys(STAGES, 0.0)
        self.clips_made = 0
        self.clips_dropped = 0
        self._sims: dict[int, Any] = {}
        self._buffers: dict[int, _Buffer] = {}
        self._routes_seen: dict[int, list[Any]] = {}
        self._renderers: OrderedDict[tuple, Any] = OrderedDict()
        self._objects: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._proxy: Any = None
        self._queue: deque[dict[str, Any]] = deque()
        self._episode = -1
        self._segment = 0
        self._lost = 0  # wearers of this episode's last segment over no floor
        self._sim: Any = None
        self._worlds: list[_World] = []
        self._controller: Any = None
        self._pending_start: dict[str, np.ndarray] = {}
        self._pool_rng = np.random.default_rng(np.random.SeedSequence([self.seed,
                                                                       self.worker, 2]))
        self._pool = [self._draw_scene() for _ in range(cfg.scene.pool_size)]

    # -- public -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Clips without end."""
        while True:
            yield self.next_clip()

    def next_clip(self) -> dict[str, Any]:
        """The next clip (see the module docstring for its layout)."""
        while not self._queue:
            with _torch_threads(1):
                self._next_segment()
        self.clips_made += 1
        return self._queue.popleft()

    @property
    def modalities(self) -> tuple[str, ...]:
        """The configured modalities."""
        return tuple(self.cfg.modalities)

    def warm_up(self) -> None:
        """Build every scene of the pool now (geometry, walk map, SDF, renderer), instead of
        on first use (timed as stage ``scene``); clips are the same either way."""
        from egosim.envs import resources

        t0 = time.perf_counter()
        sc = self.env_cfg.scene
        for spec, seed in self._pool:
            scene = resources.get_scene(spec, seed, sc.options, sc.cache_size)
            _ = scene.walkable, scene.sdf_grid
            self._renderer(scene, (spec, seed, repr(sorted(self.cfg.scene.options.items()))))
        self.times["scene"] += time.perf_counter() - t0

    def close(self) -> None:
        """Release the renderers."""
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()

    # -- scenes -------------------------------------------------------------------------
    def _draw_scene(self) -> tuple[str, int | None]:
        sc = self.cfg.scene
        spec = sc.specs[int(self._pool_rng.integers(len(sc.specs)))]
        seed = int(self._pool_rng.integers(*sc.seed_range))
        return spec, (seed if spec.startswith("procedural:") else None)

    def _renderer(self, scene: Any, key: tuple) -> Any:
        from egosim.sensors import Renderer

        if key in self._renderers:
            self._renderers.move_to_end(key)
            return self._renderers[key]
        r = Renderer(scene, num_threads=self.threads)
        self._renderers[key] = r
        while len(self._renderers) > self.cfg.scene.pool_size + self.cfg.worlds:
            self._renderers.popitem(last=False)[1].close()
        return r

    def _scene_objects(self, scene: Any, key: tuple) -> tuple[np.ndarray, np.ndarray]:
        """``(centres (O, 3), instance ids (O,))`` of a scene's objects (area-weighted
        triangle centroids per instance of the :data:`OBJECT_CLASSES`)."""
        if key not in self._objects:
            from egosim.envs.scenes import class_id

            classes = np.array([class_id(c) for c in OBJECT_CLASSES])
            tri = np.asarray(scene.triangles, np.float64)
            inst = np.asarray(scene.face_instance)
            pick = np.isin(np.asarray(scene.face_semantic), classes) & (inst > 0)
            area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]),
                                        axis=1)
            ids = np.unique(inst[pick])
            cent = tri.mean(axis=1)
            centres = np.array([np.average(cent[inst == i], axis=0,
                                           weights=area[inst == i] + 1e-12) for i in ids])
            self._objects[key] = (centres.reshape(-1, 3), ids.astype(np.int32))
        return self._objects[key]

    def _body_proxy(self, sim: Any) -> Any:
        if self._proxy is None:
            from egosim.envs.humans.body_proxy import BodyProxy

            self._proxy = BodyProxy(sim.prior.body.faces, self.cfg.proxy_cell_m)
        return self._proxy

    # -- episodes -----------------------------------------------------------------------
    def _simulation(self, n: int) -> Any:
        if n not in self._sims:
            from egosim.envs.simulation import Simulation

            sim = Simulation(self.env_cfg.model_copy(deep=True), self.cfg.worlds, n,
                             min_separation=self.cfg.min_separation_m if n > 1 else 0.0)
            buf = _Buffer()
            sim.add_reset_hook(lambda s, r, b=buf: self._on_reset(s, r, b))
            sim.add_step_hook(lambda s, r, b=buf: b.add(self._frames(s, r)))
            self._sims[n], self._buffers[n] = sim, buf
        return self._sims[n]

    def _new_episode(self) -> None:
        from egosim.envs.humans.body_proxy import sample_face_colors
        from egosim.sensors import Lighting

        t0 = time.perf_counter()
        cfg = self.cfg
        self._episode += 1
        self._segment = 0
        self._lost = 0
        j = self._episode
        if cfg.scene.refresh_episodes and j and j % cfg.scene.refresh_episodes == 0:
            slot = (j // cfg.scene.refresh_episodes - 1) % cfg.scene.pool_size
            self._pool[slot] = self._draw_scene()
        top_seq, ctrl_seq, *world_seqs = np.random.SeedSequence(
            [self.seed, self.worker, 1, j]).spawn(2 + cfg.worlds)
        top = np.random.default_rng(top_seq)
        lo, hi = cfg.humans
        n = int(top.integers(lo, hi + 1))
        sim = self._simulation(n)
        self._sim = sim
        self._buffers[n].chunks = []
        self._pending_start = {}
        worlds = []
        proxy = self._body_proxy(sim)
        for e in range(cfg.worlds):
            reset_seq, renew_seq, look_seq = world_seqs[e].spawn(3)
            spec, seed = self._pool[int(top.integers(len(self._pool)))]
            sim.cfg.scene.spec = spec
            sim.cfg.scene.seed = seed
            sim.reset_worlds([e], [np.random.default_rng(reset_seq)])
            look = np.random.default_rng(look_seq)
            colors = (sample_face_colors(proxy, n, look) if cfg.augment.appearance else
                      np.full((n, len(proxy.faces), 3), 0.6))
            light = Lighting.sample(look) if cfg.augment.random_light else Lighting()
            worlds.append(_World(spec, seed, np.random.default_rng(renew_seq), colors, light))
        self._worlds = worlds
        self._buffers[n].clear(self._pending_start)
        ctrl_seed = int(ctrl_seq.generate_state(1)[0])
        self.times["scene"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        self._controller = self.factory(sim, ctrl_seed, **cfg.controller_options)
        self.times["policy"] += time.perf_counter() - t0

    def _on_reset(self, sim: Any, rollout: Any, buf: _Buffer) -> None:
        """Keep the start pose (frame 0) of the reset world's humans."""
        one = self._frames(sim, rollout.select_frames([-1]))
        h = sim.E * sim.N
        for k, v in one.items():
            if k not in self._pending_start:
                self._pending_start[k] = np.zeros((h,) + v.shape[1:], v.dtype)
            self._pending_start[k][rollout.humans] = v

    def _frames(self, sim: Any, rollout: Any) -> dict[str, np.ndarray]:
        """What the builder keeps of a rollout's frames (copies; rows in batch order)."""
        out = {k: np.array(getattr(rollout, k)) for k in _BUFFER_KEYS}
        head = rollout.head_orientation
        out["head"] = head.copy()
        out["head_point"] = rollout.eye_midpoint - _HEAD_BACK_M * head[..., :, 2]
        ahead = self.cfg.attention.path_ahead_m * np.asarray(PATH_FRACTIONS)
        pel = rollout.joints[:, :, 0, :2].astype(np.float64)
        path = np.zeros(pel.shape[:2] + (len(ahead), 3))
        goal = np.zeros(pel.shape[:2] + (3,))
        for row, hidx in enumerate(rollout.humans):
            e, i = divmod(int(hidx), sim.N)
            route = sim.worlds[e].routes[i]
            d = np.linalg.norm(route.points[None, :, :2] - pel[row, :, None], axis=-1)
            s = route.arclen[np.argmin(d, axis=1)][:, None] + ahead[None]
            idx = np.minimum(np.searchsorted(route.arclen, s), len(route.points) - 1)
            path[row] = route.points[idx]
            goal[row] = route.goal
        out["path"], out["goal"] = path, goal
        return out

    def _renew_goals(self) -> None:
        """Give every human that reached its goal (or stopped) a new one, from where it
        stands, so that it keeps walking."""
        from egosim.envs.task import Route

        sim, g = self._sim, self.env_cfg.goal
        for e, w in enumerate(sim.worlds):
            for i in np.nonzero(~w.active)[0]:
                h = sim.humans(e)[i]
                pel = sim.pelvis(sim.markers[h, 1])
                start = _nearest_walkable(w.scene, pel)
                rng = self._worlds[e].renew_rng
                for _ in range(16):
                    _, goal = w.scene.sample_start_goal(rng, g.min_dist, g.max_dist)
                    if np.linalg.norm(goal[:2] - start[:2]) < g.min_dist:
                        continue
                    try:
                        pts = w.scene.plan_path(start, goal)
                    except ValueError:
                        continue
                    route = Route.from_points(pts, g.lookahead)
                    route.update(pel[:2])
                    w.routes[i] = route
                    w.active[i], w.success[i], w.failed[i] = True, False, False
                    w.remaining[i] = route.remaining(pel[:2])
                    break

    def _observation(self) -> dict[str, np.ndarray]:
        sim = self._sim
        per = [sim.observe(e) for e in range(sim.E)]
        return {k: np.stack([o[k].reshape(-1) for o in per]) for k in per[0]}

    def _step(self) -> None:
        sim = self._sim
        t0 = time.perf_counter()
        actions = self._controller(self._observation())
        t1 = time.perf_counter()
        sim.step(list(range(sim.E)), np.asarray(actions, np.float32).reshape(
            sim.E, sim.N, -1))
        self._renew_goals()
        t2 = time.perf_counter()
        self.times["policy"] += t1 - t0
        self.times["motion"] += t2 - t1

    # -- segments -----------------------------------------------------------------------
    def _next_segment(self) -> None:
        cfg = self.cfg
        if (self._sim is None or self._segment >= cfg.clips_per_episode
                or self._lost * 2 >= self._sim.E * self._sim.N):
            self._new_episode()
        sim, buf = self._sim, self._buffers[self._sim.N]
        f = cfg.motion_frames
        f0 = self._segment * f
        while buf.start + buf.count < f0 + f:
            self._step()
        frames = buf.take(f0, f)
        index = self.clips_made + len(self._queue)
        self._lost = 0
        for e in range(sim.E):
            rows = sim.humans(e)
            data = {k: v[rows] for k, v in frames.items()}
            index = self._world_clips(e, data, f0, index)
        self._segment += 1

    def _world_clips(self, e: int, data: dict[str, np.ndarray], f0: int, index: int) -> int:
        """Append world ``e``'s clips of the segment starting at frame ``f0`` to the queue;
        returns the next clip index."""
        from egosim.envs.humans.body_proxy import INSTANCE_BASE
        from egosim.sensors import (
            EyeModel,
            HeadRecorder,
            IntrinsicsJitter,
            intrinsics_matrix,
            resample_poses,
        )

        cfg, sim = self.cfg, self._sim
        wx, w = self._worlds[e], sim.worlds[e]
        n = sim.N
        key = (wx.spec, wx.seed, repr(sorted(cfg.scene.options.items())))
        renderer = self._renderer(w.scene, key)
        renderer.set_lighting(wx.lighting)
        noise = np.random.default_rng(np.random.SeedSequence(
            [self.seed, self.worker, 3, self._episode, self._segment, e]))
        rgb, depth = self._rgb, self._depth
        if cfg.augment.intrinsics_jitter:
            jit = IntrinsicsJitter(focal_rel_sigma=cfg.augment.focal_rel_sigma,
                                   principal_sigma_px=cfg.augment.principal_sigma_px)
            rgb = rgb.model_copy(update={"intrinsics_jitter": jit}).jittered(noise)
            update = {"intrinsics": rgb.intrinsics, "hfov_deg": rgb.hfov_deg}
            depth = depth.model_copy(update=update)
        t0 = time.perf_counter()
        poses40 = HeadRecorder.camera_poses(data["eyes"], data["head"])  # (N, F, 4, 4)
        step, kf, tp = cfg.video_step, cfg.video_frames, cfg.pose_samples
        vidx = np.arange(kf) * step
        poses30 = np.stack([resample_poses(p, MOTION_FPS, cfg.pose_fps)[:tp] for p in poses40])
        self.times["assemble"] += time.perf_counter() - t0
        on_floor = w.scene.has_floor(data["joints"][:, :, 0]).all(axis=1)  # (N,)
        self._lost += int((~on_floor).sum())
        hmr_specs: tuple[Any, ...] = ()
        if self.hmr:  # noise-free instance and depth views at the video camera's intrinsics
            from egosim.sensors import CameraSpec

            hmr_common = {"resolution": rgb.resolution, "intrinsics": rgb.focal_principal(),
                          "near": rgb.near, "far": rgb.far}
            hmr_specs = (CameraSpec(uuid="hmr_instance", modality="instance", **hmr_common),
                         CameraSpec(uuid="hmr_depth", modality="depth", **hmr_common))
        views = self._render(e, data, vidx, poses40, rgb, depth, renderer, noise, on_floor,
                             hmr_specs)
        t0 = time.perf_counter()
        u = np.arange(tp) * (MOTION_FPS / cfg.pose_fps)
        eyes30 = _interp_rows(np.moveaxis(data["eyes"], 0, 1), u)  # (T, N, 2, 3)
        heads30 = _interp_rows(np.moveaxis(data["head_point"], 0, 1), u)  # (T, N, 3)
        objects, object_ids = self._scene_objects(w.scene, key)
        near = np.rint(u).astype(np.int64).clip(0, cfg.motion_frames - 1)
        eye_model = EyeModel() if cfg.attention.eye_model else None
        recorder = HeadRecorder(renderer, rgb, fps=cfg.pose_fps, eye_model=eye_model)
        self.times["gaze"] += time.perf_counter() - t0
        k_mat = intrinsics_matrix(rgb)
        for h in range(n):
            if not on_floor[h]:
                self.clips_dropped += 1
                continue
            clip_seq = np.random.SeedSequence([self.seed, self.worker, 0, index])
            look_rng, eye_rng = (np.random.default_rng(s) for s in clip_seq.spawn(2))
            t0 = time.perf_counter()
            clip: dict[str, Any] = {}
            p0inv = np.linalg.inv(poses30[h, 0])
            cam = p0inv @ poses30[h]
            cam[0] = np.eye(4)
            if "rgb" in cfg.modalities:
                clip["rgb"] = views["rgb"][h]
            if "depth" in cfg.modalities:
                clip["depth"] = views["depth"][h]
            for extra in self._extra:
                clip[extra.uuid] = views[extra.uuid][h]
            if "camera" in cfg.modalities:
                clip["camera"] = cam
                clip["camera_9d"] = camera_9d(cam)
                clip["video_camera"] = p0inv @ poses40[h, vidx]
                clip["video_camera"][0] = np.eye(4)
            self.times["assemble"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            others = [j for j in range(n) if j != h]
            scenery = Scenery(
                path=data["path"][h, near], goal=data["goal"][h, near],
                people=np.moveaxis(heads30[:, others], 0, 1).reshape(len(others), tp, 3),
                people_ids=np.array([INSTANCE_BASE + j for j in others], np.int32),
                objects=objects, object_ids=object_ids)
            state = np.zeros(tp, np.int8)
            att = Attention(np.zeros((tp, 3)), np.full(tp, -1, np.int8),
                            np.full(tp, -1, np.int32))
            if "gaze" in cfg.modalities:
                att = attend(poses30[h], rgb, scenery, w.scene.raycaster,
                             w.scene.face_instance, cfg.attention, cfg.pose_fps, look_rng)
                points, tracks = recorder.gaze(eyes30[:, h], att.target, rng=eye_rng)
                xy, valid = recorder.project_gaze(points, poses30[h])
                ok = valid[rgb.uuid] & np.isfinite(xy[rgb.uuid]).all(axis=1)
                clip["gaze"] = np.where(ok[:, None], xy[rgb.uuid], 0.0).astype(np.float32)
                clip["gaze_valid"] = ok
                if tracks:
                    state = tracks[0].state.astype(np.int8)
            self.times["gaze"] += time.perf_counter() - t0
            clip["intrinsics"] = k_mat.copy()
            clip["video_times"] = np.arange(kf) / cfg.video_fps
            clip["pose_times"] = np.arange(tp) / cfg.pose_fps
            clip["meta"] = {
                "scene_spec": wx.spec, "scene_seed": -1 if wx.seed is None else int(wx.seed),
                "world": e, "human": h, "humans": n,
                "human_id": f"{self.worker}:{self._episode}:{e}:{h}",
                "episode": self._episode, "segment": self._segment,
                "start_s": f0 / MOTION_FPS, "seed": self.seed, "worker": self.worker,
                "index": index, "controller": cfg.controller,
                "attention": {"kind": att.kind, "instance": att.instance, "eye_state": state}}
            if self.hmr:
                clip["hmr"] = self._hmr_labels(e, h, data, vidx, poses40[h, vidx], views, k_mat,
                                               rgb.near)
            self._queue.append(clip)
            index += 1
        return index

    def _hmr_labels(self, e: int, h: int, data: dict[str, np.ndarray], vidx: np.ndarray,
                    poses: np.ndarray, views: dict[str, np.ndarray], k_mat: np.ndarray,
                    near: float) -> dict[str, np.ndarray]:
        """Wearer ``h``'s ``clip["hmr"]`` (:func:`egosim.egom2p.datasets.hmr.hmr_labels`)
        of the other humans of its world at the video frames ``vidx``."""
        import torch

        from egosim.egom2p.datasets.hmr import hmr_labels
        from egosim.envs.humans.body_proxy import INSTANCE_BASE

        sim = self._sim
        others = [j for j in range(sim.N) if j != h]
        rows = np.asarray(sim.humans(e))[others]
        with torch.no_grad():
            pelvis = sim.prior.body.rest_joints(sim.betas[rows], sim.gender[rows])[:, 0]
        return hmr_labels(
            data["joints"][others][:, vidx], data["global_orient"][others][:, vidx],
            data["body_pose"][others][:, vidx], data["transl"][others][:, vidx],
            sim.betas[rows].numpy(), sim.gender[rows].numpy(), pelvis.numpy(),
            np.array([INSTANCE_BASE + j for j in others], np.int32), poses, k_mat,
            views["hmr_instance"][h], views["hmr_depth"][h], near)

    def _render(self, e: int, data: dict[str, np.ndarray], vidx: np.ndarray,
                poses40: np.ndarray, rgb: Any, depth: Any, renderer: Any,
                noise: np.random.Generator, wearers: np.ndarray,
                hmr_specs: Sequence[Any] = ()) -> dict[str, np.ndarray]:
        """The video frames of the wearers ``wearers (N,) bool`` (the others' stay zero):
        ``{uuid: (N, K, S, S[, 3])}``. Each (wearer, frame)
        is rendered with its own meshes: the other humans whose bounding spheres meet the
        view (posed coarse bodies), and its own hands and feet (``self_body``); frames
        without any are rendered in one batched call. ``hmr_specs`` are rendered too,
        without the augmentations."""
        from egosim.envs.humans.body_proxy import INSTANCE_BASE
        from egosim.envs.scenes import class_id
        from egosim.sensors import DynamicMesh, MotionBlur, pose_velocity

        cfg, sim = self.cfg, self._sim
        n, kf = sim.N, len(vidx)
        specs = ([rgb] if "rgb" in cfg.modalities else []) + \
                ([depth] if "depth" in cfg.modalities else []) + list(self._extra)
        if not specs and not hmr_specs:
            return {}
        if cfg.augment.depth_noise and "depth" in cfg.modalities:
            from egosim.sensors import DepthNoise

            specs = [s.model_copy(update={"depth_noise": DepthNoise(max_range=cfg.far_m)})
                     if s.modality == "depth" else s for s in specs]
        if cfg.augment.motion_blur and "rgb" in cfg.modalities:
            blur = MotionBlur(probability=cfg.augment.blur_probability)
            specs = [s.model_copy(update={"motion_blur": blur}) if s.modality == "rgb" else s
                     for s in specs]
        specs = specs + list(hmr_specs)
        blurred = any(s.motion_blur is not None for s in specs)
        t0 = time.perf_counter()
        proxy = self._body_proxy(sim)
        need_bodies = n > 1 or cfg.self_body
        verts = None
        if need_bodies:
            from egosim.envs.simulation import FrameRollout

            rows = sim.humans(e)
            sub = {k: data[k][:, vidx] for k in _BUFFER_KEYS}
            fr = FrameRollout(worlds=np.full(n, e), humans=rows,
                              frames=np.broadcast_to(vidx, (n, kf)).copy(),
                              times=np.broadcast_to(vidx / MOTION_FPS, (n, kf)).copy(),
                              betas=sim.betas[rows].numpy(),
                              gender=sim.gender[rows].numpy().astype(np.int64),
                              active=np.ones(n, bool), **sub)
            verts = proxy.vertices(sim.vertices(fr))  # (N, K, V', 3)
        self.times["skin"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        person = class_id("person")
        vis = proxy.self_visible
        out: dict[str, np.ndarray] = {}
        velocity = None
        if blurred:
            velocity = np.stack([pose_velocity(p, MOTION_FPS)[vidx] for p in poses40])
        fx, fy, _, _ = rgb.focal_principal()
        s = cfg.video_size
        tan_x, tan_y = (s / 2.0 + 1.0) / fx, (s / 2.0 + 1.0) / fy
        if verts is not None:
            centre = verts.mean(axis=2)  # (N, K, 3)
            radius = np.linalg.norm(verts - centre[:, :, None], axis=-1).max(axis=2)
        for h in np.flatnonzero(wearers):
            poses = poses40[h, vidx]  # (K, 4, 4)
            bare: list[int] = []
            per_frame: dict[int, list[Any]] = {}
            for k in range(kf):
                meshes = []
                if cfg.self_body and verts is not None:
                    tri = verts[h, k][proxy.faces[vis]]
                    if _points_in_view(tri.reshape(-1, 3), poses[k], tan_x, tan_y):
                        meshes.append(DynamicMesh(tri, person, INSTANCE_BASE + h,
                                                  self._worlds[e].colors[h][vis]))
                for j in range(n):
                    if j != h and _sphere_in_view(centre[j, k], radius[j, k], poses[k],
                                                  tan_x, tan_y, cfg.far_m):
                        meshes.append(DynamicMesh(verts[j, k][proxy.faces], person,
                                                  INSTANCE_BASE + j, self._worlds[e].colors[j]))
                if meshes:
                    per_frame[k] = meshes
                else:
                    bare.append(k)
            frames: dict[int, dict[str, np.ndarray]] = {}
            if bare:
                idx = np.array(bare)
                renderer.set_dynamic_meshes([])
                res = renderer.render(specs, poses[idx], velocity=None if velocity is None
                                      else velocity[h, idx], rng=noise)
                for m, k in enumerate(bare):
                    frames[k] = {key: v[m] for key, v in res.items()}
            for k, meshes in per_frame.items():
                renderer.set_dynamic_meshes(meshes)
                res = renderer.render(specs, poses[k:k + 1], velocity=None if velocity is None
                                      else velocity[h, k:k + 1], rng=noise)
                frames[k] = {key: v[0] for key, v in res.items()}
            for key in frames[0]:
                out.setdefault(key, np.zeros((n, kf) + frames[0][key].shape,
                                             frames[0][key].dtype))
                for k in range(kf):
                    out[key][h, k] = frames[k][key]
        self.times["render"] += time.perf_counter() - t0
        return out


def _sphere_in_view(c: np.ndarray, r: float, pose: np.ndarray, tan_x: float, tan_y: float,
                    far: float) -> bool:
    """Whether a sphere (centre ``c`` (3,), radius ``r``, m, world) meets the view frustum of
    camera ``pose`` with half-angle tangents ``tan_x``, ``tan_y`` (conservative)."""
    p = pose[:3, :3].T @ (np.asarray(c, np.float64) - pose[:3, 3])
    x, y, z = p
    if z < -r or z > far + r:
        return False
    for t, a in ((tan_x, x), (tan_y, y)):
        norm = np.sqrt(1.0 + t * t)
        if (abs(a) - t * z) / norm > r:
            return False
    return True


def _points_in_view(points: np.ndarray, pose: np.ndarray, tan_x: float, tan_y: float
                    ) -> bool:
    """Whether any of ``points (M, 3)`` (m, world) lies in front of camera ``pose`` within
    the half-angle tangents ``tan_x``, ``tan_y`` (small triangles: their corners decide)."""
    p = (np.asarray(points, np.float64) - pose[:3, 3]) @ pose[:3, :3]
    z = p[:, 2]
    return bool(np.any((z > 0) & (np.abs(p[:, 0]) <= tan_x * z) & (np.abs(p[:, 1]) <= tan_y * z)))


def _nearest_walkable(scene: Any, p: np.ndarray) -> np.ndarray:
    """``p`` (3,) if it is walkable, else the centre of the nearest walkable cell (z on the
    floor)."""
    if scene.is_walkable(p[None])[0]:
        return np.array([p[0], p[1], p[2]])
    cells = np.argwhere(scene.walkable)
    pts = scene.grid_to_world(cells)
    return np.asarray(pts[int(np.argmin(np.linalg.norm(pts[:, :2] - p[:2], axis=1)))],
                      np.float64)
