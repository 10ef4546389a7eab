"""stable-baselines3's ``VecEnv`` over the batched env (:class:`egosim.envs.vector.EgoVectorEnv`).

The envs never import stable-baselines3; this adapter is what the agents (training,
evaluation, imitation) step. The batched env runs with ``AutoresetMode.SAME_STEP``, so a
sub-env that ends is reset within the same ``step`` and its last observation is reported in
``infos[i]["terminal_observation"]``, as stable-baselines3 expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from egosim.envs.vector import EgoVectorEnv

__all__ = ["SB3VecEnv"]

Indices = int | Sequence[int] | None


class SB3VecEnv(VecEnv):
    """stable-baselines3 ``VecEnv`` over an :class:`EgoVectorEnv` (same-step autoreset).

    ``step_wait`` returns ``(obs, rewards, dones, infos)`` with SB3's conventions: a list of
    per-env info dicts, ``infos[i]["terminal_observation"]`` and
    ``infos[i]["TimeLimit.truncated"]`` when sub-env ``i`` ended (it is already reset in
    ``obs``). ``seed(s)`` seeds the next ``reset`` (sub-env ``i`` gets ``s + i``).

    Args:
        venv: an :class:`EgoVectorEnv` built with ``autoreset_mode=AutoresetMode.SAME_STEP``,
            or None to build one from ``kwargs``.
        **kwargs: :class:`EgoVectorEnv` arguments (``num_envs``, ``config``, ``overrides``,
            ``crowd``, ``render_mode``) when ``venv`` is None.

    Raises:
        ValueError: ``venv`` does not autoreset in the same step.
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
        """Reset every sub-env (with the seeds given to ``seed``, if any); the observations."""
        seeds = [s if s is None else int(s) for s in self._seeds]
        seed = None if all(s is None for s in seeds) else seeds
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the ``(num_envs, action_dim)`` actions of the next ``step_wait``."""
        self._actions = np.asarray(actions, np.float32)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """Step every sub-env with the remembered actions (see the class docstring)."""
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
        """Close the batched env."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Indices = None) -> list[Any]:
        """The batched env's attribute, once per requested sub-env (they share one env)."""
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Indices = None) -> None:
        """Set an attribute of the batched env (shared by every sub-env)."""
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Indices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the batched env, once per requested sub-env."""
        fn = getattr(self.venv, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Indices = None) -> list[bool]:
        """False for every sub-env (the batched env has no Gymnasium wrappers)."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> list[np.ndarray]:
        """One ``rgb_array`` image per sub-env (empty without a render mode)."""
        out = self.venv.render()
        return list(out) if out is not None else []
