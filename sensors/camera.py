"""Camera geometry: intrinsics, projection and unprojection, pixel rays, pose checks.

Conventions (ARCHITECTURE.md): camera frame in OpenCV axes (x right, y down, z forward),
poses are camera-to-world ``4x4`` matrices, metres. **Pixel coordinates follow OpenCV:
the centre of pixel ``(row i, column j)`` is at ``(u, v) = (j, i)``**; the image covers
``u in [-0.5, W - 0.5]``, ``v in [-0.5, H - 0.5]``. With the default intrinsics the
optical axis passes through ``((W - 1) / 2, (H - 1) / 2)``, the image centre.

Models:

* pinhole: ``u = fx x / z + cx``, ``v = fy y / z + cy``.
* fisheye (equidistant, Kannala-Brandt with no distortion terms, like Aria's cameras):
  ``theta = atan2(sqrt(x^2 + y^2), z)``, ``r = theta``, ``u = fx r cos(phi) + cx``,
  ``v = fy r sin(phi) + cy`` with ``phi = atan2(y, x)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.spatial.transform import Rotation

from egosim.sensors.spec import CameraSpec

__all__ = [
    "check_poses",
    "intrinsics_matrix",
    "pixel_rays",
    "project",
    "sensor_extrinsic",
    "unproject",
]


def intrinsics_matrix(spec: CameraSpec) -> np.ndarray:
    """``(3, 3)`` float64 matrix ``K`` of ``spec`` (for fisheye: the equidistant f, c)."""
    fx, fy, cx, cy = spec.focal_principal()
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def sensor_extrinsic(spec: CameraSpec) -> np.ndarray:
    """``(4, 4)`` float64 pose of the sensor in the rig frame (sensor-to-rig)."""
    t = np.eye(4)
    t[:3, :3] = Rotation.from_euler("xyz", spec.orientation_rpy).as_matrix()
    t[:3, 3] = spec.position
    return t


def project(points_cam: np.ndarray, spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points to pixel coordinates.

    Args:
        points_cam: ``(..., 3)`` points in the camera frame, metres.
        spec: the camera.

    Returns:
        ``uv``: ``(..., 2)`` float64 pixel coordinates ``(u, v)`` (column, row; pixel
        centres at integers); ``valid``: ``(...,)`` bool, True where the point is in
        front of the camera (``z > 0`` for pinhole, ``theta < 90 deg`` for fisheye) and
        inside the image (``-0.5 <= u < W - 0.5``, same for ``v``). Points behind the
        camera get NaN coordinates.
    """
    p = np.asarray(points_cam, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"points_cam must have shape (..., 3), got {p.shape}")
    fx, fy, cx, cy = spec.focal_principal()
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec.projection == "pinhole":
            front = z > 0
            a, b = x / z, y / z
        else:
            rho = np.hypot(x, y)
            theta = np.arctan2(rho, z)
            front = theta < np.pi / 2
            small = 1.0 / np.where(z > 0, z, 1.0)  # theta / rho -> 1 / z on the axis
            scale = np.where(rho > 0, theta / np.where(rho > 0, rho, 1.0), small)
            a, b = x * scale, y * scale
    u = np.where(front, fx * a + cx, np.nan)
    v = np.where(front, fy * b + cy, np.nan)
    h, w = spec.resolution
    with np.errstate(invalid="ignore"):
        inside = (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)
    return np.stack([u, v], axis=-1), front & inside


