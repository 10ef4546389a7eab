"""Top-down maps of a scene: the one drawer and the one palette of every map.

The envs' ``rgb_array`` view, the demo's ``topdown.png`` and ``egosim scene``'s map, and the
maps of the walk and crowd videos all draw through :class:`TopdownMap`.

**Floor plan** (:func:`floor_plan`): an orthographic picture of the scene seen from above,
by ray casting straight down from ``cut_height`` (2.2 m, so ceilings are cut away), Lambert
shaded, lower surfaces a little darker so furniture stands out, walkable floor tinted green;
pixels that hit nothing are near black. Image rows run from +y (north, top) to -y, columns
along +x; a world point ``(x, y)`` (m) is at column ``(x - x_min) * s_x`` and row ``(y_max -
y) * s_y`` (``s`` pixels per metre, ``x_min``, ``y_max`` from the scene's bounds).

**Palette** (one home for the colours of humans and overlays, uint8 RGB):

=================  =====================================================================
name               drawn as
=================  =====================================================================
HUMAN_COLORS       human ``i`` (``i % 8``): its footprint, markers, walked trail, goal dot,
                   the frame of its ego view in the crowd video
route              human ``i``'s planned route: its colour blended 55 % towards white
GOAL               a human's final goal: a dot of its colour in a black ring
TARGET_COLOR       a human's current target (route point ``lookahead`` ahead): orange dot
PATH_COLOR         a path on its own (the demo's planned path): white
marker             a start or goal spot on its own: a white dot in a black ring
GAZE_COLOR         a gaze ray: yellow
RAY_COLOR          ego-sensing rays, drawn to their hit distance: green
=================  =====================================================================

:func:`ray_strip` and :func:`side_by_side` compose the ``rgb_array`` view: the map crop
(``size x size``, centred on the humans) beside the first human's first RGB head camera, or
its ego-sensing as a 1-D depth strip when no camera is configured.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from skimage.draw import disk, line

__all__ = ["HUMAN_COLORS", "TARGET_COLOR", "PATH_COLOR", "GAZE_COLOR", "RAY_COLOR",
           "BACKGROUND", "human_color", "route_color", "shade", "to_uint8", "floor_plan",
           "TopdownMap", "topdown_map", "cached_map", "ray_strip", "side_by_side"]

HUMAN_COLORS = np.array([[230, 60, 50], [50, 110, 240], [40, 170, 80], [235, 140, 20],
                         [160, 70, 210], [20, 170, 170], [240, 90, 170], [120, 80, 40]],
                        np.uint8)
"""``(8, 3)`` uint8 colour of human ``i`` (``i % 8``) in every map and ego-view frame."""
TARGET_COLOR = np.array([255, 150, 0], np.uint8)
PATH_COLOR = np.array([255, 255, 255], np.uint8)
GAZE_COLOR = np.array([255, 230, 0], np.uint8)
RAY_COLOR = np.array([40, 180, 40], np.uint8)
RING_COLOR = np.array([0, 0, 0], np.uint8)
BACKGROUND = np.array([20, 20, 20], np.uint8)
"""Where the floor plan's rays hit nothing (and outside the map in a crop)."""

_WALKABLE_TINT = np.array([0.35, 0.85, 0.40])
_LIGHT = np.array([0.3, 0.3, 0.9])


def human_color(i: int) -> np.ndarray:
    """``(3,)`` uint8 colour of human ``i`` (:data:`HUMAN_COLORS`, cycling)."""
    return HUMAN_COLORS[int(i) % len(HUMAN_COLORS)]


def route_color(i: int) -> np.ndarray:
    """``(3,)`` uint8 colour of human ``i``'s planned route: its colour, pale."""
    return (0.45 * human_color(i).astype(np.float64) + 0.55 * 255).astype(np.uint8)


