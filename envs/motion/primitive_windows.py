"""Cut motion into EgoGen's motion primitives: 20 frames at 40 fps (2 history + 18 future).

Windows start every ``stride`` frames; each window is expressed in its own canonical frame
(:mod:`.canonical`), built from the pelvis and hips of its first frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PRIMITIVE_FRAMES", "HISTORY_FRAMES", "window_starts", "cut_windows"]

#: Frames per primitive and history frames among them (EgoGen).
PRIMITIVE_FRAMES: int = 20
HISTORY_FRAMES: int = 2


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
