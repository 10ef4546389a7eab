"""A scripted baseline: pick each step's latent by sampling (model-predictive, one step).

For every running human, :class:`SamplingController` draws ``candidates`` latents
``z ~ N(0, sigma^2 I)`` (plus ``z = 0``), decodes each with the motion prior's C-VAE (no
body regression: markers only), and keeps the one whose 18 decoded frames score best:

    cost = |pelvis_last - target| + heading_weight * (1 - cos(forward_last, to target))
           + obstacle_weight * fraction of frames whose pelvis cell is not walkable
           + human_weight * fraction of frames whose pelvis is within human_clearance of
             another human's pelvis, extrapolated at constant velocity (crowds only)

(floor plane, m). When the target is the final goal the first term is the smallest
pelvis-goal distance over the 18 frames instead (success counts in any frame) and the
heading term is dropped.

``target`` is the env's current route target (``goal.lookahead`` ahead on the planned
route), so the controller uses privileged state (the simulation's history, scene and
route), not the observation. It is a reference for what the prior can do, not an agent.
"""

from __future__ import annotations

import numpy as np
import torch

from egosim.envs.motion.canonical_markers import to_canonical, to_world

__all__ = ["SamplingController", "simulation_of"]


def simulation_of(venv):
    """The simulation behind an SB3 ``VecEnv`` over
    :class:`egosim.envs.vector.EgoVectorEnv`, looking through wrappers (``VecMonitor`` ->
    ``SB3VecEnv`` -> ``EgoVectorEnv``).

    Raises:
        TypeError: ``venv`` does not wrap an ``EgoVectorEnv``.
    """
    inner = venv
    while not hasattr(inner, "sim"):
        if not hasattr(inner, "venv"):
            raise TypeError("needs a VecEnv over egosim.envs.vector.EgoVectorEnv; got "
                            f"{type(venv).__name__}")
        inner = inner.venv
    return inner.sim


