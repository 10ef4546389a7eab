"""EgoGen's ego-sensing: a fan of horizontal rays from the eyes around the gaze direction.

For each human: ``num_rays`` (32) horizontal rays, evenly spread over ``fov_deg`` (180 deg,
both ends included) and centred on the gaze direction, start at the midpoint of the SMPL-X
eye joints (23, 24) and are ``max_range`` (7 m) long. The gaze direction is the horizontal
forward of the eye line: ``up x (right eye - left eye)``, normalised in the floor plane.
Ray ``k`` points at angle ``-fov/2 + k * fov / (num_rays - 1)`` from the gaze, counter-
clockwise seen from above (ray 0 on the right, the last ray on the left).

Obstacles:

* the static scene (its :class:`egosim.sensors.raycast.RayCaster`, Embree);
* every *other* human of the same scene, as a vertical cylinder of radius ``human_radius``
  (0.25 m) around its pelvis axis, from the floor to 0.15 m above its eyes. The rays are
  horizontal, so a ray meets the cylinder iff its height lies in that span, and the hit is the
  first intersection of the ray with the cylinder's circle in the floor plane (analytic). A
  ray starting inside another human's cylinder reports distance 0.

Output: distance ``d`` to the first hit (``max_range`` on a miss) mapped to
``2 * d / max_range - 1`` in [-1, 1] (-1: touching, +1: free for 7 m).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fan_directions", "gaze_forward", "cylinder_hits", "ego_sensing"]

#: Head room above the eyes of the cylinder that stands in for a human (m).
HEAD_ABOVE_EYES = 0.15


def gaze_forward(left_eye: np.ndarray, right_eye: np.ndarray) -> np.ndarray:
    """``(N, 3)`` unit horizontal gaze directions from eye positions ``(N, 3)`` each."""
    line = np.asarray(right_eye, np.float64) - np.asarray(left_eye, np.float64)
    fwd = np.stack([-line[:, 1], line[:, 0], np.zeros(len(line))], 1)  # z x line
    n = np.linalg.norm(fwd, axis=1, keepdims=True)
    return fwd / np.maximum(n, 1e-9)


def fan_directions(forward: np.ndarray, num_rays: int, fov_deg: float) -> np.ndarray:
    """``(N, R, 3)`` unit horizontal ray directions around ``forward (N, 3)`` (see module)."""
    yaw = np.arctan2(forward[:, 1], forward[:, 0])
    if num_rays == 1:
        offs = np.zeros(1)
    else:
        offs = np.deg2rad(np.linspace(-fov_deg / 2.0, fov_deg / 2.0, num_rays))
    ang = yaw[:, None] + offs[None]
    return np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], -1)


def cylinder_hits(origins: np.ndarray, dirs: np.ndarray, centers: np.ndarray,
                  radius: float, z_top: np.ndarray) -> np.ndarray:
    """Distances of horizontal rays to vertical cylinders (floor to ``z_top``).

    Args:
        origins: ``(R, 3)`` ray origins (m); dirs: ``(R, 3)`` unit horizontal directions.
        centers: ``(C, 2)`` cylinder axes in the floor plane (m); z_top: ``(C,)`` tops (m).
        radius: cylinder radius (m).

    Returns:
        ``(R,)`` first-hit distance over all cylinders (m), ``inf`` where none is hit.
    """
    if len(centers) == 0:
        return np.full(len(origins), np.inf)
    rel = centers[None] - origins[:, None, :2]  # (R, C, 2)
    b = np.einsum("rcx,rx->rc", rel, dirs[:, :2])
    c = np.einsum("rcx,rcx->rc", rel, rel) - radius * radius
    disc = b * b - c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t_near = b - sq
    t_far = b + sq
    t = np.where(c <= 0.0, 0.0, np.where(t_near >= 0.0, t_near, np.inf))  # inside: 0
    ok = (disc >= 0.0) & (t_far >= 0.0)
    ok &= (origins[:, None, 2] >= 0.0) & (origins[:, None, 2] <= z_top[None])
    return np.where(ok, t, np.inf).min(axis=1)


def ego_sensing(caster, eyes: np.ndarray, forward: np.ndarray, num_rays: int,
                fov_deg: float, max_range: float, others: list[tuple[np.ndarray, np.ndarray]]
                | None = None, radius: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Ego-sensing of ``N`` humans in one scene.

    Args:
        caster: the scene's ray caster (``.cast(origins, dirs, tmax) -> RayHits``).
        eyes: ``(N, 3)`` eye midpoints (m, world); forward: ``(N, 3)`` gaze directions.
        others: per human, ``(centers (C, 2), z_top (C,))`` of the humans it sees, or None.
        radius: cylinder radius of a human (m).

    Returns:
        ``(obs (N, R) float32 in [-1, 1], dist (N, R) float64 metres)``.
    """
    n = len(eyes)
    dirs = fan_directions(forward, num_rays, fov_deg)  # (N, R, 3)
    origins = np.repeat(np.asarray(eyes, np.float64)[:, None], num_rays, 1)
    hits = caster.cast(origins.reshape(-1, 3), dirs.reshape(-1, 3), max_range)
    dist = np.minimum(hits.t.astype(np.float64), max_range).reshape(n, num_rays)
    if others is not None:
        for i, (centers, tops) in enumerate(others):
            t = cylinder_hits(origins[i], dirs[i], centers, radius, tops)
            dist[i] = np.minimum(dist[i], t)
    dist = np.clip(dist, 0.0, max_range)
    return (2.0 * dist / max_range - 1.0).astype(np.float32), dist
