"""The EgoM2P network: a 4M-style masked encoder-decoder over the tokens of every modality.

Input is 4M's *mod_dict*: ``{modality: {"tensor": (B, N) int64 ids, "input_mask": (B, N)
bool, "target_mask": (B, N) bool, "decoder_attention_mask": (B, N) bool (optional)}}``
where **True means excluded**: the encoder sees the tokens whose ``input_mask`` is False,
the decoder predicts those whose ``target_mask`` is False. ``N`` is the modality's token
count (:data:`egosim.egom2p.modalities.MODALITY_INFO`); a modality may be left out of the
dict (no input, no target).

Design (every linear layer and norm without bias):

- **Encoder** (``encoder_depth`` blocks): the input tokens of all modalities, each embedded
  by the modality's encoder embedding (``MODALITY_INFO[m].encoder_embedding``: token
  embedding plus fixed sin-cos position) plus a learned modality embedding, concatenated;
  the sin-cos tables are multiplied by ``position_scale`` (default
  :data:`POSITION_SCALE` = 0.1: RMS 0.071 per element against the token embeddings' 0.02 at
  initialisation; at full scale, RMS 0.71, positions outweigh the tokens 35 : 1 and a
  briefly trained model learns the position-only marginals and ignores its inputs; at the
  tokens' own scale, 0.028, it cannot tell the 320 video positions apart quickly enough to
  overfit a batch);
  pre-LayerNorm self-attention over all valid input tokens, SwiGLU MLP; final LayerNorm.
- **Decoder** (``decoder_depth`` blocks): one query per target position, the modality's
  mask token plus position (``decoder_embedding(...).query``) plus a learned decoder
  modality embedding; self-attention only among the queries of the same modality (block
  mask), cross-attention to the encoder output (projected, plus the input tokens'
  positions and decoder modality embeddings, as context), SwiGLU MLP; final LayerNorm.
- **Output**: logits of a modality's targets are tied to its encoder token embedding
  (``hidden @ E.T``). ``video_head="factorized"`` gives the 64,000-code video modalities a
  token embedding that is the sum of one embedding per FSQ digit (levels [8, 8, 8, 5, 5, 5],
  digit ``k`` of id ``i`` is ``(i // basis_k) % L_k``, the tokenizer's mixed-radix order);
  tied logits are then the sum of per-digit logits, so the cross-entropy of a token is the
  sum of 6 small per-digit cross-entropies (exact, never materialising 64,000 logits in
  training; decoding builds the full logits). ``"full"`` keeps the plain 64,000 x width
  table (EgoM2P's; 40x the output cost).
- Attention uses :func:`torch.nn.functional.scaled_dot_product_attention` with boolean
  masks; padded slots (samples with fewer tokens than the batch's most) attend to
  themselves only and are never attended to; a sample without any encoder token gets a
  zero cross-attention update.

Sizes (:data:`SIZES`): ``tiny`` (tests), ``small`` (the shipped CPU model), ``base``
(EgoM2P's 12 + 12 blocks of width 768, 12 heads).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from egosim.egom2p.modalities import (
    MODALITY_INFO,
    VIDEO_CODES,
    ModalityInfo,
    TokenDecoderEmbedding,
    TokenEncoderEmbedding,
    modality_info,
)

__all__ = ["FSQ_LEVELS", "POSITION_SCALE", "POSITION_TABLES", "SIZES", "Architecture", "EgoM2P",
           "FactorizedTokenEmbedding", "ModDict", "OrdinalTokenEmbedding", "SwiGLU",
           "token_weights"]

FSQ_LEVELS: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
"""FSQ levels of the video tokenizers (their product is :data:`VIDEO_CODES`)."""

POSITION_SCALE: float = 0.1
"""Default factor of the fixed sin-cos position tables (a table's RMS is ``1 / sqrt(2)``, so
0.071 after it; the token embeddings start at 0.02). Measured on the tiny size, 1000 steps
of the cache: 1.0 gives a model whose outputs do not depend on its inputs; 0.1 against
0.028 lowers the held-out rgb -> depth loss by 0.41 nats and depth -> rgb by 0.28."""

POSITION_TABLES: tuple[str, ...] = ("sincos", "fitted", "learned")
"""Kinds of position table (:attr:`Architecture.position_table`)."""

ModDict = dict[str, dict[str, torch.Tensor]]
"""4M's mod_dict: modality -> {"tensor", "input_mask", "target_mask", ...} (True = excluded)."""


