"""Can the EgoM2P architecture learn to read its inputs, on synthetic tokens?

A diagnostic for the camera and depth tasks of the EgoM2P model: each run trains a fresh
model of the real architecture (:class:`~egosim.egom2p.model.transformer.EgoM2P`, its own
loss path, the shipped config's ordinal smoothing of the camera) on endless random batches
whose targets are exact functions of the inputs, so that data, tokenizers and rendering
are out of the question: a target the model does not learn here is one it cannot learn in
that many steps from any data. Every input token is given (320 RGB tokens), every target
token is asked for. ``d0(p)`` is the first FSQ digit (0-7) of the RGB token in slot ``p``.

Runs (``--tasks``):

- ``camera``: RGB ids drawn uniformly; camera token 0 = ``copy`` (``32 d0(0) + 16``, one
  input slot to one output token), token 1 = ``pooled`` (the normal-quantile bin of the
  standardised sum of ``d0`` over the 320 slots: what an even average over the tokens
  gives), token 2 = ``signed`` (the same with a fixed random sign per slot: a
  position-dependent linear map, the kind a ridge probe fits to the real codes), tokens
  3-29 uniform noise;
- ``camera_redundant``: the same targets, but the 320 RGB tokens of a sample are one id
  (the information sits in every token: no retrieval, no aggregation needed);
- ``depth_copy``: RGB ids drawn uniformly; the depth token in grid slot ``p`` has the
  first digit ``d0(p)`` (the token at the same place and time), its other digits and the
  two range tokens uniform noise (the structure of the depth task: aligned, local).

For each target it prints the cross-entropy over the last fifth of the steps beside the
marginal's (the best prediction that ignores the input) and the floor (the entropy of the
target: a perfect prediction), and the share of that gap learnt, ``(marginal - loss) /
(marginal - floor)``. Depth is scored on its first digit alone (marginal ``ln 8``, floor 0).

    python benchmarks/bench_readout.py [--size tiny] [--steps 600] [--position-scales 0.1 1.0]
        [--position-tables sincos fitted learned] [--tasks camera camera_redundant depth_copy]
        [--lr 0.001] [--threads 2] [--digit-std STD] [--depths E D] [--first-digit-loss]
    python benchmarks/bench_readout.py --minimal [--steps 600]

``--minimal`` runs the ``depth_copy`` retrieval on a minimal network instead (slot
embeddings, 0 or 2 of the model's encoder blocks, one cross-attention from a query per
slot, tied digit logits), under the position tables and token embedding scales of
``MINIMAL_RUNS``: what the model's own parts need to learn the copy.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from egosim.egom2p.modalities import video_positions
from egosim.egom2p.model.transformer import (
    POSITION_TABLES,
    SIZES,
    Architecture,
    Attention,
    EgoM2P,
    EncoderBlock,
    FactorizedTokenEmbedding,
    LayerNorm,
    ordinal_targets,
)

RGB_TOKENS = 320
CAMERA_TOKENS = 30
CAMERA_VOCAB = 256
SMOOTHING = 4.0  # the shipped config's ordinal_smoothing.camera (ids)
TASKS = ("camera", "camera_redundant", "depth_copy")
CAMERA_TARGETS = ("copy", "pooled", "signed", "noise")


def _quantile_bin(z: torch.Tensor) -> torch.Tensor:
    """``(B,)`` standard-normal values -> their equiprobable bin in ``[0, 256)``."""
    u = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    return (u * CAMERA_VOCAB).long().clamp(0, CAMERA_VOCAB - 1)


def camera_batch(b: int, g: torch.Generator, sign: torch.Tensor, redundant: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB ids ``(b, 320)`` and camera ids ``(b, 30)`` of the ``camera`` runs (module
    docstring)."""
    ids = torch.randint(0, 64000, (b, RGB_TOKENS), generator=g)
    if redundant:
        ids = ids[:, :1].expand(b, RGB_TOKENS).clone()
    d0 = (ids % 8).float() - 3.5
    sd = math.sqrt((8 ** 2 - 1) / 12) * math.sqrt(RGB_TOKENS)
    cam = torch.randint(0, CAMERA_VOCAB, (b, CAMERA_TOKENS), generator=g)
    cam[:, 0] = (ids[:, 0] % 8) * 32 + 16
    cam[:, 1] = _quantile_bin(d0.sum(1) / sd)
    cam[:, 2] = _quantile_bin((d0 * sign).sum(1) / sd)
    return ids, cam


