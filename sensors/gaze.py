"""Gaze: a small stochastic eye model around a look-at target, and its 2D projection.

Eye model (:class:`EyeModel`), simulated per frame by :func:`simulate_gaze`. The gaze
error ``e`` is a 2-vector of angles (radians) between the gaze and the eye-to-target
direction, measured in a tangent basis around that direction (``right`` horizontal,
``up`` = right x direction). The gaze direction is ``normalise(d + tan(e0) right +
tan(e1) up)``.

* **Fixation**: the eye holds an *anchor* error ``a`` (where the last saccade landed,
  ``a ~ N(0, fixation_sigma_deg^2)`` per axis) and drifts around it as an
  Ornstein-Uhlenbeck process (stationary std ``drift_sigma_deg``, time constant
  ``drift_tau_s``). A fixation lasts a Gamma(``fixation_shape``, mean
  ``fixation_mean_s``) time, then a saccade re-targets.
* **Smooth pursuit**: when the target direction moves by ``dT`` (its angular motion, in
  the tangent basis), the eye follows ``pursuit_gain * dT``, so the error grows by
  ``-(1 - gain) dT`` and is pulled back to the anchor by the same OU relaxation. Frames
  whose target moves faster than ``pursuit_min_deg_s`` are labelled pursuit.
* **Saccades**: triggered by the end of a fixation or a tracking error over
  ``catchup_deg`` (catch-up saccade). The gaze moves linearly in error space to a new
  anchor over ``saccade_base_ms + saccade_ms_per_deg * amplitude`` (the main sequence).

The gaze ray starts at the eye midpoint. :func:`gaze_points_2d` projects the 3D gaze
point (on the ray, at the target's distance) into a camera, normalised to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.sensors.camera import check_poses, project
from egosim.sensors.spec import CameraSpec

__all__ = ["FIXATION", "PURSUIT", "SACCADE", "EyeModel", "GazeTrack", "gaze_points_2d",
           "simulate_gaze"]

FIXATION, SACCADE, PURSUIT = 0, 1, 2


@dataclass(frozen=True)
class EyeModel:
    """Parameters of the eye model (see the module docstring); angles in degrees."""

    fixation_mean_s: float = 0.3
    fixation_shape: float = 3.0
    fixation_sigma_deg: float = 0.7
    drift_sigma_deg: float = 0.1
    drift_tau_s: float = 0.2
    pursuit_gain: float = 0.9
    pursuit_min_deg_s: float = 2.0
    catchup_deg: float = 2.0
    saccade_base_ms: float = 21.0
    saccade_ms_per_deg: float = 2.2

    def __post_init__(self) -> None:
        for name in ("fixation_mean_s", "fixation_shape", "drift_tau_s", "catchup_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EyeModel.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.pursuit_gain <= 1.0:
            raise ValueError(f"EyeModel.pursuit_gain must be in [0, 1], got {self.pursuit_gain}")


@dataclass
class GazeTrack:
    """Simulated gaze, one row per frame.

    Attributes:
        origin: ``(T, 3)`` eye midpoint, world, metres.
        direction: ``(T, 3)`` unit gaze direction, world.
        target: ``(T, 3)`` the look-at target given, world.
        state: ``(T,)`` int8, :data:`FIXATION`, :data:`SACCADE` or :data:`PURSUIT`.
        error_deg: ``(T,)`` angle between gaze and eye-to-target direction, degrees.
    """

    origin: np.ndarray
    direction: np.ndarray
    target: np.ndarray
    state: np.ndarray
    error_deg: np.ndarray

    def points_3d(self) -> np.ndarray:
        """``(T, 3)`` gaze points: on each gaze ray, at the target's distance."""
        dist = np.linalg.norm(self.target - self.origin, axis=1, keepdims=True)
        return self.origin + self.direction * dist


def _tangent_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.where(np.abs(d[:, 2:3]) > 0.999, [[1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0]])
    right = np.cross(d, ref)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    return right, np.cross(right, d)


