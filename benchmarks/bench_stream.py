"""Benchmark of the EgoM2P clip stream: clips per second and seconds per stage.

Plain script; prints one table per worker count (default 0 and 2 DataLoader workers) at
the CPU config (``configs/egom2p_clips.yaml``: 64 x 64 video, RGB + depth + camera + gaze,
the shipped PPO policy, 1-4 humans per scene, 4 scenes per worker): each worker first
builds its scene pool (timed as start-up), then ``--clips`` clips are timed after
``--skip`` more (the table's per-stage times are over the timed window only). Target:
>= 10 clips/s with 2 workers on 2 cores.

    python benchmarks/bench_stream.py [--clips 200] [--skip 40] [--workers 0 2] [key=value ...]

With ``--camera-stats N`` it instead streams ``N`` camera-only clips (2 workers, no
rendering), fits the 9-D camera statistics (:func:`egosim.egom2p.camera_9d.fit_stats`) and
writes them to ``egom2p/tokenizers/checkpoints/camera_9d_stats.json`` (``--stats-out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _window(stream, loader_iter, skip: int, clips: int) -> tuple[float, dict, dict]:
    """Skip ``skip`` clips, then time ``clips``: (clips/s, stats before, stats after)."""
    for _ in range(skip):
        next(loader_iter)
    before = stream.stats()
    t0 = time.perf_counter()
    for _ in range(clips):
        next(loader_iter)
    rate = clips / (time.perf_counter() - t0)
    return rate, before, stream.stats()


def _diff(before: dict, after: dict) -> dict:
    out = {}
    for w, d in after.items():
        b = before.get(w, dict.fromkeys(d, 0.0))
        e = {k: d[k] - b[k] for k in d}
        e["clips_per_s"] = e["clips"] / e["wall"] if e["wall"] > 0 else 0.0
        out[w] = e
    return out


def bench(workers: int, clips: int, skip: int, overrides: list[str]) -> None:
    import torch
    from torch.utils.data import DataLoader

    from egosim.egom2p.stream import SimStream, format_stats

    stream = SimStream(overrides=overrides, seed=0, warm=True)
    loader = DataLoader(stream, batch_size=None, num_workers=workers)
    t0 = time.perf_counter()
    it = iter(loader)
    for _ in range(max(1, workers)):
        next(it)
    start = time.perf_counter() - t0
    rate, before, after = _window(stream, it, skip, clips)
    del it
    cfg = stream.cfg
    print(f"\n{workers} workers (torch threads {torch.get_num_threads()} in the main "
          f"process): {rate:.2f} clips/s over {clips} clips; start-up (prior, policy, "
          f"scene pool of {cfg.scene.pool_size}) {start:.1f} s")
    print(format_stats(_diff(before, after)))


def camera_stats(n: int, out: Path, overrides: list[str]) -> None:
    from torch.utils.data import DataLoader

    from egosim.egom2p.camera_9d import fit_stats, save_stats
    from egosim.egom2p.stream import SimStream

    stream = SimStream(overrides=["modalities=[camera]", *overrides], seed=12345)
    loader = DataLoader(stream, batch_size=None, num_workers=2)
    poses = []
    t0 = time.perf_counter()
    for clip in loader:
        poses.append(np.asarray(clip["camera"]))
        if len(poses) == n:
            break
    stats = fit_stats(np.stack(poses))
    save_stats(out, stats, source=f"benchmarks/bench_stream.py --camera-stats {n}: stream "
               f"seed 12345, 2 workers, egom2p_clips defaults {overrides or ''}".strip())
    print(f"{n} clips in {time.perf_counter() - t0:.1f} s; wrote {out}")
    print("mean", np.round(stats.mean, 4).tolist())
    print("std ", np.round(stats.std, 4).tolist())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--skip", type=int, default=40)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--camera-stats", type=int, default=0, metavar="N")
    p.add_argument("--stats-out", type=Path, default=ROOT / "egom2p" / "tokenizers" /
                   "checkpoints" / "camera_9d_stats.json")
    args, rest = p.parse_known_args()  # make bench passes other scripts' flags too
    overrides = [r for r in rest if "=" in r and not r.startswith("-")]
    if args.camera_stats:
        camera_stats(args.camera_stats, args.stats_out, overrides)
        return
    for w in args.workers:
        bench(w, args.clips, args.skip, overrides)


if __name__ == "__main__":
    main()
