"""Procedural rooms and apartments: layout rules, labels, determinism, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from egosim.envs.scenes import CLASS_NAMES, class_id, load
from egosim.envs.scenes.furniture import FURNITURE_CLASSES
from egosim.envs.scenes.geometry import face_normals
from egosim.envs.scenes.procedural import DOOR_HEIGHT, ROOM_HEIGHT, WALL_THICKNESS

ARRAYS = ("triangles", "face_semantic", "face_instance", "face_albedo", "face_texture", "face_uv")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("spec", ["procedural:room", "procedural:apartment"])
def test_contract_arrays(spec):
    s = load(spec, seed=4)
    f = s.num_faces
    assert 100 < f < 6000
    assert s.triangles.dtype == np.float32 and s.triangles.shape == (f, 3, 3)
    assert s.face_semantic.dtype == np.int32 and s.face_semantic.shape == (f,)
    assert s.face_instance.dtype == np.int32 and s.face_instance.shape == (f,)
    assert s.face_albedo.dtype == np.float32 and s.face_albedo.shape == (f, 3)
    assert np.all((s.face_albedo >= 0) & (s.face_albedo <= 1))
    assert s.face_texture.dtype == np.int32 and s.face_uv.shape == (f, 3, 2)
    assert len(s.textures) == 1 and s.textures[0].dtype == np.uint8
    assert s.textures[0].ndim == 3 and s.textures[0].shape[2] == 3
    assert s.is_closed  # union of closed boxes and cylinders
    assert s.bounds.shape == (2, 3)
    assert s.bounds[0, 2] == pytest.approx(-0.1) and s.bounds[1, 2] == pytest.approx(2.6)
    assert isinstance(s.content_hash, str) and len(s.content_hash) == 40
    assert spec in repr(s) and f"faces={f}" in repr(s)
    names = {CLASS_NAMES[i] for i in np.unique(s.face_semantic)}
    assert {"floor", "wall", "ceiling"} <= names
    assert names & set(FURNITURE_CLASSES)


def test_to_trimesh_export(tmp_path):
    s = load("procedural:room", seed=3)
    mesh = s.to_trimesh()
    assert len(mesh.faces) == s.num_faces
    assert np.allclose(mesh.triangles, s.triangles)
    assert np.array_equal(mesh.face_attributes["semantic"], s.face_semantic)
    assert np.array_equal(mesh.face_attributes["instance"], s.face_instance)
    path = tmp_path / "room.ply"
    mesh.export(path)
    again = load(path, align_floor=False)
    assert again.num_faces == s.num_faces
    assert np.allclose(again.bounds, s.bounds, atol=1e-5)


def test_floor_at_zero_textured_with_uvs():
    s = load("procedural:apartment", seed=2)
    tex = s.face_texture == 0
    assert tex.any()
    assert np.allclose(s.triangles[tex][..., 2], 0.0)  # the textured face is the floor top
    assert np.allclose(s.face_uv[tex], s.triangles[tex][..., :2])  # UV = (x, y), 1 tile/m
    assert np.all(s.face_semantic[tex] == class_id("floor"))


def test_furniture_pieces_have_own_instances():
    s = load("procedural:apartment", seed=1)
    furn = np.isin(s.face_semantic, [class_id(c) for c in FURNITURE_CLASSES])
    for iid in np.unique(s.face_instance[furn]):
        # one instance is one piece: a single class, and its own id
        assert len(np.unique(s.face_semantic[s.face_instance == iid])) == 1
    assert len(np.unique(s.face_instance[furn])) >= 5
    assert np.all(s.face_instance >= 1)


@pytest.mark.parametrize("seed", range(6))
def test_apartment_layout_rules(seed):
    s = load("procedural:apartment", seed=seed)
    assert 2 <= len(s.rooms) <= 6
    for r in s.rooms:
        side = r.hi - r.lo
        assert np.all(side >= 3.0 - 1e-6) and np.all(side <= 6.0 + 1e-6)
    assert len(s.doors) >= len(s.rooms) - 1  # a spanning tree at least
    for d in s.doors:
        assert 0.9 - 1e-6 <= d.width <= 1.0 + 1e-6
    walls = s.face_semantic == class_id("wall")
    assert s.triangles[walls][..., 2].max() == pytest.approx(ROOM_HEIGHT + 0.1)
    # Lintel undersides sit at the door height; wall boxes are 0.1 m thick.
    down = face_normals(s.triangles)[:, 2] < -0.99
    heights = np.unique(np.round(s.triangles[walls & down][:, 0, 2], 4))
    assert DOOR_HEIGHT in heights
    xy = s.triangles[walls][..., :2].reshape(-1, 3, 2)
    ext = xy.max(1) - xy.min(1)
    assert np.isclose(ext.min(1), WALL_THICKNESS, atol=1e-5).any()


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_rooms_connected_through_doorways(seed):
    s = load("procedural:apartment", seed=seed)
    comp = s.components
    labels = []
    for r in s.rooms:
        ilo, ihi = r.interior
        (r0, c0), (r1, c1) = s.world_to_grid(np.stack([ilo, ihi]))
        region = comp[r0 : r1 + 1, c0 : c1 + 1]
        values, counts = np.unique(region[region > 0], return_counts=True)
        labels.append(values[np.argmax(counts)])
    assert len(set(labels)) == 1  # every room's main walkable area is one region
    for d in s.doors:  # the doorway centre is walkable
        centre = [d.pos, d.const] if d.axis == 0 else [d.const, d.pos]
        assert s.is_walkable(np.array(centre))


def test_door_fronts_clear_of_furniture():
    for seed in range(4):
        s = load("procedural:apartment", seed=seed)
        furn = np.isin(s.face_semantic, [class_id(c) for c in FURNITURE_CLASSES])
        cent = s.triangles[furn].mean(axis=1)
        for d in s.doors:
            along = cent[:, 0] if d.axis == 0 else cent[:, 1]
            across = cent[:, 1] if d.axis == 0 else cent[:, 0]
            inside = (np.abs(along - d.pos) < d.width / 2) & (np.abs(across - d.const) < 0.9)
            assert not inside.any()


def test_determinism_same_seed_identical_bytes():
    a = load("procedural:apartment", seed=11)
    b = load("procedural:apartment", seed=11)
    for name in ARRAYS:
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.content_hash == b.content_hash
    assert np.array_equal(a.walkable, b.walkable)
    assert np.array_equal(a.grid_origin, b.grid_origin)
    assert a.textures[0].tobytes() == b.textures[0].tobytes()


def test_different_seeds_differ():
    a = load("procedural:apartment", seed=1)
    b = load("procedural:apartment", seed=2)
    assert a.content_hash != b.content_hash
    assert a.triangles.shape != b.triangles.shape or not np.array_equal(a.triangles, b.triangles)
    r1 = load("procedural:room", seed=1)
    r2 = load("procedural:room", seed=2)
    assert r1.content_hash != r2.content_hash
    assert r1.walkable.shape != r2.walkable.shape or not np.array_equal(r1.walkable, r2.walkable)


def test_seed_none_means_zero_and_num_rooms_option():
    assert load("procedural:room").content_hash == load("procedural:room", seed=0).content_hash
    for n in (2, 6):
        assert len(load("procedural:apartment", seed=5, num_rooms=n).rooms) == n
    empty = load("procedural:room", seed=5, furnish=False)
    assert not np.isin(empty.face_semantic, [class_id(c) for c in FURNITURE_CLASSES]).any()


@pytest.mark.parametrize("bad", [1, 7, 2.5, "3"])
def test_bad_num_rooms(bad):
    with pytest.raises(ValueError, match="num_rooms must be an int in 2..6"):
        load("procedural:apartment", seed=0, num_rooms=bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "x"])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        load("procedural:room", seed=bad)


def test_apartment_generates_under_one_second():
    times = []
    for seed in range(5):
        t0 = time.perf_counter()
        load("procedural:apartment", seed=100 + seed, num_rooms=6)
        times.append(time.perf_counter() - t0)
    assert max(times) < 1.0, times


def test_five_room_layouts_do_not_fail() -> None:
    # 5 rooms rarely fit the 3-6 m room sides with unbalanced splits; these seeds failed
    # before the balanced-split retry was added.
    from egosim.envs.scenes.procedural import split_layout

    for seed in (4, 5, 9, 32, 37, 60, 66, 89, 135):
        rooms, doors = split_layout(np.random.default_rng(seed), 5)
        assert len(rooms) == 5 and len(doors) >= 4
        sides = np.array([r.hi - r.lo for r in rooms])
        assert sides.min() >= 3.0 - 1e-9 and sides.max() <= 6.0 + 1e-9
