"""EgoM2P tokenizers and the modality registry: round trips, training, resume, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egosim.config import load_config
from egosim.egom2p import tokenizers
from egosim.egom2p.modalities import MODALITY_INFO, modality_info, video_grid
from egosim.egom2p.tokenizer_config import (
    SequenceModelSection,
    TrainTokenizerConfig,
    VideoModelSection,
)
from egosim.egom2p.tokenizers.clip_data import KEYS, ClipSet, synthetic_clips
from egosim.egom2p.tokenizers.evaluate import interpolate_every
from egosim.egom2p.tokenizers.train import Trainer, resume_state, run

NAMES = ("rgb", "depth", "camera", "gaze")
TINY = {
    "rgb": VideoModelSection(stem_width=8, width=16, blocks=1, frame_blocks=0,
                             levels=[4, 4, 3]).model_dump(mode="json"),
    # camera: its Transformer variant, FSQ (the shipped fitted code: test_egom2p_pca_code.py);
    # gaze as shipped: a VQ codebook
    "camera": SequenceModelSection(width=16, layers=1, heads=2, codebook_size=16,
                                   quantizer="fsq", fsq_levels=[4, 4]).model_dump(mode="json"),
    "gaze": SequenceModelSection(width=16, layers=1, heads=2, codebook_size=16, code_dim=8,
                                 quantizer="vq", kmeans_init=False).model_dump(mode="json"),
}
TINY["depth"] = TINY["rgb"]
SIZE = 16  # video side of the tiny clips


def _clips(name: str, n: int = 2, seed: int = 0, size: int = SIZE) -> ClipSet:
    return synthetic_clips(n, size, size, seed, KEYS[name])


def _tiny_config(tmp_path, name: str, steps: int = 4, **top) -> TrainTokenizerConfig:
    section = {"steps": steps, "batch_size": 2, "warmup_steps": 1, "model": TINY[name]}
    return TrainTokenizerConfig.model_validate({
        "modality": name, name: section, "output_dir": str(tmp_path / "runs"),
        "data": {"source": "synthetic", "train_clips": 4, "holdout_clips": 2,
                 "video_size": SIZE},
        "progress": False, "tensorboard": False, "checkpoint_every": 2, **top})


def _probe_mse(trainer: Trainer, probe: dict) -> float:
    """The tokenizer's reconstruction MSE on ``probe`` in eval mode (left in train mode)."""
    with torch.no_grad():
        trainer.tokenizer.eval()
        value = float(trainer.tokenizer.loss(probe)["mse"])
        trainer.tokenizer.train()
        return value


def _trainer(tmp_path, name: str, steps: int = 4) -> Trainer:
    cfg = _tiny_config(tmp_path, name, steps)
    return Trainer(cfg, _clips(name, 4))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_shapes_dtypes_and_token_range(name: str) -> None:
    tok = tokenizers.build(name, TINY[name]).eval()
    clips = _clips(name)
    batch = clips.batch([0, 1])
    ids = tok.encode(batch)
    assert ids.dtype == torch.int64 and ids.shape == (2, tok.num_tokens(SIZE, SIZE))
    assert 0 <= int(ids.min()) and int(ids.max()) < tok.vocab_size
    out = tok.decode(ids)
    for key in KEYS[name]:
        want = batch[key]
        assert tuple(out[key].shape) == want.shape, key
        assert out[key].numpy().dtype == want.dtype, key


def test_normalisations_invert_exactly_or_nearly() -> None:
    rgb = tokenizers.build("rgb", TINY["rgb"])
    batch = _clips("rgb").batch([0, 1])
    x, _ = rgb.to_input(batch)
    assert np.array_equal(rgb.from_output(x, None)["rgb"].numpy(), batch["rgb"])

    depth = tokenizers.build("depth")  # the range tokens need the full vocabulary
    d = _clips("depth").batch([0, 1])["depth"]
    x, rng = depth.to_input({"depth": d})
    back = depth.from_output(x, rng)["depth"].numpy()
    valid = d > 0
    assert np.all(back[~valid] == 0.0)
    assert np.max(np.abs(back[valid] - d[valid]) / d[valid]) < 1e-3
    # range tokens: log bins of about 1e-4 relative resolution, near < far
    near_far = depth.tokens_to_range(rng).numpy()
    assert np.all(near_far[:, 0] < near_far[:, 1])
    lowest = np.where(valid, d, np.inf).reshape(2, -1).min(axis=1)
    assert np.all(near_far[:, 0] <= lowest) and np.allclose(near_far[:, 0], lowest, rtol=2e-4)

    gaze = tokenizers.build("gaze", TINY["gaze"])
    g = _clips("gaze").batch([0, 1])
    x, _ = gaze.to_input(g)
    out = gaze.from_output(x)
    assert np.array_equal(out["gaze_valid"].numpy(), g["gaze_valid"])
    assert np.allclose(out["gaze"].numpy()[g["gaze_valid"]], g["gaze"][g["gaze_valid"]])

    camera = tokenizers.build("camera", TINY["camera"])
    clips = _clips("camera")
    camera.set_camera_stats(*clips.camera_stats)
    c = clips.batch([0, 1])
    out = camera.from_output(torch.from_numpy(c["camera_9d"]))
    assert np.allclose(out["camera"].numpy(), c["camera"], atol=1e-5)


