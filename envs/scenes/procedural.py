"""Procedural indoor scenes: a furnished room, or an apartment of 2-6 rooms.

Deterministic by seed: every random choice draws from one ``numpy.random.Generator``
seeded with ``seed``; the same seed gives byte-identical arrays.

Layout (metres, z up, floor top at z = 0, footprint centred on the origin):

* Rooms come from a recursive split of a rectangle (the longer side is cut, the number
  of rooms shared out between the two halves); every room side, measured between wall
  centre lines, is 3-6 m. Coordinates are multiples of 5 cm.
* Doorways (0.9-1.0 m wide, 2.1 m high, at least 0.4 m from wall junctions) join the rooms
  along a random spanning tree of the room adjacency graph, plus a few extra doors.
* Walls are 0.1 m thick closed boxes from z = 0 to 2.6 m (2.5 m room height plus the
  ceiling slab's thickness), with a lintel box above each doorway. A 0.1 m floor slab
  spans the footprint (top face wood-textured, UV = (x, y), 1 tile per metre) and each
  room has a 0.1 m ceiling slab between its walls (z in [2.5, 2.6]).
* Furniture (tables, chairs, sofas, beds, shelves, cabinets, plants, lamps) per room type,
  against walls or as a table-and-chairs group, axis-aligned, never overlapping (AABB
  test with a 10 cm gap) and never within 1 m in front of a doorway.
* Check: the walk map (see :mod:`egosim.envs.scenes.walkability`) must keep one region
  holding at least 85 % of the walkable area and reaching at least 1 m^2 of every room.
  Otherwise the furniture is re-sampled with fewer pieces (the last try has none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.envs.scenes.classes import class_id
from egosim.envs.scenes.furniture import add_furniture, sample_footprint
from egosim.envs.scenes.materials import base_color, jitter, wood_floor_texture
from egosim.envs.scenes.mesh_builder import MeshBuilder
from egosim.envs.scenes.scene import Scene
from egosim.sensors.shapes import box_triangles

__all__ = [
    "Room",
    "Door",
    "generate_room",
    "generate_apartment",
    "split_layout",
    "WALL_THICKNESS",
    "ROOM_HEIGHT",
    "DOOR_HEIGHT",
]

WALL_THICKNESS = 0.1
ROOM_HEIGHT = 2.5
SLAB = 0.1
DOOR_HEIGHT = 2.1
DOOR_WIDTH = (0.9, 1.0)
ROOM_SIDE = (3.0, 6.0)
_JUNCTION_MARGIN = 0.4
_DOOR_CLEAR = 1.0
_GAP = 0.1
_WALL_GAP = 0.02

# Furniture per room kind: (class, placement, probability). Placement "wall" puts the
# piece's back against a wall; "group" is a table with chairs in the free middle; "desk"
# a table against a wall with one chair in front.
_ROOM_KINDS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "living": (
        ("sofa", "wall", 1.0),
        ("table", "group0", 0.8),
        ("shelf", "wall", 0.7),
        ("cabinet", "wall", 0.5),
        ("plant", "wall", 0.8),
        ("lamp", "wall", 0.6),
    ),
    "bedroom": (
        ("bed", "wall", 1.0),
        ("cabinet", "wall", 0.9),
        ("cabinet", "wall", 0.4),
        ("lamp", "wall", 0.6),
        ("plant", "wall", 0.5),
    ),
    "dining": (
        ("table", "group", 1.0),
        ("cabinet", "wall", 0.8),
        ("shelf", "wall", 0.5),
        ("plant", "wall", 0.7),
    ),
    "office": (
        ("table", "desk", 1.0),
        ("shelf", "wall", 0.9),
        ("cabinet", "wall", 0.6),
        ("lamp", "wall", 0.5),
        ("plant", "wall", 0.6),
    ),
}


@dataclass
class Room:
    """A room between wall centre lines ``lo`` and ``hi`` (``(2,)`` each, metres)."""

    lo: np.ndarray
    hi: np.ndarray
    kind: str = "living"

    @property
    def interior(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of the free floor between the wall faces."""
        return self.lo + WALL_THICKNESS / 2, self.hi - WALL_THICKNESS / 2


