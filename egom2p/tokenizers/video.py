"""Causal video tokenizer (4x in time, 8x8 in space, FSQ), one design for RGB and depth.

EgoM2P tokenizes video with Cosmos DV4x8x8; this is a small network with the same
compression, trained on the simulator's clips. A clip of 16 frames is padded to 17 by
repeating its last frame; latent frame 0 sees frame 0 alone, latent frame ``k >= 1`` frames
``4k - 3 .. 4k`` (and, through the causal temporal convolutions, earlier ones, never later
ones): 5 latent frames of ``(H/8, W/8)`` tokens.

Network (``C`` input channels: 3 for RGB, 1 for depth; widths from
:class:`~egosim.egom2p.tokenizer_config.VideoModelSection`)::

    encoder, per frame:  pixel-unshuffle 4 -> 3x3 conv (stem_width) -> frame_blocks x
                         residual 3x3 -> pixel-unshuffle 2 -> 1x1 conv (width)  at H/8
            in time:     replicate frame 0 three times in front (17 -> 20 frames), stack
                         groups of 4 frames on channels -> 1x1 conv (width)      5 frames
                         -> blocks x causal (2+1)-D residual -> 1x1 conv (len(levels))
    FSQ (levels, e.g. [8, 8, 8, 5, 5, 5] = 64,000 codes) on each latent position
    decoder: the mirror image (1x1 conv to 4 x width, unstack 5 -> 20 frames, drop the 3
             padding frames and the repeated last one, pixel-shuffle 2 and 4), with its
             own widths and block counts where ``decoder_*`` are set (a larger decoder
             over the same encoder and FSQ decodes the same token ids)

Inputs and outputs:

- RGB: ``rgb`` uint8 ``(B, 16, H, W, 3)`` <-> ``x = rgb / 127.5 - 1``.
- Depth: ``depth`` float32 ``(B, 16, H, W)`` metres, 0 = no hit. Min-max normalised per
  clip on its valid pixels, in log depth: ``u = (ln d - ln near) / (ln far - ln near)`` in
  [0, 1] (relative error spread evenly, which suits AbsRel), fed as one channel
  ``x = 2u - 1``; no-hit pixels are fed as ``u = 1.25`` and decoded as no hit (0) where the
  output exceeds ``u = 1.125``. ``near`` and ``far`` are stored in two *range tokens* in
  front of the grid (log-binned over ``[depth_near_m, depth_far_m]`` with the same
  vocabulary, about 1e-4 relative resolution), so :meth:`VideoTokenizer.decode` returns
  metres from the tokens alone.

Training loss (:meth:`VideoTokenizer.loss`): MSE (and optionally L1) of the normalised
video; for depth also the AbsRel of the metric decode (the shipped depth tokenizer uses
MSE + AbsRel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import FSQ

from egosim.egom2p.modalities import CLIP_FRAMES, DEPTH_RANGE_TOKENS, video_grid
from egosim.egom2p.tokenizer_config import VideoModelSection

from .base import Batch, Tokenizer, as_tensor

__all__ = ["CausalVideoAutoencoder", "VideoTokenizer", "INVALID_U"]

INVALID_U = 1.25
"""Normalised depth fed for pixels without a hit (valid pixels lie in [0, 1])."""
_INVALID_CUT = 1.125  # decoded u above this -> no hit
_TIME_GROUP = 4


class _FrameBlock(nn.Module):
    """Residual block of two 3x3 convolutions on ``(N, C, h, w)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class _CausalBlock(nn.Module):
    """(2+1)-D residual block on ``(B, C, T, h, w)``: a 3x3 spatial convolution and a
    temporal one of kernel 3 that sees the current and two earlier frames (front padding
    by replicating the first frame)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = nn.Conv3d(channels, channels, (3, 1, 1))
        nn.init.zeros_(self.temporal.weight)
        nn.init.zeros_(self.temporal.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.spatial(F.silu(x))
        h = F.pad(F.silu(h), (0, 0, 0, 0, 2, 0), mode="replicate")
        return x + self.temporal(h)


class CausalVideoAutoencoder(nn.Module):
    """The network of the module docstring: ``(B, C, 16, H, W)`` <-> FSQ codes.

    Args:
        channels: input channels ``C``.
        cfg: architecture section.
    """

    def __init__(self, channels: int, cfg: VideoModelSection) -> None:
        super().__init__()
        c, s, w = channels, cfg.stem_width, cfg.width
        ds, dw, dblocks, dframe = cfg.decoder_sizes()
        self.channels = channels
        # encoder
        self.enc_stem = nn.Conv2d(16 * c, s, 3, padding=1)
        self.enc_frame = nn.Sequential(*[_FrameBlock(s) for _ in range(cfg.frame_blocks)])
        self.enc_latent = nn.Conv2d(4 * s, w, 1)
        self.enc_time = nn.Conv3d(_TIME_GROUP * w, w, 1)
        self.enc_blocks = nn.Sequential(*[_CausalBlock(w) for _ in range(cfg.blocks)])
        self.enc_code = nn.Conv3d(w, len(cfg.levels), 1)
        # quantiser
        self.fsq = FSQ(levels=list(cfg.levels))
        # decoder
        self.dec_code = nn.Conv3d(len(cfg.levels), dw, 1)
        self.dec_blocks = nn.Sequential(*[_CausalBlock(dw) for _ in range(dblocks)])
        self.dec_time = nn.Conv3d(dw, _TIME_GROUP * dw, 1)
        self.dec_latent = nn.Conv2d(dw, 4 * ds, 1)
        self.dec_frame = nn.Sequential(*[_FrameBlock(ds) for _ in range(dframe)])
        self.dec_out = nn.Conv2d(ds, 16 * c, 3, padding=1)

    @property
    def codebook_size(self) -> int:
        """Number of FSQ codes (the vocabulary)."""
        return int(self.fsq.codebook_size)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, 16, H, W)`` -> pre-quantisation latent ``(B, d, 5, H/8, W/8)``."""
        b, c, t, h, w = x.shape
        if t != CLIP_FRAMES:
            raise ValueError(f"clips must have {CLIP_FRAMES} frames, got {t}")
        f = x.transpose(1, 2).reshape(b * t, c, h, w)
        f = self.enc_stem(F.pixel_unshuffle(f, 4))
        f = self.enc_frame(f)
        f = self.enc_latent(F.silu(F.pixel_unshuffle(f, 2)))
        f = f.reshape(b, t, -1, h // 8, w // 8).transpose(1, 2)   # (B, w, 16, h, w)
        # 16 -> 17 frames (last repeated), then 3 copies of frame 0 in front: 20 = 5 x 4
        f = torch.cat([f[:, :, :1].expand(-1, -1, _TIME_GROUP - 1, -1, -1), f, f[:, :, -1:]],
                      dim=2)
        bw = f.shape[1]
        f = f.reshape(b, bw, -1, _TIME_GROUP, h // 8, w // 8).transpose(2, 3)
        f = f.reshape(b, bw * _TIME_GROUP, -1, h // 8, w // 8)   # (B, 4w, 5, h, w)
        f = self.enc_blocks(self.enc_time(f))
        return self.enc_code(F.silu(f))

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent ``(B, d, T, h, w)`` -> (codes of the same shape, ids ``(B, T*h*w)``)."""
        b, d, t, h, w = z.shape
        q, idx = self.fsq(z.flatten(2).transpose(1, 2))
        return q.transpose(1, 2).reshape(b, d, t, h, w), idx.reshape(b, -1)

    def codes_from_ids(self, ids: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Ids ``(B, T*h*w)`` -> codes ``(B, d, T, h, w)``."""
        codes = self.fsq.indices_to_codes(ids)
        return codes.transpose(1, 2).reshape(ids.shape[0], -1, *grid)

    def decode_codes(self, q: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, d, 5, h, w)`` -> reconstruction ``(B, C, 16, 8h, 8w)``."""
        b, _, tl, h, w = q.shape
        f = self.dec_blocks(self.dec_code(q))
        f = self.dec_time(F.silu(f))                              # (B, 4w, 5, h, w)
        bw = f.shape[1] // _TIME_GROUP
        f = f.reshape(b, bw, _TIME_GROUP, tl, h, w).transpose(2, 3).reshape(b, bw, -1, h, w)
        f = f[:, :, _TIME_GROUP - 1:_TIME_GROUP - 1 + CLIP_FRAMES]    # 16 real frames
        f = f.transpose(1, 2).reshape(b * CLIP_FRAMES, bw, h, w)
        f = F.pixel_shuffle(self.dec_latent(F.silu(f)), 2)
        f = self.dec_frame(f)
        out = F.pixel_shuffle(self.dec_out(F.silu(f)), 4)
        return out.reshape(b, CLIP_FRAMES, self.channels, 8 * h, 8 * w).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, 16, H, W)`` -> (reconstruction of the same shape, ids ``(B, N)``)."""
        q, idx = self.quantize(self.encode_latent(x))
        return self.decode_codes(q), idx


class VideoTokenizer(Tokenizer):
    """RGB or depth video <-> tokens (see the module docstring).

    Args:
        name: ``"rgb"`` or ``"depth"``.
        cfg: architecture section (default: the schema's).
    """

    def __init__(self, name: Literal["rgb", "depth"],
                 cfg: VideoModelSection | None = None) -> None:
        super().__init__()
        if name not in ("rgb", "depth"):
            raise ValueError(f"video tokenizer name must be 'rgb' or 'depth', got {name!r}")
        self.name = name
        self.cfg = cfg if cfg is not None else VideoModelSection()
        self.clip_keys = (name,)
        self.net = CausalVideoAutoencoder(3 if name == "rgb" else 1, self.cfg)
        self.vocab_size = self.net.codebook_size
        self.header = DEPTH_RANGE_TOKENS if name == "depth" else 0
        self._log_near = math.log(self.cfg.depth_near_m)
        self._log_far = math.log(self.cfg.depth_far_m)

    def num_tokens(self, height: int = 64, width: int = 64) -> int:
        return self.header + math.prod(video_grid(height, width))

    def model_config(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json")

    # -- depth range tokens -------------------------------------------------------------
    def range_to_tokens(self, depth_m: torch.Tensor, rounding: str = "round") -> torch.Tensor:
        """Depths ``(...)`` metres -> log bins ``(...)`` int64 in ``[0, vocab)``
        (``rounding``: ``"round"``, ``"floor"`` or ``"ceil"`` to a bin)."""
        u = (torch.log(depth_m.double().clamp(self.cfg.depth_near_m, self.cfg.depth_far_m))
             - self._log_near) / (self._log_far - self._log_near)
        snap = {"round": torch.round, "floor": torch.floor, "ceil": torch.ceil}[rounding]
        return snap(u * (self.vocab_size - 1)).long().clamp(0, self.vocab_size - 1)

    def tokens_to_range(self, tokens: torch.Tensor) -> torch.Tensor:
        """Log bins ``(...)`` -> depths ``(...)`` float64 metres."""
        u = tokens.double().clamp(0, self.vocab_size - 1) / (self.vocab_size - 1)
        return torch.exp(self._log_near + u * (self._log_far - self._log_near))

    def depth_range(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-clip range tokens ``(B, 2)`` and their depths ``(B, 2)`` float64 metres.

        The near / far depth are the smallest / largest valid depth of the clip, rounded down
        / up to a bin (so the clip's depths lie between them); a clip without valid pixels
        gets ``(1 m, 1 m)``; far is kept at least one bin above near.
        """
        b = depth.shape[0]
        flat = depth.reshape(b, -1).double()
        valid = torch.isfinite(flat) & (flat > 0)
        big = torch.where(valid, flat, torch.full_like(flat, math.inf))
        small = torch.where(valid, flat, torch.full_like(flat, -math.inf))
        near = big.min(dim=1).values
        far = small.max(dim=1).values
        none = ~valid.any(dim=1)
        near = torch.where(none, torch.ones_like(near), near)
        far = torch.where(none, torch.ones_like(far), far)
        tok = torch.stack([self.range_to_tokens(near, "floor"),
                           self.range_to_tokens(far, "ceil")], dim=1)
        tok[:, 1] = torch.maximum(tok[:, 1], tok[:, 0] + 1).clamp(max=self.vocab_size - 1)
        tok[:, 0] = torch.minimum(tok[:, 0], tok[:, 1] - 1)
        return tok, self.tokens_to_range(tok)

    # -- batch <-> network input --------------------------------------------------------
    def to_input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network input ``(B, C, 16, H, W)`` in about [-1, 1], and the depth range tokens
        ``(B, 2)`` (None for RGB)."""
        if self.name == "rgb":
            rgb = as_tensor(batch, "rgb")
            if rgb.dtype != torch.uint8 or rgb.ndim != 5 or rgb.shape[-1] != 3:
                raise ValueError(f"rgb must be uint8 (B, 16, H, W, 3), got {rgb.dtype} "
                                 f"{tuple(rgb.shape)}")
            x = rgb.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
            return x, None
        x, tok, _, _ = self._depth_input(as_tensor(batch, "depth", torch.float32))
        return x, tok

    def _depth_input(self, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor, torch.Tensor]:
        """Depth ``(B, 16, H, W)`` metres -> (input ``(B, 1, 16, H, W)``, range tokens
        ``(B, 2)``, validity ``(B, 16, H, W)``, log span ``ln(far / near)`` ``(B,)``)."""
        if depth.ndim != 4:
            raise ValueError(f"depth must be (B, 16, H, W) metres, got {tuple(depth.shape)}")
        tok, rng = self.depth_range(depth)
        valid = torch.isfinite(depth) & (depth > 0)
        log_near = torch.log(rng[:, 0]).float()[:, None, None, None]
        span = (torch.log(rng[:, 1]) - torch.log(rng[:, 0])).float()
        u = (torch.log(torch.where(valid, depth, torch.ones_like(depth))) - log_near) / span[
            :, None, None, None]
        u = torch.where(valid, u.clamp(0.0, 1.0), torch.full_like(u, INVALID_U))
        return (2.0 * u - 1.0)[:, None], tok, valid, span

    def from_output(self, x: torch.Tensor, range_tokens: torch.Tensor | None
                    ) -> dict[str, torch.Tensor]:
        """Network output ``(B, C, 16, H, W)`` -> the clip entry (uint8 RGB, depth metres)."""
        if self.name == "rgb":
            rgb = torch.round((x.permute(0, 2, 3, 4, 1) + 1.0) * 127.5).clamp(0, 255)
            return {"rgb": rgb.to(torch.uint8)}
        assert range_tokens is not None
        rng = self.tokens_to_range(range_tokens)
        u = (x[:, 0].double() + 1.0) / 2.0
        log_d = (torch.log(rng[:, 0])[:, None, None, None]
                 + u.clamp(0.0, 1.0) * (torch.log(rng[:, 1]) - torch.log(rng[:, 0]))[
                     :, None, None, None])
        depth = torch.where(u > _INVALID_CUT, torch.zeros_like(log_d), torch.exp(log_d))
        return {"depth": depth.to(torch.float32)}

    def _frame_size(self, tokens: torch.Tensor, height: int | None, width: int | None
                    ) -> tuple[int, int]:
        """``(height, width)`` as given, or the square frame that ``tokens`` ``(B, N)``
        implies (5 latent frames of ``(side / 8)^2`` after the header)."""
        if height is not None and width is not None:
            return height, width
        side = int(round(math.sqrt(max((tokens.shape[-1] - self.header) // 5, 0))))
        return 8 * side, 8 * side

    # -- the tokenizer interface --------------------------------------------------------
    @torch.no_grad()
    def encode(self, batch: Batch) -> torch.Tensor:
        x, rng = self.to_input(batch)
        _, ids = self.net.quantize(self.net.encode_latent(x))
        ids = ids.long()
        return ids if rng is None else torch.cat([rng, ids], dim=1)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, height: int | None = None,
               width: int | None = None) -> dict[str, torch.Tensor]:
        """Clip entry of ids ``(B, N)``; frames of ``(height, width)`` pixels (default: the
        square size that ``N`` implies)."""
        tokens = torch.as_tensor(tokens).long()
        height, width = self._frame_size(tokens, height, width)
        t, h, w = video_grid(height, width)
        want = self.header + t * h * w
        if tokens.ndim != 2 or tokens.shape[1] != want:
            raise ValueError(f"tokens of ({height}, {width}) clips must be (B, {want}), got "
                             f"{tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        rng = tokens[:, :self.header] if self.header else None
        q = self.net.codes_from_ids(tokens[:, self.header:], (t, h, w))
        return self.from_output(self.net.decode_codes(q), rng)

    @torch.no_grad()
    def decode_expected(self, tokens: torch.Tensor, probs: Sequence[torch.Tensor],
                        height: int | None = None, width: int | None = None
                        ) -> dict[str, torch.Tensor]:
        """Clip entry of the posterior-mean FSQ codes: each grid token's code in FSQ
        dimension ``k`` is the expectation of the level values under digit ``k``'s
        distribution (``probs``: one ``(B, N, L_k)`` tensor per FSQ level, in the FSQ's
        digit order); depth's two range tokens keep their ids in ``tokens`` ``(B, N)``.
        Frames of ``(height, width)`` pixels (default: the square size ``N`` implies)."""
        levels = list(self.cfg.levels)
        if len(probs) != len(levels) or any(p.shape[-1] != v for p, v in zip(probs, levels,
                                                                                strict=True)):
            raise ValueError(f"need one distribution per FSQ digit of levels {levels}, got "
                             f"{[tuple(p.shape) for p in probs]}")
        tokens = torch.as_tensor(tokens).long()
        grid = video_grid(*self._frame_size(tokens, height, width))
        basis = torch.cumprod(torch.tensor([1] + levels[:-1]), 0)
        code = []
        for k, (p, v) in enumerate(zip(probs, levels, strict=True)):
            values = self.net.fsq.indices_to_codes(torch.arange(v) * basis[k])[:, k]
            code.append(p[:, self.header:].float() @ values.float())
        q = torch.stack(code, -1)                                     # (B, T h w, d)
        q = q.transpose(1, 2).reshape(q.shape[0], -1, *grid)
        rng = tokens[:, :self.header] if self.header else None
        return self.from_output(self.net.decode_codes(q), rng)

    def loss(self, batch: Batch, flip: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """MSE and L1 of the normalised video; for depth also the AbsRel of the metric
        decode, ``|d' / d - 1| = |exp(z) - 1|`` with ``z = ln(far / near) (u' - u)``
        (softly bounded, ``z -> 3 tanh(z / 3)``, so a wild pixel keeps a gradient), averaged
        over each clip's valid pixels and then over clips, as the metric is.
        Weights: :attr:`loss_weights`."""
        valid = span = None
        if self.name == "depth":
            x, _, valid, span = self._depth_input(as_tensor(batch, "depth", torch.float32))
        else:
            x, _ = self.to_input(batch)
        if flip is not None:
            x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
            if valid is not None:
                valid = torch.where(flip[:, None, None, None], valid.flip(-1), valid)
        recon, _ = self.net(x)
        mse = F.mse_loss(recon, x)
        l1 = F.l1_loss(recon, x)
        out = {"mse": mse, "l1": l1}
        w_mse, w_l1, w_rel = self.loss_weights
        total = mse * w_mse + l1 * w_l1
        if valid is not None and span is not None:
            z = (recon[:, 0] - x[:, 0]) / 2.0 * span[:, None, None, None]  # ln(d' / d)
            err = (torch.exp(3.0 * torch.tanh(z / 3.0)) - 1.0).abs() * valid
            count = valid.flatten(1).sum(1)
            per_clip = err.flatten(1).sum(1) / count.clamp(min=1)
            has = count > 0
            rel = per_clip[has].mean() if bool(has.any()) else per_clip.sum() * 0.0
            out["abs_rel"] = rel
            total = total + rel * w_rel
        out["total"] = total
        return out

    loss_weights: tuple[float, float, float] = (1.0, 0.0, 0.0)
    """``(mse, l1, abs_rel)`` weights of :meth:`loss` (a training setting, not saved)."""
