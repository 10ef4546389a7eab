"""Walk map derivation, paths and start/goal sampling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from egosim.envs.scenes import Scene, load
from egosim.envs.scenes.procedural import WALL_THICKNESS
from egosim.sensors.shapes import box_triangles


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path))


def _boxes(*boxes, **kw) -> Scene:
    tris = np.concatenate([box_triangles(np.array(lo, float), np.array(hi, float))
                           for lo, hi in boxes])
    return Scene(tris, **kw)


SLAB = ((-3, -3, -0.1), (3, 3, 0))


@pytest.fixture(scope="module")
def test_scene() -> Scene:
    """6 m x 6 m slab with: a table (0.75 m), a high shelf board at 2.0 m (clearance ok),
    a low beam at 1.5 m, a solid pillar, and a closed ceiling slab over it all."""
    return _boxes(
        SLAB,
        ((-2.0, -2.0, 0.0), (-1.0, -1.0, 0.75)),  # table block
        ((1.0, 1.0, 2.0), (2.0, 2.0, 2.05)),  # board above head height
        ((1.0, -2.0, 1.5), (2.0, -1.0, 1.55)),  # beam below head height
        ((-2.0, 1.0, 0.0), (-1.0, 2.0, 2.4)),  # pillar up to the ceiling
        ((-3, -3, 2.4), (3, 3, 2.5)),  # ceiling
    )


def _cell(scene: Scene, x: float, y: float) -> tuple[int, int]:
    r, c = scene.world_to_grid(np.array([x, y]))
    return int(r), int(c)


def test_floor_clearance_and_inside_solids(test_scene):
    s = test_scene
    floor = s.walk_map.floor
    assert floor[_cell(s, 0.0, 0.0)]  # open floor under the ceiling (2.4 m clearance)
    assert not floor[_cell(s, -1.5, -1.5)]  # under/inside the table
    assert floor[_cell(s, 1.5, 1.5)]  # board at 2.0 m leaves 2.0 m >= 1.8 m
    assert not floor[_cell(s, 1.5, -1.5)]  # beam at 1.5 m
    assert not floor[_cell(s, -1.5, 1.5)]  # inside the pillar
    assert s.walk_map.floor_height[_cell(s, 0.0, 0.0)] == pytest.approx(0.0, abs=1e-6)


def test_erosion_by_body_radius(test_scene):
    s = test_scene
    d = s.walk_map.obstacle_distance
    res = s.grid_resolution
    rows, cols = np.nonzero(s.walkable)
    pts = s.grid_to_world(np.stack([rows, cols], 1))[:, :2]
    # Distance from every walkable cell centre to the table's footprint >= body radius.
    lo, hi = np.array([-2.0, -2.0]), np.array([-1.0, -1.0])
    gap = np.linalg.norm(np.maximum(np.maximum(lo - pts, pts - hi), 0), axis=1)
    assert gap.min() >= s.body_radius - res / 2
    assert s.is_walkable(np.array([-0.5, -1.5]))  # 0.5 m from the table
    assert not s.is_walkable(np.array([-0.85, -1.5]))  # 0.15 m from the table
    assert not s.is_walkable(np.array([2.9, 0.0]))  # 0.1 m from the slab edge
    assert np.all(d[s.walkable] >= s.body_radius)


def test_body_parameters_change_the_map():
    base = _boxes(SLAB, ((1.0, -2.0, 1.5), (2.0, -1.0, 1.55)))
    short = _boxes(SLAB, ((1.0, -2.0, 1.5), (2.0, -1.0, 1.55)), body_height=1.4)
    thin = _boxes(SLAB, ((1.0, -2.0, 1.5), (2.0, -1.0, 1.55)), body_radius=0.1)
    assert not base.is_walkable(np.array([1.5, -1.5]))
    assert short.is_walkable(np.array([1.5, -1.5]))  # a 1.4 m body fits under the beam
    assert thin.walkable.sum() > base.walkable.sum()


def test_open_mesh_local_rule():
    # A single-sided ground quad (two triangles, normal +z), with a floating open roof.
    ground = box_triangles(np.array([-3.0, -3, -1]), np.array([3.0, 3, 0]))[2:4]
    roof = box_triangles(np.array([-1.0, -1, 1.0]), np.array([1.0, 1, 1.2]))[0:2]  # faces down
    s = Scene(np.concatenate([ground, roof]))
    assert not s.is_closed
    assert s.walk_map.floor[_cell(s, 2.0, 2.0)]
    assert not s.walk_map.floor[_cell(s, 0.0, 0.0)]  # 1.0 m clearance under the roof


def test_components_label_separated_regions():
    wall = ((-0.05, -3, 0), (0.05, 3, 2.5))
    s = _boxes(SLAB, wall)
    assert s.walk_map.num_components == 2
    a = s.components[_cell(s, -1.5, 0)]
    b = s.components[_cell(s, 1.5, 0)]
    assert a > 0 and b > 0 and a != b
    with pytest.raises(ValueError, match="different walkable regions"):
        s.plan_path(np.array([-1.5, 0.0]), np.array([1.5, 0.0]))
    with pytest.raises(ValueError, match="not on a walkable cell"):
        s.plan_path(np.array([0.0, 0.0]), np.array([1.5, 0.0]))
    with pytest.raises(ValueError, match="could not find a start/goal pair"):
        s.sample_start_goal(0, min_dist=6.5, max_dist=7.5)  # halves: diagonal ~6 m
    start, goal = s.sample_start_goal(0, min_dist=6.5, max_dist=7.5, same_component=False)
    assert 6.5 <= np.linalg.norm(goal[:2] - start[:2]) <= 7.5
    assert s.components[tuple(s.world_to_grid(start))] != s.components[
        tuple(s.world_to_grid(goal))
    ]


def test_grid_helpers_round_trip(test_scene):
    s = test_scene
    h, w = s.walkable.shape
    assert s.walkable.dtype == bool
    assert s.grid_resolution == 0.05
    cells = np.array([[0, 0], [h - 1, w - 1], [10, 20]])
    pts = s.grid_to_world(cells)
    assert pts.shape == (3, 3)
    assert np.array_equal(s.world_to_grid(pts), cells)
    assert np.allclose(pts[0, :2], s.grid_origin)
    assert s.is_walkable(np.zeros((4, 5, 2))).shape == (4, 5)
    assert not s.is_walkable(np.array([100.0, 0.0, 0.0]))  # off the grid
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\) or \(\.\.\., 3\)"):
        s.is_walkable(np.zeros((3, 4)))


@pytest.fixture(scope="module")
def apartment():
    with pytest.MonkeyPatch.context() as mp:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            mp.setenv("EGOSIM_CACHE_DIR", tmp)
            s = load("procedural:apartment", seed=3, num_rooms=5)
            s.sdf_grid  # noqa: B018 - build inside the temporary cache
            yield s


def _room_of(scene, p):
    for i, r in enumerate(scene.rooms):
        lo, hi = r.interior
        if np.all(p[:2] >= lo) and np.all(p[:2] <= hi):
            return i
    return -1


def _in_doorway(scene, p):
    for d in scene.doors:
        along, across = (p[0], p[1]) if d.axis == 0 else (p[1], p[0])
        if abs(along - d.pos) <= d.width / 2 and abs(across - d.const) <= WALL_THICKNESS / 2:
            return True
    return False


def test_paths_avoid_furniture_and_cross_doorways(apartment):
    s = apartment
    rng = np.random.default_rng(0)
    crossed = 0
    for _ in range(12):
        a, b = s.sample_start_goal(rng, min_dist=3.0, max_dist=10.0)
        path = s.plan_path(a, b)
        assert path.dtype == np.float64 and path.shape[1] == 3
        assert np.allclose(path[0, :2], a[:2]) and np.allclose(path[-1, :2], b[:2])
        assert np.all(s.is_walkable(path))
        assert np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1).max() <= 0.1 + 1e-9
        assert np.allclose(path[:, 2], 0.0, atol=1e-5)
        torso = path + np.array([0.0, 0.0, 1.0])
        assert s.sdf(torso).min() > s.body_radius - 0.1  # clear of walls and furniture
        rooms = [_room_of(s, p) for p in path]
        for p, r in zip(path, rooms, strict=True):
            assert r >= 0 or _in_doorway(s, p)  # outside rooms only through doorways
        crossed += len(set(rooms) - {-1}) > 1
    assert crossed >= 3


def test_path_prefers_clearance(apartment):
    s = apartment
    rng = np.random.default_rng(1)
    a, b = s.sample_start_goal(rng, min_dist=4.0, max_dist=8.0)
    raw = s.plan_path(a, b, smooth=False)
    smooth = s.plan_path(a, b)
    length = lambda p: np.linalg.norm(np.diff(p, axis=0), axis=1).sum()  # noqa: E731
    assert length(smooth) <= length(raw) + 1e-6
    assert len(smooth) >= 2


@pytest.mark.parametrize("metric", ["euclidean", "geodesic"])
def test_sample_start_goal_constraints(apartment, metric):
    s = apartment
    rng = np.random.default_rng(5)
    for _ in range(10):
        start, goal = s.sample_start_goal(rng, min_dist=2.0, max_dist=6.0, metric=metric)
        assert start.shape == (3,) and goal.shape == (3,)
        assert s.is_walkable(start) and s.is_walkable(goal)
        assert abs(start[2]) < 1e-5 and abs(goal[2]) < 1e-5
        ca, cb = s.world_to_grid(np.stack([start, goal]))
        assert s.components[tuple(ca)] == s.components[tuple(cb)]
        straight = np.linalg.norm(goal[:2] - start[:2])
        if metric == "euclidean":
            assert 2.0 <= straight <= 6.0
        else:
            assert straight <= 6.0 + 1e-9
            assert np.linalg.norm(np.diff(s.plan_path(start, goal, smooth=False)[:, :2], axis=0),
                                  axis=1).sum() >= 2.0 - 0.1


def test_sample_start_goal_is_seeded(apartment):
    s = apartment
    a = s.sample_start_goal(7, min_dist=1.0, max_dist=5.0)
    b = s.sample_start_goal(np.random.default_rng(7), min_dist=1.0, max_dist=5.0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_dist": 5.0, "max_dist": 1.0}, "min_dist <= max_dist"),
        ({"metric": "manhattan"}, "metric must be 'euclidean' or 'geodesic'"),
        ({"min_dist": 200.0, "max_dist": 300.0}, "could not find a start/goal pair"),
    ],
)
def test_sample_start_goal_errors(apartment, kwargs, match):
    with pytest.raises(ValueError, match=match):
        apartment.sample_start_goal(0, **kwargs)


def test_path_within_one_cell_and_pickling(apartment):
    s = apartment
    start, _ = s.sample_start_goal(2, min_dist=1.0, max_dist=3.0)
    path = s.plan_path(start, start + np.array([0.01, 0.0, 0.0]))
    assert path.shape[0] >= 2 and np.allclose(path[-1, :2], start[:2] + [0.01, 0.0])
    s.raycaster  # noqa: B018 - native helpers are dropped and rebuilt after pickling
    s.inside(np.zeros((1, 3)))
    clone = pickle.loads(pickle.dumps(s))
    assert clone.content_hash == s.content_hash
    assert np.array_equal(clone.walkable, s.walkable)
    p = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.5]])
    assert np.array_equal(clone.sdf(p), s.sdf(p))
    assert np.array_equal(clone.raycaster.cast(p, np.array([[0, 0, -1.0]] * 2)).t,
                          s.raycaster.cast(p, np.array([[0, 0, -1.0]] * 2)).t)
