"""On-disk cache of walk maps and SDF grids, keyed by content hash and parameters."""

from __future__ import annotations

import time

import numpy as np
import pytest
import trimesh

import egosim.envs.scenes.cache as cache
import egosim.envs.scenes.scene as scene_module
from egosim.cache_entry import CorruptCacheWarning
from egosim.envs.scenes import Scene, load
from egosim.sensors.shapes import box_triangles


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path / "cache"))


def _no_compute(*args, **kwargs):
    raise AssertionError("should have been read from the cache")


def test_sdf_cache_hit_is_fast_and_identical(tmp_path, monkeypatch):
    a = load("procedural:apartment", seed=21)
    t0 = time.perf_counter()
    grid_a = a.sdf_grid
    build = time.perf_counter() - t0
    files = list((tmp_path / "cache" / "scenes").glob("sdf-*.npz"))
    assert len(files) == 1
    b = load("procedural:apartment", seed=21)
    monkeypatch.setattr(scene_module, "build_sdf_grid", _no_compute)
    t0 = time.perf_counter()
    grid_b = b.sdf_grid
    hit = time.perf_counter() - t0
    assert hit < build / 3
    assert np.array_equal(grid_a.values, grid_b.values)
    assert np.array_equal(grid_a.origin, grid_b.origin)
    assert grid_a.resolution == grid_b.resolution
    # A different scene or resolution is a different key: it must be computed.
    with pytest.raises(AssertionError, match="read from the cache"):
        load("procedural:apartment", seed=22).sdf_grid  # noqa: B018
    with pytest.raises(AssertionError, match="read from the cache"):
        load("procedural:apartment", seed=21, sdf_resolution=0.08).sdf_grid  # noqa: B018


def test_walk_cache_keyed_by_content_and_parameters(tmp_path, monkeypatch):
    mesh = trimesh.util.concatenate(
        [trimesh.creation.box(extents=[4, 4, 0.1]), trimesh.creation.box(extents=[1, 1, 3])]
    )
    path = tmp_path / "block.ply"
    mesh.export(path)
    first = load(path)
    walk = first.walkable.copy()
    assert len(list((tmp_path / "cache" / "scenes").glob("walk-*.npz"))) == 1
    monkeypatch.setattr(scene_module, "compute_walkmap", _no_compute)
    again = load(path)
    assert again.content_hash == first.content_hash
    assert np.array_equal(again.walkable, walk)
    assert np.array_equal(again.components, first.components)
    assert np.array_equal(again.walk_map.obstacle_distance, first.walk_map.obstacle_distance)
    with pytest.raises(AssertionError, match="read from the cache"):
        load(path, body_radius=0.3).walkable  # noqa: B018
    moved = Scene(first.triangles + np.float32(0.01))
    with pytest.raises(AssertionError, match="read from the cache"):
        moved.walkable  # noqa: B018


def test_content_hash_covers_labels():
    tris = box_triangles(np.zeros(3), np.ones(3))
    a = Scene(tris)
    b = Scene(tris, face_semantic=np.full(12, 2))
    c = Scene(tris, face_instance=np.full(12, 5))
    assert len({a.content_hash, b.content_hash, c.content_hash}) == 3
    assert Scene(tris).content_hash == a.content_hash


def test_corrupt_cache_file_is_recomputed(tmp_path):
    s = load("procedural:room", seed=1)
    s.sdf_grid  # noqa: B018
    (f,) = (tmp_path / "cache" / "scenes").glob("sdf-*.npz")
    f.write_bytes(b"not a zip")
    again = load("procedural:room", seed=1)
    with pytest.warns(CorruptCacheWarning, match=f"{f.name} is bad: unreadable"):
        assert np.array_equal(again.sdf_grid.values, s.sdf_grid.values)
    assert cache.load_arrays(f.stem) is not None  # rewritten as a good entry


def test_cache_entries_carry_key_and_checksum(tmp_path):
    key = cache.cache_key("sdf", "abc", res=0.1)
    arrays = {"values": np.zeros((2, 2, 2), np.float32), "origin": np.zeros(3),
              "resolution": np.float64(0.1)}
    path = cache.save_arrays(key, arrays)
    with np.load(path) as d:
        assert str(d["cache_key"]) == key and "checksum" in d.files
    back = cache.load_arrays(key)
    assert set(back) == set(arrays)
    other = cache.cache_key("sdf", "abd", res=0.1)
    cache.cache_path(other).write_bytes(path.read_bytes())  # an entry under a wrong name
    with pytest.warns(CorruptCacheWarning, match="holds the entry"):
        assert cache.load_arrays(other) is None
    assert not cache.cache_path(other).exists()
