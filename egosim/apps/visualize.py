"""Pictures a person can look at: a body turntable (the top-down scene map is
:func:`egosim.envs.topdown.topdown_map`, the one map drawer).

An orthographic ray-cast view through :class:`egosim.sensors.RayCaster`, shaded with the
maps' Lambert term (:func:`egosim.envs.topdown.shade`), so it needs no display and no OpenGL.
"""

from __future__ import annotations

import numpy as np

from egosim.envs.topdown import shade, to_uint8
from egosim.sensors.raycast import RayCaster

__all__ = ["turntable"]


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
    return to_uint8(np.concatenate(panels, axis=1))
