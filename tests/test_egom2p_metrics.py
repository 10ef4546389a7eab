"""EgoM2P task metrics: hand-computed cases, degenerate inputs, and agreement with evo."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from egosim.egom2p import metrics as M

FPS = 30.0


def _poses(rots: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """``(T, 4, 4)`` poses from rotations ``(T, 3, 3)`` and translations ``(T, 3)``."""
    out = np.zeros(rots.shape[:-2] + (4, 4))
    out[..., :3, :3] = rots
    out[..., :3, 3] = trans
    out[..., 3, 3] = 1.0
    return out


def _random_trajectory(rng: np.random.Generator, n: int = 60) -> np.ndarray:
    """A wandering head-like trajectory, canonical (frame 0 the identity)."""
    rotvecs = np.cumsum(rng.normal(0.0, 0.05, (n, 3)), axis=0)
    trans = np.cumsum(rng.normal(0.0, 0.03, (n, 3)), axis=0)
    poses = _poses(Rotation.from_rotvec(rotvecs).as_matrix(), trans)
    return np.linalg.inv(poses[0]) @ poses


def _noisy_sim3(rng: np.random.Generator, gt: np.ndarray, scale: float) -> np.ndarray:
    """Noisy copy of ``gt`` moved by a random Sim(3) of the given scale (rigid poses)."""
    noise = Rotation.from_rotvec(rng.normal(0.0, 0.02, (len(gt), 3))).as_matrix()
    rots = gt[:, :3, :3] @ noise
    trans = gt[:, :3, 3] + rng.normal(0.0, 0.01, (len(gt), 3))
    q = Rotation.random(random_state=rng).as_matrix()
    offset = rng.normal(0.0, 1.0, 3)
    return _poses(q @ rots, scale * trans @ q.T + offset)


def _world_rotation(q: np.ndarray, poses: np.ndarray, centre: np.ndarray | None = None
                    ) -> np.ndarray:
    """Rotate a whole trajectory's world by ``q`` about ``centre`` (default the origin)."""
    c = np.zeros(3) if centre is None else centre
    t = np.eye(4)
    t[:3, :3] = q
    t[:3, 3] = c - q @ c
    return t @ poses


# --------------------------------------------------------------------------- camera


