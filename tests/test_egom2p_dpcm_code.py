"""The gaze tokenizer's closed-loop predictive code (``quantizer: dpcm``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egosim.egom2p import tokenizers
from egosim.egom2p.metrics import gaze_l2
from egosim.egom2p.tokenizer_config import TrainTokenizerConfig
from egosim.egom2p.tokenizers.clip_data import KEYS, synthetic_clips
from egosim.egom2p.tokenizers.dpcm_code import fill_invalid

DPCM = {"quantizer": "dpcm", "codebook_size": 64}


def _drifting_gaze(n: int, seed: int) -> dict:
    """Gaze like the eye model's: fixations that jump every 10-30 samples, a random-walk
    drift of 0.02 a sample on top, and an invalid sample here and there."""
    rng = np.random.default_rng(seed)
    gaze = np.empty((n, 60, 2))
    for i in range(n):
        target, t = rng.uniform(-0.6, 0.6, 2), 0
        while t < 60:
            run = int(rng.integers(10, 30))
            gaze[i, t:t + run] = target
            target, t = rng.uniform(-0.6, 0.6, 2), t + run
    gaze += np.cumsum(rng.normal(0.0, 0.02, gaze.shape), axis=1)
    valid = rng.random((n, 60)) > 0.01
    return {"gaze": np.where(valid[..., None], gaze, 0.0).astype(np.float32),
            "gaze_valid": valid}


def _fitted(n: int = 60, seed: int = 0, **model) -> tuple[tokenizers.Tokenizer, dict]:
    batch = _drifting_gaze(n, seed)
    tok = tokenizers.build("gaze", {**DPCM, **model})
    tok.fit(batch)
    return tok.eval(), batch


def _l2(batch: dict, out: dict) -> float:
    return float(np.nanmean(gaze_l2(batch["gaze"], out["gaze"].numpy(), batch["gaze_valid"])))


def test_fill_invalid_interpolates_between_valid_samples_and_holds_the_ends() -> None:
    xy = np.array([[[0.0, 0.0], [9.0, 9.0], [1.0, -1.0], [9.0, 9.0]]])
    valid = np.array([[True, False, True, False]])
    out = fill_invalid(xy, valid)
    assert np.allclose(out[0], [[0, 0], [0.5, -0.5], [1, -1], [1, -1]])
    assert np.all(fill_invalid(xy, np.zeros_like(valid)) == 0.0)


def test_dpcm_decode_is_the_running_sum_of_code_vectors() -> None:
    tok, batch = _fitted()
    ids = tok.encode(batch)
    assert ids.shape == (60, 30) and ids.dtype == torch.int64
    assert 0 <= int(ids.min()) and int(ids.max()) < 64
    codes = tok.net.codes(ids).numpy().reshape(60, 30, 2, 2)
    offsets = np.concatenate([np.zeros((60, 1, 2)), np.cumsum(codes[:, :-1, -1], 1)], 1)
    want = (offsets[:, :, None] + codes).reshape(60, 60, 2)
    got = tok.net.decode_latent(tok.net.codes(ids))[..., :2].double().numpy()
    assert np.allclose(got, want, atol=1e-6)


def test_closed_loop_dpcm_beats_keeping_every_4th_sample_on_held_out_clips() -> None:
    tok, _ = _fitted(200)
    held = _drifting_gaze(32, 7)
    out = tok.decode(tok.encode(held))
    t = np.arange(60)
    keep = np.r_[t[::4], 59]
    interp = np.stack([np.stack([np.interp(t, keep, g[keep, d]) for d in range(2)], 1)
                       for g in held["gaze"]])
    base = float(np.nanmean(gaze_l2(held["gaze"], interp, held["gaze_valid"])))
    assert _l2(held, out) < base
    # the decoded validity: inside the image
    rec = tok.net.decode_latent(tok.net.codes(tok.encode(held)))
    inside = (rec[..., :2].abs() <= 1).all(-1)
    assert torch.equal(out["gaze_valid"], inside)


def test_lookahead_encoding_errs_no_more_than_greedy_on_the_same_codebooks() -> None:
    tok, batch = _fitted(120, dpcm_lookahead=1)
    greedy = _l2(batch, tok.decode(tok.encode(batch)))
    tok.net.lookahead = 8
    assert _l2(batch, tok.decode(tok.encode(batch))) <= greedy + 1e-9


def test_dpcm_fit_is_deterministic_and_refits_reduce_the_training_error() -> None:
    a, batch = _fitted(80)
    b, _ = _fitted(80)
    assert torch.equal(a.net.codebooks, b.net.codebooks)
    c, _ = _fitted(80, dpcm_fit_rounds=0)
    assert _l2(batch, a.decode(a.encode(batch))) < _l2(batch, c.decode(c.encode(batch)))


def test_dpcm_is_for_gaze_only_and_takes_no_optimiser_steps() -> None:
    with pytest.raises(ValueError, match="gaze"):
        tokenizers.build("camera", DPCM)
    with pytest.raises(ValueError, match="steps"):
        TrainTokenizerConfig.model_validate({"gaze": {"steps": 5, "model": DPCM}})


def test_a_dpcm_run_fits_exports_and_reloads_the_code(tmp_path) -> None:
    from egosim.egom2p.tokenizers.train import run

    cfg = TrainTokenizerConfig.model_validate({
        "modality": "gaze", "gaze": {"steps": 0, "model": DPCM},
        "output_dir": str(tmp_path / "runs"), "export_dir": str(tmp_path / "export"),
        "progress": False, "tensorboard": False,
        "data": {"source": "synthetic", "train_clips": 60, "holdout_clips": 4,
                 "video_size": 16}})
    summary = run(cfg)
    assert summary["step"] == 0
    clips = synthetic_clips(60, 16, 16, 0, KEYS["gaze"]).batch(np.arange(60))
    fitted = tokenizers.build("gaze", DPCM)   # the same clips (synthetic seed 0), directly
    fitted.fit(clips)
    loaded = tokenizers.load("gaze", tmp_path / "export" / "gaze.pt")
    assert torch.equal(loaded.net.codebooks, fitted.net.codebooks)
    assert "Closed-loop predictive" in (tmp_path / "export" / "gaze.md").read_text()
