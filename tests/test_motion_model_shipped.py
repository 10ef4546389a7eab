"""The shipped motion-prior checkpoints: they load, and 100-primitive rollouts stay human.

Bounds are the model card's: no NaN, pelvis height within the training data's range, the lowest
foot marker at contact within 2 cm of the training data's own contact height (markers sit on
the skin, above the sole), foot skating at most 1.5x the training data's.
"""

from __future__ import annotations

import pytest
import torch

from egosim.envs.motion.metrics import foot_stats, pelvis_heights
from egosim.envs.motion.prior import CVAE_FILE, REGRESSOR_FILE, MotionPrior, checkpoint_dir


def test_shipped_checkpoints_exist_and_are_small():
    for name in (CVAE_FILE, REGRESSOR_FILE, "cvae.md", "regressor.md", "metrics.json"):
        path = checkpoint_dir() / name
        assert path.is_file(), f"missing shipped file {path}"
        assert path.stat().st_size <= 10 * 1024 * 1024


@pytest.fixture(scope="module")
def long_rollout():
    prior = MotionPrior.load()
    return prior, prior.rollout(100, batch_size=4, seed=123)


def test_load_and_rollout_100_primitives(long_rollout):
    prior, out = long_rollout
    assert out.markers.shape == (4, 2 + 18 * 100, 67, 3)
    assert torch.isfinite(out.markers).all() and torch.isfinite(out.transl).all()
    ref = prior.data_stats
    ph = pelvis_heights(out.markers, prior.marker_joints)
    inside = ((ph >= ref["data_pelvis_min"]) & (ph <= ref["data_pelvis_max"])).double().mean()
    assert inside > 0.99, f"pelvis height leaves the data range on {1 - float(inside):.1%} frames"


def test_rollout_feet(long_rollout):
    prior, out = long_rollout
    s = foot_stats(out.markers)
    # foot markers sit on the shoe, above the sole: compare with the data's planted height
    assert abs(s["foot_height_contact"] - prior.data_stats["data_foot_height_contact"]) <= 0.02
    assert s["skating"] <= 1.5 * prior.data_stats["data_skating"], s
