"""Shared scene of the sensor tests: a floor, two walls and two boxes."""

from __future__ import annotations

from egosim.sensors import SimpleScene, box_triangles


def room_with_boxes() -> SimpleScene:
    """Floor (class 1), two walls (class 2), a table (6) and a chair (7), instances 1-5."""
    sc = SimpleScene()
    sc.add(box_triangles([0, 0, -0.05], [12, 12, 0.1]), 1, 1, (0.5, 0.5, 0.5))
    sc.add(box_triangles([0, 6, 1.5], [12, 0.2, 3]), 2, 2, (0.9, 0.9, 0.8))
    sc.add(box_triangles([-6, 0, 1.5], [0.2, 12, 3]), 2, 3, (0.8, 0.9, 0.9))
    sc.add(box_triangles([0.5, 3, 0.4], [1.2, 0.8, 0.8]), 6, 4, (0.6, 0.3, 0.1))
    sc.add(box_triangles([-1.5, 2, 0.45], [0.5, 0.5, 0.9]), 7, 5, (0.1, 0.3, 0.7))
    return sc
