"""Scenes: labelled triangles of static 3-D worlds, with walkability, paths and an SDF.

``load(spec, seed=None, **options) -> Scene`` where ``spec`` is one of

==========================  ===================================================
spec                        source
==========================  ===================================================
``procedural:room``         one furnished room (:mod:`.procedural`)
``procedural:apartment``    2-6 furnished rooms joined by doorways
``pybullet:samurai``        pybullet's samurai monastery with its ground plane
``pybullet:stadium``        pybullet's stadium (:mod:`.pybullet_assets`)
a path (``.obj``, ``.glb``, ``.gltf``, ``.ply``)  a mesh file (:mod:`.meshfile`)
==========================  ===================================================

Options every source accepts (forwarded to :class:`Scene`): ``grid_resolution``,
``body_radius``, ``body_height``, ``floor_tolerance``, ``floor_level``, ``sdf_resolution``,
``sdf_max_voxels``, ``walk_max_cells`` (largest walk grid in cells, default 2.5e7). Source
options: ``procedural:room``: ``furnish``; ``procedural:apartment``: ``num_rooms``,
``furnish``; mesh files: ``up_axis`` (``'z'`` or ``'y'``), ``scale``, ``align_floor``.
"""

from __future__ import annotations

import os
from pathlib import Path

from egosim.envs.scenes.classes import CLASS_NAMES, NUM_CLASSES, class_id
from egosim.envs.scenes.scene import Scene
from egosim.envs.scenes.specs import MESH_SUFFIXES, SPECS, spec_source

__all__ = ["Scene", "load", "SPECS", "MESH_SUFFIXES", "CLASS_NAMES", "NUM_CLASSES", "class_id"]

SCENE_OPTIONS: tuple[str, ...] = (
    "grid_resolution",
    "body_radius",
    "body_height",
    "floor_tolerance",
    "floor_level",
    "sdf_resolution",
    "sdf_max_voxels",
    "walk_max_cells",
)

_SOURCE_OPTIONS: dict[str, tuple[str, ...]] = {
    "procedural:room": ("furnish",),
    "procedural:apartment": ("num_rooms", "furnish"),
    "pybullet:samurai": (),
    "pybullet:stadium": (),
    "file": ("up_axis", "scale", "align_floor"),
}


def _split_options(source: str, options: dict) -> tuple[dict, dict]:
    allowed = _SOURCE_OPTIONS[source]
    bad = sorted(set(options) - set(allowed) - set(SCENE_OPTIONS))
    if bad:
        raise ValueError(
            f"unknown option(s) {', '.join(bad)} for {source} scenes; valid options: "
            f"{', '.join(allowed + SCENE_OPTIONS)}"
        )
    scene = {k: v for k, v in options.items() if k in SCENE_OPTIONS}
    source_opts = {k: v for k, v in options.items() if k in allowed}
    return scene, source_opts


def load(spec: str | os.PathLike, seed: int | None = None, **options) -> Scene:
    """Load or generate a scene (world frame: metres, z up, floor at z = 0).

    Args:
        spec: one of :data:`SPECS` or a path to an OBJ/GLB/GLTF/PLY file.
        seed: seed of procedural scenes (None means 0); stored on the scene otherwise.
        **options: see the module docstring.

    Raises:
        ValueError: unknown spec (the message lists the valid ones) or option, bad option
            value, unreadable or empty mesh file (the message names the file).
        FileNotFoundError: a mesh path that does not exist.
    """
    source = spec_source(spec)
    scene_opts, src_opts = _split_options(source, options)
    if source == "procedural:room":
        from egosim.envs.scenes.procedural import generate_room

        return generate_room(seed, **src_opts, **scene_opts)
    if source == "procedural:apartment":
        from egosim.envs.scenes.procedural import generate_apartment

        return generate_apartment(seed, **src_opts, **scene_opts)
    if source.startswith("pybullet:"):
        from egosim.envs.scenes.pybullet_assets import load_pybullet_arrays

        arrays = load_pybullet_arrays(source.split(":", 1)[1])
        name = source
    else:
        from egosim.envs.scenes.meshfile import load_mesh_arrays

        arrays = load_mesh_arrays(spec, **src_opts)
        name = str(Path(spec))
    textures = arrays.pop("textures")
    return Scene(**arrays, textures=textures, name=name, seed=seed, **scene_opts)