def shade(albedo: np.ndarray, normal: np.ndarray, light_dir: np.ndarray,
          ambient: float = 0.35) -> np.ndarray:
    """Lambert shading ``albedo * (ambient + (1 - ambient) * |n . l|)`` (two-sided).

    Args:
        albedo: ``(N, 3)`` linear RGB in [0, 1].
        normal: ``(N, 3)`` unit normals.
        light_dir: ``(3,)`` unit vector pointing towards the light.
        ambient: ambient fraction in [0, 1].

    Returns:
        ``(N, 3)`` float RGB in [0, 1].
    """
    lam = np.abs(normal @ np.asarray(light_dir, dtype=np.float64))
    return np.clip(albedo * (ambient + (1.0 - ambient) * lam)[:, None], 0.0, 1.0)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] (any shape) -> uint8 (clipped, rounded)."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def floor_plan(scene: Any, pixels_per_m: float = 40, cut_height: float = 2.2) -> np.ndarray:
    """The scene's floor plan (see the module docstring) at ``pixels_per_m``.

    Args:
        scene: a :class:`egosim.envs.scenes.Scene` (``triangles``, ``face_albedo``,
            ``bounds``, ``is_walkable``; its ``raycaster`` when it has one).
        pixels_per_m: image scale.
        cut_height: rays start at this height (m) so ceilings are cut away.

    Returns:
        ``(H, W, 3)`` uint8, ``W = ceil(x extent * pixels_per_m)``, ``H`` likewise along y.
    """
    from egosim.sensors.raycast import RayCaster

    lo, hi = np.asarray(scene.bounds, dtype=np.float64)
    width = max(1, int(np.ceil((hi[0] - lo[0]) * pixels_per_m)))
    height = max(1, int(np.ceil((hi[1] - lo[1]) * pixels_per_m)))
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    xs = lo[0] + (cols + 0.5) / pixels_per_m
    ys = hi[1] - (rows + 0.5) / pixels_per_m
    z0 = min(cut_height, hi[2] - 1e-3)
    origins = np.stack([xs, ys, np.full_like(xs, z0)], -1).reshape(-1, 3)
    dirs = np.broadcast_to(np.array([0.0, 0.0, -1.0]), origins.shape)
    caster = getattr(scene, "raycaster", None)
    if caster is None:
        caster = RayCaster(scene.triangles)
    hits = caster.cast(origins, dirs)
    rgb = np.tile(BACKGROUND / 255.0, (origins.shape[0], 1))
    ok = hits.hit
    albedo = np.asarray(scene.face_albedo, dtype=np.float64)[hits.face[ok]]
    hz = z0 - hits.t[ok]
    depth_cue = 0.75 + 0.25 * np.clip(hz / 1.0, 0.0, 1.0)
    rgb[ok] = shade(albedo, hits.normal[ok], _LIGHT) * depth_cue[:, None]
    walk = np.asarray(scene.is_walkable(origins[:, :2]), dtype=bool) & ok
    rgb[walk] = 0.55 * rgb[walk] + 0.45 * _WALKABLE_TINT
    return to_uint8(rgb.reshape(height, width, 3))


