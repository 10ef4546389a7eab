"""Benchmark of the agent: policy inference and env + policy steps per second.

Plain script; prints one table for the batched EgoLocomotion env at ``--humans`` humans on
the fixed procedural apartment ``seed=3`` (scene built before the timings):

* the policy alone (``EgoGenExtractor`` + heads, mean action) on a batch of observations;
* env + policy (what ``egosim eval-agent`` and PPO's rollouts do);
* env + ``z ~ N(0, I)`` (the motion prior's own rollouts), for reference.

Uses the shipped policy when present, else a freshly initialised one of the same shape.

    python benchmarks/bench_agents.py [--steps 20] [--humans 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _policy(venv):
    from stable_baselines3 import PPO

    from egosim.agents.config import TrainAgentConfig
    from egosim.agents.evaluate import SHIPPED_POLICY
    from egosim.agents.train import build_model

    if SHIPPED_POLICY.is_file():
        return PPO.load(SHIPPED_POLICY, device="cpu"), "shipped"
    cfg = TrainAgentConfig(num_envs=venv.num_envs, ppo={"batch_size": venv.num_envs})
    return build_model(cfg, venv, None), "untrained"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--humans", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from egosim.agents.evaluate import policy_controller, prior_controller
    from egosim.agents.sb3_vec_env import SB3VecEnv
    from egosim.envs.config import LocomotionEnvConfig

    cfg = LocomotionEnvConfig.model_validate({"scene": {"seed": 3,
                                                        "options": {"num_rooms": 4}}})
    venv = SB3VecEnv(num_envs=args.humans, config=cfg)
    venv.seed(0)
    obs = venv.reset()
    model, which = _policy(venv)
    rows = []
    t = time.perf_counter()
    for _ in range(args.steps):
        model.policy.predict(obs, deterministic=True)
    dt = time.perf_counter() - t
    rows.append((f"policy only ({which})", args.steps * args.humans / dt))
    for name, ctrl in (("env + policy", policy_controller(model, 1, True)),
                       ("env + z ~ N(0, I)", prior_controller(128, 1, cfg.action.scale,
                                                               np.random.default_rng(0)))):
        obs = venv.reset()
        venv.step(ctrl(obs))  # warm-up
        t = time.perf_counter()
        for _ in range(args.steps):
            obs, _, _, _ = venv.step(ctrl(obs))
        rows.append((name, args.steps * args.humans / (time.perf_counter() - t)))
    print(f"agent benchmark: {args.humans} humans, {args.steps} steps, "
          f"{args.threads} torch threads")
    print(f"{'what':<32}{'primitives/s':>14}")
    for name, rate in rows:
        print(f"{name:<32}{rate:>14.1f}")
    print(f"{'policy share of env + policy':<32}{rows[1][1] / rows[0][1]:>14.1%}")


if __name__ == "__main__":
    main()
