"""Ground-truth consistency of the clip builder's clips: warped depth against the next frame.

For each clip, :func:`egosim.egom2p.consistency.warped_depth_error` gives the median
relative difference between frame k's depth moved by the clip's own poses into frame k + 1
and frame k + 1's depth (static pixels: people left out through the ``instance`` view),
beside the same with the pose one frame late (the control: it should be far larger).
Target: at most 1 %.

    python benchmarks/bench_clip_consistency.py [--clips 8] [--size 64] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm


def main() -> None:
    """Build the clips, print one row a clip and the medians (module docstring)."""
    from egosim.egom2p.clips import ClipBuilder
    from egosim.egom2p.consistency import warped_depth_error

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--size", type=int, default=64, help="video_size (pixels)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    builder = ClipBuilder(overrides={"video_size": args.size}, seed=args.seed,
                          extra_views=("instance",))
    clips = [builder.next_clip() for _ in tqdm(range(args.clips), desc="clips")]
    builder.close()
    right = [warped_depth_error(c) for c in clips]
    late = [warped_depth_error(c, pose_lag=1) for c in clips]
    print(f"\nWarped depth vs the next frame: {args.clips} clips at {args.size} px, seed "
          f"{args.seed} ({time.perf_counter() - t0:.0f} s)\n")
    print("| clip | scene | median rel. difference | pose one frame late | ratio |")
    print("|---|---|---:|---:|---:|")
    for i, (c, a, b) in enumerate(zip(clips, right, late, strict=True)):
        scene = f"{c['meta']['scene_spec']} {c['meta']['scene_seed']}"
        print(f"| {i} | {scene} | {100 * a:.3f} % | {100 * b:.2f} % | {b / a:.0f}x |")
    print(f"| median | | {100 * np.median(right):.3f} % | {100 * np.median(late):.2f} % | "
          f"{np.median(late) / np.median(right):.0f}x |")
    print(f"\nworst clip {100 * max(right):.3f} % (target <= 1 %: "
          f"{'met' if max(right) <= 0.01 else 'missed'})")


if __name__ == "__main__":
    main()
