"""Paths and start/goal sampling on a :class:`~egosim.envs.scenes.walkability.WalkMap`.

Planning runs Dijkstra (``scipy.sparse.csgraph``) on the 8-connected graph of walkable
cells (diagonal moves only between two walkable orthogonal neighbours). An edge costs its
length times ``1 + clearance_weight * p``, where ``p`` rises linearly from 0 at
``clearance_margin`` metres beyond the body radius to 1 at the eroded boundary, so paths
keep away from obstacles where there is room. The cell path is then shortcut greedily:
consecutive waypoints are joined by straight segments whenever every sample along the
segment (every quarter cell) is walkable, and the result is resampled to at most ``step``
metres between points. Dijkstra first runs on a window around the two end points and
widens it until the path is found, so large scenes stay cheap.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from egosim.envs.scenes.walkability import WalkMap

__all__ = ["world_to_grid", "grid_to_world", "plan_path", "sample_start_goal", "has_floor",
           "footprint", "in_mask", "is_walkable"]

_SQRT2 = float(np.sqrt(2.0))


def world_to_grid(walk: WalkMap, points: np.ndarray) -> np.ndarray:
    """``(..., 2)`` int64 ``(row, col)`` cell indices of ``(..., 2|3)`` world points.

    Indices are not clipped: cells outside the grid come back out of range.
    """
    p = np.asarray(points, np.float64)
    if p.shape[-1] not in (2, 3):
        raise ValueError(f"points must have shape (..., 2) or (..., 3), got {p.shape}")
    col = np.floor((p[..., 0] - walk.origin[0]) / walk.resolution + 0.5)
    row = np.floor((p[..., 1] - walk.origin[1]) / walk.resolution + 0.5)
    return np.stack([row, col], axis=-1).astype(np.int64)


def grid_to_world(walk: WalkMap, cells: np.ndarray) -> np.ndarray:
    """``(..., 3)`` float64 world points (cell centre, floor height or 0) of ``(..., 2)``
    ``(row, col)`` cells."""
    c = np.asarray(cells, np.int64)
    if c.shape[-1] != 2:
        raise ValueError(f"cells must have shape (..., 2) as (row, col), got {c.shape}")
    x = walk.origin[0] + c[..., 1] * walk.resolution
    y = walk.origin[1] + c[..., 0] * walk.resolution
    return np.stack([x, y, _floor_z(walk, c)], axis=-1)


def _floor_z(walk: WalkMap, cells: np.ndarray) -> np.ndarray:
    h, w = walk.walkable.shape
    r = np.clip(cells[..., 0], 0, h - 1)
    c = np.clip(cells[..., 1], 0, w - 1)
    z = walk.floor_height[r, c].astype(np.float64)
    return np.where(np.isfinite(z), z, 0.0)


def is_walkable(walk: WalkMap, points: np.ndarray) -> np.ndarray:
    """``(...)`` bool: the cell under each ``(..., 2|3)`` point is walkable (z ignored)."""
    cells = world_to_grid(walk, points)
    h, w = walk.walkable.shape
    inside = (cells[..., 0] >= 0) & (cells[..., 0] < h) & (cells[..., 1] >= 0)
    inside &= cells[..., 1] < w
    r = np.clip(cells[..., 0], 0, h - 1)
    c = np.clip(cells[..., 1], 0, w - 1)
    return inside & walk.walkable[r, c]


def footprint(walk: WalkMap, close_m: float = 0.3) -> np.ndarray:
    """``(H, W)`` bool: the scene's footprint on the walk grid: floor cells (finite floor
    height), plus the gaps narrower than ``2 close_m`` between them (walls between rooms:
    a morphological closing by ``close_m`` metres, done with distance transforms) and every
    region they enclose (furniture standing on the floor, pillars: holes filled). What lies
    beyond the outer walls (or off the grid) is outside."""
    from scipy import ndimage

    floor = np.isfinite(walk.floor_height)
    r = float(close_m) / walk.resolution
    near = ndimage.distance_transform_edt(~floor) <= r
    closed = ndimage.distance_transform_edt(near) > r
    return ndimage.binary_fill_holes(closed | floor)


def in_mask(walk: WalkMap, mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(...)`` bool: the ``(H, W)`` grid ``mask`` is True at the cell under each
    ``(..., 2|3)`` point; False off the grid (z ignored)."""
    cells = world_to_grid(walk, points)
    h, w = mask.shape
    inside = (cells[..., 0] >= 0) & (cells[..., 0] < h) & (cells[..., 1] >= 0)
    inside &= cells[..., 1] < w
    r = np.clip(cells[..., 0], 0, h - 1)
    c = np.clip(cells[..., 1], 0, w - 1)
    return inside & mask[r, c]


def has_floor(walk: WalkMap, points: np.ndarray) -> np.ndarray:
    """``(...)`` bool: the walk cell under each ``(..., 2|3)`` point has a floor (walkable
    or not: furniture and thin obstacles stand on one); False off the grid, where the
    scene ends. z is ignored."""
    cells = world_to_grid(walk, points)
    h, w = walk.walkable.shape
    inside = (cells[..., 0] >= 0) & (cells[..., 0] < h) & (cells[..., 1] >= 0)
    inside &= cells[..., 1] < w
    r = np.clip(cells[..., 0], 0, h - 1)
    c = np.clip(cells[..., 1], 0, w - 1)
    return inside & np.isfinite(walk.floor_height[r, c])


