"""The EgoM2P model: a 4M-style masked encoder-decoder over rgb, depth, camera and gaze tokens.

- :mod:`.transformer`: :class:`EgoM2P` (encoder over the input tokens of every modality,
  decoder queries attending within their modality and to the encoder; tied output
  logits), :data:`SIZES` (``tiny``, ``small``, ``base``), :class:`Architecture`;
- :mod:`.masking`: input / target token budgets split over modalities by a mixture of
  symmetric Dirichlets (4M's mod_dict, True = excluded);
- :mod:`.train`: :func:`~.train.run`, the training loop of ``egosim egom2p train``
  (stream, cache or synthetic data; checkpoints, exact resume, DDP);
- :mod:`.decoding`: ROAR and MaskGIT parallel decoding with classifier-free guidance;
  schedules are data (:data:`~.decoding.DEFAULT_SCHEDULES`);
- :mod:`.inference`: :func:`load_model` and :func:`predict` (camera, depth, gaze, rgb,
  camera_rgbd from raw clips).

Public names are imported lazily (``import egosim.egom2p.model`` loads no torch module).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "EgoM2P": "transformer",
    "Architecture": "transformer",
    "SIZES": "transformer",
    "sample_masks": "masking",
    "make_mod_dict": "masking",
    "run": "train",
    "build_model": "train",
    "DecodeStep": "decoding",
    "DEFAULT_SCHEDULES": "decoding",
    "decode": "decoding",
    "default_schedule": "decoding",
    "load_model": "inference",
    "predict": "inference",
    "predict_batch": "inference",
    "TASKS": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
