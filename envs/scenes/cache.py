"""On-disk cache of derived scene data (walk maps, SDF grids) in ``cache_dir('scenes')``.

Files are ``.npz`` archives named by a key that hashes the scene's content hash with the
parameters the data depends on, so a changed scene or parameter never reads stale data.
Writes go to a temporary file renamed into place, so parallel workers never read a half
written archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from egosim.paths import cache_dir

__all__ = ["cache_key", "cache_path", "load_arrays", "save_arrays"]

# Bump when the stored format or the algorithms that produce it change.
CACHE_VERSION = 1


def cache_key(kind: str, content_hash: str, **params: object) -> str:
    """File stem ``{kind}-{hash}`` for data of ``kind`` depending on ``params``."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "scene": content_hash, **params}, sort_keys=True, default=str
    )
    return f"{kind}-{hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()}"


def cache_path(key: str) -> Path:
    """Path of the archive for ``key`` under ``cache_dir('scenes')``."""
    return cache_dir("scenes") / f"{key}.npz"


def load_arrays(key: str) -> dict[str, np.ndarray] | None:
    """Arrays stored under ``key``, or None when absent or unreadable."""
    path = cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None


def save_arrays(key: str, arrays: dict[str, np.ndarray], compress: bool = False) -> Path:
    """Store ``arrays`` under ``key`` (atomic rename, zip-deflated when ``compress``);
    returns the file path."""
    path = cache_path(key)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
