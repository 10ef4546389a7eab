"""Benchmark the SMPL-X body: forward passes, the markers-only fast path, procedural generation.

Plain script; prints a table (median times). Generation is timed cold (a fresh temporary
cache) unless ``--skip-generation``. Usage::

    python benchmarks/bench_body.py [--repeats N] [--threads T] [--skip-generation]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def _time(fn, repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls after one warm-up (robust to a busy host)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per row")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--skip-generation", action="store_true",
                        help="use the existing cache instead of timing a cold generation")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows: list[tuple[str, str, str]] = []
    tmp = None
    if not args.skip_generation:
        tmp = tempfile.TemporaryDirectory(prefix="egosim_bench_")
        os.environ["EGOSIM_CACHE_DIR"] = tmp.name
    os.environ.pop("EGOSIM_SMPLX_DIR", None)

    from egosim.envs.humans.body_model import BodyModel
    from egosim.envs.humans.procedural import generator as procedural

    if not args.skip_generation:
        start = time.perf_counter()
        procedural.procedural_model_path("neutral")  # generates and writes all three
        rows.append(("procedural generation, 3 genders (cold)",
                     f"{time.perf_counter() - start:.1f} s", ""))
    start = time.perf_counter()
    body = BodyModel()
    rows.append(("BodyModel() load (cached files)", f"{time.perf_counter() - start:.2f} s", ""))

    torch.manual_seed(0)
    with torch.no_grad():
        for batch in (1, 64):
            params = {"betas": torch.randn(batch, 10), "global_orient": torch.randn(batch, 3),
                      "body_pose": 0.3 * torch.randn(batch, 63),
                      "transl": torch.randn(batch, 3)}
            reps = args.repeats if batch > 1 else 5 * args.repeats
            full = _time(lambda p=params: body(**p), reps)
            fast = _time(lambda p=params: body.markers_only(**p), reps)
            rows.append((f"smplx forward, batch {batch}", f"{full * 1e3:.1f} ms",
                         f"{batch / full:,.0f} bodies/s"))
            rows.append((f"markers_only, batch {batch}", f"{fast * 1e3:.2f} ms",
                         f"{batch / fast:,.0f} bodies/s  ({full / fast:.1f}x)"))
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'time':>10}  rate")
    print("-" * (width + 40))
    for name, t, rate in rows:
        print(f"{name:<{width}}  {t:>10}  {rate}")
    print(f"(torch threads: {torch.get_num_threads()})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
