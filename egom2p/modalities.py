"""The EgoM2P modality registry: the one place a modality is declared.

:data:`MODALITY_INFO` maps a modality name to its :class:`ModalityInfo` (in the spirit of
4M's ``MODALITY_INFO``): its kind (``"video"`` or ``"sequence"``), vocabulary size, token
count and token grid, the tokenizer that makes its tokens
(:func:`egosim.egom2p.tokenizers.load`), the clip keys it reads, and the factories of its
encoder and decoder embeddings. The entries describe the CPU config (64 x 64 video);
:func:`modality_info` gives an entry for another video size.

=========  ========  ======  ============================  ==========================
modality   kind      vocab   tokens (64 x 64 / H x W)       clip keys
=========  ========  ======  ============================  ==========================
rgb        video     64000   320 / 5 (H/8) (W/8)           ``rgb``
depth      video     64000   322 / 2 + 5 (H/8) (W/8)       ``depth``
camera     sequence  256     30                            ``camera_9d`` (``camera``)
gaze       sequence  256     30                            ``gaze``, ``gaze_valid``
=========  ========  ======  ============================  ==========================

Video tokens come from the causal video tokenizer (:mod:`egosim.egom2p.tokenizers.video`):
16 frames (padded to 17) make 5 latent frames of ``(H/8, W/8)`` tokens, flattened in
``(t, y, x)`` order, FSQ levels [8, 8, 8, 5, 5, 5]. Depth is normalised per clip, so its
sequence starts with two *range tokens* (near and far depth of the clip, log-binned over
the same vocabulary) that make its tokens metric. Sequence tokens come from the sequence
tokenizers (:mod:`egosim.egom2p.tokenizers.sequence`): 60 samples at 30 fps make 30 tokens
(camera: 30 ordinal PCA-coefficient bins; gaze: 30 k-means codes of closed-loop sample offsets).

Embeddings: ``factory(vocab, dim) -> nn.Module`` (:data:`EmbeddingFactory`), a token
embedding plus fixed sin-cos positions: 3-D ``(t, y, x)`` for video (the range tokens of
depth sit at latent time -1), 1-D for sequences. Encoder embeddings map ``(B, N)`` token
ids to ``(B, N, dim)``; decoder embeddings also give the mask-token queries of the
positions to predict and tie the output logits to the token embedding.

To add a modality (say ``semantic``): write its tokenizer in ``egom2p/tokenizers/`` and
register it in :data:`egosim.egom2p.tokenizers.TOKENIZERS`, add its entry here (via
:func:`_video` or :func:`_sequence`, or a new kind), and its clip keys to the clip builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

__all__ = [
    "CLIP_FRAMES",
    "DEFAULT_VIDEO_SIZE",
    "DEPTH_RANGE_TOKENS",
    "EmbeddingFactory",
    "MODALITY_INFO",
    "ModalityInfo",
    "POSE_SAMPLES",
    "SEQUENCE_PATCH",
    "TokenDecoderEmbedding",
    "TokenEncoderEmbedding",
    "VIDEO_CODES",
    "VIDEO_LATENT_FRAMES",
    "VIDEO_SPATIAL",
    "fitted_temperature",
    "modality_info",
    "sequence_positions",
    "sincos_1d",
    "sincos_3d",
    "video_grid",
    "video_positions",
]

CLIP_FRAMES = 16
"""Video frames of a clip (8 fps, 2 s)."""
POSE_SAMPLES = 60
"""Camera and gaze samples of a clip (30 fps, 2 s)."""
VIDEO_SPATIAL = 8
"""Spatial compression of the video tokenizers (pixels per token side)."""
VIDEO_LATENT_FRAMES = 5
"""Latent frames of a 16-frame clip (padded to 17: the first frame alone, then 4 x 4)."""
VIDEO_CODES = 8 * 8 * 8 * 5 * 5 * 5
"""Video vocabulary: FSQ levels [8, 8, 8, 5, 5, 5] (Cosmos DV4x8x8's) = 64,000 codes."""
DEPTH_RANGE_TOKENS = 2
"""Tokens in front of a depth clip's grid: its near and far depth (log-binned)."""
SEQUENCE_PATCH = 2
"""Samples per sequence token (Conv1d kernel = stride)."""
DEFAULT_VIDEO_SIZE = (64, 64)
"""(H, W) of the CPU config."""

EmbeddingFactory = Callable[[int, int], nn.Module]
"""``(vocab, dim) -> nn.Module``: token embedding plus fixed positions of one modality."""


def sincos_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0
              ) -> torch.Tensor:
    """Sin-cos embedding of scalar positions.

    Args:
        positions: ``(N,)`` float positions (token index; may be negative).
        dim: embedding width; ``dim // 2`` frequencies, a zero column pads an odd ``dim``.
        temperature: the longest wavelength's scale.

    Returns:
        ``(N, dim)`` float32, ``[sin(p w_k), cos(p w_k)]`` with ``w_k = T^(-k / (dim // 2))``.
    """
    half = dim // 2
    omega = temperature ** (-torch.arange(half, dtype=torch.float64) / max(half, 1))
    angle = positions.to(torch.float64)[:, None] * omega[None]
    out = torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)
    if out.shape[1] < dim:
        out = torch.cat([out, torch.zeros(out.shape[0], dim - out.shape[1],
                                          dtype=out.dtype)], dim=1)
    return out.to(torch.float32)


