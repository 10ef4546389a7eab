"""The EgoM2P model: budgets and masks (roles), the network, decoding, training (resume, DDP,
the stream's replay buffer), use (a depth specialist too)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from egosim.config import ConfigError, load_config
from egosim.egom2p.model.decoding import (
    DEFAULT_SCHEDULES,
    DecodeStep,
    decode,
    default_schedule,
    linear_counts,
)
from egosim.egom2p.model.masking import make_mod_dict, sample_masks, split_budget
from egosim.egom2p.model.train import (
    ReplaySource,
    SyntheticSource,
    collate_clips,
    drop_depth,
    read_checkpoint,
    run,
)
from egosim.egom2p.model.transformer import SIZES, Architecture, EgoM2P
from egosim.egom2p.model_config import TrainModelConfig

torch.set_num_threads(1)


def tiny(video: int = 64, seed: int = 0) -> EgoM2P:
    torch.manual_seed(seed)
    return EgoM2P(Architecture(**SIZES["tiny"], video_size=(video, video)))


def random_tokens(model: EgoM2P, b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randint(0, model.vocab[m], (b, n), generator=g)
            for m, n in model.num_tokens.items()}


def tiny_cfg(tmp: Path, **kw: object) -> TrainModelConfig:
    base: dict = {"size": "tiny", "threads": 1, "steps": 6, "batch_size": 4,
                  "input_budget": 64, "target_budget": 64, "data": {"source": "synthetic"},
                  "output_dir": str(tmp), "checkpoint_every": 2, "progress": False,
                  "tensorboard": False, "optim": {"warmup_steps": 2, "decay_steps": 6}}
    base.update(kw)
    return TrainModelConfig.model_validate(base)


# -- budgets and masks -------------------------------------------------------------------

NUM = {"rgb": 320, "depth": 322, "camera": 30, "gaze": 30}


def test_masks_fill_the_budgets_exactly_and_inputs_and_targets_are_disjoint() -> None:
    avail = {m: torch.ones(32, dtype=torch.bool) for m in NUM}
    masks = sample_masks(avail, NUM, 128, 96, generator=torch.Generator().manual_seed(3))
    n_in = sum((~masks[m][0]).sum(1) for m in NUM)
    n_tg = sum((~masks[m][1]).sum(1) for m in NUM)
    assert (n_in == 128).all() and (n_tg == 96).all()
    for m in NUM:
        assert not ((~masks[m][0]) & (~masks[m][1])).any()


def test_split_budget_clamps_to_the_token_count_and_hands_the_rest_on() -> None:
    assert split_budget(100, np.array([0.9, 0.1]), np.array([30, 200])).tolist() == [30, 70]
    assert split_budget(100, np.array([1.0, 0.0, 0.0]), np.array([10, 20, 30])).tolist() \
        == [10, 20, 30]  # not enough tokens: all of them
    assert split_budget(7, np.array([0.0, 0.0]), np.array([5, 5])).sum() == 7


def test_small_alpha_concentrates_the_split_and_large_alpha_spreads_it() -> None:
    num = {f"m{i}": 1000 for i in range(4)}
    avail = {m: torch.ones(200, dtype=torch.bool) for m in num}

    def top_share(alpha: float) -> float:
        masks = sample_masks(avail, num, 400, 0, alphas=[alpha],
                             generator=torch.Generator().manual_seed(0))
        shares = torch.stack([(~masks[m][0]).sum(1) for m in num], 1).float() / 400
        return float(shares.max(1).values.mean())

    assert top_share(0.01) > 0.9
    assert top_share(10.0) < 0.45
    assert top_share(0.01) > top_share(1.0) > top_share(10.0)


def test_masks_are_a_function_of_the_generator_seed() -> None:
    avail = {m: torch.ones(8, dtype=torch.bool) for m in NUM}

    def draw(seed: int) -> list[torch.Tensor]:
        out = sample_masks(avail, NUM, 64, 64, generator=torch.Generator().manual_seed(seed))
        return [t for m in NUM for t in out[m]]

    assert all(torch.equal(a, b) for a, b in zip(draw(1), draw(1), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(draw(1), draw(2), strict=True))


def test_a_sample_without_depth_gets_no_depth_input_or_target() -> None:
    model = tiny()
    tokens = random_tokens(model, 8)
    avail = {m: torch.ones(8, dtype=torch.bool) for m in tokens}
    avail["depth"][::2] = False
    md = make_mod_dict(tokens, avail, 128, 128, generator=torch.Generator().manual_seed(0))
    for key in ("input_mask", "target_mask"):
        assert md["depth"][key][::2].all()             # excluded everywhere
        assert not md["depth"][key][1::2].all()
    n_in = sum((~md[m]["input_mask"]).sum(1) for m in md)
    assert (n_in == 128).all()                          # the others take the budget
    # the loss runs, and a sample's depth never reaches the encoder
    total, per = model.loss(md)
    assert torch.isfinite(total) and set(per) == set(NUM)


def test_roles_keep_inputs_out_of_targets_and_targets_out_of_inputs() -> None:
    avail = {m: torch.ones(64, dtype=torch.bool) for m in NUM}
    avail["gaze"][:16] = False
    roles = {"rgb": "input", "depth": "target"}            # camera, gaze: both
    masks = sample_masks(avail, NUM, 128, 96, generator=torch.Generator().manual_seed(4),
                         roles=roles)
    assert masks["rgb"][1].all() and masks["depth"][0].all()
    assert (~masks["rgb"][0]).any() and (~masks["depth"][1]).any()
    n_in = sum((~masks[m][0]).sum(1) for m in NUM)
    n_tg = sum((~masks[m][1]).sum(1) for m in NUM)
    assert (n_in == 128).all() and (n_tg == 96).all()       # the budgets are still spent
    assert masks["gaze"][0][:16].all() and masks["gaze"][1][:16].all()
    for m in NUM:
        assert not ((~masks[m][0]) & (~masks[m][1])).any()
    # the specialist: rgb takes the whole input budget, depth the whole target budget
    two = {"rgb": 320, "depth": 322}
    spec = sample_masks({m: torch.ones(8, dtype=torch.bool) for m in two}, two, 128, 128,
                        generator=torch.Generator().manual_seed(0), roles=roles)
    assert ((~spec["rgb"][0]).sum(1) == 128).all() and ((~spec["depth"][1]).sum(1) == 128).all()
    assert spec["rgb"][1].all() and spec["depth"][0].all()
    with pytest.raises(ValueError, match="roles must be one of"):
        sample_masks(avail, NUM, 8, 8, roles={"rgb": "output"})


def test_all_both_roles_draw_exactly_the_masks_of_the_plain_scheme() -> None:
    avail = {m: torch.rand(16, generator=torch.Generator().manual_seed(1)) > 0.3 for m in NUM}
    plain = sample_masks(avail, NUM, 100, 60, generator=torch.Generator().manual_seed(9))
    both = sample_masks(avail, NUM, 100, 60, generator=torch.Generator().manual_seed(9),
                        roles=dict.fromkeys(NUM, "both"))
    assert all(torch.equal(plain[m][k], both[m][k]) for m in NUM for k in (0, 1))
    assert load_config("egom2p_model", [], schema=TrainModelConfig).learned_roles() is None


def _fake_clips(n: int, drop_modality: str | None = None) -> list[dict]:
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        clip = {f"tokens_{m}": rng.integers(1, 200, k) for m, k in NUM.items()
                if m != drop_modality}
        clip["meta"] = {"worker": i % 2, "index": i // 2}
        clips.append(clip)
    return clips


def test_task_masks_put_the_inputs_on_the_task_inputs_and_the_targets_on_its_target() -> None:
    tasks = [(("rgb",), "camera"), (("rgb", "depth"), "camera"), (("depth",), "rgb")]
    avail = {m: torch.ones(400, dtype=torch.bool) for m in NUM}
    avail["depth"][:100] = False
    masks = sample_masks(avail, NUM, 128, 96, generator=torch.Generator().manual_seed(3),
                         tasks=tasks, task_fraction=0.5)
    n_in = {m: (~masks[m][0]).sum(1) for m in NUM}
    n_tg = {m: (~masks[m][1]).sum(1) for m in NUM}
    assert (sum(n_in.values()) == 128).all()
    rgb_cam = (n_in["rgb"] == 128) & (n_tg["camera"] == 30) & (sum(n_tg.values()) == 30)
    rgbd_cam = ((n_in["rgb"] == 64) & (n_in["depth"] == 64) & (n_tg["camera"] == 30)
                & (sum(n_tg.values()) == 30))
    depth_rgb = (n_in["depth"] == 128) & (n_tg["rgb"] == 96) & (sum(n_tg.values()) == 96)
    task_rows = rgb_cam | rgbd_cam | depth_rgb
    assert 0.4 < float(task_rows.float().mean()) < 0.6        # p = 0.5 of the samples
    assert not (rgbd_cam | depth_rgb)[:100].any()             # no depth: only rgb -> camera
    assert rgb_cam[:100].any() and rgbd_cam[100:].any() and depth_rgb[100:].any()
    for m in NUM:
        assert not ((~masks[m][0]) & (~masks[m][1])).any()
    plain = sample_masks(avail, NUM, 128, 96, generator=torch.Generator().manual_seed(3))
    off = sample_masks(avail, NUM, 128, 96, generator=torch.Generator().manual_seed(3),
                       tasks=tasks, task_fraction=0.0)
    assert all(torch.equal(plain[m][k], off[m][k]) for m in NUM for k in (0, 1))
    with pytest.raises(ValueError, match="task_fraction"):
        sample_masks(avail, NUM, 8, 8, tasks=tasks, task_fraction=1.5)
    with pytest.raises(ValueError, match="inputs without its target"):
        sample_masks(avail, NUM, 8, 8, tasks=[(("rgb",), "rgb")], task_fraction=0.5)


def test_the_stream_collate_drops_depth_for_the_configured_fraction_of_clips() -> None:
    clips = _fake_clips(400)
    batch = collate_clips(clips, NUM, drop_depth_fraction=0.3, seed=5)
    lost = ~batch["available"]["depth"]
    assert 0.2 < float(lost.float().mean()) < 0.4
    assert (batch["tokens"]["depth"][lost] == 0).all()
    assert (batch["tokens"]["depth"][~lost] > 0).all()
    assert batch["available"]["rgb"].all()
    expect = [drop_depth(5, (c["meta"]["worker"], c["meta"]["index"]), 0.3) for c in clips]
    assert lost.tolist() == expect                          # one draw per clip identity
    again = collate_clips(clips, NUM, drop_depth_fraction=0.3, seed=5)
    assert torch.equal(again["available"]["depth"], batch["available"]["depth"])
    none = collate_clips(_fake_clips(4, drop_modality="gaze"), NUM)
    assert not none["available"]["gaze"].any() and none["available"]["depth"].all()


def test_a_config_with_drop_depth_fraction_gives_batches_without_depth(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path, batch_size=64, stream={"drop_depth_fraction": 0.5})
    batch = SyntheticSource(cfg, tiny()).batch(0)
    lost = ~batch["available"]["depth"]
    assert 0.25 < float(lost.float().mean()) < 0.75
    md = make_mod_dict(batch["tokens"], batch["available"], 64, 64,
                       generator=torch.Generator().manual_seed(0))
    assert md["depth"]["input_mask"][lost].all() and md["depth"]["target_mask"][lost].all()


@pytest.mark.slow
def test_the_live_stream_source_collates_tokenized_clips_and_drops_depth(tmp_path: Path
                                                                         ) -> None:
    from egosim.egom2p.model.train import StreamSource

    cfg = tiny_cfg(tmp_path, video_size=32, batch_size=3, data={"source": "stream"},
                   stream={"num_workers": 0, "drop_depth_fraction": 0.5, "clip_overrides": {
                       "worlds": 1, "humans": [1, 1], "scene.pool_size": 1,
                       "clips_per_episode": 1,
                       "controller": "egosim.agents.controllers:prior_walker"}})
    model = tiny(video=32)
    source = StreamSource(cfg, model)
    batch = source.batch(0)
    for m, n in model.num_tokens.items():
        assert batch["tokens"][m].shape == (3, n) and batch["tokens"][m].dtype == torch.int64
        assert (batch["tokens"][m] < model.vocab[m]).all()
    expect = [not drop_depth(0, (0, i), 0.5) for i in range(3)]
    assert batch["available"]["depth"].tolist() == expect
    assert source.state(1)["stream_batches"] == 1
    source.close()


# -- the network --------------------------------------------------------------------------

def test_excluded_input_tokens_do_not_change_the_prediction() -> None:
    model = tiny().eval()
    tokens = random_tokens(model, 2)
    avail = {m: torch.ones(2, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, 64, 32, generator=torch.Generator().manual_seed(0))
    other = {m: dict(e) for m, e in md.items()}
    for e in other.values():
        changed = e["tensor"].clone()
        changed[e["input_mask"] & e["target_mask"]] = 7     # neither input nor target
        e["tensor"] = changed
    with torch.no_grad():
        a, b = model(md), model(other)
    assert all(torch.allclose(a[m][0], b[m][0], atol=1e-6) for m in a)
    seen = {m: dict(e) for m, e in md.items()}
    t = seen["rgb"]["tensor"].clone()
    t[~seen["rgb"]["input_mask"]] += 1                       # an input token changes
    seen["rgb"]["tensor"] = t
    with torch.no_grad():
        c = model(seen)
    assert not torch.allclose(a["camera"][0], c["camera"][0])


def test_output_logits_are_tied_to_the_input_embedding_and_no_linear_has_a_bias() -> None:
    model = tiny()
    for m in model.infos:
        assert model.dec_emb[m].token is model.enc_emb[m].token
    assert all(getattr(mod, "bias", None) is None for mod in model.modules()
               if isinstance(mod, (torch.nn.Linear, torch.nn.LayerNorm)))
    h = torch.randn(3, model.arch.dim)
    tok = model.enc_emb["rgb"].token
    assert torch.allclose(model.logits("rgb", h), h @ tok.weight.t(), atol=1e-5)
    full = EgoM2P(Architecture(**SIZES["tiny"], video_head="full"))
    assert full.logits("depth", h).shape == (3, 64000)


def test_positions_have_the_token_embeddings_scale_and_old_checkpoints_keep_theirs() -> None:
    model = tiny()
    for m in ("rgb", "camera"):
        pos = model.enc_emb[m].position()
        assert abs(float(pos.pow(2).mean().sqrt()) - 0.1 / 2 ** 0.5) < 0.005  # 0.071
        assert torch.equal(model.dec_emb[m].position(), pos)
    legacy = model.arch.to_dict()
    del legacy["position_scale"]                                      # a checkpoint from before
    old = EgoM2P(Architecture.from_dict(legacy))
    assert old.arch.position_scale == 1.0
    assert torch.allclose(old.enc_emb["rgb"].position(), model.enc_emb["rgb"].position() / 0.1,
                          atol=1e-5)
    with pytest.raises(ValueError, match="position_scale"):
        Architecture(**SIZES["tiny"], position_scale=0.0)


def test_fitted_tables_tell_positions_apart_and_are_shared_by_video_modalities() -> None:
    sincos = EgoM2P(Architecture(**SIZES["tiny"], position_table="sincos"))
    fitted = EgoM2P(Architecture(**SIZES["tiny"], position_table="fitted"))

    def mean_cosine(table: torch.Tensor) -> float:
        x = table / table.norm(dim=1, keepdim=True)
        sim = x @ x.T
        n = sim.shape[0]
        return float((sim.sum() - n) / (n * (n - 1)))

    rgb = fitted.enc_emb["rgb"].position()
    assert mean_cosine(rgb) < 0.6 < mean_cosine(sincos.enc_emb["rgb"].position())
    # depth's grid slots (after its two range tokens) sit where rgb's do: same table rows
    assert torch.equal(fitted.enc_emb["depth"].position()[2:], rgb)
    assert abs(float(rgb.pow(2).mean().sqrt()) - 0.1 / 2 ** 0.5) < 0.01
    assert torch.equal(fitted.dec_emb["camera"].position(), fitted.enc_emb["camera"].position())


def test_learned_tables_are_trained_tied_and_saved_and_old_checkpoints_are_sincos() -> None:
    model = EgoM2P(Architecture(**SIZES["tiny"], position_table="learned"))
    enc = model.enc_emb["gaze"].positions
    assert isinstance(enc, torch.nn.Parameter)
    assert model.dec_emb["gaze"].positions is enc                  # one table per modality
    assert "enc_emb.gaze.positions" in model.state_dict()
    init = enc.detach().clone()
    tokens = random_tokens(model, 2)
    avail = {m: torch.ones(2, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, 32, 32, generator=torch.Generator().manual_seed(0))
    model.loss(md)[0].backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert not torch.equal(enc.detach(), init)
    legacy = model.arch.to_dict()
    del legacy["position_table"]                                      # a checkpoint from before
    assert Architecture.from_dict(legacy).position_table == "sincos"
    with pytest.raises(ValueError, match="position_table"):
        Architecture(**SIZES["tiny"], position_table="rope")


def test_the_config_position_scale_reaches_the_architecture() -> None:
    from egosim.egom2p.model.train import build_model

    cfg = load_config("egom2p_model", ["size=tiny", "position_scale=0.3"],
                      schema=TrainModelConfig)
    model = build_model(cfg)
    assert model.arch.position_scale == 0.3
    pos = model.enc_emb["camera"].position()
    assert abs(float(pos.pow(2).mean().sqrt()) - 0.3 / 2 ** 0.5) < 0.01
    assert load_config("egom2p_model", [], schema=TrainModelConfig).position_scale == 0.1


def test_base_size_is_egom2ps() -> None:
    assert SIZES["base"] == {"encoder_depth": 12, "decoder_depth": 12, "dim": 768, "heads": 12}


def test_ordinal_targets_peak_at_the_id_sum_to_one_and_widen_with_sigma() -> None:
    from egosim.egom2p.model.transformer import ordinal_targets

    ids = torch.tensor([0, 100, 255])
    narrow, wide = ordinal_targets(ids, 256, 2.0), ordinal_targets(ids, 256, 8.0)
    assert narrow.shape == (3, 256)
    assert torch.allclose(narrow.sum(-1), torch.ones(3))
    assert torch.equal(narrow.argmax(-1), ids) and torch.equal(wide.argmax(-1), ids)
    assert torch.allclose(narrow[1, 100 - 5], narrow[1, 100 + 5])      # symmetric inside
    assert float(wide[1, 100]) < float(narrow[1, 100])
    v = torch.arange(256.0)
    spread = ((v - 100) ** 2 * wide[1]).sum().sqrt()
    assert abs(float(spread) - 8.0) < 0.05


def test_ordinal_smoothing_is_cross_entropy_to_the_gaussian_target() -> None:
    from egosim.egom2p.model.transformer import ordinal_targets

    model = tiny()
    hidden = torch.randn(5, model.arch.dim)
    ids = torch.tensor([3, 40, 128, 200, 255])
    logp = torch.log_softmax(model.logits("camera", hidden), -1)
    want = -(ordinal_targets(ids, 256, 4.0) * logp).sum(-1)
    assert torch.allclose(model.token_nll("camera", hidden, ids, 4.0), want, atol=1e-5)
    # a vanishing width is the one-hot cross-entropy; a smoothed loss needs a plain head
    assert torch.allclose(model.token_nll("camera", hidden, ids, 1e-3),
                          model.token_nll("camera", hidden, ids), atol=1e-5)
    with pytest.raises(ValueError, match="factorized"):
        model.token_nll("rgb", hidden, ids, 4.0)
    # loss() applies it per modality
    tokens = random_tokens(model, 2)
    avail = {m: torch.ones(2, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, 64, 64, generator=torch.Generator().manual_seed(0))
    _, hard = model.loss(md)
    _, soft = model.loss(md, {"camera": 4.0})
    assert torch.allclose(hard["gaze"], soft["gaze"]) and not torch.allclose(
        hard["camera"], soft["camera"])


def test_ordinal_embedding_starts_as_its_table_and_its_logits_form_gaussians() -> None:
    from egosim.egom2p.model.transformer import OrdinalTokenEmbedding

    emb = OrdinalTokenEmbedding(256, 8)
    ids = torch.tensor([0, 7, 255])
    assert torch.equal(emb.weight, emb.table)                 # the smooth part starts at 0
    assert torch.allclose(emb(ids), emb.weight[ids])
    z = emb.features[:, 0]
    assert torch.all(z[1:] > z[:-1]) and abs(float(z[128] + z[127])) < 1e-5
    # logits h . E[i] with (P h) = [mu / s^2, -1 / s^2, 0...] are -(z_i - mu)^2 / 2 s^2 + c;
    # the bins are uniform in quantile, so their density in z is N(0, 1) and the softmax
    # over ids is the Gaussian N(mu, s^2) N(0, 1): variance 1 / (1 / s^2 + 1), mean
    # mu times that / s^2
    mu, sd = 0.7, 0.3
    with torch.no_grad():
        emb.table.zero_()
        emb.proj.zero_()
        emb.proj[0, 0], emb.proj[1, 0] = mu / sd ** 2, -1.0 / sd ** 2
    h = torch.zeros(8)
    h[0] = 1.0
    p = torch.softmax(emb.weight.detach() @ h, 0)
    var = 1.0 / (1.0 / sd ** 2 + 1.0)
    mean = mu * var / sd ** 2
    assert abs(float(z[p.argmax()]) - mu) < 0.02            # the most probable bin
    assert abs(float((p * z).sum()) - mean) < 0.01
    assert abs(float((p * (z - mean) ** 2).sum().sqrt()) - var ** 0.5) < 0.01


def test_architecture_ordinal_head_round_trips_and_old_checkpoints_have_none() -> None:
    from egosim.egom2p.model.transformer import OrdinalTokenEmbedding

    arch = Architecture(**SIZES["tiny"], ordinal_head=("camera",))
    assert Architecture.from_dict(arch.to_dict()) == arch
    old = arch.to_dict()
    del old["ordinal_head"]
    assert Architecture.from_dict(old).ordinal_head == ()
    model = EgoM2P(arch)
    assert isinstance(model.enc_emb["camera"].token, OrdinalTokenEmbedding)
    assert model.dec_emb["camera"].token is model.enc_emb["camera"].token   # tied
    assert model.logits("camera", torch.randn(3, 64)).shape == (3, 256)
    with pytest.raises(ValueError, match="ordinal_head"):
        Architecture(**SIZES["tiny"], ordinal_head=("rgb",))


def test_token_weights_have_mean_one_and_blend_equal_with_variance_shares() -> None:
    from egosim.egom2p.model.transformer import token_weights

    var = torch.tensor([6.0, 3.0, 1.0, 0.0])
    assert torch.allclose(token_weights(var, 0.0), torch.ones(4))
    assert torch.allclose(token_weights(var, 1.0), torch.tensor([2.4, 1.2, 0.4, 0.0]))
    half = token_weights(var, 0.5)
    assert torch.allclose(half, torch.tensor([1.7, 1.1, 0.7, 0.5]))
    assert abs(float(half.mean()) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="beta"):
        token_weights(var, 1.5)
    with pytest.raises(ValueError, match="positive"):
        token_weights(torch.zeros(3), 0.5)


def test_weighted_loss_is_the_weighted_mean_of_the_token_cross_entropies() -> None:
    model = tiny()
    tokens = random_tokens(model, 2)
    avail = {m: torch.ones(2, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, 64, 64, generator=torch.Generator().manual_seed(0))
    n_cam = model.num_tokens["camera"]
    w = torch.linspace(3.0, 0.1, n_cam)
    torch.manual_seed(0)
    _, plain = model.loss(md)
    _, weighted = model.loss(md, weights={"camera": w})
    hidden, idx, valid = model(md)["camera"]
    target = torch.gather(md["camera"]["tensor"].long(), 1, idx)
    nll = model.token_nll("camera", hidden[valid], target[valid])
    wv = w[idx][valid]
    assert torch.allclose(weighted["camera"], (wv * nll).sum() / wv.sum(), atol=1e-5)
    assert torch.allclose(plain["camera"], nll.mean(), atol=1e-5)
    assert not torch.allclose(plain["camera"], weighted["camera"])
    assert torch.allclose(plain["gaze"], weighted["gaze"])       # other modalities untouched


@pytest.mark.slow
def test_a_tiny_model_overfits_a_fixed_batch_below_half_a_nat() -> None:
    model = tiny()
    tokens = random_tokens(model, 4, seed=1)
    avail = {m: torch.ones(4, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, 64, 64, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    first = None
    for _ in range(110):
        loss, _ = model.loss(md)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final, per = model.loss(md)
    assert first > 8.0                    # ln(64000) and ln(256) averaged: chance level
    assert float(final.detach()) < 0.5, {m: float(v.detach()) for m, v in per.items()}


@pytest.mark.slow
def test_a_tiny_model_learns_to_read_its_inputs_when_the_target_copies_them() -> None:
    """Camera tokens equal to the gaze tokens of fresh random clips: only reading the input
    lowers the loss (at position_scale 1.0 the same run stays at 0.000 nats of gap)."""
    torch.manual_seed(0)
    model = EgoM2P(Architecture(**SIZES["tiny"], modalities=("camera", "gaze")))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        gaze = torch.randint(0, 256, (32, 30), generator=g)
        toks = {"gaze": gaze, "camera": gaze.clone()}
        md = make_mod_dict(toks, {m: torch.ones(32, dtype=torch.bool) for m in toks}, 30, 30,
                           generator=g, tasks=[(("gaze",), "camera")], task_fraction=1.0)
        loss, _ = model.loss(md)
        opt.zero_grad()
        loss.backward()
        opt.step()
    held = torch.randint(0, 256, (64, 30), generator=torch.Generator().manual_seed(99))

    def camera_nll(source: torch.Tensor) -> float:
        md = {"gaze": {"tensor": source, "input_mask": torch.zeros_like(source, dtype=torch.bool),
                       "target_mask": torch.ones_like(source, dtype=torch.bool)},
              "camera": {"tensor": held, "input_mask": torch.ones_like(held, dtype=torch.bool),
                         "target_mask": torch.zeros_like(held, dtype=torch.bool)}}
        with torch.no_grad():
            return float(model.loss(md)[1]["camera"])

    true, shuffled = camera_nll(held), camera_nll(held[torch.roll(torch.arange(64), 1)])
    assert true < shuffled - 0.05, (true, shuffled)


# -- decoding -----------------------------------------------------------------------------

def test_default_schedules_have_egom2ps_steps_and_linear_counts() -> None:
    model = tiny()
    steps = {t: len(default_schedule(t, model.num_tokens)) for t in DEFAULT_SCHEDULES}
    assert steps == {"camera": 3, "depth": 3, "gaze": 5, "rgb": 6, "camera_rgbd": 3}
    assert [s.tokens for s in default_schedule("depth", model.num_tokens)] == [108, 107, 107]
    assert linear_counts(30, 5) == [6] * 5
    assert DecodeStep.from_dict({"target": "gaze", "tokens": 3}).scheme == "roar"
    with pytest.raises(ValueError, match="unknown decode step key"):
        DecodeStep.from_dict({"target": "gaze", "tokens": 3, "temp": 1.0})


@pytest.mark.parametrize("scheme", ["roar", "maskgit"])
@pytest.mark.parametrize("task", sorted(DEFAULT_SCHEDULES))
def test_every_default_schedule_decodes_valid_tokens_of_the_right_count(task: str, scheme: str
                                                                        ) -> None:
    model = tiny().eval()
    spec = DEFAULT_SCHEDULES[task]
    target = spec["target"]
    tokens = random_tokens(model, 2)
    inputs = {m: tokens[m] for m in spec["inputs"]}
    schedule = default_schedule(task, model.num_tokens, scheme=scheme, cfg_scale=2.0)
    queried: list[int] = []
    forward = model.forward

    def spy(md):  # record how many positions each pass queries
        queried.append(int((~md[target]["target_mask"][0]).sum()))
        return forward(md)

    model.forward = spy  # type: ignore[method-assign]
    out = decode(model, inputs, schedule, torch.Generator().manual_seed(0))
    ids = out[target]
    assert ids.shape == (2, model.num_tokens[target]) and ids.dtype == torch.int64
    assert ids.min() >= 0 and ids.max() < model.vocab[target]
    conditional = queried[::2]            # each step: conditional, then unconditional pass
    assert len(queried) == 2 * len(schedule)
    if scheme == "roar":
        assert conditional == [s.tokens for s in schedule]
    else:                                 # MaskGIT queries every position still open
        left = np.cumsum([0] + [s.tokens for s in schedule])[:-1]
        assert conditional == [model.num_tokens[target] - int(k) for k in left]


def test_decoding_is_seeded_and_guidance_changes_the_result() -> None:
    model = tiny().eval()
    inputs = {"rgb": random_tokens(model, 2)["rgb"]}
    steps = [{"target": "gaze", "tokens": 30, "temperature": 1.0, "cfg_scale": 1.0,
              "top_p": 1.0}]
    a = decode(model, inputs, steps, torch.Generator().manual_seed(1))["gaze"]
    b = decode(model, inputs, steps, torch.Generator().manual_seed(1))["gaze"]
    c = decode(model, inputs, [{**steps[0], "cfg_scale": 4.0}],
               torch.Generator().manual_seed(1))["gaze"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    short = decode(model, inputs, [{"target": "gaze", "tokens": 5}])["gaze"]
    assert short.shape == (2, 30)         # the rest is filled by one more step


@pytest.mark.parametrize("scheme", ["roar", "maskgit"])
def test_decoding_with_probs_draws_the_same_ids_and_gives_each_position_a_distribution(
        scheme: str) -> None:
    from egosim.egom2p.model.decoding import decode_with_probs

    model = tiny().eval()
    inputs = {"rgb": random_tokens(model, 2)["rgb"]}
    for target in ("gaze", "depth"):   # one (B, N, 256) head; 6 factorized FSQ digits
        steps = default_schedule("gaze" if target == "gaze" else "depth", model.num_tokens,
                                 scheme=scheme, temperature=0.0, cfg_scale=1.0)
        plain = decode(model, inputs, steps, torch.Generator().manual_seed(3))[target]
        ids, probs = decode_with_probs(model, inputs, steps, torch.Generator().manual_seed(3))
        assert torch.equal(ids[target], plain)
        factors = probs[target]
        want = [model.vocab[target]] if target == "gaze" else [8, 8, 8, 5, 5, 5]
        assert [f.shape[-1] for f in factors] == want
        for f in factors:
            assert f.shape[:2] == plain.shape
            assert torch.allclose(f.sum(-1), torch.ones(plain.shape), atol=1e-5)
        # greedy ids are each position's most probable id (per digit when factorized)
        if target == "gaze":
            assert torch.equal(factors[0].argmax(-1), plain)
        else:
            basis = torch.cumprod(torch.tensor([1, 8, 8, 8, 5, 5]), 0)
            digits = [(plain // b) % f.shape[-1] for b, f in zip(basis, factors, strict=True)]
            assert all(torch.equal(f.argmax(-1), d) for f, d in zip(factors, digits,
                                                                     strict=True))


def test_conditional_probs_are_the_unguided_distributions_and_leave_the_ids_alone() -> None:
    from egosim.egom2p.model.decoding import decode_with_probs

    model = tiny().eval()
    inputs = {"rgb": random_tokens(model, 2)["rgb"]}
    n = model.num_tokens["gaze"]
    one = [{"target": "gaze", "tokens": n, "temperature": 0.0, "cfg_scale": 2.0}]
    ids_g, guided = decode_with_probs(model, inputs, one, torch.Generator().manual_seed(3))
    ids_c, cond = decode_with_probs(model, inputs, one, torch.Generator().manual_seed(3),
                                    guided_probs=False)
    assert torch.equal(ids_g["gaze"], ids_c["gaze"])
    assert not torch.allclose(guided["gaze"][0], cond["gaze"][0])
    # one step over every position: the conditional distribution is what guidance 1 gives
    unguided = [{**one[0], "cfg_scale": 1.0}]
    _, plain = decode_with_probs(model, inputs, unguided, torch.Generator().manual_seed(3))
    assert torch.allclose(cond["gaze"][0], plain["gaze"][0], atol=1e-6)


# -- training -----------------------------------------------------------------------------

def _state(path: Path) -> dict:
    return read_checkpoint(path)


def test_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path: Path) -> None:
    straight = run(tiny_cfg(tmp_path / "a"))
    run(tiny_cfg(tmp_path / "b", steps=3))
    ckpts = sorted((tmp_path / "b" / "checkpoints").glob("step_*.pt"))
    assert ckpts[-1].name == "step_0000003.pt"
    # a half-written newer checkpoint is moved aside and the step-3 one is used
    (tmp_path / "b" / "checkpoints" / "step_0000004.pt").write_bytes(b"truncated")
    resumed = run(tiny_cfg(tmp_path / "b"))
    assert resumed["steps_this_run"] == 3 and straight["steps"] == resumed["steps"] == 6
    assert resumed["params_sha1"] == straight["params_sha1"]
    a = _state(tmp_path / "a" / "checkpoints" / "step_0000006.pt")
    b = _state(tmp_path / "b" / "checkpoints" / "step_0000006.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
    assert (tmp_path / "b" / "checkpoints" / "step_0000004.pt.bad").exists()


@pytest.mark.slow
def test_init_starts_a_run_from_another_runs_weights(tmp_path: Path) -> None:
    from egosim.egom2p.model.train import build_model, init_weights, params_digest

    first = run(tiny_cfg(tmp_path / "a", steps=2))
    ckpt = tmp_path / "a" / "checkpoints" / "step_0000002.pt"
    cfg = tiny_cfg(tmp_path / "b", steps=1, init=str(ckpt), seed=1)
    model = build_model(cfg)
    assert params_digest(model) != first["params_sha1"]
    init_weights(model, ckpt)
    assert params_digest(model) == first["params_sha1"]
    # a fine-tuning run starts there: one step from those weights, not from seed 1's
    tuned = run(cfg)
    fresh = run(tiny_cfg(tmp_path / "c", steps=1, seed=1))
    assert tuned["steps"] == 1 and tuned["params_sha1"] != fresh["params_sha1"]
    with pytest.raises(FileNotFoundError, match="init"):
        init_weights(model, tmp_path / "missing.pt")
    other = EgoM2P(Architecture(**SIZES["tiny"], video_size=(32, 32)))
    with pytest.raises(ValueError, match="init"):
        init_weights(other, ckpt)
    # the shipped export, written before the ordinal_head field, fine-tunes the CPU config
    from egosim.egom2p.model.inference import checkpoint_dir

    small = build_model(load_config("egom2p_model", [], schema=TrainModelConfig))
    init_weights(small, checkpoint_dir() / "small.pt")
    shipped = read_checkpoint(checkpoint_dir() / "small.pt")["state_dict"]
    assert torch.equal(small.state_dict()["dec_norm.weight"],
                       shipped["dec_norm.weight"].float())


def test_a_run_writes_its_summary_and_an_export_load_model_reads(tmp_path: Path) -> None:
    from egosim.egom2p.model.inference import load_model

    summary = run(tiny_cfg(tmp_path, export_dir=str(tmp_path / "export"), tensorboard=True))
    for key in ("steps", "wall_s", "clips_per_s", "data_wait_fraction", "final_losses"):
        assert key in summary
    assert set(summary["final_losses"]) == {"total", *NUM}
    assert 0.0 <= summary["data_wait_fraction"] < 1.0
    assert (tmp_path / "summary.json").is_file() and (tmp_path / "tensorboard").is_dir()
    model = load_model(tmp_path / "export" / "tiny.pt")
    trained = _state(tmp_path / "checkpoints" / "step_0000006.pt")["state_dict"]  # final step
    loaded = model.state_dict()
    assert set(loaded) == set(trained)
    for k, v in trained.items():  # the export keeps them as float16, loaded as float32
        want = v.half().float() if v.is_floating_point() else v
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], want), k
    stored = read_checkpoint(tmp_path / "export" / "tiny.pt")["state_dict"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    card = (tmp_path / "export" / "tiny.md").read_text()
    assert "tiny" in card
    # the camera's loss is to its ordinal-smoothed target (the default): the card says so
    assert "ordinal-smoothed target (std 4 ids; floor 2.81, uniform 5.545)" in card
    with pytest.raises(FileNotFoundError, match="egosim egom2p train"):
        load_model(tmp_path / "missing.pt")


def test_a_depth_specialist_learns_depth_only_and_predict_decodes_rgb_to_depth(tmp_path: Path
                                                                             ) -> None:
    from egosim.egom2p import load_model, predict
    from egosim.egom2p.tokenizers.clip_data import synthetic_clips

    cfg = tiny_cfg(tmp_path, steps=3, video_size=32, modalities=["rgb", "depth"],
                   roles={"rgb": "input", "depth": "target"},
                   export_dir=str(tmp_path / "export"))
    summary = run(cfg)
    assert set(summary["final_losses"]) == {"total", "depth"}   # rgb is never a target
    model = load_model(tmp_path / "export" / "tiny.pt")
    assert model.roles == {"rgb": "input", "depth": "target"}
    assert set(model.num_tokens) == {"rgb", "depth"}
    clips = synthetic_clips(1, 32, 32, seed=0)
    clip = {k: v[0] for k, v in clips.arrays.items()}
    passes: list[int] = []
    forward = model.forward

    def spy(md):  # count the passes and the positions each queries
        passes.append(int((~md["depth"]["target_mask"][0]).sum()))
        return forward(md)

    model.forward = spy  # type: ignore[method-assign]
    depth = predict(model, clip, "depth")
    assert depth.shape == (16, 32, 32) and depth.dtype == np.float32 and (depth >= 0).all()
    assert passes == [model.num_tokens["depth"]]   # one pass, every position, no guidance
    with pytest.raises(ValueError, match="camera"):
        predict(model, clip, "camera")            # no camera modality
    with pytest.raises(ValueError, match="target only"):
        predict(model, clip, "rgb")               # depth was never an input


def test_the_replay_schedule_needs_one_new_clip_per_reuse_clips_consumed(tmp_path: Path
                                                                        ) -> None:
    cfg = tiny_cfg(tmp_path, video_size=32, batch_size=4, data={
        "source": "stream", "replay_clips": 8, "replay_reuse": 4.0},
        stream={"num_workers": 0, "clip_overrides": TINY_STREAM})
    model = tiny(video=32)
    src = ReplaySource(cfg, model)                 # nothing is simulated before batch()
    assert [src.needed(s) for s in (0, 1, 3, 4, 100)] == [4, 5, 7, 8, 104]
    assert src.state(5)["replay_mode"] == "scheduled" and src.segment == 0
    free_cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"replay_reuse": 0})})
    free = ReplaySource(free_cfg, model)
    assert free.needed(100) == 4 and free.segment == 0
    again = ReplaySource(free_cfg, model, resume=free.state(7))   # a resume: a new segment
    assert again.segment == 1 and again.seed == free.seed + 1_000_000
    for s in (src, free, again):
        s.close()


TINY_STREAM = {"worlds": 1, "humans": [1, 1], "scene.pool_size": 1, "clips_per_episode": 1,
               "controller": "egosim.agents.controllers:prior_walker"}


def _stream_cfg(tmp: Path, steps: int, **data: object) -> TrainModelConfig:
    return tiny_cfg(tmp, steps=steps, video_size=32, batch_size=2, input_budget=32,
                    target_budget=32, checkpoint_every=1000, tensorboard=True, log_every=5,
                    data={"source": "stream", **data},
                    stream={"num_workers": 0, "clip_overrides": TINY_STREAM},
                    optim={"warmup_steps": 2, "decay_steps": 40})


@pytest.mark.slow
def test_replay_lowers_the_data_wait_and_the_summary_holds_the_rates(tmp_path: Path) -> None:
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = run(_stream_cfg(tmp_path / "plain", 30))
    free = run(_stream_cfg(tmp_path / "free", 30, replay_clips=16, replay_reuse=0.0))
    assert "replay" not in plain
    assert free["data_wait_fraction"] < plain["data_wait_fraction"], (free, plain)
    on_disk = json.loads((tmp_path / "free" / "summary.json").read_text())
    rep = on_disk["replay"]
    assert rep["mode"] == "free" and rep["consumed_clips"] == 60
    assert rep["produced_clips_per_s"] > 0 and rep["consumed_clips_per_s"] > 0
    assert rep["reuse_factor"] == pytest.approx(60 / rep["delivered_clips"])
    assert on_disk["stream_clips_per_s"] > 0 and on_disk["clips_per_s"] > 0
    events = EventAccumulator(str(tmp_path / "free" / "tensorboard"))
    events.Reload()
    assert {"replay/produced_clips_per_s", "replay/reuse_factor", "replay/buffer_clips",
            "data_wait_fraction", "clips_per_s"} <= set(events.Tags()["scalars"])


@pytest.mark.slow
def test_scheduled_replay_resumes_bit_for_bit_and_reuses_each_clip_as_set(tmp_path: Path
                                                                          ) -> None:
    data = {"replay_clips": 4, "replay_reuse": 3.0}
    straight = run(_stream_cfg(tmp_path / "a", 9, **data))
    part = _stream_cfg(tmp_path / "b", 9, **data)
    run(part.model_copy(update={"steps": 5}))
    resumed = run(part)
    assert resumed["steps_this_run"] == 4
    assert resumed["params_sha1"] == straight["params_sha1"]
    rep = straight["replay"]
    assert rep["mode"] == "scheduled" and rep["consumed_clips"] == 18
    assert rep["delivered_clips"] >= 2 + (8 * 2) // 3          # what the last step needed
    # the resumed run remade and dropped the clips before its first window
    assert resumed["replay"]["remade_clips"] == 2 + (5 * 2) // 3 - 4


_DDP_SCRIPT = """
import json, os, sys, torch
torch.set_num_threads(1)
from egosim.egom2p.model_config import TrainModelConfig
from egosim.egom2p.model.train import run
out = sys.argv[1]
cfg = TrainModelConfig.model_validate({
    "size": "tiny", "threads": 1, "steps": 2, "batch_size": 2, "input_budget": 32,
    "target_budget": 32, "data": {"source": "synthetic"}, "output_dir": out,
    "progress": False, "tensorboard": False, "device": "cpu"})