@dataclass
class Door:
    """A doorway in the wall line ``const`` along ``axis`` (0: wall runs along x at
    y = const; 1: along y at x = const), centred at ``pos`` along the wall."""

    axis: int
    const: float
    pos: float
    width: float
    rooms: tuple[int, int]


def _q(v: float, step: float = 0.05) -> float:
    return round(round(v / step) * step, 6)


def _split(rng: np.random.Generator, lo, hi, k: int,
           balanced: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    if k == 1:
        return [(np.array(lo, float), np.array(hi, float))]
    size = np.subtract(hi, lo)
    axis = int(size[1] > size[0])
    # balanced: split k rooms into halves (k // 2 or (k + 1) // 2), which keeps rooms of
    # 5-6 room apartments near square; otherwise any 1..k-1.
    k1 = int(rng.integers(k // 2, (k + 1) // 2 + 1)) if balanced else int(rng.integers(1, k))
    frac = k1 / k + rng.uniform(-0.08, 0.08)
    cut = _q(lo[axis] + frac * size[axis])
    hi1 = list(hi)
    hi1[axis] = cut
    lo2 = list(lo)
    lo2[axis] = cut
    return _split(rng, lo, hi1, k1, balanced) + _split(rng, lo2, hi, k - k1, balanced)


def _shared_wall(a: Room, b: Room) -> tuple[int, float, float, float] | None:
    """``(axis, const, start, end)`` of the wall segment rooms a and b share, if any."""
    for ax in (0, 1):  # ax = axis along which the rooms touch
        other = 1 - ax
        for p, q in ((a, b), (b, a)):
            if abs(p.hi[ax] - q.lo[ax]) < 1e-6:
                s = max(p.lo[other], q.lo[other])
                e = min(p.hi[other], q.hi[other])
                if e > s:
                    # Wall runs along `other`; Door.axis counts the running direction.
                    return other, float(p.hi[ax]), float(s), float(e)
    return None


def split_layout(
    rng: np.random.Generator, num_rooms: int, side: tuple[float, float] = ROOM_SIDE
) -> tuple[list[Room], list[Door]]:
    """Rooms (recursive split) and doorways (spanning tree + extras), footprint centred.

    The first 500 tries split a room count anywhere; if none fits the room-side limits
    (common for 5 rooms), up to 2500 more tries split counts in halves.

    Raises:
        RuntimeError: no valid layout after 3000 tries.
    """
    kinds = list(_ROOM_KINDS)
    for attempt in range(3000):
        area = num_rooms * rng.uniform(12.0, 26.0)
        aspect = rng.uniform(1.0, 1.8)
        w = _q(np.sqrt(area * aspect), 0.1)
        d = _q(area / w, 0.1)
        rects = _split(rng, (-_q(w / 2), -_q(d / 2)), (w - _q(w / 2), d - _q(d / 2)), num_rooms,
                       balanced=attempt >= 500)
        sizes = np.array([h - lo for lo, h in rects])
        if sizes.min() < side[0] - 1e-9 or sizes.max() > side[1] + 1e-9:
            continue
        rooms = [Room(lo, hi, kinds[int(rng.integers(len(kinds)))]) for lo, hi in rects]
        edges = []
        for i in range(num_rooms):
            for j in range(i + 1, num_rooms):
                wall = _shared_wall(rooms[i], rooms[j])
                if wall and wall[3] - wall[2] >= DOOR_WIDTH[1] + 2 * _JUNCTION_MARGIN:
                    edges.append((i, j, wall))
        parent = list(range(num_rooms))

        def find(i: int, parent: list[int] = parent) -> int:
            while parent[i] != i:
                i = parent[i]
            return i

        doors: list[Door] = []
        for e in rng.permutation(len(edges)):
            i, j, (axis, const, s, t) = edges[e]
            tree = find(i) != find(j)
            if tree:
                parent[find(i)] = find(j)
            elif rng.random() > 0.25:
                continue
            width = _q(rng.uniform(*DOOR_WIDTH), 0.01)
            half = width / 2 + _JUNCTION_MARGIN
            doors.append(Door(axis, const, _q(rng.uniform(s + half, t - half), 0.01), width,
                              (i, j)))
        if len({find(i) for i in range(num_rooms)}) == 1:
            return rooms, doors
    raise RuntimeError(f"could not lay out {num_rooms} rooms of side {side} m")


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1] + 1e-9:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _build_shell(
    builder: MeshBuilder, rng: np.random.Generator, rooms: list[Room], doors: list[Door]
) -> None:
    """Floor slab, walls with doorways and lintels, ceilings."""
    t = WALL_THICKNESS
    top = ROOM_HEIGHT + SLAB
    lo = np.min([r.lo for r in rooms], axis=0) - t / 2
    hi = np.max([r.hi for r in rooms], axis=0) + t / 2
    slab = box_triangles(np.r_[lo, -SLAB], np.r_[hi, 0.0])
    inst = builder.new_instance()
    floor_color = jitter(base_color("floor"), rng)
    floor_id = class_id("floor")
    builder.add(slab[2:4], floor_id, inst, floor_color, texture=0, uv=slab[2:4, :, :2])
    builder.add(np.concatenate([slab[:2], slab[4:]]), floor_id, inst, floor_color)

    lines: dict[tuple[int, float], list[tuple[float, float]]] = {}
    for r in rooms:
        for axis in (0, 1):
            other = 1 - axis
            for const in (r.lo[other], r.hi[other]):
                lines.setdefault((axis, round(float(const), 6)), []).append(
                    (float(r.lo[axis]), float(r.hi[axis]))
                )
    wall_color = jitter(base_color("wall"), rng, 0.04)
    wall_id = class_id("wall")

    def wall_box(axis: int, const: float, a: float, b: float, z0: float) -> np.ndarray:
        if axis == 0:
            lo, hi = [a, const - t / 2, z0], [b, const + t / 2, top]
        else:
            lo, hi = [const - t / 2, a, z0], [const + t / 2, b, top]
        return box_triangles(np.array(lo), np.array(hi))

    for (axis, const), spans in sorted(lines.items()):
        for s, e in _merge(spans):
            # Walls along x cover the corners; walls along y stop at their faces.
            a, b = (s - t / 2, e + t / 2) if axis == 0 else (s + t / 2, e - t / 2)
            inst = builder.new_instance()
            here = sorted(
                (d for d in doors if d.axis == axis and abs(d.const - const) < 1e-6
                 and s < d.pos < e),
                key=lambda d: d.pos,
            )
            cursor = a
            for d in here:
                d0, d1 = d.pos - d.width / 2, d.pos + d.width / 2
                builder.add(wall_box(axis, const, cursor, d0, 0.0), wall_id, inst, wall_color)
                builder.add(wall_box(axis, const, d0, d1, DOOR_HEIGHT), wall_id, inst, wall_color)
                cursor = d1
            builder.add(wall_box(axis, const, cursor, b, 0.0), wall_id, inst, wall_color)

    ceil_color = base_color("ceiling")
    for r in rooms:
        ilo, ihi = r.interior
        builder.add(
            box_triangles(np.r_[ilo, ROOM_HEIGHT], np.r_[ihi, top]),
            class_id("ceiling"),
            builder.new_instance(),
            ceil_color,
        )


def _overlaps(box: np.ndarray, boxes: list[np.ndarray]) -> bool:
    return any(
        np.all(box[0] < b[1] + _GAP) and np.all(b[0] < box[1] + _GAP) for b in boxes
    )


def _door_zones(rooms: list[Room], doors: list[Door]) -> list[np.ndarray]:
    zones = []
    for d in doors:
        along = (d.pos - d.width / 2 - 0.3, d.pos + d.width / 2 + 0.3)
        across = (d.const - _DOOR_CLEAR, d.const + _DOOR_CLEAR)
        lo = np.array([along[0], across[0]]) if d.axis == 0 else np.array([across[0], along[0]])
        hi = np.array([along[1], across[1]]) if d.axis == 0 else np.array([across[1], along[1]])
        zones.append(np.stack([lo, hi]))
    return zones


def _wall_spot(
    rng: np.random.Generator, room: Room, w: float, d: float
) -> tuple[np.ndarray, int, np.ndarray] | None:
    """Random spot against a wall: (centre, facing, world AABB) or None if it won't fit."""
    ilo, ihi = room.interior
    facing = int(rng.integers(4))
    fw, fd = (w, d) if facing % 2 == 0 else (d, w)  # world x, y extents
    if fw > ihi[0] - ilo[0] - 2 * _WALL_GAP or fd > ihi[1] - ilo[1] - 2 * _WALL_GAP:
        return None
    x = rng.uniform(ilo[0] + _WALL_GAP + fw / 2, ihi[0] - _WALL_GAP - fw / 2)
    y = rng.uniform(ilo[1] + _WALL_GAP + fd / 2, ihi[1] - _WALL_GAP - fd / 2)
    if facing == 0:
        y = ihi[1] - _WALL_GAP - fd / 2
    elif facing == 1:
        x = ilo[0] + _WALL_GAP + fw / 2
    elif facing == 2:
        y = ilo[1] + _WALL_GAP + fd / 2
    else:
        x = ihi[0] - _WALL_GAP - fw / 2
    c = np.array([_q(x, 0.01), _q(y, 0.01)])
    half = np.array([fw, fd]) / 2
    return c, facing, np.stack([c - half, c + half])


def _furnish_room(
    builder: MeshBuilder,
    rng: np.random.Generator,
    room: Room,
    taken: list[np.ndarray],
    keep_prob: float,
) -> None:
    ilo, ihi = room.interior
    for cls, placement, prob in _ROOM_KINDS[room.kind]:
        if rng.random() >= prob * keep_prob:
            continue
        w, d = sample_footprint(cls, rng)
        if placement.startswith("group"):
            chairs = placement == "group"
            facing = int(rng.integers(2))
            fw, fd = (w, d) if facing == 0 else (d, w)
            cw, cd = sample_footprint("chair", rng)
            pad = cd + 0.05 if chairs else 0.0
            span = np.array([fw, fd]) + (np.array([0, 2 * pad]) if facing == 0
                                         else np.array([2 * pad, 0]))
            room_lo, room_hi = ilo + 0.7 + span / 2, ihi - 0.7 - span / 2
            if np.any(room_hi < room_lo):
                continue
            for _ in range(10):
                c = np.round(rng.uniform(room_lo, room_hi), 2)
                group = np.stack([c - span / 2, c + span / 2])
                if not _overlaps(group, taken):
                    break
            else:
                continue
            taken.append(group)
            add_furniture(builder, "table", rng, c, facing, w, d)
            if not chairs:
                continue
            n_side = max(1, min(3, int((w + 0.05) // (cw + 0.15))))
            offsets = (np.arange(n_side) - (n_side - 1) / 2) * (w / n_side)
            for side in (-1, 1):
                for off in offsets:
                    if rng.random() < 0.2:
                        continue
                    # Chair backs point away from the table, fronts towards it.
                    if facing == 0:
                        cc = c + np.array([off, side * (fd / 2 + 0.05 + cd / 2)])
                        cf = 0 if side > 0 else 2
                    else:
                        cc = c + np.array([side * (fw / 2 + 0.05 + cd / 2), off])
                        cf = 3 if side > 0 else 1
                    add_furniture(builder, "chair", rng, cc, cf, cw, cd)
            continue
        for _ in range(12):
            spot = _wall_spot(rng, room, w, d)
            if spot is None:
                break
            c, facing, box = spot
            if placement == "desk":
                cw, cd = sample_footprint("chair", rng)
                inward = np.array({0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)}[facing], float)
                reach = cd + 0.3
                box = np.stack(
                    [box[0] + np.minimum(inward, 0) * reach, box[1] + np.maximum(inward, 0) * reach]
                )
            if _overlaps(box, taken):
                continue
            taken.append(box)
            add_furniture(builder, cls, rng, c, facing, w, d)
            if placement == "desk":
                half = np.array([w, d])[[0, 1] if facing % 2 == 0 else [1, 0]] / 2
                dist = float(np.abs(inward) @ half) + 0.05 + cd / 2
                # The chair faces the desk: its back points into the room.
                add_furniture(builder, "chair", rng, c + dist * inward, (facing + 2) % 4, cw, cd)
            break


def _connected_enough(scene: Scene, rooms: list[Room]) -> bool:
    walk = scene.walk_map
    comp = walk.components
    if walk.num_components == 0:
        return False
    sizes = np.bincount(comp.ravel(), minlength=walk.num_components + 1)
    sizes[0] = 0
    main = int(np.argmax(sizes))
    if sizes[main] < 0.85 * sizes.sum():
        return False
    min_cells = 1.0 / walk.resolution**2
    for r in rooms:
        ilo, ihi = r.interior
        (r0, c0), (r1, c1) = scene.world_to_grid(np.stack([ilo, ihi]))
        if np.count_nonzero(comp[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] == main) < min_cells:
            return False
    return True


def _generate(
    name: str,
    seed: int,
    num_rooms: int,
    side: tuple[float, float],
    furnish: bool,
    scene_options: dict,
) -> Scene:
    rng = np.random.default_rng(seed)
    rooms, doors = split_layout(rng, num_rooms, side)
    zones = _door_zones(rooms, doors)
    tries = (1.0, 0.8, 0.6, 0.4, 0.0) if furnish else (0.0,)
    for keep in tries:
        builder = MeshBuilder()
        _build_shell(builder, rng, rooms, doors)
        taken = list(zones)
        if keep > 0:
            for room in rooms:
                _furnish_room(builder, rng, room, taken, keep)
        arrays = builder.arrays()
        scene = Scene(
            **arrays,
            textures=[wood_floor_texture()],
            name=name,
            seed=seed,
            **scene_options,
        )
        scene._set_walk_map(scene._compute_walk_map())
        if keep == 0.0 or _connected_enough(scene, rooms):
            scene.rooms = rooms
            scene.doors = doors
            return scene
    raise AssertionError("unreachable: the unfurnished try always returns")


def _check_seed(seed: int | None) -> int:
    if seed is None:
        return 0
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


def generate_room(seed: int | None = None, furnish: bool = True, **scene_options) -> Scene:
    """One furnished room, sides 3.5-6 m (see the module docstring).

    Args:
        seed: non-negative int; None means 0 (procedural scenes are always reproducible).
        furnish: place furniture.
        **scene_options: forwarded to :class:`Scene` (grid_resolution, body_radius, ...).

    Returns:
        The scene; ``scene.rooms`` and ``scene.doors`` hold the layout.
    """
    s = _check_seed(seed)
    return _generate("procedural:room", s, 1, (3.5, 6.0), furnish, scene_options)


def generate_apartment(
    seed: int | None = None,
    num_rooms: int | None = None,
    furnish: bool = True,
    **scene_options,
) -> Scene:
    """An apartment of ``num_rooms`` rooms (2-6; random when None) joined by doorways.

    Args:
        seed: non-negative int; None means 0.
        num_rooms: 2-6, or None to draw it from the seed.
        furnish: place furniture.
        **scene_options: forwarded to :class:`Scene`.
    """
    s = _check_seed(seed)
    if num_rooms is None:
        num_rooms = int(np.random.default_rng([s, 1]).integers(2, 7))
    if isinstance(num_rooms, bool) or not isinstance(num_rooms, (int, np.integer)) or not (
        2 <= num_rooms <= 6
    ):
        raise ValueError(f"num_rooms must be an int in 2..6 or None, got {num_rooms!r}")
    return _generate("procedural:apartment", s, int(num_rooms), ROOM_SIDE, furnish, scene_options)
