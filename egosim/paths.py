"""Where egosim keeps packaged data and its on-disk cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "package_root", "configs_dir"]


def package_root() -> Path:
    """Directory of the installed ``egosim`` package root module."""
    return Path(__file__).resolve().parent


def configs_dir() -> Path:
    """Directory holding the shipped YAML configs (package ``egosim.configs``)."""
    import egosim.configs

    return Path(egosim.configs.__file__).resolve().parent


def cache_dir(*parts: str) -> Path:
    """Cache directory for derived data (``EGOSIM_CACHE_DIR`` or ``~/.cache/egosim``).

    Sub-directories named by ``parts`` are created on demand. Everything in it can be
    deleted at any time; it is regenerated deterministically.
    """
    root = os.environ.get("EGOSIM_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "egosim"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