s = run(cfg)
with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as fh:
    json.dump(s, fh)
"""


@pytest.mark.slow
def test_two_gloo_ddp_processes_end_with_equal_params(tmp_path: Path) -> None:
    import json

    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(_DDP_SCRIPT))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                           "2", "--master_port", "29731", str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2 and r0["steps"] == 2
    assert r0["params_sha1"] == r1["params_sha1"]
    alone = run(tiny_cfg(tmp_path / "single", steps=2, batch_size=2, input_budget=32,
                         target_budget=32, optim={}))
    assert alone["params_sha1"] != r0["params_sha1"]   # rank 1's batch mattered


# -- configs ------------------------------------------------------------------------------

@pytest.mark.parametrize("override, key", [
    ("input_budget=5000", "input_budget"),
    ("optim.min_lr=0.5", "min_lr"),
    ("alphas=[0.0]", "alphas"),
    ("size=huge", "size"),
    ("stream.drop_depth_fraction=1.5", "drop_depth_fraction"),
    ("device=tpu", "device"),
    ("video_size=30", "video_size"),
    ("modalities=[rgb, sound]", "modalities"),
    ("batchsize=4", "batchsize"),
    ("roles.rgb=output", "roles.rgb"),
    ("roles.sound=input", "roles"),
    ("roles={rgb: target, depth: target, camera: target, gaze: target}", "roles"),
    ("data.replay_clips=4", "data.replay_clips"),
    ("data.replay_reuse=-1", "replay_reuse"),
    ("ordinal_smoothing.sound=2", "ordinal_smoothing.sound"),
    ("ordinal_smoothing.camera=-1", "ordinal_smoothing.camera"),
    ("position_scale=0", "position_scale"),
    ("position_table=rope", "position_table"),
    ("token_weighting.sound=0.5", "token_weighting.sound"),
    ("token_weighting.camera=2", "token_weighting.camera"),
    ("ordinal_head=[rgb]", "ordinal_head"),
    ("ordinal_head=[sound]", "ordinal_head"),
])
def test_a_bad_config_names_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config("egom2p_model", [override], schema=TrainModelConfig)


def test_ordinal_smoothing_needs_a_tokenizer_with_ordinal_ids() -> None:
    from egosim.egom2p.model.train import check_ordinal_smoothing

    cfg = load_config("egom2p_model", ["data.source=cache", "ordinal_smoothing.gaze=2"],
                      schema=TrainModelConfig)
    with pytest.raises(ValueError, match="ordinal_smoothing.gaze"):
        check_ordinal_smoothing(cfg)
    with pytest.raises(ValueError, match="ordinal_head"):
        check_ordinal_smoothing(load_config("egom2p_model", ["data.source=cache",
                                                             "ordinal_head=[gaze]"],
                                            schema=TrainModelConfig))
    # the shipped camera code's ids are ordinal bins: accepted
    check_ordinal_smoothing(load_config("egom2p_model", ["data.source=cache",
                                                         "ordinal_head=[camera]"],
                                        schema=TrainModelConfig))


def test_token_weighting_needs_a_tokenizer_whose_tokens_are_code_coefficients() -> None:
    from egosim.egom2p.model.train import loss_token_weights

    cfg = load_config("egom2p_model", ["data.source=cache", "token_weighting.gaze=0.5"],
                      schema=TrainModelConfig)
    with pytest.raises(ValueError, match="token_weighting.gaze"):
        loss_token_weights(cfg)
    # the shipped camera code's tokens are PCA coefficients, leading ones first
    cfg = load_config("egom2p_model", ["data.source=cache", "token_weighting.camera=0.5"],
                      schema=TrainModelConfig)
    w = loss_token_weights(cfg)["camera"]
    assert w.shape == (30,)
    assert abs(float(w.mean()) - 1.0) < 1e-5
    assert float(w[0]) > float(w[5]) > 0.5 - 1e-6 and float(w.min()) >= 0.5 - 1e-6
    assert loss_token_weights(load_config("egom2p_model", ["data.source=cache"],
                                          schema=TrainModelConfig)) == {}


def test_a_role_other_than_both_needs_a_learned_modality() -> None:
    with pytest.raises(ConfigError, match="roles.camera"):
        load_config("egom2p_depth_specialist", ["roles.camera=target"],
                    schema=TrainModelConfig)
    with pytest.raises(ConfigError, match="data.replay_clips"):
        load_config("egom2p_model", ["data.source=cache", "data.replay_clips=64"],
                    schema=TrainModelConfig)


def test_the_depth_specialist_config_differs_from_the_model_config_only_as_its_header_says(
) -> None:
    from egosim.config import dump_config

    spec = load_config("egom2p_depth_specialist", [], schema=TrainModelConfig)
    base = load_config("egom2p_model", [], schema=TrainModelConfig)
    assert spec.modalities == ["rgb", "depth"] and spec.learned_roles() == {
        "rgb": "input", "depth": "target"}
    assert spec.output_dir == "runs/egom2p/depth_specialist"
    a, b = dump_config(spec, mode="json"), dump_config(base, mode="json")
    assert {k for k in a if a[k] != b[k]} == {"modalities", "roles", "output_dir"}


def test_the_shipped_configs_load() -> None:
    small = load_config("egom2p_model", [], schema=TrainModelConfig)
    base = load_config("egom2p_model_base", [], schema=TrainModelConfig)
    assert small.size == "small" and base.size == "base"
    assert (base.input_budget, base.target_budget, base.bf16) == (2048, 2048, True)


# -- use ----------------------------------------------------------------------------------

def _check_predictions(model: EgoM2P, clip: dict, size: int) -> None:
    from egosim.egom2p.model.inference import predict, predict_batch

    cam = predict(model, clip, "camera")
    assert cam.shape == (60, 4, 4) and cam.dtype == np.float64
    assert np.allclose(cam[0], np.eye(4), atol=1e-9)
    assert np.allclose(cam[:, :3, :3] @ cam[:, :3, :3].transpose(0, 2, 1), np.eye(3),
                       atol=1e-5)
    rgbd = predict(model, clip, "camera_rgbd")
    assert rgbd.shape == (60, 4, 4) and rgbd.dtype == np.float64
    depth = predict(model, clip, "depth")
    assert depth.shape == (16, size, size) and depth.dtype == np.float32
    assert (depth >= 0).all()
    gaze = predict(model, clip, "gaze")
    assert gaze.shape == (60, 2) and gaze.dtype == np.float32 and np.abs(gaze).max() <= 1
    rgb = predict(model, clip, "rgb")
    assert rgb.shape == (16, size, size, 3) and rgb.dtype == np.uint8
    many = predict_batch(model, [clip, clip, clip], "gaze", batch_size=2)
    assert len(many) == 3 and all(g.shape == (60, 2) for g in many)
    with pytest.raises(KeyError, match="unknown task"):
        predict(model, clip, "semantic")
    # the decoded ids instead of the posterior mean: same shapes, another estimate
    sampled = predict(model, clip, "gaze", estimate="sample")
    assert sampled.shape == (60, 2) and not np.array_equal(sampled, gaze)
    assert predict(model, clip, "depth", estimate="sample").shape == (16, size, size)
    guided = predict(model, clip, "depth", estimate="guided_mean")
    assert guided.shape == (16, size, size) and not np.array_equal(guided, depth)
    with pytest.raises(ValueError, match="estimate"):
        predict(model, clip, "gaze", estimate="median")


def test_predict_gives_the_documented_shapes_on_a_clip_of_the_layout() -> None:
    from egosim.egom2p.tokenizers.clip_data import synthetic_clips

    clips = synthetic_clips(1, 64, 64, seed=0)
    clip = {k: v[0] for k, v in clips.arrays.items()}
    _check_predictions(tiny().eval(), clip, 64)


@pytest.mark.slow
def test_predict_gives_the_documented_shapes_on_a_real_stream_clip() -> None:
    from torch.utils.data import DataLoader

    from egosim.egom2p.stream import SimStream

    stream = SimStream(overrides={"video_size": 32, "worlds": 1, "humans": [1, 1],
                                  "scene.pool_size": 1, "clips_per_episode": 1,
                                  "controller": "egosim.agents.controllers:prior_walker"},
                       seed=3)
    it = iter(DataLoader(stream, batch_size=None, num_workers=0))
    clip = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in next(it).items()}
    del it
    _check_predictions(tiny(video=32).eval(), clip, 32)