def sincos_3d(coords: torch.Tensor, dim: int,
              temperature: float | Sequence[float] = 10000.0) -> torch.Tensor:
    """3-D sin-cos embedding: a third of the width for each of ``t``, ``y``, ``x``.

    Args:
        coords: ``(N, 3)`` float ``(t, y, x)`` positions in token units.
        dim: embedding width; each axis gets ``2 * (dim // 6)`` columns, zeros pad the rest.
        temperature: as in :func:`sincos_1d`; one for all axes or one per axis.

    Returns:
        ``(N, dim)`` float32.
    """
    part = 2 * (dim // 6)
    temps = ([float(temperature)] * 3 if isinstance(temperature, (int, float))
             else [float(t) for t in temperature])
    out = torch.cat([sincos_1d(coords[:, k], part, temps[k]) for k in range(3)], dim=1)
    if out.shape[1] < dim:
        out = torch.cat([out, torch.zeros(out.shape[0], dim - out.shape[1])], dim=1)
    return out


def video_grid(height: int, width: int) -> tuple[int, int, int]:
    """Latent grid ``(t, h, w)`` of a ``(16, height, width)`` clip: ``(5, H/8, W/8)``.

    Raises:
        ValueError: a size that is not a positive multiple of 8.
    """
    for name, size in (("height", height), ("width", width)):
        if size <= 0 or size % VIDEO_SPATIAL:
            raise ValueError(f"video {name} must be a positive multiple of {VIDEO_SPATIAL}, "
                             f"got {size}")
    return VIDEO_LATENT_FRAMES, height // VIDEO_SPATIAL, width // VIDEO_SPATIAL


def _video_coords(grid: tuple[int, int, int], header: int) -> torch.Tensor:
    """``(header + t*h*w, 3)`` token coordinates: header tokens at ``t = -1, y = 0, x = k``,
    then the grid in ``(t, y, x)`` order."""
    t, h, w = grid
    tt, yy, xx = torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w),
                                indexing="ij")
    body = torch.stack([tt, yy, xx], dim=-1).reshape(-1, 3).to(torch.float32)
    head = torch.stack([torch.full((header,), -1.0), torch.zeros(header),
                        torch.arange(header, dtype=torch.float32)], dim=-1)
    return torch.cat([head, body], dim=0)


def fitted_temperature(length: int) -> float:
    """Sin-cos temperature fitted to an axis of ``length`` tokens: the slowest frequency,
    ``1 / T`` rad per token, turns by 1 rad over the axis (``T = length``, at least 2), so
    every frequency tells the axis's positions apart; 4M's ``T = 10000`` suits axes of
    hundreds of tokens, and on grids of 5 to 30 most of its frequencies barely move."""
    return float(max(int(length), 2))


def video_positions(dim: int, grid: tuple[int, int, int], header: int = 0,
                    fitted: bool = False) -> torch.Tensor:
    """``(header + t*h*w, dim)`` fixed 3-D sin-cos positions of a video token sequence
    (``fitted``: temperatures :func:`fitted_temperature` of each axis of the grid, the
    header not counted, so that video modalities on the same grid share their tables;
    else 10000)."""
    coords = _video_coords(grid, header)
    if not fitted:
        return sincos_3d(coords, dim)
    return sincos_3d(coords, dim, [fitted_temperature(n) for n in grid])


