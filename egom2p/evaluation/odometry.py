"""Classical camera tracking on a clip's video frames, and pose interpolation in time.

Both trackers chain frame-to-frame motions over the ``K`` video frames of a clip
(:mod:`egosim.egom2p.clips`: ``K = 16`` at 8 fps) and return camera-to-world poses in
OpenCV axes with frame 0 the identity, the clips' canonical frame:

* :func:`rgbd_odometry` -- OpenCV's RGB-D odometry (``cv2.Odometry``, type RGB_DEPTH:
  photometric error plus ICP on the depth, coarse to fine) between consecutive frames,
  metric since it sees the depth. OpenCV 5's API (``cv2.Odometry``, ``cv2.OdometrySettings``,
  ``cv2.OdometryFrame``) is used when present, else OpenCV 4's contrib
  ``cv2.rgbd.RgbdOdometry_create`` (the 4.x path is written to its documented API but was
  not run here: this environment has OpenCV 5).
* :func:`mono_vo` -- monocular visual odometry: ORB features on upscaled grey frames,
  brute-force Hamming matches with cross-check, the essential matrix by RANSAC
  (``cv2.findEssentialMat``) and ``cv2.recoverPose``. A monocular camera has no scale:
  every step's translation has unit length, so only scale-free figures (the Sim(3) ATE,
  the rotation errors) mean something.

A step that fails (too few points, no solution, a motion beyond the limits) counts as no
motion; the number of failed steps is returned.

OpenCV's relative pose ``Rt`` of two frames maps points of the source camera to the
destination camera (``x_dst = Rt x_src``), so the chained pose is
``P_k = P_{k-1} @ inv(Rt_k)``.

:func:`interpolate_poses` takes poses from the video clock to the pose clock (60 samples at
30 fps): slerp of the rotations, linear translations, and beyond the last video frame
(1.875 s; the pose clock runs to 1.967 s) the last segment's motion continued at constant
velocity (``extrapolate=True``) or the end pose held.
"""

from __future__ import annotations

import numpy as np

from egosim.sensors.camera import check_poses

__all__ = ["chain", "interpolate_poses", "mono_vo", "rgbd_odometry", "upscaled_intrinsics"]


def chain(relative: list[np.ndarray]) -> np.ndarray:
    """Camera-to-world poses from OpenCV relative motions.

    Args:
        relative: ``K - 1`` rigid ``(4, 4)`` transforms, ``relative[k]`` maps points of
            camera ``k`` to camera ``k + 1``.

    Returns:
        ``(K, 4, 4)`` float64 poses, ``P_0 = I`` and ``P_{k+1} = P_k @ inv(relative[k])``.
    """
    poses = [np.eye(4)]
    for rt in relative:
        poses.append(poses[-1] @ _rigid_inverse(np.asarray(rt, np.float64)))
    return np.stack(poses)


