"""EgoM2P: multimodal clips streamed live from the envs, their tokenizers and task metrics.

Imports ``egosim.envs`` and ``egosim.sensors``, never ``egosim.agents``: controllers are
named in the clip config by import path. Public names (imported lazily, so ``import
egosim.egom2p`` stays light):

- :class:`SimStream` (:mod:`.stream`): an endless ``torch.utils.data.IterableDataset`` of
  2-s clips; clip ``i`` of worker ``w`` under seed ``s`` is a pure function of ``(s, w, i)``.
- :class:`ClipBuilder` (:mod:`.clips`), :class:`ClipConfig` (:mod:`.config`): one worker's
  clip maker and its validated config (``configs/egom2p_clips.yaml``).
- :mod:`.camera_9d`: canonical trajectories <-> z-scored 9-D poses (Gram-Schmidt decode).
- :mod:`.metrics`: ATE, RTE, RRE, Sim(3) ATE, AbsRel, delta1.25, gaze L2, PSNR, SSIM.
- :func:`warped_depth_error` (:mod:`.consistency`): does a clip's depth agree with its own
  poses (frame k warped into frame k + 1, median relative difference on static pixels)?
- :data:`MODALITY_INFO` (:mod:`.modalities`): the one registry of modalities.
- :mod:`.tokenizers`: ``tokenizers.load(name)`` for rgb, depth, camera and gaze.
- :func:`load_model`, :func:`predict` (:mod:`.model`): the masked EgoM2P model on raw clips
  (camera, depth, gaze, rgb, camera_rgbd); training: :mod:`.model.train`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "SimStream": "stream",
    "ClipBuilder": "clips",
    "ClipConfig": "config",
    "MODALITY_INFO": "modalities",
    "metrics": "metrics",
    "camera_9d": "camera_9d",
    "tokenizers": "tokenizers",
    "load_model": "model.inference",
    "predict": "model.inference",
    "warped_depth_error": "consistency",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return module if _EXPORTS[name] == name else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
