"""Shared pieces of the sensor tests: boxes by centre and size; a floor, two walls, two boxes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from egosim.sensors import SimpleScene, box_triangles


def centered_box(center: ArrayLike, size: ArrayLike) -> np.ndarray:
    """``(12, 3, 3)`` float64 box triangles of edge lengths ``size`` (``(3,)`` or a scalar for
    a cube) around ``center``, metres (:func:`egosim.sensors.box_triangles` of its corners)."""
    c = np.asarray(center, np.float64)
    half = np.broadcast_to(np.asarray(size, np.float64), (3,)) / 2.0
    return box_triangles(c - half, c + half)


def room_with_boxes() -> SimpleScene:
    """Floor (class 1), two walls (class 2), a table (6) and a chair (7), instances 1-5."""
    sc = SimpleScene()
    sc.add(centered_box([0, 0, -0.05], [12, 12, 0.1]), 1, 1, (0.5, 0.5, 0.5))
    sc.add(centered_box([0, 6, 1.5], [12, 0.2, 3]), 2, 2, (0.9, 0.9, 0.8))
    sc.add(centered_box([-6, 0, 1.5], [0.2, 12, 3]), 2, 3, (0.8, 0.9, 0.9))
    sc.add(centered_box([0.5, 3, 0.4], [1.2, 0.8, 0.8]), 6, 4, (0.6, 0.3, 0.1))
    sc.add(centered_box([-1.5, 2, 0.45], [0.5, 0.5, 0.9]), 7, 5, (0.1, 0.3, 0.7))
    return sc
