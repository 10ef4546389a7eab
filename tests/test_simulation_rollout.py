"""The simulation's per-frame seam: ``Simulation.last_rollout`` and its step / reset hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from envs_support import overrides

from egosim.envs.crowd import EgoCrowdEnv
from egosim.envs.humans.marker_set import EYE_JOINTS
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.motion.primitive_windows import FUTURE_FRAMES, MOTION_FPS
from egosim.envs.simulation import FrameRollout, Simulation

N = 2


@pytest.fixture(scope="module")
def env() -> EgoCrowdEnv:
    return EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": N}))


def _actions(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.standard_normal(n * 128) / 3.0, -1, 1).astype(np.float32)


def _local_markers(sim: Simulation, m: np.ndarray) -> np.ndarray:
    """``(N, 2, 67, 3)`` world markers in each human's local frame (as the observation)."""
    origin, fwd, left = sim.body_frame(m[:, 1])
    rel = m - origin[:, None, None]
    return np.stack([np.einsum("ntkc,nc->ntk", rel, fwd), np.einsum("ntkc,nc->ntk", rel, left),
                     rel[..., 2]], -1)


def test_rollout_holds_every_frame_of_every_step(env: EgoCrowdEnv) -> None:
    sim = env.sim
    steps: list[FrameRollout] = []
    resets: list[FrameRollout] = []
    remove_step = sim.add_step_hook(lambda s, r: steps.append(r) if s is sim else None)
    remove_reset = sim.add_reset_hook(lambda s, r: resets.append(r))
    try:
        env.reset(seed=0)
        first = sim.last_rollout
        assert resets == [first] and steps == []
        assert first.frames.tolist() == [[-1, 0]] * N and first.markers.shape == (N, 2, 67, 3)
        rng = np.random.default_rng(0)
        seen = []
        for k in range(3):
            obs, *_ = env.step(_actions(rng, N))
            r = sim.last_rollout
            seen.append(r)
            assert len(steps) == k + 1 and steps[-1] is r  # one hook call per step
            f = FUTURE_FRAMES
            assert r.num_frames == f
            assert r.markers.shape == (N, f, 67, 3) and r.joints.shape == (N, f, 55, 3)
            assert r.eyes.shape == (N, f, 2, 3) and r.eye_midpoint.shape == (N, f, 3)
            assert r.global_orient.shape == (N, f, 3) and r.body_pose.shape == (N, f, 63)
            assert r.transl.shape == (N, f, 3) and r.betas.shape == (N, 10)
            assert r.gender.shape == (N,) and set(r.genders) <= set(GENDERS)
            assert r.head_orientation.shape == (N, f, 3, 3)
            assert r.worlds.tolist() == [0] * N and r.humans.tolist() == list(range(N))
            assert r.active.all()
            # The last frames are the state the next observation is built from.
            np.testing.assert_array_equal(r.markers[:, -2:], sim.markers)
            np.testing.assert_array_equal(r.eyes[:, -1], sim.eyes)
            local = np.clip(_local_markers(sim, r.markers[:, -2:]), -5, 5).astype(np.float32)
            np.testing.assert_allclose(env.split(obs)["markers"], local, atol=1e-6)
        assert len(resets) == 1
        # Frame times run on without gaps across steps, at 40 fps from the episode start.
        times = np.concatenate([first.times[:, -1:]] + [r.times for r in seen], axis=1)
        np.testing.assert_allclose(np.diff(times, axis=1), 1.0 / MOTION_FPS)
        assert times[0, 0] == 0.0 and times[0, -1] == pytest.approx(3 * FUTURE_FRAMES / 40)
        np.testing.assert_array_equal(seen[-1].frames[0], np.arange(37, 55))
        # ... and so does the motion: the pelvis moves no more from the last frame of a
        # step to the first of the next than between the frames of a step.
        for a, b in zip([first] + seen[:-1], seen, strict=True):
            pel_a, pel_b = sim.pelvis(a.markers), sim.pelvis(b.markers)
            jump = np.linalg.norm(pel_b[:, 0] - pel_a[:, -1], axis=-1)
            within = np.linalg.norm(np.diff(pel_b, axis=1), axis=-1).max(axis=1)
            assert (jump < 2.0 * within + 0.01).all(), (jump, within)
    finally:
        remove_step()
        remove_reset()
    env.step(_actions(np.random.default_rng(1), N))
    assert len(steps) == 3  # removed hooks are not called again