def simulate_gaze(eye_mid: np.ndarray, target: np.ndarray, fps: float, rng,
                  model: EyeModel | None = None) -> GazeTrack:
    """Simulate the eye looking at a (moving) target.

    Args:
        eye_mid: ``(T, 3)`` eye midpoints (world, metres), e.g. the mean of SMPL-X joints
            23 and 24.
        target: ``(T, 3)`` or ``(3,)`` look-at point(s), world, metres.
        fps: frame rate, Hz.
        rng: seed or ``numpy.random.Generator``.
        model: eye parameters; default :class:`EyeModel` ().
    """
    model = model or EyeModel()
    o = np.asarray(eye_mid, np.float64)
    if o.ndim != 2 or o.shape[1] != 3:
        raise ValueError(f"eye_mid must have shape (T, 3), got {o.shape}")
    n = o.shape[0]
    tgt = np.broadcast_to(np.asarray(target, np.float64), (n, 3)).copy()
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    d = tgt - o
    dist = np.linalg.norm(d, axis=1, keepdims=True)
    if np.any(dist < 1e-6):
        raise ValueError("target coincides with the eye midpoint")
    d /= dist
    right, up = _tangent_basis(d)
    g = np.random.default_rng(rng)
    dt = 1.0 / fps
    rad = np.pi / 180.0
    relax = np.exp(-dt / model.drift_tau_s)
    drift = model.drift_sigma_deg * rad * np.sqrt(1.0 - relax**2)

    def draw_fixation() -> float:
        return g.gamma(model.fixation_shape, model.fixation_mean_s / model.fixation_shape)

    anchor = g.normal(0.0, model.fixation_sigma_deg * rad, 2)
    err = anchor.copy()
    fix_left = draw_fixation()
    sac_from = sac_to = None
    sac_t = sac_len = 0.0
    errs = np.zeros((n, 2))
    state = np.zeros(n, np.int8)
    for k in range(n):
        noise = g.normal(size=2)
        if k > 0:
            # Target motion seen from the eye, in this frame's tangent basis.
            dmove = np.array([d[k - 1] @ right[k], d[k - 1] @ up[k]])
            moved = -dmove  # target moved by -(previous direction's offset)
            speed = np.linalg.norm(moved) / rad / dt
        else:
            moved, speed = np.zeros(2), 0.0
        if sac_to is not None:
            sac_t += dt
            if sac_t >= sac_len:
                err, anchor, sac_to = sac_to.copy(), sac_to.copy(), None
                fix_left = draw_fixation()
                state[k] = FIXATION
            else:
                err = sac_from + (sac_to - sac_from) * (sac_t / sac_len)
                state[k] = SACCADE
        else:
            err = err - (1.0 - model.pursuit_gain) * moved
            err = anchor + (err - anchor) * relax + drift * noise
            fix_left -= dt
            state[k] = PURSUIT if speed > model.pursuit_min_deg_s else FIXATION
            if fix_left <= 0 or np.linalg.norm(err - anchor) > model.catchup_deg * rad:
                new = g.normal(0.0, model.fixation_sigma_deg * rad, 2)
                amp = np.linalg.norm(new - err) / rad
                sac_from, sac_to, sac_t = err.copy(), new, 0.0
                sac_len = (model.saccade_base_ms + model.saccade_ms_per_deg * amp) / 1000.0
        errs[k] = err
    direc = d + np.tan(errs[:, :1]) * right + np.tan(errs[:, 1:]) * up
    direc /= np.linalg.norm(direc, axis=1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip(np.sum(direc * d, axis=1), -1.0, 1.0)))
    return GazeTrack(o, direc, tgt, state, ang)


def gaze_points_2d(points_world: np.ndarray, cam_to_world: np.ndarray,
                   spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """Project 3D gaze points into a camera, normalised to [-1, 1].

    Args:
        points_world: ``(N, 3)`` gaze points, world, metres (e.g.
            :meth:`GazeTrack.points_3d`, or the look-at targets themselves).
        cam_to_world: ``(N, 4, 4)`` sensor-to-world poses (OpenCV axes).
        spec: the camera (pinhole or fisheye).

    Returns:
        ``xy``: ``(N, 2)`` float64, ``x = 2 (u + 0.5) / W - 1`` and ``y = 2 (v + 0.5) / H
        - 1`` (-1 at the left/top image edge, +1 at the right/bottom edge; ``u, v`` in
        OpenCV pixel coordinates); NaN where the point is behind the camera.
        ``valid``: ``(N,)`` bool, False when behind the camera or outside the image.
    """
    p = np.asarray(points_world, np.float64).reshape(-1, 3)
    poses, _ = check_poses(cam_to_world)
    if poses.shape[0] != p.shape[0]:
        raise ValueError(f"points_world has {p.shape[0]} rows but cam_to_world has "
                         f"{poses.shape[0]} poses")
    rel = p - poses[:, :3, 3]
    pc = np.einsum("nji,nj->ni", poses[:, :3, :3], rel)
    uv, valid = project(pc, spec)
    h, w = spec.resolution
    xy = np.stack([2.0 * (uv[:, 0] + 0.5) / w - 1.0, 2.0 * (uv[:, 1] + 0.5) / h - 1.0], axis=1)
    return xy, valid
