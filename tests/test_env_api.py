"""The envs' Gymnasium surface: action errors, step limits from TimeLimit, episode-end reasons
(a walker that leaves the scene), head cameras in observations and info, rgb_array_list and
video recording, the per_progress reward variant."""

from __future__ import annotations

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from envs_support import overrides
from gymnasium.wrappers import TimeLimit

import egosim  # noqa: F401  (registers the ids)
from egosim.envs.crowd import EgoCrowdEnv
from egosim.envs.env_base import render_world
from egosim.envs.locomotion import EgoLocomotionEnv
from egosim.envs.rewards import PER_STEP_TERMS, TERMS
from egosim.envs.task import END_REASONS

ID = "egosim/EgoLocomotion-v0"


@pytest.fixture(scope="module")
def env():
    e = EgoLocomotionEnv(overrides=overrides())
    yield e
    e.close()


# -- item: actions -----------------------------------------------------------------------
def test_action_error_prints_the_offending_value_unrounded(env):
    env.reset(seed=0)
    a = np.zeros(128, np.float32)
    a[5] = 1.0001
    with pytest.raises(ValueError, match=r"got 1\.0001000\d+ at index 5 \(1 of 128"):
        env.step(a)
    a = np.zeros(128)
    a[7] = -1.0001
    with pytest.raises(ValueError, match=r"got -1\.0001 at index 7"):
        env.step(a)


# -- item: step limits -------------------------------------------------------------------
def test_time_left_follows_gym_make_max_episode_steps():
    env = gym.make(ID, overrides=overrides(), max_episode_steps=3)
    assert env.spec.max_episode_steps == 3
    obs, info = env.reset(seed=0)
    assert obs["time_left"][0] == 1.0 and info["max_steps"] == 3
    left = []
    for _ in range(3):
        obs, _, te, tr, info = env.step(np.zeros(128, np.float32))
        left.append(float(obs["time_left"][0]))
    assert left == pytest.approx([2 / 3, 1 / 3, 0.0]) and tr and not te
    assert info["end_reason"] == "time_limit"
    env.close()


def test_time_left_follows_a_hand_made_time_limit_and_spec_is_set():
    env = TimeLimit(EgoLocomotionEnv(overrides=overrides()), 4)
    env.reset(seed=0)
    obs, *_ = env.step(np.zeros(128, np.float32))
    assert obs["time_left"][0] == pytest.approx(0.75)
    assert env.unwrapped.max_steps == 4
    longer = TimeLimit(EgoLocomotionEnv(overrides=overrides()), 20)  # config says 8
    longer.reset(seed=0)
    obs, *_ = longer.step(np.zeros(128, np.float32))
    assert obs["time_left"][0] == pytest.approx(0.95)
    plain = gym.make(ID, overrides=overrides())  # no TimeLimit: the config's limit
    assert plain.spec.max_episode_steps == 8
    plain.reset(seed=0)
    assert plain.unwrapped.max_steps == 8
    with pytest.raises(ValueError, match="max_episode_steps"):
        EgoLocomotionEnv(overrides=overrides(), max_episode_steps=0)
    for e in (env, longer, plain):
        e.close()


def test_make_vec_max_episode_steps_sets_the_batched_limit():
    venv = gym.make_vec(ID, num_envs=2, overrides=overrides(), max_episode_steps=2)
    obs, _ = venv.reset(seed=0)
    obs, _, _, tr, _ = venv.step(np.zeros((2, 128), np.float32))
    assert np.allclose(obs["time_left"], 0.5)
    _, _, _, tr, _ = venv.step(np.zeros((2, 128), np.float32))
    assert tr.all()
    venv.close()


