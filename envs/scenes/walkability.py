"""Walkable floor map of a scene, derived from its triangles by vertical ray casting.

The map is a 2-D grid over the scene's ``(x, y)`` bounds: cell ``[row, col]`` has its
centre at ``origin + (col, row) * resolution`` (rows run along +y, columns along +x).

Derivation, per grid column (cell centre), casting straight down from above the scene
with :class:`egosim.sensors.raycast.RayCaster`:

1. Collect the successive hits along the column: after each hit the ray is re-cast from
   just below it, until it misses or passes below the floor band.
2. Track inside/outside from the hit normals. A ray going down *enters* a solid through
   an up-facing face and *leaves* it through a down-facing one. A nesting counter is kept
   (entries minus exits, never below 0), and the space just above a hit is free when the
   counter is 0. For open meshes, where a counter drifts, the space is free when the
   previous hit faced down or there was none. Closed scenes (every edge matched, see
   :func:`~egosim.envs.scenes.geometry.is_closed`) accept either signal, and then confirm
   with the winding number 5 cm above the candidate floor (below 0.5: outside every
   solid): coplanar faces (a pillar's top touching a ceiling, a wall standing on a slab)
   hide one of two hits from a re-cast ray and would otherwise confuse the counter.
3. The floor is the first up-facing hit (normal within ``max_slope_deg`` of +z) whose
   height is within ``floor_tolerance`` of ``floor_level`` (z = 0 by the package's
   convention) and whose space above is free.
4. Clearance: the gap from that floor hit to the previous hit above (the next surface
   over the floor; unlimited if none) must be at least ``body_height``.
5. Erosion: a cell stays walkable if its centre is at least ``body_radius`` from every
   cell failing 1–4 (Euclidean distance transform, measured to the blocked cell's edge,
   i.e. centre distance minus half a cell). Cells outside the grid count as blocked.

Connected regions are labelled with 4-connectivity (a path that moves diagonally only
between two walkable orthogonal neighbours stays inside one region).

Size guard: a grid of more than ``max_cells`` cells (default :data:`DEFAULT_MAX_WALK_CELLS`,
the scene option ``walk_max_cells``; a cell costs about :data:`BYTES_PER_CELL` bytes while
the map is computed) is refused before any work, with its size and a hint about units (a
room in centimetres read as metres is 100 times too wide: 10,000 times the cells). A grid
over half the limit (and over 2e7 cells) is computed with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:  # the caster (Embree) is only needed once a map is computed
    from egosim.sensors.raycast import RayCaster

__all__ = ["WalkMap", "compute_walkmap", "from_floor", "grid_shape", "check_grid_size",
           "units_hint", "no_walkable_message", "MAX_GRID_RESOLUTION",
           "DEFAULT_MAX_WALK_CELLS", "BYTES_PER_CELL"]

MAX_GRID_RESOLUTION = 0.10
#: Default cap on walk-grid cells (``walk_max_cells``): 5,000 x 5,000, i.e. 250 m x 250 m at
#: 5 cm, about 1.75 GB while computing (the largest shipped scene, samurai's 200 m ground
#: plane, is 1.6e7 cells).
DEFAULT_MAX_WALK_CELLS = 25_000_000
#: Approximate peak memory per grid cell while a map is computed (floor heights, clearance,
#: distance transform, labels).
BYTES_PER_CELL = 70
_WARN_CELLS = 20_000_000
_CHUNK = 1 << 20
_MAX_LAYERS = 64
_EPS = 1e-3
_PROBE = 0.05


@dataclass
class WalkMap:
    """Walkability of a scene on a regular ``(H, W)`` grid.

    Attributes:
        walkable: ``(H, W)`` bool, floor with clearance, eroded by the body radius.
        floor: ``(H, W)`` bool, floor with head clearance before erosion.
        floor_height: ``(H, W)`` float32 floor height in metres (NaN where no floor).
        obstacle_distance: ``(H, W)`` float32, metres from the cell centre to the nearest
            non-floor cell (its edge); 0 on non-floor cells.
        components: ``(H, W)`` int32 connected-region label of walkable cells, 0 elsewhere.
        num_components: number of regions (labels ``1..num_components``).
        origin: ``(2,)`` float64 ``(x, y)`` of cell ``[0, 0]``'s centre, metres.
        resolution: cell size in metres.
    """

    walkable: np.ndarray
    floor: np.ndarray
    floor_height: np.ndarray
    obstacle_distance: np.ndarray
    components: np.ndarray
    num_components: int
    origin: np.ndarray
    resolution: float

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The primary arrays (floor mask, floor heights, grid) for the on-disk cache; the
        rest is re-derived by :meth:`from_arrays`."""
        return {
            "floor": self.floor,
            "floor_height": self.floor_height,
            "origin": self.origin,
            "resolution": np.float64(self.resolution),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], body_radius: float) -> WalkMap:
        """Inverse of :meth:`to_arrays` (erosion by ``body_radius`` metres redone)."""
        return from_floor(
            np.asarray(arrays["floor"], bool),
            np.asarray(arrays["floor_height"], np.float32),
            np.asarray(arrays["origin"], np.float64),
            float(arrays["resolution"]),
            body_radius,
        )


