"""Other humans as posed SMPL-X bodies: ``BodyProxy`` and ``cameras.other_humans: bodies``."""

from __future__ import annotations

import numpy as np
import pytest
from envs_support import overrides

from egosim.envs.crowd import EgoCrowdEnv
from egosim.envs.humans.body_proxy import INSTANCE_BASE, BodyProxy, sample_face_colors
from egosim.envs.scenes import class_id

SPEC = {"uuid": "sem", "modality": "semantic", "resolution": [64, 64], "hfov_deg": 90.0}


def test_body_proxy_follows_the_full_mesh() -> None:
    from egosim.envs import resources

    prior = resources.get_prior(None)
    proxy = BodyProxy(prior.body.faces)
    full_faces = prior.body.faces
    assert len(proxy.faces) < len(full_faces) // 4
    _, out = prior.reset(2, seed=1)
    verts = prior.vertices(out).numpy()  # (2, 2, V, 3)
    small = proxy.vertices(verts)
    assert small.shape[:2] == (2, 2) and small.shape[3] == 3
    assert small.shape[2] == proxy.faces.max() + 1
    lo, hi = verts.min(axis=2, keepdims=True), verts.max(axis=2, keepdims=True)
    assert ((small >= lo - 1e-6) & (small <= hi + 1e-6)).all()  # means of body vertices
    # Hands and feet only are visible to their wearer: a small, non-empty part.
    assert 0 < proxy.self_visible.sum() < 0.3 * len(proxy.faces)
    colours = proxy.face_colors(np.full((verts.shape[2], 3), 0.5))
    assert colours.shape == (len(proxy.faces), 3) and np.allclose(colours, 0.5)
    # As renderer meshes: one per body, its appearance colours, instance 1000 + i.
    albedo = sample_face_colors(proxy, 2, np.random.default_rng(0))
    assert albedo.shape == (2, len(proxy.faces), 3)
    meshes = proxy.meshes(verts[:, 0], albedo, semantic=7)
    assert [m.instance for m in meshes] == [INSTANCE_BASE, INSTANCE_BASE + 1]
    assert meshes[1].triangles.shape == (len(proxy.faces), 3, 3) and meshes[1].semantic == 7
    np.testing.assert_allclose(meshes[0].triangles, small[0, 0][proxy.faces])
    np.testing.assert_array_equal(meshes[0].albedo, albedo[0])
    with pytest.raises(ValueError, match="face_colors"):
        proxy.meshes(verts[:, 0], albedo[:1], semantic=7)


def _move(sim, who: int, of: int, dist: float) -> None:
    """Stand human ``who`` ``dist`` m straight ahead of human ``of``'s eyes (every piece of
    its state: markers, eyes, regressed body)."""
    eyes = sim.eyes[of]
    gaze = np.cross([0.0, 0.0, 1.0], eyes[1] - eyes[0])
    gaze /= np.linalg.norm(gaze)
    target = eyes.mean(0)[:2] + dist * gaze[:2]
    shift = np.r_[target - sim.pelvis(sim.markers[who, 1])[:2], 0.0]
    sim.markers[who] += shift
    sim.eyes[who] += shift
    sim.pose["transl"][who] += shift.astype(np.float32)
    sim.pose["joints"][who] += shift.astype(np.float32)


def test_head_cameras_show_other_humans_as_bodies() -> None:
    person = class_id("person")
    views = {}
    for mode in ("capsules", "bodies"):
        env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 2,
                                                 "cameras.specs": [SPEC],
                                                 "cameras.other_humans": mode}))
        obs, _ = env.reset(seed=0)
        assert obs["sem"].shape == (2, 64, 64)
        _move(env.sim, 1, 0, 1.6)
        views[mode] = env.sim.camera_images(0)["sem"][0] == person
        if mode == "bodies":
            assert env.sim.worlds[0].body_colors.shape[0] == 2
            _move(env.sim, 1, 0, -3.0)  # behind: the wearer sees at most its hands and feet
            alone = env.sim.camera_images(0)["sem"][0] == person
            obs, *_ = env.step(np.zeros(2 * 128, np.float32))
            assert obs["sem"].shape == (2, 64, 64)
        env.close()
    cap, body = views["capsules"], views["bodies"]
    assert body.sum() > 60 and cap.sum() > 60, (body.sum(), cap.sum())
    iou = (cap & body).sum() / (cap | body).sum()
    assert iou < 0.8, iou  # the body's silhouette, not the capsule's
    # A body is not a column: its width changes from head to shoulders to legs.
    rows = body.any(axis=1)
    widths = body.sum(axis=1)[rows]
    assert widths.max() > 1.5 * np.median(widths[: max(1, len(widths) // 8)])
    assert alone.mean() < 0.05


def test_other_humans_value_is_checked() -> None:
    with pytest.raises(ValueError, match="other_humans"):
        EgoCrowdEnv(overrides=overrides(**{"cameras.other_humans": "boxes"}))
