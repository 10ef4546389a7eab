"""Batched vector envs: many independent episodes stepped in one process, one
``MotionPrior.step`` call for all of them; and an adapter to stable-baselines3's ``VecEnv``.

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
``AutoresetMode.SAME_STEP`` (used by :class:`SB3VecEnv`) resets in the ending step and puts
the last observation in ``info["final_obs"]`` and the last info in ``info["final_info"]``.
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
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from egosim.envs.env_base import (
    RENDER_MODES,
    action_space,
    check_action,
    flatten_obs,
    observation_space,
    render_world,
    resolve_config,
)

__all__ = ["EgoVectorEnv", "SB3VecEnv", "make_locomotion_vector", "make_crowd_vector"]


class EgoVectorEnv(VectorEnv):
    """``num_envs`` EgoGen episodes in one process (see the module docstring).

    Args:
        num_envs: sub-envs (worlds).
        config, overrides: as the single envs (shipped ``env_locomotion``/``env_crowd``).
        crowd: worlds of ``crowd.num_humans`` humans (EgoCrowd) instead of one.
        render_mode: None or ``"rgb_array"`` (``render()``: one image per sub-env).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``SAME_STEP``.
    """

    def __init__(self, num_envs: int = 1, config: str | os.PathLike | dict | BaseModel | None
                 = None, overrides: list[str] | dict[str, Any] | None = None,
                 crowd: bool = False, render_mode: str | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP) -> None:
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
        cfg = resolve_config(config, overrides, schema, "env_crowd" if crowd else
                             "env_locomotion")
        n = cfg.crowd.num_humans if crowd else 1
        sep = cfg.crowd.min_separation if crowd else 0.0
        self.cfg = cfg
        self.num_envs = num_envs
        self.num_humans = n
        self.render_mode = render_mode
        self.autoreset_mode = mode
        self.metadata = {"autoreset_mode": mode, "render_modes": RENDER_MODES,
                         "render_fps": 40.0 / 18.0}
        self.sim = Simulation(cfg, num_envs, n, sep)
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
                "route_length_m": float(np.mean([r.length for r in w.routes]))}

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
        return self._stack([self._obs_one(e) for e in ids]), infos

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
        return obs, rewards, term, trunc, infos

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


class SB3VecEnv(VecEnv):
    """stable-baselines3 ``VecEnv`` over an :class:`EgoVectorEnv` (same-step autoreset).

    ``step_wait`` returns ``(obs, rewards, dones, infos)`` with SB3's conventions: a list of
    per-env info dicts, ``infos[i]["terminal_observation"]`` and
    ``infos[i]["TimeLimit.truncated"]`` when sub-env ``i`` ended (it is already reset in
    ``obs``). ``seed(s)`` seeds the next ``reset`` (sub-env ``i`` gets ``s + i``).

    Args:
        venv: an :class:`EgoVectorEnv`, or the keyword arguments to build one.
    """

    def __init__(self, venv: EgoVectorEnv | None = None, **kwargs: Any) -> None:
        if venv is None:
            venv = EgoVectorEnv(autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        if venv.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError("SB3VecEnv needs an EgoVectorEnv built with autoreset_mode="
                             "AutoresetMode.SAME_STEP")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space,
                         venv.single_action_space)
        self.render_mode = venv.render_mode
        self._actions: np.ndarray | None = None

    def reset(self) -> dict[str, np.ndarray]:
        seeds = [s if s is None else int(s) for s in self._seeds]
        seed = None if all(s is None for s in seeds) else seeds
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.float32)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        obs, rew, term, trunc, _ = self.venv.step(self._actions)
        dones = term | trunc
        infos = []
        for e in range(self.num_envs):
            info = dict(self.venv.last_infos[e])
            if dones[e]:
                info["terminal_observation"] = self.venv.last_final_obs[e]
                info["TimeLimit.truncated"] = bool(trunc[e] and not term[e])
            infos.append(info)
        return obs, rew.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs
                   ) -> list[Any]:
        fn = getattr(self.venv, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> list[np.ndarray]:
        out = self.venv.render()
        return list(out) if out is not None else []