def from_floor(
    floor: np.ndarray,
    floor_height: np.ndarray,
    origin: np.ndarray,
    resolution: float,
    body_radius: float,
) -> WalkMap:
    """Erode a floor mask (step 5 of the module docstring) and label its regions.

    Args:
        floor: ``(H, W)`` bool floor cells with head clearance.
        floor_height: ``(H, W)`` float32 floor heights (NaN where none), metres.
        origin: ``(2,)`` centre of cell ``[0, 0]``; resolution: cell size, metres.
        body_radius: erosion radius, metres.
    """
    padded = np.pad(floor, 1, constant_values=False)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1] * resolution
    obstacle_distance = np.where(floor, dist - 0.5 * resolution, 0.0).astype(np.float32)
    walkable = floor & (obstacle_distance >= body_radius)
    components, num = ndimage.label(walkable)
    return WalkMap(
        walkable=walkable,
        floor=floor,
        floor_height=floor_height,
        obstacle_distance=obstacle_distance,
        components=components.astype(np.int32),
        num_components=int(num),
        origin=origin,
        resolution=float(resolution),
    )


def grid_shape(bounds: np.ndarray, resolution: float) -> tuple[tuple[int, int], np.ndarray]:
    """``((H, W), origin)`` of the walk grid covering ``bounds`` ``(2, 3)`` at ``resolution``."""
    lo = np.asarray(bounds, np.float64)[0, :2]
    hi = np.asarray(bounds, np.float64)[1, :2]
    w = max(1, int(np.ceil((hi[0] - lo[0]) / resolution - 1e-9)))
    h = max(1, int(np.ceil((hi[1] - lo[1]) / resolution - 1e-9)))
    return (h, w), lo + 0.5 * resolution


def units_hint(bounds: np.ndarray) -> str:
    """A hint about the file's units when the ``(x, y)`` extent of ``bounds`` (metres) is
    implausible for a walkable scene (under 0.5 m or over 500 m), else ``""``."""
    ext = np.asarray(bounds, np.float64)
    size = float(np.max(ext[1, :2] - ext[0, :2]))
    if 0.5 <= size <= 500.0 or not math.isfinite(size):
        return ""
    if size > 500.0:
        return (" Is the mesh in centimetres or millimetres? Load it with scale=0.01 "
                "(centimetres) or scale=0.001 (millimetres) to get metres.")
    factor = 10.0 ** max(1, round(math.log10(6.0 / max(size, 1e-9))))
    return (f" At {size:.3g} m across it is smaller than a person: is the mesh in another "
            f"unit than metres? Load it with a scale that converts to metres (e.g. "
            f"scale={factor:g}).")


def check_grid_size(bounds: np.ndarray, resolution: float,
                    max_cells: int = DEFAULT_MAX_WALK_CELLS) -> tuple[int, int]:
    """``(H, W)`` of the walk grid of ``bounds`` at ``resolution``, refused when too large.

    Raises:
        ValueError: more than ``max_cells`` cells; names the grid and scene size, the
            memory it would take and a hint about units.
    """
    (h, w), _ = grid_shape(bounds, resolution)
    cells = h * w
    ext = np.asarray(bounds, np.float64)
    sx, sy = (ext[1, :2] - ext[0, :2]).tolist()
    size = (f"walk grid of {h} x {w} = {cells:.3g} cells ({sx:.4g} m x {sy:.4g} m at "
            f"{resolution:g} m, ~{cells * BYTES_PER_CELL / 1e9:.3g} GB to compute)")
    if cells > max_cells:
        raise ValueError(
            f"refusing a {size}: over walk_max_cells={max_cells:.3g}.{units_hint(bounds)} "
            "Else raise the scene option walk_max_cells or grid_resolution."
        )
    if cells > max(max_cells / 2, _WARN_CELLS):
        warnings.warn(f"computing a {size}; this takes minutes.{units_hint(bounds)}",
                      stacklevel=3)
    return h, w


def no_walkable_message(bounds: np.ndarray, resolution: float, body_radius: float) -> str:
    """The error text for a scene without walkable cells (its size and a units hint)."""
    ext = np.asarray(bounds, np.float64)
    sx, sy = (ext[1, :2] - ext[0, :2]).tolist()
    return (f"the scene has no walkable cell (it spans {sx:.4g} m x {sy:.4g} m; walk grid at "
            f"{resolution:g} m, walker radius {body_radius:g} m).{units_hint(bounds)}")


