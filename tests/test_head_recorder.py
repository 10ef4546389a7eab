"""``egosim.sensors.HeadRecorder``: eyes / head orientation / look-at -> poses, views, gaze."""

from __future__ import annotations

import numpy as np
import pytest
from sensors_support import room_with_boxes

from egosim.sensors import (
    CameraSpec,
    DynamicMesh,
    EyeModel,
    HeadRecorder,
    MotionBlur,
    Renderer,
    capsule_triangles,
    head_frame,
)

PERSON = 50
SIZE = 33  # odd: the optical axis passes through the centre pixel
F = 4
CENTRE = SIZE // 2


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    r = Renderer(room_with_boxes(), seed=0)
    yield r
    r.close()


def _specs(*modalities: str) -> list[CameraSpec]:
    return [CameraSpec(uuid=m, modality=m, resolution=(SIZE, SIZE), hfov_deg=90.0, near=0.05,
                       far=20.0) for m in modalities]


def _walker(y0: float = -2.0, step: float = 0.1, facing: float = 1.0) -> np.ndarray:
    """``(F, 2, 3)`` eyes at 1.6 m walking along +y (``facing`` -1: along -y)."""
    y = y0 + facing * step * np.arange(F)
    half = 0.032 * facing  # the right eye is to the right of the walking direction
    left = np.stack([np.full(F, -half), y, np.full(F, 1.6)], -1)
    right = np.stack([np.full(F, half), y, np.full(F, 1.6)], -1)
    return np.stack([left, right], axis=1)


def _body(x: float, y: float, instance: int) -> DynamicMesh:
    """A person-sized capsule standing at ``(x, y)`` (0.25 m radius, 1.8 m tall)."""
    tri = capsule_triangles((x, y, 0.0), 1.8, 0.25, 16, 3)
    return DynamicMesh(tri, PERSON, instance, (0.8, 0.6, 0.5), np.zeros(len(tri), bool))


LEVEL_NORTH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).T
"""Head-to-world rotation of an upright head looking along +y (columns right, down, fwd)."""


def test_camera_at_eye_midpoint_looking_along_the_gaze(renderer: Renderer) -> None:
    rec = HeadRecorder(renderer, _specs("rgb"))
    eyes = _walker()
    target = np.array([0.0, 4.0, 1.6])
    track = rec.track(eyes, look_at=target)
    mid = eyes.mean(axis=1)
    assert track.poses.shape == (F, 4, 4) and track.views == {}
    np.testing.assert_allclose(track.poses[:, :3, 3], mid)
    axis = (target - mid) / np.linalg.norm(target - mid, axis=1, keepdims=True)
    np.testing.assert_allclose(track.poses[:, :3, 2], axis, atol=1e-12)
    np.testing.assert_allclose(track.poses[:, :3, 0], np.tile([1.0, 0.0, 0.0], (F, 1)))
    np.testing.assert_allclose(track.poses, head_frame(eyes, look_at=target))
    # A target straight ahead is seen at the image centre.
    np.testing.assert_allclose(track.gaze_xy["rgb"], 0.0, atol=1e-9)
    assert track.gaze_valid["rgb"].all()
    np.testing.assert_allclose(track.gaze_points, np.tile(target, (F, 1)))


