"""SMPL-X virtual humans: body model, procedural default body, markers, parts, appearance.

Public API (imported lazily, so ``import egosim.envs.humans`` does not load torch):

- :class:`BodyModel` — batched SMPL-X (``smplx.SMPLX``) from licensed files
  (``model_dir=`` or ``$EGOSIM_SMPLX_DIR``) or the embedded procedural body; ``markers_only``
  fast path.
- :func:`markers`, :data:`MARKER_NAMES`, :data:`MARKER_VERTEX_IDS`,
  :data:`FOOT_MARKER_INDICES`, :func:`eye_midpoint` — EgoGen's 67 SSM2 markers, head rig.
- :func:`body_part_labels`, :data:`BODY_PART_NAMES` — a body part per vertex.
- :func:`sample_appearance`, :class:`Appearance` — skin and clothing colours from a seed.
- :data:`Y_UP_TO_Z_UP`, :func:`body_to_world` — place a y-up body in the z-up world.
- :func:`procedural_model_path`, :func:`generate_body_arrays` — the procedural SMPL-X files.
- :data:`JOINT_NAMES`, :data:`PARENTS`, :data:`SHAPE_NAMES`, :data:`EXPRESSION_NAMES`.
- :data:`GENDERS` (:mod:`.model_files`), :mod:`.body_proxy` (posed bodies as renderer meshes).

Generation-only modules of the embedded body live in :mod:`.procedural`.

Skinning paths (all equal ``smplx.SMPLX.forward`` on what they return, up to float rounding,
unless the row says otherwise; the tests check each against smplx):

=====================================================  ====================================
path                                                   use it for
=====================================================  ====================================
``BodyModel.forward`` (``smplx.SMPLX``)                 reference; a few bodies, all outputs
                                                       (vertices, joints, landmarks)
``BodyModel.markers_only`` / ``vertices_subset``       a few vertices of independent bodies
(:mod:`.subset_skinning`, ``SparseLBS``)                (67 markers, a vertex subset); numpy
                                                       or torch, no gradients needed
:class:`~.sequence_skinning.SparseSkinning`            every vertex of sequences that share
(:mod:`.sequence_skinning`)                            a shape (rollouts, videos, meshes for
                                                       the renderer); sparse exact LBS
``BodyLayer.markers`` (:mod:`egosim.envs.motion.`       differentiable markers + joints in
``body_layer``)                                        training and in the prior's rollout
                                                       (tree-level kinematics, batched)
``PenetrationProbe.points`` (:mod:`egosim.envs.`        the reward's fixed vertex subsample;
``rewards``)                                           top-4 weights per vertex (approximate,
                                                       within millimetres), one matmul per
                                                       gender
=====================================================  ====================================
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BodyModel": "body_model",
    "resolve_model_file": "body_model",
    "SMPLX_DIR_ENV": "body_model",
    "markers": "marker_set",
    "eye_midpoint": "marker_set",
    "MARKER_NAMES": "marker_set",
    "MARKER_VERTEX_IDS": "marker_set",
    "FOOT_MARKER_NAMES": "marker_set",
    "FOOT_MARKER_INDICES": "marker_set",
    "EYE_JOINTS": "marker_set",
    "BodyProxy": "body_proxy",
    "body_part_labels": "body_parts",
    "BODY_PART_NAMES": "body_parts",
    "sample_appearance": "appearance",
    "Appearance": "appearance",
    "Y_UP_TO_Z_UP": "world_frame",
    "body_to_world": "world_frame",
    "procedural_model_path": "procedural.generator",
    "generate_body_arrays": "procedural.generator",
    "GENERATOR_VERSION": "procedural.generator",
    "GENDERS": "model_files",
    "JOINT_NAMES": "skeleton",
    "PARENTS": "skeleton",
    "SHAPE_NAMES": "procedural.shape_space",
    "EXPRESSION_NAMES": "procedural.shape_space",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        target = _EXPORTS[name]
        module = importlib.import_module(f"{__name__}.{target}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
