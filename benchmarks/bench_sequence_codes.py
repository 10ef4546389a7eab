"""Sequence codes of 30 tokens x 256 levels side by side: which code reaches the targets?

Camera: fits linear PCA codes of ``camera_9d`` to the training clips of the clip cache and
measures their round trip on its held-out clips (rotation-only ATE, RTE, RRE of
:mod:`egosim.egom2p.metrics`), beside the shipped camera tokenizer and the interpolation
baseline of its model card. Rows: the vector the PCA is fitted to (the z-scored 9-D values,
or physical units with the translation in metres times a scale) and how each of the 30
coefficients is quantised to 256 levels (uniform over its 0.5-99.5 % range, or Lloyd-Max
levels, :func:`egosim.egom2p.tokenizers.pca_code.lloyd_levels`).

Gaze: how fast the gaze moves, and what that leaves a 30-token code: the median step
between 30 fps samples, keeping every k-th valid sample and interpolating (k = 2, 3, 4;
a 30-token code of 2-sample tokens has the budget of k = 2 at 8 bits for 4 numbers), a PCA
code with 30 unquantised coefficients, the closed-loop predictive code
(:mod:`egosim.egom2p.tokenizers.dpcm_code`) fitted to the training clips with greedy or
lookahead encoding and with or without refitting its offset codebook to the closed loop, and
the shipped gaze tokenizer (L2 in [-1, 1] units over valid samples). Numpy, scipy and the
shipped tokenizers, about two minutes on one core.

    python benchmarks/bench_sequence_codes.py [--cache runs/egom2p/clip_cache] [--train 3000]

The cache is the one ``egosim egom2p train-tokenizer`` builds (3,000 training and 128
held-out clips by default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from egosim.egom2p.camera_9d import camera_9d, decode_9d, load_stats
from egosim.egom2p.metrics import camera_metrics, gaze_metrics
from egosim.egom2p.tokenizers import build, load
from egosim.egom2p.tokenizers.evaluate import baseline, interpolate_every
from egosim.egom2p.tokenizers.pca_code import lloyd_levels

TOKENS, LEVELS = 30, 256


def entries(root: Path, split: str, count: int, key: str) -> np.ndarray:
    """Entry ``key`` of the first ``count`` clips of a cache split, stacked."""
    files = sorted((root / split).glob("*.npz"))[:count]
    if not files:
        raise SystemExit(f"no clips in {root / split}: run egosim egom2p train-tokenizer "
                         "modality=camera first (it builds the cache)")
    return np.stack([np.load(f)[key] for f in files])


def quantise(train: np.ndarray, held: np.ndarray, kind: str) -> np.ndarray:
    """Held-out coefficients ``(M, K)`` through 256 levels per coefficient fitted on
    ``train`` ``(N, K)``: ``uniform`` over the 0.5-99.5 % range or ``lloyd``."""
    out = np.empty_like(held)
    for j in range(train.shape[1]):
        if kind == "uniform":
            lo, hi = np.percentile(train[:, j], [0.5, 99.5])
            step = (hi - lo) / (LEVELS - 1)
            out[:, j] = lo + np.clip(np.round((held[:, j] - lo) / step), 0, LEVELS - 1) * step
        else:
            lv = lloyd_levels(train[:, j], LEVELS)
            out[:, j] = lv[np.searchsorted((lv[1:] + lv[:-1]) / 2, held[:, j])]
    return out


def linear_code(train: np.ndarray, held: np.ndarray, scale: float | None, kind: str
                ) -> np.ndarray:
    """Held-out poses through a PCA code: ``scale`` None fits the z-scored 9-D values, else
    physical units with the translation in metres x ``scale``."""
    stats = load_stats()
    unit = np.ones(9) if scale is None else stats.std * np.r_[np.ones(6), np.full(3, scale)]
    vt, vh = (camera_9d(p, stats).astype(np.float64) * unit for p in (train, held))
    vt, vh = vt.reshape(len(vt), -1), vh.reshape(len(vh), -1)
    mean = vt.mean(0)
    basis = np.linalg.svd(vt - mean, full_matrices=False)[2][:TOKENS]
    q = quantise((vt - mean) @ basis.T, (vh - mean) @ basis.T, kind)
    back = ((q @ basis + mean).reshape(len(vh), 60, 9) / unit).astype(np.float32)
    return decode_9d(back, stats)


def main() -> None:
    """Run the script (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="runs/egom2p/clip_cache")
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--held", type=int, default=128)
    args = ap.parse_args()
    root = Path(args.cache)
    train = entries(root, "train", args.train, "camera")
    held = entries(root, "holdout", args.held, "camera")
    print(f"{len(train)} training / {len(held)} held-out clips of {root}; "
          f"{TOKENS} tokens x {LEVELS} levels\n")
    print("| code | ATE (m) | RTE (m) | RRE (deg) |")
    print("| --- | ---: | ---: | ---: |")

    def row(name: str, pred: np.ndarray) -> None:
        m = camera_metrics(held, pred)
        print(f"| {name} | {m['ate_m']:.4f} | {m['rte_m']:.4f} | {m['rre_deg']:.2f} |",
              flush=True)

    for scale, kind in [(None, "uniform"), (4.0, "uniform"), (4.0, "lloyd"), (8.0, "lloyd")]:
        vec = "z-scored 9-D" if scale is None else f"translation m x {scale:g}"
        row(f"PCA of {vec}, {kind} levels", linear_code(train, held, scale, kind))
    tok = load("camera")
    with torch.no_grad():
        shipped = tok.decode(tok.encode({"camera": held}))["camera"].numpy()
    row(f"shipped camera tokenizer ({tok.cfg.quantizer})", shipped)
    row("baseline: every 4th pose interpolated", baseline("camera", {"camera": held})["camera"])
    gaze_table(root, args.train, args.held)


