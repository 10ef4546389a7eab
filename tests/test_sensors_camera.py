"""Camera specs, projection models, poses and the head rig (egosim.sensors)."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
from sensors_support import centered_box

from egosim.sensors import (
    CameraSpec,
    HeadRig,
    Renderer,
    SimpleScene,
    aria_fisheye_spec,
    check_poses,
    default_rgbd_specs,
    egogen_depth_spec,
    egogen_rgb_spec,
    head_frame,
    intrinsics_matrix,
    project,
    unproject,
)

# Camera at the origin looking along world +y, z up: x_cam = +x, y_cam = -z, z_cam = +y.
LOOK_Y = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])


def wall_scene(box_x: float = 0.4, box_z: float = -0.2) -> SimpleScene:
    """A wall facing the camera at y = 3, and a 0.5 m box centred at (box_x, 2, box_z)."""
    sc = SimpleScene()
    sc.add(centered_box([0, 3.05, 0], [20, 0.1, 20]), 2, 1, (0.8, 0.8, 0.8))
    sc.add(centered_box([box_x, 2.0, box_z], [0.5, 0.5, 0.5]), 6, 2, (0.9, 0.1, 0.1))
    return sc


def test_intrinsics_from_hfov_and_pixel_centres():
    spec = CameraSpec(uuid="c", modality="depth", resolution=(60, 80), hfov_deg=90.0)
    k = intrinsics_matrix(spec)
    assert k[0, 0] == pytest.approx(40.0) and k[1, 1] == pytest.approx(40.0)
    # OpenCV: pixel centres at integers, so the centre of an 80-wide image is at 39.5.
    assert (k[0, 2], k[1, 2]) == (39.5, 29.5)
    uv, ok = project(np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0, 0, -1.0]]), spec)
    assert uv[0, 0] == pytest.approx(79.5)  # 45 degrees right: the right image edge - 0.5
    assert ok.tolist() == [False, True, False]  # u = 79.5 is outside [-0.5, 79.5)
    assert np.isnan(uv[2]).all()


def test_fisheye_equidistant_model():
    spec = CameraSpec(uuid="f", modality="rgb", resolution=(101, 101), hfov_deg=150.0,
                      projection="fisheye")
    fx, _, cx, _ = spec.focal_principal()
    assert fx == pytest.approx(50.5 / math.radians(75.0))
    for theta in (0.1, 0.6, 1.2):
        p = np.array([math.sin(theta), 0.0, math.cos(theta)]) * 2.5
        uv, ok = project(p, spec)
        assert uv[0] == pytest.approx(cx + fx * theta) and ok
    behind = project(np.array([1.0, 0.0, -0.1]), spec)[1]
    assert not behind


@pytest.mark.parametrize("projection", ["pinhole", "fisheye"])
def test_project_unproject_round_trip(projection):
    spec = CameraSpec(uuid="c", modality="depth", resolution=(48, 64), hfov_deg=100.0,
                      projection=projection, intrinsics=None)
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 9.0, size=(2, 48, 64))
    pts = unproject(depth, spec)
    assert pts.shape == (2, 48, 64, 3)
    np.testing.assert_allclose(pts[..., 2], depth, rtol=1e-12)
    uv, ok = project(pts, spec)
    v, u = np.meshgrid(np.arange(48), np.arange(64), indexing="ij")
    np.testing.assert_allclose(uv[..., 0], np.broadcast_to(u, uv.shape[:-1]), atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], np.broadcast_to(v, uv.shape[:-1]), atol=1e-9)
    assert ok.all()


@pytest.mark.parametrize("projection", ["pinhole", "fisheye"])
def test_known_box_lands_where_the_model_says(projection):
    spec = CameraSpec(uuid="sem", modality="semantic", resolution=(96, 128), hfov_deg=100.0,
                      projection=projection)
    # On the optical axis only the box's front face is visible: x, z in [-0.25, 0.25],
    # at y = 1.75 (its sides project inside it).
    out = Renderer(wall_scene(0.0, 0.0)).render(spec, LOOK_Y)["sem"]
    corners = np.array([[x, 1.75, z] for x in (-0.25, 0.25) for z in (-0.25, 0.25)])
    cam = (np.linalg.inv(LOOK_Y) @ np.c_[corners, np.ones(4)].T).T[:, :3]
    uv, ok = project(cam, spec)
    assert ok.all()
    # Pixels whose centres are well inside the projected face see the box (class 6).
    if projection == "pinhole":
        u0, u1 = uv[:, 0].min(), uv[:, 0].max()
        v0, v1 = uv[:, 1].min(), uv[:, 1].max()
        cols = np.arange(math.ceil(u0 + 0.01), math.floor(u1 - 0.01) + 1)
        rows = np.arange(math.ceil(v0 + 0.01), math.floor(v1 - 0.01) + 1)
        assert (out[np.ix_(rows, cols)] == 6).all()
        # ...and the pixels just outside do not.
        assert (out[rows, cols[0] - 1] != 6).all() and (out[rows, cols[-1] + 1] != 6).all()
        assert (out[rows[0] - 1, cols] != 6).all() and (out[rows[-1] + 1, cols] != 6).all()
    else:  # fisheye: the face's centre projects onto the box, the model's corners bound it
        c_uv, _ = project(cam.mean(axis=0), spec)
        assert out[int(round(c_uv[1])), int(round(c_uv[0]))] == 6
        ys, xs = np.nonzero(out == 6)
        assert xs.min() >= np.floor(uv[:, 0].min()) - 1 and xs.max() <= np.ceil(uv[:, 0].max()) + 1


@pytest.mark.parametrize("projection", ["pinhole", "fisheye"])
def test_unprojected_depth_gives_scene_points_within_1mm(projection):
    spec = CameraSpec(uuid="d", modality="depth", resolution=(64, 64), hfov_deg=110.0,
                      projection=projection)
    pose = LOOK_Y.copy()
    pose[:3, 3] = [0.1, -0.2, 0.3]
    out = Renderer(wall_scene()).render(spec, pose)
    depth, valid = out["d"], out["d_valid"]
    assert valid.mean() > 0.5
    pts = unproject(depth, spec)[valid]
    world = pts @ pose[:3, :3].T + pose[:3, 3]
    # Every point lies on the wall plane (y = 3) or on a face of the box.
    on_wall = np.abs(world[:, 1] - 3.0)
    lo, hi = np.array([0.15, 1.75, -0.45]), np.array([0.65, 2.25, 0.05])
    inside = np.all((world > lo - 1e-3) & (world < hi + 1e-3), axis=1)
    face_dist = np.min(np.abs(np.concatenate([world - lo, world - hi], axis=1)), axis=1)
    on_box = inside & (face_dist < 1e-3)
    assert np.all((on_wall < 1e-3) | on_box)
    assert on_box.sum() > 20


def test_spec_validation_names_field_and_allowed_values():
    with pytest.raises(pydantic.ValidationError, match="modality") as e:
        CameraSpec(uuid="x", modality="thermal")
    assert "'rgb'" in str(e.value) and "'depth'" in str(e.value)
    with pytest.raises(pydantic.ValidationError, match="projection"):
        CameraSpec(uuid="x", modality="rgb", projection="orthographic")
    with pytest.raises(pydantic.ValidationError, match=r"resolution must be \(H, W\)"):
        CameraSpec(uuid="x", modality="rgb", resolution=(0, 10))
    with pytest.raises(pydantic.ValidationError, match="resolution"):
        CameraSpec(uuid="x", modality="rgb", resolution=(10, 10, 3))
    with pytest.raises(pydantic.ValidationError, match=r"hfov_deg must be in \(0, 180\)"):
        CameraSpec(uuid="x", modality="rgb", hfov_deg=180.0)
    with pytest.raises(pydantic.ValidationError, match="near < far"):
        CameraSpec(uuid="x", modality="depth", near=2.0, far=1.0)
    with pytest.raises(pydantic.ValidationError, match="depth_noise is for modality 'depth'"):
        CameraSpec(uuid="x", modality="rgb", depth_noise={})
    with pytest.raises(pydantic.ValidationError, match="disagrees with intrinsics"):
        CameraSpec(uuid="x", modality="rgb", resolution=(10, 10), hfov_deg=90.0,
                   intrinsics=(20.0, 20.0, 4.5, 4.5))
    # Fisheye may exceed 180 degrees; a frozen spec is hashable (ray caches key on it).
    wide = CameraSpec(uuid="x", modality="rgb", projection="fisheye", hfov_deg=200.0)
    assert hash(wide) == hash(CameraSpec(uuid="x", modality="rgb", projection="fisheye",
                                         hfov_deg=200.0))


def test_check_poses_rejects_bad_shapes_and_non_rigid():
    with pytest.raises(ValueError, match=r"shape \(4, 4\) or \(N, 4, 4\)"):
        check_poses(np.eye(3))
    with pytest.raises(ValueError, match="last row"):
        bad = np.eye(4)
        bad[3, 0] = 1.0
        check_poses(bad)
    with pytest.raises(ValueError, match=r"\[1\] is not rigid"):
        check_poses(np.stack([np.eye(4), np.diag([2.0, 1, 1, 1])]))
    with pytest.raises(ValueError, match="not rigid"):
        check_poses(np.diag([1.0, 1.0, -1.0, 1.0]))  # a mirror
    poses, single = check_poses(np.eye(4))
    assert single and poses.shape == (1, 4, 4)


def test_head_frame_axes_follow_eye_line_and_gaze():
    eyes = np.array([[[0.03, 0.0, 1.6], [-0.03, 0.0, 1.6]]])  # left eye at +x: facing -y
    t = head_frame(eyes, gaze=np.array([[0.0, -1.0, -0.2]]))
    x, y, z = t[0, :3, 0], t[0, :3, 1], t[0, :3, 2]
    np.testing.assert_allclose(x, [-1, 0, 0], atol=1e-12)
    assert z[1] < -0.9 and z[2] < 0 and abs(z @ x) < 1e-12
    assert y[2] < -0.9  # y points down for an upright head
    np.testing.assert_allclose(t[0, :3, 3], [0, 0, 1.6])
    np.testing.assert_allclose(np.linalg.det(t[0, :3, :3]), 1.0)
    looked = head_frame(eyes[0], look_at=np.array([0.0, -5.0, 1.6]))
    np.testing.assert_allclose(looked[:3, 2], [0, -1, 0], atol=1e-12)
    level = head_frame(eyes[0])
    np.testing.assert_allclose(level[:3, 2], [0, -1, 0], atol=1e-12)
    with pytest.raises(ValueError, match="parallel to the eye line"):
        head_frame(eyes, gaze=np.array([[1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"shape \(N, 2, 3\)"):
        head_frame(np.zeros((4, 3)))


def test_rig_offset_and_presets():
    rig = HeadRig(specs=default_rgbd_specs(), offset_position=(0.0, -0.02, 0.05))
    eyes = np.array([[[-0.03, 0.0, 1.6], [0.03, 0.0, 1.6]]])  # facing +y
    pose = rig.poses(eyes)[0]
    np.testing.assert_allclose(pose[:3, 3], [0.0, 0.05, 1.62], atol=1e-12)
    depth = egogen_depth_spec()
    assert depth.resolution == (288, 320) and depth.focal_principal()[:2] == (200.0, 200.0)
    rgb = egogen_rgb_spec()
    assert rgb.resolution == (1080, 1920)
    assert rgb.focal_principal()[0] == pytest.approx(1465.0)
    a, b = rgb.jittered(1), rgb.jittered(1)
    assert a == b and a.intrinsics_jitter is None
    assert a.focal_principal() != rgb.jittered(2).focal_principal()
    assert abs(a.focal_principal()[0] / 1465.0 - 1.0) < 0.2
    aria = aria_fisheye_spec()
    assert aria.projection == "fisheye" and aria.hfov_deg == 150.0