# -- item: episode-end reasons -----------------------------------------------------------
def _move_outside(sim, i: int) -> None:
    """Put human ``i`` 3 m beyond the scene's +x edge (over no floor)."""
    scene = sim.worlds[i // sim.N].scene
    pel = sim.pelvis(sim.markers[i, 1])
    outside = np.array([scene.bounds[1, 0] + 3.0, scene.bounds[:, 1].mean()])
    assert not scene.has_floor(outside) and scene.has_floor(pel[:2])
    shift = np.r_[outside - pel[:2], 0.0]
    sim.history[i] += torch.tensor(shift, dtype=torch.float32)
    sim.markers[i] += shift


def test_a_walker_over_no_floor_ends_its_episode_as_left_scene(env):
    env.reset(seed=0)
    _, _, te, tr, info = env.step(np.zeros(128, np.float32))
    assert info["end_reason"] is None and not (te or tr)
    _move_outside(env.sim, 0)
    _, _, te, tr, info = env.step(np.zeros(128, np.float32))
    assert te and not tr and not info["is_success"]
    assert info["end_reason"] == "left_scene" and info["end_reason"] in END_REASONS
    walks_on = EgoLocomotionEnv(overrides=overrides(**{"episode.end_outside": False}))
    walks_on.reset(seed=0)
    _move_outside(walks_on.sim, 0)
    _, _, te, _, info = walks_on.step(np.zeros(128, np.float32))
    assert not te and info["end_reason"] is None  # the old rule: it may walk back in
    walks_on.close()


def test_a_walker_over_furniture_stays_in_the_scene(env):
    from scipy import ndimage

    env.reset(seed=0)
    sim = env.sim
    scene = sim.worlds[0].scene
    scene.in_footprint(np.zeros(2))  # builds the footprint mask
    hole = scene._footprint & ~np.isfinite(scene.floor_height)  # furniture, walls
    depth = ndimage.distance_transform_edt(hole)
    cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
    assert depth[tuple(cell)] * scene.grid_resolution >= 0.3  # a big piece of furniture
    spot = scene.grid_to_world(cell)[:2]
    assert not scene.has_floor(spot) and scene.in_footprint(spot)
    shift = np.r_[spot - sim.pelvis(sim.markers[0, 1])[:2], 0.0]
    sim.history[0] += torch.tensor(shift, dtype=torch.float32)
    sim.markers[0] += shift
    _, _, te, tr, info = env.step(np.zeros(128, np.float32))
    assert not te and info["end_reason"] is None  # inside the building: penetration, not exit


def test_crowd_reports_end_reasons_per_human():
    env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 2, "episode.max_steps": 2}))
    env.reset(seed=0)
    _move_outside(env.sim, 1)
    _, _, te, tr, info = env.step(np.zeros(256, np.float32))
    assert not (te or tr) and info["end_reason"] is None
    assert info["end_reasons"] == [None, "left_scene"]
    assert env.sim.worlds[0].active.tolist() == [True, False]
    _, _, te, tr, info = env.step(np.zeros(256, np.float32))
    # human 0 ran out of time (its 2-8 m goal is not reached in 2 steps)
    assert tr and not te and info["end_reasons"] == ["time_limit", "left_scene"]
    assert info["end_reason"] == "time_limit"
    env.close()


# -- item: head cameras ------------------------------------------------------------------
CAMS = [{"uuid": "rgb", "modality": "rgb", "resolution": [12, 16], "hfov_deg": 90.0},
        {"uuid": "depth", "modality": "depth", "resolution": [12, 16], "hfov_deg": 90.0},
        {"uuid": "sem", "modality": "semantic", "resolution": [8, 8]},
        {"uuid": "inst", "modality": "instance", "resolution": [8, 8]},
        {"uuid": "nrm", "modality": "normal", "resolution": [8, 8],
         "position": [0.0, -0.05, 0.02]}]


def test_every_modality_is_observed_with_pose_and_intrinsics_in_info():
    env = EgoLocomotionEnv(overrides=overrides(**{"cameras.specs": CAMS}))
    obs, info = env.reset(seed=0)
    shapes = {k: (obs[k].shape, obs[k].dtype) for k in ("rgb", "depth", "sem", "inst", "nrm")}
    assert shapes == {"rgb": ((12, 16, 3), np.uint8), "depth": ((12, 16, 1), np.float32),
                      "sem": ((8, 8), np.int32), "inst": ((8, 8), np.int32),
                      "nrm": ((8, 8, 3), np.float32)}
    assert env.observation_space.contains(obs)
    assert (obs["depth"] > 0).any() and (obs["inst"] > 0).any()
    pose, k = info["camera_pose"], info["camera_intrinsics"]
    mid = env.sim.eyes[0].mean(0)
    np.testing.assert_allclose(pose["rgb"][:3, 3], mid, atol=1e-9)
    np.testing.assert_allclose(pose["rgb"][:3, :3] @ pose["rgb"][:3, :3].T, np.eye(3),
                               atol=1e-9)
    # the normal camera sits 5 cm up (rig y is down) and 2 cm forward of the rig
    np.testing.assert_allclose(pose["nrm"][:3, 3] - mid,
                               pose["rgb"][:3, :3] @ [0.0, -0.05, 0.02], atol=1e-9)
    assert k["rgb"][0, 0] == pytest.approx(8.0) and k["rgb"][1, 2] == pytest.approx(5.5)
    _, _, _, _, info = env.step(np.zeros(128, np.float32))
    assert set(info["camera_pose"]) == {c["uuid"] for c in CAMS}
    env.close()


def test_head_mount_turns_the_camera_with_the_head():
    poses = {}
    for mount in ("gaze", "head"):
        env = EgoLocomotionEnv(overrides=overrides(**{"cameras.specs": CAMS[:1],
                                                      "cameras.mount": mount}))
        env.reset(seed=0)
        _, _, _, _, info = env.step(np.zeros(128, np.float32))
        poses[mount] = info["camera_pose"]["rgb"]
        env.close()
    gaze, head = poses["gaze"], poses["head"]
    np.testing.assert_allclose(gaze[:3, 3], head[:3, 3], atol=1e-9)  # both at the eyes
    assert abs(gaze[2, 2]) < 1e-9  # the gaze mount looks level
    assert abs(head[2, 2]) > 1e-3  # the head pitches


