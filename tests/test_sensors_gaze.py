"""Gaze (eye model, 2D gaze points) and camera trajectories (egosim.sensors)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sensors_support import centered_box

from egosim.sensors import (
    CameraSpec,
    EyeModel,
    HeadRig,
    Renderer,
    SimpleScene,
    canonicalize,
    gaze_points_2d,
    pose_velocity,
    resample_poses,
    sensor_extrinsic,
    simulate_gaze,
)
from egosim.sensors.gaze import FIXATION, PURSUIT, SACCADE

MARKER = 999


def room_with_marker(target: np.ndarray) -> SimpleScene:
    sc = SimpleScene()
    sc.add(centered_box([0, 0, -0.05], [20, 20, 0.1]), 1, 1)
    sc.add(centered_box([0, 8, 1.5], [20, 0.2, 3]), 2, 2)
    sc.add(centered_box(target, 0.12), 17, MARKER, (1.0, 0.0, 0.0))
    return sc


def walk_eyes(n: int) -> np.ndarray:
    """Eye positions ``(n, 2, 3)`` walking along +y at 1.2 m/s (40 fps), facing +y."""
    y = np.arange(n) / 40.0 * 1.2
    mid = np.stack([0.05 * np.sin(y), y, 1.6 + 0.02 * np.sin(8 * y)], axis=1)
    return np.stack([mid - [0.032, 0, 0], mid + [0.032, 0, 0]], axis=1)


@pytest.mark.parametrize("projection", ["pinhole", "fisheye"])
def test_gaze_point_hits_the_marker_in_the_rendered_image(projection):
    target = np.array([0.9, 5.0, 0.9])
    eyes = walk_eyes(40)
    mid = eyes.mean(axis=1)
    track = simulate_gaze(mid, target, fps=40.0, rng=0)
    # The head looks straight ahead; the device sits 3 cm above and 2 cm ahead of the eyes.
    spec = CameraSpec(uuid="i", modality="instance", resolution=(120, 160), hfov_deg=110.0,
                      projection=projection, position=(0.02, 0.0, 0.0))
    rig = HeadRig(specs=(spec,), offset_position=(0.0, -0.03, 0.02))
    poses = rig.poses(eyes)
    cams = poses @ sensor_extrinsic(spec)
    xy, valid = gaze_points_2d(track.points_3d(), cams, spec)
    assert valid.all() and np.all(np.abs(xy) <= 1.0)
    img = Renderer(room_with_marker(target)).render(spec, poses)["i"]
    h, w = spec.resolution
    u = np.floor((xy[:, 0] + 1.0) / 2.0 * w).astype(int)
    v = np.floor((xy[:, 1] + 1.0) / 2.0 * h).astype(int)
    hits = img[np.arange(len(u)), v, u] == MARKER
    # The eye model keeps the gaze within ~1 degree of the target (marker: 12 cm at 4-5 m,
    # about 1.4-1.7 degrees across): most frames land on it, and the exact target always does.
    assert hits.mean() >= 0.7
    xy_t, _ = gaze_points_2d(np.broadcast_to(target, (40, 3)), cams, spec)
    ut = np.floor((xy_t[:, 0] + 1.0) / 2.0 * w).astype(int)
    vt = np.floor((xy_t[:, 1] + 1.0) / 2.0 * h).astype(int)
    assert (img[np.arange(40), vt, ut] == MARKER).all()


def test_gaze_validity_behind_and_outside():
    spec = CameraSpec(uuid="c", modality="rgb", resolution=(60, 80), hfov_deg=90.0)
    pose = np.eye(4)  # camera at the origin looking along +z (world = camera frame)
    pts = np.array([[0.0, 0.0, 2.0],  # centre
                    [0.0, 0.0, -2.0],  # behind
                    [5.0, 0.0, 2.0],  # far right: outside
                    [-1.99, -1.49, 2.0]])  # near the top-left corner: inside
    xy, valid = gaze_points_2d(pts, np.repeat(pose[None], 4, axis=0), spec)
    assert valid.tolist() == [True, False, False, True]
    np.testing.assert_allclose(xy[0], [0.0, 0.0], atol=1e-12)
    assert np.isnan(xy[1]).all() and xy[2, 0] > 1.0
    assert -1.0 <= xy[3, 0] < -0.99 and -1.0 <= xy[3, 1] < -0.99
    with pytest.raises(ValueError, match="3 poses"):
        gaze_points_2d(pts, np.repeat(pose[None], 3, axis=0), spec)


def test_eye_model_fixations_saccades_and_pursuit():
    n = 400  # 10 s at 40 fps
    mid = np.zeros((n, 3)) + [0, 0, 1.6]
    still = simulate_gaze(mid, [0.0, 3.0, 1.6], fps=40.0, rng=1)
    assert set(np.unique(still.state)) <= {FIXATION, SACCADE}
    assert (still.state == SACCADE).mean() < 0.25 and (still.state == SACCADE).any()
    assert np.median(still.error_deg) < 1.5 and still.error_deg.max() < 5.0
    np.testing.assert_allclose(np.linalg.norm(still.direction, axis=1), 1.0)
    # A target sweeping across at ~20 deg/s is pursued, lagging but within a few degrees.
    ang = np.radians(np.linspace(-100, 100, n))
    moving = np.stack([3 * np.sin(ang), 3 * np.cos(ang), np.full(n, 1.6)], axis=1)
    track = simulate_gaze(mid, moving, fps=40.0, rng=1)
    assert (track.state == PURSUIT).mean() > 0.5
    assert np.median(track.error_deg) < 2.5
    # Seeded: same seed, same bytes; another seed differs.
    again = simulate_gaze(mid, moving, fps=40.0, rng=1)
    assert again.direction.tobytes() == track.direction.tobytes()
    assert simulate_gaze(mid, moving, 40.0, rng=2).direction.tobytes() != track.direction.tobytes()
    with pytest.raises(ValueError, match="pursuit_gain"):
        EyeModel(pursuit_gain=1.5)


def test_resample_poses_40_to_30_fps():
    n = 41  # 1 s at 40 fps
    t = np.arange(n) / 40.0
    rot = Rotation.from_rotvec(np.outer(t, [0.0, 0.0, 1.2]))  # 1.2 rad/s about z
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = rot.as_matrix()
    poses[:, :3, 3] = np.outer(t, [1.0, 0.5, 0.0])
    out = resample_poses(poses, 40.0, 30.0)
    assert out.shape == (31, 4, 4)
    t30 = np.arange(31) / 30.0
    np.testing.assert_allclose(out[:, :3, 3], np.outer(t30, [1.0, 0.5, 0.0]), atol=1e-12)
    expect = Rotation.from_rotvec(np.outer(t30, [0.0, 0.0, 1.2])).as_matrix()
    np.testing.assert_allclose(out[:, :3, :3], expect, atol=1e-9)
    up = resample_poses(poses, 40.0, 120.0)
    assert up.shape == (121, 4, 4)
    np.testing.assert_allclose(up[::3], poses, atol=1e-9)
    vel = pose_velocity(poses, 40.0)
    np.testing.assert_allclose(vel[5], [1.0, 0.5, 0.0, 0.0, 0.0, 1.2], atol=1e-9)
    canon = canonicalize(poses[3:])
    np.testing.assert_allclose(canon[0], np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="fps must be > 0"):
        resample_poses(poses, 0.0, 30.0)
    scaled = poses.copy()
    scaled[:, :3, :3] *= 2.0
    with pytest.raises(ValueError, match="not rigid"):
        resample_poses(scaled, 40.0, 30.0)