def test_hooks_stay_in_their_process(env: EgoCrowdEnv) -> None:
    import pickle

    remove = env.sim.add_step_hook(lambda s, r: None)  # a lambda: not picklable
    try:
        env.reset(seed=3)
        clone = pickle.loads(pickle.dumps(env))
        assert clone.sim._step_hooks == [] and len(env.sim._step_hooks) == 1
        a = _actions(np.random.default_rng(5), N)
        env.step(a)
        clone.step(a)
        np.testing.assert_array_equal(clone.sim.last_rollout.markers,
                                      env.sim.last_rollout.markers)
    finally:
        remove()


def test_eyes_and_head_follow_the_body_model(env: EgoCrowdEnv) -> None:
    from egosim.envs.humans import BodyModel

    env.reset(seed=1)
    env.step(_actions(np.random.default_rng(2), N))
    r = env.sim.last_rollout
    for i in range(N):
        model = BodyModel(gender=r.genders[i])
        with torch.no_grad():
            out = model(betas=np.repeat(r.betas[i:i + 1], r.num_frames, 0),
                        global_orient=r.global_orient[i], body_pose=r.body_pose[i],
                        transl=r.transl[i])
        joints = out.joints[:, :55].numpy()
        np.testing.assert_allclose(r.eyes[i], joints[:, list(EYE_JOINTS)], atol=2e-4)
        np.testing.assert_allclose(r.joints[i], joints, atol=2e-4)
    head = r.head_orientation
    eye = np.eye(3)
    np.testing.assert_allclose(np.einsum("nfji,nfjk->nfik", head, head),
                               np.broadcast_to(eye, head.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(head), 1.0, atol=1e-6)
    # Columns: right (along the eye line, left eye -> right eye), down, forward.
    line = r.eyes[:, :, 1] - r.eyes[:, :, 0]
    line /= np.linalg.norm(line, axis=-1, keepdims=True)
    assert (np.einsum("nfc,nfc->nf", head[..., 0], line) > 0.99).all()
    assert (head[..., 2, 1] < -0.8).all()  # an upright walker's "down" points at the floor
    assert (np.abs(head[..., 2, 2]) < 0.6).all()  # and it looks roughly level


def test_stopped_human_stands_still_in_its_rows(env: EgoCrowdEnv) -> None:
    sim = env.sim
    env.reset(seed=2)
    env.step(_actions(np.random.default_rng(3), N))
    before = sim.last_rollout
    sim.worlds[0].active[1] = False  # human 1 has stopped (as at its goal)
    env.step(_actions(np.random.default_rng(4), N))
    r = sim.last_rollout
    assert r.active.tolist() == [True, False]
    for name in ("markers", "joints", "eyes", "global_orient", "body_pose", "transl"):
        still = getattr(r, name)[1]
        np.testing.assert_array_equal(still, np.broadcast_to(getattr(before, name)[1, -1],
                                                             still.shape), err_msg=name)
    assert np.abs(r.markers[0, -1] - before.markers[0, -1]).max() > 1e-3  # human 0 moved
    np.testing.assert_array_equal(r.markers[:, -1], sim.markers[:, 1])
    np.testing.assert_array_equal(r.frames[1], r.frames[0])  # one clock per world


def test_worlds_keep_their_own_clock() -> None:
    from egosim.envs.locomotion import EgoLocomotionEnv

    sim = Simulation(EgoLocomotionEnv(overrides=overrides()).cfg, 2, 1)
    calls: list[FrameRollout] = []
    sim.add_step_hook(lambda s, r: calls.append(r))
    sim.reset_worlds([0, 1], [np.random.default_rng(0), np.random.default_rng(1)])
    assert sim.last_rollout.worlds.tolist() == [0, 1]
    rng = np.random.default_rng(0)
    sim.step([1], _actions(rng, 1).reshape(1, 1, 128))
    assert sim.last_rollout.worlds.tolist() == [1]
    sim.step([0, 1], _actions(rng, 2).reshape(2, 1, 128))
    r = sim.last_rollout
    assert len(calls) == 2
    np.testing.assert_array_equal(r.world(0).frames[0], np.arange(1, 19))
    np.testing.assert_array_equal(r.world(1).frames[0], np.arange(19, 37))
    np.testing.assert_array_equal(r.world(1).markers[0, -1], sim.markers[1, 1])
    # The seam's bodies are the prior's: vertices of its frames through the same skinning.
    verts = sim.vertices(r.world(1), [-1])
    assert verts.shape == (1, 1, 10475, 3)
    np.testing.assert_allclose(sim.current_vertices(1), verts[:, 0], atol=1e-5)
