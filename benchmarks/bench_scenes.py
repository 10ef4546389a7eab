"""Benchmark of egosim.envs.scenes: generation, walkability, SDF build and queries, paths.

Plain script; prints one table. Caches go to a temporary folder so every number is a cold
computation (set ``EGOSIM_CACHE_DIR`` yourself to reuse a cache instead).

    python benchmarks/bench_scenes.py [--seeds 10] [--queries 1000000] [--samurai]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_scene(spec: str, seeds: list[int], queries: int, paths: int, **options) -> dict:
    """Times (seconds) for one scene spec, averaged over ``seeds``."""
    from egosim.envs.scenes import load

    gen, walk, sdf_build, qps, plan, faces = [], [], [], [], [], []
    rng = np.random.default_rng(0)
    for seed in seeds:
        scene, t = _timed(load, spec, seed=seed, **options)
        gen.append(t)
        faces.append(scene.num_faces)
        # Procedural scenes compute their walk map while generating (connectivity check);
        # time it again from scratch for a fair number.
        _, t = _timed(scene._compute_walk_map)
        walk.append(t)
        grid, t = _timed(lambda s=scene: s.sdf_grid)
        sdf_build.append(t)
        pts = rng.uniform(scene.bounds[0], scene.bounds[1], (queries, 3))
        _, t = _timed(scene.sdf, pts)
        qps.append(queries / t)
        for _ in range(paths):
            a, b = scene.sample_start_goal(rng, min_dist=2.0, max_dist=12.0)
            _, t = _timed(scene.plan_path, a, b)
            plan.append(t)
    return {
        "spec": spec,
        "faces": int(np.mean(faces)),
        "generate_s": float(np.mean(gen)),
        "walk_s": float(np.mean(walk)),
        "walk_grid": "x".join(map(str, scene.walkable.shape)),
        "sdf_build_s": float(np.mean(sdf_build)),
        "sdf_res_m": grid.resolution,
        "sdf_Mq_per_s": float(np.mean(qps)) / 1e6,
        "plan_ms": 1e3 * float(np.mean(plan)),
    }


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="apartment seeds to average")
    parser.add_argument("--queries", type=int, default=1_000_000, help="SDF query points")
    parser.add_argument("--paths", type=int, default=5, help="planned paths per scene")
    parser.add_argument("--samurai", action="store_true", help="also pybullet:samurai")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("EGOSIM_CACHE_DIR", tmp)
        rows = [
            bench_scene("procedural:apartment", list(range(args.seeds)), args.queries,
                        args.paths),
            bench_scene("procedural:room", list(range(args.seeds)), args.queries, args.paths),
        ]
        if args.samurai:
            rows.append(bench_scene("pybullet:samurai", [0], args.queries, args.paths))
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).ljust(width[c]) for c in cols))


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