def sequence_positions(dim: int, length: int, fitted: bool = False) -> torch.Tensor:
    """``(length, dim)`` fixed 1-D sin-cos positions of a sequence's tokens (``fitted``:
    temperature :func:`fitted_temperature` of ``length``; else 10000)."""
    temperature = fitted_temperature(length) if fitted else 10000.0
    return sincos_1d(torch.arange(length, dtype=torch.float32), dim, temperature)


class TokenEncoderEmbedding(nn.Module):
    """Token embedding plus fixed positions, for the encoder's input tokens.

    Args:
        vocab: vocabulary size.
        dim: embedding width.
        positions: ``(N, dim)`` fixed position table of the modality's full sequence.
    """

    def __init__(self, vocab: int, dim: int, positions: torch.Tensor) -> None:
        super().__init__()
        if positions.shape[1] != dim:
            raise ValueError(f"positions must have width dim={dim}, got {positions.shape}")
        self.vocab = int(vocab)
        self.dim = int(dim)
        self.token = nn.Embedding(vocab, dim)
        nn.init.normal_(self.token.weight, std=0.02)
        self.register_buffer("positions", positions.clone(), persistent=False)

    @property
    def num_tokens(self) -> int:
        """Tokens of a full sequence of the modality."""
        return int(self.positions.shape[0])

    def position(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Positions of token slots: ``(N, dim)`` for all, or ``(B, M, dim)`` for an
        ``index`` ``(B, M)`` of slots in ``[0, N)``."""
        if index is None:
            return self.positions
        return self.positions[index]

    def forward(self, tokens: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """Embed ``tokens`` ``(B, M)`` (ids in ``[0, vocab)``) at slots ``index`` ``(B, M)``
        (default: ``M = N``, all slots in order); returns ``(B, M, dim)``."""
        pos = self.position(index)
        return self.token(tokens) + (pos if index is not None else pos[None])


class TokenDecoderEmbedding(TokenEncoderEmbedding):
    """Decoder side: embeddings of known tokens, mask-token queries and tied logits.

    :meth:`query` gives the inputs of the positions to predict (a learned mask token plus
    the fixed position); :meth:`logits` scores decoder outputs against the token embedding
    (tied weights).
    """

    def __init__(self, vocab: int, dim: int, positions: torch.Tensor) -> None:
        super().__init__(vocab, dim, positions)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.mask_token, std=0.02)

    def query(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, M, dim)`` queries of slots ``index`` ``(B, M)``, or ``(1, N, dim)`` for all."""
        pos = self.position(index)
        return self.mask_token + (pos if index is not None else pos[None])

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` decoder outputs -> ``(..., vocab)`` logits (tied weights)."""
        return hidden @ self.token.weight.t()


def _video_embedding(vocab: int, dim: int, *, cls: type[TokenEncoderEmbedding],
                     grid: tuple[int, int, int], header: int) -> nn.Module:
    return cls(vocab, dim, video_positions(dim, grid, header))


def _sequence_embedding(vocab: int, dim: int, *, cls: type[TokenEncoderEmbedding],
                        length: int) -> nn.Module:
    return cls(vocab, dim, sequence_positions(dim, length))


@dataclass(frozen=True)
class ModalityInfo:
    """One modality's entry of :data:`MODALITY_INFO`.

    Attributes:
        name: the modality's name (the key of :data:`MODALITY_INFO`).
        kind: ``"video"`` (3-D token grid) or ``"sequence"`` (1-D).
        vocab_size: token ids are in ``[0, vocab_size)``.
        grid: token grid, ``(t, h, w)`` for video, ``(n,)`` for sequences.
        header_tokens: tokens in front of the grid (depth's two range tokens).
        tokenizer: the name :func:`egosim.egom2p.tokenizers.load` takes.
        clip_keys: clip entries the tokenizer reads (``encode``) and writes (``decode``).
        video_size: ``(H, W)`` pixels the entry describes (None for sequences).
        encoder_embedding: ``(vocab, dim) -> nn.Module`` (:class:`TokenEncoderEmbedding`).
        decoder_embedding: ``(vocab, dim) -> nn.Module`` (:class:`TokenDecoderEmbedding`).
    """

    name: str
    kind: Literal["video", "sequence"]
    vocab_size: int
    grid: tuple[int, ...]
    header_tokens: int
    tokenizer: str
    clip_keys: tuple[str, ...]
    video_size: tuple[int, int] | None
    encoder_embedding: EmbeddingFactory
    decoder_embedding: EmbeddingFactory

    @property
    def num_tokens(self) -> int:
        """Tokens of one clip: ``header_tokens + prod(grid)``."""
        return self.header_tokens + math.prod(self.grid)

    def tokens_for(self, height: int, width: int) -> int:
        """Tokens of one clip of ``(height, width)`` video (sequences: independent of it)."""
        if self.kind == "sequence":
            return self.num_tokens
        return self.header_tokens + math.prod(video_grid(height, width))

    def fitted_positions(self, dim: int) -> torch.Tensor:
        """``(num_tokens, dim)`` sin-cos positions of this modality with temperatures
        fitted to its grid (:func:`fitted_temperature`), in the layout of its embeddings'
        tables."""
        if self.kind == "video":
            t, h, w = self.grid
            return video_positions(dim, (t, h, w), self.header_tokens, fitted=True)
        return sequence_positions(dim, self.num_tokens, fitted=True)

    def at_size(self, height: int, width: int) -> ModalityInfo:
        """This entry for ``(height, width)`` video (itself for a sequence)."""
        if self.kind == "sequence":
            return self
        return _video(self.name, self.tokenizer, self.clip_keys, height, width,
                      self.header_tokens, self.vocab_size)


def _video(name: str, tokenizer: str, clip_keys: Sequence[str], height: int, width: int,
           header: int = 0, vocab: int = VIDEO_CODES) -> ModalityInfo:
    grid = video_grid(height, width)
    return ModalityInfo(
        name=name, kind="video", vocab_size=vocab, grid=grid, header_tokens=header,
        tokenizer=tokenizer, clip_keys=tuple(clip_keys), video_size=(height, width),
        encoder_embedding=partial(_video_embedding, cls=TokenEncoderEmbedding, grid=grid,
                                  header=header),
        decoder_embedding=partial(_video_embedding, cls=TokenDecoderEmbedding, grid=grid,
                                  header=header))


def _sequence(name: str, tokenizer: str, clip_keys: Sequence[str], vocab: int = 256,
              samples: int = POSE_SAMPLES, patch: int = SEQUENCE_PATCH) -> ModalityInfo:
    length = samples // patch
    return ModalityInfo(
        name=name, kind="sequence", vocab_size=vocab, grid=(length,), header_tokens=0,
        tokenizer=tokenizer, clip_keys=tuple(clip_keys), video_size=None,
        encoder_embedding=partial(_sequence_embedding, cls=TokenEncoderEmbedding,
                                  length=length),
        decoder_embedding=partial(_sequence_embedding, cls=TokenDecoderEmbedding,
                                  length=length))


MODALITY_INFO: dict[str, ModalityInfo] = {
    "rgb": _video("rgb", "rgb", ("rgb",), *DEFAULT_VIDEO_SIZE),
    "depth": _video("depth", "depth", ("depth",), *DEFAULT_VIDEO_SIZE,
                    header=DEPTH_RANGE_TOKENS),
    "camera": _sequence("camera", "camera", ("camera_9d", "camera")),
    "gaze": _sequence("gaze", "gaze", ("gaze", "gaze_valid")),
}
"""Modality name -> :class:`ModalityInfo` at the CPU config's 64 x 64 video."""


def modality_info(name: str, height: int | None = None, width: int | None = None
                  ) -> ModalityInfo:
    """The entry of modality ``name``, for ``(height, width)`` video when given.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        ValueError: a video size that is not a positive multiple of 8.
    """
    if name not in MODALITY_INFO:
        raise KeyError(f"unknown modality {name!r}; known: {', '.join(MODALITY_INFO)}")
    info = MODALITY_INFO[name]
    if height is None and width is None:
        return info
    h, w = info.video_size or DEFAULT_VIDEO_SIZE
    return info.at_size(height or h, width or w)


def _check_registry() -> None:
    """Internal consistency of the table (names match keys)."""
    for key, info in MODALITY_INFO.items():
        if info.name != key:
            raise RuntimeError(f"MODALITY_INFO[{key!r}] is named {info.name!r}")


_check_registry()
