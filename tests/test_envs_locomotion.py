"""EgoLocomotion-v0 and EgoCrowd-v0: API checkers, determinism, errors, rewards, sensing."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from envs_support import is_untrained, overrides, prior_path
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import egosim  # noqa: F401  (registers the ids)
from egosim.config import ConfigError
from egosim.envs.crowd import EgoCrowdEnv
from egosim.envs.locomotion import EgoLocomotionEnv
from egosim.envs.rewards import TERMS


@pytest.fixture(scope="module")
def env():
    e = EgoLocomotionEnv(overrides=overrides(), render_mode="rgb_array")
    yield e
    e.close()


def _run(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    traj = [obs]
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        traj.append((obs, r, info["reward_terms"]))
        if te or tr:
            break
    return traj, env.sim.markers.copy()


@pytest.mark.parametrize("env_id, extra", [("egosim/EgoLocomotion-v0", {}),
                                           ("egosim/EgoCrowd-v0", {"crowd.num_humans": 2})])
@pytest.mark.slow
def test_checkers_pass_without_warnings(env_id, extra):
    env = gym.make(env_id, overrides=overrides(**extra))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
    assert env.action_space.shape == (128 * (2 if extra else 1),)
    env.close()


def test_same_seed_same_trajectory(env):
    acts = [np.random.default_rng(7).uniform(-1, 1, 128).astype(np.float32) for _ in range(3)]
    a, ma = _run(env, 11, acts)
    b, mb = _run(env, 11, acts)
    np.testing.assert_array_equal(ma, mb)
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k])
    assert [x[1] for x in a[1:]] == [x[1] for x in b[1:]]
    c, _ = _run(env, 12, acts)
    assert not np.array_equal(a[0]["markers"], c[0]["markers"]) or \
        not np.array_equal(a[0]["goal_dirs"], c[0]["goal_dirs"])


def test_observation_layout_and_local_frame(env):
    obs, _ = env.reset(seed=0)
    m = obs["markers"].reshape(2, 67, 3)
    pel = env.sim.mj[0] @ m[1].astype(np.float64)
    assert abs(pel[0]) < 1e-4 and abs(pel[1]) < 1e-4  # origin under the pelvis
    assert 0.6 < pel[2] < 1.3  # z up, floor at 0
    dirs = obs["goal_dirs"].reshape(67, 3)
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-5)
    d = np.linalg.norm(env.sim.worlds[0].routes[0].target()[:2]
                       - env.sim.pelvis(env.sim.markers[0, 1])[:2])
    assert obs["goal_distance"][0] == pytest.approx(1 / (d + 1), rel=1e-5)
    assert obs["time_left"][0] == 1.0


def test_malformed_actions_raise(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(128,\)"):
        env.step(np.zeros(127, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(128, np.nan, np.float32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step(np.full(128, 2.0, np.float32))


def test_bad_config_is_clear():
    with pytest.raises(ConfigError, match="penetration_mode"):
        EgoLocomotionEnv(overrides=overrides(**{"reward.penetration_mode": "hard"}))
    with pytest.raises(ConfigError, match="unknown key 'episode.max_step'"):
        EgoLocomotionEnv(overrides=overrides(**{"episode.max_step": 3}))
    with pytest.raises(FileNotFoundError, match="prior.path"):
        EgoLocomotionEnv(overrides=overrides(**{"prior.path": "/nonexistent/ckpt"}))
    bad = EgoLocomotionEnv(overrides=overrides(**{"scene.options": {"num_room": 3}}))
    with pytest.raises(ValueError, match="num_room"):
        bad.reset(seed=0)


def test_reward_terms_sum_and_episode_end(env):
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for step in range(1, 20):
        obs, r, te, tr, info = env.step(rng.uniform(-1, 1, 128).astype(np.float32))
        assert set(info["reward_terms"]) == set(TERMS)
        assert sum(info["reward_terms"].values()) == pytest.approx(r, abs=1e-9)
        assert isinstance(info["is_success"], bool)
        assert obs["time_left"][0] == pytest.approx(1 - step / 8)
        if te or tr:
            break
    assert tr and not te and step == 8  # random walks do not reach 2-8 m goals in 8 steps
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.zeros(128, np.float32))


def test_strict_penetration_terminates():
    env = EgoLocomotionEnv(overrides=overrides(**{"reward.penetration_mode": "strict",
                                                  "reward.penetration_limit": 1}))
    env.reset(seed=0)
    sim = env.sim
    scene = sim.worlds[0].scene
    # move the body into the deepest solid of the scene (a wall or a piece of furniture)
    grid = scene.sdf_grid
    idx = np.array(np.unravel_index(np.argmin(grid.values), grid.values.shape))
    solid = grid.origin + idx * grid.resolution
    assert scene.sdf(solid[None])[0] < 0
    shift = np.r_[solid[:2] - sim.pelvis(sim.markers[0, 1])[:2], 0.0]
    sim.history += torch.tensor(shift, dtype=torch.float32)
    sim.markers += shift
    _, _, te, tr, info = env.step(np.zeros(128, np.float32))
    assert info["penetration_per_frame"] >= 1 and te and not info["is_success"]
    assert info["reward_terms"]["penetration"] < 0.5


def _greedy_action(sim, rng, k=16):
    """Scripted policy: sample k latents from the prior, keep the one whose last-frame pelvis
    ends nearest to the current target (one batched prior step)."""
    from egosim.envs.motion.prior import PriorState

    target = sim.worlds[0].routes[0].target()
    st = PriorState(sim.history[:1].repeat(k, 1, 1, 1), sim.betas[:1].repeat(k, 1),
                    sim.gender[:1].repeat(k))
    a = np.clip(rng.standard_normal((k, 128)) / 3.0, -1, 1).astype(np.float32)
    _, out = sim.prior.step(st, torch.from_numpy(a * 3.0))
    p = sim.pelvis(out.markers[:, -1].double().numpy())
    return a[np.argmin(np.linalg.norm(p[:, :2] - target[:2], axis=1))]


def test_scripted_policy_makes_progress(env):
    if is_untrained(prior_path()):
        pytest.skip("needs a trained motion prior (the shipped checkpoints)")
    totals = {}
    for name in ("greedy", "random"):
        env.reset(seed=1)
        start = env.sim.worlds[0].remaining[0]
        rng = np.random.default_rng(0)
        progress = 0.0
        for _ in range(8):
            a = _greedy_action(env.sim, rng) if name == "greedy" else np.clip(
                rng.standard_normal(128) / 3.0, -1, 1).astype(np.float32)
            _, _, te, tr, info = env.step(a)
            progress += info["reward_terms"]["progress"]
            if te or tr:
                break
        totals[name] = progress
        assert progress == pytest.approx(start - env.sim.worlds[0].remaining[0])
    print("route progress over 8 steps (m):", totals)
    assert totals["greedy"] > 1.0 and totals["greedy"] > totals["random"] + 0.5


def test_render_and_pickle(env):
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (256, 512, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 4
    clone = pickle.loads(pickle.dumps(env))
    a = np.zeros(128, np.float32)
    o1 = env.step(a)[0]
    o2 = clone.step(a)[0]
    np.testing.assert_allclose(o1["markers"], o2["markers"], atol=1e-6)


def test_crowd_humans_see_each_other():
    env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 2}))
    obs, _ = env.reset(seed=0)
    assert env.split(obs)["markers"].shape == (2, 2, 67, 3)
    sim = env.sim
    eyes = sim.eyes[0].mean(0)
    gaze = np.cross([0.0, 0.0, 1.0], sim.eyes[0, 1] - sim.eyes[0, 0])
    gaze /= np.linalg.norm(gaze)
    # move human 1 to stand 1.2 m in front of human 0's eyes
    shift = np.r_[eyes[:2] + 1.2 * gaze[:2] - sim.pelvis(sim.markers[1, 1])[:2], 0.0]
    sim.markers[1] += shift
    sim.eyes[1] += shift
    seen = env.split(env._obs())["ego_sensing"][0]
    centre = len(seen) // 2
    dist = (seen[centre - 1:centre + 1] + 1) / 2 * 7.0
    assert dist.min() == pytest.approx(1.2 - 0.25, abs=0.1)
    env.cfg.sensing.see_humans = False
    blind = env.split(env._obs())["ego_sensing"][0]
    assert blind[centre] > seen[centre]


def test_crowd_step_info():
    env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 3}))
    env.reset(seed=2)
    _, r, _, _, info = env.step(np.zeros(3 * 128, np.float32))
    assert info["rewards"].shape == (3,) and info["successes"].shape == (3,)
    assert r == pytest.approx(info["rewards"].mean())
    assert sum(info["reward_terms"].values()) == pytest.approx(r)
    assert isinstance(info["human_collisions"], int)


def test_success_counts_in_any_frame_of_the_primitive():
    """A goal the pelvis passes mid-primitive is reached, although the primitive's last
    frame is further than ``success_radius`` from it."""
    e = EgoLocomotionEnv(overrides=overrides())
    e.reset(seed=11)
    action = np.zeros(e.action_space.shape, np.float32)
    from egosim.envs.motion.prior import PriorState

    sim = e.sim
    state = PriorState(sim.history.clone(), sim.betas.clone(), sim.gender.clone())
    _, out = sim.prior.step(state, torch.zeros(1, sim.latent_dim))
    path = sim.pelvis(out.markers[0].double().numpy())  # (18, 3)
    mid, last = path[1], path[-1]
    assert np.linalg.norm(mid[:2] - last[:2]) > e.sim.cfg.goal.success_radius
    route = sim.worlds[0].routes[0]
    route.points[-1, :2] = mid[:2]
    _, _, terminated, _, info = e.step(action)
    assert info["is_success"] and terminated
    assert info["closest_goal_distance_m"] < 1e-3 < e.sim.cfg.goal.success_radius < \
        info["goal_distance_m"]
    e.close()
