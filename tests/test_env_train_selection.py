"""train-agent's checkpoint selection: cost scaled to the budget, progress lines, a recorded
result that a rerun reuses, and summary figures that count the whole run across resumes."""

from __future__ import annotations

import json

import pytest
from agents_support import TINY_PPO, easy_env, small_run, stages

from egosim.agents.config import TrainAgentConfig
from egosim.agents.train import TRAIN_CLOCK, run_train, selection_episodes


def test_selection_episodes_scale_with_the_training_budget():
    shipped = TrainAgentConfig()
    assert selection_episodes(shipped, 3) == 32  # the shipped run keeps all its episodes
    tiny = TrainAgentConfig(stages=stages(256, 256), imitation={"steps": 0})
    assert selection_episodes(tiny, 3) == 4  # 0.5 * 512 steps < 3 x 60: the floor of 4
    mid = TrainAgentConfig(stages=stages(3000, 3000), imitation={"steps": 0})
    assert selection_episodes(mid, 3) == 16  # 0.5 * 6000 // (3 * 60)
    loose = TrainAgentConfig(stages=stages(256, 256), imitation={"steps": 0},
                             selection={"budget_fraction": 100.0})
    assert selection_episodes(loose, 3) == 32  # never above selection.episodes
    assert selection_episodes(TrainAgentConfig(selection={"episodes": 2}), 3) == 2


def _cfg(tmp_path, **kw) -> TrainAgentConfig:
    sel = {"episodes": 4, "num_envs": 4, "scene_seeds": [500, 501], **kw.pop("selection", {})}
    return TrainAgentConfig(output_dir=str(tmp_path / "run"), num_envs=4, tensorboard=False,
                            checkpoint_every=32, env=easy_env(), ppo=TINY_PPO,
                            stages=stages(32, 32), **small_run(selection=sel, **kw))


@pytest.mark.slow
def test_selection_reports_progress_is_recorded_and_reused_and_times_the_whole_run(
        tmp_path, capsys):
    first = run_train(_cfg(tmp_path, progress=False))
    err = capsys.readouterr().err
    run = tmp_path / "run"
    lines = [ln for ln in err.splitlines() if "train-agent: selection" in ln]
    assert len(lines) == len(first["selection"]["candidates"]) == 2, err
    assert "1/2: ppo_32_steps.zip: success" in lines[0] and "over 4 episodes" in lines[0]
    record = json.loads((run / "selection.json").read_text())
    assert record["complete"] and len(record["candidates"]) == 2
    assert first["train_wall_s"] > 0 and first["train_wall_complete"]
    assert first["env_steps_per_s"] == pytest.approx(64 / first["train_wall_s"])
    clock = json.loads((run / "checkpoints" / TRAIN_CLOCK).read_text())
    assert set(clock) == {"32", "64"} and clock["32"] < clock["64"]
    # rerun: nothing to train, the selection is read back, not redone
    second = run_train(_cfg(tmp_path, progress=True))
    err = capsys.readouterr().err
    assert "select checkpoint" in err  # the tqdm bar
    assert second["resumed_from"] == 64 and second["timesteps"] == 64
    assert second["train_wall_s"] == pytest.approx(clock["64"])  # the run's, not this call's
    assert second["env_steps_per_s"] == pytest.approx(64 / clock["64"])
    assert second["selection"]["candidates"] == first["selection"]["candidates"]
    assert all(c["wall_s"] == f["wall_s"] for c, f in
               zip(second["selection"]["candidates"], first["selection"]["candidates"],
                   strict=True))  # the recorded timings: nothing was re-run
    # other settings: the record does not apply and the candidates are validated again
    third = run_train(_cfg(tmp_path, progress=False, selection={"seed": 7}))
    err = capsys.readouterr().err
    assert "(recorded)" not in err and "over 4 episodes" in err
    assert third["selection"]["episodes"] == 4
