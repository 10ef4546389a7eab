"""Shared settings of the agent tests: a small, easy, fixed scene and small runs."""

from __future__ import annotations

from typing import Any

from egosim.config import apply_overrides

# A fixed procedural room, a close goal in the straight-line metric, short episodes
# (dotted env keys; easy_env() nests them for a typed env section).
EASY_ENV = {"scene.spec": "procedural:room", "scene.seed": 3, "goal.min_dist": 1.5,
            "goal.max_dist": 3.0, "goal.metric": "euclidean", "goal.heading_noise_deg": 90.0,
            "episode.max_steps": 8}

TINY_PPO = {"n_steps": 8, "batch_size": 32, "n_epochs": 2}

# What the tests' small training runs were written for: TrainAgentConfig's defaults are the
# shipped run's (a 12,288-step imitation warm start, validation selection, log std -1.6).
SMALL_RUN: dict[str, dict[str, Any]] = {"imitation": {"steps": 0}, "selection": {"episodes": 0},
                                        "policy": {"log_std_init": -1.1}}


def easy_env(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """:data:`EASY_ENV` plus dotted ``extra`` keys, nested (``{"scene": {"spec": ...}}``):
    the value of a typed ``env`` section or of an ``env=`` override."""
    return apply_overrides({}, {**EASY_ENV, **(extra or {})})


def small_run(**sections: Any) -> dict[str, Any]:
    """:data:`SMALL_RUN` with ``sections`` on top (a section's keys merged into its entry):
    keyword arguments for :class:`egosim.agents.config.TrainAgentConfig`."""
    out: dict[str, Any] = {k: dict(v) for k, v in SMALL_RUN.items()}
    for key, value in sections.items():
        out[key] = {**out[key], **value} if key in out and isinstance(value, dict) else value
    return out


def stages(a: int, b: int) -> list[dict]:
    """Two stages of ``a`` then ``b`` env steps (soft, then strict penetration)."""
    return [{"name": "pretrain", "timesteps": a, "penetration_mode": "soft",
             "penetration_weight": 1.0},
            {"name": "finetune", "timesteps": b, "penetration_mode": "strict",
             "penetration_weight": 0.1}]
