"""Does a trained EgoM2P model read its inputs, and how do decoding schedules compare?

Plain script, two parts, printed as tables:

1. **Input dependence.** For each decoding task, the teacher-forced cross-entropy (nats) of
   the target given every token of the clip's own input modalities, beside the same with
   each clip's inputs replaced by another clip's (the batch rolled by one). A model that
   ignores its inputs has a gap of 0. Clips: ``--clips`` token rows of a training token
   cache (``runs/egom2p/model/token_cache/*.npz``, written by ``egosim egom2p train
   data.source=cache``).
2. **Schedules and estimates** (``--schedule-clips N > 0``): each task's figure (camera
   ATE m, depth AbsRel, gaze L2, rgb PSNR dB) on the first N held-out clips of the clip
   cache (``runs/egom2p/clip_cache/holdout``), decoded with EgoM2P's default schedule
   (guidance 2) and read as the posterior mean of the conditional or of the guided
   distributions (``predict``'s default is one of the two per task, the last column) or
   as the decoded ids, then the same steps at guidance 1, and one step (every position at
   once) at guidance 2 and 1.

    python benchmarks/bench_model_inputs.py [--model PATH] [--clips 64]
        [--token-cache runs/egom2p/model/token_cache] [--schedule-clips 12] [--threads 1]
        [--no-input-dependence]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

TASKS = [(("rgb",), "camera"), (("depth",), "camera"), (("rgb", "depth"), "camera"),
         (("rgb",), "depth"), (("rgb",), "gaze"), (("depth",), "rgb")]


def target_nll(model: torch.nn.Module, tokens: dict[str, torch.Tensor], inputs: tuple[str, ...],
               target: str, shuffle: bool) -> float:
    """Mean cross-entropy (nats) of all of ``target``'s tokens given all of ``inputs``'."""
    b = tokens[target].shape[0]
    order = torch.roll(torch.arange(b), 1) if shuffle else torch.arange(b)
    md = {}
    for m in inputs:
        t = tokens[m][order]
        md[m] = {"tensor": t, "input_mask": torch.zeros_like(t, dtype=torch.bool),
                 "target_mask": torch.ones_like(t, dtype=torch.bool)}
    t = tokens[target]
    md[target] = {"tensor": t, "input_mask": torch.ones_like(t, dtype=torch.bool),
                  "target_mask": torch.zeros_like(t, dtype=torch.bool)}
    with torch.no_grad():
        return float(model.loss(md)[1][target])


def input_dependence(model: torch.nn.Module, cache: Path, n: int) -> None:
    """Print part 1 (module docstring)."""
    files = sorted(cache.glob("*.npz"))
    if not files:
        raise SystemExit(f"no token cache in {cache}: run egosim egom2p train data.source=cache")
    with np.load(files[0]) as z:
        rows = np.random.default_rng(0).choice(len(z["tokens_camera"]), n, replace=False)
        tokens = {m: torch.from_numpy(z[f"tokens_{m}"][rows]) for m in model.num_tokens}
    print(f"\nInput dependence: teacher-forced loss (nats), {n} clips of {files[0]}\n")
    print("| inputs -> target | own input | another clip's input | gap |")
    print("|---|---:|---:|---:|")
    for inputs, target in TASKS:
        if not all(m in model.num_tokens for m in (*inputs, target)):
            continue
        own = target_nll(model, tokens, inputs, target, False)
        other = target_nll(model, tokens, inputs, target, True)
        print(f"| {' + '.join(inputs)} -> {target} | {own:.3f} | {other:.3f} | "
              f"{other - own:.3f} |")


def _score(task: str, clips: list[dict], preds: list[np.ndarray]) -> float:
    """The task's headline figure, mean over clips (camera ATE m, depth AbsRel, gaze L2,
    rgb PSNR dB)."""
    from egosim.egom2p import metrics

    pairs = list(zip(clips, preds, strict=True))
    if task.startswith("camera"):
        return float(np.mean([metrics.camera_metrics(c["camera"], p)["ate_m"]
                              for c, p in pairs]))
    if task == "depth":
        return float(np.mean([metrics.depth_metrics(c["depth"], p)["abs_rel"]
                              for c, p in pairs]))
    if task == "gaze":
        return float(np.mean([metrics.gaze_metrics(c["gaze"], p, c["gaze_valid"])["gaze_l2"]
                              for c, p in pairs]))
    return float(np.mean([metrics.video_metrics(c["rgb"], p)["psnr_db"] for c, p in pairs]))


FIGURE = {"camera": "ATE m", "camera_rgbd": "ATE m", "depth": "AbsRel", "gaze": "L2",
          "rgb": "PSNR dB"}


def schedules(model: torch.nn.Module, holdout: Path, n: int) -> None:
    """Print part 2 (module docstring)."""
    from egosim.egom2p.model.decoding import default_schedule
    from egosim.egom2p.model.inference import DEFAULT_ESTIMATES, TASKS, predict_batch

    clips = []
    for f in sorted(holdout.glob("*.npz"))[:n]:
        with np.load(f) as z:
            clips.append({k: z[k] for k in z.files if k != "meta_json"})
    print(f"\nSchedules and estimates: {len(clips)} held-out clips of {holdout}\n")
    print("| task (figure) | default steps, guidance 2: conditional mean | guided mean | "
          "decoded ids | guidance 1, mean | one step, guidance 2, conditional mean | one "
          "step, guidance 1, mean | predict's default |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for task in ("camera", "camera_rgbd", "depth", "gaze", "rgb"):
        target = TASKS[task][1]
        if not all(m in model.num_tokens for m in (*TASKS[task][0], target)):
            continue
        variants = [(None, "mean"), (None, "guided_mean"), (None, "sample"),
                    ([s.to_dict() for s in default_schedule(task, model.num_tokens,
                                                            cfg_scale=1.0)], "mean"),
                    ([{"target": target, "tokens": model.num_tokens[target],
                       "temperature": 0.01, "cfg_scale": 2.0}], "mean"),
                    ([{"target": target, "tokens": model.num_tokens[target],
                       "temperature": 0.01, "cfg_scale": 1.0}], "mean")]
        cells = []
        for sched, estimate in variants:
            preds = predict_batch(model, clips, task, sched, 0, batch_size=8,
                                  estimate=estimate)
            cells.append(f"{_score(task, clips, preds):.3f}")
        print(f"| {task} ({FIGURE[task]}) | " + " | ".join(cells)
              + f" | {DEFAULT_ESTIMATES[task]} |", flush=True)


def main() -> None:
    """Run the script (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint (default: the shipped small)")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--token-cache", default="runs/egom2p/model/token_cache")
    ap.add_argument("--holdout", default="runs/egom2p/clip_cache/holdout")
    ap.add_argument("--schedule-clips", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-input-dependence", action="store_true", help="skip part 1")
    args = ap.parse_args()
    from egosim.egom2p.model import load_model

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    if not args.no_input_dependence:
        input_dependence(model, Path(args.token_cache), args.clips)
    if args.schedule_clips > 0:
        schedules(model, Path(args.holdout), args.schedule_clips)


if __name__ == "__main__":
    main()
