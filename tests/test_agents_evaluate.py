"""eval-agent: JSON keys, table, PNG, baselines on the same seeds."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest
from agents_support import EASY_ENV, TINY_PPO, stages

from egosim.agents.config import TrainAgentConfig
from egosim.agents.evaluate import METRIC_KEYS, format_table, main
from egosim.agents.train import run_train


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    out = tmp_path_factory.mktemp("policy")
    run_train(TrainAgentConfig(output_dir=str(out), num_envs=4, progress=False,
                               tensorboard=False, env=EASY_ENV, ppo=TINY_PPO,
                               stages=stages(32, 1)))
    return out / "final.zip"


@pytest.mark.slow
def test_eval_json_keys_png_and_baselines(tiny_policy, tmp_path, capsys):
    env = json.dumps({**EASY_ENV, "episode.max_steps": 3})
    rc = main([f"policy={tiny_policy}", "episodes=3", "seed=11", "scene=procedural:room",
               "json=true", "num_envs=2", f"env={env}", "progress=false",
               "baselines=[prior, zero]", f"output_dir={tmp_path}"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("success_rate", "penetration_per_frame", "foot_skating", "steps_per_second",
                "time_to_goal_s", "floor_contact", "human_collisions"):
        assert key in out
    assert out["episodes"] == 3 and 0.0 <= out["success_rate"] <= 1.0
    assert out["steps_per_second"] > 0 and out["foot_skating"] >= 0.0
    assert set(out["baselines"]) == {"prior", "zero"}
    assert out["baselines"]["zero"]["episodes"] == 3
    png = iio.imread(tmp_path / "metrics.png")
    assert png.ndim == 3 and png.shape[2] == 3 and png.std() > 0
    assert json.loads((tmp_path / "metrics.json").read_text())["episodes"] == 3


def test_table_has_a_row_per_metric():
    m = {k: 0.5 for k in METRIC_KEYS + ("steps_per_second", "primitives_per_second")}
    m["baselines"] = {"prior": dict(m, time_to_goal_s=float("nan"))}
    table = format_table(m)
    assert all(k in table for k in METRIC_KEYS) and "prior" in table and "nan" in table
    assert len(table.splitlines()) == 2 + len(METRIC_KEYS) + 2


def test_bad_eval_config_exit_code(capsys):
    assert main(["episodes=-1"]) == 2
    assert "episodes" in capsys.readouterr().err


@pytest.mark.slow
def test_scripted_controller_moves_towards_targets():
    """After 4 steps the sampling controller is nearer the goal than z = 0."""
    import numpy as np

    from egosim.agents.config import env_config
    from egosim.agents.evaluate import zero_controller
    from egosim.agents.scripted import SamplingController
    from egosim.envs.vector import SB3VecEnv

    cfg = env_config({**EASY_ENV, "goal.heading_noise_deg": 180.0})
    dists = {}
    for name in ("scripted", "zero"):
        venv = SB3VecEnv(num_envs=8, config=cfg)
        venv.seed(5)
        obs = venv.reset()
        ctrl = (SamplingController(venv, candidates=16, rng=np.random.default_rng(0))
                if name == "scripted" else zero_controller(128, 1))
        for _ in range(4):
            obs, _, _, infos = venv.step(ctrl(obs))
        dists[name] = float(np.mean([i["goal_distance_m"] for i in infos]))
    assert dists["scripted"] < dists["zero"] - 0.3, dists


@pytest.mark.slow
def test_crowd_eval_with_a_human_avoiding_planner(tiny_policy, tmp_path, capsys):
    env = json.dumps({**EASY_ENV, "episode.max_steps": 3})
    rc = main([f"policy={tiny_policy}", "episodes=2", "seed=3", "scene=procedural:room",
               "crowd=true", "num_humans=2", "num_envs=1", "json=true", f"env={env}",
               "progress=false", "plot=false", "baselines=[scripted]",
               "scripted_human_weight=10", f"output_dir={tmp_path}"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["crowd"] is True and out["episodes"] == 2
    planner = out["baselines"]["scripted"]
    assert planner["episodes"] == 2 and planner["human_collisions"] >= 0.0
    assert 0.0 <= planner["success_rate"] <= 1.0
