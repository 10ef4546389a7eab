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
time_left      (1,)         ``1 - steps / max_steps``
<camera uuid>  (H, W, ...)  head-camera image per configured spec (rgb uint8 HWC, depth
                            float32 metres, semantic int32), camera at the eyes, horizontal
                            gaze; other humans are capsules (same radius as the rays see)
=============  ===========  ============================================================

A world's episode randomness (scene seed, starts, goals, headings, seed motions, camera
noise) comes from its own ``numpy.random.Generator`` given at reset; the motion prior is
deterministic, so the same seed and actions give the same trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from egosim.envs import resources
from egosim.envs.ego_sensing import HEAD_ABOVE_EYES, ego_sensing, gaze_forward
from egosim.envs.rewards import TERMS, facing, foot_terms, penetration_reward, pose_prior
from egosim.envs.task import Route, episode_end, sample_episode, yaw_towards

__all__ = ["Simulation", "World", "MARKER_DIM", "GOAL_DIM", "MARKER_CLIP"]

NUM_MARKERS = 67
MARKER_DIM = 2 * NUM_MARKERS * 3
GOAL_DIM = NUM_MARKERS * 3
MARKER_CLIP = 5.0
EYES = (23, 24)


@dataclass
class World:
    """Episode state of one world (scene + ``N`` humans)."""

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


