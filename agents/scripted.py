"""A scripted baseline: pick each step's latent by sampling (model-predictive, one step).

For every running human, :class:`SamplingController` draws ``candidates`` latents
``z ~ N(0, sigma^2 I)`` (plus ``z = 0``), decodes each with the motion prior's C-VAE (no
body regression: markers only), and keeps the one whose 18 decoded frames score best:

    cost = |pelvis_last - target|  (floor plane, m)
           + obstacle_weight * fraction of frames whose pelvis cell is not walkable

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
        venv: the :class:`egosim.envs.vector.SB3VecEnv` being stepped.
        candidates: latents sampled per human and step.
        sigma: their standard deviation (latent units; the prior is N(0, I)).
        obstacle_weight: cost per unit fraction of non-walkable pelvis frames (m).
        rng: the sampling generator.
    """

    def __init__(self, venv, candidates: int = 32, sigma: float = 1.0,
                 obstacle_weight: float = 2.0, rng: np.random.Generator | None = None
                 ) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1; got {candidates}")
        self.sim = venv.venv.sim
        self.candidates, self.sigma = int(candidates), float(sigma)
        self.obstacle_weight = float(obstacle_weight)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.scale = float(self.sim.cfg.action.scale)

    @torch.no_grad()
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        sim, k = self.sim, self.candidates + 1
        h = sim.E * sim.N
        prior = sim.prior
        z = self.rng.standard_normal((h, k, sim.latent_dim)) * self.sigma
        z[:, 0] = 0.0
        z = np.clip(z, -self.scale, self.scale)
        hist = sim.history  # (h, 2, 67, 3) world
        origin, rot = prior.marker_joints.frame(hist[:, 0])
        canon = to_canonical(hist, origin, rot)
        rep = lambda t: t.repeat_interleave(k, 0)  # noqa: E731
        fut = prior.decode(rep(canon), torch.as_tensor(z.reshape(h * k, -1), dtype=torch.float32))
        world = to_world(fut, rep(origin), rep(rot)).double().numpy()  # (h k, 18, 67, 3)
        pel = sim.pelvis(world).reshape(h, k, -1, 3)  # (h, k, 18, 3)
        best = np.zeros((h, sim.latent_dim))
        for e, w in enumerate(sim.worlds):
            for i, route in enumerate(w.routes):
                j = e * sim.N + i
                dist = np.linalg.norm(pel[j, :, -1, :2] - route.target()[None, :2], axis=-1)
                blocked = 1.0 - w.scene.is_walkable(pel[j, :, :, :2]).mean(-1)
                best[j] = z[j, int(np.argmin(dist + self.obstacle_weight * blocked))]
        return np.clip(best / self.scale, -1.0, 1.0).reshape(sim.E, -1).astype(np.float32)