def _window_graph(
    walk: WalkMap,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
    body_radius: float,
    clearance_weight: float,
    clearance_margin: float,
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Graph over walkable cells of rows ``r0:r1``, cols ``c0:c1``; returns it and the
    ``(h, w)`` map from window cell to node id (-1 where not walkable)."""
    sub = walk.walkable[r0:r1, c0:c1]
    h, w = sub.shape
    node = np.full(sub.shape, -1, np.int64)
    node[sub] = np.arange(int(sub.sum()))
    if clearance_margin > 0:
        slack = walk.obstacle_distance[r0:r1, c0:c1] - body_radius
        pen = np.clip(1.0 - slack / clearance_margin, 0.0, 1.0)
    else:
        pen = np.zeros(sub.shape)
    rows, cols, wts = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a_r = slice(0, h - dr)
        b_r = slice(dr, h)
        a_c = slice(max(0, -dc), w - max(0, dc))
        b_c = slice(max(0, dc), w - max(0, -dc))
        ok = sub[a_r, a_c] & sub[b_r, b_c]
        length = walk.resolution
        if dr and dc:
            length *= _SQRT2
            ok &= sub[b_r, a_c] & sub[a_r, b_c]  # no corner cutting
        cost = length * (1.0 + clearance_weight * 0.5 * (pen[a_r, a_c] + pen[b_r, b_c]))
        rows.append(node[a_r, a_c][ok])
        cols.append(node[b_r, b_c][ok])
        wts.append(cost[ok])
    n = int(sub.sum())
    graph = sparse.csr_matrix(
        (np.concatenate(wts), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    return graph, node


def _cell_path(walk: WalkMap, a: np.ndarray, b: np.ndarray, **cost) -> np.ndarray:
    """``(K, 2)`` (row, col) cells of the cheapest 8-connected path from cell a to b."""
    h, w = walk.walkable.shape
    span = max(abs(int(a[0] - b[0])), abs(int(a[1] - b[1])))
    margin = max(int(round(5.0 / walk.resolution)), span // 2)
    while True:
        r0 = max(0, min(a[0], b[0]) - margin)
        r1 = min(h, max(a[0], b[0]) + margin + 1)
        c0 = max(0, min(a[1], b[1]) - margin)
        c1 = min(w, max(a[1], b[1]) + margin + 1)
        graph, node = _window_graph(walk, r0, r1, c0, c1, **cost)
        src = node[a[0] - r0, a[1] - c0]
        dst = node[b[0] - r0, b[1] - c0]
        _, pred = csgraph.dijkstra(graph, directed=False, indices=src, return_predecessors=True)
        if pred[dst] >= 0 or src == dst:
            break
        if r0 == 0 and c0 == 0 and r1 == h and c1 == w:
            raise ValueError("no walkable path between the two points")
        margin *= 2
    chain = [dst]
    while chain[-1] != src:
        chain.append(pred[chain[-1]])
    chain = np.array(chain[::-1])
    win_r, win_c = np.nonzero(node >= 0)
    order = node[win_r, win_c]
    cells = np.empty((node.max() + 1, 2), np.int64)
    cells[order, 0] = win_r + r0
    cells[order, 1] = win_c + c0
    return cells[chain]


def _line_walkable(walk: WalkMap, p: np.ndarray, q: np.ndarray) -> bool:
    n = max(2, int(np.ceil(np.linalg.norm(q - p) / (0.25 * walk.resolution))) + 1)
    s = np.linspace(0.0, 1.0, n)[:, None]
    return bool(np.all(is_walkable(walk, p + s * (q - p))))


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    out = [points[:1]]
    for p, q in zip(points[:-1], points[1:], strict=True):
        k = max(1, int(np.ceil(np.linalg.norm(q - p) / step)))
        out.append(p + (np.arange(1, k + 1)[:, None] / k) * (q - p))
    return np.concatenate(out)


def plan_path(
    walk: WalkMap,
    a: np.ndarray,
    b: np.ndarray,
    body_radius: float,
    step: float = 0.1,
    smooth: bool = True,
    clearance_weight: float = 2.0,
    clearance_margin: float = 0.5,
) -> np.ndarray:
    """Walkable path from ``a`` to ``b`` (see the module docstring).

    Args:
        walk: the walk map.
        a, b: ``(2,)`` or ``(3,)`` world points (z ignored) on walkable cells.
        body_radius: the radius the map was eroded with, metres.
        step: maximum spacing of the returned points, metres.
        smooth: shortcut the grid path by line-of-sight checks.
        clearance_weight, clearance_margin: obstacle-avoidance cost (see module doc).

    Returns:
        ``(N, 3)`` float64 points, ``N >= 2``, from ``a`` to ``b`` (their exact x, y),
        z = floor height under each point. Every point lies on a walkable cell.

    Raises:
        ValueError: ``a`` or ``b`` is not walkable, or they lie in different regions.
    """
    pts = []
    for name, p in (("a", a), ("b", b)):
        p = np.asarray(p, np.float64)
        if p.shape not in ((2,), (3,)) or not np.all(np.isfinite(p)):
            raise ValueError(f"{name} must be a finite (2,) or (3,) point, got {p!r}")
        if not is_walkable(walk, p):
            raise ValueError(f"{name}={p.tolist()} is not on a walkable cell")
        pts.append(p[:2])
    ca, cb = world_to_grid(walk, np.stack(pts))
    la = walk.components[ca[0], ca[1]]
    lb = walk.components[cb[0], cb[1]]
    if la != lb:
        raise ValueError(
            f"a and b lie in different walkable regions ({la} and {lb}); no path connects them"
        )
    cells = _cell_path(
        walk,
        ca,
        cb,
        body_radius=body_radius,
        clearance_weight=clearance_weight,
        clearance_margin=clearance_margin,
    )
    xy = grid_to_world(walk, cells)[:, :2]
    if len(xy) == 1:  # both ends in one cell
        xy = np.stack([pts[0], pts[0]])
    xy[0], xy[-1] = pts[0], pts[1]
    if smooth and len(xy) > 2:
        keep = [0]
        i = 0
        while i < len(xy) - 1:
            j = i + 1
            while j + 1 < len(xy) and _line_walkable(walk, xy[i], xy[j + 1]):
                j += 1
            keep.append(j)
            i = j
        segments = []
        for i, j in zip(keep[:-1], keep[1:], strict=True):
            seg = _densify(xy[[i, j]], step)
            if not np.all(is_walkable(walk, seg)):  # sampling missed a cell corner
                seg = _densify(xy[i : j + 1], step)
            segments.append(seg if not segments else seg[1:])
        out = np.concatenate(segments)
    else:
        out = _densify(xy, step)
    z = _floor_z(walk, world_to_grid(walk, out))
    return np.column_stack([out, z])


def _geodesic_from(walk: WalkMap, start: np.ndarray, limit: float) -> tuple[np.ndarray, ...]:
    """Path-length distances (metres) from ``start`` cell to cells within ``limit``."""
    h, w = walk.walkable.shape
    m = int(np.ceil(limit / walk.resolution)) + 1
    r0, r1 = max(0, start[0] - m), min(h, start[0] + m + 1)
    c0, c1 = max(0, start[1] - m), min(w, start[1] + m + 1)
    graph, node = _window_graph(walk, r0, r1, c0, c1, 0.0, 0.0, 0.0)
    dist = csgraph.dijkstra(
        graph, directed=False, indices=node[start[0] - r0, start[1] - c0], limit=limit
    )
    rr, cc = np.nonzero(node >= 0)
    return rr + r0, cc + c0, dist[node[rr, cc]]


def sample_start_goal(
    walk: WalkMap,
    rng: np.random.Generator,
    min_dist: float,
    max_dist: float,
    same_component: bool = True,
    metric: str = "euclidean",
    max_tries: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """Random start and goal cells (centres, on the floor) see ``Scene.sample_start_goal``."""
    if metric not in ("euclidean", "geodesic"):
        raise ValueError(f"metric must be 'euclidean' or 'geodesic', got {metric!r}")
    if not (0 <= min_dist <= max_dist) or not np.isfinite(min_dist):
        raise ValueError(
            f"need 0 <= min_dist <= max_dist, got min_dist={min_dist}, max_dist={max_dist}"
        )
    if metric == "geodesic" and not np.isfinite(max_dist):
        raise ValueError("metric='geodesic' needs a finite max_dist")
    if metric == "geodesic" and not same_component:
        raise ValueError("metric='geodesic' implies same_component=True")
    flat = np.flatnonzero(walk.walkable)
    if flat.size == 0:
        raise ValueError("the scene has no walkable cell")
    w = walk.walkable.shape[1]
    labels = walk.components.reshape(-1)[flat]
    res = walk.resolution
    for _ in range(max_tries):
        s = flat[rng.integers(flat.size)]
        sc = np.array([s // w, s % w])
        if metric == "geodesic":
            rr, cc, d = _geodesic_from(walk, sc, max_dist)
            ok = np.isfinite(d) & (d >= min_dist) & (d <= max_dist)
            cand = np.stack([rr[ok], cc[ok]], axis=1)
        else:
            pool = flat[labels == walk.components.reshape(-1)[s]] if same_component else flat
            cand = np.stack([pool // w, pool % w], axis=1)
            d = np.hypot(*(cand - sc).T) * res
            cand = cand[(d >= min_dist) & (d <= max_dist)]
        if len(cand):
            g = cand[rng.integers(len(cand))]
            return grid_to_world(walk, sc), grid_to_world(walk, g)
    raise ValueError(
        f"could not find a start/goal pair with {metric} distance in [{min_dist}, {max_dist}] m"
        f"{' in one walkable region' if same_component else ''} after {max_tries} tries"
    )
