"""EgoGenExtractor: shapes, the ablation, the positional encoding, bad spaces."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from egosim.agents.policy import EgoGenExtractor, sinusoidal_encoding


def _space(n: int = 1, rays: int = 32) -> gym.spaces.Dict:
    box = gym.spaces.Box
    return gym.spaces.Dict({
        "markers": box(-5, 5, (n * 402,), np.float32),
        "goal_dirs": box(-1, 1, (n * 201,), np.float32),
        "ego_sensing": box(-1, 1, (n * rays,), np.float32),
        "goal_distance": box(0, 1, (n,), np.float32),
        "time_left": box(0, 1, (n,), np.float32),
    })


def _obs(space: gym.spaces.Dict, b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {k: torch.as_tensor(rng.uniform(s.low, s.high, (b,) + s.shape), dtype=torch.float32)
            for k, s in space.spaces.items()}


def test_features_shape_and_ablation_ignores_rays():
    sp = _space()
    full = EgoGenExtractor(sp, marker_hidden=32, sensing_hidden=16, pe_frequencies=4)
    ab = EgoGenExtractor(sp, marker_hidden=32, sensing_hidden=16, pe_frequencies=4,
                         use_ego_sensing=False)
    obs = _obs(sp, 5)
    assert full(obs).shape == (5, full.features_dim) and full.features_dim == 32 + 16 + 16
    assert ab(obs).shape == (5, 32 + 16)
    changed = dict(obs, ego_sensing=-obs["ego_sensing"])
    assert torch.equal(ab(obs), ab(changed))
    assert not torch.allclose(full(obs), full(changed))


def test_sinusoidal_encoding_values():
    x = torch.tensor([[0.0], [0.25], [1.0]])
    pe = sinusoidal_encoding(x, 3)
    assert pe.shape == (3, 6)
    assert torch.allclose(pe[1, :3], torch.tensor([math.sin(math.pi / 4), 1.0, 0.0]),
                          atol=1e-6)
    assert torch.allclose(pe[0, 3:], torch.ones(3))


def test_bad_spaces_are_named():
    sp = _space()
    del sp.spaces["time_left"]
    with pytest.raises(ValueError, match="time_left"):
        EgoGenExtractor(sp)
    with pytest.raises(ValueError, match="single-human"):
        EgoGenExtractor(_space(n=4))