def test_gaze_off_to_one_side_lands_on_that_side(renderer: Renderer) -> None:
    rec = HeadRecorder(renderer, _specs("rgb"))
    eyes = _walker()
    head = np.broadcast_to(LEVEL_NORTH, (F, 3, 3))
    poses = rec.camera_poses(eyes, head_orientation=head)
    np.testing.assert_allclose(poses[:, :3, 2], np.tile([0.0, 1.0, 0.0], (F, 1)), atol=1e-12)
    np.testing.assert_allclose(poses[:, :3, 1], np.tile([0.0, 0.0, -1.0], (F, 1)), atol=1e-12)
    sides = {"right": ([2.0, 4.0, 1.6], 0, +1), "left": ([-2.0, 4.0, 1.6], 0, -1),
             "up": ([0.0, 4.0, 3.0], 1, -1), "down": ([0.0, 4.0, 0.0], 1, +1)}
    for name, (target, axis, sign) in sides.items():
        track = rec.track(eyes, head_orientation=head, look_at=np.array(target))
        xy, ok = track.gaze_xy["rgb"], track.gaze_valid["rgb"]
        assert ok.all(), name
        assert (sign * xy[:, axis] > 0.2).all(), (name, xy)
        np.testing.assert_allclose(xy[:, 1 - axis], 0.0, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(track.poses, poses)  # the camera follows the head
    behind = rec.track(eyes, head_orientation=head, look_at=np.array([0.0, -6.0, 1.6]))
    assert not behind.gaze_valid["rgb"].any()


def test_record_renders_the_views_with_the_other_body(renderer: Renderer) -> None:
    rec = HeadRecorder(renderer, _specs("rgb", "depth", "semantic"))
    eyes = _walker()
    other = _body(0.0, 1.0, 7)
    out = rec.record(eyes, meshes=lambda f: [other] if f < F - 1 else [])
    assert out.poses.shape == (F, 4, 4) and out.gaze_points is None and out.gaze_xy == {}
    assert out.views["rgb"].shape == (F, SIZE, SIZE, 3) and out.views["rgb"].dtype == np.uint8
    assert out.views["depth"].shape == (F, SIZE, SIZE) == out.views["depth_valid"].shape
    sem = out.views["semantic"]
    assert sem.shape == (F, SIZE, SIZE) and sem.dtype == np.int32
    assert (sem[:F - 1, CENTRE, CENTRE] == PERSON).all()
    # The (faceted) capsule is 3 m - 0.25 m ahead of the first frame's eyes, 0.1 m closer
    # each frame; without it the far wall (class 2) is straight ahead.
    want = 2.75 - 0.1 * np.arange(F - 1)
    np.testing.assert_allclose(out.views["depth"][:F - 1, CENTRE, CENTRE], want, atol=0.03)
    assert sem[-1, CENTRE, CENTRE] == 2
    # Frame by frame through frame() gives the same views.
    _, one = rec.frame(eyes[0], meshes=[other])
    np.testing.assert_array_equal(one["semantic"], sem[0])


def test_several_wearers_share_a_frame_and_hide_their_own_body(renderer: Renderer) -> None:
    rec = HeadRecorder(renderer, _specs("instance"))
    eyes = np.stack([_walker(-2.0, 0.0), _walker(1.0, 0.0, facing=-1.0)])  # face each other
    bodies = [_body(0.0, -2.0, 100), _body(0.0, 1.0, 101)]
    out = rec.record(eyes, meshes=[bodies] * F, wearer=np.array([0, 1]))
    assert out.poses.shape == (2, F, 4, 4)
    inst = out.views["instance"]
    assert inst.shape == (2, F, SIZE, SIZE)
    assert (inst[0, :, CENTRE, CENTRE] == 101).all() and (inst[1, :, CENTRE, CENTRE] == 100).all()
    assert not (inst[0] == 100).any() and not (inst[1] == 101).any()  # own body hidden
    # Without a wearer the camera is inside its own capsule and sees only that.
    blind = rec.record(eyes[0], meshes=[bodies] * F)
    assert (blind.views["instance"] == 100).all()


def test_eye_model_gaze_stays_near_the_target(renderer: Renderer) -> None:
    rec = HeadRecorder(renderer, _specs("rgb"), fps=40.0, eye_model=EyeModel())
    eyes = np.repeat(_walker()[:1], 40, axis=0)
    target = np.array([0.0, 4.0, 1.6])
    a = rec.track(eyes, look_at=target, rng=3)
    b = rec.track(eyes, look_at=target, rng=3)
    assert len(a.gaze_tracks) == 1 and a.gaze_tracks[0].direction.shape == (40, 3)
    np.testing.assert_array_equal(a.gaze_xy["rgb"], b.gaze_xy["rgb"])
    assert 0.0 < np.abs(a.gaze_xy["rgb"]).max() < 0.1  # a few degrees around the centre
    assert a.gaze_tracks[0].error_deg.max() < 5.0


def test_sensor_offsets_and_motion_blur(renderer: Renderer) -> None:
    tilted = CameraSpec(uuid="tilted", modality="rgb", resolution=(SIZE, SIZE), hfov_deg=90.0,
                        orientation_rpy=(0.0, np.deg2rad(20.0), 0.0))
    blurred = CameraSpec(uuid="blur", modality="rgb", resolution=(SIZE, SIZE), hfov_deg=90.0,
                         motion_blur=MotionBlur(probability=1.0))
    rec = HeadRecorder(renderer, [tilted, blurred])
    eyes = _walker()
    out = rec.record(eyes, look_at=np.array([0.0, 4.0, 1.6]), rng=0)
    assert out.views["blur"].shape == (F, SIZE, SIZE, 3)
    # The gaze is at the rig's centre; the sensor yawed about its down axis sees it aside.
    assert (np.abs(out.gaze_xy["blur"]) < 1e-9).all()
    assert (np.abs(out.gaze_xy["tilted"][:, 0]) > 0.2).all()
    with pytest.raises(ValueError, match="eyes"):
        rec.track(np.zeros((F, 3)))
