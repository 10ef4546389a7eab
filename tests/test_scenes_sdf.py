"""Signed distance field: accuracy against analytic and exact distances, lookup rules."""

from __future__ import annotations

import igl
import numpy as np
import pytest

from egosim.envs.scenes import Scene, load
from egosim.envs.scenes.sdf import choose_resolution
from egosim.sensors.shapes import box_triangles

LO = np.array([-1.0, -0.5, 0.0])
HI = np.array([1.0, 0.5, 1.0])


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path))


def box_sdf(p: np.ndarray) -> np.ndarray:
    """Analytic signed distance to the box [LO, HI]."""
    c, h = (LO + HI) / 2, (HI - LO) / 2
    q = np.abs(p - c) - h
    return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)


@pytest.mark.parametrize("res", [0.1, 0.05])
def test_single_box_matches_analytic(res):
    s = Scene(box_triangles(LO, HI), sdf_resolution=res)
    grid = s.sdf_grid
    assert grid.resolution == pytest.approx(res)
    rng = np.random.default_rng(0)
    p = rng.uniform(grid.box[0], grid.box[1], (50_000, 3))
    got, want = s.sdf(p), box_sdf(p)
    assert got.dtype == np.float32 and got.shape == (50_000,)
    # Trilinear interpolation of exact node values: error below half a cell diagonal.
    assert np.abs(got - want).max() <= 0.5 * np.sqrt(3) * res
    far = np.abs(want) > res
    assert np.array_equal(np.sign(got[far]), np.sign(want[far]))
    assert s.sdf(np.array([0.0, 0.0, 0.5])) == pytest.approx(-0.5, abs=0.5 * res)
    # Nodes within the exact band (0.3 m) of the surface are exact.
    idx = rng.integers(0, grid.values.shape, (2000, 3))
    nodes = grid.origin + idx * grid.resolution
    band = np.abs(box_sdf(nodes)) < 0.3
    assert band.sum() > 200
    assert np.allclose(grid.values[tuple(idx[band].T)], box_sdf(nodes[band]), atol=1e-5)


def test_outside_grid_clamps_and_adds_box_distance():
    s = Scene(box_triangles(LO, HI))
    box = s.sdf_grid.box
    p = np.array([[box[1, 0] + 3.0, 0.0, 0.5], [0.0, box[0, 1] - 2.0, 0.5]])
    inner = np.array([[box[1, 0], 0.0, 0.5], [0.0, box[0, 1], 0.5]])
    assert np.allclose(s.sdf(p), s.sdf(inner) + np.array([3.0, 2.0]), atol=1e-5)
    rng = np.random.default_rng(1)
    q = rng.uniform(-6, 6, (5000, 3))
    out = np.any((q < box[0]) | (q > box[1]), axis=1)
    # An upper bound of the true distance (triangle inequality), never below it.
    assert np.all(s.sdf(q[out]) >= box_sdf(q[out]) - 0.5 * np.sqrt(3) * 0.1)


def test_sdf_shapes_and_errors():
    s = Scene(box_triangles(LO, HI))
    assert s.sdf(np.zeros((2, 4, 3))).shape == (2, 4)
    assert s.sdf(np.zeros(3)).shape == ()
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        s.sdf(np.zeros((5, 2)))


def test_union_of_boxes_sign_and_exact_near_surfaces():
    s = load("procedural:room", seed=2)
    grid = s.sdf_grid
    v, f = s._weld()
    rng = np.random.default_rng(2)
    idx = rng.integers(0, grid.values.shape, (4000, 3))
    nodes = grid.origin + idx * grid.resolution
    exact = igl.signed_distance(
        nodes, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
    )[0]
    got = grid.values[tuple(idx.T)]
    near = np.abs(exact) < 0.3
    assert np.abs(got[near] - exact[near]).max() < 2e-3  # exact band (sign +-1 mm)
    assert np.abs(got[~near] - exact[~near]).max() < 2 * grid.resolution * 2  # interpolated
    sure = np.abs(exact) > 0.01
    assert np.array_equal(np.sign(got[sure]), np.sign(exact[sure]))
    # Inside a wall, above the floor, below the ceiling.
    r = s.rooms[0]
    assert s.sdf(np.array([r.lo[0], 0.5 * (r.lo[1] + r.hi[1]), 1.0])) < 0


def test_voxel_cap_coarsens_resolution():
    bounds = np.array([[-100.0, -100, 0], [100, 100, 30]])
    res = choose_resolution(bounds, 0.1, 1 << 20, 0.3)
    assert res > 0.1
    n = np.prod(np.ceil((bounds[1] - bounds[0] + 0.6) / res) + 1)
    assert n <= 1 << 20
    s = Scene(box_triangles(LO, HI), sdf_max_voxels=2000)
    assert s.sdf_grid.values.size <= 2000 * 1.5  # rounding up to whole coarse cells
    assert s.sdf_grid.resolution > 0.1
