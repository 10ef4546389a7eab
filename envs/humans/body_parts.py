"""Body-part label per vertex, derived from the skinning weights.

A vertex's part is the part of the joint with the largest skinning weight, through
:data:`JOINT_TO_PART`. Works for any SMPL-X weights array (procedural or licensed files).

| id | part            | joints                                   |
|----|-----------------|------------------------------------------|
| 0  | head            | head, jaw, eyes                          |
| 1  | neck            | neck                                     |
| 2  | torso           | pelvis, spine1-3, collars                |
| 3  | left_upper_arm  | left_shoulder                            |
| 4  | left_forearm    | left_elbow                               |
| 5  | left_hand       | left_wrist and left finger joints        |
| 6  | right_upper_arm | right_shoulder                           |
| 7  | right_forearm   | right_elbow                              |
| 8  | right_hand      | right_wrist and right finger joints      |
| 9  | left_thigh      | left_hip                                 |
| 10 | left_lower_leg  | left_knee                                |
| 11 | left_foot       | left_ankle, left_foot                    |
| 12 | right_thigh     | right_hip                                |
| 13 | right_lower_leg | right_knee                               |
| 14 | right_foot      | right_ankle, right_foot                  |
"""

from __future__ import annotations

import numpy as np

from .skeleton import JOINT_NAMES

__all__ = ["BODY_PART_NAMES", "JOINT_TO_PART", "body_part_labels", "part_index"]

BODY_PART_NAMES: tuple[str, ...] = (
    "head", "neck", "torso",
    "left_upper_arm", "left_forearm", "left_hand",
    "right_upper_arm", "right_forearm", "right_hand",
    "left_thigh", "left_lower_leg", "left_foot",
    "right_thigh", "right_lower_leg", "right_foot",
)


def _part_of(joint: str) -> str:
    if joint in ("head", "jaw", "left_eye_smplhf", "right_eye_smplhf"):
        return "head"
    if joint == "neck":
        return "neck"
    if joint in ("pelvis", "spine1", "spine2", "spine3", "left_collar", "right_collar"):
        return "torso"
    side, _, rest = joint.partition("_")
    table = {"shoulder": "upper_arm", "elbow": "forearm", "wrist": "hand", "hip": "thigh",
             "knee": "lower_leg", "ankle": "foot", "foot": "foot"}
    return f"{side}_{table.get(rest, 'hand')}"


#: Part name of each of the 55 SMPL-X joints (finger joints belong to the hand).
JOINT_TO_PART: dict[str, str] = {j: _part_of(j) for j in JOINT_NAMES}


def part_index(name: str) -> int:
    """Index of part ``name`` in :data:`BODY_PART_NAMES`; ValueError naming the allowed ones."""
    if name not in BODY_PART_NAMES:
        raise ValueError(f"unknown body part {name!r}; allowed: {', '.join(BODY_PART_NAMES)}")
    return BODY_PART_NAMES.index(name)


def body_part_labels(weights: np.ndarray | None = None) -> np.ndarray:
    """Body-part id per vertex.

    Args:
        weights: ``(V, 55)`` skinning weights; ``None`` uses the procedural neutral body's.

    Returns:
        ``(V,)`` int64 indices into :data:`BODY_PART_NAMES`.
    """
    if weights is None:
        from egosim.envs.humans.procedural.generator import procedural_model_path

        with np.load(procedural_model_path("neutral")) as data:
            weights = data["weights"]
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != len(JOINT_NAMES):
        raise ValueError(f"weights must have shape (V, 55); got {w.shape}")
    joint_part = np.array([BODY_PART_NAMES.index(JOINT_TO_PART[j]) for j in JOINT_NAMES])
    return joint_part[np.argmax(w, axis=1)].astype(np.int64)
