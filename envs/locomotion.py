"""``egosim/EgoLocomotion-v0``: one virtual human walks to a goal (EgoGen's locomotion task)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from egosim.envs.env_base import EgoEnvBase, resolve_config

__all__ = ["EgoLocomotionEnv"]


class EgoLocomotionEnv(EgoEnvBase):
    """One SMPL-X human, moved by the motion prior, walks through a scene to a goal.

    ## Description

    Each episode picks a scene (``scene.spec``; procedural apartments by default, a new scene
    seed per episode from ``scene.seed_range`` unless ``scene.seed`` is set; scenes are cached
    by seed), a start and a goal on the walkable map (2-8 m apart along walkable paths), and a
    seed motion of the prior placed at the start, facing the first target +-45 deg. The route
    is ``Scene.plan_path(start, goal)``; the policy is steered towards the *current target*,
    the route point 1.5 m (``goal.lookahead``) ahead along the route (EgoGen's waypoints).
    One step is one motion primitive: 18 new frames at 40 fps (0.45 s).

    ## Action Space

    ``Box(-1, 1, (128,), float32)``; the prior's latent is ``z = action.scale * action``
    (``scale = 3``: the box covers +-3 standard deviations of the N(0, I) prior). Wrong shape,
    NaN/inf or values outside [-1, 1] raise ``ValueError`` (never clipped).

    ## Observation Space

    ``Dict`` (float32; local frame of the latest frame: origin the pelvis on the floor,
    x forward, y left, z up; metres):

    | key           | shape  | content                                                  |
    |---------------|--------|----------------------------------------------------------|
    | markers       | (402,) | 2 latest frames x 67 markers x xyz (row-major (2,67,3)), |
    |               |        | clipped to +-5 m                                         |
    | goal_dirs     | (201,) | unit vectors marker -> current target, (67, 3)          |
    | ego_sensing   | (32,)  | 32 horizontal rays over 180 deg around the gaze, from   |
    |               |        | the eyes, 7 m; ``2 d / 7 - 1`` in [-1, 1]               |
    | goal_distance | (1,)   | ``1 / (d + 1)``, d: floor distance pelvis -> target (m)  |
    | time_left     | (1,)   | ``1 - steps / max_steps`` (:attr:`max_steps`)            |
    | <uuid>        | (H,W,.)| head camera per ``cameras.specs`` entry (optional): rgb  |
    |               |        | (H,W,3) uint8, depth (H,W,1) float32 m, semantic and     |
    |               |        | instance (H,W) int32, normal (H,W,3) float32             |

    ## Rewards

    Sum of weighted EgoGen terms (weights in ``reward.weights``; each weighted term is in
    ``info["reward_terms"]`` and they sum to the reward; see :mod:`egosim.envs.rewards`):

    | term           | raw value                                              | weight |
    |----------------|--------------------------------------------------------|--------|
    | foot_skating   | exp(-mean max(min foot speed - 0.075 m/s, 0))          | 0.3    |
    | floor_contact  | exp(-mean abs(min foot height - 0.02 m))               | 0.1    |
    | face_target    | (cos(body forward, to target) + 1) / 2                 | 0.1    |
    | look_at_target | (cos(gaze, to target) + 1) / 2                         | 0.3    |
    | progress       | remaining route length before - after (m)             | 1.0    |
    | success        | 1 when the step ends the episode at the goal          | 0.5    |
    | penetration    | exp(-penetrating non-foot vertices per frame / 10)    | 1.0    |
    | pose_prior     | exp(-mean z_i^2 / 2)                                   | 0.1    |

    ## Starting State

    A seed motion (2 frames) of the prior's bank at the sampled start, on the floor.

    ## Episode End

    | event       | rule                                                                |
    |-------------|---------------------------------------------------------------------|
    | terminated  | pelvis within 0.3 m (``goal.success_radius``) of the final goal,   |
    |             | floor plane, in any frame of the primitive                         |
    |             | (``info["is_success"] = True``)                                     |
    | terminated  | ``reward.penetration_mode: strict`` and >= 40 penetrating vertices |
    |             | in a frame (fine-tuning stage; ``soft``: penalty only)             |
    | terminated  | the pelvis left the scene: over no floor and outside the building's|
    |             | footprint (``Scene.in_footprint``: walls and furniture inside it   |
    |             | count as inside)                                                   |
    | truncated   | :attr:`max_steps` primitives: ``episode.max_steps`` (60), or the   |
    |             | ``max_episode_steps`` of a ``TimeLimit`` wrapping the env          |

    ``info["end_reason"]`` names the ending: ``success``, ``penetration``, ``left_scene``
    or ``time_limit`` (None while the episode runs).

    ## Info

    ``reward_terms``, ``is_success``, ``end_reason``, ``goal_distance_m`` (pelvis -> final
    goal, m, last frame), ``closest_goal_distance_m`` (smallest over the primitive's frames,
    m), ``penetration_per_frame``, ``human_collisions`` (0 here), ``steps``, ``scene_seed``;
    with cameras ``camera_pose`` ``{uuid: (4, 4)}`` (camera-to-world, OpenCV axes) and
    ``camera_intrinsics`` ``{uuid: (3, 3)}`` (also at reset, with ``route_length_m`` and
    ``max_steps``).

    ## Arguments

    ``gymnasium.make("egosim/EgoLocomotion-v0", config=None, overrides=None,
    render_mode=None, max_episode_steps=None)``: ``config`` is None (the schema's defaults, what
    ``configs/env_locomotion.yaml`` documents), a shipped config name, a YAML path, a dict
    or a :class:`egosim.envs.config.LocomotionEnvConfig`; ``overrides`` are dotted ``key=value``
    strings or a dict (e.g. ``["scene.seed=3", "prior.path=/ckpt"]``).
    ``render_mode="rgb_array"`` returns the top-down map beside the ego view
    (:mod:`egosim.envs.topdown`) of the latest state; ``"rgb_array_list"`` every 40-fps
    frame since the last ``render()`` (18 per step; ``egosim.envs.video.RecordVideo``
    records them). ``max_episode_steps`` (here, or through ``gymnasium.make`` /
    ``TimeLimit``) replaces ``episode.max_steps``.
    """

    def __init__(self, config: str | os.PathLike | dict | BaseModel | None = None,
                 overrides: list[str] | dict[str, Any] | None = None,
                 render_mode: str | None = None, max_episode_steps: int | None = None
                 ) -> None:
        from egosim.envs.config import LocomotionEnvConfig

        cfg = resolve_config(config, overrides, LocomotionEnvConfig)
        self._setup(cfg, 1, 0.0, render_mode, max_episode_steps)
