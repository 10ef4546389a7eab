"""Registers the EgoGen environments with Gymnasium (called on ``import egosim``).

String entry points only, so registering imports neither torch nor the envs:

- ``egosim/EgoLocomotion-v0``: entry point ``egosim.envs.locomotion:EgoLocomotionEnv``,
  vector entry point ``egosim.envs.vector:make_locomotion_vector``;
- ``egosim/EgoCrowd-v0``: entry point ``egosim.envs.crowd:EgoCrowdEnv``, vector entry point
  ``egosim.envs.vector:make_crowd_vector``.

Step limits are the config's ``episode.max_steps`` (the envs truncate themselves), so no
``TimeLimit`` wrapper is added by default; ``gymnasium.make(id, max_episode_steps=k)`` (or
``TimeLimit(env, k)``) adds one, and the env then adopts ``k`` at its next ``reset``
(truncation and ``time_left``; see :class:`egosim.envs.env_base.EgoEnvBase`).
``env.spec.max_episode_steps`` reports the limit in force; ``gymnasium.make_vec(id, n,
max_episode_steps=k)`` passes it to the batched env.
"""

from __future__ import annotations

__all__ = ["register_envs", "ENV_IDS"]

ENV_IDS: dict[str, tuple[str, str]] = {
    "egosim/EgoLocomotion-v0": ("egosim.envs.locomotion:EgoLocomotionEnv",
                                "egosim.envs.vector:make_locomotion_vector"),
    "egosim/EgoCrowd-v0": ("egosim.envs.crowd:EgoCrowdEnv",
                           "egosim.envs.vector:make_crowd_vector"),
}


def register_envs() -> None:
    """Register every id of :data:`ENV_IDS` once (idempotent)."""
    from gymnasium.envs.registration import register, registry

    for env_id, (entry, vector_entry) in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry, vector_entry_point=vector_entry,
                     disable_env_checker=False)