def test_identical_trajectories_are_zero() -> None:
    gt = _random_trajectory(np.random.default_rng(0))
    rte, rre = M.relative_pose_errors(gt, gt)
    assert M.ate(gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert M.ate_sim3(gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert rte == pytest.approx(0.0, abs=1e-12)
    assert rre == pytest.approx(0.0, abs=1e-5)


def test_world_rotation_is_absorbed_by_both_ates() -> None:
    gt = _random_trajectory(np.random.default_rng(1))
    q = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    pred = _world_rotation(q, gt)
    assert M.ate(gt, pred) == pytest.approx(0.0, abs=1e-10)
    assert M.ate_sim3(gt, pred) == pytest.approx(0.0, abs=1e-10)
    rte, rre = M.relative_pose_errors(gt, pred)  # relative motion ignores the world frame
    assert rte == pytest.approx(0.0, abs=1e-10)
    assert rre == pytest.approx(0.0, abs=1e-5)


def test_constant_offset_is_not_absorbed_by_the_rotation() -> None:
    """The rotation is fitted on centred translations: an offset stays whole in the ATE,
    although a rotation fitted on the raw translations would hide part of it."""
    gt = _random_trajectory(np.random.default_rng(2))
    offset = np.array([0.3, -0.4, 1.2])  # norm 1.3
    pred = gt.copy()
    pred[:, :3, 3] += offset
    assert M.ate(gt, pred) == pytest.approx(1.3, abs=1e-12)
    assert M.ate_sim3(gt, pred) == pytest.approx(0.0, abs=1e-12)
    rte, rre = M.relative_pose_errors(gt, pred)
    assert rte == pytest.approx(0.0, abs=1e-12)
    assert rre == pytest.approx(0.0, abs=1e-5)
    # the best rotation of the uncentred translations does better than the offset's norm
    rot, _ = Rotation.align_vectors(gt[:, :3, 3], pred[:, :3, 3])
    raw = gt[:, :3, 3] - rot.apply(pred[:, :3, 3])
    assert np.sqrt(np.mean(np.sum(raw ** 2, axis=1))) < 1.3 - 1e-3


def test_rotation_about_the_centroid_leaves_the_centroid_error() -> None:
    """Rotating the prediction by ``Q`` about the ground truth's centroid ``m``: Kabsch
    undoes ``Q`` on the centred points, and every frame is left with ``(I - Q^T) m``."""
    trans = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    gt = _poses(np.broadcast_to(np.eye(3), (4, 3, 3)), trans)  # centroid m = (1, 0, 0)
    q = Rotation.from_euler("z", 90.0, degrees=True).as_matrix()
    pred = _world_rotation(q, gt, centre=np.array([1.0, 0.0, 0.0]))
    # (I - Q^T) m = (1, 0, 0) - (0, -1, 0) = (1, 1, 0)
    assert M.ate(gt, pred) == pytest.approx(np.sqrt(2.0), abs=1e-12)
    assert M.ate_sim3(gt, pred) == pytest.approx(0.0, abs=1e-12)


def test_ate_matches_an_independent_kabsch() -> None:
    rng = np.random.default_rng(3)
    gt = _random_trajectory(rng)
    pred = _noisy_sim3(rng, gt, 1.0)
    tg, tp = gt[:, :3, 3], pred[:, :3, 3]
    rot, _ = Rotation.align_vectors(tg - tg.mean(0), tp - tp.mean(0))
    err = tg - rot.apply(tp)
    assert M.ate(gt, pred) == pytest.approx(np.sqrt(np.mean(np.sum(err ** 2, 1))), rel=1e-9)


def test_known_one_frame_errors() -> None:
    gt = _poses(np.broadcast_to(np.eye(3), (3, 3, 3)), np.zeros((3, 3)))
    rz = Rotation.from_euler("z", 10.0, degrees=True).as_matrix()
    pred = _poses(np.stack([np.eye(3), rz, rz]),
                  np.array([[0.0, 0.0, 0.0], [0.03, 0.04, 0.0], [0.03, 0.04, 0.0]]))
    # E_0: 10 deg and 0.05 m, E_1: identity
    rte, rre = M.relative_pose_errors(gt, pred)
    assert rte == pytest.approx(0.05 / np.sqrt(2.0), rel=1e-12)
    assert rre == pytest.approx(10.0 / np.sqrt(2.0), rel=1e-9)


def test_relative_error_expressed_in_the_moving_frame() -> None:
    """Both cameras step 1 m along their own z; the prediction's step is turned by 90 deg
    about y. E = G_rel^-1 P_rel has the angle 90 deg and |t| = |(1, 0, 0) - (0, 0, 1)|."""
    gt = _poses(np.broadcast_to(np.eye(3), (2, 3, 3)), np.array([[0, 0, 0], [0, 0, 1.0]]))
    ry = Rotation.from_euler("y", 90.0, degrees=True).as_matrix()
    pred = _poses(np.stack([np.eye(3), ry]), np.array([[0, 0, 0], [1.0, 0, 0]]))
    rte, rre = M.relative_pose_errors(gt, pred)
    assert rre == pytest.approx(90.0, rel=1e-12)
    assert rte == pytest.approx(np.sqrt(2.0), rel=1e-12)


def test_rotation_angle_is_accurate_at_small_and_half_turn_angles() -> None:
    angles = np.array([1e-7, 1e-3, 1.0, np.pi - 1e-6, np.pi])
    rots = Rotation.from_rotvec(angles[:, None] * np.array([[0.6, 0.0, 0.8]])).as_matrix()
    assert np.allclose(M.rotation_angle(rots), angles, rtol=1e-8, atol=1e-12)


def test_degenerate_trajectories() -> None:
    static = _poses(np.broadcast_to(np.eye(3), (5, 3, 3)), np.tile([1.0, 2.0, 3.0], (5, 1)))
    shifted = static.copy()
    shifted[:, :3, 3] += [0.0, 0.0, 0.5]
    assert M.ate(static, shifted) == pytest.approx(0.5, abs=1e-12)  # R = I
    assert M.ate_sim3(static, shifted) == pytest.approx(0.0, abs=1e-12)
    rte, rre = M.relative_pose_errors(static, shifted)
    assert rte == pytest.approx(0.0) and rre == pytest.approx(0.0)

    # a static prediction against a moving ground truth: the best scale is 0
    gt = _random_trajectory(np.random.default_rng(4), 10)
    tg = gt[:, :3, 3]
    spread = np.sqrt(np.mean(np.sum((tg - tg.mean(0)) ** 2, 1)))
    assert M.ate_sim3(gt, static[:1].repeat(10, 0)) == pytest.approx(spread, rel=1e-12)

    # T = 1: ATE is the distance, the Sim(3) ATE 0, RPE undefined
    assert M.ate(static[:1], shifted[:1]) == pytest.approx(0.5)
    assert M.ate_sim3(static[:1], shifted[:1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="T > delta"):
        M.relative_pose_errors(static[:1], shifted[:1])
    with pytest.raises(ValueError, match="T > delta"):
        M.relative_pose_errors(static[:3], shifted[:3], delta=3)

    # collinear motion (rank-1 covariance), off the origin: identical -> 0, Sim(3) exact
    line = _poses(np.broadcast_to(np.eye(3), (6, 3, 3)),
                  np.array([0.5, -0.2, 0.0]) + np.linspace(0, 1, 6)[:, None] * [0.0, 0.6, 0.8])
    assert M.ate(line, line) == pytest.approx(0.0, abs=1e-12)
    scaled = line.copy()
    scaled[:, :3, 3] = 2.0 * line[:, :3, 3] + [1.0, 2.0, 3.0]
    assert M.ate_sim3(line, scaled) == pytest.approx(0.0, abs=1e-12)
    # reversed direction: the smallest rotation onto the line is a half turn
    assert np.isfinite(M.ate(line, line[::-1].copy()))


def test_batches_and_validation() -> None:
    rng = np.random.default_rng(5)
    gt = np.stack([_random_trajectory(rng, 20) for _ in range(3)])
    pred = np.stack([_noisy_sim3(rng, g, 1.3) for g in gt])
    for fn in (M.ate, M.ate_sim3):
        batched = fn(gt, pred)
        assert batched.shape == (3,)
        assert np.allclose(batched, [fn(g, p) for g, p in zip(gt, pred, strict=True)])
        assert fn(gt[0], pred[0]).shape == ()
    rte, rre = M.relative_pose_errors(gt.reshape(3, 1, 20, 4, 4), pred.reshape(3, 1, 20, 4, 4))
    assert rte.shape == rre.shape == (3, 1)
    figures = M.camera_metrics(gt, pred)
    assert figures["clips"] == 3
    assert figures["ate_m"] == pytest.approx(float(np.mean(M.ate(gt, pred))))
    assert figures["rre_deg"] == pytest.approx(float(np.mean(M.relative_pose_errors(gt, pred)[1])))

    with pytest.raises(ValueError, match="shape"):
        M.ate(gt, pred[:, :10])
    bad = pred.copy()
    bad[0, 3, :3, :3] *= 1.1  # scaled rotation block
    with pytest.raises(ValueError):
        M.ate(gt, bad)


# ------------------------------------------------------------------------------ evo


def _evo_trajectory(poses: np.ndarray):
    traj = pytest.importorskip("evo.core.trajectory")
    return traj.PoseTrajectory3D(poses_se3=list(poses), timestamps=np.arange(len(poses)) / FPS)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_sim3_ate_matches_evo_ape(seed: int) -> None:
    pytest.importorskip("evo")
    from evo import main_ape
    from evo.core.metrics import PoseRelation

    rng = np.random.default_rng(seed)
    gt = _random_trajectory(rng)
    pred = _noisy_sim3(rng, gt, scale=0.4 + 2.0 * rng.random())
    result = main_ape.ape(_evo_trajectory(gt), _evo_trajectory(pred),
                          PoseRelation.translation_part, align=True, correct_scale=True)
    assert M.ate_sim3(gt, pred) == pytest.approx(result.stats["rmse"], rel=1e-9)
    # EgoM2P's rotation-only ATE cannot beat evo's SE(3)-aligned one (fewer freedoms)
    rigid = main_ape.ape(_evo_trajectory(gt), _evo_trajectory(pred),
                         PoseRelation.translation_part, align=True, correct_scale=False)
    assert M.ate(gt, pred) >= rigid.stats["rmse"] - 1e-12


@pytest.mark.parametrize("seed", [20, 21])
def test_rte_rre_match_evo_rpe(seed: int) -> None:
    pytest.importorskip("evo")
    from evo.core.metrics import RPE, PoseRelation, StatisticsType, Unit

    rng = np.random.default_rng(seed)
    gt = _random_trajectory(rng)
    pred = _noisy_sim3(rng, gt, scale=1.0)

    def evo_rpe(relation: PoseRelation, delta: int, all_pairs: bool) -> float:
        metric = RPE(relation, delta=delta, delta_unit=Unit.frames, all_pairs=all_pairs)
        metric.process_data((_evo_trajectory(gt), _evo_trajectory(pred)))
        return metric.get_statistic(StatisticsType.rmse)

    rte, rre = M.relative_pose_errors(gt, pred, delta=1)
    assert rte == pytest.approx(evo_rpe(PoseRelation.translation_part, 1, False), rel=1e-9)
    assert rre == pytest.approx(evo_rpe(PoseRelation.rotation_angle_deg, 1, False), rel=1e-9)
    # delta > 1: every overlapping pair, which is evo's all_pairs=True
    rte2, rre2 = M.relative_pose_errors(gt, pred, delta=2)
    assert rte2 == pytest.approx(evo_rpe(PoseRelation.translation_part, 2, True), rel=1e-9)
    assert rre2 == pytest.approx(evo_rpe(PoseRelation.rotation_angle_deg, 2, True), rel=1e-9)
    # the relation is symmetric: swapping the trajectories inverts E_i
    swapped = M.relative_pose_errors(pred, gt, delta=1)
    assert swapped[0] == pytest.approx(rte, rel=1e-9)
    assert swapped[1] == pytest.approx(rre, rel=1e-9)


# ---------------------------------------------------------------------------- depth


def _depth_clip(rng: np.random.Generator, shape: tuple[int, ...] = (4, 8, 10)) -> np.ndarray:
    gt = rng.uniform(0.5, 5.0, shape).astype(np.float32)
    gt[..., 0, :] = 0.0  # an invalid row per frame
    return gt


def test_depth_scale_and_shift_are_recovered() -> None:
    gt = _depth_clip(np.random.default_rng(30))
    pred = (gt.astype(np.float64) - 0.5) / 2.0  # gt = 2 pred + 0.5
    pred[0, 3, 3] = np.nan  # ignored
    s, b = M.fit_depth_scale_shift(gt, pred)
    assert s == pytest.approx(2.0, rel=1e-6) and b == pytest.approx(0.5, abs=1e-5)
    abs_rel, acc = M.depth_errors(gt, pred)
    assert abs_rel == pytest.approx(0.0, abs=1e-6) and acc == 1.0

    # metric (unaligned): |(g - 0.5)/2 - g| / g = 0.5 + 0.25 / g over the valid pixels
    valid = (gt > 0) & np.isfinite(pred)
    g = gt[valid].astype(np.float64)
    abs_rel_metric, acc_metric = M.depth_errors(gt, pred, align=False)
    assert abs_rel_metric == pytest.approx(np.mean(0.5 + 0.25 / g), rel=1e-6)
    # d' < g / 2 everywhere (or d' <= 0): no pixel is within a factor 1.25
    assert acc_metric == 0.0


def test_depth_delta_counts_the_bad_fraction() -> None:
    gt = _depth_clip(np.random.default_rng(31))
    pred = gt.copy()
    valid = gt > 0
    bad = np.zeros_like(valid)
    bad[:, 2:4, :5] = True  # 2 * 4 * 5 = 40 of the 4 * 7 * 10 = 280 valid pixels
    pred[bad] *= 2.0
    figures = M.depth_metrics(gt, pred, align=False)
    assert figures["abs_rel"] == pytest.approx(40 / 280, rel=1e-6)  # each bad pixel: 1.0
    assert figures["delta1"] == pytest.approx(240 / 280, rel=1e-12)
    assert figures["delta1_pct"] == pytest.approx(100 * 240 / 280, rel=1e-12)
    # an explicit mask removes the bad pixels
    masked = M.depth_metrics(gt, pred, mask=~bad, align=False)
    assert masked["abs_rel"] == pytest.approx(0.0) and masked["delta1"] == 1.0
    # a non-positive prediction fails delta
    neg = gt.copy()
    neg[valid] = -gt[valid]
    assert M.depth_errors(gt, neg, align=False)[1] == 0.0


def test_depth_batches_and_empty_clips() -> None:
    rng = np.random.default_rng(32)
    gt = np.stack([_depth_clip(rng) for _ in range(3)])
    pred = 1.5 * gt + 0.2 + rng.normal(0.0, 0.05, gt.shape)
    gt[2] = 0.0  # no valid pixels
    abs_rel, acc = M.depth_errors(gt, pred)
    assert abs_rel.shape == acc.shape == (3,)
    assert np.isnan(abs_rel[2]) and np.isnan(acc[2])
    assert abs_rel[0] == pytest.approx(M.depth_errors(gt[0], pred[0])[0])
    figures = M.depth_metrics(gt, pred)
    assert figures["clips"] == 2
    assert figures["abs_rel"] == pytest.approx(np.mean(abs_rel[:2]))
    assert M.fit_depth_scale_shift(np.ones((2, 3, 3)), np.full((2, 3, 3), 7.0)) == (0.0, 1.0)


# ----------------------------------------------------------------------------- gaze


def test_gaze_l2_excludes_invalid_samples() -> None:
    gt = np.zeros((2, 5, 2))
    pred = np.zeros((2, 5, 2))
    pred[0, :3] = [0.3, 0.4]  # valid: distance 0.5
    pred[0, 3:] = [9.0, 9.0]  # invalid in the ground truth
    valid = np.zeros((2, 5), dtype=bool)
    valid[0, :3] = True
    per_clip = M.gaze_l2(gt, pred, valid)
    assert per_clip[0] == pytest.approx(0.5)
    assert np.isnan(per_clip[1])
    assert M.gaze_metrics(gt, pred, valid) == {"gaze_l2": pytest.approx(0.5), "clips": 1}
    assert M.gaze_l2(gt[0], pred[0]) == pytest.approx((3 * 0.5 + 2 * 9 * np.sqrt(2)) / 5)


# ---------------------------------------------------------------------------- video


def test_psnr_of_a_known_mse() -> None:
    gt = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    pred = np.full_like(gt, 5)  # MSE 25
    assert M.video_psnr(gt, pred) == pytest.approx(10 * np.log10(255.0 ** 2 / 25.0))
    half = gt.copy()
    half[0] = 10  # MSE over the clip: 100 / 3
    assert M.video_psnr(gt, half) == pytest.approx(10 * np.log10(255.0 ** 2 * 3 / 100.0))
    assert M.video_psnr(gt, gt) == np.inf


def test_ssim_is_the_frame_mean_of_scikit_image() -> None:
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(40)
    gt = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    noise = rng.integers(-20, 21, gt.shape)
    pred = np.clip(gt.astype(int) + noise, 0, 255).astype(np.uint8)
    ssim = M.video_ssim(gt, pred)
    assert ssim.shape == (2,)
    expected = np.mean([structural_similarity(gt[1, t], pred[1, t], channel_axis=-1,
                                              data_range=255) for t in range(3)])
    assert ssim[1] == pytest.approx(expected, rel=1e-12)
    assert M.video_ssim(gt[0], gt[0]) == pytest.approx(1.0)
    figures = M.video_metrics(gt, pred)
    assert figures["clips"] == 2
    assert figures["ssim"] == pytest.approx(np.mean(ssim))
    assert figures["psnr_db"] == pytest.approx(np.mean(M.video_psnr(gt, pred)))
