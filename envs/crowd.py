"""``egosim/EgoCrowd-v0``: N virtual humans, each with its own goal, in one scene."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from pydantic import BaseModel

from egosim.envs.env_base import EgoEnvBase, resolve_config
from egosim.envs.motion.primitive_windows import HISTORY_FRAMES
from egosim.envs.simulation import NUM_MARKERS

__all__ = ["EgoCrowdEnv"]


class EgoCrowdEnv(EgoEnvBase):
    """``N`` humans (``crowd.num_humans``, default 4) walk to their own goals in one scene.

    Everything per human is as in :class:`~egosim.envs.locomotion.EgoLocomotionEnv`; the
    humans see each other in their ego-sensing rays (vertical cylinders, see
    :mod:`egosim.envs.ego_sensing`) and head cameras (their posed SMPL-X bodies, or capsules
    with ``cameras.other_humans: capsules``). Starts and goals are at least
    ``crowd.min_separation`` (1 m) apart.

    ## Action Space

    ``Box(-1, 1, (N * 128,), float32)``: row-major ``(N, 128)``, human ``i``'s action in
    ``action[128 i : 128 (i + 1)]``; ``z = action.scale * action``. Flat so that
    stable-baselines3's policies and checker accept it without warnings.

    ## Observation Space

    ``Dict`` with the locomotion keys, each flattened over humans (row-major, human first):

    | key           | shape      | per human (see EgoLocomotionEnv)       |
    |---------------|------------|----------------------------------------|
    | markers       | (N * 402,) | (2, 67, 3) local markers               |
    | goal_dirs     | (N * 201,) | (67, 3) unit vectors to the target     |
    | ego_sensing   | (N * 32,)  | rays; other humans are obstacles       |
    | goal_distance | (N,)       | 1 / (d + 1)                            |
    | time_left     | (N,)       | 1 - steps / max_steps                  |
    | <uuid>        | (N, H, W.) | head cameras (optional)                |

    :meth:`split` reshapes an observation to ``{key: (N, ...)}``.

    ## Rewards

    Per human, the locomotion reward (``info["rewards"]``, ``(N,)``; weighted terms per human
    in ``info["human_reward_terms"]``); the env's reward is their mean over the ``N`` humans
    (a finished human contributes 0), and ``info["reward_terms"]`` holds the per-term means,
    which sum to the reward.

    ## Episode End

    | event       | rule                                                                 |
    |-------------|----------------------------------------------------------------------|
    | per human   | success (pelvis within 0.3 m of its goal in any frame of the         |
    |             | primitive), in strict penetration mode >= 40 penetrating vertices in |
    |             | a frame, or the pelvis left the scene: the human stops and stands    |
    |             | still (still an obstacle); ``info["successes"]`` (N,) bool,          |
    |             | ``info["end_reasons"]`` (N,) ``success`` / ``penetration`` /         |
    |             | ``left_scene`` / ``time_limit`` (None while it walks)                |
    | terminated  | every human has stopped; ``info["is_success"]``: all reached goals  |
    | truncated   | ``max_steps`` primitives (``episode.max_steps`` or a ``TimeLimit``'s) |

    ## Info

    As locomotion (``end_reason``: ``time_limit`` on truncation, else ``success`` when every
    human succeeded, else the first failure), plus ``rewards``, ``successes``,
    ``end_reasons``, ``human_reward_terms`` and
    ``human_collisions`` (pairs of humans whose pelvis axes came closer than two cylinder radii,
    0.5 m, in a frame of this step) and ``human_collisions_total`` (this episode).

    ## Arguments

    ``gymnasium.make("egosim/EgoCrowd-v0", config=None, overrides=None,
    render_mode=None)`` (see EgoLocomotionEnv; schema
    :class:`egosim.envs.config.CrowdEnvConfig`).
    """

    def __init__(self, config: str | os.PathLike | dict | BaseModel | None = None,
                 overrides: list[str] | dict[str, Any] | None = None,
                 render_mode: str | None = None, max_episode_steps: int | None = None
                 ) -> None:
        from egosim.envs.config import CrowdEnvConfig

        cfg = resolve_config(config, overrides, CrowdEnvConfig)
        self._setup(cfg, cfg.crowd.num_humans, cfg.crowd.min_separation, render_mode,
                    max_episode_steps)

    def split(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{key: (N, ...)}`` view of an observation of this env."""
        n = self.num_humans
        sizes = {"markers": (HISTORY_FRAMES, NUM_MARKERS, 3), "goal_dirs": (NUM_MARKERS, 3)}
        out = {}
        for k, v in obs.items():
            if k in self.camera_uuids:
                out[k] = v
            else:
                out[k] = np.asarray(v).reshape((n,) + sizes.get(k, (-1,)))
        return out
