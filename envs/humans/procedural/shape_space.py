"""Shape and expression directions of the procedural body, and its gender variants.

Each direction is a smooth linear displacement field ``(V, 3)`` (metres per unit
coefficient) on the neutral template, diffused along the surface so that it has no seams.
``shapedirs`` in the npz holds the 10 shape directions followed by the 10 expression
directions (SMPL-X's original 20-column layout).

Shape directions (``betas``), effect of ``+1``:

| # | name            | effect of +1                                                            |
|---|-----------------|-------------------------------------------------------------------------|
| 0 | height          | uniform scale about the pelvis by +4.5 % (about +7.6 cm standing height) |
| 1 | weight          | trunk and limbs 9 % thicker around their axes, belly forward            |
| 2 | leg_length      | legs 6 cm longer (feet move down, pelvis stays)                         |
| 3 | arm_length      | arms 4.5 cm longer, hands move outward                                  |
| 4 | shoulder_width  | shoulders and arms 3 cm further out on each side                        |
| 5 | hip_width       | hips and legs 2.5 cm further out on each side                           |
| 6 | torso_length    | everything above the waist 4.5 cm higher                                |
| 7 | head_size       | head scaled by +8 % about its centre                                    |
| 8 | belly           | abdomen 3.5 cm forward                                                  |
| 9 | limb_thickness  | arms and legs 8 % thicker (muscularity)                                 |

Expression directions (``expression``), face only (peak amplitudes before the final
surface smoothing, which lowers narrow peaks somewhat):

| # | name          | effect of +1                                |
|---|---------------|---------------------------------------------|
| 0 | jaw_open      | chin and lower lip 12 mm down               |
| 1 | smile         | mouth corners 5 mm up, 4 mm out             |
| 2 | brow_raise    | eyebrows 6 mm up                            |
| 3 | brow_furrow   | inner brows 5 mm down, 4 mm together        |
| 4 | pucker        | lips 6 mm forward, 3 mm together            |
| 5 | cheek_puff    | cheeks 5 mm outward                         |
| 6 | mouth_stretch | mouth corners 6 mm outward                  |
| 7 | squint        | lower eyelids / upper cheeks 7 mm up        |
| 8 | lip_press     | lips 4 mm back                              |
| 9 | nose_wrinkle  | nose 6 mm up                                |

Gender variants: ``male`` and ``female`` templates are the neutral template plus fixed
combinations of these fields (and a chest field), see :data:`GENDER_COEFFICIENTS`.
Frames: floor coordinates of the SMPL-X frame (``+x`` left, ``+y`` up, ``+z`` forward).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from egosim.envs.humans.procedural.implicit_shapes import Primitive
from egosim.envs.humans.procedural.skinning_weights import smooth_field
from egosim.envs.humans.skeleton import PELVIS_HEIGHT, joint_index

__all__ = ["SHAPE_NAMES", "EXPRESSION_NAMES", "GENDER_COEFFICIENTS", "shape_directions",
           "expression_directions", "chest_field", "gender_offset"]

SHAPE_NAMES: tuple[str, ...] = ("height", "weight", "leg_length", "arm_length",
                                "shoulder_width", "hip_width", "torso_length", "head_size",
                                "belly", "limb_thickness")
EXPRESSION_NAMES: tuple[str, ...] = ("jaw_open", "smile", "brow_raise", "brow_furrow",
                                     "pucker", "cheek_puff", "mouth_stretch", "squint",
                                     "lip_press", "nose_wrinkle")

#: Template of each gender = neutral + sum(c * shape direction) + chest * chest_field.
GENDER_COEFFICIENTS: dict[str, dict[str, float]] = {
    "neutral": {},
    "male": {"height": 0.8, "shoulder_width": 1.0, "hip_width": -0.5, "weight": 0.3,
             "limb_thickness": 0.5, "head_size": 0.2, "chest": -0.3},
    "female": {"height": -0.9, "shoulder_width": -0.9, "hip_width": 1.0,
               "limb_thickness": -0.4, "weight": -0.1, "chest": 1.0},
}


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(v: np.ndarray, c: tuple[float, ...], s: tuple[float, ...]) -> np.ndarray:
    q = (v - np.asarray(c)) / np.asarray(s)
    return np.exp(-0.5 * (q * q).sum(1))


def _mask(owners: np.ndarray, names: list[str]) -> np.ndarray:
    ids = [joint_index(n) for n in names]
    return np.isin(owners, ids).astype(np.float64)


def _chain(side_names: list[str]) -> list[str]:
    return [f"{s}_{n}" for s in ("left", "right") for n in side_names]


def shape_directions(v: np.ndarray, owners: np.ndarray, prims: list[Primitive],
                     adjacency: sparse.csr_matrix) -> np.ndarray:
    """The 10 shape directions ``(V, 3, 10)`` (m per unit beta) for template ``v`` ``(V, 3)``.

    ``v`` is in floor coordinates; ``owners`` the owner joint per vertex (see
    :func:`.skinning.owner_joints`); ``prims`` the primitives (for limb axes).
    """
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    sx = np.sign(x)
    n = len(v)
    fields = np.zeros((n, 3, 10))
    hands = [f"{s}_{f}{i}" for s in ("left", "right")
             for f in ("index", "middle", "ring", "pinky", "thumb") for i in (1, 2, 3)]
    arm = _mask(owners, _chain(["shoulder", "elbow", "wrist"]) + hands)
    limbs = _mask(owners, _chain(["shoulder", "elbow", "hip", "knee"]))
    head = _mask(owners, ["head", "jaw", "left_eye_smplhf", "right_eye_smplhf"])
    trunk = _mask(owners, ["pelvis", "spine1", "spine2", "spine3", "neck", "left_collar",
                           "right_collar"])
    arm_s = smooth_field(arm, adjacency, 6)
    head_s = smooth_field(head, adjacency, 6)
    limbs_s = smooth_field(limbs, adjacency, 6)
    trunk_s = smooth_field(trunk, adjacency, 6)

    # radial vectors: limbs from their bone axis, trunk horizontally from the body axis
    d = np.stack([p.distance(v) for p in prims], axis=1)
    nearest = np.argmin(d, axis=1)
    axis_pts = np.empty_like(v)
    for i, p in enumerate(prims):
        sel = nearest == i
        if sel.any():
            axis_pts[sel] = p.axis_point(v[sel])
    radial_limb = v - axis_pts
    radial_trunk = np.stack([x, np.zeros(n), z + 0.005], axis=1)

    canon = v - np.array([0.0, PELVIS_HEIGHT, 0.0])
    fields[:, :, 0] = 0.045 * canon
    fields[:, :, 1] = (0.09 * trunk_s[:, None] * radial_trunk
                       + 0.09 * limbs_s[:, None] * radial_limb)
    fields[:, 2, 1] += 0.02 * _gauss(v, (0.0, 1.02, 0.08), (0.12, 0.1, 0.06))
    fields[:, 1, 2] = -0.06 * _smoothstep(0.92, 0.08, y) * (1.0 - arm_s)
    reach = np.clip((np.abs(x) - 0.16) / (0.665 - 0.16), 0.0, 1.0)
    fields[:, 0, 3] = 0.045 * sx * reach * arm_s
    fields[:, 0, 4] = 0.03 * sx * _smoothstep(0.02, 0.16, np.abs(x)) * np.maximum(
        _smoothstep(1.25, 1.38, y) * (1.0 - head_s), arm_s)
    fields[:, 0, 5] = 0.025 * sx * _smoothstep(0.0, 0.12, np.abs(x)) * (
        1.0 - _smoothstep(0.95, 1.10, y)) * (1.0 - arm_s)
    fields[:, 1, 6] = 0.045 * np.maximum(_smoothstep(0.95, 1.40, y), arm_s)
    head_c = np.array([0.0, 1.59, 0.0])
    fields[:, :, 7] = 0.08 * head_s[:, None] * (v - head_c)
    front = _smoothstep(-0.02, 0.06, z)
    fields[:, 2, 8] = 0.035 * _gauss(v, (0.0, 1.03, 0.1), (0.11, 0.1, 0.08)) * front
    fields[:, :, 9] = 0.08 * limbs_s[:, None] * radial_limb
    return smooth_field(fields, adjacency, 3)


def chest_field(v: np.ndarray, adjacency: sparse.csr_matrix) -> np.ndarray:
    """Chest/bust displacement ``(V, 3)`` (m per unit): two 2.5 cm forward bulges."""
    front = _smoothstep(0.0, 0.07, v[:, 2])
    g = (_gauss(v, (0.075, 1.25, 0.1), (0.045, 0.045, 0.06))
         + _gauss(v, (-0.075, 1.25, 0.1), (0.045, 0.045, 0.06))) * front
    f = np.zeros_like(v)
    f[:, 2] = 0.025 * g
    f[:, 1] = -0.006 * g
    return smooth_field(f, adjacency, 2)


def expression_directions(v: np.ndarray, owners: np.ndarray,
                          adjacency: sparse.csr_matrix) -> np.ndarray:
    """The 10 expression directions ``(V, 3, 10)`` (m per unit), non-zero on the face only."""
    face = _mask(owners, ["head", "jaw"]) * _smoothstep(0.02, 0.06, v[:, 2])
    f = np.zeros((len(v), 3, 10))

    def g(c, s=(0.015, 0.012, 0.04)):
        return _gauss(v, c, s) * face

    corners = g((0.025, 1.527, 0.09)) + g((-0.025, 1.527, 0.09))
    sx = np.sign(v[:, 0])
    f[:, 1, 0] = -0.012 * _gauss(v, (0.0, 1.50, 0.08), (0.035, 0.025, 0.05)) * face
    f[:, 2, 0] = -0.004 * _gauss(v, (0.0, 1.50, 0.08), (0.035, 0.025, 0.05)) * face
    f[:, 1, 1] = 0.005 * corners
    f[:, 0, 1] = 0.004 * sx * corners
    brows = g((0.03, 1.632, 0.09), (0.025, 0.01, 0.04)) + g((-0.03, 1.632, 0.09),
                                                             (0.025, 0.01, 0.04))
    f[:, 1, 2] = 0.006 * brows
    inner = g((0.015, 1.628, 0.09), (0.01, 0.01, 0.04)) + g((-0.015, 1.628, 0.09),
                                                            (0.01, 0.01, 0.04))
    f[:, 1, 3] = -0.005 * inner
    f[:, 0, 3] = -0.004 * sx * inner
    lips = g((0.0, 1.527, 0.09), (0.025, 0.012, 0.04))
    f[:, 2, 4] = 0.006 * lips
    f[:, 0, 4] = -0.003 * sx * lips
    cheeks = g((0.045, 1.55, 0.07), (0.02, 0.02, 0.05)) + g((-0.045, 1.55, 0.07),
                                                            (0.02, 0.02, 0.05))
    f[:, 0, 5] = 0.005 * sx * cheeks
    f[:, 2, 5] = 0.002 * cheeks
    f[:, 0, 6] = 0.006 * sx * corners
    under_eyes = g((0.032, 1.59, 0.09), (0.015, 0.006, 0.04)) + g((-0.032, 1.59, 0.09),
                                                                  (0.015, 0.006, 0.04))
    f[:, 1, 7] = 0.007 * under_eyes
    f[:, 2, 8] = -0.004 * lips
    f[:, 1, 9] = 0.006 * g((0.0, 1.575, 0.11), (0.012, 0.015, 0.05))
    return smooth_field(f, adjacency, 2)


def gender_offset(gender: str, shapedirs: np.ndarray, chest: np.ndarray) -> np.ndarray:
    """Template offset ``(V, 3)`` (m) of ``gender`` from the neutral template.

    ``shapedirs`` ``(V, 3, >=10)``, ``chest`` ``(V, 3)`` from :func:`chest_field`.
    """
    if gender not in GENDER_COEFFICIENTS:
        raise ValueError(f"gender must be one of {sorted(GENDER_COEFFICIENTS)}, got {gender!r}")
    out = np.zeros(shapedirs.shape[:2])
    for name, c in GENDER_COEFFICIENTS[gender].items():
        out += c * (chest if name == "chest" else shapedirs[:, :, SHAPE_NAMES.index(name)])
    return out

