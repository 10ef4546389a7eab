"""A scripted baseline: pick each step's latent by sampling (model-predictive, one step).

For every running human, :class:`SamplingController` draws ``candidates`` latents
``z ~ N(0, sigma^2 I)`` (plus ``z = 0``), decodes each with the motion prior's C-VAE (no
body regression: markers only), and keeps the one whose 18 decoded frames score best:

    cost = |pelvis_last - target| + heading_weight * (1 - cos(forward_last, to target))
           + obstacle_weight * fraction of frames whose pelvis cell is not walkable

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

from egosim.envs.motion.marker_frame import to_canonical, to_world

__all__ = ["SamplingController"]


class SamplingController:
    """Controller ``obs -> actions (E, N * 128)`` for an SB3 ``VecEnv`` over
    :class:`egosim.envs.vector.EgoVectorEnv` (reads its ``sim``).

    Args:
        venv: the :class:`egosim.envs.vector.SB3VecEnv` being stepped (wrappers such as
            ``VecMonitor`` are looked through).
        candidates: latents sampled per human and step.
        sigma: their standard deviation (latent units; the prior is N(0, I)), clipped to
            the env's ``action.scale``.
        obstacle_weight: cost per unit fraction of non-walkable pelvis frames (m).
        heading_weight: cost (m) per unit of ``1 - cos`` between the body's final forward
            direction and the direction to the target (intermediate targets only).
        fixed: draw the candidates once (a codebook of ``candidates + 1`` latents shared by
            every step) instead of afresh each step: the choice is then a deterministic
            function of the state, which a student policy can imitate
            (:mod:`egosim.agents.imitation`).
        rng: the sampling generator.
    """

    def __init__(self, venv, candidates: int = 32, sigma: float = 2.0,
                 obstacle_weight: float = 10.0, heading_weight: float = 0.5,
                 rng: np.random.Generator | None = None, fixed: bool = False) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1; got {candidates}")
        inner = venv
        while not hasattr(inner, "sim"):  # VecMonitor -> SB3VecEnv -> EgoVectorEnv
            if not hasattr(inner, "venv"):
                raise TypeError("SamplingController needs a VecEnv over "
                                "egosim.envs.vector.EgoVectorEnv")
            inner = inner.venv
        self.sim = inner.sim
        self.candidates, self.sigma = int(candidates), float(sigma)
        self.obstacle_weight = float(obstacle_weight)
        self.heading_weight = float(heading_weight)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.scale = float(self.sim.cfg.action.scale)
        self.codebook = self._draw(1)[0] if fixed else None  # (k, latent)

    def _draw(self, h: int) -> np.ndarray:
        z = self.rng.standard_normal((h, self.candidates + 1, self.sim.latent_dim)) * self.sigma
        z[:, 0] = 0.0
        return np.clip(z, -self.scale, self.scale)

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
                best[j] = z[j, int(np.argmin(cost + self.obstacle_weight * blocked))]
        return np.clip(best / self.scale, -1.0, 1.0).reshape(sim.E, -1).astype(np.float32)
