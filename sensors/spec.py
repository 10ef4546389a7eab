"""Camera specifications: what a sensor sees and how, in habitat-sim's vocabulary.

A :class:`CameraSpec` is a frozen, validated, hashable value. Its pose is given in the
*rig frame* (the head frame a :mod:`egosim.sensors.rig` builds, or any camera-to-world
pose handed to the renderer): ``position`` in metres and ``orientation_rpy`` in radians,
both in the OpenCV axes of that frame (x right, y down, z forward).

Noise models are optional sub-specs (:class:`DepthNoise`, :class:`MotionBlur`,
:class:`IntrinsicsJitter`); each is applied with a seeded ``numpy.random.Generator``,
never the global RNG. Their maths lives in :mod:`egosim.sensors.noise`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "MODALITIES",
    "PROJECTIONS",
    "CameraSpec",
    "DepthNoise",
    "IntrinsicsJitter",
    "Modality",
    "MotionBlur",
    "Projection",
]

Modality = Literal["rgb", "depth", "semantic", "instance", "normal"]
Projection = Literal["pinhole", "fisheye"]
MODALITIES: tuple[str, ...] = ("rgb", "depth", "semantic", "instance", "normal")
PROJECTIONS: tuple[str, ...] = ("pinhole", "fisheye")

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class DepthNoise(BaseModel):
    """Kinect-style structured-light depth noise, applied to z-depth in metres.

    The model, in the order it is applied to every valid pixel of depth ``z``:

    1. **Axial noise**: ``z += N(0, sigma(z)^2)`` with
       ``sigma(z) = sigma_base + sigma_quad * (z - z_ref)^2`` (Nguyen et al., 3DIMPVT 2012:
       1.2 mm + 1.9 mm/m² · (z − 0.4 m)² for a Kinect v1).
    2. **Disparity quantisation**: the sensor measures disparity ``d = focal_px *
       baseline_m / z`` in pixels with ``subpixel`` resolution, so depth is rounded to
       ``focal_px * baseline_m / (round(d / subpixel) * subpixel)``; steps grow with z².
    3. **Edge dropouts**: where a 4-neighbour's depth differs by more than
       ``edge_threshold`` (relative to the pixel's depth, or the neighbour is invalid), the
       pixel is dropped with probability ``edge_dropout`` (structured light fails at
       occlusion boundaries).
    4. **Random dropouts**: any pixel is dropped with probability ``random_dropout``.
    5. **Range**: depth outside ``[min_range, max_range]`` is dropped.

    Dropped pixels read 0 and are flagged invalid.
    """

    model_config = _FROZEN

    sigma_base: float = Field(0.0012, ge=0.0, description="axial sigma at z_ref, metres")
    sigma_quad: float = Field(0.0019, ge=0.0, description="axial sigma growth, 1/metre")
    z_ref: float = Field(0.4, ge=0.0, description="depth of the smallest sigma, metres")
    baseline_m: float = Field(0.075, gt=0.0, description="projector-camera baseline")
    focal_px: float = Field(580.0, gt=0.0, description="IR camera focal length, pixels")
    subpixel: float = Field(0.125, ge=0.0, description="disparity resolution, px; 0 = off")
    edge_threshold: float = Field(0.1, gt=0.0, description="relative jump marking an edge")
    edge_dropout: float = Field(0.5, ge=0.0, le=1.0)
    random_dropout: float = Field(0.0, ge=0.0, le=1.0)
    min_range: float = Field(0.0, ge=0.0, description="metres")
    max_range: float = Field(math.inf, gt=0.0, description="metres")


class MotionBlur(BaseModel):
    """RGB motion blur: average of ``samples`` renders spread over the exposure.

    A frame is blurred with probability ``probability`` (EgoGen blurs 40 % of its RGB
    frames). Its sub-poses come either from the caller (``sub_poses`` in
    :meth:`Renderer.render`) or from the camera velocity (``velocity``: world linear m/s
    and angular rad/s), integrated at constant twist over ``[-exposure_s/2,
    exposure_s/2]`` around the frame's pose. Sub-frames are averaged in linear [0, 1]
    colour, with equal weights (a box shutter).
    """

    model_config = _FROZEN

    probability: float = Field(0.4, ge=0.0, le=1.0)
    exposure_s: float = Field(1.0 / 30.0, gt=0.0, description="shutter time, seconds")
    samples: int = Field(5, ge=2, le=64, description="sub-frames per blurred frame")


class IntrinsicsJitter(BaseModel):
    """Random intrinsics around the nominal ones (as EgoGen's RGB camera).

    ``fx`` and ``fy`` are each scaled by ``1 + N(0, focal_rel_sigma^2)`` (independently
    when ``independent_fy``, else by the same factor), and the principal point moves by
    ``N(0, principal_sigma_px^2)`` pixels per axis. :meth:`CameraSpec.jittered` draws one
    set (e.g. once per episode); a renderer given a spec that still carries a jitter draws
    a fresh set for every ``render`` call, shared by all poses of that call.
    """

    model_config = _FROZEN

    focal_rel_sigma: float = Field(0.03, ge=0.0, lt=0.5)
    principal_sigma_px: float = Field(0.0, ge=0.0)
    independent_fy: bool = False


class CameraSpec(BaseModel):
    """One sensor: modality, image size, projection model, pose in the rig frame, noise.

    Attributes:
        uuid: name of the output in the dict :meth:`Renderer.render` returns (depth also
            adds ``f"{uuid}_valid"``).
        modality: one of ``rgb`` (uint8 ``(H, W, 3)``), ``depth`` (float32 ``(H, W)``
            z-depth in metres, 0 where invalid), ``semantic`` / ``instance`` (int32
            ``(H, W)``, ``-1`` where nothing was hit), ``normal`` (float32 ``(H, W, 3)``
            unit normals in the camera frame, facing the camera, zeros on a miss).
        resolution: ``(H, W)`` in pixels, each in ``[1, 8192]``.
        hfov_deg: horizontal field of view across the image width, degrees; pinhole in
            ``(0, 180)``, fisheye in ``(0, 360)``. Derived from ``intrinsics`` when only
            those are given.
        projection: ``pinhole`` (``u = fx x/z + cx``) or ``fisheye`` (equidistant,
            ``r = f theta``, theta the angle to the optical axis; pixels with theta
            >= 90 degrees see nothing and are invalid).
        position: ``(3,)`` metres, camera origin in the rig frame.
        orientation_rpy: ``(rx, ry, rz)`` radians: rotations about the rig frame's x
            (right), y (down), z (forward) axes, applied in that order (scipy
            ``Rotation.from_euler("xyz", ...)``); as in habitat-sim, rx tilts up/down.
        near, far: clipping planes in metres (``0 < near < far``): geometry whose camera z
            is outside ``[near, far]`` is not seen, as with OpenGL's planes.
        intrinsics: optional ``(fx, fy, cx, cy)`` in pixels, OpenCV convention (pixel
            centres at integer coordinates). Default: ``fx = fy`` from ``hfov_deg``,
            ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``.
        depth_noise, motion_blur, intrinsics_jitter: optional noise models.
    """

    model_config = _FROZEN

    uuid: str = Field(min_length=1)
    modality: Modality
    resolution: tuple[int, int] = (128, 128)
    hfov_deg: float | None = None
    projection: Projection = "pinhole"
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    near: float = 0.05
    far: float = 100.0
    intrinsics: tuple[float, float, float, float] | None = None
    depth_noise: DepthNoise | None = None
    motion_blur: MotionBlur | None = None
    intrinsics_jitter: IntrinsicsJitter | None = None

    @field_validator("resolution")
    @classmethod
    def _check_resolution(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(1 <= x <= 8192 for x in v):
            raise ValueError(f"resolution must be (H, W) with each in [1, 8192], got {v}")
        return v

    @field_validator("position", "orientation_rpy")
    @classmethod
    def _check_finite(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(math.isfinite(x) for x in v):
            raise ValueError(f"must be 3 finite numbers, got {v}")
        return v

    @model_validator(mode="after")
    def _check_consistency(self) -> CameraSpec:
        limit = 180.0 if self.projection == "pinhole" else 360.0
        h, w = self.resolution
        if self.intrinsics is not None:
            fx, fy, cx, cy = self.intrinsics
            if not (fx > 0 and fy > 0 and all(math.isfinite(x) for x in self.intrinsics)):
                raise ValueError("intrinsics (fx, fy, cx, cy) need finite fx, fy > 0, "
                                 f"got {self.intrinsics}")
            derived = _hfov_from_focal(fx, w, self.projection)
            if self.hfov_deg is None:
                object.__setattr__(self, "hfov_deg", derived)
            elif abs(self.hfov_deg - derived) > 1e-3:
                raise ValueError(
                    f"hfov_deg={self.hfov_deg} disagrees with intrinsics fx={fx} "
                    f"(implies {derived:.4f}); give one of them"
                )
        elif self.hfov_deg is None:
            object.__setattr__(self, "hfov_deg", 90.0)
        if not (0.0 < self.hfov_deg < limit):
            raise ValueError(
                f"hfov_deg must be in (0, {limit:g}) for projection '{self.projection}', "
                f"got {self.hfov_deg}"
            )
        if not (self.near > 0.0 and math.isfinite(self.far) and self.far > self.near):
            raise ValueError(f"need 0 < near < far < inf, got near={self.near}, far={self.far}")
        if self.depth_noise is not None and self.modality != "depth":
            raise ValueError(f"depth_noise is for modality 'depth', not '{self.modality}'")
        if self.motion_blur is not None and self.modality != "rgb":
            raise ValueError(f"motion_blur is for modality 'rgb', not '{self.modality}'")
        return self

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.resolution[0]

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.resolution[1]

    def focal_principal(self) -> tuple[float, float, float, float]:
        """``(fx, fy, cx, cy)`` in pixels (OpenCV: pixel centres at integer coordinates)."""
        if self.intrinsics is not None:
            return self.intrinsics
        h, w = self.resolution
        half = math.radians(self.hfov_deg) / 2.0
        f = (w / 2.0) / math.tan(half) if self.projection == "pinhole" else (w / 2.0) / half
        return (f, f, (w - 1) / 2.0, (h - 1) / 2.0)

    def jittered(self, rng) -> CameraSpec:
        """A copy with intrinsics drawn from ``intrinsics_jitter`` and the jitter removed.

        Args:
            rng: seed or ``numpy.random.Generator``.
        """
        import numpy as np

        if self.intrinsics_jitter is None:
            return self
        g = np.random.default_rng(rng)
        j = self.intrinsics_jitter
        fx, fy, cx, cy = self.focal_principal()
        sx, sy, dx, dy = g.normal(size=4)
        kx = 1.0 + j.focal_rel_sigma * sx
        ky = 1.0 + j.focal_rel_sigma * (sy if j.independent_fy else sx)
        new = (fx * kx, fy * ky, cx + j.principal_sigma_px * dx, cy + j.principal_sigma_px * dy)
        return self.model_copy(
            update={"intrinsics": tuple(float(x) for x in new),
                    "hfov_deg": _hfov_from_focal(new[0], self.width, self.projection),
                    "intrinsics_jitter": None}
        )


def _hfov_from_focal(fx: float, width: int, projection: str) -> float:
    if projection == "pinhole":
        return math.degrees(2.0 * math.atan((width / 2.0) / fx))
    return math.degrees(2.0 * (width / 2.0) / fx)
