"""Benchmark of the classical camera trackers of ``egosim egom2p eval``: seconds per clip
and ATE beside the trivial baselines, on held-out clips.

Plain script: makes ``--clips`` held-out apartment clips (scene seeds [1000, 1200), 64 x 64,
the eval config's clip builder) and, from the same builder settings, ``--train-clips``
training clips for the mean trajectory, then times each method with one CPU thread (torch
and OpenCV) and prints seconds per clip, EgoM2P's ATE, the Sim(3) ATE, RTE and RRE, and the
odometries' failed-step counts.

    python benchmarks/bench_eval.py [--clips 16] [--train-clips 32] [key=value ...]

``key=value`` items are overrides of ``configs/egom2p_eval.yaml``.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--train-clips", type=int, default=32)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    import cv2
    import torch

    from egosim.config import load_config
    from egosim.egom2p.eval_config import EvalConfig
    from egosim.egom2p.evaluation.harness import (
        builtin_methods,
        evaluate_methods,
        make_clip_groups,
        resolve_train_stats,
    )

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    cfg = load_config("egom2p_eval", [*args.overrides, f"clips={args.clips}",
                                      f"train_clips={args.train_clips}", "scenes=[]",
                                      "tasks=[camera]", "threads=1"], schema=EvalConfig)
    t0 = time.perf_counter()
    groups = make_clip_groups(cfg, progress=True)
    stats = resolve_train_stats(cfg, progress=True)
    print(f"clips: {time.perf_counter() - t0:.1f} s for {args.clips} held-out + "
          f"{args.train_clips} training clips")
    res = evaluate_methods(groups, builtin_methods(cfg, stats))
    print(f"{'method':<16} {'s/clip':>8} {'ATE m':>8} {'Sim3 m':>8} {'RTE m':>8} "
          f"{'RRE deg':>8}  failed steps")
    for name, row in res.results["camera"].items():
        steps = res.steps.get("camera", {}).get(name, {}).get("apartments")
        fails = f"{steps[0]} / {steps[1]}" if steps else "-"
        print(f"{name:<16} {row['seconds_per_clip']:>8.4f} {row['ate']:>8.3f} "
              f"{row['ate_sim3']:>8.3f} {row['rte']:>8.3f} {row['rre']:>8.2f}  {fails}")
    print("(mono_vo has no metric scale: compare its Sim(3) ATE)")


if __name__ == "__main__":
    main()
