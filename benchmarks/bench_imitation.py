"""Benchmark: how the student is fitted decides what imitation reaches.

Collects ``--samples`` env steps of the privileged sampling planner (the shipped
``configs/train_agent.yaml``: fixed codebook of 33 latents, training scenes), then fits a
fresh policy to the same data three ways and measures each one's success on the validation
scenes (``selection`` of the config: scene seeds 200-300, the same episodes for every row):

* ``shared encoder, critic gradient in it``: SB3's default policy, actor and critic losses
  summed through one encoder (the agent's former default);
* ``shared encoder, critic detached``: the critic reads the encoder but does not train it;
* ``separate encoders``: actor and critic each have one (the shipped default).

Prints validation success, penetrating vertices per frame and the final actor MSE per row
and per ``--epochs`` setting, side by side, with the wall time of each part.

    python benchmarks/bench_imitation.py [--samples 6144] [--epochs 10 30] [--episodes 32]
        [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

VARIANTS = [("shared encoder, critic gradient in it", True, True),
            ("shared encoder, critic detached", True, False),
            ("separate encoders (shipped)", False, False)]


def main() -> None:
    from egosim.agents.config import TrainAgentConfig
    from egosim.agents.evaluate import policy_controller, run_episodes
    from egosim.agents.imitation import DaggerData, _collect, fit_student
    from egosim.agents.sb3_vec_env import SB3VecEnv
    from egosim.agents.scripted import SamplingController
    from egosim.agents.train import build_model, make_train_env
    from egosim.config import load_config, with_overrides

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=6144, help="teacher env steps")
    ap.add_argument("--epochs", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--episodes", type=int, default=32, help="validation episodes per row")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config("train_agent", schema=TrainAgentConfig)
    im, sel = cfg.imitation, cfg.selection
    env = make_train_env(cfg, cfg.stages[0], cfg.seed)
    teacher = SamplingController(env, candidates=im.candidates, sigma=im.sigma,
                                 rng=np.random.default_rng(cfg.seed),
                                 fixed=im.fixed_candidates)
    data = DaggerData()
    t0 = time.perf_counter()
    collected = _collect(build_model(cfg, env, None), env, teacher, args.samples, 1.0,
                         np.random.default_rng(cfg.seed), cfg.ppo.gamma, data, None)
    print(f"teacher: {len(data)} samples, success {collected['success_rate']:.3f} over "
          f"{collected['episodes']} episodes, {time.perf_counter() - t0:.0f} s; "
          f"validation: {args.episodes} episodes on scene seeds {list(sel.scene_seeds)}")
    val_cfg = with_overrides(cfg.env, {"scene.seed_range": list(sel.scene_seeds)})
    weights = val_cfg.reward.weights.model_dump()
    print(f"{'fit':<40} {'epochs':>6} {'actor MSE':>10} {'success':>8} {'pen/frame':>10} "
          f"{'fit s':>6}")
    for epochs in args.epochs:
        for name, shared, critic_to_encoder in VARIANTS:
            cfg.policy.share_features_extractor = shared
            model = build_model(cfg, env, None)
            t1 = time.perf_counter()
            fit = fit_student(model, data, epochs, im.batch_size, im.learning_rate,
                              np.random.default_rng(cfg.seed),
                              critic_to_encoder=critic_to_encoder)
            fit_s = time.perf_counter() - t1
            venv = SB3VecEnv(num_envs=sel.num_envs, config=val_cfg)
            venv.seed(sel.seed)
            m = run_episodes(venv, policy_controller(model, 1, True), args.episodes, weights)
            venv.close()
            print(f"{name:<40} {epochs:>6} {fit['actor_mse']:>10.3f} "
                  f"{m['success_rate']:>8.3f} {m['penetration_per_frame']:>10.1f} "
                  f"{fit_s:>6.1f}", flush=True)
    env.close()


if __name__ == "__main__":
    main()