def test_depth_without_valid_pixels_and_invalid_tokens_are_handled() -> None:
    depth = tokenizers.build("depth", TINY["depth"]).eval()
    empty = np.zeros((1, 16, SIZE, SIZE), np.float32)
    ids = depth.encode({"depth": empty})
    assert ids.shape == (1, depth.num_tokens(SIZE, SIZE))
    with pytest.raises(ValueError, match="token ids"):
        depth.decode(torch.full_like(ids, depth.vocab_size))
    with pytest.raises(ValueError, match="tokens"):
        depth.decode(ids[:, :-1], SIZE, SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_registry_agrees_with_the_tokenizers(name: str) -> None:
    info = MODALITY_INFO[name]
    tok = tokenizers.build(name)
    assert info.tokenizer == name and info.vocab_size == tok.vocab_size
    assert info.num_tokens == tok.num_tokens(64, 64)
    assert info.tokens_for(128, 96) == tok.num_tokens(128, 96)
    assert set(KEYS[name]) <= set(info.clip_keys) and set(info.clip_keys) == set(tok.clip_keys)
    if info.kind == "video":
        assert info.grid == video_grid(64, 64) == (5, 8, 8)
        assert modality_info(name, 128, 128).num_tokens == tok.num_tokens(128, 128)
    else:
        assert info.grid == (30,)
    for factory in (info.encoder_embedding, info.decoder_embedding):
        emb = factory(info.vocab_size, 48)
        ids = torch.randint(0, info.vocab_size, (2, info.num_tokens))
        assert emb(ids).shape == (2, info.num_tokens, 48)
        part = torch.tensor([[0, 3], [1, 2]])
        assert emb(ids[:, :2], part).shape == (2, 2, 48)
    dec = info.decoder_embedding(info.vocab_size, 48)
    assert dec.query().shape == (1, info.num_tokens, 48)
    assert dec.logits(torch.zeros(3, 48)).shape == (3, info.vocab_size)


def test_positions_differ_between_tokens() -> None:
    emb = MODALITY_INFO["depth"].encoder_embedding(10, 48)
    pos = emb.positions
    assert pos.shape == (MODALITY_INFO["depth"].num_tokens, 48)
    assert torch.unique(pos, dim=0).shape[0] == pos.shape[0]


@pytest.mark.parametrize("name", NAMES)
def test_training_a_few_steps_reduces_the_loss(tmp_path, name: str) -> None:
    trainer = _trainer(tmp_path, name, steps=30)
    trainer.section = trainer.section.model_copy(update={"lr": 1e-2})
    probe = trainer.train.batch([0, 1, 2, 3])

    before = _probe_mse(trainer, probe)
    for _ in range(30):
        trainer.train_step()
    assert _probe_mse(trainer, probe) < 0.8 * before


@pytest.mark.parametrize("name", ["depth", "gaze"])
def test_decoder_only_training_keeps_every_token_id_and_lowers_the_loss(tmp_path, name: str
                                                                       ) -> None:
    start = _trainer(tmp_path, name, steps=10)
    for _ in range(10):
        start.train_step()
    init = tmp_path / "init.pt"
    tokenizers.save_checkpoint(start.tokenizer, init, start.step, {})
    cfg = _tiny_config(tmp_path, name, steps=20)
    section = getattr(cfg, name).model_copy(update={"init_from": str(init),
                                                    "train_parts": "decoder", "lr": 1e-2})
    cfg = cfg.model_copy(update={name: section})
    trainer = Trainer(cfg, _clips(name, 4))
    probe = trainer.train.batch([0, 1, 2, 3])
    start.tokenizer.eval()
    ids = start.tokenizer.encode(probe)
    before = {k: v.clone() for k, v in trainer.tokenizer.state_dict().items()}

    first = _probe_mse(trainer, probe)
    for _ in range(20):
        trainer.train_step()
    trainer.tokenizer.eval()
    assert torch.equal(trainer.tokenizer.encode(probe), ids)
    after = trainer.tokenizer.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith(("net.dec_", "net.decoder.", "net.head."))
                           for k in changed), changed
    assert _probe_mse(trainer, probe) < first


