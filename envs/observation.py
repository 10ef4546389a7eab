"""The keys of an EgoGen env observation (light: no torch, no Gymnasium).

:func:`egosim.envs.env_base.observation_space` builds the ``Dict`` space in this order,
followed by one image per configured head camera (keyed by the camera's ``uuid``, which must
not repeat one of these keys; the env config checks that). Shapes and meaning per key:
:class:`egosim.envs.locomotion.EgoLocomotionEnv`.
"""

from __future__ import annotations

__all__ = ["OBS_KEYS"]

#: Vector observation keys, in the order of the observation space.
OBS_KEYS: tuple[str, ...] = ("markers", "goal_dirs", "ego_sensing", "goal_distance",
                             "time_left")
