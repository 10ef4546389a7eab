"""A short PPO run learns: the mean return on a fixed easy scene rises over the untrained
policy's (same start/goal seeds, deterministic actions). A real learning signal: the
untrained policy outputs ~zero latents and mostly walks off in its start heading (up to
90 deg off the goal); PPO has to learn to steer towards the goal from the goal vectors."""

from __future__ import annotations

import time

import pytest
from agents_support import easy_env, small_run, stages
from stable_baselines3 import PPO

from egosim.agents.config import TrainAgentConfig
from egosim.agents.evaluate import policy_controller, run_episodes
from egosim.agents.sb3_vec_env import SB3VecEnv
from egosim.agents.train import build_model, make_train_env, run_train
from egosim.envs.config import LocomotionEnvConfig

EPISODES = 16
MARGIN = 1.0  # return units (progress is 1 per metre of route covered)


def _score(model) -> dict:
    cfg = LocomotionEnvConfig.model_validate(easy_env())
    venv = SB3VecEnv(num_envs=EPISODES, config=cfg)
    venv.seed(4242)  # fixed starts and goals, never used in training (seed 0 + i)
    return run_episodes(venv, policy_controller(model, 1, deterministic=True), EPISODES,
                        cfg.reward.weights.model_dump())


@pytest.mark.slow
def test_short_ppo_run_improves_return(tmp_path):
    t0 = time.perf_counter()
    cfg = TrainAgentConfig(output_dir=str(tmp_path), num_envs=16, progress=False,
                           tensorboard=False, resume=False, checkpoint_every=10**6,
                           env=easy_env(), stages=stages(2048, 1)[:1],
                           ppo={"n_steps": 16, "batch_size": 64, "n_epochs": 10,
                                "learning_rate": 1e-3}, **small_run())
    before = _score(build_model(cfg, make_train_env(cfg, cfg.stages[0], 0), None))
    run_train(cfg)
    after = _score(PPO.load(tmp_path / "final.zip", device="cpu"))
    print(f"return {before['episode_return']:.3f} -> {after['episode_return']:.3f}, success "
          f"{before['success_rate']:.3f} -> {after['success_rate']:.3f}, "
          f"{time.perf_counter() - t0:.1f} s")
    assert after["episode_return"] > before["episode_return"] + MARGIN
