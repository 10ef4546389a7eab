"""Motion data: DeepMimic parsing, retargeting with planted feet, augmentation, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from egosim.envs.motion import augment as aug
from egosim.envs.motion.deepmimic import (
    forward_kinematics,
    list_motions,
    load_motion,
    parse_motion,
    urdf_skeleton,
)
from egosim.envs.motion.foot_contact import LEFT_FOOT, RIGHT_FOOT, WAIST, foot_contact_stats
from egosim.envs.motion.retarget import HUMANOID_TO_WORLD, replant, retarget
from egosim.envs.motion.rotations_numpy import heading_of, resample_linear, resample_times

# Documented clip lengths (pybullet_data's DeepMimic files), seconds.
DURATIONS = {"walk": 1.27, "run": 0.80, "jump": 1.77, "dance_a": 1.62, "kick": 1.53,
             "punch": 2.13, "spin": 4.42}


@pytest.fixture(scope="module")
def walk():
    motion = load_motion("walk").looped(3)
    clip, report = retarget(motion)
    return motion, clip, report


@pytest.fixture(scope="module")
def walk_eval(walk):
    _, clip, _ = walk
    return replant(clip, cleanup=False)


def test_parser_reads_all_shipped_clips_with_their_durations():
    names = list_motions()
    assert {"walk", "run", "crawl", "getup_facedown", "dance_b", "backflip"} <= set(names)
    for name in names:
        m = load_motion(name)
        assert m.num_frames > 10 and m.times[0] == 0.0 and np.all(np.diff(m.times) >= 0)
        assert np.allclose(np.linalg.norm(m.root_rot, axis=1), 1.0)
        assert set(m.angles) == {"right_knee", "right_elbow", "left_knee", "left_elbow"}
        if name in DURATIONS:
            assert m.duration == pytest.approx(DURATIONS[name], abs=0.01), name


def test_humanoid_axes_from_data_and_urdf():
    walk = load_motion("walk")
    travel = walk.root_pos[-1] - walk.root_pos[0]
    assert travel[0] > 1.0 and abs(travel[2]) < 0.05 * travel[0]  # +x forward
    off = {j.name: j.offset for j in urdf_skeleton()}
    assert off["right_hip"][2] > 0 > off["left_hip"][2]  # +z is the body's right
    leg = np.linalg.norm(off["right_knee"]) + np.linalg.norm(off["right_ankle"])
    assert 0.80 < leg < 0.86  # metres at URDF scale 0.25; root height ~0.85 in walk
    assert np.all(walk.angles["right_knee"] <= 0.01)  # knee flexion is negative


def test_parser_rejects_bad_rows():
    with pytest.raises(ValueError, match="Frames"):
        parse_motion({"Loop": "wrap", "Frames": [[0.1] * 43]})
    with pytest.raises(FileNotFoundError, match="available"):
        load_motion("moonwalk")


def test_looped_clip_continues_travel():
    m = load_motion("walk")
    m3 = m.looped(3)
    assert m3.duration == pytest.approx(3 * m.duration)
    step = m.root_pos[-1, 0] - m.root_pos[0, 0]
    assert m3.root_pos[-1, 0] - m3.root_pos[0, 0] == pytest.approx(3 * step)


def test_joint_mapping_matches_humanoid_bone_directions(walk, walk_eval):
    """Bones of the retargeted SMPL-X body point where the humanoid's bones point."""
    motion, clip, _ = walk
    _, _, joints = walk_eval
    fk = forward_kinematics(motion)
    t_dst = resample_times(motion.duration, 40.0)
    pairs = {("left_hip", "left_knee"): (1, 4), ("right_knee", "right_ankle"): (5, 8),
             ("left_shoulder", "left_elbow"): (16, 18), ("right_elbow", "right_wrist"): (19, 21),
             ("left_elbow", "left_wrist"): (18, 20), ("root", "neck"): (0, 12)}
    for (a, b), (i, k) in pairs.items():
        d_h = resample_linear(fk[b] - fk[a], motion.times, t_dst) @ HUMANOID_TO_WORLD.T
        d_s = joints[:, k] - joints[:, i]
        cos = np.sum(d_h * d_s, -1) / np.linalg.norm(d_h, axis=-1) / np.linalg.norm(d_s, axis=-1)
        assert cos.min() > 0.97, (a, b, cos.min())


