"""DAgger warm start: the student fits the teacher, the returns are discounted right, and
train-agent runs imitation once, checkpoints it and resumes past it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from agents_support import TINY_PPO, easy_env, small_run, stages
from stable_baselines3 import PPO

from egosim.agents.config import TrainAgentConfig
from egosim.agents.imitation import (
    DaggerData,
    _discounted,
    collect_crowd,
    dagger,
    fit_student,
)
from egosim.agents.sb3_vec_env import SB3VecEnv
from egosim.agents.scripted import SamplingController
from egosim.agents.train import build_model, latest_checkpoint, make_train_env, run_train
from egosim.config import ConfigError, load_config
from egosim.envs.config import CrowdEnvConfig


def test_discounted_returns_cut_at_episode_ends():
    r = np.array([[1.0], [1.0], [1.0]])
    d = np.array([[0.0], [1.0], [0.0]])
    out = _discounted(r, d, np.array([10.0]), 0.5)
    # step 2 bootstraps, step 1 ends its episode, step 0 sees step 1 only
    np.testing.assert_allclose(out[:, 0], [1.5, 1.0, 1.0 + 0.5 * 10.0])


def _cfg(tmp_path, **kw) -> TrainAgentConfig:
    return TrainAgentConfig(output_dir=str(tmp_path / "run"), num_envs=4, progress=False,
                            tensorboard=False, checkpoint_every=32, env=easy_env(), ppo=TINY_PPO,
                            stages=stages(32, 32), **small_run(**kw))


@pytest.mark.slow
def test_student_moves_towards_teacher(tmp_path):
    cfg = _cfg(tmp_path)
    env = make_train_env(cfg, cfg.stages[0], 0)
    model = build_model(cfg, env, None)
    teacher = SamplingController(env, candidates=8, rng=np.random.default_rng(0))
    obs = env.reset()
    labels = teacher(obs)
    before = float(np.mean((model.predict(obs, deterministic=True)[0] - labels) ** 2))
    data = DaggerData({k: [v] for k, v in obs.items()}, [labels], [np.zeros(len(labels))])
    stats = fit_student(model, data, epochs=200, batch_size=4, lr=1e-3,
                        rng=np.random.default_rng(0))
    after = float(np.mean((model.predict(obs, deterministic=True)[0] - labels) ** 2))
    assert after < 0.25 * before, (before, after)
    assert stats["actor_mse"] < before
    result = dagger(model, env, teacher, steps=16, iterations=2, epochs=1, batch_size=8,
                    lr=1e-4, gamma=0.99, progress=False)
    assert [row["beta"] for row in result["iterations"]] == [1.0, 0.5]
    assert result["samples"] == 32
    env.close()


@pytest.mark.parametrize("shared", [True, False])
def test_critic_targets_do_not_move_the_actor(tmp_path, shared):
    """Labels equal to the actor's own mean and large returns: only the critic has error,
    and fitting it must leave the actor's output alone (shared encoder: detached)."""
    cfg = _cfg(tmp_path, policy={"share_features_extractor": shared})
    env = make_train_env(cfg, cfg.stages[0], 0)
    model = build_model(cfg, env, None)
    assert model.policy.share_features_extractor is shared
    obs = env.reset()
    mean = model.predict(obs, deterministic=True)[0]
    returns = np.linspace(50.0, 150.0, len(mean))
    data = DaggerData({k: [v] for k, v in obs.items()}, [mean], [returns])
    ob = model.policy.obs_to_tensor(obs)[0]
    value_before = model.policy.predict_values(ob).detach().numpy()[:, 0]
    stats = fit_student(model, data, epochs=20, batch_size=4, lr=1e-3,
                        rng=np.random.default_rng(0))
    value_after = model.policy.predict_values(ob).detach().numpy()[:, 0]
    after = model.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(after, mean, atol=1e-5)
    assert stats["actor_mse"] < 1e-9
    # the critic did learn: its error on the returns fell
    assert np.mean((value_after - returns) ** 2) < np.mean((value_before - returns) ** 2)
    env.close()


@pytest.mark.slow
def test_train_agent_imitates_once_then_resumes(tmp_path):
    im = {"steps": 16, "iterations": 2, "candidates": 4, "epochs": 1, "batch_size": 8,
          "crowd_steps": 8, "crowd_envs": 2, "crowd_humans": 2}
    summary = run_train(_cfg(tmp_path, imitation=im,
                             selection={"episodes": 4, "num_envs": 4, "scene_seeds": [500, 501]},
                             export_path=str(tmp_path / "exported.zip")))
    run = tmp_path / "run"
    assert len(summary["imitation"]["iterations"]) == 2
    # validation picks among imitation's end and each stage's end, and exports that one
    cands = summary["selection"]["candidates"]
    assert [c["steps"] for c in cands] == [0, 32, 64]
    best = max(cands, key=lambda c: (c["success_rate"], c["steps"]))
    assert summary["selection"]["chosen"] == best["path"]
    assert (tmp_path / "exported.zip").read_bytes() == (run / "best.zip").read_bytes() == \
        open(best["path"], "rb").read()
    assert (run / "checkpoints" / "ppo_0_steps.zip").is_file()
    # 32 single-human samples plus at least 8 teacher samples from the crowd worlds
    imitation = json.loads((run / "imitation.json").read_text())
    assert imitation["samples"] == 32 + imitation["crowd"]["samples"]
    assert imitation["crowd"]["samples"] >= 8
    assert PPO.load(run / "final.zip", device="cpu").num_timesteps == 64
    # interrupted after imitation: only ppo_0_steps.zip left; the resumed run skips DAgger
    for f in (run / "checkpoints").iterdir():
        if f.name != "ppo_0_steps.zip":
            f.unlink()
    assert latest_checkpoint(run / "checkpoints")[1] == 0
    again = run_train(_cfg(tmp_path, imitation=im))
    assert "imitation" not in again and again["timesteps"] == 64