def unit_rays(uv: np.ndarray, spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame unit ray directions through pixel coordinates ``uv``.

    Args:
        uv: ``(..., 2)`` pixel coordinates (OpenCV convention).

    Returns:
        ``dirs``: ``(..., 3)`` float64 unit vectors; ``valid``: ``(..., )`` bool, False
        where the ray does not point in front of the camera (fisheye beyond 90 deg).
    """
    uv = np.asarray(uv, dtype=np.float64)
    fx, fy, cx, cy = spec.focal_principal()
    a = (uv[..., 0] - cx) / fx
    b = (uv[..., 1] - cy) / fy
    if spec.projection == "pinhole":
        d = np.stack([a, b, np.ones_like(a)], axis=-1)
        valid = np.ones(a.shape, bool)
    else:
        theta = np.hypot(a, b)
        s = np.where(theta > 0, np.sin(theta) / np.where(theta > 0, theta, 1.0), 1.0)
        d = np.stack([a * s, b * s, np.cos(theta)], axis=-1)
        valid = theta < np.pi / 2 - 1e-6
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return d, valid


@lru_cache(maxsize=64)
def pixel_rays(spec_key: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """Cached unit rays through every pixel centre of a camera, in its own frame.

    Args:
        spec_key: the spec (only its geometry matters; cached per distinct spec).

    Returns:
        ``dirs``: ``(H*W, 3)`` float32 unit directions, row-major pixel order;
        ``valid``: ``(H*W,)`` bool (False only for fisheye pixels beyond 90 deg).
        Both are read-only.
    """
    h, w = spec_key.resolution
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    d, valid = unit_rays(np.stack([u, v], axis=-1).reshape(-1, 2), spec_key)
    d = d.astype(np.float32)
    d.flags.writeable = False
    valid.flags.writeable = False
    return d, valid


def unproject(depth: np.ndarray, spec: CameraSpec) -> np.ndarray:
    """Back-project z-depth images to camera-frame points.

    Args:
        depth: ``(..., H, W)`` z-depth in metres (0 = invalid).
        spec: the camera that produced it.

    Returns:
        ``(..., H, W, 3)`` float64 points in the camera frame (their z equals ``depth``);
        NaN where depth is 0, non-finite, or the pixel has no ray (fisheye beyond 90 deg).
    """
    dep = np.asarray(depth, dtype=np.float64)
    h, w = spec.resolution
    if dep.shape[-2:] != (h, w):
        raise ValueError(f"depth must end in resolution {(h, w)}, got {dep.shape}")
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                       indexing="ij")
    d, valid = unit_rays(np.stack([u, v], axis=-1), spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        pts = d * (dep / d[..., 2])[..., None]
    ok = valid & np.isfinite(dep) & (dep > 0)
    return np.where(ok[..., None], pts, np.nan)


def check_poses(cam_to_world: np.ndarray, name: str = "cam_to_world",
                tol: float = 1e-4) -> tuple[np.ndarray, bool]:
    """Validate camera-to-world poses.

    Args:
        cam_to_world: ``(4, 4)`` or ``(N, 4, 4)`` rigid transforms.
        name: the argument's name, for error messages.
        tol: allowed deviation of ``R^T R`` from identity and of ``det R`` from 1.

    Returns:
        ``(N, 4, 4)`` float64 poses and whether the input was a single ``(4, 4)`` pose.

    Raises:
        ValueError: on a wrong shape, non-finite values, a last row other than
            ``[0, 0, 0, 1]``, or a non-rotation (scaled, sheared or mirrored) block.
    """
    t = np.asarray(cam_to_world, dtype=np.float64)
    single = t.shape == (4, 4)
    if single:
        t = t[None]
    if t.ndim != 3 or t.shape[1:] != (4, 4):
        raise ValueError(f"{name} must have shape (4, 4) or (N, 4, 4), "
                         f"got {np.shape(cam_to_world)}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"{name} contains NaN or inf")
    if not np.allclose(t[:, 3], [0.0, 0.0, 0.0, 1.0], atol=tol):
        raise ValueError(f"{name} must have last row [0, 0, 0, 1]")
    r = t[:, :3, :3]
    err = np.abs(np.einsum("nji,njk->nik", r, r) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(r)
    bad = (err > tol) | (np.abs(det - 1.0) > tol)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name}[{i}] is not rigid: its rotation block must be orthonormal with "
            f"det +1 (max |R^T R - I| = {err[i]:.2e}, det = {det[i]:.4f})"
        )
    return t, single