class Simulation:
    """``num_worlds`` worlds of ``humans_per_world`` humans (see the module docstring).

    Args:
        cfg: a :class:`egosim.envs.config.LocomotionEnvConfig` (or crowd config).
        num_worlds: ``E``; humans_per_world: ``N``.
        min_separation: smallest start-start and goal-goal distance (m) within a world.
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
        h = self.E * self.N
        self.history = torch.zeros(h, 2, NUM_MARKERS, 3)
        self.betas = torch.zeros(h, self.prior.seeds["betas"].shape[1])
        self.gender = torch.zeros(h, dtype=torch.long)
        self.markers = np.zeros((h, 2, NUM_MARKERS, 3))
        self.eyes = np.zeros((h, 2, 3))
        self.ego_dist = np.zeros((h, cfg.sensing.num_rays))
        self.worlds = [World() for _ in range(self.E)]
        self._renderers: dict[tuple, Any] = {}

    def _camera_specs(self) -> list:
        from egosim.sensors.spec import CameraSpec

        return [CameraSpec(**d) for d in self.cfg.cameras.specs]

    def humans(self, e: int) -> np.ndarray:
        """Indices of world ``e``'s humans in the batch."""
        return np.arange(e * self.N, (e + 1) * self.N)

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
        idx = np.concatenate(hs)
        init = {"history": torch.stack(hists), "betas": torch.stack(betas),
                "gender": torch.stack(genders)}
        state, out = self.prior.reset(len(idx), init=init)
        t = torch.as_tensor(idx)
        self.history[t] = state.history
        self.betas[t] = state.betas
        self.gender[t] = state.gender
        self.markers[idx] = out.markers.double().numpy()
        self.eyes[idx] = out.joints[:, -1, list(EYES)].double().numpy()
        for e in ids:
            w = self.worlds[e]
            pel = self.pelvis(self.markers[self.humans(e), 1])
            for i, r in enumerate(w.routes):
                r.update(pel[i, :2])
            w.remaining = np.array([r.remaining(pel[i, :2]) for i, r in enumerate(w.routes)])

    # -- geometry helpers ---------------------------------------------------------------
    def joints3(self, markers: np.ndarray) -> np.ndarray:
        """``(..., 67, 3)`` markers -> ``(..., 3, 3)`` pelvis, left hip, right hip (m)."""
        return np.einsum("jk,...kc->...jc", self.mj, markers)

    def pelvis(self, markers: np.ndarray) -> np.ndarray:
        """``(..., 67, 3)`` markers -> ``(..., 3)`` pelvis (m)."""
        return np.einsum("k,...kc->...c", self.mj[0], markers)

    def body_frame(self, markers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Local frame of ``(n, 67, 3)`` markers: ``origin (n, 3)`` (pelvis on the floor),
        ``forward (n, 3)``, ``left (n, 3)`` (horizontal unit vectors)."""
        j = self.joints3(markers)
        x = j[:, 2] - j[:, 1]
        fwd = np.stack([-x[:, 1], x[:, 0], np.zeros(len(x))], 1)
        fwd /= np.maximum(np.linalg.norm(fwd, axis=1, keepdims=True), 1e-9)
        left = np.stack([-fwd[:, 1], fwd[:, 0], np.zeros(len(x))], 1)
        origin = j[:, 0].copy()
        origin[:, 2] = 0.0
        return origin, fwd, left

    # -- observations -------------------------------------------------------------------
    def observe(self, e: int) -> dict[str, np.ndarray]:
        """Observation of world ``e`` (keys of the module table; leading axis ``N``)."""
        w = self.worlds[e]
        hs = self.humans(e)
        m = self.markers[hs]  # (N, 2, 67, 3)
        origin, fwd, left = self.body_frame(m[:, 1])
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
            "time_left": np.full((n, 1), max(0.0, 1.0 - w.steps / self.cfg.episode.max_steps)),
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

    def camera_images(self, e: int) -> dict[str, np.ndarray]:
        """Head-camera images of world ``e``'s humans, ``{uuid: (N, H, W[, C])}``."""
        from egosim.envs.scenes import class_id
        from egosim.sensors import DynamicMesh, Renderer, capsule_triangles, head_frame

        w = self.worlds[e]
        key = (w.scene.name, w.scene_seed)
        if key not in self._renderers:
            if len(self._renderers) >= self.cfg.scene.cache_size:
                self._renderers.pop(next(iter(self._renderers)))
            self._renderers[key] = Renderer(w.scene)
        r = self._renderers[key]
        hs = self.humans(e)
        eyes = self.eyes[hs]
        pel = self.pelvis(self.markers[hs, 1])
        rad = self.cfg.sensing.human_radius
        person = class_id("person")
        meshes = []
        for i in range(self.N):
            top = max(eyes[i, :, 2].mean() + HEAD_ABOVE_EYES, 2 * rad + 1e-3)
            tri = capsule_triangles((pel[i, 0], pel[i, 1], 0.0), top, rad, 12, 2)
            meshes.append(DynamicMesh(tri, person, 1000 + i, (0.8, 0.6, 0.5),
                                      np.zeros(len(tri), bool)))
        r.set_dynamic_meshes(meshes)
        poses = head_frame(eyes)
        out = r.render(self.camera_specs, poses, wearer=np.arange(self.N), rng=w.rng)
        return {s.uuid: out[s.uuid] for s in self.camera_specs}

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
        from egosim.envs.motion.prior import PriorState

        new, out = self.prior.step(PriorState(self.history[t], self.betas[t], self.gender[t]), z)
        active = np.concatenate([self.worlds[e].active for e in ids])
        mk = out.markers.double().numpy()  # (h, 18, 67, 3)
        feet = np.concatenate([self.markers[hs, 1][:, None], mk], 1)[:, :, self.feet]
        skate, contact = foot_terms(feet, cfg.reward.skating_threshold,
                                    cfg.reward.contact_height)
        pts = self.probe.points(out.global_orient, out.body_pose, out.transl, out.betas,
                                out.gender)
        keep = torch.as_tensor(active)
        self.history[t] = torch.where(keep[:, None, None, None], new.history, self.history[t])
        act_h = hs[active]
        self.markers[act_h] = mk[active, -2:]
        self.eyes[act_h] = out.joints[:, -1, list(EYES)].double().numpy()[active]
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
        return np.array(rewards), np.array(term), np.array(trunc), infos

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
        success, failed, truncated = episode_end(
            closest, counts.max(1), w.steps, cfg.goal.success_radius,
            rc.penetration_mode == "strict", rc.penetration_limit, cfg.episode.max_steps)
        success &= active
        failed &= active
        raw = {"foot_skating": skate, "floor_contact": contact,
               "face_target": facing(fwd, pel, target), "look_at_target": facing(gaze, pel, target),
               "progress": progress, "success": success.astype(np.float64),
               "penetration": penetration_reward(counts), "pose_prior": prior_r}
        weights = rc.weights.model_dump()
        human_terms = {k: np.where(active, weights[k] * raw[k], 0.0) for k in TERMS}
        human_reward = sum(human_terms[k] for k in TERMS)
        collisions = self._collisions(e, mk, active)
        w.collisions_total += collisions
        w.success |= success
        w.failed |= failed
        w.active = active & ~success & ~failed
        terminated = not w.active.any()
        truncated = bool(truncated and not terminated)
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
        }
        if self.N > 1:
            info.update({"rewards": human_reward.astype(np.float64), "successes": w.success.copy(),
                         "human_reward_terms": human_terms})
        return float(human_reward.mean()), terminated, truncated, info

    def _collisions(self, e: int, mk: np.ndarray, active: np.ndarray) -> int:
        """Pairs of humans of world ``e`` whose pelvis axes come closer than two cylinder
        radii (floor plane) in any frame of the primitive ``mk (N, 18, 67, 3)``; a finished
        (inactive) human stands still at its last pose."""
        if self.N < 2:
            return 0
        p = self.pelvis(mk)[..., :2]  # (N, 18, 2)
        still = self.pelvis(self.markers[self.humans(e), 1])[:, None, :2]
        p = np.where(active[:, None, None], p, still)
        d = np.linalg.norm(p[:, None] - p[None], axis=-1).min(-1)  # (N, N)
        close = d < 2.0 * self.cfg.sensing.human_radius
        iu = np.triu_indices(self.N, 1)
        return int(close[iu].sum())
