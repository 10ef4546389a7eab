"""Motion data and motion models (EgoGen's transition model).

Data half (imported lazily, so ``import egosim.envs.motion`` stays light):

- :mod:`.deepmimic` — the shipped DeepMimic clips (``load_motion``, ``list_motions``).
- :mod:`.retarget` — DeepMimic -> SMPL-X at 40 fps with planted feet (``retarget_named``).
- :mod:`.augment` — speed, turning, mirroring, start/stop, idle, transitions, body shapes.
- :mod:`.loaders` — AMASS ``.npz`` / SAMP ``.pkl`` / folders -> :class:`MotionClip`.
- :mod:`.primitive_windows`, :mod:`.canonical_joints` — 20-frame primitives in EgoGen's
  canonical frame (:mod:`.canonical_markers`: the same frame from markers alone, rollouts).
- :mod:`.primitive_dataset` — :class:`PrimitiveDataset` (the models' input), ``default_dataset``.
- :mod:`.foot_contact` — ``foot_contact_stats`` (foot height at contact, skating, pelvis).

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
    "MotionClip": "motion_clip",
    "MOTION_FPS": "primitive_windows",
    "STANDING_ORIENT": "motion_clip",
    "load_motion": "deepmimic",
    "list_motions": "deepmimic",
    "retarget": "retarget",
    "retarget_named": "retarget",
    "replant": "retarget",
    "load_amass": "loaders",
    "load_samp": "loaders",
    "load_folder": "loaders",
    "canonicalize": "canonical_joints",
    "uncanonicalize": "canonical_joints",
    "canonicalize_params": "canonical_joints",
    "PRIMITIVE_FRAMES": "primitive_windows",
    "HISTORY_FRAMES": "primitive_windows",
    "FUTURE_FRAMES": "primitive_windows",
    "STEP_SECONDS": "primitive_windows",
    "PrimitiveDataset": "primitive_dataset",
    "DatasetConfig": "primitive_dataset",
    "build_primitive_dataset": "primitive_dataset",
    "default_dataset": "primitive_dataset",
    "foot_contact_stats": "foot_contact",
    "FootContactStats": "foot_contact",
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
