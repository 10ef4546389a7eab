"""Human-human collision counting on constructed cases (egosim.envs.collisions)."""

from __future__ import annotations

import numpy as np
import pytest

from egosim.envs.collisions import colliding_pairs, count_collisions

R = 0.25  # cylinder radius (m): a pair collides strictly below 0.5 m
F = 18  # frames per step


def still(*xy: tuple[float, float], frames: int = F) -> np.ndarray:
    """``(N, frames, 2)`` humans standing at the given floor positions (m)."""
    return np.repeat(np.asarray(xy, np.float64)[:, None], frames, axis=1)


def test_overlapping_pair_counts_once():
    assert count_collisions(still((0.0, 0.0), (0.3, 0.0)), None, R) == 1


def test_apart_counts_zero():
    assert count_collisions(still((0.0, 0.0), (2.0, 1.0)), None, R) == 0


@pytest.mark.parametrize(("gap", "expected"), [
    (2 * R, 0),  # touching exactly: not a collision
    (np.nextafter(2 * R, 0.0), 1),  # the closest float below the threshold collides
    (2 * R - 1e-6, 1),
    (2 * R + 1e-6, 0),  # just outside
])
def test_touching_is_not_colliding(gap, expected):
    pos = still((0.0, 0.0), (gap, 0.0))  # from the origin: the distance is exactly ``gap``
    assert np.linalg.norm(pos[1, 0] - pos[0, 0]) == gap
    assert count_collisions(pos, None, R) == expected


def test_three_humans_two_overlapping_pairs():
    # a-b 0.4 m and b-c 0.4 m apart collide, a-c 0.8 m apart does not
    pos = still((0.0, 0.0), (0.4, 0.0), (0.8, 0.0))
    assert count_collisions(pos, None, R) == 2
    pairs = colliding_pairs(pos, None, R)
    assert pairs.tolist() == [[False, True, False], [True, False, True], [False, True, False]]


def test_a_pair_overlapping_in_one_frame_counts_once_per_step():
    t = np.linspace(0.0, 1.0, F)
    # b crosses a's position in frame 9 only: 1 m away elsewhere
    a = np.zeros((F, 2))
    b = np.stack([np.full(F, 1.0), np.zeros(F)], -1)
    b[9] = (0.1, 0.0)
    assert count_collisions(np.stack([a, b]), None, R) == 1
    # b walks straight through a: closer than 0.5 m in several frames, still one
    through = np.stack([-2.0 + 4.0 * t, np.zeros(F)], -1)
    assert (np.linalg.norm(through, axis=-1) < 2 * R).sum() > 1
    assert count_collisions(np.stack([a, through]), None, R) == 1
    # frames are compared at the same time: paths that cross at different times do not collide
    late = np.stack([np.zeros(F), 2.0 - 4.0 * t], -1)  # passes (0, 0) mid-step
    early = np.stack([-2.0 + 4.0 * t, np.full(F, 3.0)], -1)
    assert count_collisions(np.stack([late, early]), None, R) == 0


def test_inactive_humans_are_ignored_without_a_rest_position():
    pos = still((0.0, 0.0), (0.3, 0.0), (0.0, 0.3))  # every pair overlaps
    assert count_collisions(pos, None, R) == 3
    assert count_collisions(pos, np.array([True, True, False]), R) == 1
    assert count_collisions(pos, np.array([True, False, False]), R) == 0


def test_inactive_humans_stand_still_at_their_rest_position():
    # human 1 is finished: its decoded motion (on top of human 0) is not executed
    pos = still((0.0, 0.0), (0.1, 0.0))
    active = np.array([True, False])
    far = np.array([[0.0, 0.0], [3.0, 0.0]])
    assert count_collisions(pos, active, R, rest=far) == 0
    # ... but where it stands it is an obstacle the active human can walk into
    near = np.array([[0.0, 0.0], [0.2, 0.0]])
    assert count_collisions(still((0.0, 0.0), (5.0, 5.0)), active, R, rest=near) == 1
    # rest positions of active humans are not used
    assert count_collisions(pos, np.array([True, True]), R, rest=far) == 1


def test_pelvis_height_is_ignored():
    pos = np.zeros((2, F, 3))
    pos[1, :, 0] = 0.3
    pos[1, :, 2] = 5.0  # 5 m above: still one collision on the floor plane
    assert count_collisions(pos, None, R) == 1
    assert count_collisions(pos, np.array([True, False]), R, rest=pos[:, -1]) == 1


def test_fewer_than_two_humans_and_self_pairs():
    assert count_collisions(still((0.0, 0.0)), None, R) == 0
    assert count_collisions(np.zeros((0, F, 2)), None, R) == 0
    assert not colliding_pairs(still((0.0, 0.0), (0.0, 0.0)), None, R).diagonal().any()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"positions": np.zeros((2, 2))}, "positions"),
    ({"positions": np.zeros((2, F, 4))}, "positions"),
    ({"positions": np.zeros((2, 0, 2))}, "positions"),
    ({"active": np.ones(3, bool)}, "active"),
    ({"radius": -0.1}, "radius"),
    ({"rest": np.zeros((3, 2))}, "rest"),
    ({"rest": np.zeros(2)}, "rest"),
])
def test_bad_input_names_the_argument(kwargs, field):
    args = {"positions": np.zeros((2, F, 2)), "active": None, "radius": R, **kwargs}
    with pytest.raises(ValueError, match=field):
        count_collisions(**args)
