"""Camera codes of 30 tokens x 256 levels side by side: which linear code reaches 1 cm?

Fits linear PCA codes of ``camera_9d`` to the training clips of the clip cache and measures
their round trip on its held-out clips (rotation-only ATE, RTE, RRE of
:mod:`egosim.egom2p.metrics`), beside the shipped camera tokenizer and the interpolation
baseline of its model card. Rows: the vector the PCA is fitted to (the z-scored 9-D values,
or physical units with the translation in metres times a scale) and how each of the 30
coefficients is quantised to 256 levels (uniform over its 0.5-99.5 % range, or Lloyd-Max
levels, :func:`egosim.egom2p.tokenizers.pca_code.lloyd_levels`). Numpy only, about a
minute on one core.

    python benchmarks/bench_camera_codes.py [--cache runs/egom2p/clip_cache] [--train 3000]

The cache is the one ``egosim egom2p train-tokenizer`` builds (3,000 training and 128
held-out clips by default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from egosim.egom2p.camera_9d import camera_9d, decode_9d, load_stats
from egosim.egom2p.metrics import camera_metrics
from egosim.egom2p.tokenizers import load
from egosim.egom2p.tokenizers.evaluate import baseline
from egosim.egom2p.tokenizers.pca_code import lloyd_levels

TOKENS, LEVELS = 30, 256


def poses(root: Path, split: str, count: int) -> np.ndarray:
    """``(N, 60, 4, 4)`` camera poses of the first ``count`` clips of a cache split."""
    files = sorted((root / split).glob("*.npz"))[:count]
    if not files:
        raise SystemExit(f"no clips in {root / split}: run egosim egom2p train-tokenizer "
                         "modality=camera first (it builds the cache)")
    return np.stack([np.load(f)["camera"] for f in files])


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
    train, held = poses(root, "train", args.train), poses(root, "holdout", args.held)
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


if __name__ == "__main__":
    main()
