"""Pictures a person can look at: a top-down scene map and a body turntable.

Both are orthographic ray-cast views through :class:`egosim.sensors.RayCaster`, shaded
with a Lambert term, so they need no display and no OpenGL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.draw import disk, line

from egosim.sensors.raycast import RayCaster

__all__ = ["topdown_map", "turntable", "shade"]

_WALKABLE_TINT = np.array([0.35, 0.85, 0.40])
_BODY_COLOURS = np.array(
    [[0.90, 0.25, 0.20], [0.20, 0.45, 0.95], [0.95, 0.70, 0.10], [0.65, 0.25, 0.85],
     [0.10, 0.75, 0.75], [0.95, 0.45, 0.70], [0.45, 0.30, 0.15], [0.50, 0.50, 0.50]]
)


def shade(albedo: np.ndarray, normal: np.ndarray, light_dir: np.ndarray,
          ambient: float = 0.35) -> np.ndarray:
    """Lambert shading ``albedo * (ambient + (1 - ambient) * max(0, n . l))``.

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


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def topdown_map(
    scene: object,
    pixels_per_m: int = 40,
    cut_height: float = 2.2,
    bodies: Sequence[np.ndarray] = (),
    paths: Sequence[np.ndarray] = (),
    markers: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """Top-down orthographic map of a scene (a floor plan cut at ``cut_height``).

    Args:
        scene: a :class:`egosim.envs.scenes.Scene` (``triangles``, ``face_albedo``,
            ``bounds``, ``is_walkable``).
        pixels_per_m: image scale.
        cut_height: rays start at this height (m) so ceilings are cut away.
        bodies: world-frame vertex arrays ``(V, 3)`` drawn as coloured footprints.
        paths: world-frame polylines ``(N, 2|3)`` drawn in white.
        markers: world-frame points ``(2|3,)`` drawn as black-ringed dots (starts, goals).

    Returns:
        ``(H, W, 3)`` uint8 image; image rows run from +y (top) to -y, columns along +x.
    """
    lo, hi = np.asarray(scene.bounds, dtype=np.float64)
    width = max(1, int(np.ceil((hi[0] - lo[0]) * pixels_per_m)))
    height = max(1, int(np.ceil((hi[1] - lo[1]) * pixels_per_m)))
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    xs = lo[0] + (cols + 0.5) / pixels_per_m
    ys = hi[1] - (rows + 0.5) / pixels_per_m
    z0 = min(cut_height, hi[2] - 1e-3)
    origins = np.stack([xs, ys, np.full_like(xs, z0)], -1).reshape(-1, 3)
    dirs = np.broadcast_to(np.array([0.0, 0.0, -1.0]), origins.shape)
    hits = RayCaster(scene.triangles).cast(origins, dirs)
    rgb = np.full((origins.shape[0], 3), 0.08)
    ok = hits.hit
    albedo = np.asarray(scene.face_albedo, dtype=np.float64)[hits.face[ok]]
    hz = z0 - hits.t[ok]
    # Lower surfaces are drawn a little darker so furniture stands out from the floor.
    depth_cue = 0.75 + 0.25 * np.clip(hz / 1.0, 0.0, 1.0)
    rgb[ok] = shade(albedo, hits.normal[ok], np.array([0.3, 0.3, 0.9]) / 1.0)
    rgb[ok] *= depth_cue[:, None]
    walk = np.asarray(scene.is_walkable(origins[:, :2]), dtype=bool) & ok
    rgb[walk] = 0.55 * rgb[walk] + 0.45 * _WALKABLE_TINT
    img = rgb.reshape(height, width, 3)

    def to_px(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.atleast_2d(np.asarray(p, dtype=np.float64))
        c = np.floor((p[:, 0] - lo[0]) * pixels_per_m).astype(int)
        r = np.floor((hi[1] - p[:, 1]) * pixels_per_m).astype(int)
        return np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)

    for i, verts in enumerate(bodies):
        r, c = to_px(verts)
        img[r, c] = _BODY_COLOURS[i % len(_BODY_COLOURS)]
    for path in paths:
        r, c = to_px(path)
        for k in range(len(r) - 1):
            rr, cc = line(r[k], c[k], r[k + 1], c[k + 1])
            img[rr, cc] = 1.0
    for point in markers:
        r, c = to_px(point)
        rad = max(2.0, 0.12 * pixels_per_m)
        img[disk((r[0], c[0]), rad + 1.5, shape=img.shape[:2])] = 0.0
        img[disk((r[0], c[0]), rad, shape=img.shape[:2])] = 1.0
    return _to_uint8(img)


def turntable(
    vertices: np.ndarray,
    faces: np.ndarray,
    vertex_colors: np.ndarray,
    views: int = 8,
    size: int = 256,
    up_axis: int = 1,
) -> np.ndarray:
    """Orthographic views of one mesh from ``views`` angles around its up axis, in a row.

    Args:
        vertices: ``(V, 3)`` positions, metres (SMPL-X's canonical frame: y up, z forward).
        faces: ``(F, 3)`` vertex indices.
        vertex_colors: ``(V, 3)`` linear RGB in [0, 1].
        views: number of evenly spaced azimuths; the first looks at the body's front.
        size: pixels per view (square).
        up_axis: index of the up axis in ``vertices``.

    Returns:
        ``(size, views * size, 3)`` uint8 image on a light grey background.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if up_axis != 1:
        v = np.roll(v, 1 - up_axis, axis=1)
    centre = 0.5 * (v.min(0) + v.max(0))
    extent = float(np.max(v.max(0) - v.min(0))) * 1.1
    caster = RayCaster(v[f])
    face_col = np.asarray(vertex_colors, dtype=np.float64)[f].mean(axis=1)
    u = (np.arange(size) + 0.5) / size - 0.5
    gx, gy = np.meshgrid(u * extent, -u * extent)
    panels = []
    for k in range(views):
        az = 2.0 * np.pi * k / views
        forward = np.array([-np.sin(az), 0.0, -np.cos(az)])  # camera looks along this
        right = np.array([np.cos(az), 0.0, -np.sin(az)])
        up = np.array([0.0, 1.0, 0.0])
        origins = centre - forward * extent + gx[..., None] * right + gy[..., None] * up
        origins = origins.reshape(-1, 3)
        hits = caster.cast(origins, np.broadcast_to(forward, origins.shape))
        rgb = np.full((origins.shape[0], 3), 0.92)
        ok = hits.hit
        light = -forward + np.array([0.0, 0.6, 0.0])
        rgb[ok] = shade(face_col[hits.face[ok]], hits.normal[ok], light / np.linalg.norm(light))
        panels.append(rgb.reshape(size, size, 3))
    return _to_uint8(np.concatenate(panels, axis=1))