def test_other_humans_are_bodies_by_default_and_depth_has_a_channel_axis():
    env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 2,
                                             "cameras.specs": CAMS[1:2]}))
    assert env.cfg.cameras.other_humans == "bodies"
    assert env.observation_space["depth"].shape == (2, 12, 16, 1)
    obs, info = env.reset(seed=0)
    assert obs["depth"].shape == (2, 12, 16, 1) and info["camera_pose"]["depth"].shape == (2, 4, 4)
    env.close()


@pytest.mark.slow
def test_sb3_trains_a_cnn_on_float_depth():
    from stable_baselines3 import PPO

    from egosim.agents.policy import CameraCombinedExtractor
    from egosim.agents.sb3_vec_env import SB3VecEnv

    venv = SB3VecEnv(num_envs=2, overrides=overrides(**{"cameras.specs": CAMS[1:2]}))
    model = PPO("MultiInputPolicy", venv, n_steps=4, batch_size=8, n_epochs=1, device="cpu",
                policy_kwargs={"features_extractor_class": CameraCombinedExtractor})
    conv = model.policy.features_extractor.cnns["depth"][0]
    assert conv.in_channels == 1
    before = conv.weight.detach().clone()
    model.learn(8)
    assert not torch.equal(before, conv.weight.detach())  # depth gradients reached it
    venv.close()


# -- item: rendering ---------------------------------------------------------------------
@pytest.mark.slow
def test_rgb_array_list_renders_every_frame_and_record_video_writes_them(tmp_path):
    from egosim.envs.video import RecordVideo

    inner = gym.make(ID, overrides=overrides(**{"render.size": 64}),
                     render_mode="rgb_array_list")
    assert inner.metadata["render_fps"] == 40
    env = RecordVideo(inner, str(tmp_path), episode_trigger=lambda ep: True)
    env.reset(seed=0)
    steps = 2
    for _ in range(steps):
        env.step(np.zeros(128, np.float32))
    env.close()
    frames = iio.imread(tmp_path / "rl-video-episode-0.mp4", index=None)
    assert len(frames) == 1 + 18 * steps and frames.shape[1:] == (64, 128, 3)
    # a plain list env: 18 frames per step, the last one the rgb_array image of the state
    env = EgoLocomotionEnv(overrides=overrides(**{"render.size": 64}),
                           render_mode="rgb_array_list")
    env.reset(seed=0)
    assert len(env.render()) == 1 and env.render() == []
    env.step(np.zeros(128, np.float32))
    listed = env.render()
    assert len(listed) == 18
    np.testing.assert_array_equal(listed[-1], render_world(env.sim, 0))
    assert not np.array_equal(listed[0], listed[-1])  # it moved within the primitive
    env.close()


# -- item: reward variant ----------------------------------------------------------------
@pytest.mark.slow
def test_per_progress_reward_pays_per_metre_and_is_bounded_by_the_route():
    rng = np.random.default_rng(4)
    actions = [np.clip(rng.standard_normal(128) / 3, -1, 1).astype(np.float32)
               for _ in range(8)]
    runs = {}
    for variant in ("egogen", "per_progress"):
        env = EgoLocomotionEnv(overrides=overrides(**{"reward.variant": variant}))
        env.reset(seed=5)
        start = float(env.sim.worlds[0].remaining[0])
        rows = []
        for a in actions:
            _, r, te, tr, info = env.step(a)
            assert sum(info["reward_terms"].values()) == pytest.approx(r, abs=1e-9)
            rows.append((r, info["reward_terms"]))
            if te or tr:
                break
        runs[variant] = (start, rows, env.sim.markers.copy())
        w = env.cfg.reward.weights.model_dump()
        env.close()
    (start, eg, m1), (_, pp, m2) = runs["egogen"], runs["per_progress"]
    np.testing.assert_array_equal(m1, m2)  # the reward does not change the motion
    for (_, a), (_, b) in zip(eg, pp, strict=True):
        p = a["progress"] / w["progress"]
        assert b["progress"] == a["progress"] and b["success"] == a["success"]
        for k in PER_STEP_TERMS:
            want = a[k] * p if p >= 0 else w[k] * p
            assert b[k] == pytest.approx(want, abs=1e-12)
    total = sum(r for r, _ in pp)
    bound = (w["progress"] + sum(w[k] for k in PER_STEP_TERMS)) * start + w["success"]
    assert total <= bound
    assert sum(r for r, _ in eg) > total  # EgoGen pays every step; per metre pays less here
    assert set(TERMS) == set(pp[0][1])
