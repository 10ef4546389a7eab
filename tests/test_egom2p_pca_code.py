"""The camera tokenizer's linear-basis code (``quantizer: pca``) and posterior-mean decoding
of every tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egosim.egom2p import tokenizers
from egosim.egom2p.metrics import camera_metrics
from egosim.egom2p.tokenizer_config import SequenceModelSection, TrainTokenizerConfig
from egosim.egom2p.tokenizers.clip_data import KEYS, synthetic_clips
from egosim.egom2p.tokenizers.pca_code import lloyd_levels

PCA = SequenceModelSection(width=16, layers=1, heads=2, quantizer="pca").model_dump(
    mode="json")


def _fitted(n: int = 8, seed: int = 0) -> tuple[tokenizers.Tokenizer, dict]:
    clips = synthetic_clips(n, 16, 16, seed, KEYS["camera"])
    tok = tokenizers.build("camera", PCA)
    tok.set_camera_stats(*clips.camera_stats)
    batch = clips.batch(np.arange(n))
    tok.fit(batch)
    return tok.eval(), batch


def test_lloyd_levels_are_sorted_and_keep_few_distinct_values_exactly() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    levels = lloyd_levels(x, 16)
    assert levels.shape == (16,) and np.all(np.diff(levels) > 0)
    # k-means levels beat the plain quantiles they start from in squared error
    def err(lv: np.ndarray) -> float:
        return float(np.mean(np.min((x[:, None] - lv[None]) ** 2, axis=1)))
    assert err(levels) < err(np.quantile(x, (np.arange(16) + 0.5) / 16))
    few = lloyd_levels(np.array([3.0, 1.0, 2.0, 1.0]), 6)
    assert np.array_equal(few, [1.0, 2.0, 3.0, 3.0, 3.0, 3.0])


def test_pca_code_round_trips_its_training_clips_to_a_micrometre() -> None:
    # 8 clips span at most 8 directions and each coefficient has 8 distinct values: the
    # fitted code is exact on them, and the untrained residual decoder adds nothing
    tok, batch = _fitted(8)
    ids = tok.encode(batch)
    assert ids.shape == (8, 30) and ids.dtype == torch.int64
    assert 0 <= int(ids.min()) and int(ids.max()) < 256
    out = tok.decode(ids)
    assert np.abs(out["camera"].numpy() - batch["camera"]).max() < 1e-6
    assert camera_metrics(batch["camera"], out["camera"].numpy())["ate_m"] < 1e-6


def test_pca_ids_are_ordinal_bins_of_their_coefficient() -> None:
    tok, batch = _fitted(40)
    levels = tok.net.levels
    assert torch.all(levels[:, 1:] >= levels[:, :-1])
    x, _ = tok.to_input(batch)
    coef = tok.net.encode_latent(x)
    _, ids, _ = tok.net.quantize(coef)
    bigger = coef.clone()
    bigger[:, 0] += (levels[0, -1] - levels[0, 0]) / 4
    _, more, _ = tok.net.quantize(bigger)
    assert torch.all(more[:, 0] >= ids[:, 0]) and torch.any(more[:, 0] > ids[:, 0])
    assert torch.equal(more[:, 1:], ids[:, 1:])


def test_pca_fit_is_deterministic_and_held_out_clips_decode_close() -> None:
    a, _ = _fitted(40, seed=0)
    b, _ = _fitted(40, seed=0)
    for k in ("unit", "mean", "basis", "levels"):  # the fitted buffers
        assert torch.equal(getattr(a.net, k), getattr(b.net, k)), k
    held = synthetic_clips(8, 16, 16, 5, KEYS["camera"]).batch(np.arange(8))
    out = a.decode(a.encode(held))["camera"].numpy()
    zero = np.broadcast_to(np.eye(4), held["camera"].shape)
    assert camera_metrics(held["camera"], out)["ate_m"] < 0.2 * camera_metrics(
        held["camera"], zero)["ate_m"]


def test_pca_is_for_the_camera_only() -> None:
    with pytest.raises(ValueError, match="camera"):
        tokenizers.build("gaze", PCA)


def test_a_pca_run_fits_exports_and_reloads_the_code(tmp_path) -> None:
    from egosim.egom2p.tokenizers.train import run

    cfg = TrainTokenizerConfig.model_validate({
        "modality": "camera", "camera": {"steps": 0, "model": PCA},
        "output_dir": str(tmp_path / "runs"),
        "export_dir": str(tmp_path / "export"), "progress": False, "tensorboard": False,
        "data": {"source": "synthetic", "train_clips": 40, "holdout_clips": 4,
                 "video_size": 16}})
    summary = run(cfg)
    held = synthetic_clips(4, 16, 16, 1, KEYS["camera"]).batch(np.arange(4))["camera"]
    zero = camera_metrics(held, np.broadcast_to(np.eye(4), held.shape))["ate_m"]
    assert summary["step"] == 0
    assert summary["metrics"]["tokenizer"]["ate_m"] < 0.2 * zero
    fitted, _ = _fitted(40)   # the same clips (synthetic seed 0), fitted directly
    loaded = tokenizers.load("camera", tmp_path / "export" / "camera.pt")
    for k in ("unit", "mean", "basis", "levels"):
        assert torch.equal(getattr(loaded.net, k), getattr(fitted.net, k)), k
    assert "Lloyd-Max" in (tmp_path / "export" / "camera.md").read_text()
    with pytest.raises(ValueError, match="steps"):
        TrainTokenizerConfig.model_validate({"camera": {"steps": 10, "model": PCA}})


def _one_hot(ids: torch.Tensor, sizes: list[int], basis: list[int] | None = None
             ) -> list[torch.Tensor]:
    if basis is None:
        return [torch.nn.functional.one_hot(ids, sizes[0]).float()]
    return [torch.nn.functional.one_hot((ids // b) % v, v).float()
            for v, b in zip(sizes, basis, strict=True)]


@pytest.mark.parametrize("name", ["rgb", "depth", "camera_fsq", "camera_pca", "gaze",
                                  "gaze_dpcm"])
def test_expected_decoding_of_one_hot_distributions_equals_decoding_the_ids(name: str
                                                                           ) -> None:
    size = 16
    if name in ("rgb", "depth"):
        levels = [4, 4, 3]
        tok = tokenizers.build(name, {"stem_width": 8, "width": 16, "blocks": 1,
                                      "frame_blocks": 0, "levels": levels}).eval()
        batch = synthetic_clips(2, size, size, 0, KEYS[name]).batch([0, 1])
        ids = tok.encode(batch)
        basis = np.cumprod([1] + levels[:-1]).tolist()
        probs = _one_hot(ids, levels, basis)
        want, got = tok.decode(ids, size, size), tok.decode_expected(ids, probs, size, size)
    else:
        if name == "camera_pca":
            tok, batch = _fitted(8)
        elif name == "gaze_dpcm":
            tok = tokenizers.build("gaze", {"quantizer": "dpcm", "codebook_size": 16})
            batch = synthetic_clips(6, size, size, 0, KEYS["gaze"]).batch(np.arange(6))
            tok.fit(batch)
            tok.eval()
        else:
            model = {"width": 16, "layers": 1, "heads": 2, "codebook_size": 16}
            model.update({"quantizer": "fsq", "fsq_levels": [4, 4]} if name == "camera_fsq"
                         else {"quantizer": "vq", "code_dim": 8, "kmeans_init": False})
            base = "camera" if name == "camera_fsq" else "gaze"
            tok = tokenizers.build(base, model).eval()
            batch = synthetic_clips(2, size, size, 0, KEYS[base]).batch([0, 1])
        ids = tok.encode(batch)
        want, got = tok.decode(ids), tok.decode_expected(ids, _one_hot(ids, [tok.vocab_size]))
    for key, value in want.items():
        assert torch.allclose(got[key].double(), value.double(), atol=1e-5), key


def test_expected_decoding_averages_codes_between_two_ids() -> None:
    tok, batch = _fitted(40)
    ids = tok.encode(batch)[:1]
    other = ids.clone()
    other[0, 0] = (ids[0, 0] + 7) % 256
    probs = 0.5 * (_one_hot(ids, [256])[0] + _one_hot(other, [256])[0])
    got = tok.decode_expected(ids, [probs])["camera_9d"]
    mid = tok.net.decode_latent(0.5 * (tok.net.codes(ids) + tok.net.codes(other)))
    assert torch.allclose(got, mid, atol=1e-6)
    with pytest.raises(ValueError, match="probs"):
        tok.decode_expected(ids, [probs[:, :5]])
