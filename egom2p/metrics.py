"""Task metrics of EgoM2P: camera tracking, video depth, gaze and video synthesis.

All functions are vectorised numpy, take one clip or a batch of clips (any leading batch
shape ``...``) and return **per-clip** values of shape ``...`` (a 0-d array for one clip).
To report a test set, average the per-clip values over clips (what the ``*_metrics``
conveniences do: an unweighted mean over the clips whose value is defined).

Camera (trajectories ``(..., T, 4, 4)``, camera-to-world, OpenCV axes, metres; EgoM2P's
clips are canonical, frame 0 the identity, 60 poses at 30 fps):

* :func:`ate` -- EgoM2P's ATE: the rotation ``R`` of the Kabsch problem on the *centred*
  translations (no scale), applied to the *uncentred* predicted translations with no
  translation term; ``ATE = sqrt(mean_i |g_i - R p_i|^2)``. A constant offset of the
  prediction is therefore not absorbed at all.
* :func:`ate_sim3` -- the ATE after the Umeyama Sim(3) alignment (scale, rotation and
  translation) of the predicted positions onto the ground truth: the same as evo's APE
  (translation part, RMSE) after ``align=True, correct_scale=True``.
* :func:`relative_pose_errors` -- RTE (m) and RRE (deg): the RMSE over ``i`` of the
  translation norm and of the rotation angle of
  ``E_i = (G_i^-1 G_{i+d})^-1 (P_i^-1 P_{i+d})`` (``G`` ground truth, ``P`` prediction,
  ``d = delta`` frames, every ``i`` from 0 to ``T - 1 - d``). This is evo's RPE relation
  too (``E_i = Q_rel^-1 P_rel`` with ``Q`` the reference); for ``delta = 1`` the pairs are
  the same as well, for ``delta > 1`` they match evo's ``all_pairs=True`` (evo's default
  takes the non-overlapping pairs ``(0, d), (d, 2d), ...`` instead). Swapping ground truth
  and prediction turns ``E_i`` into its inverse, which has the same angle and translation
  norm, so RTE and RRE are symmetric.

Degenerate trajectories, where the best rotation is not unique: positions spreading less
than ``STATIC_SPREAD_M`` (RMS distance to their mean) are *static*. If either trajectory is
static, or the centred cross-covariance vanishes, ``R`` is the identity; if it has rank 1
(collinear motion), ``R`` is the smallest rotation taking the predicted principal direction
onto the ground-truth one. (Kabsch is unique from rank 2 on, and then this is exactly
EgoM2P's value; evo refuses rank < 2 with an error.) For the Sim(3) ATE of a static
prediction the best scale is 0 and the error is the ground truth's spread about its mean.
``T = 1`` is allowed for the ATEs (a static case); RTE / RRE need ``T > delta`` and raise
``ValueError`` otherwise.

Depth (z-depth maps ``(..., T, H, W)``, metres; 0 = invalid): :func:`depth_errors` gives
AbsRel ``mean |d' - d| / d`` and ``delta1``, the fraction of pixels with
``max(d'/d, d/d') < 1.25`` (also as a percent in :func:`depth_metrics`, the way it is usually
tabled), over all valid pixels of the clip's frames. By default ``d' = s * pred + b`` with the
per-clip least-squares scale and shift fitted on the same valid pixels
(:func:`fit_depth_scale_shift`); ``align=False`` evaluates the metric prediction as is.

Gaze (``(..., T, 2)`` in [-1, 1] image units): :func:`gaze_l2`, the mean L2 distance over
the samples valid in the ground truth.

Video (uint8 ``(..., T, H, W, 3)``): :func:`video_psnr` (dB, from the MSE over the whole
clip, data range 255) and :func:`video_ssim` (mean over frames of scikit-image's
``structural_similarity``). LPIPS and FVD are not provided: both need pretrained network
weights (AlexNet/VGG features for LPIPS, an I3D video classifier for FVD) that cannot be had
here, and a substitute network would give numbers that are not comparable to EgoM2P's.
"""

