"""train-agent: two stages, checkpoints, resume from the latest checkpoint."""

from __future__ import annotations

import json

import pytest
from agents_support import TINY_PPO, easy_env, small_run, stages
from stable_baselines3 import PPO

from egosim.agents.config import TrainAgentConfig
from egosim.agents.train import latest_checkpoint, run_train


def _cfg(tmp_path, a: int, b: int, **kw) -> TrainAgentConfig:
    return TrainAgentConfig(output_dir=str(tmp_path / "run"), num_envs=4, progress=False,
                            tensorboard=kw.pop("tensorboard", False), checkpoint_every=32,
                            env=easy_env(), ppo=TINY_PPO, stages=stages(a, b), **small_run(**kw))


def test_latest_checkpoint_picks_most_steps(tmp_path):
    assert latest_checkpoint(tmp_path / "none") is None
    for name in ("ppo_96_steps.zip", "ppo_128_steps.zip", "ppo_1000_steps.txt", "x.zip"):
        (tmp_path / name).write_bytes(b"")
    path, steps = latest_checkpoint(tmp_path)
    assert (path.name, steps) == ("ppo_128_steps.zip", 128)


@pytest.mark.slow
def test_two_stages_checkpoints_and_resume(tmp_path):
    summary = run_train(_cfg(tmp_path, 32, 32, tensorboard=True))
    run = tmp_path / "run"
    assert summary["timesteps"] == 64 and summary["resumed_from"] == 0
    assert set(summary["stages"]) == {"pretrain", "finetune"}
    assert latest_checkpoint(run / "checkpoints")[1] == 64
    assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    first = PPO.load(run / "final.zip", device="cpu")
    # a larger fine-tuning budget: resume at 64 steps, train only the rest of stage 2
    summary = run_train(_cfg(tmp_path, 32, 64))
    assert summary["resumed_from"] == 64 and summary["timesteps"] == 96
    assert list(summary["stages"]) == ["finetune"]
    resumed = PPO.load(run / "final.zip", device="cpu")
    assert resumed.num_timesteps == 96 > first.num_timesteps
    assert json.loads((run / "summary.json").read_text())["timesteps"] == 96
    # nothing left to do: a third call trains nothing and keeps the step count
    assert run_train(_cfg(tmp_path, 32, 64))["timesteps"] == 96
    # resume: false starts over
    assert run_train(_cfg(tmp_path, 32, 32, resume=False))["resumed_from"] == 0
