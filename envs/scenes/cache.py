"""On-disk cache of derived scene data (walk maps, SDF grids) in ``cache_dir('scenes')``.

Files are ``.npz`` archives named by a key that hashes the scene's content hash with the
parameters the data depends on, so a changed scene or parameter never reads stale data.
Each file is a self-checking entry (:mod:`egosim.cache_entry`): it holds its key and a
checksum, and its arrays must match the layout of its kind (:data:`ENTRY_SPECS`, by the
key's ``{kind}-`` prefix). A file that is unreadable, belongs to another key, lacks an
array, has a wrong dtype or shape, NaN/inf where none may be, or fails the checksum is
reported once (:class:`~egosim.cache_entry.CorruptCacheWarning`), deleted and recomputed.
Writes are atomic (:mod:`egosim.atomic_io`), so parallel workers never read a half
written archive.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from egosim.cache_entry import ArraySpec, check_arrays, load_entry, save_entry
from egosim.paths import cache_dir

__all__ = ["ENTRY_SPECS", "cache_key", "cache_path", "load_arrays", "save_arrays"]

# Bump when the stored format or the algorithms that produce it change.
CACHE_VERSION = 2

#: Array layout of each kind of entry (the key's prefix): walk maps
#: (:meth:`~egosim.envs.scenes.walkability.WalkMap.to_arrays`; floor heights are NaN off the
#: floor) and SDF grids (:class:`~egosim.envs.scenes.sdf.SDFGrid`).
ENTRY_SPECS: dict[str, dict[str, ArraySpec]] = {
    "walk": {
        "floor": ArraySpec("bool", ("H", "W")),
        "floor_height": ArraySpec("float32", ("H", "W")),
        "origin": ArraySpec("float64", (2,), finite=True),
        "resolution": ArraySpec("float64", (), finite=True, positive=True),
    },
    "sdf": {
        "values": ArraySpec("float32", (None, None, None), finite=True),
        "origin": ArraySpec("float64", (3,), finite=True),
        "resolution": ArraySpec("float64", (), finite=True, positive=True),
    },
}


def cache_key(kind: str, content_hash: str, **params: object) -> str:
    """File stem ``{kind}-{hash}`` for data of ``kind`` depending on ``params``."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "scene": content_hash, **params}, sort_keys=True, default=str
    )
    return f"{kind}-{hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()}"


def cache_path(key: str) -> Path:
    """Path of the archive for ``key`` under ``cache_dir('scenes')``."""
    return cache_dir("scenes") / f"{key}.npz"


def _spec(key: str) -> dict[str, ArraySpec]:
    return ENTRY_SPECS.get(key.split("-", 1)[0], {})


def load_arrays(key: str) -> dict[str, np.ndarray] | None:
    """Arrays stored under ``key``, or None when absent or bad (a bad file is reported with
    a :class:`~egosim.cache_entry.CorruptCacheWarning` and deleted)."""
    return load_entry(cache_path(key), key, _spec(key), what="scene cache file")


def save_arrays(key: str, arrays: dict[str, np.ndarray], compress: bool = False) -> Path:
    """Store ``arrays`` under ``key`` (atomic rename, zip-deflated when ``compress``);
    returns the file path.

    Raises:
        ValueError: ``arrays`` do not match the layout of the key's kind (they would be
            refused when read back).
    """
    problem = check_arrays(arrays, _spec(key))
    if problem is not None:
        raise ValueError(f"scene cache entry {key}: {problem}")
    return save_entry(cache_path(key), key, arrays, compress=compress)
