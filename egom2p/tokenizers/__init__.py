"""EgoM2P tokenizers: clip entries <-> discrete tokens, one per modality.

``load(name)`` gives a shipped tokenizer in eval mode (``rgb``, ``depth``, ``camera``,
``gaze``: ``checkpoints/<name>.pt``, model card ``checkpoints/<name>.md``);
``load(name, path=...)`` a checkpoint of ``egosim egom2p train-tokenizer``::

    from egosim.egom2p import tokenizers
    tok = tokenizers.load("rgb")
    ids = tok.encode({"rgb": clips_rgb})       # (B, 320) int64 in [0, 64000)
    out = tok.decode(ids)                      # {"rgb": (B, 16, 64, 64, 3) uint8}

=========  ==========================================  ===================================
name       module                                      design
=========  ==========================================  ===================================
rgb        :mod:`~egosim.egom2p.tokenizers.video`      causal 3-D conv autoencoder, FSQ
depth      :mod:`~egosim.egom2p.tokenizers.video`      the same, log depth min-max per clip
camera     :mod:`~egosim.egom2p.tokenizers.pca_code`   PCA of ``camera_9d``, Lloyd-Max levels
gaze       :mod:`~egosim.egom2p.tokenizers.dpcm_code`  closed-loop predictive k-means code
=========  ==========================================  ===================================

:data:`TOKENIZERS` is the table of names -> builders (``model section -> Tokenizer``); the
token counts and vocabularies agree with :data:`egosim.egom2p.modalities.MODALITY_INFO`.
Training: :mod:`egosim.egom2p.tokenizers.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Tokenizer, read_checkpoint, save_checkpoint

__all__ = ["TOKENIZERS", "Tokenizer", "build", "checkpoint_dir", "checkpoint_path", "load",
           "read_checkpoint", "save_checkpoint"]


def _video(name: str) -> Callable[[dict[str, Any] | None], Tokenizer]:
    def make(model: dict[str, Any] | None = None) -> Tokenizer:
        from egosim.egom2p.tokenizer_config import VideoModelSection

        from .video import VideoTokenizer

        cfg = VideoModelSection.model_validate(model) if model is not None else None
        return VideoTokenizer(name, cfg)  # type: ignore[arg-type]

    return make


def _sequence(name: str) -> Callable[[dict[str, Any] | None], Tokenizer]:
    def make(model: dict[str, Any] | None = None) -> Tokenizer:
        from egosim.egom2p.tokenizer_config import SequenceModelSection

        from .sequence import SequenceTokenizer

        if model is not None and "quantizer" not in model:  # stored before FSQ existed
            model = {**model, "quantizer": "vq"}
        cfg = SequenceModelSection.model_validate(model) if model is not None else None
        return SequenceTokenizer(name, cfg)  # type: ignore[arg-type]

    return make


TOKENIZERS: dict[str, Callable[[dict[str, Any] | None], Tokenizer]] = {
    "rgb": _video("rgb"),
    "depth": _video("depth"),
    "camera": _sequence("camera"),
    "gaze": _sequence("gaze"),
}
"""Tokenizer name -> builder taking the architecture section as a dict (None: defaults)."""


def checkpoint_dir() -> Path:
    """Folder of the shipped checkpoints and model cards."""
    return Path(__file__).resolve().parent / "checkpoints"


def checkpoint_path(name: str) -> Path:
    """The shipped checkpoint of tokenizer ``name`` (``checkpoints/<name>.pt``)."""
    _check_name(name)
    return checkpoint_dir() / f"{name}.pt"


def _check_name(name: str) -> None:
    if name not in TOKENIZERS:
        raise KeyError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}")


def build(name: str, model: dict[str, Any] | None = None) -> Tokenizer:
    """An untrained tokenizer ``name`` of architecture ``model`` (None: the defaults)."""
    _check_name(name)
    return TOKENIZERS[name](model)


def load(name: str, path: str | Path | None = None) -> Tokenizer:
    """Tokenizer ``name`` with trained weights, in eval mode.

    Args:
        name: ``rgb``, ``depth``, ``camera`` or ``gaze``.
        path: a checkpoint file (an export or a training checkpoint of
            :mod:`~egosim.egom2p.tokenizers.train`); default the shipped one.

    Raises:
        KeyError: an unknown name.
        FileNotFoundError: no checkpoint at the path.
        ValueError: the file is not a tokenizer checkpoint, or one of another tokenizer.
    """
    _check_name(name)
    target = Path(path) if path is not None else checkpoint_path(name)
    ckpt = read_checkpoint(target)
    if ckpt["name"] != name:
        raise ValueError(f"{target} holds the {ckpt['name']!r} tokenizer, not {name!r}")
    tok = build(name, ckpt["model"])
    tok.load_state_dict(ckpt["state_dict"])
    tok.eval()
    return tok