def test_decoder_only_training_needs_a_start_and_the_same_architecture(tmp_path) -> None:
    with pytest.raises(ValueError, match="init_from"):
        TrainTokenizerConfig.model_validate({"depth": {"train_parts": "decoder"}})
    other = tokenizers.build("depth", {**TINY["depth"], "width": 24})
    path = tokenizers.save_checkpoint(other, tmp_path / "other.pt", 0, {})
    cfg = _tiny_config(tmp_path, "depth")
    cfg = cfg.model_copy(update={"depth": cfg.depth.model_copy(update={
        "init_from": str(path), "train_parts": "decoder"})})
    with pytest.raises(ValueError, match="init_from"):
        Trainer(cfg, _clips("depth", 4))


def test_a_larger_decoder_over_the_same_encoder_keeps_every_token_id(tmp_path) -> None:
    start = _trainer(tmp_path, "rgb", steps=6)
    for _ in range(6):
        start.train_step()
    init = tokenizers.save_checkpoint(start.tokenizer, tmp_path / "init.pt", start.step, {})
    cfg = _tiny_config(tmp_path, "rgb", steps=10)
    model = cfg.rgb.model.model_copy(update={"decoder_width": 32, "decoder_stem_width": 12,
                                             "decoder_frame_blocks": 1})
    cfg = cfg.model_copy(update={"rgb": cfg.rgb.model_copy(update={
        "init_from": str(init), "train_parts": "decoder", "lr": 1e-2, "model": model})})
    trainer = Trainer(cfg, _clips("rgb", 4))
    probe = trainer.train.batch([0, 1, 2, 3])
    start.tokenizer.eval()
    ids = start.tokenizer.encode(probe)
    assert trainer.tokenizer.net.dec_code.out_channels == 32
    assert trainer.tokenizer.net.dec_out.in_channels == 12
    assert len(trainer.tokenizer.net.dec_frame) == 1 and len(start.tokenizer.net.dec_frame) == 0
    first = _probe_mse(trainer, probe)
    for _ in range(10):
        trainer.train_step()
    trainer.tokenizer.eval()
    assert torch.equal(trainer.tokenizer.encode(probe), ids)
    assert _probe_mse(trainer, probe) < first
    # the export loads with its own decoder and decodes the same ids
    path = tokenizers.save_checkpoint(trainer.tokenizer, tmp_path / "big.pt", trainer.step, {})
    loaded = tokenizers.load("rgb", path)
    assert torch.equal(loaded.decode(ids)["rgb"], trainer.tokenizer.decode(ids)["rgb"])
    # another encoder is refused even for a decoder-only run
    other = tokenizers.build("rgb", {**TINY["rgb"], "width": 24})
    bad = tokenizers.save_checkpoint(other, tmp_path / "other.pt", 0, {})
    cfg = cfg.model_copy(update={"rgb": cfg.rgb.model_copy(update={"init_from": str(bad)})})
    with pytest.raises(ValueError, match="init_from"):
        Trainer(cfg, _clips("rgb", 4))


def test_an_architecture_dict_written_before_the_decoder_keys_compares_equal(tmp_path
                                                                            ) -> None:
    start = _trainer(tmp_path, "rgb", steps=1)
    old = {k: v for k, v in start.tokenizer.model_config().items()
           if not k.startswith("decoder_")}
    path = tokenizers.save_checkpoint(start.tokenizer, tmp_path / "old.pt", 0, {})
    state = torch.load(path, weights_only=False)
    state["model"] = old
    torch.save(state, path)
    cfg = _tiny_config(tmp_path, "rgb")
    cfg = cfg.model_copy(update={"rgb": cfg.rgb.model_copy(update={"init_from": str(path)})})
    trainer = Trainer(cfg, _clips("rgb", 4))
    assert all(torch.equal(a, b) for a, b in zip(
        trainer.tokenizer.state_dict().values(), start.tokenizer.state_dict().values(),
        strict=True))


