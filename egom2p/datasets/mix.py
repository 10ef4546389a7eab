"""Generated datasets read back, and mixed with the live stream by weight.

:class:`ShardSource` reads a folder of ``egosim generate`` (either layout) as a torch
``IterableDataset`` of samples in the clip layout (numpy arrays under the clip keys,
``meta`` a dict, ``__key__``), shard by shard in order; DataLoader workers take every
``num_workers``-th shard. :class:`MixedStream` draws from several sources (a
:class:`~egosim.egom2p.stream.SimStream`, shard sources, any iterables of clips) by weight
with its own seeded generator and tags every sample with ``available``, the modalities it
has (a tuple of :data:`~egosim.egom2p.config.CLIP_MODALITIES` names, from its raw keys or
its ``tokens_<modality>``), and ``source``, the index of the source it came from, so a
masked model can mask the absent modalities of mixed batches::

    from egosim.egom2p.datasets import MixedStream, ShardSource
    from egosim.egom2p.stream import SimStream

    mixed = MixedStream([(SimStream(seed=0), 0.5), (ShardSource("data/sim"), 0.5)], seed=0)
    for sample in mixed:
        sample["available"], sample["source"]

**Determinism.** For a seed (and DataLoader worker count) the same samples come in the
same order: the draws come from ``SeedSequence([seed, worker])``, the live stream is a pure
function of its seed and worker, the shards are read in order. A finite source that runs
out leaves the mix (the others' weights renormalised); the mix ends when every source has.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from egosim.egom2p.config import CLIP_MODALITIES
from egosim.egom2p.datasets.layout import DATASET_JSON, META_DIR, decode_entry
from egosim.egom2p.datasets.shards import iter_tar

__all__ = ["MixedStream", "ShardSource", "available_modalities"]

_RAW_KEYS = {"rgb": ("rgb",), "depth": ("depth",), "camera": ("camera_9d", "camera"),
             "gaze": ("gaze",)}


def available_modalities(sample: dict[str, Any]) -> tuple[str, ...]:
    """The modalities ``sample`` holds (raw keys or ``tokens_<m>``), in
    :data:`~egosim.egom2p.config.CLIP_MODALITIES` order."""
    return tuple(m for m in CLIP_MODALITIES
                 if f"tokens_{m}" in sample or any(k in sample for k in _RAW_KEYS[m]))


class ShardSource(IterableDataset):
    """The samples of a generated dataset (module docstring).

    Args:
        root: the dataset folder (holds ``dataset.json``).
        loop: start again after the last shard (an endless source, for mixing).
        keys: keep only these sample keys (plus ``meta`` and ``__key__``); None: all.

    Raises:
        FileNotFoundError: no ``dataset.json`` in ``root``.
        ValueError: the dataset is not complete (run ``egosim generate`` again).
    """

    def __init__(self, root: str | Path, loop: bool = False,
                 keys: Sequence[str] | None = None) -> None:
        super().__init__()
        self.root = Path(root)
        path = self.root / DATASET_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{self.root} has no {DATASET_JSON}: not a dataset of "
                                    "egosim generate")
        self.record = json.loads(path.read_text())
        if self.record.get("status") != "complete":
            raise ValueError(f"{self.root} is not complete; run the same egosim generate "
                             "command again to finish it")
        self.loop = bool(loop)
        self.keys = None if keys is None else set(keys)

    @property
    def num_samples(self) -> int:
        """Samples in the dataset (one pass)."""
        return int(self.record["counts"]["samples"])

    def __len__(self) -> int:
        return self.num_samples

    def _shard(self, files: dict[str, Any]) -> Iterator[dict[str, Any]]:
        rels = sorted(files)
        if self.record["layout"] == "clips":
            for key, entries in iter_tar(self.root / rels[0]):
                yield self._sample(key, entries)
            return
        parts = {rel.split("/", 1)[0]: iter_tar(self.root / rel) for rel in rels}
        meta = parts.pop(META_DIR)
        for key, entries in meta:
            sample: dict[str, Any] = {"__key__": key, "meta": decode_entry(
                "meta.json", entries["json"])}
            for m, it in parts.items():
                k2, e2 = next(it)
                if k2 != key:
                    raise ValueError(f"{self.root}: modality {m} has key {k2} where meta has "
                                     f"{key} (keys must align across modalities)")
                if self.keys is None or f"tokens_{m}" in self.keys:
                    sample[f"tokens_{m}"] = decode_entry("x.npy", e2["npy"])
            yield sample

    def _sample(self, key: str, entries: dict[str, bytes]) -> dict[str, Any]:
        out: dict[str, Any] = {"__key__": key}
        for name, data in entries.items():
            base = name.rsplit(".", 1)[0]
            if base == "meta" or self.keys is None or base in self.keys:
                out[base] = decode_entry(name, data)
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Samples in order; with DataLoader workers, worker ``w`` of ``n`` reads shards
        ``w, w + n, ...``."""
        info = get_worker_info()
        w, n = (0, 1) if info is None else (info.id, info.num_workers)
        shards = [s["files"] for s in self.record["shards"]][w::n]
        while True:
            for files in shards:
                yield from self._shard(files)
            if not self.loop or not shards:
                return


class MixedStream(IterableDataset):
    """Samples drawn from ``sources`` by weight (module docstring).

    Args:
        sources: ``(iterable, weight)`` pairs, weights > 0 (normalised).
        seed: the draws' seed.

    Raises:
        ValueError: no source, or a weight that is not > 0.
    """

    def __init__(self, sources: Sequence[tuple[Iterable[dict[str, Any]], float]],
                 seed: int = 0) -> None:
        super().__init__()
        if not sources:
            raise ValueError("sources must hold at least one (iterable, weight) pair")
        bad = [w for _, w in sources if not (float(w) > 0 and np.isfinite(float(w)))]
        if bad:
            raise ValueError(f"source weights must be finite and > 0; got {bad}")
        self.sources = [s for s, _ in sources]
        self.weights = np.array([float(w) for _, w in sources], np.float64)
        self.seed = int(seed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The mixed samples, each with ``available`` and ``source`` added."""
        info = get_worker_info()
        worker = 0 if info is None else int(info.id)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, worker]))
        its: list[Iterator[dict[str, Any]] | None] = [iter(s) for s in self.sources]
        w = self.weights.copy()
        while w.sum() > 0:
            i = int(rng.choice(len(w), p=w / w.sum()))
            try:
                sample = next(its[i])  # type: ignore[arg-type]
            except StopIteration:
                its[i], w[i] = None, 0.0
                continue
            out = dict(sample)
            out["available"] = available_modalities(out)
            out["source"] = i
            yield out