def test_retargeted_walk_keeps_feet_on_floor_and_moves_forward(walk):
    _, clip, report = walk
    clip2, markers, joints = replant(clip)  # idempotent: already planted
    assert np.allclose(clip2.transl, clip.transl, atol=2e-3)
    from egosim.envs.motion.body_sequences import evaluate

    pts, _ = evaluate(clip.global_orient, clip.body_pose, clip.transl, clip.betas, soles=True)
    soles = pts[:, 67:, 2].min(axis=1)
    feet_speed = np.linalg.norm(np.diff(pts[:, 67:, :2], axis=0), axis=-1).min(axis=1) * 40
    stance = feet_speed < 0.1
    assert stance.mean() > 0.5
    # the soles are on the floor in stance (within 2 cm), never below it by more than 2 mm
    assert np.abs(soles[:-1][stance]).max() < 0.02
    assert soles.min() > -0.002
    # the lowest foot MARKER sits on the skin above the sole: about 2-3 cm at contact
    st = report.after
    assert 0.0 < st.foot_height_at_contact < 0.04
    assert st.foot_height_at_contact < report.before.foot_height_at_contact
    # skating: lower after the clean-up, below a stated bound (heel strikes of the source
    # data slide, see the report)
    assert st.skating_speed < report.before.skating_speed
    assert st.skating_speed < 0.45
    # forward at a walking speed, pelvis at a standing body's height
    speed = (joints[-1, 0, 0] - joints[0, 0, 0]) / clip.duration
    assert 0.8 < speed < 1.2
    assert abs(joints[-1, 0, 1] - joints[0, 0, 1]) < 0.1 * (joints[-1, 0, 0] - joints[0, 0, 0])
    assert 0.85 < joints[:, 0, 2].min() and joints[:, 0, 2].max() < 1.0
    assert markers.shape == (clip.num_frames, 67, 3)


def test_time_warp_changes_duration(walk):
    _, clip, _ = walk
    fast = aug.time_warp(clip, 1.5)
    slow = aug.time_warp(clip, 0.5)
    assert fast.duration == pytest.approx(clip.duration / 1.5, abs=1.0 / 40)
    assert slow.duration == pytest.approx(clip.duration / 0.5, abs=1.0 / 40)
    assert np.allclose(fast.transl[-1], clip.transl[-1], atol=0.05)  # same path, faster
    with pytest.raises(ValueError, match="speed"):
        aug.time_warp(clip, 0.0)


def test_mirror_swaps_left_and_right_feet(walk, walk_eval):
    _, clip, _ = walk
    _, m0, _ = walk_eval
    _, m1, _ = replant(aug.mirror(clip), cleanup=False)
    # reflection used by mirror: through the first pelvis, across the first heading
    h = heading_of(clip.global_orient[0])
    d = np.array([np.cos(h), np.sin(h), 0.0])
    n = np.array([-d[1], d[0], 0.0])
    ref = clip.transl[0]

    def reflect(p):
        return p - 2.0 * ((p - ref) @ n)[..., None] * n

    for a, b in ((LEFT_FOOT, RIGHT_FOOT), (RIGHT_FOOT, LEFT_FOOT)):
        err = np.linalg.norm(m1[:, list(a)] - reflect(m0[:, list(b)]), axis=-1)
        assert err.max() < 0.03
    # and it really is a swap: the left foot did not just stay the left foot
    assert np.linalg.norm(m1[:, list(LEFT_FOOT)] - m0[:, list(LEFT_FOOT)], axis=-1).max() > 0.2


@pytest.mark.parametrize("yaw_rate", [0.6, -0.4])
def test_turn_changes_heading_by_requested_angle(walk, yaw_rate):
    _, clip, _ = walk
    turned = aug.turn(clip, yaw_rate, ramp_s=0.5)
    base = heading_of(clip.global_orient[[0, -1]])
    new = heading_of(turned.global_orient[[0, -1]])
    want = aug.turn_angle(clip.duration, yaw_rate, 0.5)
    got = np.angle(np.exp(1j * ((new[1] - new[0]) - (base[1] - base[0]))))
    assert got == pytest.approx(want, abs=np.radians(1.0))
    # travel direction turns with the body
    step = turned.transl[-1, :2] - turned.transl[-5, :2]
    assert np.cos(np.arctan2(step[1], step[0]) - new[1]) > 0.9


