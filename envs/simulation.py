"""The batched world every EgoGen env wires: ``E`` worlds (scenes) of ``N`` humans each.

:class:`Simulation` composes the separate pieces, dm_control-style: the scene
(:mod:`egosim.envs.resources` cache), the humans (``MotionPrior`` state, one batched
``MotionPrior.step`` for all humans of all stepped worlds), the sensors
(:mod:`egosim.envs.ego_sensing`, optional head cameras through ``egosim.sensors.Renderer``)
and the task (:mod:`egosim.envs.task` routes and episode end, :mod:`egosim.envs.rewards`).
``EgoLocomotionEnv`` is ``E = 1, N = 1``, ``EgoCrowdEnv`` is ``E = 1, N > 1`` and the batched
vector env is ``E = num_envs``. Humans of one world see each other; worlds are independent.

Per-human observation (the local frame of the human's latest frame: origin the pelvis
projected onto the floor, x forward (horizontal normal of the hip line), y left, z up; m):

=============  ===========  ============================================================
key            shape        meaning
=============  ===========  ============================================================
markers        (402,)       the 2 latest frames x 67 markers x xyz, local frame, row-major
                            ``(2, 67, 3)``; clipped to +-5 m (only a diverged body leaves it)
goal_dirs      (201,)       unit vectors marker -> current target (at pelvis height),
                            local frame, row-major ``(67, 3)``
ego_sensing    (R,)         see :mod:`egosim.envs.ego_sensing`, in [-1, 1]
goal_distance  (1,)         ``1 / (d + 1)``, d = floor distance pelvis -> current target (m)
time_left      (1,)         ``1 - steps / max_steps`` (:attr:`Simulation.max_steps`)
<camera uuid>  (H, W, ...)  head-camera image per configured spec (rgb uint8 (H, W, 3), depth
                            float32 (H, W, 1) metres, semantic / instance int32 (H, W), normal
                            float32 (H, W, 3)), rig at the eyes along the gaze or the head
                            (``cameras.mount``); other humans are their posed SMPL-X bodies
                            (``cameras.other_humans: bodies``) or capsules
=============  ===========  ============================================================

Per-frame motion (the seam videos and clip builders plug into): every step decodes
:data:`~egosim.envs.motion.primitive_windows.FUTURE_FRAMES` (18) new frames at
:data:`~egosim.envs.motion.primitive_windows.MOTION_FPS` (40 fps) per human; the
observation only keeps the last two. :attr:`Simulation.last_rollout` holds all of them
(a :class:`FrameRollout`, what was simulated, not a re-run), and hooks registered with
:meth:`Simulation.add_step_hook` / :meth:`Simulation.add_reset_hook` are called with it
after every :meth:`Simulation.step` / :meth:`Simulation.reset_worlds`.

A world's episode randomness (scene seed, starts, goals, headings, seed motions, camera
noise) comes from its own ``numpy.random.Generator`` given at reset; the motion prior is
deterministic, so the same seed and actions give the same trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from egosim.envs import resources
from egosim.envs.ego_sensing import HEAD_ABOVE_EYES, ego_sensing, gaze_forward
from egosim.envs.humans.marker_set import EYE_JOINTS, MARKER_NAMES
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.motion.primitive_windows import FUTURE_FRAMES, HISTORY_FRAMES, MOTION_FPS
from egosim.envs.rewards import (
    TERMS,
    facing,
    foot_terms,
    penetration_reward,
    pose_prior,
    weighted_terms,
)
from egosim.envs.task import (
    Route,
    end_reasons,
    episode_outcome,
    sample_episode,
    world_end_reason,
    yaw_towards,
)

__all__ = ["Simulation", "World", "FrameRollout", "StepHook", "NUM_MARKERS", "MARKER_DIM",
           "GOAL_DIM", "MARKER_CLIP", "head_rotations"]

NUM_MARKERS = len(MARKER_NAMES)
#: Observation widths per human: the last HISTORY_FRAMES marker frames, and one unit vector
#: per marker to the goal.
MARKER_DIM = HISTORY_FRAMES * NUM_MARKERS * 3
GOAL_DIM = NUM_MARKERS * 3
MARKER_CLIP = 5.0
#: SMPL-X joints from the pelvis down the spine to the head (joint 15), root first.
_HEAD_CHAIN = (0, 3, 6, 9, 12, 15)
#: SMPL-X's canonical head axes (x left, y up, z forward) -> OpenCV-style (x right, y down,
#: z forward): a half turn about z.
_SMPLX_TO_OPENCV = np.diag([-1.0, -1.0, 1.0])


def _axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angles ``(..., 3)`` (rad) -> rotation matrices ``(..., 3, 3)``."""
    aa = np.asarray(aa, np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    cross = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(
        aa.shape[:-1] + (3, 3))
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * cross + (1.0 - c) * (cross @ cross)


def head_rotations(global_orient: np.ndarray, body_pose: np.ndarray) -> np.ndarray:
    """Head-to-world rotations ``(..., 3, 3)`` float64 of SMPL-X poses (see
    :attr:`FrameRollout.head_orientation` for the axes).

    Args:
        global_orient: ``(..., 3)`` axis-angle of the pelvis (rad, world frame).
        body_pose: ``(..., 63)`` axis-angles of the 21 body joints (rad).
    """
    aa = np.concatenate([global_orient[..., None, :],
                         body_pose.reshape(body_pose.shape[:-1] + (21, 3))],
                        axis=-2)  # (..., 22, 3): pelvis, then body joints 1..21
    rot = _axis_angle_to_matrix(aa[..., list(_HEAD_CHAIN), :])
    head = rot[..., 0, :, :]
    for k in range(1, len(_HEAD_CHAIN)):
        head = head @ rot[..., k, :, :]
    return head @ _SMPLX_TO_OPENCV


@dataclass
class FrameRollout:
    """Every 40-fps frame of every human of one :meth:`Simulation.step` (or reset).

    Rows are the humans of the stepped (or reset) worlds in batch order (``H = N`` for the
    single-world envs); ``F`` is :data:`~egosim.envs.motion.primitive_windows.FUTURE_FRAMES`
    (18) after a step and 2 (the seed history) after a reset. World frame: metres, z up,
    floor at z = 0. This is what was simulated: the prior's output of that step, not a
    re-run. A human that had stopped before the step (goal reached or failed) stands still
    at its last pose in every frame (``active`` False), as in the simulation. The last frame
    is the state the next observation is built from (``markers[:, -1]`` equals
    :attr:`Simulation.markers` ``[humans, 1]``, ``eyes[:, -1]`` :attr:`Simulation.eyes`).

    Attributes:
        worlds: ``(H,)`` int64 world of each row.
        humans: ``(H,)`` int64 batch index of each row (``world * N + i``).
        frames: ``(H, F)`` int64 frame number since the episode start (40 fps): 0 is the
            start pose (the last seed frame), step ``s`` (1-based) adds frames
            ``18 (s - 1) + 1 .. 18 s``; the reset's first seed frame is -1.
        times: ``(H, F)`` float64 seconds since the episode start, ``frames / 40``.
        markers: ``(H, F, 67, 3)`` float64 SSM2 markers (m).
        joints: ``(H, F, 55, 3)`` float32 SMPL-X joints of the regressed bodies (m).
        eyes: ``(H, F, 2, 3)`` float64 left and right eye (SMPL-X joints 23, 24), m.
        global_orient: ``(H, F, 3)`` float32 SMPL-X global orientation, axis-angle (rad),
            in the world frame (it includes SMPL-X's y-up to z-up turn).
        body_pose: ``(H, F, 63)`` float32 axis-angles of the 21 body joints (rad).
        transl: ``(H, F, 3)`` float32 SMPL-X translation (m, world).
        betas: ``(H, 10)`` float32 shape coefficients.
        gender: ``(H,)`` int64 index into :data:`~egosim.envs.humans.model_files.GENDERS`.
        active: ``(H,)`` bool, the human moved during this step (always True at a reset).
    """

    worlds: np.ndarray
    humans: np.ndarray
    frames: np.ndarray
    times: np.ndarray
    markers: np.ndarray
    joints: np.ndarray
    eyes: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    betas: np.ndarray
    gender: np.ndarray
    active: np.ndarray
    _head: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        """``F``, frames per row."""
        return int(self.frames.shape[1])

    @property
    def genders(self) -> tuple[str, ...]:
        """``(H,)`` gender names (``neutral``, ``male``, ``female``)."""
        return tuple(GENDERS[int(g)] for g in self.gender)

    @property
    def eye_midpoint(self) -> np.ndarray:
        """``(H, F, 3)`` float64 midpoint of the eyes (m): where the head camera sits."""
        return self.eyes.mean(axis=2)

    @property
    def head_orientation(self) -> np.ndarray:
        """``(H, F, 3, 3)`` float64 head-to-world rotations (computed on first use).

        The global rotation of the SMPL-X head joint (15; pelvis, spine and neck rotations
        composed), with its columns in camera-style axes: column 0 the head's right (x),
        column 1 its down (y), column 2 its forward, the direction the face looks (z). An
        upright head looking level has column 2 horizontal and column 1 ``(0, 0, -1)``.
        The same axes as a head camera's OpenCV frame (see ``egosim.sensors.head_frame``).
        """
        if self._head is None:
            self._head = head_rotations(self.global_orient, self.body_pose)
        return self._head

    def rows(self, index: np.ndarray | slice) -> FrameRollout:
        """The rollout restricted to rows ``index`` (e.g. one world's humans)."""
        return FrameRollout(**{k: getattr(self, k)[index] for k in self._fields()})

    def world(self, e: int) -> FrameRollout:
        """The rows of world ``e`` (``(N, F, ...)``)."""
        return self.rows(np.nonzero(self.worlds == e)[0])

    def select_frames(self, index: np.ndarray | slice) -> FrameRollout:
        """The rollout restricted to frames ``index`` (axis 1 of every per-frame field)."""
        per_frame = {"frames", "times", "markers", "joints", "eyes", "global_orient",
                     "body_pose", "transl"}
        return FrameRollout(**{k: getattr(self, k)[:, index] if k in per_frame
                               else getattr(self, k) for k in self._fields()})

    @staticmethod
    def _fields() -> tuple[str, ...]:
        return ("worlds", "humans", "frames", "times", "markers", "joints", "eyes",
                "global_orient", "body_pose", "transl", "betas", "gender", "active")


StepHook = Callable[["Simulation", FrameRollout], None]
"""``hook(sim, rollout)``: called after a step (or reset) with its :class:`FrameRollout`."""


@dataclass
class World:
    """Episode state of one world (scene + ``N`` humans); ``body_colors`` ``(N, F', 3)``
    are the humans' face colours in the head cameras (``cameras.other_humans: bodies``);
    ``end_reasons`` ``(N,)`` why each human stopped (one of
    :data:`~egosim.envs.task.END_REASONS`, None while it walks)."""

    rng: np.random.Generator | None = None
    scene: Any = None
    scene_seed: int | None = None
    routes: list[Route] = field(default_factory=list)
    steps: int = 0
    active: np.ndarray | None = None
    success: np.ndarray | None = None
    failed: np.ndarray | None = None
    remaining: np.ndarray | None = None
    collisions_total: int = 0
    body_colors: np.ndarray | None = None
    end_reasons: list[str | None] = field(default_factory=list)


class Simulation:
    """``num_worlds`` worlds of ``humans_per_world`` humans (see the module docstring).

    Args:
        cfg: a :class:`egosim.envs.config.LocomotionEnvConfig` (or crowd config).
        num_worlds: ``E``; humans_per_world: ``N``.
        min_separation: smallest start-start and goal-goal distance (m) within a world.

    Attributes:
        max_steps: the step limit of every world (``episode.max_steps`` unless the env sets
            another, e.g. the ``max_episode_steps`` of Gymnasium's ``TimeLimit``): episodes
            truncate at it and ``time_left`` counts down to it.
        floor_z: ``(E N,)`` height of the floor each human walks on (m): its scene's
            ``floor_level`` (0 unless the scene option selects another level, e.g.
            ``pybullet:samurai``'s platform at 1.7 m). The motion prior runs with that floor
            moved to z = 0, local frames and the floor-contact term are measured from it.
        camera_info: per world, ``{"camera_pose": {uuid: (N, 4, 4)}, "camera_intrinsics":
            {uuid: (3, 3)}}`` of the latest head-camera images (camera-to-world, OpenCV
            axes, metres; pixels); empty without cameras.
        markers: ``(E N, 2, 67, 3)`` the two latest marker frames per human (m, world).
        eyes: ``(E N, 2, 3)`` left and right eye of the latest frame (m, world).
        pose: the latest frame's regressed SMPL-X body of each human (a stopped human stands
            still in it): ``global_orient (E N, 3)``, ``body_pose (E N, 63)`` axis-angles
            (rad, world), ``transl (E N, 3)`` and ``joints (E N, 55, 3)`` (m), float32.
        last_rollout: the :class:`FrameRollout` of the latest :meth:`step` or
            :meth:`reset_worlds` (its rows: the humans of the worlds it stepped), None
            before the first reset.
    """

    def __init__(self, cfg, num_worlds: int, humans_per_world: int,
                 min_separation: float = 0.0) -> None:
        from egosim.envs.humans.marker_set import FOOT_MARKER_INDICES

        self.cfg = cfg
        self.E, self.N = int(num_worlds), int(humans_per_world)
        self.min_separation = float(min_separation)
        self.prior = resources.get_prior(cfg.prior.path)
        self.probe = resources.get_probe(cfg.prior.path, cfg.reward.penetration_vertices)
        self.latent_dim = int(self.prior.latent_dim)
        self.mj = self.prior.marker_joints.weights.double().numpy()  # (3, 67)
        self.feet = np.asarray(FOOT_MARKER_INDICES)
        self.camera_specs = self._camera_specs()
        self.max_steps = int(cfg.episode.max_steps)
        h = self.E * self.N
        self.floor_z = np.zeros(h)
        self.camera_info: list[dict[str, Any]] = [{} for _ in range(self.E)]
        self._last_images: list[dict[str, np.ndarray] | None] = [None] * self.E
        self.history = torch.zeros(h, HISTORY_FRAMES, NUM_MARKERS, 3)
        self.betas = torch.zeros(h, self.prior.seeds["betas"].shape[1])
        self.gender = torch.zeros(h, dtype=torch.long)
        self.markers = np.zeros((h, HISTORY_FRAMES, NUM_MARKERS, 3))
        self.eyes = np.zeros((h, 2, 3))
        self.ego_dist = np.zeros((h, cfg.sensing.num_rays))
        self.worlds = [World() for _ in range(self.E)]
        self._renderers: dict[tuple, Any] = {}
        self.pose = {"global_orient": np.zeros((h, 3), np.float32),
                      "body_pose": np.zeros((h, 63), np.float32),
                      "transl": np.zeros((h, 3), np.float32),
                      "joints": np.zeros((h, 55, 3), np.float32)}
        self.last_rollout: FrameRollout | None = None
        self._step_hooks: list[StepHook] = []
        self._reset_hooks: list[StepHook] = []
        self._proxy: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Hooks watch one process's simulation; a pickled copy starts without them.
        state = self.__dict__.copy()
        state["_step_hooks"], state["_reset_hooks"] = [], []
        return state

    def _camera_specs(self) -> list:
        from egosim.sensors.spec import CameraSpec

        return [CameraSpec(**d) for d in self.cfg.cameras.specs]

    def humans(self, e: int) -> np.ndarray:
        """Indices of world ``e``'s humans in the batch."""
        return np.arange(e * self.N, (e + 1) * self.N)

    # -- per-frame seam -----------------------------------------------------------------
    def add_step_hook(self, hook: StepHook) -> Callable[[], None]:
        """Call ``hook(sim, rollout)`` after every :meth:`step`, once per call, with that
        step's :class:`FrameRollout` (all worlds it stepped); the sim's state (markers,
        worlds' ``active``/``success``/``steps``) is already updated. Hooks are not
        pickled with the simulation (a copy in another process starts without them).

        Returns:
            A function that removes the hook.
        """
        self._step_hooks.append(hook)
        return lambda: self._step_hooks.remove(hook) if hook in self._step_hooks else None

    def add_reset_hook(self, hook: StepHook) -> Callable[[], None]:
        """Call ``hook(sim, rollout)`` after every :meth:`reset_worlds` with the reset's
        :class:`FrameRollout` (the two seed frames of the reset worlds' humans).

        Returns:
            A function that removes the hook.
        """
        self._reset_hooks.append(hook)
        return lambda: self._reset_hooks.remove(hook) if hook in self._reset_hooks else None

    def _publish(self, rollout: FrameRollout, hooks: list[StepHook]) -> None:
        self.last_rollout = rollout
        for hook in list(hooks):
            hook(self, rollout)

    def _keep_pose(self, rows: np.ndarray, out: Any, pick: np.ndarray | slice) -> None:
        """Remember the last frame of the prior output ``out`` rows ``pick`` for humans
        ``rows``."""
        if isinstance(pick, np.ndarray):
            pick = torch.as_tensor(pick)
        for k in ("global_orient", "body_pose", "transl", "joints"):
            self.pose[k][rows] = getattr(out, k)[pick, -1].numpy()

    def vertices(self, rollout: FrameRollout, frames: np.ndarray | slice | None = None
                 ) -> np.ndarray:
        """Posed SMPL-X vertices ``(H, F', 10475, 3)`` float32 (m, world) of a rollout's
        frames ``frames`` (default all), by the motion prior's fast skinning."""
        from egosim.envs.motion.prior import Rollout

        r = rollout if frames is None else rollout.select_frames(frames)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, np.float32))

        out = Rollout(markers=t(r.markers), global_orient=t(r.global_orient),
                      body_pose=t(r.body_pose), transl=t(r.transl), joints=t(r.joints),
                      betas=t(r.betas), gender=torch.from_numpy(np.asarray(r.gender, np.int64)),
                      z=torch.zeros(len(r.humans), 0, self.latent_dim), decoded=t(r.markers))
        with torch.no_grad():
            return self.prior.vertices(out).numpy()

    def current_vertices(self, e: int) -> np.ndarray:
        """``(N, 10475, 3)`` float32 posed vertices (m, world) of world ``e``'s humans in
        their latest frame (the state the observation is built from)."""
        hs = self.humans(e)
        p = self.pose
        one = FrameRollout(
            worlds=np.full(self.N, e), humans=hs, frames=np.zeros((self.N, 1), np.int64),
            times=np.zeros((self.N, 1)), markers=self.markers[hs, 1:],
            joints=p["joints"][hs, None], eyes=self.eyes[hs, None],
            global_orient=p["global_orient"][hs, None], body_pose=p["body_pose"][hs, None],
            transl=p["transl"][hs, None], betas=self.betas[hs].numpy(),
            gender=self.gender[hs].numpy(), active=self.worlds[e].active.copy())
        return self.vertices(one)[:, 0]

    def body_proxy(self) -> Any:
        """The :class:`~egosim.envs.humans.body_proxy.BodyProxy` of the prior's bodies
        (built on first use)."""
        if self._proxy is None:
            from egosim.envs.humans.body_proxy import BodyProxy

            self._proxy = BodyProxy(self.prior.body.faces)
        return self._proxy

    # -- reset --------------------------------------------------------------------------
    def _scene_for(self, rng: np.random.Generator):
        sc = self.cfg.scene
        if not sc.spec.startswith("procedural:"):
            seed = None
        elif sc.seed is not None:
            seed = sc.seed
        else:
            seed = int(rng.integers(sc.seed_range[0], sc.seed_range[1]))
        return resources.get_scene(sc.spec, seed, sc.options, sc.cache_size), seed

    def _seed_history(self, rng: np.random.Generator, start: np.ndarray, yaw: float
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        seeds = self.prior.seeds
        k = int(rng.integers(0, seeds["history"].shape[0]))
        canon = seeds["history"][k].double()  # (2, 67, 3): y forward, pelvis origin
        a = yaw - np.pi / 2.0
        rz = torch.tensor([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0],
                           [0.0, 0.0, 1.0]], dtype=torch.float64)
        shift = torch.tensor([start[0], start[1], start[2] + float(seeds["height"][k])],
                             dtype=torch.float64)
        return (canon @ rz.T + shift).float(), seeds["betas"][k].float(), \
            seeds["gender"][k].long()

    def reset_worlds(self, ids: list[int], rngs: list[np.random.Generator]) -> None:
        """Start new episodes in worlds ``ids`` with their generators ``rngs``."""
        g = self.cfg.goal
        hists, betas, genders, hs = [], [], [], []
        for e, rng in zip(ids, rngs, strict=True):
            w = self.worlds[e]
            w.rng = rng
            w.scene, w.scene_seed = self._scene_for(rng)
            w.routes = sample_episode(w.scene, rng, self.N, g.min_dist, g.max_dist, g.metric,
                                      g.lookahead, self.min_separation)
            for r in w.routes:
                noise = np.deg2rad(g.heading_noise_deg)
                yaw = yaw_towards(r.points[0], r.target()) + rng.uniform(-noise, noise)
                h, b, gd = self._seed_history(rng, r.points[0], yaw)
                hists.append(h)
                betas.append(b)
                genders.append(gd)
            hs.append(self.humans(e))
            w.steps, w.collisions_total = 0, 0
            w.active = np.ones(self.N, bool)
            w.success = np.zeros(self.N, bool)
            w.failed = np.zeros(self.N, bool)
            w.end_reasons = [None] * self.N
            self.floor_z[self.humans(e)] = float(getattr(w.scene, "floor_level", 0.0))
            self._last_images[e] = None
            w.body_colors = None
            if self.camera_specs and self.cfg.cameras.other_humans == "bodies":
                from egosim.envs.humans.body_proxy import sample_face_colors

                w.body_colors = sample_face_colors(self.body_proxy(), self.N, rng)
        idx = np.concatenate(hs)
        init = {"history": torch.stack(hists), "betas": torch.stack(betas),
                "gender": torch.stack(genders)}
        state, out = self.prior.reset(len(idx), init=init)
        t = torch.as_tensor(idx)
        self.history[t] = state.history
        self.betas[t] = state.betas
        self.gender[t] = state.gender
        mk = out.markers.double().numpy()  # (h, 2, 67, 3)
        joints = out.joints.numpy()
        eyes = joints[:, :, list(EYE_JOINTS)].astype(np.float64)
        self.markers[idx] = mk
        self.eyes[idx] = eyes[:, -1]
        self._keep_pose(idx, out, slice(None))
        for e in ids:
            w = self.worlds[e]
            pel = self.pelvis(self.markers[self.humans(e), 1])
            for i, r in enumerate(w.routes):
                r.update(pel[i, :2])
            w.remaining = np.array([r.remaining(pel[i, :2]) for i, r in enumerate(w.routes)])
        frames = np.broadcast_to(np.arange(-1, 1), (len(idx), 2)).copy()
        self._publish(FrameRollout(
            worlds=idx // self.N, humans=idx, frames=frames, times=frames / MOTION_FPS,
            markers=mk, joints=joints, eyes=eyes, global_orient=out.global_orient.numpy(),
            body_pose=out.body_pose.numpy(), transl=out.transl.numpy(),
            betas=out.betas.numpy(), gender=out.gender.numpy().astype(np.int64),
            active=np.ones(len(idx), bool)), self._reset_hooks)

    # -- geometry helpers ---------------------------------------------------------------
    def joints3(self, markers: np.ndarray) -> np.ndarray:
        """``(..., 67, 3)`` markers -> ``(..., 3, 3)`` pelvis, left hip, right hip (m)."""
        return np.einsum("jk,...kc->...jc", self.mj, markers)

    def pelvis(self, markers: np.ndarray) -> np.ndarray:
        """``(..., 67, 3)`` markers -> ``(..., 3)`` pelvis (m)."""
        return np.einsum("k,...kc->...c", self.mj[0], markers)

    def body_frame(self, markers: np.ndarray, floor: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local frame of ``(n, 67, 3)`` markers: ``origin (n, 3)`` (pelvis on the floor:
        at height ``floor (n,)`` m, default 0), ``forward (n, 3)``, ``left (n, 3)``
        (horizontal unit vectors)."""
        j = self.joints3(markers)
        x = j[:, 2] - j[:, 1]
        fwd = np.stack([-x[:, 1], x[:, 0], np.zeros(len(x))], 1)
        fwd /= np.maximum(np.linalg.norm(fwd, axis=1, keepdims=True), 1e-9)
        left = np.stack([-fwd[:, 1], fwd[:, 0], np.zeros(len(x))], 1)
        origin = j[:, 0].copy()
        origin[:, 2] = 0.0 if floor is None else floor
        return origin, fwd, left

    # -- observations -------------------------------------------------------------------
    def observe(self, e: int) -> dict[str, np.ndarray]:
        """Observation of world ``e`` (keys of the module table; leading axis ``N``)."""
        w = self.worlds[e]
        hs = self.humans(e)
        m = self.markers[hs]  # (N, 2, 67, 3)
        origin, fwd, left = self.body_frame(m[:, 1], self.floor_z[hs])
        rel = m - origin[:, None, None]
        local = np.stack([np.einsum("ntkc,nc->ntk", rel, fwd),
                          np.einsum("ntkc,nc->ntk", rel, left), rel[..., 2]], -1)
        pel = self.pelvis(m[:, 1])
        target = np.stack([r.target() for r in w.routes])
        target[:, 2] = pel[:, 2]
        v = target[:, None] - m[:, 1]
        v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
        vloc = np.stack([np.einsum("nkc,nc->nk", v, fwd), np.einsum("nkc,nc->nk", v, left),
                         v[..., 2]], -1)
        d = np.linalg.norm(target[:, :2] - pel[:, :2], axis=1)
        ego = self.sense(e)
        n = self.N
        obs = {
            "markers": np.clip(local, -MARKER_CLIP, MARKER_CLIP).reshape(n, -1),
            "goal_dirs": np.clip(vloc, -1.0, 1.0).reshape(n, -1),
            "ego_sensing": ego,
            "goal_distance": (1.0 / (d + 1.0))[:, None],
            "time_left": np.full((n, 1), max(0.0, 1.0 - w.steps / self.max_steps)),
        }
        obs = {k: v.astype(np.float32) for k, v in obs.items()}
        if self.camera_specs:
            obs.update(self.camera_images(e))
        return obs

    def sense(self, e: int) -> np.ndarray:
        """Ego-sensing ``(N, R)`` of world ``e`` (also kept in :attr:`ego_dist`)."""
        s = self.cfg.sensing
        hs = self.humans(e)
        eyes = self.eyes[hs]
        mid = eyes.mean(1)
        fwd = gaze_forward(eyes[:, 0], eyes[:, 1])
        others = None
        if s.see_humans and self.N > 1:
            centers = self.pelvis(self.markers[hs, 1])[:, :2]
            tops = mid[:, 2] + HEAD_ABOVE_EYES
            others = [(np.delete(centers, i, 0), np.delete(tops, i)) for i in range(self.N)]
        obs, dist = ego_sensing(self.worlds[e].scene.raycaster, mid, fwd, s.num_rays,
                                s.fov_deg, s.max_range, others, s.human_radius)
        self.ego_dist[hs] = dist
        return obs

    def _renderer(self, e: int) -> Any:
        """The head cameras' ``egosim.sensors.Renderer`` of world ``e``'s scene (cached)."""
        from egosim.sensors import Renderer

        w = self.worlds[e]
        key = (w.scene.name, w.scene_seed, w.scene.content_hash)
        if key not in self._renderers:
            if len(self._renderers) >= self.cfg.scene.cache_size:
                self._renderers.pop(next(iter(self._renderers)))
            self._renderers[key] = Renderer(w.scene)
        return self._renderers[key]

    def camera_images(self, e: int, frame: FrameRollout | None = None, rng: Any = None
                      ) -> dict[str, np.ndarray]:
        """Head-camera images of world ``e``'s humans, ``{uuid: (N, H, W, C)}``.

        One image per ``cameras.specs`` entry and human: rgb uint8 ``(H, W, 3)``, depth
        float32 ``(H, W, 1)`` (z-depth, m, 0 where nothing was hit), semantic / instance
        int32 ``(H, W)`` (-1: nothing), normal float32 ``(H, W, 3)`` (camera frame). The
        rig sits at the eye midpoint (``egosim.sensors.HeadRecorder``) and looks along the
        env's gaze (``cameras.mount: gaze``: level, perpendicular to the eye line, as the
        ego-sensing rays) or turns and tilts with the SMPL-X head joint (``head``). The
        other humans are their posed bodies (``cameras.other_humans: bodies``,
        :mod:`egosim.envs.humans.body_proxy`) or capsules; a wearer sees its own hands and
        feet only.

        Args:
            e: the world.
            frame: a one-frame :class:`FrameRollout` of world ``e``'s humans to render
                instead of the latest state (videos); the latest state's camera poses and
                intrinsics are kept in :attr:`camera_info` ``[e]``.
            rng: generator of the camera noise (intrinsics jitter, depth noise, blur);
                default the world's.
        """
        from egosim.envs.scenes import class_id
        from egosim.sensors import DynamicMesh, HeadRecorder, capsule_triangles
        from egosim.sensors.camera import intrinsics_matrix, sensor_extrinsic

        w = self.worlds[e]
        cams = self.cfg.cameras
        hs = self.humans(e)
        if frame is None:
            eyes = self.eyes[hs]
            go, bp = self.pose["global_orient"][hs], self.pose["body_pose"][hs]
            pel = self.pelvis(self.markers[hs, 1])
        else:
            eyes = frame.eyes[:, 0]
            go, bp = frame.global_orient[:, 0], frame.body_pose[:, 0]
            pel = self.pelvis(frame.markers[:, 0])
        person = class_id("person")
        if cams.other_humans == "bodies":
            verts = self.current_vertices(e) if frame is None else self.vertices(frame)[:, 0]
            meshes = self.body_proxy().meshes(verts, w.body_colors, person)
        else:
            rad = self.cfg.sensing.human_radius
            floor = self.floor_z[hs]
            meshes = []
            for i in range(self.N):
                top = max(eyes[i, :, 2].mean() + HEAD_ABOVE_EYES - floor[i], 2 * rad + 1e-3)
                tri = capsule_triangles((pel[i, 0], pel[i, 1], floor[i]), top, rad, 12, 2)
                meshes.append(DynamicMesh(tri, person, 1000 + i, (0.8, 0.6, 0.5),
                                          np.zeros(len(tri), bool)))
        g = w.rng if rng is None else rng
        specs = [s.jittered(g) if s.intrinsics_jitter is not None else s
                 for s in self.camera_specs]  # the renderer's draws, in its order
        head = head_rotations(go, bp) if cams.mount == "head" else None
        rig, out = HeadRecorder(self._renderer(e), specs).frame(
            eyes, head_orientation=head, meshes=meshes, wearer=np.arange(self.N), rng=g)
        images = {}
        for s in specs:
            img = out[s.uuid]
            if s.modality == "depth":
                img = img[..., None]
            elif s.modality == "normal":  # unit vectors: keep round-off inside the Box
                img = np.clip(img, -1.0, 1.0)
            images[s.uuid] = img
        if frame is None:
            self.camera_info[e] = {
                "camera_pose": {s.uuid: rig @ sensor_extrinsic(s) for s in specs},
                "camera_intrinsics": {s.uuid: intrinsics_matrix(s) for s in specs}}
            self._last_images[e] = images
        return images

    # -- step ---------------------------------------------------------------------------
    def step(self, ids: list[int], actions: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Advance worlds ``ids`` by one primitive.

        Args:
            ids: worlds to step (their episodes must be running).
            actions: ``(len(ids), N, latent)`` float in [-1, 1] (checked by the caller).

        Returns:
            ``(rewards (k,), terminated (k,), truncated (k,), infos)``, one entry per world.
        """
        cfg = self.cfg
        hs = np.concatenate([self.humans(e) for e in ids])
        t = torch.as_tensor(hs)
        z = torch.from_numpy(np.ascontiguousarray(actions, np.float32).reshape(
            len(hs), self.latent_dim)) * cfg.action.scale
        new, out = self._prior_step(hs, t, z)
        active = np.concatenate([self.worlds[e].active for e in ids])
        mk = out.markers.double().numpy()  # (h, 18, 67, 3)
        feet = np.concatenate([self.markers[hs, 1][:, None], mk], 1)[:, :, self.feet]
        if np.any(self.floor_z[hs] != 0.0):
            feet = feet.copy()
            feet[..., 2] -= self.floor_z[hs][:, None, None]
        skate, contact = foot_terms(feet, cfg.reward.skating_threshold,
                                    cfg.reward.contact_height)
        pts = self.probe.points(out.global_orient, out.body_pose, out.transl, out.betas,
                                out.gender)
        keep = torch.as_tensor(active)
        self.history[t] = torch.where(keep[:, None, None, None], new.history, self.history[t])
        rollout = self._step_rollout(ids, hs, active, mk, out)
        act_h = hs[active]
        self.markers[act_h] = mk[active, -2:]
        self.eyes[act_h] = rollout.eyes[active, -1]
        self._keep_pose(act_h, out, active)
        prior_r = pose_prior(z.numpy())
        rewards, term, trunc, infos = [], [], [], []
        for k, e in enumerate(ids):
            sl = slice(k * self.N, (k + 1) * self.N)
            r, te, tr, info = self._finish_world(e, mk[sl], pts[sl], skate[sl], contact[sl],
                                                 prior_r[sl])
            rewards.append(r)
            term.append(te)
            trunc.append(tr)
            infos.append(info)
        self._publish(rollout, self._step_hooks)
        return np.array(rewards), np.array(term), np.array(trunc), infos

    def _prior_step(self, hs: np.ndarray, t: torch.Tensor, z: torch.Tensor) -> tuple[Any, Any]:
        """``MotionPrior.step`` of humans ``hs``, each with its floor (:attr:`floor_z`) moved
        to z = 0 for the prior (its floor contact keeps the feet on z = 0) and back."""
        from dataclasses import replace

        from egosim.envs.motion.prior import PriorState

        hist = self.history[t]
        floor = self.floor_z[hs]
        if not np.any(floor != 0.0):
            return self.prior.step(PriorState(hist, self.betas[t], self.gender[t]), z)
        fz = torch.from_numpy(floor.astype(np.float32))
        lift = torch.zeros(len(hs), 3)
        lift[:, 2] = fz
        new, out = self.prior.step(PriorState(hist - lift[:, None, None], self.betas[t],
                                              self.gender[t]), z)
        up = lift[:, None, None]
        new = replace(new, history=new.history + up)
        out = replace(out, markers=out.markers + up, joints=out.joints + up,
                      decoded=out.decoded + up, transl=out.transl + lift[:, None])
        return new, out

    def _step_rollout(self, ids: list[int], hs: np.ndarray, active: np.ndarray,
                      mk: np.ndarray, out: Any) -> FrameRollout:
        """The :class:`FrameRollout` of a step, before the sim's state is updated: the
        prior's frames (views, no copies) where every human moved; a stopped human's
        rows repeat its last pose."""
        f = mk.shape[1]
        steps = np.repeat([self.worlds[e].steps for e in ids], self.N)
        frames = steps[:, None] * FUTURE_FRAMES + np.arange(1, f + 1)[None]
        joints = out.joints.numpy()
        arrays = {"markers": mk, "joints": joints,
                  "eyes": joints[:, :, list(EYE_JOINTS)].astype(np.float64),
                  "global_orient": out.global_orient.numpy(), "body_pose": out.body_pose.numpy(),
                  "transl": out.transl.numpy()}
        if not active.all():
            still = ~active
            rows = hs[still]
            last = {"markers": self.markers[rows, 1], "eyes": self.eyes[rows], **{
                k: self.pose[k][rows] for k in ("joints", "global_orient", "body_pose",
                                                 "transl")}}
            for k, a in arrays.items():
                a = a.copy()
                a[still] = last[k][:, None]
                arrays[k] = a
        return FrameRollout(worlds=hs // self.N, humans=hs, frames=frames,
                            times=frames / MOTION_FPS, betas=out.betas.numpy(),
                            gender=out.gender.numpy().astype(np.int64), active=active.copy(),
                            **arrays)

    def _finish_world(self, e: int, mk: np.ndarray, pts: np.ndarray, skate: np.ndarray,
                      contact: np.ndarray, prior_r: np.ndarray
                      ) -> tuple[float, bool, bool, dict[str, Any]]:
        cfg, w = self.cfg, self.worlds[e]
        hs = self.humans(e)
        active = w.active.copy()
        counts = self.probe.count(w.scene, pts)  # (N, 18)
        pel = self.pelvis(self.markers[hs, 1])
        progress = np.zeros(self.N)
        for i, r in enumerate(w.routes):
            if active[i]:
                r.update(pel[i, :2])
                rem = r.remaining(pel[i, :2])
                progress[i] = w.remaining[i] - rem
                w.remaining[i] = rem
        target = np.stack([r.target() for r in w.routes])
        _, fwd, _ = self.body_frame(self.markers[hs, 1])
        eyes = self.eyes[hs]
        gaze = gaze_forward(eyes[:, 0], eyes[:, 1])
        goal_dist = np.array([np.linalg.norm(r.goal[:2] - pel[i, :2])
                              for i, r in enumerate(w.routes)])
        goals = np.stack([r.goal[:2] for r in w.routes])  # (N, 2)
        path_pel = self.pelvis(mk)[..., :2]  # (N, 18, 2): every frame of the primitive
        closest = np.linalg.norm(path_pel - goals[:, None], axis=-1).min(1)
        w.steps += 1
        rc = cfg.reward
        outcome = episode_outcome(
            closest, counts.max(1), w.steps, cfg.goal.success_radius,
            rc.penetration_mode == "strict", rc.penetration_limit, self.max_steps,
            on_floor=w.scene.in_footprint(pel[:, :2]) if cfg.episode.end_outside else None)
        success = outcome.success & active
        failed = outcome.failed & active
        raw = {"foot_skating": skate, "floor_contact": contact,
               "face_target": facing(fwd, pel, target), "look_at_target": facing(gaze, pel, target),
               "progress": progress, "success": success.astype(np.float64),
               "penetration": penetration_reward(counts), "pose_prior": prior_r}
        human_terms = weighted_terms(raw, rc.weights.model_dump(), rc.variant, active)
        human_reward = sum(human_terms[k] for k in TERMS)
        collisions = self._collisions(e, mk, active)
        w.collisions_total += collisions
        w.success |= success
        w.failed |= failed
        w.active = active & ~success & ~failed
        terminated = not w.active.any()
        truncated = bool(outcome.truncated and not terminated)
        outcome.truncated = truncated
        for i, reason in enumerate(end_reasons(outcome, active)):
            if active[i]:  # a human reactivated by its owner (a new goal) walks again
                w.end_reasons[i] = reason
        info = {
            "reward_terms": {k: float(v.mean()) for k, v in human_terms.items()},
            "is_success": bool(w.success.all()),
            "goal_distance_m": float(goal_dist.mean()),
            "closest_goal_distance_m": float(closest.mean()),
            "penetration_per_frame": float(counts[active].mean()) if active.any() else 0.0,
            "human_collisions": int(collisions),
            "human_collisions_total": int(w.collisions_total),
            "steps": int(w.steps),
            "scene_seed": -1 if w.scene_seed is None else int(w.scene_seed),
            "end_reason": world_end_reason(w.end_reasons, terminated, truncated),
        }
        if self.N > 1:
            info.update({"rewards": human_reward.astype(np.float64), "successes": w.success.copy(),
                         "human_reward_terms": human_terms,
                         "end_reasons": list(w.end_reasons)})
        return float(human_reward.mean()), terminated, truncated, info

    def _collisions(self, e: int, mk: np.ndarray, active: np.ndarray) -> int:
        """Pairs of humans of world ``e`` whose pelvis axes come closer than two cylinder
        radii (floor plane) in any frame of the primitive ``mk (N, 18, 67, 3)``; a finished
        (inactive) human stands still at its last pose (:mod:`egosim.envs.collisions`)."""
        from egosim.envs.collisions import count_collisions

        if self.N < 2:
            return 0
        still = self.pelvis(self.markers[self.humans(e), 1])  # (N, 3)
        return count_collisions(self.pelvis(mk), active, self.cfg.sensing.human_radius, still)
