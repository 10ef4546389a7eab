"""Benchmark of the EgoGen envs: primitives (env steps x humans) per second.

Plain script; prints one table:

* one ``EgoLocomotion-v0`` env (``gymnasium.make``);
* ``gymnasium.make_vec(..., vectorization_mode="async")`` with 2 worker processes;
* the batched vector env (``vector_entry_point``) at ``--humans`` (64) humans, one
  ``MotionPrior.step`` for all of them (target: >= 200 primitives/s on 2 cores);
* the motion prior's own batched step alone, for reference.

Uses the shipped motion-prior checkpoints when present, else an *untrained* prior of
EgoGen's sizes (same cost per step; built once into the egosim cache), on the fixed
procedural apartment ``seed=3`` (no scene building inside the timings).

    python benchmarks/bench_envs.py [--steps 20] [--humans 64] [--prior PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def egogen_sized_prior() -> str:
    """Shipped checkpoints, or an untrained EgoGen-sized prior exported to the cache."""
    from egosim.envs.motion.prior import CVAE_FILE, REGRESSOR_FILE, checkpoint_dir
    from egosim.paths import cache_dir

    if all((checkpoint_dir() / f).is_file() for f in (CVAE_FILE, REGRESSOR_FILE)):
        return str(checkpoint_dir())
    folder = cache_dir("bench_env_prior", "untrained-egogen-v1")
    if not (folder / CVAE_FILE).is_file():
        from egosim.envs.motion.config import TrainPriorConfig
        from egosim.envs.motion.train_prior import Trainer
        from egosim.envs.motion.training_data import synthetic_primitives

        data = synthetic_primitives(3, 80, seed=0)
        cfg = TrainPriorConfig(output_dir=str(folder / "run"), progress=False,
                               tensorboard=False, resume=False, num_seeds=8,
                               stage2={"steps": 0, "batch_size": 4, "num_primitives": 2})
        tmp = Path(str(folder) + f".tmp{os.getpid()}")
        Trainer(cfg, data, data.subset(np.arange(0))).export(tmp)
        for f in tmp.iterdir():
            f.replace(folder / f.name)
        tmp.rmdir()
    return str(folder)


def _rate(step, reset, steps: int, per_step: int) -> float:
    reset()
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * per_step / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--humans", type=int, default=64)
    ap.add_argument("--prior", default=None)
    args = ap.parse_args()

    import gymnasium as gym
    import torch

    import egosim  # noqa: F401
    from egosim.envs.locomotion import EgoLocomotionEnv
    from egosim.envs.vector import EgoVectorEnv

    prior = args.prior or egogen_sized_prior()
    ov = {"prior.path": prior, "scene.seed": 3, "episode.max_steps": 1000}
    rng = np.random.default_rng(0)
    rows = []

    env = EgoLocomotionEnv(overrides=ov)
    a1 = rng.uniform(-1, 1, 128).astype(np.float32)
    rows.append(("EgoLocomotion-v0, 1 env", 1, _rate(lambda: env.step(a1),
                                                      lambda: env.reset(seed=0), args.steps, 1)))

    # spawn: this process has already run torch, and forked children of a process whose
    # OpenMP pool is live can hang (see the env docs)
    venv = gym.make_vec("egosim/EgoLocomotion-v0", num_envs=2, vectorization_mode="async",
                        vector_kwargs={"context": "spawn"}, overrides=ov)
    a2 = rng.uniform(-1, 1, (2, 128)).astype(np.float32)
    rows.append(("make_vec async, 2 workers", 2, _rate(lambda: venv.step(a2),
                                                       lambda: venv.reset(seed=0),
                                                       args.steps, 2)))
    venv.close()

    n = args.humans
    bvenv = EgoVectorEnv(n, overrides=ov)
    an = rng.uniform(-1, 1, (n, 128)).astype(np.float32)
    rows.append((f"batched vector env, {n} humans", n,
                 _rate(lambda: bvenv.step(an), lambda: bvenv.reset(seed=0),
                       max(3, args.steps // 4), n)))

    sim = bvenv.sim
    from egosim.envs.motion.prior import PriorState

    st = PriorState(sim.history.clone(), sim.betas.clone(), sim.gender.clone())
    z = torch.from_numpy(an * 3.0)
    rows.append((f"MotionPrior.step alone, {n} humans", n,
                 _rate(lambda: sim.prior.step(st, z), lambda: None, max(3, args.steps // 4),
                       n)))

    print(f"prior: {prior}  (torch threads {torch.get_num_threads()}, cores {os.cpu_count()})")
    print(f"{'setting':38s} {'humans':>6s} {'primitives/s':>13s} {'env steps/s':>12s}")
    for name, h, rate in rows:
        print(f"{name:38s} {h:6d} {rate:13.1f} {rate / h:12.2f}")


if __name__ == "__main__":
    main()
