"""SMPL-X's 55-joint kinematic tree and the rest-pose joint centres of the procedural body.

Frame (canonical SMPL-X): metres, ``+y`` up, ``+x`` toward the body's LEFT, ``+z`` forward
(the direction the face looks). The rest pose is SMPL-X's T-pose: arms horizontal along
``±x`` with the palms down and the thumbs pointing forward, legs straight, feet flat.

The designed joint centres below are written in *floor coordinates* (``y = 0`` at the soles)
for a neutral adult 1.70 m tall and shifted by :data:`PELVIS_HEIGHT` so that the pelvis joint
sits at the origin, as in the published SMPL-X templates. Right-side joints mirror the left
ones (``x -> -x``).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "JOINT_NAMES",
    "NUM_JOINTS",
    "PARENTS",
    "PELVIS_HEIGHT",
    "STANDING_HEIGHT",
    "FINGER_NAMES",
    "FINGER_TIPS",
    "rest_joints",
    "design_point",
    "joint_index",
]

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")

#: Names of SMPL-X's 55 joints in the order of its ``kintree_table`` (and of ``joints[:, :55]``).
JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
) + tuple(f"left_{f}{i}" for f in _FINGERS for i in (1, 2, 3)) + tuple(
    f"right_{f}{i}" for f in _FINGERS for i in (1, 2, 3)
)

NUM_JOINTS: int = 55

#: SMPL-X's parent table (``kintree_table[0]``); ``-1`` for the root.
PARENTS: np.ndarray = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
     20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
     21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53],
    dtype=np.int64,
)

#: Height of the pelvis joint above the soles (m) in the neutral design.
PELVIS_HEIGHT: float = 0.95
#: Standing height of the neutral design (m), soles to top of the head.
STANDING_HEIGHT: float = 1.70

#: Finger names in SMPL-X order (per hand).
FINGER_NAMES: tuple[str, ...] = _FINGERS

# Left-hand finger layout in floor coordinates: knuckle (joint 1) position, pointing
# direction in the xz plane (palm down) and the three segment lengths (m); the last
# length runs from joint 3 to the finger tip.
_FINGER_LAYOUT: dict[str, tuple[tuple[float, float, float], tuple[float, float, float],
                                 tuple[float, float, float]]] = {
    "index": ((0.745, 1.397, 0.006), (1.0, 0.0, 0.10), (0.040, 0.024, 0.024)),
    "middle": ((0.749, 1.398, -0.016), (1.0, 0.0, -0.01), (0.045, 0.028, 0.025)),
    "ring": ((0.744, 1.397, -0.037), (1.0, 0.0, -0.09), (0.042, 0.027, 0.023)),
    "pinky": ((0.733, 1.395, -0.056), (1.0, 0.0, -0.20), (0.032, 0.020, 0.021)),
}
# Thumb: CMC, MCP, IP joints and the tip (floor coordinates, left hand).
_THUMB = ((0.688, 1.386, 0.004), (0.716, 1.381, 0.034), (0.742, 1.378, 0.052),
          (0.767, 1.377, 0.064))

# Body joints (left side and midline) in floor coordinates.
_BODY = {
    "pelvis": (0.0, 0.95, 0.0),
    "left_hip": (0.085, 0.875, 0.0),
    "spine1": (0.0, 1.06, -0.015),
    "left_knee": (0.095, 0.49, 0.01),
    "spine2": (0.0, 1.19, -0.012),
    "left_ankle": (0.10, 0.085, -0.03),
    "spine3": (0.0, 1.30, -0.008),
    "left_foot": (0.11, 0.027, 0.095),
    "neck": (0.0, 1.49, -0.022),
    "left_collar": (0.07, 1.425, -0.012),
    "head": (0.0, 1.565, -0.005),
    "left_shoulder": (0.16, 1.405, -0.018),
    "left_elbow": (0.43, 1.40, -0.026),
    "left_wrist": (0.665, 1.397, -0.02),
    "jaw": (0.0, 1.548, 0.028),
    "left_eye_smplhf": (0.032, 1.600, 0.072),
}


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def _finger_points_left() -> dict[str, np.ndarray]:
    """Left-hand finger joints and tips (floor coordinates, m): name -> (3,)."""
    out: dict[str, np.ndarray] = {}
    for name, (base, direction, lengths) in _FINGER_LAYOUT.items():
        d = _unit(direction)
        p = np.asarray(base, dtype=np.float64)
        for i, length in enumerate(lengths):
            if i < 3:
                out[f"left_{name}{i + 1}"] = p.copy()
            p = p + d * length
        out[f"left_{name}_tip"] = p
    for i, q in enumerate(_THUMB):
        key = f"left_thumb{i + 1}" if i < 3 else "left_thumb_tip"
        out[key] = np.asarray(q, dtype=np.float64)
    return out


def _mirror(p: np.ndarray) -> np.ndarray:
    return p * np.array([-1.0, 1.0, 1.0])


def _design_points() -> dict[str, np.ndarray]:
    """All designed points (joints and fingertips), floor coordinates (m), both sides."""
    pts: dict[str, np.ndarray] = {}
    for name, p in _BODY.items():
        pts[name] = np.asarray(p, dtype=np.float64)
    pts.update(_finger_points_left())
    for name in list(pts):
        if name.startswith("left_"):
            pts["right_" + name[5:]] = _mirror(pts[name])
    return pts


def rest_joints(floor: bool = False) -> np.ndarray:
    """Designed rest-pose joint centres of the neutral body.

    Args:
        floor: if True, return floor coordinates (soles at ``y = 0``); otherwise the
            canonical SMPL-X frame with the pelvis joint at the origin.

    Returns:
        ``(55, 3)`` float64 array in metres, rows in :data:`JOINT_NAMES` order.
    """
    pts = _design_points()
    j = np.stack([pts[n] for n in JOINT_NAMES])
    if not floor:
        j = j - np.array([0.0, PELVIS_HEIGHT, 0.0])
    return j


#: Names of the designed finger tips (not joints), per hand, in SMPL-X finger order.
FINGER_TIPS: tuple[str, ...] = tuple(f"{s}_{f}_tip" for s in ("left", "right") for f in _FINGERS)


def design_point(name: str, floor: bool = False) -> np.ndarray:
    """A designed joint or finger tip (e.g. ``"left_index_tip"``) as a ``(3,)`` array (m)."""
    pts = _design_points()
    if name not in pts:
        raise KeyError(f"unknown design point {name!r}; known: {sorted(pts)}")
    p = pts[name].copy()
    if not floor:
        p[1] -= PELVIS_HEIGHT
    return p


def joint_index(name: str) -> int:
    """Index of the SMPL-X joint ``name`` in :data:`JOINT_NAMES`; ValueError if unknown."""
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown joint {name!r}; allowed: {', '.join(JOINT_NAMES)}") from None
