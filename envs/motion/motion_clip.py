"""``MotionClip``: a body-motion sequence as SMPL-X parameters in egosim's z-up world.

World convention (AMASS's SMPL-X convention, also EgoGen's): evaluating SMPL-X with a clip's
``global_orient``, ``body_pose``, ``transl`` and ``betas`` gives vertices, joints and markers
directly in the WORLD frame: metres, ``+z`` up, the floor at ``z = 0``. ``global_orient``
therefore includes the y-up-body to z-up-world rotation: a body standing upright and facing
world ``+x`` has ``global_orient = rotvec(Y_UP_TO_Z_UP)`` (``≈ (1.2092, 1.2092, 1.2092)``),
see :mod:`egosim.envs.humans.world_frame`. SMPL-X rotates the body about its rest pelvis joint
``J0(betas)``, so the world pelvis position is ``J0(betas) + transl``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from egosim.envs.motion.body_sequences import evaluate, gender_code
from egosim.envs.motion.primitive_windows import MOTION_FPS

__all__ = ["MotionClip", "MOTION_FPS", "STANDING_ORIENT"]



def _standing_orient() -> np.ndarray:
    from egosim.envs.humans.world_frame import Y_UP_TO_Z_UP
    from egosim.envs.motion.rotations_numpy import matrix_to_rotvec

    return matrix_to_rotvec(np.asarray(Y_UP_TO_Z_UP, dtype=np.float64))


#: ``global_orient`` (axis-angle) of an upright body facing world ``+x``.
STANDING_ORIENT: np.ndarray = _standing_orient()


@dataclass(frozen=True)
class MotionClip:
    """A motion clip (see the module docstring for the frame).

    Attributes:
        name: clip name (for held-out splits and logs).
        global_orient: ``(T, 3)`` axis-angle (rad) body -> z-up world.
        body_pose: ``(T, 63)`` axis-angles of SMPL-X's 21 body joints (rad), joint order of
            :data:`egosim.envs.humans.JOINT_NAMES` ``[1:22]``.
        transl: ``(T, 3)`` SMPL-X translation (m), world frame.
        betas: ``(10,)`` shape coefficients.
        gender: ``"neutral"``, ``"male"`` or ``"female"``.
        fps: frames per second.
        meta: free-form provenance (source file, augmentation ops and their seeds).
    """

    name: str
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10))
    gender: str = "neutral"
    fps: float = MOTION_FPS
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        go = np.asarray(self.global_orient, dtype=np.float64)
        t = go.shape[0] if go.ndim == 2 else -1
        checks = {"global_orient": (go, (t, 3)),
                  "body_pose": (np.asarray(self.body_pose, dtype=np.float64), (t, 63)),
                  "transl": (np.asarray(self.transl, dtype=np.float64), (t, 3)),
                  "betas": (np.asarray(self.betas, dtype=np.float64), (10,))}
        for name, (arr, shape) in checks.items():
            if arr.shape != shape or t < 1:
                raise ValueError(f"MotionClip.{name} must have shape "
                                 f"{tuple('T' if s == t else s for s in shape)} with T >= 1 "
                                 f"matching global_orient; got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"MotionClip.{name} contains NaN or inf")
            object.__setattr__(self, name, arr)
        gender_code(self.gender)
        if not self.fps > 0:
            raise ValueError(f"MotionClip.fps must be positive; got {self.fps!r}")

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.global_orient.shape[0])

    @property
    def duration(self) -> float:
        """Length (s) from the first to the last frame: ``(T - 1) / fps``."""
        return (self.num_frames - 1) / self.fps

    def replace(self, **changes: Any) -> MotionClip:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def slice(self, start: int, stop: int | None = None) -> MotionClip:
        """Frames ``[start, stop)`` as a new clip."""
        s = slice(start, stop)
        return self.replace(global_orient=self.global_orient[s], body_pose=self.body_pose[s],
                            transl=self.transl[s])

    def evaluate(self) -> tuple[np.ndarray, np.ndarray]:
        """``markers (T, 67, 3)`` and ``joints (T, 55, 3)`` in the z-up world (m)."""
        return evaluate(self.global_orient, self.body_pose, self.transl, self.betas,
                        self.gender)

    def markers(self) -> np.ndarray:
        """The 67 SSM2 markers ``(T, 67, 3)`` in the z-up world (m)."""
        return self.evaluate()[0]
