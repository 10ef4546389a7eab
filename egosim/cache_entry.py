"""Self-checking ``.npz`` cache entries: each carries its key and a checksum of its arrays.

A cache entry is an ``.npz`` archive written by :func:`save_entry`: the arrays plus
``cache_key`` (the key it was stored under) and ``checksum`` (:func:`array_checksum` of
everything else). :func:`entry_problem` says what is wrong with a file, if anything: it is
unreadable (truncated, zeroed, garbage, a bit flip the zip CRC catches), belongs to another
key, lacks an array, has an array of the wrong dtype or shape or with NaN/inf where
:class:`ArraySpec` forbids them, or fails the checksum. :func:`load_entry` reads an entry
and, when it is bad, reports it once (:class:`CorruptCacheWarning` naming the file and the
problem) and deletes it, so the caller rebuilds it.

Only the standard library and numpy are imported.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egosim.atomic_io import save_npz

__all__ = [
    "CHECKSUM_FIELD",
    "KEY_FIELD",
    "ArraySpec",
    "CorruptCacheWarning",
    "array_checksum",
    "check_arrays",
    "discard_entry",
    "entry_problem",
    "load_entry",
    "read_npz",
    "save_entry",
    "stamp",
]

#: Name of the array holding an entry's key.
KEY_FIELD = "cache_key"
#: Name of the array holding an entry's checksum.
CHECKSUM_FIELD = "checksum"


class CorruptCacheWarning(UserWarning):
    """A cache file was unreadable or failed its content check; it is deleted and rebuilt."""


@dataclass(frozen=True)
class ArraySpec:
    """What one array of an entry must look like.

    Attributes:
        dtype: a numpy dtype name (``"float32"``, ``"int8"``, ``"bool"``) or a one-letter
            dtype kind (``"U"``: any unicode string, ``"f"``: any float).
        shape: the shape; ints are fixed sizes, strings name sizes that must agree across
            the arrays of an entry (``("N", 3)``), None is any size. None: any shape.
        finite: no NaN or inf allowed (float arrays).
        positive: every value must be > 0 (sizes, resolutions).
    """

    dtype: str
    shape: tuple[int | str | None, ...] | None = None
    finite: bool = False
    positive: bool = False


def array_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """Hex BLAKE2b digest of names, dtypes, shapes and bytes of ``arrays`` (order-free).

    Raises:
        TypeError: an object array (its bytes are pointers, not content).
    """
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        if a.dtype.hasobject:
            raise TypeError(f"cannot checksum object array {name!r}")
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def stamp(arrays: Mapping[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    """``arrays`` plus their ``cache_key`` and ``checksum`` fields."""
    out = {k: v for k, v in arrays.items() if k not in (KEY_FIELD, CHECKSUM_FIELD)}
    out[KEY_FIELD] = np.asarray(str(key))
    out[CHECKSUM_FIELD] = np.asarray(array_checksum(out))
    return out


def save_entry(path: str | os.PathLike, key: str, arrays: Mapping[str, np.ndarray],
               compress: bool = False) -> Path:
    """Write the entry ``key`` (``arrays``, stamped) to ``path`` atomically."""
    return save_npz(path, stamp(arrays, key), compress=compress)


def check_arrays(arrays: Mapping[str, np.ndarray], spec: Mapping[str, ArraySpec]
                 ) -> str | None:
    """What is wrong with ``arrays`` by ``spec`` (first problem found), or None."""
    sizes: dict[str, int] = {}
    for name, want in spec.items():
        if name not in arrays:
            return f"array {name!r} is missing"
        a = np.asarray(arrays[name])
        if len(want.dtype) == 1:
            if a.dtype.kind != want.dtype:
                return f"array {name!r} has dtype {a.dtype}, expected kind {want.dtype!r}"
        elif a.dtype != np.dtype(want.dtype):
            return f"array {name!r} has dtype {a.dtype}, expected {want.dtype}"
        if want.shape is not None:
            if a.ndim != len(want.shape):
                return f"array {name!r} has shape {a.shape}, expected {len(want.shape)} dims"
            for axis, (have, dim) in enumerate(zip(a.shape, want.shape, strict=True)):
                if isinstance(dim, int) and have != dim:
                    return f"array {name!r} has shape {a.shape}, expected {want.shape}"
                if isinstance(dim, str) and sizes.setdefault(dim, have) != have:
                    return (f"array {name!r} has size {have} on axis {axis}, but {dim} is "
                            f"{sizes[dim]} in the other arrays")
        if want.finite and a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            return f"array {name!r} contains NaN or inf"
        if want.positive and not np.all(a > 0):
            return f"array {name!r} has values <= 0"
    return None


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """``(arrays, None)`` of a readable ``.npz`` (no pickles), else ``(None, problem)``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}, None
    except Exception as exc:  # truncated/garbage archives raise many types
        return None, f"unreadable ({type(exc).__name__}: {exc})"


def entry_problem(arrays: Mapping[str, np.ndarray], key: str,
                  spec: Mapping[str, ArraySpec] | None = None) -> str | None:
    """What is wrong with the entry ``arrays`` read for ``key``, or None when it is good."""
    for field in (KEY_FIELD, CHECKSUM_FIELD):
        if field not in arrays or np.asarray(arrays[field]).dtype.kind != "U":
            return f"no {field} (not written as a cache entry)"
    stored = str(arrays[KEY_FIELD])
    if stored != key:
        return f"it holds the entry {stored!r}, not {key!r}"
    problem = check_arrays(arrays, spec or {})
    if problem is not None:
        return problem
    body = {k: v for k, v in arrays.items() if k != CHECKSUM_FIELD}
    try:
        digest = array_checksum(body)
    except TypeError as exc:
        return str(exc)
    if digest != str(arrays[CHECKSUM_FIELD]):
        return "checksum mismatch (the content changed after it was written)"
    return None


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def discard_entry(path: str | os.PathLike, problem: str, what: str = "cache file",
                  seen: tuple[int, int, int] | None = None) -> None:
    """Report a bad entry (:class:`CorruptCacheWarning` naming ``path`` and ``problem``) and
    delete it; with ``seen`` (inode, size, mtime of the file that was checked) only if the
    file is still that one, not a good entry another process wrote meanwhile."""
    p = Path(path)
    warnings.warn(f"{what} {os.fspath(p)} is bad: {problem}; deleting and rebuilding it",
                  CorruptCacheWarning, stacklevel=3)
    if seen is None or _identity(p) == seen:
        p.unlink(missing_ok=True)


def load_entry(path: str | os.PathLike, key: str,
               spec: Mapping[str, ArraySpec] | None = None, discard: bool = True,
               what: str = "cache file") -> dict[str, np.ndarray] | None:
    """The arrays of the good entry ``key`` at ``path`` (without the key and checksum
    fields), or None when the file is absent or bad.

    A bad file is reported and deleted (:func:`discard_entry`) when ``discard``; else it is
    left alone silently (a first look before taking a lock).
    """
    p = Path(path)
    seen = _identity(p)
    if seen is None or not p.is_file():
        return None
    arrays, problem = read_npz(p)
    if arrays is not None:
        problem = entry_problem(arrays, key, spec)
    if problem is not None:
        if discard:
            discard_entry(p, problem, what, seen)
        return None
    assert arrays is not None
    return {k: v for k, v in arrays.items() if k not in (KEY_FIELD, CHECKSUM_FIELD)}