def _rigid_inverse(t: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = t[:3, :3].T
    out[:3, 3] = -t[:3, :3].T @ t[:3, 3]
    return out


def _check_video(rgb: np.ndarray, intrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(rgb)
    if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 (K, H, W, 3), got {v.dtype} {v.shape}")
    k = np.asarray(intrinsics, np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"intrinsics must be (3, 3), got {k.shape}")
    return v, k


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def rgbd_odometry(rgb: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, *,
                  max_translation_m: float = 0.5, max_rotation_deg: float = 30.0,
                  max_depth_diff_m: float = 0.3, min_depth_m: float = 0.05,
                  max_depth_m: float = 20.0) -> tuple[np.ndarray, int]:
    """OpenCV RGB-D odometry chained over the frames of one clip.

    Args:
        rgb: ``(K, H, W, 3)`` uint8 video frames.
        depth: ``(K, H, W)`` float z-depth, metres, 0 = no hit (ignored).
        intrinsics: ``(3, 3)`` ``K`` of the frames (pixel centres at integer coordinates).
        max_translation_m: a step moving farther fails (OpenCV's default: 0.15).
        max_rotation_deg: a step turning more fails (OpenCV's default: 15).
        max_depth_diff_m: ICP's largest depth difference of a correspondence.
        min_depth_m, max_depth_m: depths used.

    Returns:
        ``(poses, failures)``: ``(K, 4, 4)`` float64 camera-to-world poses (OpenCV axes,
        metres, ``poses[0] = I``) and the number of failed steps (each counted as no motion).
    """
    import cv2

    v, k = _check_video(rgb, intrinsics)
    d = np.asarray(depth, np.float32)
    if d.shape != v.shape[:3]:
        raise ValueError(f"depth must have shape {v.shape[:3]}, got {d.shape}")
    greys = [_grey(f) for f in v]
    if hasattr(cv2, "Odometry") and hasattr(cv2, "OdometrySettings"):
        steps = _rgbd_steps_v5(greys, d, k, max_translation_m, max_rotation_deg,
                               max_depth_diff_m, min_depth_m, max_depth_m)
    elif hasattr(cv2, "rgbd"):
        steps = _rgbd_steps_v4(greys, d, k, max_translation_m, max_rotation_deg,
                               max_depth_diff_m, min_depth_m, max_depth_m)
    else:
        raise RuntimeError(f"OpenCV {cv2.__version__} has no RGB-D odometry (cv2.Odometry "
                           "or cv2.rgbd): install opencv-contrib-python")
    failures = sum(rt is None for rt in steps)
    return chain([np.eye(4) if rt is None else rt for rt in steps]), failures


def _rgbd_steps_v5(greys: list[np.ndarray], depth: np.ndarray, k: np.ndarray, max_t: float,
                   max_r: float, max_dd: float, min_d: float, max_d: float
                   ) -> list[np.ndarray | None]:
    import cv2

    s = cv2.OdometrySettings()
    s.setCameraMatrix(k.astype(np.float32))
    s.setMinDepth(float(min_d))
    s.setMaxDepth(float(max_d))
    s.setMaxDepthDiff(float(max_dd))
    s.setMaxTranslation(float(max_t))
    s.setMaxRotation(float(max_r))
    odo = cv2.Odometry(cv2.OdometryType_RGB_DEPTH, s, cv2.OdometryAlgoType_COMMON)
    frames = []
    for g, dk in zip(greys, depth, strict=True):
        dd = dk.copy()
        dd[~(dd > 0)] = np.nan  # OpenCV 5 skips NaN depths
        f = cv2.OdometryFrame(image=g, depth=dd)
        odo.prepareFrame(f)
        frames.append(f)
    out: list[np.ndarray | None] = []
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        ok, rt = odo.compute(a, b)
        out.append(np.asarray(rt, np.float64) if ok else None)
    return out


def _rgbd_steps_v4(greys: list[np.ndarray], depth: np.ndarray, k: np.ndarray, max_t: float,
                   max_r: float, max_dd: float, min_d: float, max_d: float
                   ) -> list[np.ndarray | None]:  # OpenCV 4.x contrib (not run here)
    import cv2

    odo = cv2.rgbd.RgbdOdometry_create(cameraMatrix=k.astype(np.float32),
                                       minDepth=float(min_d), maxDepth=float(max_d),
                                       maxDepthDiff=float(max_dd))
    odo.setMaxTranslation(float(max_t))
    odo.setMaxRotation(float(max_r))
    masks = [((dk > min_d) & (dk < max_d)).astype(np.uint8) for dk in depth]
    out: list[np.ndarray | None] = []
    for i in range(len(greys) - 1):
        ok, rt = odo.compute(greys[i], depth[i], masks[i], greys[i + 1], depth[i + 1],
                             masks[i + 1])
        out.append(np.asarray(rt, np.float64) if ok else None)
    return out


def upscaled_intrinsics(intrinsics: np.ndarray, factor: int) -> np.ndarray:
    """``K`` of a frame upscaled ``factor`` times (pixel centres at integer coordinates:
    ``u' = factor (u + 0.5) - 0.5``).

    Args:
        intrinsics: ``(3, 3)`` ``K``.
        factor: the upscale factor, >= 1.

    Returns:
        ``(3, 3)`` float64 ``K'``.
    """
    k = np.asarray(intrinsics, np.float64).copy()
    k[0, 0] *= factor
    k[1, 1] *= factor
    k[0, 2] = factor * (k[0, 2] + 0.5) - 0.5
    k[1, 2] = factor * (k[1, 2] + 0.5) - 0.5
    return k


def mono_vo(rgb: np.ndarray, intrinsics: np.ndarray, *, upscale: int = 2,
            features: int = 500, min_inliers: int = 15,
            ransac_threshold_px: float = 1.0) -> tuple[np.ndarray, int]:
    """Monocular visual odometry (ORB + essential matrix) chained over one clip's frames.

    Args:
        rgb: ``(K, H, W, 3)`` uint8 video frames.
        intrinsics: ``(3, 3)`` ``K`` of the frames.
        upscale: frames are resized this many times (bilinear) before ORB, whose 31-pixel
            patches and 31-pixel border leave little of a 64-pixel frame otherwise (patch
            and border are set to 15 pixels as well).
        features: ORB features per frame.
        min_inliers: a step with fewer points in front of both cameras fails.
        ransac_threshold_px: RANSAC threshold of ``cv2.findEssentialMat`` (upscaled pixels).

    Returns:
        ``(poses, failures)``: ``(K, 4, 4)`` float64 camera-to-world poses (OpenCV axes,
        ``poses[0] = I``, each successful step of unit length: no metric scale) and the
        number of failed steps (each counted as no motion).
    """
    import cv2

    v, k = _check_video(rgb, intrinsics)
    ku = upscaled_intrinsics(k, upscale)
    greys = [_grey(f) for f in v]
    if upscale > 1:
        greys = [cv2.resize(g, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
                 for g in greys]
    orb = cv2.ORB_create(nfeatures=int(features), edgeThreshold=15, patchSize=15,
                         fastThreshold=7)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    found = [orb.detectAndCompute(g, None) for g in greys]
    steps: list[np.ndarray | None] = []
    for (k1, d1), (k2, d2) in zip(found[:-1], found[1:], strict=True):
        steps.append(_essential_step(k1, d1, k2, d2, matcher, ku, min_inliers,
                                     ransac_threshold_px))
    failures = sum(rt is None for rt in steps)
    return chain([np.eye(4) if rt is None else rt for rt in steps]), failures


def _essential_step(k1: tuple, d1: np.ndarray | None, k2: tuple, d2: np.ndarray | None,
                    matcher: object, ku: np.ndarray, min_inliers: int, threshold: float
                    ) -> np.ndarray | None:
    """The relative motion (unit translation) of two frames' ORB features, or None."""
    import cv2

    if d1 is None or d2 is None or len(k1) < 8 or len(k2) < 8:
        return None
    matches = matcher.match(d1, d2)  # type: ignore[attr-defined]
    if len(matches) < 8:
        return None
    p1 = np.float64([k1[m.queryIdx].pt for m in matches])
    p2 = np.float64([k2[m.trainIdx].pt for m in matches])
    e, mask = cv2.findEssentialMat(p1, p2, ku, method=cv2.RANSAC, prob=0.999,
                                   threshold=float(threshold))
    if e is None or e.shape != (3, 3):
        return None
    n, rot, t, _ = cv2.recoverPose(e, p1, p2, ku, mask=mask)
    if n < min_inliers:
        return None
    rt = np.eye(4)
    rt[:3, :3] = rot
    rt[:3, 3] = np.ravel(t) / max(float(np.linalg.norm(t)), 1e-12)
    return rt


def interpolate_poses(poses: np.ndarray, times: np.ndarray, query: np.ndarray,
                      extrapolate: bool = True) -> np.ndarray:
    """Poses at other instants: slerp of the rotations, linear translations.

    Between two given instants the pose moves along the geodesic
    ``R(u) = R_a exp(u log(R_a^T R_b))``, ``t(u) = (1 - u) t_a + u t_b``, ``u`` the fraction
    of the interval. Outside ``[times[0], times[-1]]`` the first or last interval's motion
    is continued at the same rate (``extrapolate``: ``u < 0`` or ``u > 1``), or the end pose
    is held.

    Args:
        poses: ``(K, 4, 4)`` rigid camera-to-world poses, ``K >= 1``.
        times: ``(K,)`` strictly increasing instants of ``poses``, seconds.
        query: ``(T,)`` instants wanted, seconds.
        extrapolate: continue the end intervals' motion (else hold the end poses).

    Returns:
        ``(T, 4, 4)`` float64 poses; exactly ``poses[k]`` where ``query == times[k]`` (and
        beyond the ends when not extrapolating).
    """
    from scipy.spatial.transform import Rotation

    p, single = check_poses(poses, "poses")
    if single:
        raise ValueError("poses must have shape (K, 4, 4)")
    t = np.asarray(times, np.float64)
    q = np.asarray(query, np.float64)
    if t.shape != (p.shape[0],):
        raise ValueError(f"times must have shape ({p.shape[0]},), got {t.shape}")
    if q.ndim != 1:
        raise ValueError(f"query must be 1-D, got shape {q.shape}")
    if p.shape[0] > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("times must be strictly increasing")
    out = np.tile(np.eye(4), (len(q), 1, 1))
    if p.shape[0] == 1:
        out[:] = p[0]
        return out
    seg = np.clip(np.searchsorted(t, q, side="right") - 1, 0, len(t) - 2)
    u = (q - t[seg]) / (t[seg + 1] - t[seg])
    if not extrapolate:
        u = np.clip(u, 0.0, 1.0)
    ra, rb = p[seg, :3, :3], p[seg + 1, :3, :3]
    rel = Rotation.from_matrix(np.einsum("nji,njk->nik", ra, rb)).as_rotvec()
    out[:, :3, :3] = ra @ Rotation.from_rotvec(rel * u[:, None]).as_matrix()
    out[:, :3, 3] = (1.0 - u[:, None]) * p[seg, :3, 3] + u[:, None] * p[seg + 1, :3, 3]
    out[u == 0.0] = p[seg[u == 0.0]]  # the given instants (and held ends) exactly
    out[u == 1.0] = p[seg[u == 1.0] + 1]
    return out
