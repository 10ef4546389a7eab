"""The ``rgb_array`` view of the envs: a top-down map crop beside the ego view.

Left panel (``size x size``): the walk map around the humans (``pixels_per_m``; walkable cells
light, the rest dark), each human's route (grey), current target (orange) and final goal
(red), its markers of the latest frame (one colour per human) and, for the first human, its
ego-sensing rays (green, drawn to their hit distance). North (+y) is up.

Right panel (``size x size``): the first human's first RGB head camera when cameras are
configured (nearest-neighbour resized), otherwise its ego-sensing as a 1-D depth strip: one
column per ray (left ray on the left), bar height and brightness growing with closeness.

Pure numpy; no scene renderer needed (envs never import ``egosim.apps.visualize``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["topdown_view", "ray_strip", "side_by_side"]

COLORS = np.array([[40, 90, 220], [220, 60, 160], [30, 170, 170], [150, 90, 30],
                   [120, 60, 200], [60, 160, 60]], np.uint8)


def _disk(img: np.ndarray, cx: float, cy: float, r: float, color) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, w)
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img[y0:y1, x0:x1][m] = color


def _line(img: np.ndarray, a: np.ndarray, b: np.ndarray, color) -> None:
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    xs = np.linspace(a[0], b[0], n).round().astype(int)
    ys = np.linspace(a[1], b[1], n).round().astype(int)
    ok = (xs >= 0) & (xs < img.shape[1]) & (ys >= 0) & (ys < img.shape[0])
    img[ys[ok], xs[ok]] = color


def topdown_view(walk_map, center: np.ndarray, size: int, pixels_per_m: float,
                 routes: list, markers: np.ndarray, rays: tuple[np.ndarray, np.ndarray] | None
                 ) -> np.ndarray:
    """``(size, size, 3)`` uint8 map crop centred on ``center (2,)`` (m, world).

    Args:
        walk_map: the scene's walk map (``walkable``, ``origin``, ``resolution``).
        routes: :class:`~egosim.envs.task.Route` per human.
        markers: ``(N, 67, 3)`` latest markers (m, world).
        rays: ``(origins (R, 3), ends (R, 3))`` of the first human's rays, or None.
    """
    res = float(walk_map.resolution)
    half = size / (2.0 * pixels_per_m)
    px = (np.arange(size) + 0.5) / pixels_per_m - half
    wx = np.broadcast_to(center[0] + px[None, :], (size, size))
    wy = np.broadcast_to(center[1] - px[:, None], (size, size))
    col = np.round((wx - walk_map.origin[0]) / res).astype(int)
    row = np.round((wy - walk_map.origin[1]) / res).astype(int)
    grid = walk_map.walkable
    inside = (row >= 0) & (row < grid.shape[0]) & (col >= 0) & (col < grid.shape[1])
    walk = np.zeros((size, size), bool)
    walk[inside] = grid[row[inside], col[inside]]
    img = np.repeat(np.where(walk, 225, 60).astype(np.uint8)[..., None], 3, axis=2)

    def to_px(p: np.ndarray) -> np.ndarray:
        return np.stack([(p[..., 0] - center[0] + half) * pixels_per_m,
                         (center[1] + half - p[..., 1]) * pixels_per_m], -1)

    for r in routes:
        pts = to_px(r.points)
        for a, b in zip(pts[:-1], pts[1:], strict=True):
            _line(img, a, b, (150, 150, 150))
    if rays is not None:
        o, ends = to_px(rays[0]), to_px(rays[1])
        for a, b in zip(o, ends, strict=True):
            _line(img, a, b, (40, 180, 40))
    for r in routes:
        t, g = to_px(r.target()), to_px(r.goal)
        _disk(img, t[0], t[1], 3, (255, 150, 0))
        _disk(img, g[0], g[1], 5, (220, 30, 30))
    for i, m in enumerate(markers):
        for p in to_px(m):
            _disk(img, p[0], p[1], 1.5, COLORS[i % len(COLORS)])
    return img


def ray_strip(dist: np.ndarray, max_range: float, size: int) -> np.ndarray:
    """``(size, size, 3)`` uint8 depth strip of ray distances ``dist (R,)`` (m)."""
    close = 1.0 - np.clip(dist / max_range, 0.0, 1.0)[::-1]  # left ray on the left
    cols = np.minimum((np.arange(size) * len(close)) // size, len(close) - 1)
    c = close[cols]
    rows = np.arange(size)[:, None]
    bar = rows >= (size * (1.0 - c))[None, :]
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = np.where(bar, (80 + 175 * c)[None, :], 20).astype(np.uint8)
    img[..., 1] = np.where(bar, (80 * (1 - c))[None, :] + 40, 20).astype(np.uint8)
    img[..., 2] = 30
    return img


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two ``(size, size, 3)`` panels -> ``(size, 2 * size, 3)``; ``right`` is resized to
    ``left``'s height by nearest neighbour (grey images are repeated to RGB)."""
    s = left.shape[0]
    if right.ndim == 2:
        right = np.repeat(right[..., None], 3, axis=2)
    ry = np.minimum((np.arange(s) * right.shape[0]) // s, right.shape[0] - 1)
    rx = np.minimum((np.arange(s) * right.shape[1]) // s, right.shape[1] - 1)
    return np.concatenate([left, right[ry][:, rx].astype(np.uint8)], axis=1)
