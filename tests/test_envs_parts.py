"""Env building blocks without the motion prior: ego-sensing, routes, rewards, configs."""

from __future__ import annotations

import numpy as np
import pytest

from egosim.config import ConfigError, load_config
from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig
from egosim.envs.ego_sensing import cylinder_hits, ego_sensing, fan_directions, gaze_forward
from egosim.envs.rewards import facing, foot_terms, penetration_reward, pose_prior
from egosim.envs.task import Route, episode_end
from egosim.sensors.raycast import RayCaster


def test_fan_spans_fov_around_gaze():
    fwd = gaze_forward(np.array([[0.0, 0.1, 1.6]]), np.array([[0.0, -0.1, 1.6]]))
    assert np.allclose(fwd, [[1.0, 0.0, 0.0]])  # eye line left->right is -y: looking +x
    d = fan_directions(fwd, 32, 180.0)[0]
    assert d.shape == (32, 3) and np.allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.allclose(d[0], [0, -1, 0], atol=1e-9) and np.allclose(d[-1], [0, 1, 0], atol=1e-9)
    assert np.allclose(d[:, 2], 0.0)


def test_cylinder_hits_analytic():
    o = np.array([[0.0, 0.0, 1.6], [0.0, 0.0, 1.6], [0.0, 0.0, 2.5], [2.0, 0.0, 1.6]])
    dirs = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 0, 0], [1.0, 0, 0]])
    t = cylinder_hits(o, dirs, np.array([[2.0, 0.0]]), 0.25, np.array([1.8]))
    assert t[0] == pytest.approx(1.75)  # front of the cylinder
    assert np.isinf(t[1])  # looks away
    assert np.isinf(t[2])  # ray above the head
    assert t[3] == 0.0  # starts inside


def test_ego_sensing_scene_and_humans():
    wall = np.array([[[3.0, -5, 0], [3.0, 5, 0], [3.0, 0, 5]]], np.float32)  # plane x = 3
    caster = RayCaster(wall)
    eyes = np.array([[0.0, 0.0, 1.6]])
    fwd = np.array([[1.0, 0.0, 0.0]])
    obs, dist = ego_sensing(caster, eyes, fwd, 3, 180.0, 7.0)
    assert dist[0, 1] == pytest.approx(3.0, abs=1e-4)  # centre ray hits the wall
    assert dist[0, 0] == pytest.approx(7.0) and obs[0, 0] == pytest.approx(1.0)
    assert obs[0, 1] == pytest.approx(2 * 3.0 / 7.0 - 1, abs=1e-4)
    others = [(np.array([[1.0, 0.0]]), np.array([1.75]))]
    _, dist2 = ego_sensing(caster, eyes, fwd, 3, 180.0, 7.0, others, 0.25)
    assert dist2[0, 1] == pytest.approx(0.75)


def test_route_target_and_remaining():
    pts = np.stack([np.linspace(0, 4, 41), np.zeros(41), np.zeros(41)], 1)
    r = Route.from_points(pts, lookahead=1.5)
    assert r.length == pytest.approx(4.0)
    r.update(np.array([0.0, 0.3]))
    assert r.target()[0] == pytest.approx(1.5)
    assert r.remaining(np.array([0.0, 0.0])) == pytest.approx(4.0)
    r.update(np.array([3.9, 0.0]))
    assert np.allclose(r.target(), r.goal)  # last lookahead metres: the final goal
    assert r.remaining(np.array([3.9, 0.0])) == pytest.approx(0.1)


def test_episode_end_rules():
    s, f, tr = episode_end(np.array([0.2, 1.0, 1.0]), np.array([0.0, 50.0, 10.0]), 3, 0.3,
                           True, 40, 10)
    assert s.tolist() == [True, False, False] and f.tolist() == [False, True, False]
    assert not tr
    s, f, tr = episode_end(np.array([1.0]), np.array([50.0]), 10, 0.3, False, 40, 10)
    assert not f.any() and tr


def test_reward_terms_known_values():
    feet = np.zeros((1, 19, 6, 3))
    feet[..., 2] = 0.02
    sk, ct = foot_terms(feet, 0.075, 0.02)
    assert sk[0] == pytest.approx(1.0) and ct[0] == pytest.approx(1.0)
    feet[:, :, :, 0] = np.arange(19)[None, :, None] * (1.0 / 40)  # every foot at 1 m/s
    feet[..., 2] = 0.12
    sk, ct = foot_terms(feet, 0.075, 0.02)
    assert sk[0] == pytest.approx(np.exp(-0.925)) and ct[0] == pytest.approx(np.exp(-0.1))
    f = facing(np.array([[1.0, 0, 0], [-1.0, 0, 0]]), np.zeros((2, 3)),
               np.array([[2.0, 0, 0], [2.0, 0, 0]]))
    assert f.tolist() == pytest.approx([1.0, 0.0])
    assert pose_prior(np.zeros((1, 128)))[0] == 1.0
    assert pose_prior(np.full((1, 128), 2.0))[0] == pytest.approx(np.exp(-2.0))
    assert penetration_reward(np.full((1, 18), 10.0))[0] == pytest.approx(np.exp(-1.0))


def test_shipped_env_configs_validate():
    loco = load_config("env_locomotion", schema=LocomotionEnvConfig)
    assert loco.reward.weights.look_at_target == 0.3 and loco.sensing.num_rays == 32
    assert loco.goal.min_dist == 2.0 and loco.goal.max_dist == 8.0
    crowd = load_config("env_crowd", schema=CrowdEnvConfig)
    assert crowd.crowd.num_humans == 4


@pytest.mark.parametrize("override, key", [
    ("reward.weights.progres=1", "reward.weights.progres"),
    ("reward.penetration_mode=hard", "reward.penetration_mode"),
    ("goal.max_dist=1.0", "goal.max_dist"),
    ("scene.spec=procedural:castle", "scene.spec"),
    ("sensing.num_rays=0", "sensing.num_rays"),
    ("cameras.specs=[{uuid: markers, modality: rgb}]", "cameras.specs"),
])
def test_bad_env_config_values_are_named(override, key):
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        load_config("env_locomotion", [override], schema=LocomotionEnvConfig)


@pytest.mark.parametrize(
    ("action", "needle"),
    [
        (np.full(4, 0.5 + 0.5j), "complex"),
        (np.ones(4, dtype=bool), "bool"),
        (np.array(["a"] * 4), "real numbers"),
        (np.full(4, 1.0001), "max 1.0001"),
        (np.full(4, 1.0 + 1e-5, dtype=np.float64), "max 1.00001"),
        (np.array([0.0, np.nan, 0.0, 0.0]), "NaN"),
        (np.zeros(3), "shape (4,)"),
    ],
)
def test_actions_must_be_real_finite_and_in_range(action, needle):
    from gymnasium import spaces

    from egosim.envs.env_base import check_action

    space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    with pytest.raises(ValueError, match=None) as info:
        check_action(action, space)
    assert needle in str(info.value)


def test_integer_and_float_actions_in_range_are_accepted():
    from gymnasium import spaces

    from egosim.envs.env_base import check_action

    space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    out = check_action(np.array([1, 0, -1, 0]), space)
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0, -1.0, 0.0]
    assert check_action(np.full(4, 1.0 + 1e-7), space).dtype == np.float32
