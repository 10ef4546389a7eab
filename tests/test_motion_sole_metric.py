"""Body-surface foot measure: height of the lowest foot-sole vertex at contact.

A procedural SMPL-X body stands upright (``STANDING_ORIENT``, rest pose); it is shifted so
that its lowest foot vertex is at a chosen height, and the sole measure of
:mod:`egosim.envs.motion.metrics` must return that height, threshold contact at 5 cm and
report the horizontal speed of a sliding foot.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from egosim.envs.humans import BODY_PART_NAMES, BodyModel, body_part_labels
from egosim.envs.motion.body_layer import BodyLayer
from egosim.envs.motion.metrics import (
    CONTACT_HEIGHT,
    FPS,
    foot_vertex_ids,
    rollout_sole_stats,
    sole_stats,
    sole_track,
)
from egosim.envs.motion.motion_clip import STANDING_ORIENT
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix


@pytest.fixture(scope="module")
def body():
    return BodyLayer(with_vertices=True)


@pytest.fixture(scope="module")
def standing(body):
    """One upright rest-pose body, ``T = 4`` frames: ``rot (1, 4, 22, 3, 3)``, betas,
    gender, the transl that puts its lowest foot vertex at z = 0, and its vertices there."""
    t = 4
    pose = torch.zeros(1, t, 22, 3)
    pose[:, :, 0] = torch.as_tensor(STANDING_ORIENT, dtype=torch.float32)
    rot = axis_angle_to_matrix(pose)
    betas = torch.zeros(1, 10)
    gender = torch.zeros(1, dtype=torch.long)
    v = body.vertices_sequence(rot, betas, gender, torch.zeros(1, t, 3))
    ids = torch.as_tensor(foot_vertex_ids(body))
    transl = torch.zeros(1, t, 3)
    transl[..., 2] = -v[0, 0, ids, 2].min()
    return rot, betas, gender, transl, v + transl[:, :, None]


def _planted(standing, heights, dx=0.0):
    """``H = len(heights)`` copies of the standing body lifted to ``heights`` (m), sliding
    ``dx`` m per frame along x."""
    rot, betas, gender, transl, _ = standing
    h, t = len(heights), rot.shape[1]
    tr = transl.expand(h, t, 3).clone()
    tr[..., 2] += torch.as_tensor(heights, dtype=torch.float32)[:, None]
    tr[..., 0] += dx * torch.arange(t, dtype=torch.float32)
    return rot.expand(h, -1, -1, -1, -1), betas.expand(h, -1), gender.expand(h), tr


def test_foot_vertices_are_the_foot_parts(body):
    ids = foot_vertex_ids(body)
    # the same model files as the body layer (procedural unless $EGOSIM_SMPLX_DIR is set)
    labels = body_part_labels(BodyModel("neutral").smplx.lbs_weights.detach().numpy())
    feet = {BODY_PART_NAMES.index("left_foot"), BODY_PART_NAMES.index("right_foot")}
    assert len(ids) > 100
    assert set(labels[ids].tolist()) <= feet
    assert np.isin(labels, list(feet)).sum() == len(ids)


def test_standing_body_soles_on_the_floor(body, standing):
    *_, v = standing
    ids = foot_vertex_ids(body)
    # the feet are the lowest part of a standing body, planted at z = 0
    assert float(v[0, :, ids, 2].min()) == pytest.approx(0.0, abs=1e-6)
    assert float(v[0, 0, :, 2].min()) == pytest.approx(float(v[0, 0, ids, 2].min()), abs=1e-6)


def test_sole_heights_of_planted_and_raised_bodies(body, standing):
    heights, steps = sole_track(body, *_planted(standing, [0.0, 0.03, 0.10]))
    assert heights.shape == (3, 4) and steps.shape == (3, 3)
    np.testing.assert_allclose(heights[0].numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(heights[1].numpy(), 0.03, atol=1e-6)
    np.testing.assert_allclose(heights[2].numpy(), 0.10, atol=1e-6)
    np.testing.assert_allclose(steps.numpy(), 0.0, atol=1e-6)  # standing still


def test_contact_thresholding(body, standing):
    heights, steps = sole_track(body, *_planted(standing, [0.0, 0.03, 0.10]))
    s = sole_stats(heights, steps)  # contact below 5 cm: the first two bodies
    assert CONTACT_HEIGHT == 0.05
    assert s["sole_contact_fraction"] == pytest.approx(2 / 3)
    assert s["sole_height_contact"] == pytest.approx(0.015, abs=1e-6)
    assert s["sole_min_height"] == pytest.approx(0.0, abs=1e-6)
    low = sole_stats(heights, steps, contact_height=0.02)  # only the planted body
    assert low["sole_contact_fraction"] == pytest.approx(1 / 3)
    assert low["sole_height_contact"] == pytest.approx(0.0, abs=1e-6)
    none = sole_stats(heights[2:], steps[2:])  # 10 cm up: never in contact
    assert none["sole_contact_fraction"] == 0.0
    assert math.isnan(none["sole_height_contact"]) and math.isnan(none["sole_skating"])


def test_sliding_foot_skates_and_frame_transform(body, standing):
    dx = 0.01  # m per frame
    args = _planted(standing, [0.0, 0.03], dx=dx)
    heights, steps = sole_track(body, *args)
    np.testing.assert_allclose(steps.numpy(), dx, atol=1e-6)
    assert sole_stats(heights, steps)["sole_skating"] == pytest.approx(dx * FPS, rel=1e-4)
    # parameters in a yawed frame placed 2 cm up: heights shift, horizontal speed is kept
    c, s = math.cos(0.7), math.sin(0.7)
    yaw = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    origin = torch.tensor([1.0, -2.0, 0.02]).expand(2, 3)
    h2, s2 = sole_track(body, *args, frame_rot=yaw, frame_origin=origin)
    np.testing.assert_allclose(h2.numpy(), heights.numpy() + 0.02, atol=1e-6)
    np.testing.assert_allclose(s2.numpy(), steps.numpy(), atol=1e-6)


def test_chunking_matches_all_vertices(body):
    """Small chunks (humans x frames) give the same track as posing everything at once."""
    g = torch.Generator().manual_seed(0)
    h, t = 3, 7
    pose = 0.3 * torch.randn(h, t, 22, 3, generator=g)
    pose[:, :, 0] += torch.as_tensor(STANDING_ORIENT, dtype=torch.float32)
    rot = axis_angle_to_matrix(pose)
    betas = torch.randn(h, 10, generator=g)
    gender = torch.tensor([0, 1, 2])
    transl = 0.05 * torch.randn(h, t, 3, generator=g)
    v = body.vertices_sequence(rot, betas, gender, transl)
    feet = v[:, :, torch.as_tensor(foot_vertex_ids(body))]
    ref_h, idx = feet[..., 2].min(-1)
    ar = torch.arange(h)[:, None]
    tt = torch.arange(t - 1)[None]
    ref_s = (feet[ar, tt + 1, idx[:, :-1]] - feet[ar, tt, idx[:, :-1]])[..., :2].norm(dim=-1)
    for max_bodies in (1, 4, 8, 64):
        hh, ss = sole_track(body, rot, betas, gender, transl, max_bodies=max_bodies)
        torch.testing.assert_close(hh, ref_h, rtol=0, atol=1e-6)
        torch.testing.assert_close(ss, ref_s, rtol=0, atol=1e-6)


def test_rollout_sole_stats_use_the_regressed_bodies():
    """On a short rollout of the shipped prior: the same figures as from
    ``MotionPrior.vertices``."""
    from egosim.envs.motion.prior import MotionPrior

    prior = MotionPrior.load()
    out = prior.rollout(2, batch_size=2, seed=7)
    v = prior.vertices(out)
    feet = v[:, :, torch.as_tensor(foot_vertex_ids(prior.body))]
    ref_h, idx = feet[..., 2].min(-1)
    b, t = ref_h.shape
    ar, tt = torch.arange(b)[:, None], torch.arange(t - 1)[None]
    ref_s = (feet[ar, tt + 1, idx[:, :-1]] - feet[ar, tt, idx[:, :-1]])[..., :2].norm(dim=-1)
    got = rollout_sole_stats(prior, out)
    want = sole_stats(ref_h, ref_s)
    assert got.keys() == want.keys()
    for k, val in want.items():
        assert got[k] == pytest.approx(val, abs=1e-6), k


def test_model_card_rows(tmp_path):
    from egosim.config import load_config
    from egosim.envs.motion.config import TrainPriorConfig
    from egosim.envs.motion.model_card import write_model_cards
    from egosim.envs.motion.prior import checkpoint_dir

    metrics = json.loads((checkpoint_dir() / "metrics.json").read_text())
    metrics.update({"rollout_sole_height_contact": 0.0012, "heldout_sole_height_contact": 0.0034,
                    "rollout_sole_skating": 0.25, "heldout_sole_skating": 0.5})
    write_model_cards(tmp_path, load_config("train_prior", schema=TrainPriorConfig), metrics,
                      {"train_primitives": 1, "held_out_primitives": 1}, "test data")
    card = (tmp_path / "cvae.md").read_text()
    assert ("| foot sole height at contact (lowest foot vertex), rollout / held-out data (m) "
            "| 0.0012 / 0.0034 |") in card
    assert "| foot sole skating (lowest foot vertex), rollout / held-out data (m/s) | " \
           "0.2500 / 0.5000 |" in card
    assert "| foot height at contact, rollout / data (m) |" in card  # the marker row stays