class TopdownMap:
    """A scene's floor plan with a world-to-pixel transform and the overlays of the palette.

    ``base`` is the floor plan; ``image`` a canvas for what persists (routes, trails);
    :meth:`frame` copies it for per-frame overlays. Every drawing method draws into ``img``
    (default: ``image``); points are world coordinates in metres (``(..., 2|3)``, z
    ignored), sizes in pixels.

    Args:
        scene: see :func:`floor_plan`.
        pixels_per_m: map scale; or use :meth:`fit` for a map of a given height.
        cut_height: see :func:`floor_plan`.

    Attributes:
        base: ``(H, W, 3)`` uint8 floor plan.
        image: ``(H, W, 3)`` uint8 persistent canvas (starts as ``base``).
        lo, hi: ``(3,)`` the scene's bounds (m).
        scale: ``(s_x, s_y)`` pixels per metre along x and y.
        dot_radius: radius (px) of goal and marker dots: 0.12 m (a map of
            ``pixels_per_m``) or 1/45 of the height (:meth:`fit`), at least 2 px.
    """

    def __init__(self, scene: Any, pixels_per_m: float = 40, cut_height: float = 2.2) -> None:
        self._setup(scene, floor_plan(scene, pixels_per_m, cut_height),
                    (float(pixels_per_m), float(pixels_per_m)), max(2.0, 0.12 * pixels_per_m))

    @classmethod
    def fit(cls, scene: Any, height: int, cut_height: float = 2.2) -> TopdownMap:
        """A map ``height`` pixels high, its width following the scene's aspect ratio
        (even, at least 2), drawn 2x supersampled and box-filtered down."""
        from PIL import Image

        lo, hi = np.asarray(scene.bounds, dtype=np.float64)
        extent = hi[:2] - lo[:2]
        h = int(height)
        w = max(2, int(round(h * extent[0] / extent[1])) // 2 * 2)
        ppm = max(4, int(np.ceil(2.0 * h / extent[1])))
        full = floor_plan(scene, ppm, cut_height)
        base = np.asarray(Image.fromarray(full).resize((w, h), Image.BOX))
        out = cls.__new__(cls)
        out._setup(scene, base, (w / extent[0], h / extent[1]), max(2.0, h / 45.0))
        return out

    def _setup(self, scene: Any, base: np.ndarray, scale: tuple[float, float],
               dot_radius: float) -> None:
        self.lo, self.hi = np.asarray(scene.bounds, dtype=np.float64)
        self.base = base
        self.base.flags.writeable = False
        self.image = base.copy()
        self.scale = scale
        self.dot_radius = dot_radius

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the map in pixels."""
        return self.base.shape[:2]

    def frame(self) -> np.ndarray:
        """A copy of :attr:`image` to draw one frame's overlays on."""
        return self.image.copy()

    # -- transform ----------------------------------------------------------------------
    def px(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns (int, clipped to the map) of world points ``(..., 2|3)``."""
        p = np.asarray(points, np.float64)
        r = np.floor((self.hi[1] - p[..., 1]) * self.scale[1]).astype(int)
        c = np.floor((p[..., 0] - self.lo[0]) * self.scale[0]).astype(int)
        h, w = self.shape
        return np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)

    def _canvas(self, img: np.ndarray | None) -> np.ndarray:
        return self.image if img is None else img

    # -- primitives ---------------------------------------------------------------------
    def polyline(self, points: np.ndarray, color: Any, img: np.ndarray | None = None
                 ) -> None:
        """Connected segments through ``points (K, 2|3)``."""
        canvas = self._canvas(img)
        r, c = self.px(np.atleast_2d(points))
        for k in range(len(r) - 1):
            rr, cc = line(int(r[k]), int(c[k]), int(r[k + 1]), int(c[k + 1]))
            canvas[rr, cc] = color

    def dots(self, points: np.ndarray, color: Any, radius: float = 0.0,
             ring: Any = None, img: np.ndarray | None = None) -> None:
        """A dot of ``radius`` pixels (0: one pixel) at each of ``points (K, 2|3)``, in a
        ``ring`` (1.5 pixels wider) of that colour when given."""
        canvas = self._canvas(img)
        r, c = self.px(np.atleast_2d(points))
        if radius <= 0.0 and ring is None:
            canvas[r, c] = color
            return
        for rk, ck in zip(r, c, strict=True):
            if ring is not None:
                canvas[disk((rk, ck), radius + 1.5, shape=canvas.shape[:2])] = ring
            canvas[disk((rk, ck), max(radius, 0.5), shape=canvas.shape[:2])] = color

    # -- the palette's overlays ---------------------------------------------------------
    def route(self, points: np.ndarray, i: int, img: np.ndarray | None = None) -> None:
        """Human ``i``'s planned route ``(K, 3)``, in its pale colour."""
        self.polyline(points, route_color(i), img)

    def goal(self, point: np.ndarray, i: int, img: np.ndarray | None = None) -> None:
        """Human ``i``'s final goal: a dot of its colour in a black ring."""
        self.dots(point, human_color(i), self.dot_radius, RING_COLOR, img)

    def target(self, point: np.ndarray, img: np.ndarray | None = None) -> None:
        """A current target: a small orange dot."""
        self.dots(point, TARGET_COLOR, 0.6 * self.dot_radius, None, img)

    def marker(self, point: np.ndarray, img: np.ndarray | None = None) -> None:
        """A start or goal spot: a white dot in a black ring."""
        self.dots(point, PATH_COLOR, self.dot_radius, RING_COLOR, img)

    def path(self, points: np.ndarray, img: np.ndarray | None = None) -> None:
        """A path ``(K, 3)`` on its own, in white."""
        self.polyline(points, PATH_COLOR, img)

    def trail(self, a: np.ndarray, b: np.ndarray, i: int, img: np.ndarray | None = None
              ) -> None:
        """One segment ``a -> b`` of human ``i``'s walked trail, in its colour."""
        self.polyline(np.stack([a, b]), human_color(i), img)

    def footprint(self, vertices: np.ndarray, i: int, img: np.ndarray | None = None,
                  stride: int = 5) -> None:
        """Human ``i``'s body from above: every ``stride``-th vertex ``(V, 3)`` a pixel of
        its colour."""
        self.dots(np.asarray(vertices)[::stride], human_color(i), 0.0, None, img)

    def human_markers(self, markers: np.ndarray, i: int, img: np.ndarray | None = None
                      ) -> None:
        """Human ``i``'s body markers ``(67, 3)`` as small dots of its colour."""
        self.dots(markers, human_color(i), 1.5, None, img)

    def gaze(self, origin: np.ndarray, direction: np.ndarray, length: float = 1.5,
             img: np.ndarray | None = None) -> None:
        """A gaze ray from ``origin (3,)`` along unit ``direction (3,)`` for ``length`` m."""
        o = np.asarray(origin, np.float64)
        self.polyline(np.stack([o, o + length * np.asarray(direction, np.float64)]),
                      GAZE_COLOR, img)

    def rays(self, origins: np.ndarray, ends: np.ndarray, img: np.ndarray | None = None
             ) -> None:
        """Ego-sensing rays ``origins (R, 3) -> ends (R, 3)`` (their hits), in green."""
        for a, b in zip(np.atleast_2d(origins), np.atleast_2d(ends), strict=True):
            self.polyline(np.stack([a, b]), RAY_COLOR, img)

    # -- views --------------------------------------------------------------------------
    def crop(self, img: np.ndarray, center: np.ndarray, size: int) -> np.ndarray:
        """``(size, size, 3)`` window of ``img`` (this map's pixels) centred on the world
        point ``center (2|3,)``; outside the map is :data:`BACKGROUND`."""
        out = np.empty((size, size, 3), np.uint8)
        out[:] = BACKGROUND
        r0 = int(round((self.hi[1] - center[1]) * self.scale[1] - size / 2.0))
        c0 = int(round((center[0] - self.lo[0]) * self.scale[0] - size / 2.0))
        h, w = img.shape[:2]
        rs, cs = max(r0, 0), max(c0, 0)
        re, ce = min(r0 + size, h), min(c0 + size, w)
        if rs < re and cs < ce:
            out[rs - r0:re - r0, cs - c0:ce - c0] = img[rs:re, cs:ce]
        return out

    @staticmethod
    def resized(img: np.ndarray, height: int) -> np.ndarray:
        """``img`` scaled to ``height`` rows by nearest neighbour, the width following the
        aspect ratio (even, at least 2)."""
        h, w = img.shape[:2]
        width = max(2, int(round(w * height / h)) // 2 * 2)
        rows = (np.arange(height) * h / height).astype(int)
        cols = (np.arange(width) * w / width).astype(int)
        return img[rows][:, cols]


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_map(scene: Any, pixels_per_m: float) -> TopdownMap:
    """The :class:`TopdownMap` of ``scene`` at ``pixels_per_m``, built once per scene
    object (kept while the scene lives)."""
    per_scene = _CACHE.setdefault(scene, {})
    key = float(pixels_per_m)
    if key not in per_scene:
        per_scene[key] = TopdownMap(scene, pixels_per_m)
    return per_scene[key]


def topdown_map(scene: Any, pixels_per_m: float = 40, cut_height: float = 2.2,
                bodies: Sequence[np.ndarray] = (), paths: Sequence[np.ndarray] = (),
                markers: Sequence[np.ndarray] = ()) -> np.ndarray:
    """The floor plan with bodies, paths and spots: the demo's ``topdown.png``.

    Args:
        scene: see :func:`floor_plan`.
        pixels_per_m: image scale.
        cut_height: see :func:`floor_plan`.
        bodies: world vertex arrays ``(V, 3)``: body ``i``'s footprint in human ``i``'s
            colour.
        paths: world polylines ``(K, 2|3)`` in white.
        markers: world points ``(2|3,)`` as white dots in black rings (starts, goals).

    Returns:
        ``(H, W, 3)`` uint8 (rows from +y down to -y, columns along +x).
    """
    m = TopdownMap(scene, pixels_per_m, cut_height)
    for i, verts in enumerate(bodies):
        m.footprint(verts, i, stride=1)
    for p in paths:
        m.path(p)
    for point in markers:
        m.marker(point)
    return m.image


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
