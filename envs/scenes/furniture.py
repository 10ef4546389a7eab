"""Furniture built from closed boxes and cylinders, one instance per piece.

Each piece is described in a local frame: footprint ``[-w/2, w/2] x [-d/2, d/2]`` on the
floor (z = 0), its back towards local +y (placed against a wall) and its front towards
-y. :func:`add_furniture` rotates it by a multiple of 90 degrees about z and moves it to
its place, so its world footprint stays an axis-aligned rectangle (used for the overlap
tests of the layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.envs.scenes.classes import class_id
from egosim.envs.scenes.materials import base_color, jitter, rgb255
from egosim.envs.scenes.mesh_builder import MeshBuilder, cylinder_triangles
from egosim.sensors.shapes import box_triangles

__all__ = ["FURNITURE_CLASSES", "Part", "sample_footprint", "furniture_parts", "add_furniture"]

FURNITURE_CLASSES: tuple[str, ...] = (
    "table",
    "chair",
    "sofa",
    "bed",
    "shelf",
    "cabinet",
    "plant",
    "lamp",
)

# Secondary colour (legs, pots, poles) per class, linear RGB.
_ACCENT = {
    "table": rgb255(90, 60, 35),
    "chair": rgb255(60, 45, 30),
    "sofa": rgb255(45, 55, 90),
    "bed": rgb255(110, 80, 55),
    "shelf": rgb255(95, 70, 45),
    "cabinet": rgb255(60, 60, 60),
    "plant": rgb255(160, 85, 50),
    "lamp": rgb255(40, 40, 40),
}


@dataclass(frozen=True)
class Part:
    """One primitive of a piece, local frame (metres).

    ``kind`` is ``"box"`` (``a`` = lo corner ``(3,)``, ``b`` = hi corner ``(3,)``) or
    ``"cyl"`` (``a`` = ``(x, y, radius)``, ``b`` = ``(z0, z1, 0)``); ``accent`` selects the
    secondary colour.
    """

    kind: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    accent: bool = False


def _box(lo, hi, accent=False) -> Part:
    return Part("box", tuple(map(float, lo)), tuple(map(float, hi)), accent)


def _cyl(x, y, r, z0, z1, accent=False) -> Part:
    return Part("cyl", (float(x), float(y), float(r)), (float(z0), float(z1), 0.0), accent)


# (width range, depth range) of the local footprint per class, metres.
_FOOTPRINT = {
    "table": ((0.9, 1.6), (0.6, 0.9)),
    "chair": ((0.42, 0.5), (0.42, 0.5)),
    "sofa": ((1.6, 2.3), (0.8, 0.95)),
    "bed": ((1.4, 1.8), (1.95, 2.1)),
    "shelf": ((0.6, 1.2), (0.28, 0.4)),
    "cabinet": ((0.5, 1.2), (0.4, 0.6)),
    "plant": ((0.35, 0.6), (0.35, 0.6)),
    "lamp": ((0.3, 0.4), (0.3, 0.4)),
}


def sample_footprint(cls: str, rng: np.random.Generator) -> tuple[float, float]:
    """Random local footprint ``(w, d)`` in metres of a piece of class ``cls``."""
    if cls not in _FOOTPRINT:
        raise ValueError(f"unknown furniture class {cls!r}; valid: {', '.join(FURNITURE_CLASSES)}")
    (w0, w1), (d0, d1) = _FOOTPRINT[cls]
    w = float(rng.uniform(w0, w1))
    d = w if cls in ("plant", "lamp") else float(rng.uniform(d0, d1))
    return round(w, 3), round(d, 3)


def furniture_parts(cls: str, w: float, d: float, rng: np.random.Generator) -> list[Part]:
    """Primitives of a piece of class ``cls`` with local footprint ``w x d`` metres."""
    x, y = w / 2, d / 2
    if cls == "table":
        h = rng.uniform(0.72, 0.76) if rng.random() < 0.7 else rng.uniform(0.4, 0.5)
        leg, inset = 0.05, 0.04
        parts = [_box((-x, -y, h - 0.04), (x, y, h))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                cx, cy = sx * (x - inset - leg / 2), sy * (y - inset - leg / 2)
                parts.append(_box((cx - leg / 2, cy - leg / 2, 0), (cx + leg / 2, cy + leg / 2,
                                                                     h - 0.04), True))
        return parts
    if cls == "chair":
        seat, leg = rng.uniform(0.43, 0.47), 0.04
        back = rng.uniform(0.85, 0.95)
        parts = [_box((-x, -y, seat - 0.04), (x, y, seat))]
        for sx in (-1, 1):
            for sy in (-1, 1):
                cx, cy = sx * (x - leg / 2), sy * (y - leg / 2)
                parts.append(_box((cx - leg / 2, cy - leg / 2, 0), (cx + leg / 2, cy + leg / 2,
                                                                     seat - 0.04), True))
        parts.append(_box((-x, y - 0.04, seat), (x, y, back)))
        return parts
    if cls == "sofa":
        seat, back, arm = rng.uniform(0.4, 0.45), rng.uniform(0.8, 0.9), 0.15
        return [
            _box((-x, -y, 0), (x, y - 0.2, seat), True),
            _box((-x, y - 0.2, 0), (x, y, back)),
            _box((-x, -y, seat), (-x + arm, y - 0.2, seat + 0.2)),
            _box((x - arm, -y, seat), (x, y - 0.2, seat + 0.2)),
        ]
    if cls == "bed":
        return [
            _box((-x, -y, 0), (x, y - 0.06, 0.3), True),
            _box((-x + 0.03, -y + 0.03, 0.3), (x - 0.03, y - 0.09, 0.5)),
            _box((-x, y - 0.06, 0), (x, y, rng.uniform(0.9, 1.1)), True),
        ]
    if cls == "shelf":
        h = rng.uniform(1.5, 2.0)
        t = 0.02
        n_boards = int(rng.integers(4, 6))
        parts = [
            _box((-x, -y, 0), (-x + t, y, h)),
            _box((x - t, -y, 0), (x, y, h)),
            _box((-x + t, y - 0.01, 0), (x - t, y, h), True),
        ]
        for zb in np.linspace(0.0, h - t, n_boards):
            parts.append(_box((-x + t, -y, zb), (x - t, y - 0.01, zb + t)))
        return parts
    if cls == "cabinet":
        h = rng.uniform(0.8, 1.0) if rng.random() < 0.6 else rng.uniform(1.8, 2.0)
        return [
            _box((-x, -y + 0.02, 0), (x, y, h)),
            _box((-0.1 * w - 0.05, -y, h * 0.55), (-0.1 * w + 0.05, -y + 0.02, h * 0.6), True),
        ]
    if cls == "plant":
        pot_h = rng.uniform(0.3, 0.4)
        top = rng.uniform(1.0, 1.6)
        return [
            _cyl(0, 0, 0.3 * w, 0, pot_h, True),
            _cyl(0, 0, 0.03, pot_h, pot_h + 0.2, True),
            _cyl(0, 0, 0.5 * w, pot_h + 0.2, top),
        ]
    if cls == "lamp":
        h = rng.uniform(1.5, 1.7)
        return [
            _cyl(0, 0, 0.4 * w, 0, 0.03, True),
            _cyl(0, 0, 0.015, 0.03, h - 0.3, True),
            _cyl(0, 0, 0.5 * w, h - 0.3, h),
        ]
    raise ValueError(f"unknown furniture class {cls!r}; valid: {', '.join(FURNITURE_CLASSES)}")


_ROT = {
    0: np.array([[1, 0], [0, 1]]),
    1: np.array([[0, -1], [1, 0]]),
    2: np.array([[-1, 0], [0, -1]]),
    3: np.array([[0, 1], [-1, 0]]),
}


def add_furniture(
    builder: MeshBuilder,
    cls: str,
    rng: np.random.Generator,
    center: np.ndarray,
    facing: int,
    w: float,
    d: float,
) -> int:
    """Build a piece of ``cls`` into ``builder``; returns its instance id.

    Args:
        builder: receives the triangles (semantic class ``cls``, a new instance id, a
            jittered per-class colour).
        rng: random source for details (heights, boards) and colour jitter.
        center: ``(2,)`` world ``(x, y)`` of the footprint centre, metres.
        facing: quarter turns counter-clockwise about z; the back (local +y) then points
            to world ``(0, 1)``, ``(-1, 0)``, ``(0, -1)``, ``(1, 0)`` for 0, 1, 2, 3.
        w, d: local footprint in metres (see :func:`sample_footprint`).
    """
    rot = _ROT[int(facing) % 4]
    sem = class_id(cls)
    inst = builder.new_instance()
    main = jitter(base_color(cls), rng)
    accent = jitter(_ACCENT[cls], rng)
    c = np.asarray(center, np.float64)
    for p in furniture_parts(cls, w, d, rng):
        if p.kind == "box":
            lo, hi = np.array(p.a), np.array(p.b)
            corners = np.array([[lo[0], lo[1]], [hi[0], hi[1]]]) @ rot.T
            lo2, hi2 = corners.min(0) + c, corners.max(0) + c
            tris = box_triangles(np.r_[lo2, lo[2]], np.r_[hi2, hi[2]])
        else:
            xy = rot @ np.array(p.a[:2]) + c
            tris = cylinder_triangles(xy, p.a[2], p.b[0], p.b[1], segments=12)
        builder.add(tris, sem, inst, accent if p.accent else main)
    return inst
