"""The scene specs :func:`egosim.envs.scenes.load` accepts: the one home of that table.

A spec is one of :data:`SPECS` (built-in sources) or a path whose suffix is one of
:data:`MESH_SUFFIXES` (a mesh file). Configs validate their scene keys with
:func:`check_scene_spec`; the loader dispatches with :func:`spec_source`.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SPECS", "MESH_SUFFIXES", "check_scene_spec", "spec_source"]

#: Built-in scene sources.
SPECS: tuple[str, ...] = (
    "procedural:room",
    "procedural:apartment",
    "pybullet:samurai",
    "pybullet:stadium",
)
#: Suffixes (lower case) of the mesh files a scene can be loaded from.
MESH_SUFFIXES: tuple[str, ...] = (".obj", ".glb", ".gltf", ".ply")


def _message(value: object) -> str:
    return (f"unknown scene spec {value!r}; use one of {', '.join(SPECS)} "
            f"or a path to a mesh file ({', '.join(MESH_SUFFIXES)})")


def spec_source(spec: str | os.PathLike[str]) -> str:
    """The source of ``spec``: the spec itself for a built-in one, ``"file"`` for a mesh path.

    Raises:
        ValueError: neither a built-in spec nor a path with a mesh suffix (the message lists
            the valid specs and suffixes).
    """
    if isinstance(spec, str) and spec in SPECS:
        return spec
    if isinstance(spec, (str, os.PathLike)) and Path(spec).suffix.lower() in MESH_SUFFIXES:
        return "file"
    raise ValueError(_message(spec))


def check_scene_spec(value: str) -> str:
    """Return ``value`` if it is a built-in spec or a mesh path; else ValueError listing the
    valid specs (for config validators)."""
    spec_source(value)
    return value
