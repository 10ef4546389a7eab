"""Controller factories: what drives the humans of a simulation that something else steps.

A factory is called as ``factory(sim, seed, **options)`` with the
:class:`egosim.envs.simulation.Simulation` being stepped (``E`` worlds of ``N`` humans) and
an int seed, and returns a controller (:data:`egosim.agents.evaluate.Controller`): an
observation dict of ``(E, N * d)`` float32 arrays (the per-human keys of
:meth:`Simulation.observe <egosim.envs.simulation.Simulation.observe>`, flattened over the
``N`` humans of each world) -> actions ``(E, N * 128)`` float32 in [-1, 1]. The clip builder
(:mod:`egosim.egom2p.clips`) names one by its import path in its config
(``controller: egosim.agents.controllers:shipped_policy``), so ``egosim.egom2p`` never
imports this package.

===================  ==================================================================
factory              humans
===================  ==================================================================
shipped_policy       the PPO policy (``agents/checkpoints/ppo_locomotion.zip`` or
                     ``path``), mean action plus optional Gaussian action noise drawn
                     from the seed (``action_noise``, in action units)
scripted_walker      :class:`~egosim.agents.scripted.SamplingController`: sampled
                     latents, the one ending nearest the route target kept (privileged)
prior_walker         the motion prior's own rollouts, ``z ~ N(0, I)`` (no goals)
===================  ==================================================================
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from egosim.agents.evaluate import Controller, load_policy, policy_controller, prior_controller

__all__ = ["prior_walker", "scripted_walker", "shipped_policy"]

_POLICIES: dict[str, Any] = {}


def _policy(path: str | Path | None) -> Any:
    """``load_policy(path)``, loaded once per process and path."""
    key = str(path)
    if key not in _POLICIES:
        _POLICIES[key] = load_policy(path)
    return _POLICIES[key]


def shipped_policy(sim: Any, seed: int, path: str | Path | None = None,
                   deterministic: bool = True, action_noise: float = 0.0) -> Controller:
    """The PPO policy driving every human of ``sim`` from its own observation.

    Args:
        sim: the simulation (its ``N`` humans per world share the policy).
        seed: seed of the action noise (unused without it).
        path: a stable-baselines3 PPO ``.zip`` of the single-human env; None: the shipped.
        deterministic: the policy's mean action (the stochastic one would draw from torch's
            global generator: use ``action_noise`` for seeded variety instead).
        action_noise: standard deviation of Gaussian noise added to each action (action
            units, then clipped to [-1, 1]); 0: none.

    Raises:
        ValueError: the policy's observation does not match the simulation's, or a
            negative ``action_noise``.
        FileNotFoundError: no such policy file.
    """
    if action_noise < 0:
        raise ValueError(f"action_noise must be >= 0 (controller_options.action_noise); got "
                         f"{action_noise}")
    model = _policy(path)
    want = model.observation_space["markers"].shape[0]
    have = int(sim.markers.shape[1] * sim.markers.shape[2] * sim.markers.shape[3])
    if want != have:
        raise ValueError(f"policy observation markers ({want},) do not match the "
                         f"simulation's ({have},) per human")
    act = policy_controller(model, int(sim.N), deterministic)
    if action_noise == 0:
        return act
    rng = np.random.default_rng(seed)

    def noisy(obs: dict[str, np.ndarray]) -> np.ndarray:
        a = act(obs)
        return np.clip(a + action_noise * rng.standard_normal(a.shape), -1.0, 1.0
                       ).astype(np.float32)

    return noisy


def scripted_walker(sim: Any, seed: int, candidates: int = 32, sigma: float = 2.0,
                    human_weight: float = 0.0) -> Controller:
    """The sampling planner (:class:`~egosim.agents.scripted.SamplingController`) on ``sim``:
    ``candidates`` latents of standard deviation ``sigma`` per human and step, drawn from
    ``seed``; ``human_weight`` > 0 steers around the other humans (cost in metres)."""
    from egosim.agents.scripted import SamplingController

    return SamplingController(SimpleNamespace(sim=sim), candidates=candidates, sigma=sigma,
                              rng=np.random.default_rng(seed), human_weight=human_weight)


def prior_walker(sim: Any, seed: int) -> Controller:
    """Random latents ``z ~ N(0, I)`` from ``seed``: the motion prior's own rollouts."""
    return prior_controller(int(sim.latent_dim), int(sim.N), float(sim.cfg.action.scale),
                            np.random.default_rng(seed))