from __future__ import annotations

import numpy as np

from egosim.sensors.camera import check_poses

__all__ = [
    "STATIC_SPREAD_M",
    "ate",
    "ate_sim3",
    "camera_metrics",
    "depth_errors",
    "depth_metrics",
    "fit_depth_scale_shift",
    "gaze_l2",
    "gaze_metrics",
    "relative_pose_errors",
    "rotation_angle",
    "sim3_align_positions",
    "video_metrics",
    "video_psnr",
    "video_ssim",
]

STATIC_SPREAD_M = 1e-9
"""Positions whose RMS distance to their mean is at most this (metres) count as static."""

_RANK_RTOL = 1e-9  # singular values below this fraction of the bound count as zero
_ANTIPARALLEL_TOL = 1e-12  # 1 + cos(angle) below this: a half turn


# ---------------------------------------------------------------------------------------
# camera
# ---------------------------------------------------------------------------------------


def _trajectory_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                 tuple[int, ...]]:
    """Validate two trajectories ``(..., T, 4, 4)``; return them as float64 ``(N, T, 4, 4)``
    and the batch shape ``...``."""
    g = np.asarray(gt)
    p = np.asarray(pred)
    if g.ndim < 3 or g.shape[-2:] != (4, 4):
        raise ValueError(f"gt must have shape (..., T, 4, 4), got {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"pred must have the shape of gt {g.shape}, got {p.shape}")
    n_frames = g.shape[-3]
    if n_frames < 1:
        raise ValueError("trajectories need at least one pose")
    batch = g.shape[:-3]
    g64, _ = check_poses(g.reshape(-1, 4, 4), "gt")
    p64, _ = check_poses(p.reshape(-1, 4, 4), "pred")
    return (g64.reshape(-1, n_frames, 4, 4), p64.reshape(-1, n_frames, 4, 4), batch)


def _smallest_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations ``(M, 3, 3)`` of least angle taking unit vectors ``a`` onto ``b`` (``(M, 3)``).

    Antiparallel pairs get a half turn about an axis perpendicular to ``a``.
    """
    v = np.cross(a, b)
    c = np.einsum("mi,mi->m", a, b)
    k = np.zeros(a.shape[:-1] + (3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -v[:, 2], v[:, 1], -v[:, 0]
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = v[:, 2], -v[:, 1], v[:, 0]
    half_turn = 1.0 + c < _ANTIPARALLEL_TOL
    denom = np.where(half_turn, 1.0, 1.0 + c)
    rot = np.eye(3) + k + (k @ k) / denom[:, None, None]
    if np.any(half_turn):
        ah = a[half_turn]
        basis = np.eye(3)[np.argmin(np.abs(ah), axis=-1)]
        axis = np.cross(ah, basis)
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        rot[half_turn] = 2.0 * np.einsum("mi,mj->mij", axis, axis) - np.eye(3)
    return rot


def _best_rotation(gt_c: np.ndarray, pred_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kabsch rotation maximising ``sum_i g_i . (R p_i)`` for centred points ``(N, T, 3)``.

    Returns ``R`` ``(N, 3, 3)`` and the cross-covariance ``W = sum_i g_i p_i^T`` ``(N, 3, 3)``.
    Degenerate cases as in the module docstring.
    """
    w = np.einsum("nti,ntj->nij", gt_c, pred_c)
    u, s, vt = np.linalg.svd(w)
    flip = np.linalg.det(u @ vt) < 0.0
    vt_fixed = vt.copy()
    vt_fixed[flip, -1, :] *= -1.0
    rot = u @ vt_fixed
    n_frames = gt_c.shape[1]
    norm_g = np.sqrt(np.einsum("nti,nti->n", gt_c, gt_c))
    norm_p = np.sqrt(np.einsum("nti,nti->n", pred_c, pred_c))
    static = ((norm_g <= STATIC_SPREAD_M * np.sqrt(n_frames))
              | (norm_p <= STATIC_SPREAD_M * np.sqrt(n_frames))
              | (s[:, 0] <= _RANK_RTOL * norm_g * norm_p))
    rank1 = ~static & (s[:, 1] <= _RANK_RTOL * s[:, 0])
    rot[static] = np.eye(3)
    if np.any(rank1):
        rot[rank1] = _smallest_rotation(vt[rank1, 0, :], u[rank1, :, 0])
    return rot, w


def ate(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """EgoM2P's absolute trajectory error: RMSE after the best rotation only.

    ``R`` solves Kabsch on the centred translations (no scale); the error is
    ``sqrt(mean_i |g_i - R p_i|^2)`` on the uncentred translations, without a translation
    term (see the module docstring for degenerate trajectories).

    Args:
        gt: ``(..., T, 4, 4)`` ground-truth camera-to-world poses (metres), ``T >= 1``.
        pred: ``(..., T, 4, 4)`` predicted poses in the same convention.

    Returns:
        ``(...)`` float64 ATE per clip, metres.
    """
    g, p, batch = _trajectory_pair(gt, pred)
    tg, tp = g[..., :3, 3], p[..., :3, 3]
    rot, _ = _best_rotation(tg - tg.mean(axis=1, keepdims=True),
                            tp - tp.mean(axis=1, keepdims=True))
    err = tg - np.einsum("nij,ntj->nti", rot, tp)
    return np.sqrt(np.mean(np.einsum("nti,nti->nt", err, err), axis=1)).reshape(batch)


def sim3_align_positions(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Umeyama Sim(3) alignment of the predicted camera positions onto the ground truth.

    Minimises ``sum_i |g_i - (c R p_i + t)|^2`` over scale ``c >= 0``, rotation ``R`` and
    translation ``t`` (a static prediction gets ``c = 0``, ``R = I``, ``t`` = mean of ``g``).

    Args:
        gt: ``(..., T, 4, 4)`` ground-truth camera-to-world poses (metres).
        pred: ``(..., T, 4, 4)`` predicted poses.

    Returns:
        ``scale`` ``(...)``, ``rotation`` ``(..., 3, 3)`` and ``translation`` ``(..., 3)``
        (metres, ground-truth world frame), mapping predicted world points onto the
        ground truth's world.
    """
    g, p, batch = _trajectory_pair(gt, pred)
    scale, rot, trans = _sim3(g[..., :3, 3], p[..., :3, 3])
    return scale.reshape(batch), rot.reshape(batch + (3, 3)), trans.reshape(batch + (3,))


def _sim3(tg: np.ndarray, tp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Umeyama on positions ``(N, T, 3)``: scale ``(N,)``, rotation ``(N, 3, 3)``, t ``(N, 3)``."""
    mu_g, mu_p = tg.mean(axis=1), tp.mean(axis=1)
    gc, pc = tg - mu_g[:, None], tp - mu_p[:, None]
    rot, w = _best_rotation(gc, pc)
    var_p = np.einsum("nti,nti->n", pc, pc)  # T * sigma_p^2
    static_p = var_p <= (STATIC_SPREAD_M ** 2) * tg.shape[1]
    scale = np.where(static_p, 0.0,
                     np.einsum("nij,nij->n", rot, w) / np.where(static_p, 1.0, var_p))
    rot[static_p] = np.eye(3)
    trans = mu_g - scale[:, None] * np.einsum("nij,nj->ni", rot, mu_p)
    return scale, rot, trans


def ate_sim3(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Absolute trajectory error after Umeyama Sim(3) alignment (scale, rotation, translation).

    Equal to evo's APE, translation part, RMSE, with ``align=True, correct_scale=True``.

    Args:
        gt: ``(..., T, 4, 4)`` ground-truth camera-to-world poses (metres), ``T >= 1``.
        pred: ``(..., T, 4, 4)`` predicted poses.

    Returns:
        ``(...)`` float64 RMSE per clip, metres (ground-truth scale).
    """
    g, p, batch = _trajectory_pair(gt, pred)
    tg, tp = g[..., :3, 3], p[..., :3, 3]
    scale, rot, trans = _sim3(tg, tp)
    aligned = scale[:, None, None] * np.einsum("nij,ntj->nti", rot, tp) + trans[:, None]
    err = tg - aligned
    return np.sqrt(np.mean(np.einsum("nti,nti->nt", err, err), axis=1)).reshape(batch)


def _rigid_inverse(t: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``(..., 4, 4)``: ``[R^T, -R^T t]``."""
    out = np.zeros_like(t)
    rt = np.swapaxes(t[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, t[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def rotation_angle(rot: np.ndarray) -> np.ndarray:
    """Angle of rotation matrices ``(..., 3, 3)``, radians in ``[0, pi]``.

    ``atan2(|vee(R - R^T)| / 2, (trace R - 1) / 2)``: accurate at small and large angles
    alike (unlike ``arccos`` of the trace).
    """
    sin2 = np.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0],
                     rot[..., 1, 0] - rot[..., 0, 1]], axis=-1)
    return np.arctan2(0.5 * np.linalg.norm(sin2, axis=-1),
                      0.5 * (np.trace(rot, axis1=-2, axis2=-1) - 1.0))


def relative_pose_errors(gt: np.ndarray, pred: np.ndarray,
                         delta: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """RTE and RRE: RMSE of the relative pose error ``E_i`` over ``delta``-frame steps.

    ``E_i = (G_i^-1 G_{i+delta})^-1 (P_i^-1 P_{i+delta})`` for ``i = 0 .. T-1-delta``;
    RTE is the RMSE of ``|t(E_i)|``, RRE the RMSE of the rotation angle of ``E_i``. Both are
    invariant to a rigid change of either trajectory's world frame (not to its scale).

    Args:
        gt: ``(..., T, 4, 4)`` ground-truth camera-to-world poses (metres).
        pred: ``(..., T, 4, 4)`` predicted poses.
        delta: step in frames, ``>= 1``; EgoM2P uses 1 (1/30 s).

    Returns:
        ``(rte, rre)``: ``(...)`` float64 arrays per clip; RTE in metres, RRE in degrees.

    Raises:
        ValueError: if ``T <= delta`` (no pair) or ``delta < 1``.
    """
    if int(delta) != delta or delta < 1:
        raise ValueError(f"delta must be a positive integer, got {delta}")
    delta = int(delta)
    g, p, batch = _trajectory_pair(gt, pred)
    if g.shape[1] <= delta:
        raise ValueError(f"relative pose errors need T > delta = {delta} poses, "
                         f"got T = {g.shape[1]}")
    g_rel = _rigid_inverse(g[:, :-delta]) @ g[:, delta:]
    p_rel = _rigid_inverse(p[:, :-delta]) @ p[:, delta:]
    err = _rigid_inverse(g_rel) @ p_rel
    trans = np.linalg.norm(err[..., :3, 3], axis=-1)
    ang = rotation_angle(err[..., :3, :3])
    rte = np.sqrt(np.mean(trans ** 2, axis=1))
    rre = np.degrees(np.sqrt(np.mean(ang ** 2, axis=1)))
    return rte.reshape(batch), rre.reshape(batch)


def camera_metrics(gt: np.ndarray, pred: np.ndarray, delta: int = 1) -> dict[str, float]:
    """Camera-tracking figures, averaged (unweighted mean) over clips.

    Args:
        gt: ``(..., T, 4, 4)`` ground-truth camera-to-world poses (metres), ``T >= 2``.
        pred: ``(..., T, 4, 4)`` predicted poses.
        delta: RPE step in frames.

    Returns:
        ``{"ate_m", "ate_sim3_m", "rte_m", "rre_deg", "clips"}``: EgoM2P's rotation-only ATE,
        the Sim(3) ATE, RTE and RRE, each the mean of the per-clip values, and the number of
        clips.
    """
    rte, rre = relative_pose_errors(gt, pred, delta)
    return {
        "ate_m": float(np.mean(ate(gt, pred))),
        "ate_sim3_m": float(np.mean(ate_sim3(gt, pred))),
        "rte_m": float(np.mean(rte)),
        "rre_deg": float(np.mean(rre)),
        "clips": int(rte.size),
    }


# ---------------------------------------------------------------------------------------
# depth
# ---------------------------------------------------------------------------------------


def _depth_inputs(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Clips ``(N, T*H*W)`` of ground truth, prediction and validity, and the batch shape."""
    g = np.asarray(gt)
    p = np.asarray(pred)
    if g.ndim < 3:
        raise ValueError(f"depth must have shape (..., T, H, W), got {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"pred must have the shape of gt {g.shape}, got {p.shape}")
    batch = g.shape[:-3]
    g = g.reshape(int(np.prod(batch, dtype=np.int64)), -1)
    p = p.reshape(g.shape)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(g) & (g > 0) & np.isfinite(p)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != np.shape(gt):
            raise ValueError(f"mask must have the shape of gt {np.shape(gt)}, got {m.shape}")
        valid &= m.reshape(g.shape).astype(bool)
    return g, p, valid, batch


def _fit_clip(g: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Least-squares ``(s, b)`` minimising ``sum (s p + b - g)^2`` over 1-D float64 arrays."""
    if g.size == 0:
        return float("nan"), float("nan")
    mp, mg = p.mean(), g.mean()
    dp = p - mp
    var = float(dp @ dp)
    if var <= 0.0:  # constant prediction: only the shift is determined
        return 0.0, float(mg)
    s = float(dp @ (g - mg)) / var
    return s, float(mg - s * mp)


def fit_depth_scale_shift(gt: np.ndarray, pred: np.ndarray,
                          mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip least-squares scale and shift of the prediction onto the ground truth.

    Minimises ``sum (s * pred + b - gt)^2`` over the clip's valid pixels: ``gt > 0`` and
    finite, ``pred`` finite, and ``mask`` where given. A constant prediction gets ``s = 0``,
    ``b`` = mean ground truth; a clip without valid pixels gets NaN.

    Args:
        gt: ``(..., T, H, W)`` ground-truth z-depth, metres, 0 = invalid.
        pred: ``(..., T, H, W)`` predicted depth (any affine-related unit).
        mask: optional ``(..., T, H, W)`` bool, pixels to use (ANDed with the validity).

    Returns:
        ``(scale, shift)``: ``(...)`` float64 arrays; ``shift`` in metres.
    """
    g, p, valid, batch = _depth_inputs(gt, pred, mask)
    s = np.empty(g.shape[0])
    b = np.empty(g.shape[0])
    for k in range(g.shape[0]):
        v = valid[k]
        s[k], b[k] = _fit_clip(g[k][v].astype(np.float64), p[k][v].astype(np.float64))
    return s.reshape(batch), b.reshape(batch)


def depth_errors(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None,
                 align: bool = True, threshold: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """AbsRel and the delta accuracy of a depth clip, over all its valid pixels.

    ``d' = s * pred + b`` with the per-clip least-squares fit of
    :func:`fit_depth_scale_shift` (``align=True``), or ``d' = pred`` (``align=False``, metric
    depth). AbsRel is ``mean |d' - d| / d``; delta is the fraction of pixels with
    ``d' > 0`` and ``max(d'/d, d/d') < threshold`` (a non-positive ``d'`` fails it). Pixels
    are valid where ``gt > 0`` and finite, ``pred`` is finite, and ``mask`` (if given) is
    true; the same pixels serve the fit and the errors. A clip without valid pixels gets NaN.

    Args:
        gt: ``(..., T, H, W)`` ground-truth z-depth, metres, 0 = invalid.
        pred: ``(..., T, H, W)`` predicted depth (metres when ``align=False``).
        mask: optional ``(..., T, H, W)`` bool of pixels to evaluate.
        align: fit a per-clip scale and shift first.
        threshold: the delta threshold (1.25 for delta1).

    Returns:
        ``(abs_rel, delta)``: ``(...)`` float64 arrays per clip, both fractions.
    """
    g, p, valid, batch = _depth_inputs(gt, pred, mask)
    abs_rel = np.full(g.shape[0], np.nan)
    acc = np.full(g.shape[0], np.nan)
    for k in range(g.shape[0]):
        v = valid[k]
        gk = g[k][v].astype(np.float64)
        pk = p[k][v].astype(np.float64)
        if gk.size == 0:
            continue
        if align:
            s, b = _fit_clip(gk, pk)
            pk = s * pk + b
        abs_rel[k] = np.mean(np.abs(pk - gk) / gk)
        pos = pk > 0
        ratio = np.full(gk.shape, np.inf)
        ratio[pos] = np.maximum(pk[pos] / gk[pos], gk[pos] / pk[pos])
        acc[k] = np.mean(ratio < threshold)
    return abs_rel.reshape(batch), acc.reshape(batch)


def depth_metrics(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None,
                  align: bool = True) -> dict[str, float]:
    """Depth figures, averaged (unweighted mean) over the clips that have valid pixels.

    Args:
        gt: ``(..., T, H, W)`` ground-truth z-depth, metres, 0 = invalid.
        pred: ``(..., T, H, W)`` predicted depth.
        mask: optional ``(..., T, H, W)`` bool of pixels to evaluate.
        align: per-clip least-squares scale and shift first (EgoM2P's protocol).

    Returns:
        ``{"abs_rel", "delta1", "delta1_pct", "clips"}``: AbsRel (fraction), delta < 1.25 as a
        fraction and as a percent, and the number of clips averaged (NaN figures if none).
    """
    abs_rel, acc = depth_errors(gt, pred, mask, align)
    ok = np.isfinite(abs_rel)
    n = int(np.count_nonzero(ok))
    mean_rel = float(np.mean(abs_rel[ok])) if n else float("nan")
    mean_acc = float(np.mean(acc[ok])) if n else float("nan")
    return {"abs_rel": mean_rel, "delta1": mean_acc, "delta1_pct": 100.0 * mean_acc,
            "clips": n}


# ---------------------------------------------------------------------------------------
# gaze
# ---------------------------------------------------------------------------------------


def gaze_l2(gt: np.ndarray, pred: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Mean L2 distance between gaze points over the samples valid in the ground truth.

    Args:
        gt: ``(..., T, 2)`` ground-truth gaze, normalised image coordinates in [-1, 1].
        pred: ``(..., T, 2)`` predicted gaze, same convention.
        valid: ``(..., T)`` bool validity of the ground truth (default: all valid).

    Returns:
        ``(...)`` float64 mean distance per clip in [-1, 1] units (an image's full width is
        2); NaN for a clip without valid samples. To pool a test set by samples instead of
        clips, weight the clips by ``valid.sum(-1)``.
    """
    g = np.asarray(gt, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if g.ndim < 2 or g.shape[-1] != 2:
        raise ValueError(f"gaze must have shape (..., T, 2), got {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"pred must have the shape of gt {g.shape}, got {p.shape}")
    v = np.ones(g.shape[:-1], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if v.shape != g.shape[:-1]:
        raise ValueError(f"valid must have shape {g.shape[:-1]}, got {v.shape}")
    dist = np.linalg.norm(np.where(v[..., None], p - g, 0.0), axis=-1)
    count = v.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, dist.sum(axis=-1) / np.maximum(count, 1), np.nan)
    return np.asarray(out, dtype=np.float64)


def gaze_metrics(gt: np.ndarray, pred: np.ndarray,
                 valid: np.ndarray | None = None) -> dict[str, float]:
    """Gaze figure, averaged (unweighted mean) over the clips that have valid samples.

    Args:
        gt: ``(..., T, 2)`` ground-truth gaze in [-1, 1].
        pred: ``(..., T, 2)`` predicted gaze.
        valid: ``(..., T)`` bool validity of the ground truth.

    Returns:
        ``{"gaze_l2", "clips"}``: the mean L2 distance ([-1, 1] units) and the clip count.
    """
    per_clip = np.atleast_1d(gaze_l2(gt, pred, valid))
    ok = np.isfinite(per_clip)
    n = int(np.count_nonzero(ok))
    return {"gaze_l2": float(np.mean(per_clip[ok])) if n else float("nan"), "clips": n}


# ---------------------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------------------


def _video_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate two videos ``(..., T, H, W, C)``; return them as given (arrays)."""
    g = np.asarray(gt)
    p = np.asarray(pred)
    if g.ndim < 4:
        raise ValueError(f"video must have shape (..., T, H, W, C), got {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"pred must have the shape of gt {g.shape}, got {p.shape}")
    return g, p


def video_psnr(gt: np.ndarray, pred: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """PSNR of a clip from the MSE over all its frames, pixels and channels.

    ``10 log10(data_range^2 / MSE)`` (not the mean of per-frame PSNRs); ``inf`` for
    identical clips.

    Args:
        gt: ``(..., T, H, W, C)`` ground-truth video (uint8 for the default range).
        pred: ``(..., T, H, W, C)`` predicted video.
        data_range: the value range of the pixels (255 for uint8).

    Returns:
        ``(...)`` float64 PSNR per clip, dB.
    """
    g, p = _video_pair(gt, pred)
    diff = g.astype(np.float64) - p.astype(np.float64)
    mse = np.mean(diff * diff, axis=(-4, -3, -2, -1))
    with np.errstate(divide="ignore"):
        return np.asarray(10.0 * np.log10(data_range ** 2 / mse), dtype=np.float64)


def video_ssim(gt: np.ndarray, pred: np.ndarray, data_range: float = 255.0) -> np.ndarray:
    """SSIM of a clip: the mean over frames of scikit-image's ``structural_similarity``.

    Per frame ``structural_similarity(g, p, channel_axis=-1, data_range=data_range)`` with
    scikit-image's defaults (7x7 uniform window, K1 = 0.01, K2 = 0.03); frames must be at
    least 7 pixels on each side.

    Args:
        gt: ``(..., T, H, W, C)`` ground-truth video (uint8 for the default range).
        pred: ``(..., T, H, W, C)`` predicted video.
        data_range: the value range of the pixels.

    Returns:
        ``(...)`` float64 mean SSIM per clip (1 for identical clips).
    """
    from skimage.metrics import structural_similarity

    g, p = _video_pair(gt, pred)
    batch = g.shape[:-4]
    frames_g = g.reshape((-1,) + g.shape[-4:])
    frames_p = p.reshape(frames_g.shape)
    out = np.empty(frames_g.shape[0])
    for k in range(frames_g.shape[0]):
        out[k] = np.mean([
            structural_similarity(fg, fp, channel_axis=-1, data_range=data_range)
            for fg, fp in zip(frames_g[k], frames_p[k], strict=True)
        ])
    return out.reshape(batch)


def video_metrics(gt: np.ndarray, pred: np.ndarray,
                  data_range: float = 255.0) -> dict[str, float]:
    """Video figures, averaged (unweighted mean) over clips.

    Args:
        gt: ``(..., T, H, W, C)`` ground-truth video.
        pred: ``(..., T, H, W, C)`` predicted video.
        data_range: the value range of the pixels.

    Returns:
        ``{"psnr_db", "ssim", "clips"}``: mean per-clip PSNR (dB; ``inf`` if any clip is
        identical), mean per-clip SSIM and the clip count. LPIPS and FVD are not provided
        (they need pretrained networks; see the module docstring).
    """
    psnr = np.atleast_1d(video_psnr(gt, pred, data_range))
    ssim = np.atleast_1d(video_ssim(gt, pred, data_range))
    return {"psnr_db": float(np.mean(psnr)), "ssim": float(np.mean(ssim)),
            "clips": int(psnr.size)}