def _floor_columns(
    caster: RayCaster,
    xy: np.ndarray,
    z_top: float,
    floor_level: float,
    floor_tolerance: float,
    cos_slope: float,
    inside: Callable[[np.ndarray], np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Floor height and clearance for ``(N, 2)`` columns; NaN / 0 where no floor."""
    n = xy.shape[0]
    floor_z = np.full(n, np.nan, np.float32)
    clearance = np.zeros(n, np.float32)
    z = np.full(n, z_top, np.float64)
    depth = np.zeros(n, np.int32)
    prev_z = np.full(n, np.inf)
    prev_down = np.ones(n, bool)  # "previous hit faced down or there was none"
    active = np.arange(n)
    down = np.array([0.0, 0.0, -1.0], np.float32)
    for _ in range(_MAX_LAYERS):
        if active.size == 0:
            break
        origins = np.column_stack([xy[active], z[active]])
        hits = caster.cast(origins, np.broadcast_to(down, origins.shape))
        ok = hits.hit
        active = active[ok]
        t = hits.t[ok].astype(np.float64)
        nz = hits.normal[ok, 2].astype(np.float64)
        hz = z[active] - t
        if inside is None:
            free_above = prev_down[active]
        else:
            free_above = (depth[active] == 0) | prev_down[active]
        is_floor = (nz >= cos_slope) & (np.abs(hz - floor_level) <= floor_tolerance) & free_above
        if inside is not None and np.any(is_floor):
            cand = np.flatnonzero(is_floor)
            probe = np.column_stack([xy[active[cand]], hz[cand] + _PROBE])
            is_floor[cand[inside(probe)]] = False
        idx = active[is_floor]
        floor_z[idx] = hz[is_floor]
        clearance[idx] = prev_z[idx] - hz[is_floor]
        # Update the inside/outside state, then continue below this hit.
        enter = nz > 1e-6
        leave = nz < -1e-6
        d = depth[active] + enter.astype(np.int32) - leave.astype(np.int32)
        depth[active] = np.maximum(d, 0)
        prev_down[active] = np.where(enter | leave, leave, prev_down[active])
        prev_z[active] = hz
        z[active] = hz - _EPS
        keep = ~is_floor & (hz >= floor_level - floor_tolerance)
        active = active[keep]
    return floor_z, clearance


def compute_walkmap(
    caster: RayCaster,
    bounds: np.ndarray,
    resolution: float,
    body_radius: float,
    body_height: float,
    inside: Callable[[np.ndarray], np.ndarray] | None = None,
    floor_tolerance: float = 0.15,
    max_slope_deg: float = 30.0,
    floor_level: float = 0.0,
    max_cells: int | None = None,
) -> WalkMap:
    """Walkable grid of the triangles held by ``caster`` (see the module docstring).

    Args:
        caster: ray caster over the scene triangles (world frame, z up, metres).
        bounds: ``(2, 3)`` scene bounds, metres; the grid covers their ``(x, y)`` extent.
        resolution: cell size in metres, in (0, :data:`MAX_GRID_RESOLUTION`].
        body_radius: erosion radius in metres.
        body_height: minimum head clearance above the floor in metres.
        inside: for closed scenes, ``(N, 3) -> (N,)`` bool "point is inside a solid"
            (winding number test); None for open meshes (local free-space rule only).
        floor_tolerance: floor hits must lie within this distance of ``floor_level``, m.
        floor_level: height of the walkable floor, metres (0 by convention).
        max_slope_deg: steepest floor slope, degrees.
        max_cells: largest grid computed (see :func:`check_grid_size`); None:
            :data:`DEFAULT_MAX_WALK_CELLS`.

    Raises:
        ValueError: the grid would have more than ``max_cells`` cells.
    """
    check_grid_size(bounds, resolution,
                    DEFAULT_MAX_WALK_CELLS if max_cells is None else max_cells)
    (h, w), origin = grid_shape(bounds, resolution)
    z_top = float(bounds[1, 2]) + 1.0
    cos_slope = float(np.cos(np.deg2rad(max_slope_deg)))
    floor_z = np.empty(h * w, np.float32)
    clearance = np.empty(h * w, np.float32)
    for start in range(0, h * w, _CHUNK):
        idx = np.arange(start, min(start + _CHUNK, h * w))
        xy = np.column_stack(
            [origin[0] + (idx % w) * resolution, origin[1] + (idx // w) * resolution]
        )
        fz, cl = _floor_columns(
            caster, xy, z_top, floor_level, floor_tolerance, cos_slope, inside
        )
        floor_z[idx] = fz
        clearance[idx] = cl
    floor_z = floor_z.reshape(h, w)
    floor = np.isfinite(floor_z) & (clearance.reshape(h, w) >= body_height)
    return from_floor(floor, floor_z, origin, resolution, body_radius)
