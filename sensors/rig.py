"""Head-mounted camera rigs: the head frame from eye joints and gaze, and camera presets.

The head frame (as EgoGen's): origin at the midpoint of the SMPL-X eye joints 23
(left eye) and 24 (right eye); x along the eye line from the left to the right eye;
z forward along the gaze direction made orthogonal to x; y = z x x (down when the head is
upright). Inputs are plain arrays in the world frame (metres, z up); this module knows
nothing about bodies.

A :class:`HeadRig` adds a fixed device offset (e.g. glasses a few centimetres in front
of and above the eyes) and carries its camera specs; :meth:`HeadRig.poses` returns the
rig-to-world poses a :class:`~egosim.sensors.Renderer` takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from egosim.sensors.spec import CameraSpec, DepthNoise, IntrinsicsJitter, MotionBlur

__all__ = [
    "HeadRig",
    "aria_fisheye_spec",
    "default_rgbd_specs",
    "egogen_depth_spec",
    "egogen_rgb_spec",
    "head_frame",
]

LEFT_EYE_JOINT = 23
RIGHT_EYE_JOINT = 24


def head_frame(eyes: np.ndarray, gaze: np.ndarray | None = None,
               look_at: np.ndarray | None = None,
               up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world head frames from eye positions and a gaze.

    Args:
        eyes: ``(N, 2, 3)`` or ``(2, 3)`` world positions of the left (SMPL-X joint 23)
            and right (joint 24) eyes, metres.
        gaze: ``(N, 3)`` or ``(3,)`` gaze directions (any length); or
        look_at: ``(N, 3)`` or ``(3,)`` world points looked at. With neither, the head
            looks horizontally forward: ``z = up x (eye line)``.
        up: world up, used only when neither gaze nor look_at is given.

    Returns:
        ``(N, 4, 4)`` (or ``(4, 4)``) OpenCV camera-to-world poses.

    Raises:
        ValueError: wrong shapes, coincident eyes, or a gaze parallel to the eye line.
    """
    e = np.asarray(eyes, np.float64)
    single = e.shape == (2, 3)
    e = e.reshape(-1, 2, 3) if single else e
    if e.ndim != 3 or e.shape[1:] != (2, 3):
        raise ValueError(f"eyes must have shape (N, 2, 3) or (2, 3), got {np.shape(eyes)}")
    n = e.shape[0]
    if gaze is not None and look_at is not None:
        raise ValueError("give gaze or look_at, not both")
    mid = e.mean(axis=1)
    x = e[:, 1] - e[:, 0]
    xn = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(xn < 1e-6):
        raise ValueError("eyes: left and right eye positions coincide")
    x = x / xn
    if look_at is not None:
        fwd = np.broadcast_to(np.asarray(look_at, np.float64), (n, 3)) - mid
    elif gaze is not None:
        fwd = np.broadcast_to(np.asarray(gaze, np.float64), (n, 3))
    else:
        fwd = np.cross(np.broadcast_to(np.asarray(up, np.float64), (n, 3)), x)
    z = fwd - np.sum(fwd * x, axis=1, keepdims=True) * x
    zn = np.linalg.norm(z, axis=1, keepdims=True)
    if np.any(zn < 1e-6):
        raise ValueError("gaze / look_at must not be parallel to the eye line")
    z = z / zn
    y = np.cross(z, x)
    t = np.tile(np.eye(4), (n, 1, 1))
    t[:, :3, 0], t[:, :3, 1], t[:, :3, 2], t[:, :3, 3] = x, y, z, mid
    return t[0] if single else t


@dataclass(frozen=True)
class HeadRig:
    """Cameras on a head-mounted device.

    Attributes:
        specs: the cameras; their ``position``/``orientation_rpy`` are in the device frame.
        offset_position: ``(3,)`` device origin in the head frame (x right, y down,
            z forward), metres; e.g. ``(0, -0.02, 0.03)`` for glasses above and in front
            of the eyes.
        offset_rpy: device rotation in the head frame, radians (about x, y, z in order).
    """

    specs: tuple[CameraSpec, ...]
    offset_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    offset_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _offset: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        off = np.eye(4)
        off[:3, :3] = Rotation.from_euler("xyz", self.offset_rpy).as_matrix()
        off[:3, 3] = self.offset_position
        object.__setattr__(self, "specs", tuple(self.specs))
        object.__setattr__(self, "_offset", off)

    def poses(self, eyes: np.ndarray, gaze: np.ndarray | None = None,
              look_at: np.ndarray | None = None) -> np.ndarray:
        """Device-to-world poses ``(N, 4, 4)``: :func:`head_frame` times the offset."""
        return head_frame(eyes, gaze=gaze, look_at=look_at) @ self._offset


def _hfov(fx: float, width: int) -> float:
    return math.degrees(2.0 * math.atan(width / 2.0 / fx))


def egogen_depth_spec(uuid: str = "depth", noise: bool = True) -> CameraSpec:
    """EgoGen's depth camera: 320 x 288 (W x H), fx = fy = 200, Kinect-style noise."""
    return CameraSpec(uuid=uuid, modality="depth", resolution=(288, 320),
                      intrinsics=(200.0, 200.0, 159.5, 143.5), near=0.05, far=20.0,
                      depth_noise=DepthNoise(max_range=10.0) if noise else None)


def egogen_rgb_spec(uuid: str = "rgb", jitter: bool = True, blur: bool = True) -> CameraSpec:
    """EgoGen's RGB camera: 1920 x 1080, fx ~ 1465 (jittered per draw), motion blur on 40 %."""
    return CameraSpec(uuid=uuid, modality="rgb", resolution=(1080, 1920),
                      hfov_deg=_hfov(1465.0, 1920), near=0.05, far=50.0,
                      intrinsics_jitter=IntrinsicsJitter(focal_rel_sigma=0.03,
                                                         principal_sigma_px=8.0,
                                                         independent_fy=False) if jitter else None,
                      motion_blur=MotionBlur(probability=0.4) if blur else None)


def aria_fisheye_spec(uuid: str = "aria_rgb", modality: str = "rgb",
                      size: int = 512) -> CameraSpec:
    """An Aria-like RGB camera: square, equidistant fisheye with a 150 degree field of view."""
    return CameraSpec(uuid=uuid, modality=modality, resolution=(size, size), hfov_deg=150.0,
                      projection="fisheye", near=0.02, far=50.0)


def default_rgbd_specs(size: int = 128, hfov_deg: float = 90.0) -> tuple[CameraSpec, CameraSpec]:
    """The small default RGB-D pair: ``rgb`` and ``depth`` at ``size`` x ``size``."""
    return (CameraSpec(uuid="rgb", modality="rgb", resolution=(size, size), hfov_deg=hfov_deg),
            CameraSpec(uuid="depth", modality="depth", resolution=(size, size), hfov_deg=hfov_deg))