@dataclass(frozen=True)
class Architecture:
    """Everything that fixes the network's shape (stored in checkpoints).

    Attributes:
        encoder_depth, decoder_depth: blocks of each half.
        dim: width; heads: attention heads (``dim % heads == 0``).
        mlp_ratio: SwiGLU hidden width = ``round(mlp_ratio * dim * 2 / 3)`` (to a multiple
            of 8), the parameter count of a plain ``mlp_ratio`` MLP.
        modalities: the modalities the model knows (keys of ``MODALITY_INFO``).
        video_size: ``(H, W)`` pixels of the video the token grids describe.
        video_head: ``"factorized"`` or ``"full"`` (see the module docstring).
        position_scale: factor of the fixed sin-cos position tables (encoder inputs,
            decoder queries and the decoder's context positions). Checkpoints written
            before the field existed load with 1.0, the factor they were trained with.
        position_table: ``"sincos"`` (4M's fixed tables, temperature 10000), ``"fitted"``
            (fixed sin-cos with temperatures fitted to each grid axis,
            :func:`~egosim.egom2p.modalities.fitted_temperature`) or ``"learned"`` (a
            trained table per modality, shared by its encoder inputs, decoder queries and
            context, initialised at random with the RMS of a sin-cos table, so that its
            slots start nearly orthogonal). All have RMS ``position_scale / sqrt(2)``.
            Checkpoints written before the field load as ``"sincos"``.
        ordinal_head: sequence modalities whose (tied) token embedding is an
            :class:`OrdinalTokenEmbedding` (ordinal ids: the camera's PCA code) instead of
            a plain table; checkpoints written before the field have none.
    """

    encoder_depth: int
    decoder_depth: int
    dim: int
    heads: int
    mlp_ratio: float = 4.0
    modalities: tuple[str, ...] = tuple(MODALITY_INFO)
    video_size: tuple[int, int] = (64, 64)
    video_head: str = "factorized"
    position_scale: float = POSITION_SCALE
    ordinal_head: tuple[str, ...] = ()
    position_table: str = "sincos"

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim must be a multiple of heads, got {self.dim} and {self.heads}")
        if self.video_head not in ("factorized", "full"):
            raise ValueError(f"video_head must be 'factorized' or 'full', got "
                             f"{self.video_head!r}")
        if self.position_table not in POSITION_TABLES:
            raise ValueError(f"position_table must be one of {', '.join(POSITION_TABLES)}, "
                             f"got {self.position_table!r}")
        if not self.position_scale > 0:
            raise ValueError(f"position_scale must be > 0, got {self.position_scale}")
        for m in self.modalities:
            modality_info(m)  # raises KeyError naming the known ones
        for m in self.ordinal_head:
            if m not in self.modalities or modality_info(m).kind == "video":
                raise ValueError(f"ordinal_head: {m!r} must be one of the sequence "
                                 f"modalities of {self.modalities}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (lists for tuples)."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["video_size"] = list(self.video_size)
        d["ordinal_head"] = list(self.ordinal_head)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Architecture:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["modalities"] = tuple(d["modalities"])
        d["video_size"] = tuple(d["video_size"])
        d.setdefault("position_scale", 1.0)  # written before the field: unscaled tables
        d["ordinal_head"] = tuple(d.get("ordinal_head", ()))  # before the field: plain tables
        return cls(**d)


SIZES: dict[str, dict[str, int]] = {
    "tiny": {"encoder_depth": 2, "decoder_depth": 2, "dim": 64, "heads": 2},
    "small": {"encoder_depth": 4, "decoder_depth": 4, "dim": 192, "heads": 4},
    "base": {"encoder_depth": 12, "decoder_depth": 12, "dim": 768, "heads": 12},
}
"""Size name -> depths, width and heads. ``base`` is EgoM2P's."""


class LayerNorm(nn.LayerNorm):
    """LayerNorm with a weight and no bias."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, bias=False)


class SwiGLU(nn.Module):
    """``W2 (silu(W1 x) * W3 x)``, no biases; ``(..., dim) -> (..., dim)``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Attention(nn.Module):
    """Multi-head attention without biases on SDPA; ``mask`` ``(B, Lq, Lk)`` bool, True =
    may attend."""

    def __init__(self, dim: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        self.heads = heads
        self.cross = cross
        if cross:
            self.q = nn.Linear(dim, dim, bias=False)
            self.kv = nn.Linear(dim, 2 * dim, bias=False)
        else:
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        b, lq, d = x.shape
        h = self.heads
        if self.cross:
            assert context is not None
            q = self.q(x).reshape(b, lq, h, d // h).transpose(1, 2)
            kv = self.kv(context).reshape(b, context.shape[1], 2, h, d // h)
            k, v = kv.permute(2, 0, 3, 1, 4)
        else:
            q, k, v = self.qkv(x).reshape(b, lq, 3, h, d // h).permute(2, 0, 3, 1, 4)
        full = bool(mask.all())  # no padding: the unmasked kernel is faster
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if full else mask[:, None])
        return self.proj(out.transpose(1, 2).reshape(b, lq, d))


class EncoderBlock(nn.Module):
    """Pre-norm self-attention + SwiGLU."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = LayerNorm(dim)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-norm self-attention (within a modality), cross-attention, SwiGLU."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm_q = LayerNorm(dim)
        self.norm_ctx = LayerNorm(dim)
        self.cross = Attention(dim, heads, cross=True)
        self.norm2 = LayerNorm(dim)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor, context: torch.Tensor,
                cross_mask: torch.Tensor, has_context: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), self_mask)
        if context.shape[1]:
            upd = self.cross(self.norm_q(x), cross_mask, self.norm_ctx(context))
            x = x + upd * has_context[:, None, None]
        return x + self.mlp(self.norm2(x))


class FactorizedTokenEmbedding(nn.Module):
    """Token embedding of FSQ ids as a sum of per-digit embeddings.

    ``E[i] = sum_k D[offset_k + digit_k(i)]`` with ``digit_k(i) = (i // basis_k) % L_k``.

    Args:
        levels: FSQ levels ``L_k``; the vocabulary is their product.
        dim: width.
    """

    def __init__(self, levels: Sequence[int], dim: int) -> None:
        super().__init__()
        self.levels = tuple(int(v) for v in levels)
        self.num_embeddings = math.prod(self.levels)
        self.digits = nn.Embedding(sum(self.levels), dim)
        nn.init.normal_(self.digits.weight, std=0.02 / math.sqrt(len(self.levels)))
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1]), 0)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("level_t", torch.tensor(self.levels), persistent=False)
        self.register_buffer("offsets", torch.cumsum(torch.tensor((0,) + self.levels[:-1]), 0),
                             persistent=False)

    def digits_of(self, ids: torch.Tensor) -> torch.Tensor:
        """``(...)`` ids -> ``(..., K)`` digits, digit ``k`` in ``[0, L_k)``."""
        return (ids[..., None] // self.basis) % self.level_t

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(...)`` ids -> ``(..., dim)``."""
        return self.digits(self.digits_of(ids) + self.offsets).sum(-2)

    @property
    def weight(self) -> torch.Tensor:
        """The full ``(vocab, dim)`` table (built on use)."""
        return self.forward(torch.arange(self.num_embeddings, device=self.digits.weight.device))

    def digit_logits(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        """``(..., dim)`` -> per-digit logits ``[(..., L_k)]`` (tied to the digit tables)."""
        out = []
        for off, lv in zip(self.offsets.tolist(), self.levels, strict=True):
            out.append(hidden @ self.digits.weight[off:off + lv].t())
        return out

    def full_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` -> ``(..., vocab)`` logits ``sum_k digit_logit_k[digit_k(i)]``."""
        parts = self.digit_logits(hidden)
        lead = hidden.shape[:-1]
        flat = [p.reshape(-1, p.shape[-1]) for p in parts]
        k = len(flat)
        total = flat[0].new_zeros((flat[0].shape[0],) + tuple(reversed(self.levels)))
        for j, p in enumerate(flat):  # digit j is axis k - j (C order: last digit slowest)
            shape = [p.shape[0]] + [1] * k
            shape[k - j] = p.shape[1]
            total = total + p.reshape(shape)
        return total.reshape(*lead, self.num_embeddings)


class OrdinalTokenEmbedding(nn.Module):
    """Token embedding of ordinal ids (sorted bins of one value, the camera's PCA levels):
    a per-id table plus a learned map of smooth features of the id's quantile.

    ``E[i] = T[i] + P^T phi(z_i)``, ``z_i = Phi^-1((i + 0.5) / V)`` the standard-normal
    quantile of bin ``i`` (Lloyd-Max bins of a roughly normal coefficient are close to its
    quantiles), ``phi(z) = [z, (z^2 - 1) / 2, exp(-(z - c_k)^2 / 2 w^2)]`` with 13 centres
    ``c_k`` in [-3, 3], ``w`` = 0.5. Tied logits ``h . E[i] = h . T[i] + (P h) . phi(z_i)``
    are then a smooth curve over the ids plus a per-id term: the linear and quadratic
    features alone give every discretised Gaussian over the coefficient, so moving or
    narrowing the predicted distribution is a change of two numbers of ``P h`` rather than
    of 256 unrelated table rows. ``P`` starts at zero (the plain table at first).

    Args:
        vocab: ``V`` ids.
        dim: width.
    """

    centres = 13

    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.num_embeddings = int(vocab)
        self.table = nn.Parameter(torch.randn(vocab, dim) * 0.02)
        z = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(vocab) + 0.5) / vocab)
        c = torch.linspace(-3.0, 3.0, self.centres)
        feats = torch.cat([z[:, None], ((z ** 2 - 1.0) / 2.0)[:, None],
                           torch.exp(-0.5 * ((z[:, None] - c[None]) / 0.5) ** 2)], 1)
        self.register_buffer("features", feats, persistent=False)
        self.proj = nn.Parameter(torch.zeros(feats.shape[1], dim))

    @property
    def weight(self) -> torch.Tensor:
        """The full ``(vocab, dim)`` table ``T + phi P``."""
        return self.table + self.features @ self.proj

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``(...)`` ids -> ``(..., dim)``."""
        return self.table[ids] + self.features[ids] @ self.proj


def _gather_slots(excluded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Slots of the not-excluded positions: ``(index (B, M), valid (B, M))`` with ``M`` the
    most any sample has; a sample's positions come first in increasing order, padding
    (index 0) after."""
    keep = ~excluded
    counts = keep.sum(1)
    m = int(counts.max()) if keep.numel() else 0
    order = torch.argsort(excluded.to(torch.int8), dim=1, stable=True)[:, :m]
    valid = torch.arange(m, device=excluded.device)[None] < counts[:, None]
    return order, valid


class EgoM2P(nn.Module):
    """The encoder-decoder of the module docstring.

    Args:
        arch: an :class:`Architecture`.

    Attributes:
        infos: modality -> :class:`~egosim.egom2p.modalities.ModalityInfo` at
            ``arch.video_size``.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        d = arch.dim
        hidden = int(round(arch.mlp_ratio * d * 2 / 3 / 8)) * 8
        self.infos: dict[str, ModalityInfo] = {
            m: modality_info(m, *arch.video_size) for m in arch.modalities}
        self.enc_emb = nn.ModuleDict()
        self.dec_emb = nn.ModuleDict()
        for m, info in self.infos.items():
            enc: TokenEncoderEmbedding = info.encoder_embedding(info.vocab_size, d)
            dec: TokenDecoderEmbedding = info.decoder_embedding(info.vocab_size, d)
            if self._factorized(info):
                enc.token = FactorizedTokenEmbedding(FSQ_LEVELS, d)
            elif m in arch.ordinal_head:
                enc.token = OrdinalTokenEmbedding(info.vocab_size, d)
            dec.token = enc.token  # tied: output logits use the input token embedding
            if arch.position_table == "learned":
                # random, so that distinct slots start nearly orthogonal; the RMS of a
                # scaled sin-cos table
                table = torch.randn(info.num_tokens, d) * (arch.position_scale / math.sqrt(2))
                enc.positions = nn.Parameter(table)  # replaces the fixed buffer
                dec.positions = enc.positions
            elif arch.position_table == "fitted":
                table = info.fitted_positions(d) * arch.position_scale
                enc.positions.copy_(table)
                dec.positions.copy_(table)
            else:
                for emb in (enc, dec):
                    emb.positions.mul_(arch.position_scale)
            self.enc_emb[m] = enc
            self.dec_emb[m] = dec
        self.enc_mod = nn.ParameterDict({m: nn.Parameter(torch.randn(d) * 0.02)
                                         for m in self.infos})
        self.dec_mod = nn.ParameterDict({m: nn.Parameter(torch.randn(d) * 0.02)
                                         for m in self.infos})
        self.encoder = nn.ModuleList([EncoderBlock(d, arch.heads, hidden)
                                      for _ in range(arch.encoder_depth)])
        self.enc_norm = LayerNorm(d)
        self.ctx_proj = nn.Linear(d, d, bias=False)
        self.decoder = nn.ModuleList([DecoderBlock(d, arch.heads, hidden)
                                      for _ in range(arch.decoder_depth)])
        self.dec_norm = LayerNorm(d)
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_uniform_(mod.weight)
            del name

    def _factorized(self, info: ModalityInfo) -> bool:
        return (self.arch.video_head == "factorized" and info.kind == "video"
                and info.vocab_size == VIDEO_CODES)

    @property
    def num_tokens(self) -> dict[str, int]:
        """Modality -> tokens of one clip."""
        return {m: info.num_tokens for m, info in self.infos.items()}

    @property
    def vocab(self) -> dict[str, int]:
        """Modality -> vocabulary size."""
        return {m: info.vocab_size for m, info in self.infos.items()}

    def num_parameters(self) -> int:
        """Distinct parameters (tied tables counted once)."""
        return sum(p.numel() for p in self.parameters())

    def _check(self, mod_dict: Mapping[str, Mapping[str, torch.Tensor]]) -> int:
        b = None
        for m, entry in mod_dict.items():
            if m not in self.infos:
                raise KeyError(f"mod_dict modality {m!r} is not one of the model's "
                               f"{', '.join(self.infos)}")
            n = self.infos[m].num_tokens
            for key in ("tensor", "input_mask", "target_mask"):
                if key not in entry:
                    raise KeyError(f"mod_dict[{m!r}] lacks {key!r}")
                t = entry[key]
                if t.ndim != 2 or t.shape[1] != n or (b is not None and t.shape[0] != b):
                    raise ValueError(f"mod_dict[{m!r}][{key!r}] must be (B, {n}), got "
                                     f"{tuple(t.shape)}")
                b = t.shape[0]
        if b is None:
            raise ValueError("mod_dict is empty")
        return b

    # -- encoder ------------------------------------------------------------------------
    def encode(self, mod_dict: Mapping[str, Mapping[str, torch.Tensor]]
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder over the input tokens.

        Returns:
            ``(context (B, L, dim), valid (B, L) bool, ctx_pos (B, L, dim))``: the encoder
            output of every (padded) input slot, which slots are real, and the slots'
            position + decoder modality embeddings (the decoder adds them to its context).
        """
        b = self._check(mod_dict)
        dev = next(self.parameters()).device
        xs, valids, pos = [], [], []
        for m, entry in mod_dict.items():
            idx, valid = _gather_slots(entry["input_mask"].bool())
            if idx.shape[1] == 0:
                continue
            tok = torch.gather(entry["tensor"].long(), 1, idx)
            tok = tok.clamp(0, self.infos[m].vocab_size - 1)
            emb = self.enc_emb[m]
            xs.append(emb(tok, idx) + self.enc_mod[m])
            valids.append(valid)
            pos.append(emb.position(idx) + self.dec_mod[m])
        if not xs:
            d = self.arch.dim
            empty = torch.zeros(b, 0, d, device=dev)
            return empty, torch.zeros(b, 0, dtype=torch.bool, device=dev), empty
        x = torch.cat(xs, 1)
        valid = torch.cat(valids, 1)
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)[None]
        mask = valid[:, None, :] | eye
        for blk in self.encoder:
            x = blk(x, mask)
        return self.enc_norm(x), valid, torch.cat(pos, 1)

    # -- decoder ------------------------------------------------------------------------
    def decode(self, mod_dict: Mapping[str, Mapping[str, torch.Tensor]], context: torch.Tensor,
               ctx_valid: torch.Tensor, ctx_pos: torch.Tensor
               ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Decoder outputs of the target positions.

        Returns:
            modality -> ``(hidden (B, M, dim), index (B, M) slots, valid (B, M))`` for each
            modality with at least one target.
        """
        qs, mods, slots = [], [], {}
        start = 0
        for m, entry in mod_dict.items():
            idx, valid = _gather_slots(entry["target_mask"].bool())
            if idx.shape[1] == 0:
                continue
            q = self.dec_emb[m].query(idx) + self.dec_mod[m]
            dam = entry.get("decoder_attention_mask")
            hidden_key = valid
            if dam is not None:
                hidden_key = valid & ~torch.gather(dam.bool(), 1, idx)
            qs.append(q)
            mods.append(torch.full((idx.shape[1],), len(mods), device=q.device))
            slots[m] = (start, idx, valid, hidden_key)
            start += idx.shape[1]
        if not qs:
            return {}
        x = torch.cat(qs, 1)
        group = torch.cat(mods)
        keyable = torch.cat([s[3] for s in slots.values()], 1)
        same = group[:, None] == group[None, :]
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        self_mask = (same[None] & keyable[:, None, :]) | eye[None]
        has_ctx = ctx_valid.any(1) if ctx_valid.shape[1] else torch.zeros(
            x.shape[0], dtype=torch.bool, device=x.device)
        cross_mask = ctx_valid[:, None, :] | ~has_ctx[:, None, None]
        cross_mask = cross_mask.expand(-1, x.shape[1], -1)
        ctx = self.ctx_proj(context) + ctx_pos if context.shape[1] else context
        for blk in self.decoder:
            x = blk(x, self_mask, ctx, cross_mask, has_ctx.to(x.dtype))
        x = self.dec_norm(x)
        return {m: (x[:, s:s + idx.shape[1]], idx, valid)
                for m, (s, idx, valid, _) in slots.items()}

    def forward(self, mod_dict: Mapping[str, Mapping[str, torch.Tensor]]
                ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``mod_dict`` -> modality -> ``(hidden (B, M, dim), index (B, M), valid (B, M))``
        of its target positions (see :meth:`loss` and :meth:`logits`)."""
        context, valid, pos = self.encode(mod_dict)
        return self.decode(mod_dict, context, valid, pos)

    # -- heads --------------------------------------------------------------------------
    def logits(self, modality: str, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` decoder outputs -> ``(..., vocab)`` float32 logits (tied)."""
        tok = self.enc_emb[modality].token
        if isinstance(tok, FactorizedTokenEmbedding):
            return tok.full_logits(hidden.float())
        return hidden.float() @ tok.weight.float().t()

    def factor_logits(self, modality: str, hidden: torch.Tensor) -> list[torch.Tensor]:
        """``(..., dim)`` -> the logits of the head's independent factors, float32: the 6
        FSQ digits ``[(..., L_k)]`` of a factorized video head, else ``[(..., vocab)]``.
        A token's log-probability is the sum of its factors' log-softmaxes."""
        tok = self.enc_emb[modality].token
        if isinstance(tok, FactorizedTokenEmbedding):
            return tok.digit_logits(hidden.float())
        return [hidden.float() @ tok.weight.float().t()]

    def factor_sizes(self, modality: str) -> list[int]:
        """Sizes of the head's factors (:meth:`factor_logits`): the FSQ levels of a
        factorized video head, else ``[vocab]``."""
        tok = self.enc_emb[modality].token
        if isinstance(tok, FactorizedTokenEmbedding):
            return list(tok.levels)
        return [self.vocab[modality]]

    def ids_from_factors(self, modality: str, factors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Token ids of per-factor choices (inverse of the split of :meth:`factor_logits`)."""
        tok = self.enc_emb[modality].token
        if isinstance(tok, FactorizedTokenEmbedding):
            return sum(f.long() * int(b) for f, b in zip(factors, tok.basis.tolist(),
                                                         strict=True))  # type: ignore[return-value]
        return factors[0].long()

    def token_nll(self, modality: str, hidden: torch.Tensor, targets: torch.Tensor,
                  smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy ``(K,)`` of ``targets`` ``(K,)`` under ``hidden`` ``(K, dim)``.

        ``smoothing`` > 0 (ordinal ids only; not for a factorized video head): the target is
        :func:`ordinal_targets` of that standard deviation in ids instead of the one-hot id.
        """
        tok = self.enc_emb[modality].token
        if isinstance(tok, FactorizedTokenEmbedding):
            if smoothing:
                raise ValueError(f"{modality}: ordinal smoothing needs a plain head over "
                                 "ordinal ids, not a factorized video head")
            digits = tok.digits_of(targets)
            parts = tok.digit_logits(hidden.float())
            return sum(F.cross_entropy(p, digits[:, k], reduction="none")
                       for k, p in enumerate(parts))  # type: ignore[return-value]
        logits = hidden.float() @ tok.weight.float().t()
        if smoothing:
            return F.cross_entropy(logits, ordinal_targets(targets, logits.shape[-1],
                                                           smoothing), reduction="none")
        return F.cross_entropy(logits, targets, reduction="none")

    def loss(self, mod_dict: Mapping[str, Mapping[str, torch.Tensor]],
             smoothing: Mapping[str, float] | None = None,
             weights: Mapping[str, torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss: per-modality mean cross-entropy over its target tokens (nats),
        averaged over the modalities that have targets (4M's per-modality loss).

        Args:
            mod_dict: 4M-style inputs and targets (:meth:`forward`).
            smoothing: per modality, the ordinal smoothing of :meth:`token_nll` (ids).
            weights: per modality, ``(N_m,)`` weights of its token positions (see
                :func:`token_weights`): its loss is then the weighted mean
                ``sum(w nll) / sum(w)`` over its target tokens instead of the plain mean.

        Returns:
            ``(total scalar, {modality: scalar})``.
        """
        out = self(mod_dict)
        smoothing = smoothing or {}
        per: dict[str, torch.Tensor] = {}
        for m, (hidden, idx, valid) in out.items():
            target = torch.gather(mod_dict[m]["tensor"].long(), 1, idx)
            nll = self.token_nll(m, hidden[valid], target[valid], smoothing.get(m, 0.0))
            if weights is not None and m in weights:
                w = weights[m].to(nll)[idx][valid]
                per[m] = (w * nll).sum() / w.sum().clamp_min(1e-12)
            else:
                per[m] = nll.mean()
        if not per:
            zero = sum(p.sum() for p in self.parameters()) * 0.0
            return zero, {}
        total = torch.stack(list(per.values())).mean()
        return total, per


def token_weights(variance: torch.Tensor, beta: float) -> torch.Tensor:
    """Loss weights of a modality's token positions from the variance each one codes.

    Args:
        variance: ``(K,)`` non-negative, per token position (a tokenizer's
            ``token_variance()``: the camera's PCA coefficients).
        beta: in ``[0, 1]``; 0 gives equal weights, 1 weights proportional to the variance.

    Returns:
        ``(K,)`` float32 ``(1 - beta) + beta * K * variance / variance.sum()``, mean 1.
    """
    v = variance.double().clamp_min(0.0)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if float(v.sum()) <= 0.0:
        raise ValueError("token_weights needs a positive total variance")
    share = v / v.sum()
    return ((1.0 - beta) + beta * v.numel() * share).float()


def ordinal_targets(ids: torch.Tensor, vocab: int, sigma: float) -> torch.Tensor:
    """Discretised Gaussian targets around ordinal ids.

    Args:
        ids: ``(K,)`` int64 true ids in ``[0, vocab)``.
        vocab: vocabulary size ``V``.
        sigma: standard deviation in ids (> 0).

    Returns:
        ``(K, V)`` float32 rows summing to 1, ``exp(-(v - id)^2 / (2 sigma^2))`` normalised
        over the vocabulary (so bins near an edge give their share to the inner side).
    """
    v = torch.arange(vocab, device=ids.device, dtype=torch.float32)
    w = torch.exp(-0.5 * ((v[None] - ids.float()[:, None]) / sigma) ** 2)
    return w / w.sum(-1, keepdim=True)
