"""How much of the camera's motion can be read from the RGB video tokens?

A diagnostic for the EgoM2P model's camera task: supervised probes that map the shipped
RGB tokenizer's codes of a clip straight to its camera trajectory, beside the mean training
trajectory and the shipped model, on the same held-out clips. If a probe trained on the
model's own training clips does no better than the mean trajectory, the tokens carry little
of the motion; if it does much better, the model is what falls short.

Plain script. Data: the tokenizers' clip cache (``runs/egom2p/clip_cache``, built by
``egosim egom2p train-tokenizer``): ``--train`` training clips and ``--holdout`` held-out clips
(other streams, procedural scene seeds [1000, 1200)). Each clip's RGB ids are turned into
their FSQ code vectors, a ``(levels, 5, H/8, W/8)`` grid; targets are the clip's
``camera_9d`` (60 x 9, z-scored with the camera tokenizer's statistics), decoded back to
poses by Gram-Schmidt for the metrics. Rows:

- ``mean trajectory``: the mean training ``camera_9d`` for every clip;
- ``oracle``: the camera tokenizer's PCA code with its 2 leading coefficients taken from
  the true trajectory and the others at 0, the code's mean (how much those two decide);
- ``ridge (lambda)``: least squares on the flattened codes, per ridge strength;
- ``ridge on pooled codes``: least squares (lambda 1 and 100) on position-free features,
  each FSQ digit's mean over all token positions and the means of the products of two
  digits;
- ``conv probe``: a small 3-D conv net (two 3x3x3 convolutions of 96 channels, one strided
  of 128, two linear layers), AdamW with a one-cycle schedule, MSE on ``camera_9d``,
  ``--steps`` steps of 64 clips;
- ``egom2p``: the shipped EgoM2P model's ``predict(model, clip, "camera")``, or each of
  ``--model PATH ...`` (any checkpoint that predicts the camera from RGB: the generalist,
  a camera specialist); ``--no-probes`` scores only these and the mean trajectory.

Metrics (``egosim.egom2p.metrics.camera_metrics``): ATE after the best rotation, Sim(3) ATE,
RTE, RRE, means over the held-out clips.

    python benchmarks/bench_camera_probe.py [--train 3000] [--holdout 128] [--steps 2000]
        [--model PATH ...] [--no-probes] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm


def load_clips(folder: Path, n: int, with_rgb: bool = True
               ) -> tuple[np.ndarray | None, np.ndarray, list[Path]]:
    """The first ``n`` clips of a clip-cache folder: rgb ``(n, 16, H, W, 3)`` uint8 (None
    without ``with_rgb``), camera ``(n, 60, 4, 4)``, and their files."""
    files = sorted(folder.glob("*.npz"))[:n]
    if len(files) < n:
        raise SystemExit(f"{folder} holds {len(files)} clips, {n} wanted: build the clip cache "
                         "with egosim egom2p train-tokenizer")
    rgb, cam = [], []
    for f in tqdm(files, desc=f"read {folder.name}", leave=False):
        with np.load(f) as z:
            if with_rgb:
                rgb.append(z["rgb"])
            cam.append(z["camera"])
    return (np.stack(rgb) if with_rgb else None), np.stack(cam), files


def token_codes(rgb: np.ndarray, batch: int = 32) -> torch.Tensor:
    """FSQ code vectors of the shipped RGB tokenizer: ``(n, levels, 5, H/8, W/8)`` float."""
    from egosim.egom2p import tokenizers

    tok = tokenizers.load("rgb")
    h, w = rgb.shape[2] // 8, rgb.shape[3] // 8
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, len(rgb), batch), desc="tokenize", leave=False):
            ids = tok.encode({"rgb": rgb[i:i + batch]})
            codes = tok.net.fsq.indices_to_codes(ids)
            out.append(codes.reshape(len(ids), -1, h, w, codes.shape[-1]).permute(0, 4, 1, 2, 3))
    return torch.cat(out).contiguous()


def pooled_moments(x: torch.Tensor) -> torch.Tensor:
    """Position-free features of codes ``(n, levels, frames, h, w)``: each digit's mean over
    all positions and the mean of every product of two digits, ``(n, L + L^2)`` float64
    (what an average over the tokens, with no position in it, can give a linear map)."""
    f = x.permute(0, 2, 3, 4, 1).reshape(len(x), -1, x.shape[1]).double()
    second = torch.einsum("npi,npj->nij", f, f).reshape(len(x), -1) / f.shape[1]
    return torch.cat([f.mean(1), second], 1)


def conv_probe(levels: int, frames: int, h: int, w: int) -> nn.Module:
    """The probe network: codes ``(B, levels, frames, h, w)`` -> ``(B, 540)`` camera_9d."""
    flat = 128 * (frames - 1) * ((h + 1) // 2) * ((w + 1) // 2)
    return nn.Sequential(
        nn.Conv3d(levels, 96, 3, padding=1), nn.GELU(),
        nn.Conv3d(96, 96, 3, padding=1), nn.GELU(),
        nn.Conv3d(96, 128, (2, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), nn.GELU(),
        nn.Flatten(), nn.Linear(flat, 256), nn.GELU(), nn.Linear(256, 60 * 9))


def probe_rows(x_tr: torch.Tensor, x_ho: torch.Tensor, y_tr: torch.Tensor,
               y_mean: torch.Tensor, score: Callable[[torch.Tensor], dict[str, float]],
               steps: int) -> list[tuple[str, dict[str, float], str]]:
    """The ridge and conv-probe rows: codes ``(n, levels, 5, h, w)`` of the training and
    held-out clips, training targets ``y_tr`` ``(n, 540)`` and their mean; ``score`` maps
    held-out predictions ``(m, 540)`` to camera metrics. Returns (name, metrics, time) rows."""
    rows: list[tuple[str, dict[str, float], str]] = []
    a, b = x_tr.reshape(len(x_tr), -1), x_ho.reshape(len(x_ho), -1)
    for lam in (100.0, 1000.0):
        t0 = time.perf_counter()
        weights = torch.linalg.solve(a.T @ a + lam * torch.eye(a.shape[1]), a.T @ (y_tr - y_mean))
        rows.append((f"ridge ({lam:g})", score(b @ weights + y_mean),
                     f"{time.perf_counter() - t0:.0f} s"))
    a, b = pooled_moments(x_tr), pooled_moments(x_ho)
    mu = a.mean(0)
    a, b = a - mu, b - mu
    for lam in (1.0, 100.0):   # the pooled features vary little between clips
        t0 = time.perf_counter()
        weights = torch.linalg.solve(a.T @ a + lam * torch.eye(a.shape[1], dtype=a.dtype),
                                     a.T @ (y_tr - y_mean).double())
        rows.append((f"ridge ({lam:g}) on pooled codes and second moments",
                     score((b @ weights).float() + y_mean),
                     f"{time.perf_counter() - t0:.0f} s"))

    net = conv_probe(*x_tr.shape[1:])
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in tqdm(range(steps), desc="conv probe", leave=False):
        idx = torch.randint(0, len(x_tr), (64,), generator=gen)
        loss = ((net(x_tr[idx]) - (y_tr[idx] - y_mean)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        pred = net(x_ho) + y_mean
    rows.append((f"conv probe ({steps} steps)", score(pred),
                 f"{time.perf_counter() - t0:.0f} s"))
    return rows


def leading_coefficients_row(cam: np.ndarray, stats: Any, k: int
                             ) -> tuple[str, dict[str, float], str]:
    """An oracle row: the camera tokenizer's PCA code with its ``k`` leading coefficients
    true and the rest at 0, the mean of the code's training clips, decoded (how much of the
    ATE those ``k`` decide)."""
    from egosim.egom2p import tokenizers
    from egosim.egom2p.camera_9d import camera_9d, decode_9d
    from egosim.egom2p.metrics import camera_metrics

    net = tokenizers.load("camera").net
    coef = net.encode_latent(torch.from_numpy(camera_9d(cam, stats)).float())
    kept = torch.zeros_like(coef)
    kept[:, :k] = coef[:, :k]
    poses = decode_9d(net.decode_latent(kept).double().numpy(), stats)
    return (f"oracle: true {k} leading PCA coefficients, the rest 0",
            camera_metrics(cam, poses), "0 s")


def main() -> None:
    """Run the probes and print the table (module docstring)."""
    from egosim.egom2p.camera_9d import camera_9d, decode_9d, load_stats
    from egosim.egom2p.metrics import camera_metrics

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default="runs/egom2p/clip_cache")
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--holdout", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--model", nargs="+", default=[None],
                    help="EgoM2P checkpoints to score (default: the shipped one)")
    ap.add_argument("--no-probes", action="store_true", help="score only the model(s)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cache = Path(args.cache)

    with_codes = not args.no_probes
    rgb_tr, cam_tr, _ = load_clips(cache / "train", args.train, with_rgb=with_codes)
    rgb_ho, cam_ho, files_ho = load_clips(cache / "holdout", args.holdout, with_rgb=with_codes)
    stats = load_stats()
    y_tr = torch.from_numpy(camera_9d(cam_tr, stats)).float().reshape(len(cam_tr), -1)
    y_mean = y_tr.mean(0)
    rows: list[tuple[str, dict[str, float], str]] = []

    def score(pred: torch.Tensor) -> dict[str, float]:
        poses = decode_9d(pred.reshape(-1, 60, 9).double().numpy(), stats)
        return camera_metrics(cam_ho, poses)

    rows.append(("mean trajectory", score(y_mean.expand(len(cam_ho), -1)), "0 s"))
    rows.append(leading_coefficients_row(cam_ho, stats, 2))
    if with_codes:
        rows += probe_rows(token_codes(rgb_tr), token_codes(rgb_ho), y_tr, y_mean, score,
                           args.steps)
    del rgb_tr
    from egosim.egom2p.model.inference import load_model, predict_batch

    clips = []
    for f in files_ho:
        with np.load(f) as z:
            clips.append({k: z[k] for k in z.files})
    for path in args.model:
        model = load_model(path)
        t0 = time.perf_counter()
        poses = np.stack(predict_batch(model, clips, "camera"))
        rows.append((f"egom2p ({path or 'shipped small'})", camera_metrics(cam_ho, poses),
                     f"{time.perf_counter() - t0:.0f} s"))

    base = rows[0][1]["ate_m"]
    print(f"\nCamera from RGB tokens: {len(cam_tr)} training clips, {len(cam_ho)} held-out "
          f"clips of {cache}, {args.threads} thread(s)\n")
    print("| method | ATE (m) | Sim(3) ATE (m) | RTE (m) | RRE (deg) | mean trajectory / ATE "
          "| time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, m, took in rows:
        print(f"| {name} | {m['ate_m']:.3f} | {m['ate_sim3_m']:.3f} | {m['rte_m']:.4f} | "
              f"{m['rre_deg']:.2f} | {base / m['ate_m']:.2f}x | {took} |")


if __name__ == "__main__":
    main()
