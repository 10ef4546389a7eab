"""Does synthetic scene diversity help? The same training budget on clips of 1 procedural
apartment seed and on clips of many, evaluated side by side, on held-out apartments and on
the unseen pybullet scenes.

Plain script. Steps, each skipped when its output is already complete (so a rerun after an
interruption continues, and ``--reuse`` prints the table of finished runs):

1. clip caches of ``--clips`` training clips (``egosim.egom2p.tokenizers.clip_data``):
   ``many`` is the first ``--clips`` clips of the tokenizers' cache
   (``runs/egom2p/clip_cache``, scene seeds [0, 200), built with the clip config's defaults
   when missing); ``1seed`` is a cache of the same size from scene seed 0 only
   (``scene.seed_range=[0, 1]``);
2. one model per cache, the same config and budget (``egosim egom2p train``:
   ``--size`` tiny by default, ``--steps`` steps of 16 clips, ``task_fraction`` 0.5 as the
   shipped CPU config, 1 thread each, both run at once);
3. ``egosim egom2p eval`` of each (``--eval-clips`` held-out apartment clips of seeds
   [1000, 1200) and as many of pybullet samurai / stadium; default 12, the eval's), both at
   once;
4. a table: every model figure of both runs, apartments and unseen, and the ratio.

    python benchmarks/bench_diversity.py [--steps 600] [--size tiny] [--clips 600]
        [--eval-clips 12] [--root runs/egom2p] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROWS = [("camera", "egom2p", "ate"), ("camera", "egom2p", "ate_sim3"),
        ("camera", "egom2p", "rte"), ("camera", "egom2p_rgbd", "ate"),
        ("depth", "egom2p", "abs_rel"), ("depth", "egom2p", "delta1"),
        ("gaze", "egom2p", "l2"), ("rgb", "egom2p", "psnr"), ("rgb", "egom2p", "ssim")]
HIGHER_IS_BETTER = {"delta1", "psnr", "ssim"}


def build_caches(root: Path, clips: int) -> dict[str, Path]:
    """The two training caches (built where missing); returns name -> train folder."""
    from egosim.egom2p.tokenizer_config import ClipDataSection
    from egosim.egom2p.tokenizers.clip_data import build_cache

    many = ClipDataSection(cache_dir=str(root / "clip_cache"))
    one = ClipDataSection(cache_dir=str(root / "clip_cache_1seed"), train_clips=clips,
                          holdout_clips=1, clip_overrides={"scene.seed_range": [0, 1]})
    if len(list((Path(many.cache_dir) / "train").glob("*.npz"))) < clips:
        build_cache(many)
    build_cache(one)
    return {"many": Path(many.cache_dir) / "train", "1seed": Path(one.cache_dir) / "train"}


def run_all(commands: list[list[str]]) -> None:
    """Run the commands at once; raise if any fails."""
    procs = [subprocess.Popen(c) for c in commands]
    codes = [p.wait() for p in procs]
    if any(codes):
        failed = [" ".join(c[3:5]) for c, code in zip(commands, codes, strict=True) if code]
        raise SystemExit(f"runs failed: {failed}")


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--eval-clips", type=int, default=12,
                    help="held-out clips per group (apartments, unseen) of each eval")
    ap.add_argument("--root", default="runs/egom2p")
    ap.add_argument("--reuse", action="store_true", help="keep finished evaluations")
    args = ap.parse_args()
    root = Path(args.root)
    caches = build_caches(root, args.clips)
    exe = [sys.executable, "-m", "egosim", "egom2p"]
    ckpt = {n: root / f"div_{n}" / "checkpoints" / f"step_{args.steps:07d}.pt" for n in caches}
    run_all([exe + ["train", "data.source=cache", f"data.cache_dir={d}",
                    f"data.cache_clips={args.clips}", f"output_dir={root / f'div_{n}'}",
                    f"size={args.size}", f"steps={args.steps}", "threads=1",
                    f"checkpoint_every={args.steps}", "task_fraction=0.5", "progress=false",
                    "tensorboard=false"] for n, d in caches.items() if not ckpt[n].is_file()])
    out = {n: root / f"div_eval_{n}" for n in caches}
    run_all([exe + ["eval", f"model={ckpt[n]}", "specialist=null", "progress=false",
                    f"clips={args.eval_clips}", f"output_dir={out[n]}"]
             for n in caches if not (args.reuse and (out[n] / "results.json").is_file())])
    res = {n: json.loads((out[n] / "results.json").read_text()) for n in caches}
    res = {n: r["results"] for n, r in res.items()}
    print(f"\n{args.size} model, {args.steps} steps x 16 clips, {args.clips} training clips "
          f"each; eval of {args.eval_clips} held-out apartment clips and {args.eval_clips} "
          "unseen-scene clips\n")
    print("| figure | many seeds | 1 seed | many seeds unseen | 1 seed unseen | unseen: "
          "many better by |")
    print("|---|---:|---:|---:|---:|---:|")
    for task, method, key in ROWS:
        a, b = res["many"][task][method], res["1seed"][task][method]
        ua, ub = a[f"{key}@unseen"], b[f"{key}@unseen"]
        gain = (ua / ub if key in HIGHER_IS_BETTER else ub / ua) if ua and ub else float("nan")
        print(f"| {task} {method} {key} | {a[key]:.3f} | {b[key]:.3f} | {ua:.3f} | {ub:.3f} | "
              f"{gain:.2f}x |")


if __name__ == "__main__":
    main()
