"""Hand pose basis (SMPL-X's ``hands_components{l,r}``, ``hands_mean{l,r}``) of the procedural body.

A hand pose is 15 joints x 3 axis-angle values (45,), joints in SMPL-X order: index1-3,
middle1-3, pinky1-3, ring1-3, thumb1-3, in the parent joint's frame, which in the T-pose rest
equals the canonical frame (``+x`` left, ``+y`` up, ``+z`` forward). The left hand points
along ``+x``, palm down, thumb forward, so finger flexion is a rotation about ``-z`` and
spreading is a rotation about ``±y``. The right hand is the mirror image: an axis-angle
``(a, b, c)`` on the left becomes ``(a, -b, -c)`` on the right.

The basis is orthonormal (rows are components, as smplx expects). Its first components are
designed, the rest complete the basis (Gram-Schmidt on the identity):

| component | meaning                                                    |
|-----------|------------------------------------------------------------|
| 0         | curl of all fingers and the thumb (fist)                   |
| 1         | spread of the fingers                                      |
| 2         | thumb opposition (thumb swings under the palm)             |
| 3         | claw vs flat: proximal joints against the distal ones      |
| 4         | pointing: index straight, other fingers curled             |
| 5         | ulnar gradient: little and ring fingers curl more          |

``hands_mean`` is a relaxed half-curl (smplx adds it unless ``flat_hand_mean=True``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HAND_JOINTS", "hand_components", "hand_mean", "mirror_hand_pose"]

HAND_JOINTS: tuple[str, ...] = tuple(
    f"{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)
)

_FLEX = np.array([0.0, 0.0, -1.0])
_THUMB_FLEX = np.array([0.8, 0.0, -0.6])
_SPREAD = {"index": -0.25, "middle": 0.0, "ring": 0.12, "pinky": 0.3}  # about +y (rad/unit)


def _pose(values: dict[str, np.ndarray]) -> np.ndarray:
    out = np.zeros((15, 3))
    for name, vec in values.items():
        out[HAND_JOINTS.index(name)] = vec
    return out.ravel()


def _curl(per_finger: dict[str, tuple[float, float, float]], thumb: tuple[float, float, float]
          ) -> np.ndarray:
    vals: dict[str, np.ndarray] = {}
    for f, amounts in per_finger.items():
        for i, a in enumerate(amounts):
            vals[f"{f}{i + 1}"] = a * _FLEX
    vals["thumb2"] = thumb[1] * _THUMB_FLEX
    vals["thumb3"] = thumb[2] * _THUMB_FLEX
    vals["thumb1"] = thumb[0] * _THUMB_FLEX
    return _pose(vals)


def _designed_left() -> list[np.ndarray]:
    fingers = ("index", "middle", "ring", "pinky")
    fist = _curl({f: (1.0, 1.0, 0.8) for f in fingers}, (0.2, 0.6, 0.8))
    spread = _pose({f"{f}1": np.array([0.0, s, 0.0]) for f, s in _SPREAD.items()})
    oppose = _pose({"thumb1": np.array([1.0, 0.0, 0.0]), "thumb2": 0.4 * _THUMB_FLEX,
                    "thumb3": 0.3 * _THUMB_FLEX})
    claw = _curl({f: (-0.8, 1.0, 1.0) for f in fingers}, (0.0, 0.0, 0.0))
    point = _curl({"index": (-0.5, -0.5, -0.5), "middle": (1.0, 1.0, 0.8),
                   "ring": (1.0, 1.0, 0.8), "pinky": (1.0, 1.0, 0.8)}, (0.3, 0.5, 0.5))
    ulnar = _curl({"index": (-0.6, -0.6, -0.6), "middle": (-0.2, -0.2, -0.2),
                   "ring": (0.4, 0.4, 0.4), "pinky": (0.8, 0.8, 0.8)}, (0.0, 0.0, 0.0))
    return [fist, spread, oppose, claw, point, ulnar]


def mirror_hand_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror left-hand axis-angles to the right hand (``(..., 45)`` -> same shape)."""
    p = np.asarray(pose, dtype=np.float64).reshape(*np.shape(pose)[:-1], 15, 3).copy()
    p[..., 1:] *= -1.0
    return p.reshape(np.shape(pose))


def hand_components(side: str) -> np.ndarray:
    """Orthonormal hand PCA basis ``(45, 45)`` (rows are components) for ``"left"``/``"right"``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    designed = _designed_left()
    m = np.concatenate([np.stack(designed, axis=1), np.eye(45)], axis=1)
    q, _ = np.linalg.qr(m)
    for i, d in enumerate(designed):
        if q[:, i] @ d < 0:
            q[:, i] *= -1.0
    basis = q.T.copy()
    return basis if side == "left" else mirror_hand_pose(basis)


def hand_mean(side: str) -> np.ndarray:
    """Relaxed hand pose ``(45,)`` (rad, axis-angle per joint) for ``"left"``/``"right"``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    fingers = {"index": (0.12, 0.2, 0.12), "middle": (0.15, 0.25, 0.15),
               "ring": (0.18, 0.28, 0.15), "pinky": (0.22, 0.3, 0.18)}
    mean = _curl(fingers, (0.05, 0.15, 0.15))
    return mean if side == "left" else mirror_hand_pose(mean)
