"""Motion data and motion models (EgoGen's transition model; issue 4).

Data half (imported lazily, so ``import egosim.envs.motion`` stays light):

- :mod:`.deepmimic` — the shipped DeepMimic clips (``load_motion``, ``list_motions``).
- :mod:`.retarget` — DeepMimic -> SMPL-X at 40 fps with planted feet (``retarget_named``).
- :mod:`.augment` — speed, turning, mirroring, start/stop, idle, transitions, body shapes.
- :mod:`.loaders` — AMASS ``.npz`` / SAMP ``.pkl`` / folders -> :class:`MotionClip`.
- :mod:`.primitives`, :mod:`.canonical` — 20-frame primitives in EgoGen's canonical frame.
- :mod:`.data_dataset` — :class:`PrimitiveDataset` (the models' input), ``default_dataset``.
- :mod:`.data_stats` — ``foot_contact_stats`` (foot height at contact, skating, pelvis).

Model half:

- :mod:`.prior` — :class:`MotionPrior` (``load``, ``rollout``, ``reset``/``step``, ``decode``).
- :mod:`.cvae` — :class:`MarkerCVAE` (EgoGen's motion-primitive C-VAE) and its loss.
- :mod:`.regressor` — :class:`MarkerRegressor` (markers -> SMPL-X, 3 refinement iterations).
- :mod:`.body_layer` — :class:`BodyLayer` (differentiable markers, fast vertices).
- :mod:`.train_prior` — ``run(cfg)`` for ``egosim train-prior``; :mod:`.metrics` — figures.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module (relative to this package). Data modules first; model modules may add theirs.
_EXPORTS: dict[str, str] = {
    "MotionClip": "data_clip",
    "MOTION_FPS": "data_clip",
    "STANDING_ORIENT": "data_clip",
    "load_motion": "deepmimic",
    "list_motions": "deepmimic",
    "retarget": "retarget",
    "retarget_named": "retarget",
    "replant": "retarget",
    "load_amass": "loaders",
    "load_samp": "loaders",
    "load_folder": "loaders",
    "canonicalize": "canonical",
    "uncanonicalize": "canonical",
    "canonicalize_params": "canonical",
    "PRIMITIVE_FRAMES": "primitives",
    "HISTORY_FRAMES": "primitives",
    "PrimitiveDataset": "data_dataset",
    "DatasetConfig": "data_dataset",
    "build_primitive_dataset": "data_dataset",
    "default_dataset": "data_dataset",
    "foot_contact_stats": "data_stats",
    "FootContactStats": "data_stats",
    # model half
    "MotionPrior": "prior",
    "MarkerCVAE": "cvae",
    "CVAEConfig": "cvae",
    "MarkerRegressor": "regressor",
    "RegressorConfig": "regressor",
    "BodyLayer": "body_layer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