class SamplingController:
    """Controller ``obs -> actions (E, N * 128)`` for an SB3 ``VecEnv`` over
    :class:`egosim.envs.vector.EgoVectorEnv` (reads its ``sim``).

    Args:
        venv: the :class:`egosim.agents.sb3_vec_env.SB3VecEnv` being stepped (wrappers such as
            ``VecMonitor`` are looked through).
        candidates: latents sampled per human and step.
        sigma: their standard deviation (latent units; the prior is N(0, I)), clipped to
            the env's ``action.scale``.
        obstacle_weight: cost per unit fraction of non-walkable pelvis frames (m).
        heading_weight: cost (m) per unit of ``1 - cos`` between the body's final forward
            direction and the direction to the target (intermediate targets only).
        human_weight: cost (m) per unit fraction of frames that come within
            ``human_clearance`` (m, floor plane) of another human of the same world, whose
            pelvis is extrapolated at its current velocity (0: ignore other humans).
        human_clearance: that distance; default twice the env's ``sensing.human_radius`` plus
            0.1 m (a collision is closer than two radii).
        fixed: draw the candidates once (a codebook of ``candidates + 1`` latents shared by
            every step) instead of afresh each step: the choice is then a deterministic
            function of the state, which a student policy can imitate
            (:mod:`egosim.agents.imitation`).
        rng: the sampling generator.
    """

    def __init__(self, venv, candidates: int = 32, sigma: float = 2.0,
                 obstacle_weight: float = 10.0, heading_weight: float = 0.5,
                 rng: np.random.Generator | None = None, fixed: bool = False,
                 human_weight: float = 0.0, human_clearance: float | None = None) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1; got {candidates}")
        self.sim = simulation_of(venv)
        self.candidates, self.sigma = int(candidates), float(sigma)
        self.obstacle_weight = float(obstacle_weight)
        self.heading_weight = float(heading_weight)
        self.human_weight = float(human_weight)
        self.human_clearance = float(human_clearance if human_clearance is not None
                                     else 2.0 * self.sim.cfg.sensing.human_radius + 0.1)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.scale = float(self.sim.cfg.action.scale)
        self.codebook = self._draw(1)[0] if fixed else None  # (k, latent)

    def _draw(self, h: int) -> np.ndarray:
        z = self.rng.standard_normal((h, self.candidates + 1, self.sim.latent_dim)) * self.sigma
        z[:, 0] = 0.0
        return np.clip(z, -self.scale, self.scale)

    def _crowding(self, pel: np.ndarray, hist: torch.Tensor) -> np.ndarray:
        """``(h, k)`` fraction of each candidate's 18 pelvis frames ``pel (h, k, 18, 3)``
        closer than ``human_clearance`` (floor plane) to another human of the same world,
        extrapolated from its last two frames ``hist (h, 2, 67, 3)`` at constant velocity;
        zeros when unused."""
        sim = self.sim
        h, k = pel.shape[:2]
        if self.human_weight == 0.0 or sim.N < 2:
            return np.zeros((h, k))
        two = sim.pelvis(hist.double().numpy())[:, :, :2]  # (h, 2, 2): last two frames
        f = pel.shape[2]
        # the others keep their current velocity over the primitive: (E, N, F, 2)
        step = np.arange(1, f + 1)[None, :, None]
        ahead = (two[:, 1:] + (two[:, 1:] - two[:, :1]) * step).reshape(sim.E, sim.N, f, 2)
        cand = pel[..., :2].reshape(sim.E, sim.N, k, f, 2)
        # d[e, i, c, f, o]: candidate c of human i, frame f, to other human o at frame f
        d = np.linalg.norm(cand[:, :, :, :, None] - ahead.transpose(0, 2, 1, 3)[:, None, None],
                           axis=-1)
        d[:, np.arange(sim.N), :, :, np.arange(sim.N)] = np.inf  # not oneself
        near = (d < self.human_clearance).any(-1)  # (E, N, k, 18)
        return near.mean(-1).reshape(h, k)

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        sim, k = self.sim, self.candidates + 1
        h = sim.E * sim.N
        prior = sim.prior
        z = (self._draw(h) if self.codebook is None else
             np.broadcast_to(self.codebook, (h,) + self.codebook.shape))
        hist = sim.history  # (h, 2, 67, 3) world
        origin, rot = prior.marker_joints.frame(hist[:, 0])
        canon = to_canonical(hist, origin, rot)
        rep = lambda t: t.repeat_interleave(k, 0)  # noqa: E731
        fut = prior.decode(rep(canon), torch.as_tensor(z.reshape(h * k, -1), dtype=torch.float32))
        world = to_world(fut, rep(origin), rep(rot)).double().numpy()  # (h k, 18, 67, 3)
        pel = sim.pelvis(world).reshape(h, k, -1, 3)  # (h, k, 18, 3)
        _, fwd, _ = sim.body_frame(world[:, -1])
        fwd = fwd.reshape(h, k, 3)[..., :2]
        best = np.zeros((h, sim.latent_dim))
        crowded = self._crowding(pel, hist)  # (h, k) fraction of frames near another human
        for e, w in enumerate(sim.worlds):
            for i, route in enumerate(w.routes):
                j = e * sim.N + i
                target = route.target()[:2]
                if route.target_index() == len(route.points) - 1:  # final goal: pass within
                    cost = np.linalg.norm(pel[j, :, :, :2] - target, axis=-1).min(-1)
                else:
                    to = target - pel[j, :, -1, :2]
                    dist = np.linalg.norm(to, axis=-1)
                    cos = (fwd[j] * to).sum(-1) / np.maximum(dist, 1e-9)
                    cost = dist + self.heading_weight * (1.0 - cos)
                blocked = 1.0 - w.scene.is_walkable(pel[j, :, :, :2]).mean(-1)
                cost = cost + self.obstacle_weight * blocked + self.human_weight * crowded[j]
                best[j] = z[j, int(np.argmin(cost))]
        return np.clip(best / self.scale, -1.0, 1.0).reshape(sim.E, -1).astype(np.float32)