def _crowd_env(n: int = 2, worlds: int = 2) -> SB3VecEnv:
    cfg = CrowdEnvConfig.model_validate(easy_env({"crowd.num_humans": n,
                                                  "crowd.min_separation": 1.0}))
    venv = SB3VecEnv(num_envs=worlds, config=cfg, crowd=True)
    venv.seed(0)
    return venv


def test_crowd_teacher_cost_counts_frames_near_the_others():
    venv = _crowd_env()
    obs = venv.reset()
    teacher = SamplingController(venv, candidates=2, rng=np.random.default_rng(0),
                                 human_weight=10.0)
    sim = teacher.sim
    still = sim.history[:, 1:].repeat(1, 2, 1, 1)  # both history frames equal: nobody moves
    now = sim.pelvis(still[:, -1].double().numpy())  # (4, 3): 2 worlds x 2 humans
    pel = np.broadcast_to(now[:, None, None], (4, 3, 18, 3)).copy()  # everyone stays put
    assert np.linalg.norm(now[0, :2] - now[1, :2]) >= 1.0  # starts are min_separation apart
    pel[0, 1] = now[1]  # human 0, candidate 1: onto human 1 of the same world
    pel[0, 2, 9:] = now[1]  # candidate 2: there for the last 9 of 18 frames
    pel[2, 1] = now[1]  # world 1's human 0 onto world 0's human 1: another world, no cost
    crowded = teacher._crowding(pel, still)
    assert crowded[0].tolist() == [0.0, 1.0, 0.5]
    # counted against world 1's other human (index 3) only
    assert crowded[2, 1] == float(np.linalg.norm(now[1, :2] - now[3, :2])
                                  < teacher.human_clearance)
    assert teacher.human_clearance == pytest.approx(2 * sim.cfg.sensing.human_radius + 0.1)
    # without the weight the term is off
    off = SamplingController(venv, candidates=2, rng=np.random.default_rng(0))
    assert not off._crowding(pel, still).any()
    # a moving human is extrapolated at its velocity: 0.1 m per frame along x
    moving = still.clone()
    moving[1, 0] -= torch.tensor([0.1, 0.0, 0.0])  # human 1 was 0.1 m behind a frame ago
    ahead = now[1] + np.array([0.1, 0.0, 0.0]) * np.arange(1, 19)[:, None]  # (18, 3)
    pel[0, 1] = ahead  # follows human 1's extrapolated path: near it in every frame
    pel[0, 2] = now[1]  # waits where human 1 is now: near only while it is still close
    crowded = teacher._crowding(pel, moving)
    assert crowded[0, 1] == 1.0
    near = np.linalg.norm(ahead[:, :2] - now[1, :2], axis=-1) < teacher.human_clearance
    assert crowded[0, 2] == pytest.approx(near.mean())
    assert teacher(obs).shape == (2, 2 * sim.latent_dim)
    venv.close()


def test_crowd_samples_are_per_human_and_train_the_actor_only(tmp_path):
    venv = _crowd_env()
    teacher = SamplingController(venv, candidates=4, rng=np.random.default_rng(0),
                                 human_weight=10.0)
    data = DaggerData()
    stats = collect_crowd(venv, teacher, steps=12, data=data)
    obs, act, ret = data.arrays()
    assert stats["samples"] == len(act) >= 12 and act.shape[1] == teacher.sim.latent_dim
    assert obs["markers"].shape == (len(act), 402) and np.isnan(ret).all()
    venv.close()
    cfg = _cfg(tmp_path)
    env = make_train_env(cfg, cfg.stages[0], 0)
    model = build_model(cfg, env, None)
    before = float(np.mean((model.predict(obs, deterministic=True)[0] - act) ** 2))
    fit = fit_student(model, data, epochs=30, batch_size=8, lr=1e-3,
                      rng=np.random.default_rng(0))
    assert np.isfinite(fit["actor_mse"]) and fit["critic_mse"] == 0.0  # no return to fit
    after = float(np.mean((model.predict(obs, deterministic=True)[0] - act) ** 2))
    assert after < 0.5 * before
    env.close()


def test_imitation_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="imitation.iterations"):
        load_config("train_agent", {"imitation.iterations": 0}, schema=TrainAgentConfig)
    with pytest.raises(ConfigError, match="imitation.bogus"):
        load_config("train_agent", {"imitation.bogus": 1}, schema=TrainAgentConfig)
    with pytest.raises(ConfigError, match="imitation.crowd_humans"):
        load_config("train_agent", {"imitation.crowd_humans": 1}, schema=TrainAgentConfig)
