"""Vector envs: the batched vector_entry_point env, make_vec sync/async, the SB3 adapter."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from envs_support import overrides
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

import egosim  # noqa: F401  (registers the ids)
from egosim.agents.sb3_vec_env import SB3VecEnv
from egosim.envs.locomotion import EgoLocomotionEnv
from egosim.envs.vector import EgoVectorEnv

ID = "egosim/EgoLocomotion-v0"


def _actions(n, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (n, 128)).astype(np.float32) for _ in range(steps)]


def test_batched_env_matches_single_envs_and_autoresets():
    venv = gym.make_vec(ID, num_envs=3, overrides=overrides(**{"episode.max_steps": 2}))
    assert isinstance(venv, EgoVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = venv.reset(seed=10)
    assert obs["markers"].shape == (3, 402) and obs["ego_sensing"].shape == (3, 32)
    acts = _actions(3, 3)
    single = EgoLocomotionEnv(overrides=overrides(**{"episode.max_steps": 2}))
    for i in range(3):  # sub-env i == single env seeded 10 + i (batched prior: round-off only)
        o, _ = single.reset(seed=10 + i)
        np.testing.assert_allclose(o["markers"], obs["markers"][i], atol=1e-5)
        o1, r1, *_ = single.step(acts[0][i])
        if i == 0:
            first = o1, r1
    o, r, te, tr, info = venv.step(acts[0])
    np.testing.assert_allclose(o["markers"][0], first[0]["markers"], atol=1e-4)
    assert r[0] == pytest.approx(first[1], abs=1e-4)
    assert len(set(info["scene_seed"].tolist())) == 1 and info["_reward_terms"].all()
    o, r, te, tr, info = venv.step(acts[1])
    assert tr.all() and not te.any()  # step limit 2
    o, r, te, tr, info = venv.step(acts[2])  # NEXT_STEP: these are resets
    assert (r == 0).all() and not (te | tr).any() and "route_length_m" in info
    assert (o["time_left"] == 1.0).all()
    # distinct sub-env seeds -> different episodes; same seed -> same bytes
    o2, _ = venv.reset(seed=10)
    np.testing.assert_array_equal(o2["markers"], obs["markers"])
    assert not np.array_equal(obs["goal_dirs"][0], obs["goal_dirs"][1])
    venv.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_sync_async(mode):
    kw = {"vector_kwargs": {"context": "spawn"}} if mode == "async" else {}
    venv = gym.make_vec(ID, num_envs=2, vectorization_mode=mode,
                        overrides=overrides(**{"episode.max_steps": 2}), **kw)
    obs, _ = venv.reset(seed=4)
    assert obs["markers"].shape == (2, 402)
    for a in _actions(2, 3):
        obs, r, te, tr, info = venv.step(a)
        assert r.shape == (2,) and np.isfinite(r).all()
    again, _ = venv.reset(seed=4)
    first, _ = EgoLocomotionEnv(overrides=overrides()).reset(seed=5)
    np.testing.assert_array_equal(again["markers"][1], first["markers"])
    venv.close()


def test_sb3_adapter_same_step_reset():
    # goals >= 4 m away: two primitives (~1 m) cannot reach them, both episodes truncate
    venv = SB3VecEnv(num_envs=2, overrides=overrides(**{"episode.max_steps": 2,
                                                        "goal.min_dist": 4.0}))
    assert isinstance(venv, VecEnv)
    venv.seed(3)
    obs = venv.reset()
    assert obs["markers"].shape == (2, 402)
    dones = None
    for a in _actions(2, 2):
        obs, rew, dones, infos = venv.step(a)
    assert dones.all() and rew.dtype == np.float32
    assert all(i["TimeLimit.truncated"] for i in infos)
    assert infos[0]["terminal_observation"]["markers"].shape == (402,)
    assert (obs["time_left"] == 1.0).all()  # already reset
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(EgoVectorEnv(1, overrides=overrides()))


def test_batched_actions_checked():
    venv = EgoVectorEnv(2, overrides=overrides())
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(2, 128\)"):
        venv.step(np.zeros((3, 128), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        venv.step(np.full((2, 128), np.nan, np.float32))


def test_crowd_vector_env():
    venv = gym.make_vec("egosim/EgoCrowd-v0", num_envs=2,
                        overrides=overrides(**{"crowd.num_humans": 2}))
    obs, _ = venv.reset(seed=0)
    assert obs["markers"].shape == (2, 2 * 402) and venv.action_space.shape == (2, 256)
    _, r, _, _, info = venv.step(np.zeros((2, 256), np.float32))
    assert r.shape == (2,) and info["human_collisions"].shape == (2,)
