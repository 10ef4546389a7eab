"""Shared settings of the agent tests: a small, easy, fixed scene."""

from __future__ import annotations

# A fixed procedural room, a close goal in the straight-line metric, short episodes.
EASY_ENV = {"scene.spec": "procedural:room", "scene.seed": 3, "goal.min_dist": 1.5,
            "goal.max_dist": 3.0, "goal.metric": "euclidean", "goal.heading_noise_deg": 90.0,
            "episode.max_steps": 8}

TINY_PPO = {"n_steps": 8, "batch_size": 32, "n_epochs": 2}


def stages(a: int, b: int) -> list[dict]:
    """Two stages of ``a`` then ``b`` env steps (soft, then strict penetration)."""
    return [{"name": "pretrain", "timesteps": a, "penetration_mode": "soft",
             "penetration_weight": 1.0},
            {"name": "finetune", "timesteps": b, "penetration_mode": "strict",
             "penetration_weight": 0.1}]
