"""DAgger warm start: the student fits the teacher, the returns are discounted right, and
train-agent runs imitation once, checkpoints it and resumes past it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from agents_support import EASY_ENV, TINY_PPO, stages
from stable_baselines3 import PPO

from egosim.agents.imitation import DaggerData, _discounted, dagger, fit_student
from egosim.agents.scripted import SamplingController
from egosim.agents.train import build_model, latest_checkpoint, make_train_env, run_train
from egosim.config import ConfigError, load_config
from egosim.config_agent import TrainAgentConfig


def test_discounted_returns_cut_at_episode_ends():
    r = np.array([[1.0], [1.0], [1.0]])
    d = np.array([[0.0], [1.0], [0.0]])
    out = _discounted(r, d, np.array([10.0]), 0.5)
    # step 2 bootstraps, step 1 ends its episode, step 0 sees step 1 only
    np.testing.assert_allclose(out[:, 0], [1.5, 1.0, 1.0 + 0.5 * 10.0])


def _cfg(tmp_path, **kw) -> TrainAgentConfig:
    return TrainAgentConfig(output_dir=str(tmp_path / "run"), num_envs=4, progress=False,
                            tensorboard=False, checkpoint_every=32, env=EASY_ENV, ppo=TINY_PPO,
                            stages=stages(32, 32), **kw)


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
    im = {"steps": 16, "iterations": 2, "candidates": 4, "epochs": 1, "batch_size": 8}
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
    assert json.loads((run / "imitation.json").read_text())["samples"] == 32
    assert PPO.load(run / "final.zip", device="cpu").num_timesteps == 64
    # interrupted after imitation: only ppo_0_steps.zip left; the resumed run skips DAgger
    for f in (run / "checkpoints").iterdir():
        if f.name != "ppo_0_steps.zip":
            f.unlink()
    assert latest_checkpoint(run / "checkpoints")[1] == 0
    again = run_train(_cfg(tmp_path, imitation=im))
    assert "imitation" not in again and again["timesteps"] == 64


def test_imitation_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="imitation.iterations"):
        load_config("train_agent", {"imitation.iterations": 0})
    with pytest.raises(ConfigError, match="imitation.bogus"):
        load_config("train_agent", {"imitation.bogus": 1})
