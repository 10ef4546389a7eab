"""Benchmark of ``egosim generate``: clips per second at 1 and 2 workers, local and Ray,
and disk bytes per clip, side by side in one run.

Plain script. Each run writes the same dataset (``--clips`` clips of the CPU clip config,
``--size`` px, ``--shard-size`` clips a shard, the shipped PPO policy) into a fresh
temporary folder with its workers warmed first (modules, motion prior, policy loaded:
``generate(..., warm=True)``), after an untimed pass that fills the scene cache, so the
rate is generation alone; start-up is reported apart. Ray runs share one local instance
(``num_cpus`` = the most workers asked), started once and timed apart. The table gives
each run's rate, its ratio to the same backend's 1-worker rate (target >= 1.7 for Ray at
2 workers on 2 free cores), bytes per clip, and whether every run wrote the same bytes
(it must), and clips per CPU-second of the workers (one core's rate, which the machine's
other jobs change far less than the wall-clock rates). The load average is printed
before and after: other jobs on the machine lower the wall-clock ratios.

    python benchmarks/bench_generate.py [--clips 40] [--size 64] [--shard-size 10]
        [--workers 1 2] [--backends local ray] [key=value clip overrides ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def _run(root: Path, backend: str, workers: int, args: argparse.Namespace,
         overrides: list[str]) -> dict:
    from egosim.config import load_config
    from egosim.egom2p.datasets.generate import generate
    from egosim.egom2p.generate_config import GenerateConfig

    cfg = load_config("generate", [
        f"output_dir={root}", f"clips={args.clips}", f"shard_size={args.shard_size}",
        f"workers={workers}", f"backend={backend}", "previews=0", "progress=false",
        f"clip_overrides.video_size={args.size}",
        *(f"clip_overrides.{o}" for o in overrides)], schema=GenerateConfig)
    res = generate(cfg, warm=True, log=lambda s: None)
    res["shas"] = [f["sha256"] for s in res["record"]["shards"] for f in s["files"].values()]
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=10)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--backends", nargs="+", default=["local", "ray"],
                   choices=["local", "ray"])
    args, rest = p.parse_known_args()  # make bench passes other scripts' flags too
    overrides = [r for r in rest if "=" in r and not r.startswith("-")]
    import torch

    torch.set_num_threads(1)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_generate_", dir="/tmp"))
    rows = []
    try:
        # fill the scene cache (walk maps, SDFs of the shards' scenes) so that no timed run
        # pays for building scenes the others load
        t0 = time.perf_counter()
        _run(tmp / "cache", "local", max(args.workers), args, overrides)
        shutil.rmtree(tmp / "cache")
        print(f"  scene-cache pass (untimed): {time.perf_counter() - t0:.1f} s", flush=True)
        for backend in args.backends:
            session = None
            ray_start = 0.0
            if backend == "ray":
                from egosim.egom2p.datasets.ray_backend import ray_session

                t0 = time.perf_counter()
                session = ray_session(None, str(tmp / "ray"), num_cpus=max(args.workers))
                session.__enter__()
                ray_start = time.perf_counter() - t0
            try:
                for w in args.workers:
                    res = _run(tmp / f"{backend}_{w}", backend, w, args, overrides)
                    rows.append((backend, w, res, ray_start))
                    print(f"  {backend} x{w}: {res['clips_per_s']:.2f} clips/s", flush=True)
            finally:
                if session is not None:
                    session.__exit__(None, None, None)
        base = {b: next(r[2]["clips_per_s"] for r in rows if r[0] == b) for b in args.backends}
        same = len({tuple(r[2]["shas"]) for r in rows}) == 1
        print(f"\n{args.clips} clips, {args.size} px, {args.shard_size} clips a shard "
              f"(rates after warm-up; start-up = workers' processes and loading)")
        print(f"{'backend':>8} {'workers':>7} {'start-up s':>10} {'make s':>7} "
              f"{'clips/s':>8} {'x 1-worker':>10} {'clips/cpu-s':>11} {'KiB/clip':>9}")
        for backend, w, res, _ in rows:
            print(f"{backend:>8} {w:>7} {res['startup_s']:>10.1f} {res['seconds']:>7.1f} "
                  f"{res['clips_per_s']:>8.2f} {res['clips_per_s'] / base[backend]:>10.2f} "
                  f"{res['clips_per_cpu_s']:>11.2f} {res['bytes'] / args.clips / 1024:>9.1f}")
        if any(r[0] == "ray" for r in rows):
            print(f"ray: local instance started in {rows[-1][3]:.1f} s (once)")
        print(f"same bytes in every run: {'yes' if same else 'NO'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
