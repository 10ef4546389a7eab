"""What every EgoM2P tokenizer has: the :class:`Tokenizer` interface and its checkpoint file.

A tokenizer is an ``nn.Module`` that turns a batch of clip entries into token ids and back:

- :meth:`Tokenizer.encode` ``(batch) -> (B, N)`` int64 ids in ``[0, vocab_size)``;
- :meth:`Tokenizer.decode` ``(tokens) -> batch``: the clip entries it reads, batched, with
  the clip's dtypes and shapes (torch tensors);
- :meth:`Tokenizer.loss` ``(batch) -> {"total": ..., ...}``: the training objective.

A *batch* is a mapping of clip keys to batched arrays (numpy or torch), e.g. ``rgb`` uint8
``(B, 16, H, W, 3)``. A checkpoint (:func:`save_checkpoint`, :func:`read_checkpoint`) is a
``torch.save`` dict: ``format``, ``name``, ``model`` (the architecture section of
:mod:`egosim.egom2p.tokenizer_config`, as a dict), ``state_dict``, ``step`` and ``info``
(free-form: data, metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from egosim.atomic_io import torch_save

__all__ = ["CHECKPOINT_FORMAT", "Batch", "Tokenizer", "as_tensor", "read_checkpoint",
           "save_checkpoint"]

CHECKPOINT_FORMAT = "egosim.egom2p.tokenizer/1"

Batch = Mapping[str, Any]
"""Clip key -> batched array (numpy or torch)."""


def as_tensor(batch: Batch, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``batch[key]`` as a CPU tensor (of ``dtype`` when given).

    Raises:
        KeyError: the batch lacks ``key`` (the message lists its keys).
    """
    if key not in batch:
        raise KeyError(f"batch has no {key!r} entry (has {', '.join(sorted(batch))})")
    value = batch[key]
    tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
    return tensor if dtype is None else tensor.to(dtype)


class Tokenizer(nn.Module):
    """Base of the EgoM2P tokenizers (see the module docstring).

    An interface: ``num_tokens``, ``model_config``, ``encode``, ``decode``, ``decode_expected``
    and ``loss`` raise
    ``NotImplementedError`` here and are implemented by each concrete tokenizer
    (:mod:`.video` for rgb and depth, :mod:`.sequence` for camera and gaze).

    Attributes:
        name: the tokenizer's (and modality's) name: ``rgb``, ``depth``, ``camera``, ``gaze``.
        vocab_size: ids are in ``[0, vocab_size)``.
        clip_keys: the clip entries :meth:`encode` reads and :meth:`decode` writes.
        ordinal_ids: whether ids are ordinal bins of one value per token (ids close in value
            decode close; the camera's pca code), which the model's ordinal smoothing needs.
    """

    name: str
    vocab_size: int
    clip_keys: tuple[str, ...]
    ordinal_ids: bool = False

    def num_tokens(self, height: int = 64, width: int = 64) -> int:
        """Tokens of one clip (video: of ``(height, width)`` frames)."""
        raise NotImplementedError

    def token_variance(self) -> np.ndarray | None:
        """Per token position, the variance its token carries, when each token codes one
        coefficient of a linear code (the camera's pca code): ``(num_tokens,)`` float64 in
        the code's units; ``None`` for any other tokenizer (the default). The model's
        ``token_weighting`` needs it."""
        return None

    def model_config(self) -> dict[str, Any]:
        """The architecture section the tokenizer was built from (JSON-able)."""
        raise NotImplementedError

    def encode(self, batch: Batch) -> torch.Tensor:
        """Token ids ``(B, N)`` int64 of a batch of clips (no gradients)."""
        raise NotImplementedError

    def decode(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Clip entries of token ids ``(B, N)`` (batched, the clip's dtypes; no gradients)."""
        raise NotImplementedError

    def decode_expected(self, tokens: torch.Tensor, probs: Sequence[torch.Tensor]
                        ) -> dict[str, torch.Tensor]:
        """Clip entries of the posterior-mean codes of per-token distributions.

        Args:
            tokens: ``(B, N)`` int64 ids (one draw; used where a value must stay discrete,
                e.g. depth's range tokens).
            probs: the distributions as a model's head factors them
                (:func:`egosim.egom2p.model.decoding.decode_with_probs`): one
                ``(B, N, vocab_size)`` tensor, or for FSQ video tokens one ``(B, N, L_k)``
                tensor per FSQ digit.

        Returns:
            what :meth:`decode` returns; with one-hot ``probs`` of ``tokens`` the same.
        """
        raise NotImplementedError

    def loss(self, batch: Batch, flip: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training losses of a batch: ``{"total": scalar, ...}`` (``flip``: ``(B,)`` bool,
        clips to mirror left-right, video only)."""
        raise NotImplementedError

    def round_trip(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``decode(encode(batch))`` without gradients, in eval mode (restored after)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.decode(self.encode(batch))
        finally:
            self.train(was)


def save_checkpoint(tokenizer: Tokenizer, path: str | Path, step: int,
                    info: Mapping[str, Any] | None = None) -> Path:
    """Write ``tokenizer`` (architecture, weights, ``step``, ``info``) to ``path``, atomic."""
    state = {k: v.detach().clone() for k, v in tokenizer.state_dict().items()}
    return torch_save({"format": CHECKPOINT_FORMAT, "name": tokenizer.name,
                       "model": tokenizer.model_config(), "state_dict": state,
                       "step": int(step), "info": dict(info or {})}, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict of a tokenizer checkpoint.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unreadable, or not a tokenizer checkpoint (the message says why).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no tokenizer checkpoint at {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign files raise many types
        raise ValueError(f"{p}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p}: not a tokenizer checkpoint (format {CHECKPOINT_FORMAT!r})")
    return ckpt