def gaze_table(root: Path, train_count: int, held_count: int) -> None:
    """Print the gaze part (module docstring)."""
    g, v = (entries(root, "holdout", held_count, k) for k in ("gaze", "gaze_valid"))
    both = v[:, 1:] & v[:, :-1]
    step = float(np.median(np.linalg.norm(np.diff(g, axis=1), axis=2)[both]))
    print(f"\nGaze: {len(g)} held-out clips; median step between 30 fps samples {step:.4f}\n")
    print("| code | gaze L2 |")
    print("| --- | ---: |")

    def row(name: str, pred: np.ndarray) -> None:
        print(f"| {name} | {gaze_metrics(g, pred, v)['gaze_l2']:.4f} |", flush=True)

    for k in (2, 3, 4):
        row(f"every {k} valid samples kept, interpolated", interpolate_every(g, k, valid=v))
    tg = entries(root, "train", train_count, "gaze").reshape(train_count, -1)
    mean = tg.mean(0)
    basis = np.linalg.svd(tg - mean, full_matrices=False)[2][:TOKENS]
    flat = g.reshape(len(g), -1)
    row(f"PCA, {TOKENS} unquantised coefficients",
        (((flat - mean) @ basis.T) @ basis + mean).reshape(g.shape))
    fit = {"gaze": entries(root, "train", train_count, "gaze"),
           "gaze_valid": entries(root, "train", train_count, "gaze_valid")}
    held = {"gaze": g, "gaze_valid": v}
    for lookahead, rounds in ((1, 0), (1, 3), (4, 3), (16, 3)):
        code = build("gaze", {"quantizer": "dpcm", "dpcm_lookahead": lookahead,
                              "dpcm_fit_rounds": rounds})
        code.fit(fit)
        row(f"closed-loop dpcm, lookahead {lookahead}, {rounds} refits",
            code.decode(code.encode(held))["gaze"].numpy())
    tok = load("gaze")
    with torch.no_grad():
        row(f"shipped gaze tokenizer ({tok.cfg.quantizer})",
            tok.decode(tok.encode(held))["gaze"].numpy())


if __name__ == "__main__":
    main()
