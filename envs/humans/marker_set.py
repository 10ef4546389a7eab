"""EgoGen's 67 SSM2 body markers and the eye-joint helpers of the head rig.

Marker ``i`` is SMPL-X vertex ``MARKER_VERTEX_IDS[i]`` (order of ``data/ssm2_67_markers.json``);
on the procedural body these vertices sit at the anatomical places their names describe.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
import torch

__all__ = ["load_marker_file", "MARKER_NAMES", "MARKER_VERTEX_IDS", "FOOT_MARKER_NAMES",
           "FOOT_MARKER_INDICES", "EYE_JOINTS", "markers", "eye_midpoint"]



def load_marker_file() -> dict:
    """The shipped ``data/ssm2_67_markers.json`` (``markers``: name -> vertex id, ...)."""
    text = resources.files("egosim.envs.humans").joinpath("data/ssm2_67_markers.json").read_text()
    return json.loads(text)


_DATA = load_marker_file()
#: The 67 marker names in file order.
MARKER_NAMES: tuple[str, ...] = tuple(_DATA["markers"])
#: SMPL-X vertex id of each marker, ``(67,)`` int64.
MARKER_VERTEX_IDS: np.ndarray = np.array([_DATA["markers"][n] for n in MARKER_NAMES],
                                         dtype=np.int64)
#: Names of the foot markers (used by the foot-contact and skating rewards).
FOOT_MARKER_NAMES: tuple[str, ...] = tuple(_DATA["foot_markers"])
#: Indices of the foot markers into :data:`MARKER_NAMES`, ``(6,)`` int64.
FOOT_MARKER_INDICES: np.ndarray = np.array([MARKER_NAMES.index(n) for n in FOOT_MARKER_NAMES],
                                           dtype=np.int64)
#: SMPL-X joint indices of the left and right eye (``left_eye_smplhf``, ``right_eye_smplhf``).
EYE_JOINTS: tuple[int, int] = (23, 24)


def _vertices_of(output_or_vertices: Any) -> torch.Tensor | np.ndarray:
    v = getattr(output_or_vertices, "vertices", output_or_vertices)
    if v is None:
        raise ValueError("the body output has no vertices (was return_verts=False?)")
    if v.ndim == 2:
        v = v[None]
    if v.ndim != 3 or v.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (B, V, 3) or (V, 3); got {tuple(v.shape)}")
    if v.shape[1] <= int(MARKER_VERTEX_IDS.max()):
        raise ValueError(f"vertices must be SMPL-X's (V = 10475); got V = {v.shape[1]}")
    return v


def markers(output_or_vertices: Any) -> torch.Tensor | np.ndarray:
    """The 67 SSM2 markers of posed bodies.

    Args:
        output_or_vertices: an smplx output (anything with ``.vertices``) or vertices
            ``(B, 10475, 3)`` / ``(10475, 3)``, torch or numpy, in any frame.

    Returns:
        ``(B, 67, 3)`` markers in :data:`MARKER_NAMES` order, same type/frame as the input.
    """
    v = _vertices_of(output_or_vertices)
    if isinstance(v, torch.Tensor):
        return v[:, torch.as_tensor(MARKER_VERTEX_IDS, device=v.device)]
    return v[:, MARKER_VERTEX_IDS]


def eye_midpoint(joints: Any) -> torch.Tensor | np.ndarray:
    """Midpoint of the two eye joints (23, 24): where EgoGen mounts the head camera.

    Args:
        joints: ``(B, J, 3)`` or ``(J, 3)`` with ``J >= 25`` (smplx's ``joints`` or an output).

    Returns:
        ``(B, 3)`` (a ``(J, 3)`` input counts as ``B = 1``), same type/frame as the input.
    """
    j = getattr(joints, "joints", joints)
    if j.ndim == 2:
        j = j[None]
    if j.ndim != 3 or j.shape[1] < 25 or j.shape[-1] != 3:
        raise ValueError(f"joints must have shape (B, J>=25, 3); got {tuple(j.shape)}")
    return 0.5 * (j[:, EYE_JOINTS[0]] + j[:, EYE_JOINTS[1]])
