"""Batched vector envs: many independent episodes stepped in one process, one
``MotionPrior.step`` call for all of them.

:class:`EgoVectorEnv` is the ``vector_entry_point`` of ``egosim/EgoLocomotion-v0`` and
``egosim/EgoCrowd-v0`` (``gymnasium.make_vec(id, num_envs, vectorization_mode=
"vector_entry_point")``, the default for these ids). Sub-env ``i`` is a world of its own
(its own scene, goals and generator); its spaces are the single env's, batched
(``observation_space[key].shape == (num_envs,) + single_observation_space[key].shape``).

Seeding: ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i`` (Gymnasium's convention, so a
sub-env reproduces ``gymnasium.make(id).reset(seed=s + i)`` up to float round-off of the
batched prior); a list gives one seed per sub-env; None draws fresh entropy.

Autoreset: ``AutoresetMode.NEXT_STEP`` (Gymnasium 1.x default): the step after a sub-env's
episode ended resets it, returns its first observation with reward 0 and ignores its action.
``AutoresetMode.SAME_STEP`` (used by stable-baselines3's adapter,
:class:`egosim.agents.sb3_vec_env.SB3VecEnv`) resets in the ending step and puts the last
observation in ``info["final_obs"]`` and the last info in ``info["final_info"]``.

Never imports stable-baselines3 (that adapter lives with the agents).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from pydantic import BaseModel

from egosim.envs.env_base import (
    RENDER_FPS,
    action_space,
    check_action,
    check_max_steps,
    flatten_obs,
    observation_space,
    render_world,
    resolve_config,
)

__all__ = ["EgoVectorEnv", "make_locomotion_vector", "make_crowd_vector"]

#: Render modes of the batched env (one ``rgb_array`` image per sub-env).
RENDER_MODES = ["rgb_array"]


class EgoVectorEnv(VectorEnv):
    """``num_envs`` EgoGen episodes in one process (see the module docstring).

    Args:
        num_envs: sub-envs (worlds).
        config, overrides: as the single envs (None: the schema's defaults).
        crowd: worlds of ``crowd.num_humans`` humans (EgoCrowd) instead of one.
        render_mode: None or ``"rgb_array"`` (``render()``: one image per sub-env).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``SAME_STEP``.
        max_episode_steps: step limit of every sub-env's episodes (``time_left`` counts down
            to it); None: the config's ``episode.max_steps``. ``gymnasium.make_vec(id,
            num_envs, max_episode_steps=k)`` passes it.
    """

    def __init__(self, num_envs: int = 1, config: str | os.PathLike | dict | BaseModel | None
                 = None, overrides: list[str] | dict[str, Any] | None = None,
                 crowd: bool = False, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 max_episode_steps: int | None = None) -> None:
        from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig
        from egosim.envs.simulation import Simulation

        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int; got {num_envs!r}")
        mode = AutoresetMode(autoreset_mode)
        if mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be NEXT_STEP or SAME_STEP")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None; got "
                             f"{render_mode!r}")
        schema = CrowdEnvConfig if crowd else LocomotionEnvConfig
        cfg = resolve_config(config, overrides, schema)
        n = cfg.crowd.num_humans if crowd else 1
        sep = cfg.crowd.min_separation if crowd else 0.0
        self.cfg = cfg
        self.num_envs = num_envs
        self.num_humans = n
        self.render_mode = render_mode
        self.autoreset_mode = mode
        self.metadata = {"autoreset_mode": mode, "render_modes": RENDER_MODES,
                         "render_fps": RENDER_FPS}
        self.sim = Simulation(cfg, num_envs, n, sep)
        self.sim.max_steps = check_max_steps(max_episode_steps, cfg.episode.max_steps)
        self.camera_uuids = [s.uuid for s in self.sim.camera_specs]
        self.single_observation_space = observation_space(n, cfg.sensing.num_rays,
                                                          self.sim.camera_specs)
        self.single_action_space = action_space(n, self.sim.latent_dim)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = np.ones(num_envs, bool)
        self._started = False
        self.last_infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]
        self.last_final_obs: list[dict[str, np.ndarray] | None] = [None] * num_envs

    # -- helpers ------------------------------------------------------------------------
    def _obs_one(self, e: int) -> dict[str, np.ndarray]:
        return flatten_obs(self.sim.observe(e), self.camera_uuids, self.num_humans)

    def _stack(self, per_env: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.stack([o[k] for o in per_env]) for k in per_env[0]}

    def _rngs(self, seed: int | list[int | None] | None) -> list[np.random.Generator]:
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int, None or a list of {self.num_envs} "
                                 f"seeds; got a list of {len(seeds)}")
        return [seeding.np_random(s)[0] for s in seeds]

    def _reset_info(self, e: int) -> dict[str, Any]:
        w = self.sim.worlds[e]
        return {"scene_seed": -1 if w.scene_seed is None else int(w.scene_seed),
                "route_length_m": float(np.mean([r.length for r in w.routes])),
                "max_steps": int(self.sim.max_steps)}

    @property
    def max_steps(self) -> int:
        """The step limit of every sub-env's episodes."""
        return int(self.sim.max_steps)

    # -- Gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset every sub-env (see the module docstring for seeds)."""
        ids = list(range(self.num_envs))
        if seed is not None or not self._started:
            rngs = self._rngs(seed)
        else:
            rngs = [self.sim.worlds[e].rng for e in ids]
        self.sim.reset_worlds(ids, rngs)
        self._started = True
        self._needs_reset[:] = False
        infos: dict[str, Any] = {}
        for e in ids:
            infos = self._add_info(infos, self._reset_info(e), e)
        obs = self._stack([self._obs_one(e) for e in ids])
        return obs, self._camera_infos(infos)

    def _camera_infos(self, infos: dict[str, Any]) -> dict[str, Any]:
        """``infos`` plus each sub-env's ``camera_pose`` ``{uuid: (N, 4, 4)}`` (``(4, 4)``
        for one human) and ``camera_intrinsics`` of the observation just returned."""
        for e in range(self.num_envs):
            info = self.sim.camera_info[e]
            if not info:
                continue
            one = self.num_humans == 1
            ci = {"camera_pose": {k: v[0] if one else v for k, v in
                                  info["camera_pose"].items()},
                  "camera_intrinsics": dict(info["camera_intrinsics"])}
            infos = self._add_info(infos, ci, e)
        return infos

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray,
                                          np.ndarray, dict[str, Any]]:
        """Step every running sub-env; autoreset as configured (module docstring)."""
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = check_action(actions, self.single_action_space, (self.num_envs,))
        e_all = np.arange(self.num_envs)
        rewards = np.zeros(self.num_envs)
        term = np.zeros(self.num_envs, bool)
        trunc = np.zeros(self.num_envs, bool)
        infos: dict[str, Any] = {}
        resets = e_all[self._needs_reset].tolist()
        run = e_all[~self._needs_reset].tolist()
        if resets:
            self.sim.reset_worlds(resets, [self.sim.worlds[e].rng for e in resets])
            for e in resets:
                infos = self._add_info(infos, self._reset_info(e), e)
        if run:
            r, te, tr, per = self.sim.step(run, a[run].reshape(len(run), self.num_humans, -1))
            rewards[run], term[run], trunc[run] = r, te, tr
            for e, info in zip(run, per, strict=True):
                self.last_infos[e] = info
                infos = self._add_info(infos, info, e)
        done = term | trunc
        self.last_final_obs = [None] * self.num_envs
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            ended = e_all[done].tolist()
            final = {e: self._obs_one(e) for e in ended}
            self.sim.reset_worlds(ended, [self.sim.worlds[e].rng for e in ended])
            fin_obs = np.empty(self.num_envs, object)
            fin_info = np.empty(self.num_envs, object)
            for e in ended:
                fin_obs[e], fin_info[e] = final[e], self.last_infos[e]
                self.last_final_obs[e] = final[e]
            infos["final_obs"], infos["_final_obs"] = fin_obs, done.copy()
            infos["final_info"], infos["_final_info"] = fin_info, done.copy()
        else:
            self._needs_reset = done.copy()
        obs = self._stack([self._obs_one(e) for e in e_all])
        return obs, rewards, term, trunc, self._camera_infos(infos)

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``rgb_array`` image per sub-env (see :mod:`egosim.envs.topdown`)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode")
            return None
        return tuple(render_world(self.sim, e) for e in range(self.num_envs))


def make_locomotion_vector(num_envs: int = 1, **kwargs: Any) -> EgoVectorEnv:
    """``vector_entry_point`` of ``egosim/EgoLocomotion-v0``."""
    return EgoVectorEnv(num_envs, crowd=False, **kwargs)


def make_crowd_vector(num_envs: int = 1, **kwargs: Any) -> EgoVectorEnv:
    """``vector_entry_point`` of ``egosim/EgoCrowd-v0``."""
    return EgoVectorEnv(num_envs, crowd=True, **kwargs)

