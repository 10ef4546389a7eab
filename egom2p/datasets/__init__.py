"""Datasets of simulated clips: generated on demand, crash-safe, read back, mixed, on Ray.

Public names (imported lazily: ``import egosim.egom2p.datasets`` loads neither torch nor
Ray; Ray only ever loads with :mod:`.ray_backend`):

- :func:`.generate.generate` (import it from the module: the package attribute
  ``generate`` is the module), :func:`run_generate`: ``egosim generate``, WebDataset
  shards of clips (``task=clips``) or of per-frame human-mesh-recovery labels
  (``task=hmr``) in either layout (:mod:`.layout`), resumable after ``kill -9``, the same
  bytes for any number of workers or backend;
  :class:`~egosim.egom2p.generate_config.GenerateConfig`.
- :func:`make_shard`, :func:`verify_shard` (:mod:`.shards`): one shard, its done record.
- :func:`hmr_labels`, :func:`params_to_camera` (:mod:`.hmr`): the HMR labels.
- :class:`ShardSource`, :class:`MixedStream` (:mod:`.mix`): read a generated dataset as an
  ``IterableDataset``; mix it with the live stream by weight.
- :class:`RaySource`, :func:`run_ray` (:mod:`.ray_backend`): clips from Ray actors in a
  deterministic order; the ``backend=ray`` shard runner.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "run_generate": "generate",
    "make_shard": "shards",
    "verify_shard": "shards",
    "ShardJob": "shards",
    "hmr_labels": "hmr",
    "params_to_camera": "hmr",
    "ShardSource": "mix",
    "MixedStream": "mix",
    "RaySource": "ray_backend",
    "run_ray": "ray_backend",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
