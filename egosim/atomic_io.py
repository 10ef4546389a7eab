"""The one way egosim writes a file: atomically, so no crash leaves a broken file behind.

Every writer puts its bytes under a unique temporary name in the target's folder
(``.<name>.tmp-<pid>-<token><suffix>``: hidden, and keeping the target's suffix for writers
that pick the format from it), flushes and fsyncs them, then renames the file into place
with :func:`os.replace`. A reader therefore sees the old file or the complete new one, never
a half-written one; a process killed mid-write (``kill -9``, power loss) leaves at most a
temporary file, which :func:`remove_temp_files` clears later.

========================  ===============================================================
helper                    use
========================  ===============================================================
:func:`atomic_open`       file object to write (``"wb"`` or ``"w"``)
:func:`atomic_path`       a temporary path, for writers that need a path (SB3's
                          ``model.save``, imageio writers); renamed when the block ends
:func:`write_bytes`       bytes
:func:`write_text`        text (UTF-8 by default)
:func:`write_json`        ``json.dumps`` of an object
:func:`save_npz`          ``np.savez`` / ``np.savez_compressed`` of a dict of arrays
:func:`torch_save`        ``torch.save``
:func:`copy_file`         a copy of a file
:func:`file_lock`         exclusive inter-process lock (``fcntl.flock``) for work that
                          should not be done twice (building a cache entry)
:func:`move_aside`        rename a bad file out of the way (``<name>.bad``)
========================  ===============================================================

Only the standard library and numpy are imported at module level (torch on use).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_open",
    "atomic_path",
    "copy_file",
    "exit_on_sigterm",
    "file_lock",
    "is_temp_file",
    "move_aside",
    "newest_good_checkpoint",
    "remove_temp_files",
    "save_npz",
    "torch_save",
    "write_bytes",
    "write_json",
    "write_text",
]

_TEMP = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}(\.[^.]*)?$")


def _temp_path(path: Path) -> Path:
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{token}{path.suffix}")


def is_temp_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is named like a temporary file of this module."""
    return _TEMP.match(Path(path).name) is not None


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block
    ends without an exception, deleted otherwise.

    The temporary name keeps ``path``'s suffix, so writers that choose the format from it
    (or append one when missing) write exactly there. The parent folder is created.

    Raises:
        FileNotFoundError: the block ended without creating the temporary file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(target)
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"the writer of {target} did not create {tmp.name}")
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb",
                encoding: str | None = None) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` atomically when the block ends.

    Args:
        path: the file to (re)write.
        mode: ``"wb"`` (binary) or ``"w"`` (text).
        encoding: text encoding (``mode="w"`` only; default UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    with atomic_path(path) as tmp:
        if mode == "w":
            fh: IO[Any] = open(tmp, "x", encoding=encoding or "utf-8", newline="")
        else:
            fh = open(tmp, "xb")
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, **dumps: Any) -> Path:
    """Write ``json.dumps(obj, **dumps)`` to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, **dumps))


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
             compress: bool = False) -> Path:
    """Write ``arrays`` as an ``.npz`` archive to exactly ``path`` (no suffix is added),
    zip-deflated when ``compress``; atomic. Returns the path."""
    with atomic_open(path, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return Path(path)


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomic; returns the path."""
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)
    return Path(path)


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy the bytes of ``src`` to ``dst`` atomically; returns ``dst``."""
    with atomic_open(dst, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
    return Path(dst)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``<path>.lock`` (blocking) for the block.

    For work that should happen once however many processes want its result: take the lock,
    check whether another process has produced the result meanwhile, else produce it. The
    lock file itself is left in place (removing it would let two processes lock two
    different files). Where ``fcntl`` is missing (Windows) the block runs unlocked.
    """
    lock = Path(path)
    lock = lock.with_name(lock.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield lock
        return
    with open(lock, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield lock
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def move_aside(path: str | os.PathLike, tag: str = "bad") -> Path:
    """Rename ``path`` to ``<path>.<tag>`` (replacing an older one) so that it no longer
    matches the names readers look for; returns the new path."""
    p = Path(path)
    aside = p.with_name(f"{p.name}.{tag}")
    os.replace(p, aside)
    return aside


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_temp_files(folder: str | os.PathLike, max_age_s: float = 86400.0) -> list[Path]:
    """Delete the temporary files of writers that died before renaming them.

    A temporary file in ``folder`` is removed when the process that made it (its name holds
    the pid) no longer runs, or when it is older than ``max_age_s`` seconds (a pid reused
    since). Returns the removed paths.
    """
    removed: list[Path] = []
    base = Path(folder)
    if not base.is_dir():
        return removed
    now = time.time()
    for entry in base.iterdir():
        m = _TEMP.match(entry.name)
        if m is None or not entry.is_file():
            continue
        try:
            old = now - entry.stat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if old or not _alive(int(m.group(1))):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def newest_good_checkpoint(folder: str | os.PathLike, pattern: str,
                           read: Callable[[Path], Any], who: str
                           ) -> tuple[Path, Any] | None:
    """``(path, read(path))`` of the newest checkpoint ``folder/pattern`` that ``read``
    accepts, or None: the one resume rule of every trainer.

    Names must sort by age (zero-padded step numbers). A checkpoint ``read`` rejects with
    ``ValueError`` is reported in one line on stderr (prefixed ``who``), moved aside to
    ``<name>.bad`` (so it cannot shadow later saves) and the previous one is tried;
    temporary files of killed writers are removed first.
    """
    folder = Path(folder)
    remove_temp_files(folder)
    for path in sorted(folder.glob(pattern), reverse=True):
        try:
            return path, read(path)
        except ValueError as exc:
            aside = move_aside(path)
            print(f"{who}: checkpoint {path.name} is bad ({exc}); moved it to {aside.name}, "
                  "using the previous one", file=sys.stderr)
    return None


def exit_on_sigterm() -> Any:
    """Turn SIGTERM into ``SystemExit(128 + signum)`` so that a trainer's ``finally`` writes
    its exit checkpoint; returns the previous handler (restore it with
    ``signal.signal(signal.SIGTERM, previous)``), or None off the main thread, where
    handlers cannot be set and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)
