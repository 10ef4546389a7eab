"""Measure a tokenizer's round trip on held-out clips, beside a trivial baseline.

=========  ===============================================  =====================================
name       figure (:mod:`egosim.egom2p.metrics`)             baseline
=========  ===============================================  =====================================
rgb        PSNR (dB, per clip, averaged); SSIM              the clip's mean frame, every frame
depth      AbsRel of the metric decode on valid pixels      the clip's per-pixel mean over its
           (no alignment); delta1; AbsRel after per-clip    valid frames (AbsRel, no alignment)
           scale and shift
camera     ATE (m; rotation-only alignment), RTE, RRE       every 4th pose (and the last) kept,
                                                            translations linearly interpolated,
                                                            rotations slerped
gaze       L2 on valid samples ([-1, 1] units);             every 4th valid sample (and the last)
           validity accuracy                                kept, linearly interpolated
=========  ===============================================  =====================================

:data:`TARGETS` holds the targets; :func:`evaluate` returns the figures, the baselines and
whether each target is reached; :func:`write_model_card` turns them into the model card.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.atomic_io import write_text
from egosim.egom2p import metrics as M
from egosim.egom2p.tokenizer_config import TrainTokenizerConfig

from .base import Tokenizer
from .clip_data import ClipSet

__all__ = ["TARGETS", "baseline", "evaluate", "interpolate_every", "section_overrides",
           "write_model_card"]

TARGETS: dict[str, list[tuple[str, str, float, str]]] = {
    "rgb": [("psnr_db", ">=", 25.0, "PSNR (dB)"),
            ("psnr_gain_db", ">=", 6.0, "PSNR above the mean frame (dB)")],
    "depth": [("abs_rel", "<=", 0.05, "AbsRel, metric decode (valid pixels)")],
    "camera": [("ate_m", "<=", 0.01, "ATE, rotation-only alignment (m)")],
    "gaze": [("gaze_l2", "<=", 0.02, "gaze L2 on valid samples ([-1, 1] units)")],
}
"""Tokenizer -> ``(key, "<=" | ">=", value, label)`` targets on held-out clips."""

_KEEP_EVERY = 4


def interpolate_every(values: np.ndarray, keep: int = _KEEP_EVERY,
                      valid: np.ndarray | None = None) -> np.ndarray:
    """Keep every ``keep``-th sample (and the last) of each sequence, linearly
    interpolate the others.

    Args:
        values: ``(B, T, D)`` samples.
        keep: keep samples ``0, keep, 2 keep, ...`` and ``T - 1``.
        valid: ``(B, T)`` bool; only valid kept samples are used (a sequence without one
            is all zeros).

    Returns:
        ``(B, T, D)`` float64 (values outside the kept range hold the nearest kept one).
    """
    b, t, d = values.shape
    kept = np.zeros(t, bool)
    kept[::keep] = True
    kept[-1] = True
    out = np.zeros((b, t, d))
    grid = np.arange(t)
    for i in range(b):
        use = kept & (valid[i] if valid is not None else True)
        if not use.any():
            continue
        for k in range(d):
            out[i, :, k] = np.interp(grid, grid[use], values[i, use, k])
    return out


def _interpolate_poses(poses: np.ndarray) -> np.ndarray:
    """Every 4th pose (and the last) kept: translations interpolated, rotations slerped."""
    from scipy.spatial.transform import Rotation, Slerp

    b, t = poses.shape[:2]
    out = np.tile(np.eye(4), (b, t, 1, 1))
    out[..., :3, 3] = interpolate_every(poses[..., :3, 3])
    kept = np.zeros(t, bool)
    kept[::_KEEP_EVERY] = True
    kept[-1] = True
    times = np.flatnonzero(kept)
    for i in range(b):
        slerp = Slerp(times, Rotation.from_matrix(poses[i, kept, :3, :3]))
        out[i, :, :3, :3] = slerp(np.arange(t)).as_matrix()
    return out


def baseline(name: str, clips: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The trivial baseline's version of a batch of clips (see the module docstring)."""
    if name == "rgb":
        mean = clips["rgb"].astype(np.float64).mean(axis=1, keepdims=True)
        return {"rgb": np.broadcast_to(np.round(mean), clips["rgb"].shape).astype(np.uint8)}
    if name == "depth":
        d = clips["depth"].astype(np.float64)
        valid = np.isfinite(d) & (d > 0)
        count = valid.sum(axis=1, keepdims=True)
        mean = np.where(valid, d, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        return {"depth": np.broadcast_to(mean, d.shape).astype(np.float32)}
    if name == "camera":
        return {"camera": _interpolate_poses(clips["camera"])}
    gaze = interpolate_every(clips["gaze"], valid=clips["gaze_valid"])
    return {"gaze": gaze.astype(np.float32), "gaze_valid": clips["gaze_valid"]}


def _figures(name: str, gt: dict[str, np.ndarray], pred: dict[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Per-clip figures ``{key: (B,)}`` of a prediction of a batch."""
    if name == "rgb":
        return {"psnr_db": M.video_psnr(gt["rgb"], pred["rgb"]),
                "ssim": M.video_ssim(gt["rgb"], pred["rgb"])}
    if name == "depth":
        rel, d1 = M.depth_errors(gt["depth"], pred["depth"], align=False)
        rel_aligned, _ = M.depth_errors(gt["depth"], pred["depth"], align=True)
        valid = np.asarray(gt["depth"]) > 0
        frac = valid.reshape(valid.shape[0], -1).mean(axis=1)
        dense = np.where(frac >= 0.5, rel, np.nan)  # clips with a hit on most pixels
        return {"abs_rel": rel, "delta1": d1, "abs_rel_aligned": rel_aligned,
                "abs_rel_dense_clips": dense, "sparse_clips": (frac < 0.5).astype(float)}
    if name == "camera":
        rte, rre = M.relative_pose_errors(gt["camera"], pred["camera"])
        return {"ate_m": M.ate(gt["camera"], pred["camera"]), "rte_m": rte, "rre_deg": rre}
    out = {"gaze_l2": M.gaze_l2(gt["gaze"], pred["gaze"], gt["gaze_valid"])}
    if "gaze_valid" in pred:
        out["valid_accuracy"] = np.mean(pred["gaze_valid"] == gt["gaze_valid"], axis=-1)
    return out


def _pooled(psnr: np.ndarray) -> float:
    """PSNR (dB) of the mean MSE of clips of per-clip PSNR ``psnr`` (equal sizes)."""
    mse = np.mean(255.0 ** 2 / 10.0 ** (np.asarray(psnr) / 10.0))
    return float(10.0 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf")


def _numpy(batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in batch.items()}


def evaluate(tokenizer: Tokenizer, clips: ClipSet, batch_size: int = 16) -> dict[str, Any]:
    """Figures of ``tokenizer``'s round trip on ``clips`` beside the baseline.

    Returns:
        ``{"clips": M, "tokenizer": {figure: mean}, "baseline": {figure: mean},
        "targets": [{"key", "op", "value", "label", "measured", "reached"}]}``; figures are
        per-clip values averaged over the clips where they are defined. RGB adds the median
        and the pooled PSNR (of the mean MSE over clips), ``static_clips`` (clips of
        identical frames, where the mean frame is exact and its PSNR infinite: left out of
        the baseline's mean) and ``psnr_gain_db`` (``_median_db``): the per-clip PSNR of
        the tokenizer minus the baseline's, averaged (median) over the other clips.
    """
    name = tokenizer.name
    per_tok: dict[str, list[np.ndarray]] = {}
    per_base: dict[str, list[np.ndarray]] = {}
    for batch in clips.batches(batch_size):
        pred = _numpy(tokenizer.round_trip(batch))
        for store, p in ((per_tok, pred), (per_base, baseline(name, batch))):
            for k, v in _figures(name, batch, p).items():
                store.setdefault(k, []).append(np.atleast_1d(v))

    def mean(store: dict[str, list[np.ndarray]]) -> dict[str, float]:
        out = {}
        for k, parts in store.items():
            v = np.concatenate(parts)
            v = v[np.isfinite(v)]
            out[k] = float(v.mean()) if v.size else float("nan")
        return out

    tok, base = mean(per_tok), mean(per_base)
    if name == "rgb":
        t_psnr = np.concatenate(per_tok["psnr_db"])
        b_psnr = np.concatenate(per_base["psnr_db"])
        moving = np.isfinite(b_psnr)  # a clip of identical frames: the baseline is exact
        gain = t_psnr[moving] - b_psnr[moving]
        tok["psnr_gain_db"] = float(gain.mean()) if gain.size else float("nan")
        tok["psnr_gain_median_db"] = float(np.median(gain)) if gain.size else float("nan")
        tok["psnr_median_db"] = float(np.median(t_psnr))
        base["psnr_median_db"] = float(np.median(b_psnr))
        tok["psnr_pooled_db"] = _pooled(t_psnr)
        base["psnr_pooled_db"] = _pooled(b_psnr)
        tok["static_clips"] = base["static_clips"] = float(np.count_nonzero(~moving))
    if name == "depth":
        t_rel = np.concatenate(per_tok["abs_rel"])
        tok["abs_rel_median"] = float(np.nanmedian(t_rel))
        base["abs_rel_median"] = float(np.nanmedian(np.concatenate(per_base["abs_rel"])))
        tok["sparse_clips"] = base["sparse_clips"] = float(
            np.concatenate(per_tok["sparse_clips"]).sum())
    targets = []
    for key, op, value, label in TARGETS[name]:
        measured = tok[key]
        reached = measured >= value if op == ">=" else measured <= value
        targets.append({"key": key, "op": op, "value": value, "label": label,
                        "measured": measured, "reached": bool(reached)})
    return {"clips": len(clips), "tokenizer": tok, "baseline": base, "targets": targets}


_DESIGN = {
    "rgb": "Causal video autoencoder (egosim.egom2p.tokenizers.video), 4x in time and 8x8 in "
           "space like Cosmos DV4x8x8: 16 frames (padded to 17) -> 5 latent frames of (H/8, "
           "W/8) FSQ tokens. Input rgb / 127.5 - 1; MSE loss.",
    "depth": "The RGB tokenizer's network with one input channel "
             "(egosim.egom2p.tokenizers.video). Depth is min-max normalised per clip on its "
             "valid pixels in log depth, u = (ln d - ln near) / (ln far - ln near); no-hit "
             "pixels are fed as u = 1.25 and decoded as 0 above u = 1.125. Two range tokens "
             "(near and far, log bins) precede the 5 x (H/8) x (W/8) grid, so decode returns "
             "metres. Loss: MSE on 2u - 1 plus the AbsRel of the metric decode (per clip).",
    "camera": "Transformer autoencoder (egosim.egom2p.tokenizers.sequence) of camera_9d "
              "(60, 9): Conv1d kernel = stride = 2 -> 30 tokens, Transformer encoder and "
              "decoder, {quantizer}; MSE loss on the z-scored 9-D values; decoded to poses "
              "by egosim.egom2p.camera_9d.",
    "camera_pca": "Linear-basis code (egosim.egom2p.tokenizers.pca_code) of camera_9d "
                  "(60, 9): the 30 leading principal directions of the training clips' "
                  "540-value vectors (rotation columns unitless, translation in metres x "
                  "pca_translation_scale) give one coefficient a token, quantised to its own "
                  "256 Lloyd-Max levels (ordinal ids); decoded linearly, then to poses by "
                  "egosim.egom2p.camera_9d. Fitted, not trained: no Transformer.",
    "gaze": "Transformer autoencoder (egosim.egom2p.tokenizers.sequence) of [x, y, valid] "
            "(60, 3): Conv1d kernel = stride = 2 -> 30 tokens, Transformer encoder and "
            "decoder, {quantizer}; MSE on x, y masked by validity plus MSE on the valid "
            "channel.",
    "gaze_dpcm": "Closed-loop predictive code (egosim.egom2p.tokenizers.dpcm_code) of the "
                 "gaze (60, 2): token t is the k-means code (256 of them, fitted to the "
                 "training clips) of samples 2t and 2t + 1 as offsets from the last "
                 "reconstructed sample (token 0: of the positions, its own codebook), chosen "
                 "with a one-token lookahead; invalid samples are interpolated and decoded "
                 "as valid inside the image. Fitted, not trained: no Transformer.",
}


def _fmt(v: float) -> str:
    if float(v).is_integer() and abs(v) >= 1:
        return f"{int(v)}"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"


_QUANTIZERS = {
    "vq": "VectorQuantize codebook with cosine codes, EMA and dead-code replacement",
    "fsq": "finite scalar quantisation (FSQ) of each token",
}


def design_text(tokenizer: Tokenizer) -> str:
    """The model card's one-paragraph design of ``tokenizer`` (by name and quantiser)."""
    quantizer = getattr(getattr(tokenizer, "cfg", None), "quantizer", None)
    if tokenizer.name == "camera" and quantizer == "pca":
        return _DESIGN["camera_pca"]
    if tokenizer.name == "gaze" and quantizer == "dpcm":
        return _DESIGN["gaze_dpcm"]
    return _DESIGN[tokenizer.name].format(quantizer=_QUANTIZERS.get(str(quantizer), ""))


def section_overrides(cfg: TrainTokenizerConfig) -> list[str]:
    """The command-line overrides (``NAME.key=value``, dotted into sub-sections such as
    ``model``) that give the trained modality's section its values: every key that differs
    from the schema's default for that section, in schema order."""
    default = type(cfg)(modality=cfg.modality).section().model_dump(mode="json")
    out: list[str] = []

    def walk(prefix: str, value: Any, base: Any) -> None:
        if isinstance(value, dict) and isinstance(base, dict):
            for key, v in value.items():
                walk(f"{prefix}.{key}", v, base.get(key))
        elif value != base:
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
            out.append(f"{prefix}={text}")

    walk(cfg.modality, cfg.section().model_dump(mode="json"), default)
    return out


def write_model_card(path: Path, tokenizer: Tokenizer, cfg: TrainTokenizerConfig,
                     info: dict[str, Any]) -> Path:
    """Write the model card of an exported tokenizer (markdown), atomic."""
    name = tokenizer.name
    params = sum(p.numel() for p in tokenizer.parameters())
    pt = path.with_suffix(".pt")
    size = pt.stat().st_size / 1e6 if pt.is_file() else float("nan")
    data = info["data"]
    m = info.get("metrics", {})
    lines = [
        f"# EgoM2P {name} tokenizer", "",
        f"`{pt.name}`: {design_text(tokenizer)} {params:,} parameters, {size:.2f} MB; vocabulary "
        f"{tokenizer.vocab_size:,}, {tokenizer.num_tokens(data['height'], data['width'])} "
        f"tokens per clip at {data['height']} x {data['width']}.", "",
        "## Data",
        f"{data['source'][:1].upper()}{data['source'][1:]}. Training clips: "
        f"{data['train_clips']}, held-out "
        f"clips: {data['holdout_clips']}; video {data['height']} x {data['width']} at 8 fps "
        "(16 frames), poses and gaze at 30 fps (60 samples).", "",
        "## Retrain",
        "```",
        " ".join(["egosim egom2p train-tokenizer", f"modality={name}",
                  *section_overrides(cfg), "export_dir=egom2p/tokenizers/checkpoints"]),
        "```",
        "(config `configs/egom2p_tokenizer.yaml`, section `" + name + "`; "
        "`egosim.egom2p.tokenizers.train.run(cfg)`)", "",
        "## Config",
        "```json",
        json.dumps(cfg.section().model_dump(mode="json"), indent=1),
        "```", "",
        "## Training",
        (f"Fitted to the {data['train_clips']} training clips in {info['train_s']:.1f} s "
         f"wall time, no optimiser steps, on {info['threads']} CPU thread(s) "
         f"({info['machine']})." if not info.get('training', {}).get('steps') and
         not params else
         f"{info.get('training', {}).get('steps', '?')} steps of "
         f"{info.get('training', {}).get('batch_size', '?')} clips in {info['train_s']:.0f} s "
         f"wall time on {info['threads']} CPU thread(s) ({info['machine']}).")
        + (f" {info['train_note']}" if info.get("train_note") else ""), "",
    ]
    if m:
        lines += [f"## Metrics ({m['clips']} held-out clips; `egosim.egom2p.tokenizers."
                  "evaluate`, figures of `egosim.egom2p.metrics`)",
                  "| figure | tokenizer | baseline |", "| --- | --- | --- |"]
        for k, v in m["tokenizer"].items():
            b = m["baseline"].get(k)
            lines.append(f"| {k} | {_fmt(v)} | {_fmt(b) if b is not None else '-'} |")
        lines += ["", "| target | measured | reached |", "| --- | --- | --- |"]
        for t in m["targets"]:
            lines.append(f"| {t['label']} {t['op']} {t['value']} | {_fmt(t['measured'])} | "
                         f"{'yes' if t['reached'] else 'no'} |")
        lines += ["", "Baseline: " + _BASELINE[name]]
    return write_text(path, "\n".join(lines) + "\n")


_BASELINE = {
    "rgb": "the clip's mean frame shown for every frame. Clips of identical frames "
           "(static_clips) are exact for it (infinite PSNR): they are left out of its mean "
           "PSNR and of the gain; pooled: the PSNR of the mean MSE over all clips.",
    "depth": "each pixel's mean over the clip's frames where it is valid. AbsRel is the "
             "per-clip value (metric decode, valid pixels, no alignment) averaged over clips; "
             "abs_rel_aligned after a per-clip least-squares scale and shift; "
             "abs_rel_dense_clips over the clips with a hit on at least half of their pixels "
             "(sparse_clips: the others, where the camera looks mostly at nothing and a few "
             "valid pixels decide the clip's value).",
    "camera": "every 4th pose and the last kept, translations linearly interpolated, "
              "rotations slerped.",
    "gaze": "every 4th valid sample and the last kept, linearly interpolated.",
}