def test_idle_start_stop_and_transitions(walk):
    _, clip, _ = walk
    idle = aug.idle(1.0, seed=3)
    assert np.allclose(aug.idle(1.0, seed=3).body_pose, idle.body_pose)
    assert not np.allclose(aug.idle(1.0, seed=4).body_pose, idle.body_pose)
    ss = aug.start_stop(clip, idle, aug.idle(1.0, seed=5), blend_s=0.5)
    assert ss.num_frames == idle.num_frames + clip.num_frames + 41 - 2 * 20
    planted, markers, joints = replant(ss)
    v = np.linalg.norm(np.diff(joints[:, 0, :2], axis=0), axis=-1) * 40
    assert v[:10].max() < 0.1 and v[-10:].max() < 0.1  # stands still at both ends
    assert v[idle.num_frames: idle.num_frames + 40].mean() > 0.5  # walks in the middle
    run, _ = retarget(load_motion("run").looped(3))
    wr = aug.transition(clip, run, 0.5)
    assert wr.num_frames == clip.num_frames + run.num_frames - 20
    assert np.all(np.isfinite(wr.transl))


def test_random_shapes_and_reshape(walk):
    _, clip, _ = walk
    b = aug.random_betas(7, num=500)
    assert b.shape == (500, 10) and np.abs(b).max() <= 2.0 and abs(b.mean()) < 0.1
    assert np.array_equal(aug.random_betas(7, num=500), b)
    tall = aug.reshape(clip.slice(0, 40), np.r_[2.0, np.zeros(9)], "male")
    _, m_tall, _ = replant(tall)
    assert tall.gender == "male"
    assert np.all(np.isfinite(m_tall)) and m_tall[..., 2].min() > -0.01


def test_foot_contact_stats_definitions():
    t = 41
    m = np.zeros((t, 67, 3))
    m[:, :, 2] = 0.5
    m[:, list(WAIST), 2] = 0.9
    m[:, list(LEFT_FOOT), 2] = 0.01  # planted
    m[:, list(RIGHT_FOOT), 2] = 0.2  # in the air
    st = foot_contact_stats(m, 40.0)
    assert st.skating_speed == pytest.approx(0.0) and st.foot_height_at_contact == 0.01
    assert st.pelvis_height_min == pytest.approx(0.9)
    m[:, list(LEFT_FOOT), 0] = np.arange(t)[:, None] * 0.5 / 40.0  # sliding at 0.5 m/s
    st = foot_contact_stats(m, 40.0)
    assert st.skating_speed == pytest.approx(0.5)
    with pytest.raises(ValueError, match="markers"):
        foot_contact_stats(m[:, :10], 40.0)


def test_steer_follows_a_changing_yaw_rate(walk):
    _, clip, _ = walk
    rates = aug.random_yaw_rates(clip.num_frames, clip.fps, 2.0, seed=3)
    assert rates.shape == (clip.num_frames,) and np.abs(rates).max() <= 2.0
    assert rates.max() > 0.2 and rates.min() < -0.2  # turns both ways within one clip
    steered = aug.steer(clip, rates)
    added = np.unwrap(heading_of(steered.global_orient)) - np.unwrap(heading_of(
        clip.global_orient))
    np.testing.assert_allclose(added, np.concatenate([[0.0], np.cumsum(rates[:-1])]) /
                               clip.fps, atol=1e-6)
    np.testing.assert_allclose(steered.body_pose, clip.body_pose)
    # no added rate: the clip is unchanged
    same = aug.steer(clip, np.zeros(clip.num_frames))
    np.testing.assert_allclose(same.transl, clip.transl, atol=1e-9)
    with pytest.raises(ValueError, match="one per frame"):
        aug.steer(clip, rates[:-1])
