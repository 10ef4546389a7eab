"""The Embree ray-casting kernel against analytic answers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from egosim.sensors.raycast import RayCaster


def _quad(z: float, size: float = 1.0) -> np.ndarray:
    """Two triangles of the square [-size, size]^2 at height z, normal +z."""
    a, b, c, d = (-size, -size, z), (size, -size, z), (size, size, z), (-size, size, z)
    return np.array([[a, b, c], [a, c, d]], dtype=np.float32)


def test_distances_faces_and_normals_match_geometry() -> None:
    tris = np.concatenate([_quad(0.0), _quad(2.0)])
    caster = RayCaster(tris)
    rng = np.random.default_rng(0)
    xy = rng.uniform(-0.9, 0.9, (5000, 2))
    origins = np.column_stack([xy, np.full(len(xy), 1.0)])
    down = caster.cast(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)))
    up = caster.cast(origins, np.tile([0.0, 0.0, 5.0], (len(xy), 1)))  # not unit: normalised
    np.testing.assert_allclose(down.t, 1.0, atol=1e-5)
    np.testing.assert_allclose(up.t, 1.0, atol=1e-5)
    assert set(np.unique(down.face)) <= {0, 1} and set(np.unique(up.face)) <= {2, 3}
    np.testing.assert_allclose(down.normal, np.tile([0, 0, 1.0], (len(xy), 1)), atol=1e-6)
    # Hit points rebuilt from barycentric coordinates land where the rays say.
    f = tris[down.face]
    w = np.column_stack([1 - down.uv.sum(1), down.uv])
    points = np.einsum("nk,nkd->nd", w, f)
    np.testing.assert_allclose(points[:, :2], xy, atol=1e-5)


def test_misses_range_limit_and_threads_agree() -> None:
    caster = RayCaster(_quad(0.0), num_threads=2)
    origins = np.array([[0.0, 0.0, 1.0], [5.0, 5.0, 1.0], [0.0, 0.0, 3.0]])
    hits = caster.cast(origins, np.tile([0.0, 0.0, -1.0], (3, 1)), tmax=2.0)
    assert hits.hit.tolist() == [True, False, False]
    assert np.isinf(hits.t[1:]).all() and (hits.face[1:] == -1).all()
    rng = np.random.default_rng(1)
    o = np.column_stack([rng.uniform(-1, 1, (20000, 2)), np.ones(20000)])
    d = np.column_stack([rng.normal(0, 0.3, (20000, 2)), -np.ones(20000)])
    one = RayCaster(_quad(0.0), num_threads=1).cast(o, d)
    two = caster.cast(o, d)
    np.testing.assert_array_equal(one.face, two.face)
    np.testing.assert_array_equal(one.t, two.t)


def test_empty_scene_pickle_and_bad_input() -> None:
    empty = RayCaster(np.zeros((0, 3, 3)))
    assert not empty.cast(np.zeros((4, 3)), np.tile([0, 0, 1.0], (4, 1))).hit.any()
    clone = pickle.loads(pickle.dumps(RayCaster(_quad(0.0))))
    assert clone.cast(np.array([[0, 0, 1.0]]), np.array([[0, 0, -1.0]])).hit.all()
    with pytest.raises(ValueError, match="shape"):
        RayCaster(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        RayCaster(np.full((1, 3, 3), np.nan))
    with pytest.raises(ValueError, match="non-zero"):
        RayCaster(_quad(0.0)).cast(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="differ"):
        RayCaster(_quad(0.0)).cast(np.zeros((2, 3)), np.ones((3, 3)))


def test_per_ray_range_array() -> None:
    caster = RayCaster(_quad(0.0))
    origins = np.array([[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.2, 0.0, 3.0]])
    tmax = np.array([2.0, 0.5, 5.0], dtype=np.float32)  # contiguous float32, per ray
    hits = caster.cast(origins, np.tile([0.0, 0.0, -1.0], (3, 1)), tmax=tmax)
    assert hits.hit.tolist() == [True, False, True]
    np.testing.assert_allclose(hits.t[[0, 2]], [1.0, 3.0], atol=1e-5)
    t, prim, _, _, _ = caster.intersect_raw(
        origins.astype(np.float32), np.tile(np.float32([0, 0, -1]), (3, 1)), tmax.copy())
    assert prim.tolist() != [-1, -1, -1] and prim[1] == -1
    np.testing.assert_allclose(t[[0, 2]], [1.0, 3.0], atol=1e-5)
