"""EgoGen's motion primitive (20 frames at 40 fps: 2 history + 18 future) and the cutting of
motion into primitive windows.

The one home of the motion clock: :data:`MOTION_FPS`, :data:`PRIMITIVE_FRAMES`,
:data:`HISTORY_FRAMES`, :data:`FUTURE_FRAMES` (new frames per env step) and
:data:`STEP_SECONDS` (seconds of new motion per env step).

Windows start every ``stride`` frames; each window is expressed in its own canonical frame
(:mod:`.canonical_joints`), built from the pelvis and hips of its first frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MOTION_FPS", "PRIMITIVE_FRAMES", "HISTORY_FRAMES", "FUTURE_FRAMES", "STEP_SECONDS",
           "window_starts", "cut_windows"]

#: Frame rate of all motion (data, prior rollouts, the simulation), Hz.
MOTION_FPS: float = 40.0
#: Frames per primitive and history frames among them (EgoGen).
PRIMITIVE_FRAMES: int = 20
HISTORY_FRAMES: int = 2
#: New frames a primitive adds (one env step).
FUTURE_FRAMES: int = PRIMITIVE_FRAMES - HISTORY_FRAMES
#: Seconds of new motion per env step (18 / 40 = 0.45 s).
STEP_SECONDS: float = FUTURE_FRAMES / MOTION_FPS


def window_starts(num_frames: int, length: int = PRIMITIVE_FRAMES, stride: int = 10
                  ) -> np.ndarray:
    """Start frames ``(W,)`` of the full windows of ``length`` frames every ``stride`` frames.

    Raises:
        ValueError: ``length`` or ``stride`` not positive.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be positive; got {length}, {stride}")
    if num_frames < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, num_frames - length + 1, stride, dtype=np.int64)


def cut_windows(x: np.ndarray, starts: np.ndarray, length: int = PRIMITIVE_FRAMES
                ) -> np.ndarray:
    """Windows ``(W, length, ...)`` of a per-frame array ``x`` ``(T, ...)`` at ``starts``."""
    x = np.asarray(x)
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)[None]
    return x[idx]
