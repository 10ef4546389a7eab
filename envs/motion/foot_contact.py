"""Foot-contact statistics of marker motion (the motion prior's model-card figures).

All inputs are markers ``(T, 67, 3)`` in the z-up world (m, floor at ``z = 0``) at ``fps``.
Definitions (used for the training data and for model rollouts alike):

- *lowest foot marker* at frame ``t``: the one of the six foot markers
  (:data:`~egosim.envs.humans.FOOT_MARKER_INDICES`) with the smallest ``z``.
- *foot height at contact*: ``z`` of the lowest foot marker over the *stance* frames, the
  frames where the slowest foot marker moves less than ``stance_speed`` (m/s) horizontally.
  A motion whose feet float or sink shows it here.
- *skating*: horizontal speed (m/s) of the lowest foot marker between frames ``t`` and
  ``t + 1``, over the frames where that marker is below ``contact_height`` (m). No speed
  threshold, so sliding feet are not hidden.
- *pelvis height*: ``z`` of the pelvis joint if given, else of the mean of the four waist
  markers (LFWT, RFWT, LBWT, RBWT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["FootContactStats", "foot_contact_stats", "LEFT_FOOT", "RIGHT_FOOT", "WAIST"]

#: Marker indices of the left foot (LHEE, LTOE, LRSTBEEF) and the right foot.
LEFT_FOOT: tuple[int, int, int] = (16, 30, 25)
RIGHT_FOOT: tuple[int, int, int] = (47, 60, 55)
#: Waist markers LFWT, RFWT, LBWT, RBWT (a pelvis proxy when joints are unknown).
WAIST: tuple[int, int, int, int] = (3, 33, 24, 54)


@dataclass(frozen=True)
class FootContactStats:
    """Summary of :func:`foot_contact_stats` (metres, m/s).

    Attributes:
        num_frames: frames ``T``.
        stance_fraction: fraction of frame pairs counted as stance.
        foot_height_at_contact: mean ``z`` of the lowest foot marker in stance (m).
        abs_foot_height_at_contact: mean ``|z|`` of it in stance (m).
        foot_height_at_contact_p95: 95th percentile of that ``|z|`` (m).
        contact_fraction: fraction of frame pairs whose lowest foot marker is in contact.
        skating_speed: mean skating speed in contact (m/s).
        skating_speed_p95: 95th percentile of the skating speed (m/s).
        pelvis_height_min: lowest pelvis height (m).
        pelvis_height_max: highest pelvis height (m).
    """

    num_frames: int
    stance_fraction: float
    foot_height_at_contact: float
    abs_foot_height_at_contact: float
    foot_height_at_contact_p95: float
    contact_fraction: float
    skating_speed: float
    skating_speed_p95: float
    pelvis_height_min: float
    pelvis_height_max: float

    def as_dict(self) -> dict[str, float]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


def _foot_indices() -> np.ndarray:
    return np.array(LEFT_FOOT + RIGHT_FOOT, dtype=np.int64)


def foot_contact_stats(markers: np.ndarray, fps: float, pelvis: np.ndarray | None = None,
                       contact_height: float = 0.05, stance_speed: float = 0.1
                       ) -> FootContactStats:
    """Foot height at contact, skating and pelvis height of one motion.

    Args:
        markers: ``(T, 67, 3)`` markers, z-up world (m), ``T >= 2``.
        fps: frame rate (frames/s).
        pelvis: optional ``(T, 3)`` pelvis joint positions (m); else the waist-marker mean.
        contact_height: a foot marker below this height (m) is in contact (skating).
        stance_speed: frames whose slowest foot marker is slower (m/s) are stance frames.

    Returns:
        :class:`FootContactStats`; means over empty sets are ``nan``.

    Raises:
        ValueError: wrong shapes or ``fps <= 0``.
    """
    m = np.asarray(markers, dtype=np.float64)
    if m.ndim != 3 or m.shape[1:] != (67, 3) or m.shape[0] < 2:
        raise ValueError(f"markers must have shape (T>=2, 67, 3); got {m.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be positive; got {fps!r}")
    feet = m[:, _foot_indices()]  # (T, 6, 3)
    speed = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) * fps  # (T-1, 6)
    heights = feet[:-1, :, 2]
    low = np.argmin(heights, axis=1)
    rows = np.arange(low.shape[0])
    low_h = heights[rows, low]
    low_v = speed[rows, low]
    stance = speed.min(axis=1) < stance_speed
    contact = low_h < contact_height

    def _mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if x.size else float("nan")

    def _p95(x: np.ndarray) -> float:
        return float(np.percentile(x, 95)) if x.size else float("nan")

    if pelvis is None:
        ph = m[:, list(WAIST), 2].mean(axis=1)
    else:
        p = np.asarray(pelvis, dtype=np.float64)
        if p.shape != (m.shape[0], 3):
            raise ValueError(f"pelvis must have shape ({m.shape[0]}, 3); got {p.shape}")
        ph = p[:, 2]
    return FootContactStats(
        num_frames=int(m.shape[0]),
        stance_fraction=float(stance.mean()),
        foot_height_at_contact=_mean(low_h[stance]),
        abs_foot_height_at_contact=_mean(np.abs(low_h[stance])),
        foot_height_at_contact_p95=_p95(np.abs(low_h[stance])),
        contact_fraction=float(contact.mean()),
        skating_speed=_mean(low_v[contact]),
        skating_speed_p95=_p95(low_v[contact]),
        pelvis_height_min=float(ph.min()),
        pelvis_height_max=float(ph.max()),
    )