def depth_batch(b: int, g: torch.Generator, depth_tokens: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB ids ``(b, 320)`` and depth ids ``(b, 322)`` of ``depth_copy``: depth grid slot
    ``p`` (after the range tokens) carries RGB slot ``p``'s first digit."""
    ids = torch.randint(0, 64000, (b, RGB_TOKENS), generator=g)
    depth = torch.randint(0, 64000, (b, depth_tokens), generator=g)
    header = depth_tokens - RGB_TOKENS
    grid = depth[:, header:]
    depth[:, header:] = grid - grid % 8 + ids % 8
    return ids, depth


def _mod_dict(inputs: tuple[str, torch.Tensor], target: tuple[str, torch.Tensor]
              ) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for (name, t), is_input in ((inputs, True), (target, False)):
        full = torch.ones_like(t, dtype=torch.bool)
        out[name] = {"tensor": t, "input_mask": ~full if is_input else full,
                     "target_mask": full if is_input else ~full}
    return out


def camera_reference(g: torch.Generator, sign: torch.Tensor, redundant: bool,
                     n: int = 4096) -> dict[str, tuple[float, float]]:
    """Per camera target: ``(marginal cross-entropy, floor)`` in nats, estimated on ``n``
    samples of the smoothed targets."""
    _, cam = camera_batch(n, g, sign, redundant)
    out = {}
    for k, name in enumerate(CAMERA_TARGETS):
        q = ordinal_targets(cam[:, k], CAMERA_VOCAB, SMOOTHING)
        marginal = q.mean(0)
        ce = -(q * marginal.clamp_min(1e-12).log()).sum(1).mean()
        floor = -(q * q.clamp_min(1e-12).log()).sum(1).mean()
        out[name] = (float(ce), float(floor))
    return out


def run(task: str, size: str, position_scale: float, steps: int, lr: float,
        batch: int = 16, seed: int = 0, position_table: str = "sincos",
        digit_std: float | None = None, depths: tuple[int, int] | None = None,
        first_digit_loss: bool = False) -> dict[str, tuple[float, float, float]]:
    """Train one fresh model on ``task``; returns target -> ``(loss over the last fifth of
    the steps, marginal, floor)`` in nats. ``digit_std``: re-initialise the video tokens'
    per-digit embeddings at this std (None: the model's own, ``0.02 / sqrt(6)``);
    ``depths``: (encoder, decoder) blocks instead of the size's; ``first_digit_loss``
    (``depth_copy``): train on the first digit's cross-entropy alone, not on all six
    digits and the range tokens (whose targets are noise)."""
    torch.manual_seed(seed)
    mods = ("rgb", "depth") if task == "depth_copy" else ("rgb", "camera")
    shape = dict(SIZES[size])
    if depths is not None:
        shape["encoder_depth"], shape["decoder_depth"] = depths
    model = EgoM2P(Architecture(**shape, modalities=mods, video_size=(64, 64),
                                position_scale=position_scale,
                                position_table=position_table))
    if digit_std is not None:
        for mod in model.modules():
            if isinstance(mod, FactorizedTokenEmbedding):
                nn.init.normal_(mod.digits.weight, std=digit_std)
    g = torch.Generator().manual_seed(seed + 1)
    sign = (torch.randint(0, 2, (RGB_TOKENS,), generator=g) * 2 - 1).float()
    redundant = task == "camera_redundant"
    depth_tokens = model.num_tokens.get("depth", 0)
    if task == "depth_copy":
        ref = {"first digit": (math.log(8), 0.0)}
    else:
        ref = camera_reference(torch.Generator().manual_seed(seed + 2), sign, redundant)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    warmup = max(1, steps // 12)
    tail: list[torch.Tensor] = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / warmup)
        if task == "depth_copy":
            ids, depth = depth_batch(batch, g, depth_tokens)
            md = _mod_dict(("rgb", ids), ("depth", depth))
            hidden, idx, _ = model(md)["depth"]
            flat = hidden.reshape(-1, hidden.shape[-1])
            loss = model.token_nll("depth", flat, depth.reshape(-1)).mean()
            header = depth_tokens - RGB_TOKENS
            first = model.factor_logits("depth", hidden[:, header:])[0]
            track = F.cross_entropy(first.reshape(-1, 8), (ids % 8).reshape(-1))[None]
            if first_digit_loss:
                loss = track[0]
        else:
            ids, cam = camera_batch(batch, g, sign, redundant)
            md = _mod_dict(("rgb", ids), ("camera", cam))
            hidden, idx, _ = model(md)["camera"]
            nll = model.token_nll("camera", hidden.reshape(-1, hidden.shape[-1]),
                                  cam.reshape(-1), SMOOTHING).reshape(batch, CAMERA_TOKENS)
            loss = nll.mean()
            track = torch.cat([nll[:, :3].mean(0), nll[:, 3:].mean()[None]])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= steps - max(1, steps // 5):
            tail.append(track.detach())
    final = torch.stack(tail).mean(0).tolist()
    return {name: (final[k], *ref[name]) for k, name in enumerate(ref)}


MINIMAL_RUNS: tuple[tuple[int, str, float, str], ...] = (
    (0, "learned", 0.02, "two"), (0, "sincos", 0.02, "two"), (2, "learned", 0.02, "two"),
    (2, "learned_shared", 0.02, "two"), (2, "sincos", 0.02, "two"),
    (2, "learned", 0.008, "two"), (2, "learned", 0.05, "two"),
    (0, "learned", 0.05, "digits"), (2, "learned", 0.05, "digits"))
"""``--minimal`` runs: (encoder blocks, positions, token embedding std, embedding)."""


def minimal_copy(encoder_blocks: int, positions: str, embed_std: float, steps: int,
                 lr: float, embedding: str = "two", batch: int = 16, seed: int = 0,
                 dim: int = 64) -> float:
    """The ``depth_copy`` retrieval on a minimal network: RGB ids as in ``depth_copy``, each
    slot embedded as ``E0[d0] + E1[id // 8] + P[p]`` (``embedding="two"``: ``E0``, ``E1``
    tables at std ``embed_std``) or as the model's :class:`FactorizedTokenEmbedding`, the
    sum of its 6 digit embeddings (``"digits"``, each at std ``embed_std``; ``E0`` is then
    the first digit's table), ``encoder_blocks`` of the model's own :class:`EncoderBlock`, then one
    cross-attention (the model's :class:`Attention`) from a query per slot, ``LN(Q[p])``,
    and tied logits ``LN(out) @ E0.T`` against ``d0(p)``. ``positions``: ``"learned"``
    (``P`` and ``Q`` separate random tables, RMS 0.07), ``"learned_shared"`` (``Q = P``)
    or ``"sincos"`` (the model's fixed 3-D sin-cos table x 0.1 for both). Returns the
    digit cross-entropy (nats; ``ln 8`` = 2.079 is chance) over the last fifth of the
    steps."""
    torch.manual_seed(seed)
    e0, e1 = nn.Embedding(8, dim), nn.Embedding(8000, dim)
    factorized = FactorizedTokenEmbedding((8, 8, 8, 5, 5, 5), dim)
    for table in (e0.weight, e1.weight, factorized.digits.weight):
        nn.init.normal_(table, std=embed_std)
    params: list[torch.Tensor] = (list(factorized.parameters()) if embedding == "digits"
                                  else [*e0.parameters(), *e1.parameters()])
    if positions == "sincos":
        pos = qpos = video_positions(dim, (5, 8, 8)) * 0.1
    else:
        pos = nn.Parameter(torch.randn(RGB_TOKENS, dim) * 0.07)
        qpos = pos if positions == "learned_shared" else nn.Parameter(
            torch.randn(RGB_TOKENS, dim) * 0.07)
        params += [pos] + ([qpos] if qpos is not pos else [])
    hidden = int(round(4 * dim * 2 / 3 / 8)) * 8
    blocks = nn.ModuleList([EncoderBlock(dim, 2, hidden) for _ in range(encoder_blocks)])
    cross = Attention(dim, 2, cross=True)
    norms = nn.ModuleList([LayerNorm(dim) for _ in range(3)])
    for mod in (*blocks.modules(), *cross.modules()):
        if isinstance(mod, nn.Linear):
            nn.init.xavier_uniform_(mod.weight)
    for part in (blocks, cross, norms):
        params += list(part.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(seed + 1)
    full = torch.ones(batch, RGB_TOKENS, RGB_TOKENS, dtype=torch.bool)
    tail = []
    for step in range(steps):
        ids = torch.randint(0, 64000, (batch, RGB_TOKENS), generator=g)
        d0 = ids % 8
        if embedding == "digits":
            first_table = factorized.digits.weight[:8]  # the first digit's table
            x = factorized(ids) + pos
        else:
            first_table = e0.weight
            x = e0(d0) + e1(ids // 8) + pos
        for blk in blocks:
            x = blk(x, full)
        q = norms[0](qpos.expand(batch, -1, -1))
        out = cross(q, full, norms[1](x))
        logits = norms[2](out) @ first_table.t()
        loss = F.cross_entropy(logits.reshape(-1, 8), d0.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= steps - max(1, steps // 5):
            tail.append(loss.item())
    return sum(tail) / len(tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny", choices=sorted(SIZES))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--position-scales", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--position-tables", nargs="+", default=["sincos"],
                   choices=POSITION_TABLES)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--digit-std", type=float, default=None,
                   help="re-initialise the video tokens' per-digit embeddings at this std "
                   "(default: the model's 0.02 / sqrt(6) = 0.008)")
    p.add_argument("--depths", type=int, nargs=2, default=None, metavar=("ENCODER", "DECODER"),
                   help="encoder and decoder blocks instead of the size's")
    p.add_argument("--first-digit-loss", action="store_true",
                   help="depth_copy: train on the first digit's cross-entropy alone")
    p.add_argument("--minimal", action="store_true",
                   help="run depth_copy's retrieval on the minimal networks of MINIMAL_RUNS "
                   "instead of the model")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.minimal:
        print(f"minimal cross-attention copy, {args.steps} steps of 16 samples, lr {args.lr}, "
              f"{args.threads} threads; digit cross-entropy over the last fifth of the steps "
              "(chance 2.079)")
        print("| encoder blocks | positions | embedding | std | loss | learnt | seconds |")
        print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
        for blocks, positions, std, embedding in MINIMAL_RUNS:
            t0 = time.perf_counter()
            loss = minimal_copy(blocks, positions, std, args.steps, args.lr, embedding)
            share = (math.log(8) - loss) / math.log(8)
            print(f"| {blocks} | {positions} | {embedding} | {std:g} | {loss:.3f} | "
                  f"{100 * share:.0f} % | {time.perf_counter() - t0:.0f} |", flush=True)
        return
    print(f"size {args.size}, {args.steps} steps of 16 samples, lr {args.lr}, "
          f"{args.threads} threads; cross-entropy in nats over the last fifth of the steps")
    print("| run | position table | scale | target | loss | marginal | floor | learnt "
          "| seconds |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for task in args.tasks:
        for table in args.position_tables:
            for scale in args.position_scales:
                t0 = time.perf_counter()
                res = run(task, args.size, scale, args.steps, args.lr, position_table=table,
                          digit_std=args.digit_std,
                          depths=tuple(args.depths) if args.depths else None,
                          first_digit_loss=args.first_digit_loss)
                sec = time.perf_counter() - t0
                for name, (loss, marginal, floor) in res.items():
                    share = (marginal - loss) / max(marginal - floor, 1e-9)
                    print(f"| {task} | {table} | {scale:g} | {name} | {loss:.3f} | "
                          f"{marginal:.3f} | {floor:.3f} | {100 * share:.0f} % | {sec:.0f} |",
                          flush=True)


if __name__ == "__main__":
    main()