@pytest.mark.parametrize("name", ["depth", "gaze"])
def test_resume_equals_an_uninterrupted_run(tmp_path, name: str) -> None:
    straight = _trainer(tmp_path, name, steps=6)
    for _ in range(6):
        straight.train_step()
    first = _trainer(tmp_path, name, steps=6)
    for _ in range(3):
        first.train_step()
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    second = _trainer(tmp_path, name, steps=6)
    second.load_state_dict(torch.load(path, weights_only=False))
    for _ in range(3):
        second.train_step()
    a, b = straight.tokenizer.state_dict(), second.tokenizer.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_run_resumes_and_a_corrupt_last_checkpoint_falls_back(tmp_path, capsys) -> None:
    cfg = _tiny_config(tmp_path, "gaze", steps=4)
    summary = run(cfg)
    ckpts = tmp_path / "runs" / "gaze" / "checkpoints"
    assert summary["step"] == 4 and sorted(p.name for p in ckpts.glob("step_*.pt")) == [
        "step_0000002.pt", "step_0000004.pt"]
    (ckpts / "step_0000004.pt").write_bytes(b"\0" * 100)
    found = resume_state(ckpts)
    assert found is not None and found[0].name == "step_0000002.pt" and found[1]["step"] == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "step_0000004.pt is bad" in err
    assert (ckpts / "step_0000004.pt.bad").is_file()
    # the next run continues from step 2 and ends where the first one did
    again = run(cfg.model_copy(update={"gaze": cfg.gaze.model_copy(update={"steps": 4})}))
    assert again["step"] == 4
    # a training checkpoint is a tokenizer checkpoint too
    tok = tokenizers.load("gaze", ckpts / "step_0000004.pt")
    assert not tok.training and tok.num_tokens() == 30


def test_load_refuses_other_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        tokenizers.load("rgb", tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        tokenizers.load("rgb", bad)
    tok = tokenizers.build("gaze", TINY["gaze"])
    path = tokenizers.save_checkpoint(tok, tmp_path / "gaze.pt", step=0)
    with pytest.raises(ValueError, match="'gaze' tokenizer"):
        tokenizers.load("camera", path)
    with pytest.raises(KeyError, match="known"):
        tokenizers.load("semantic")


def test_interpolation_baseline_is_exact_on_lines() -> None:
    t = np.arange(60, dtype=np.float64)
    lines = np.stack([2.0 * t, -t + 3.0], axis=-1)[None]
    assert np.allclose(interpolate_every(lines), lines)
    valid = np.ones((1, 60), bool)
    valid[0, 8] = False  # a dropped kept sample: its neighbours span it
    assert np.allclose(interpolate_every(lines, valid=valid), lines)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoints_load_and_round_trip_a_clip(name: str) -> None:
    path = tokenizers.checkpoint_path(name)
    assert path.stat().st_size < 5e6
    card = path.with_suffix(".md").read_text()
    assert "## Metrics" in card and "## Data" in card and "SimStream" in card
    tok = tokenizers.load(name)
    batch = _clips(name, 1, size=64).batch([0])
    ids = tok.encode(batch)
    assert ids.shape == (1, MODALITY_INFO[name].num_tokens)
    assert int(ids.max()) < MODALITY_INFO[name].vocab_size
    out = tok.decode(ids)
    for key in KEYS[name]:
        assert tuple(out[key].shape) == batch[key].shape


def test_cli_trains_a_tiny_tokenizer(tmp_path) -> None:
    from egosim.cli import main

    argv = ["egom2p", "train-tokenizer", "modality=gaze", "data.source=synthetic",
            "data.train_clips=4", "data.holdout_clips=2", "gaze.steps=2",
            "gaze.batch_size=2", f"gaze.model={TINY['gaze']}", f"output_dir={tmp_path}",
            f"export_dir={tmp_path / 'export'}", "progress=false", "tensorboard=false"]
    assert main(argv) == 0
    assert (tmp_path / "export" / "gaze.pt").is_file()
    card = (tmp_path / "export" / "gaze.md").read_text()
    assert "## Metrics" in card
    # the card's retrain command carries the section's overrides: parsed back, it gives the
    # same section as the run had
    command = card.split("## Retrain\n```\n")[1].split("\n")[0].split()
    assert "gaze.steps=2" in command and "gaze.batch_size=2" in command
    ran = load_config("egom2p_tokenizer", argv[2:], schema=TrainTokenizerConfig)
    again = load_config("egom2p_tokenizer", command[3:], schema=TrainTokenizerConfig)
    assert again.section() == ran.section()
    assert main(["egom2p", "train-tokenizer", "modality=semantic"]) == 2


def test_a_sequence_checkpoint_stored_before_fsq_loads_as_vq() -> None:
    from egosim.egom2p.tokenizers import build

    old = {k: v for k, v in TINY["gaze"].items() if k not in ("quantizer", "fsq_levels")}
    tok = build("camera", old)
    assert tok.cfg.quantizer == "vq" and hasattr(tok.net, "vq")
    with pytest.raises(ValueError, match="fsq_levels"):
        SequenceModelSection(codebook_size=16, quantizer="fsq", fsq_levels=[256])
