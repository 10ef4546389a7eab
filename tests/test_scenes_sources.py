"""Every scene source (pybullet assets, mesh files) and the loader's bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from egosim.envs.scenes import SPECS, Scene, class_id, load
from egosim.envs.scenes.meshfile import floor_height
from egosim.envs.scenes.pybullet_assets import data_path, sdf_visuals, urdf_visuals


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path))


def _check_contract(s: Scene) -> None:
    f = s.num_faces
    assert s.triangles.dtype == np.float32 and s.triangles.shape == (f, 3, 3)
    for name in ("face_semantic", "face_instance", "face_texture"):
        arr = getattr(s, name)
        assert arr.dtype == np.int32 and arr.shape == (f,)
    assert s.face_albedo.dtype == np.float32 and s.face_albedo.shape == (f, 3)
    assert np.all((s.face_albedo >= 0) & (s.face_albedo <= 1))
    assert s.face_uv.dtype == np.float32 and s.face_uv.shape == (f, 3, 2)
    assert s.face_texture.max() < len(s.textures)
    for t in s.textures:
        assert t.dtype == np.uint8 and t.ndim == 3 and t.shape[2] == 3


# --------------------------------------------------------------------------- pybullet


@pytest.fixture(scope="module")
def samurai() -> Scene:
    return load("pybullet:samurai", grid_resolution=0.1, sdf_max_voxels=300_000)


def test_samurai_transforms_and_ground_plane(samurai):
    s = samurai
    _check_contract(s)
    assert s.num_faces > 120_000
    # The y-up OBJ is rotated to z-up by the URDF's rpy (height ~30 m, not ~120 m).
    mona = s.face_semantic != class_id("floor")
    ext = s.triangles[mona].reshape(-1, 3).max(0) - s.triangles[mona].reshape(-1, 3).min(0)
    assert 25 < ext[2] < 35 and ext[0] > 100 and ext[1] > 100
    # pybullet's plane.urdf (plane100.obj): 200 m x 200 m at z = 0, checker-textured.
    assert np.allclose(s.bounds[0, :2], -100) and np.allclose(s.bounds[1, :2], 100)
    plane = s.face_instance == s.face_instance.max()
    assert plane.sum() == 2 and np.all(s.face_semantic[plane] == class_id("floor"))
    assert np.allclose(s.triangles[plane][..., 2], 0.0)
    assert np.all(s.face_texture[plane] >= 0)
    assert s.face_uv[plane].max() == pytest.approx(100.0)
    assert not s.is_closed


def test_samurai_walkability_paths_and_sdf(samurai):
    s = samurai
    assert s.walkable.shape == (2000, 2000)
    assert 0.5 < s.walkable.mean() < 0.95  # open ground minus the buildings
    assert s.is_walkable(np.array([90.0, 90.0]))  # far corner of the ground plane
    assert not s.is_walkable(np.array([-20.0, 0.0]))  # inside the raised monastery
    start, goal = s.sample_start_goal(3, min_dist=20.0, max_dist=40.0)
    path = s.plan_path(start, goal)
    assert np.all(s.is_walkable(path))
    assert s.sdf_grid.resolution > 0.1  # capped for this huge scene
    assert s.sdf(np.array([90.0, 90.0, 1.0])) == pytest.approx(1.0, abs=s.sdf_grid.resolution)
    assert s.sdf(np.array([90.0, 90.0, -0.5])) < 0  # below the ground plane


def test_samurai_courtyard_level():
    s = load("pybullet:samurai", grid_resolution=0.1, floor_level=1.7)
    assert s.is_walkable(np.array([-30.0, -30.0]))  # on the 1.70 m platform
    assert s.floor_height[tuple(s.world_to_grid(np.array([-30.0, -30.0])))] == pytest.approx(
        1.70, abs=0.01
    )


def test_stadium_parts_colours_and_texture():
    s = load("pybullet:stadium", grid_resolution=0.1, sdf_max_voxels=200_000)
    _check_contract(s)
    assert len(np.unique(s.face_instance)) == 3  # part0, part1, part2
    assert np.allclose(s.triangles[..., 2], 0.0)
    assert len(s.textures) == 1  # stadium_grass.jpg
    # SDF <diffuse> colours: dirt (0.6, 0.4, 0.0) on part1.
    dirt = s.face_instance == 2
    assert np.allclose(s.face_albedo[dirt], [0.6, 0.4, 0.0], atol=1e-6)
    assert s.walkable.mean() > 0.9
    assert s.sdf(np.array([0.0, 0.0, 1.0])) == pytest.approx(1.0, abs=0.1)


def test_urdf_and_sdf_parsing():
    root = data_path()
    (vis,) = urdf_visuals(root / "samurai.urdf")
    assert vis["file"].name == "samurai_monastry.obj"
    assert np.allclose(vis["transform"][:3, :3] @ [0, 1, 0], [0, 0, 1], atol=1e-6)  # y -> z
    parts = sdf_visuals(root / "stadium.sdf", root)
    assert [p["file"].name for p in parts] == ["part0.obj", "part1.obj", "part2.obj"]
    assert np.allclose(parts[2]["color"], [0.0, 0.5, 0.0])


# --------------------------------------------------------------------------- mesh files


def _room_scene() -> trimesh.Scene:
    """A 6 m x 4 m slab with a table block, as two named nodes (z up)."""
    slab = trimesh.creation.box(extents=[6, 4, 0.1])
    slab.apply_translation([0, 0, -0.05])
    table = trimesh.creation.box(extents=[1, 0.6, 0.75])
    table.apply_translation([1.0, 0.5, 0.375])
    for m, rgb in ((slab, [200, 150, 100, 255]), (table, [90, 60, 30, 255])):
        m.visual.face_colors = rgb
    sc = trimesh.Scene()
    sc.add_geometry(slab, node_name="floor_slab", geom_name="floor_slab")
    sc.add_geometry(table, node_name="table_1", geom_name="table_1")
    return sc


@pytest.mark.parametrize("ext", ["obj", "glb", "ply"])
def test_mesh_files(tmp_path, ext):
    sc = _room_scene()
    lift = np.eye(4)
    lift[2, 3] = 3.0  # the file's floor is at z = 3: the loader moves it to 0
    sc.apply_transform(lift)
    path = tmp_path / f"room.{ext}"
    sc.export(path)
    s = load(path)
    _check_contract(s)
    assert s.num_faces == 24
    assert s.bounds[0, 2] == pytest.approx(-0.1, abs=1e-5)
    assert s.bounds[1, 2] == pytest.approx(0.75, abs=1e-5)
    assert s.name == str(path)
    assert class_id("floor") in s.face_semantic
    assert s.is_closed
    assert s.is_walkable(np.array([-2.0, -1.0]))
    assert not s.is_walkable(np.array([1.0, 0.5]))  # under the table
    assert s.sdf(np.array([1.0, 0.5, 1.0])) == pytest.approx(0.25, abs=0.05)
    if ext == "glb":  # node names survive: keyword labels and one instance per node
        assert class_id("table") in s.face_semantic
        assert len(np.unique(s.face_instance)) == 2


def test_up_axis_y(tmp_path):
    mesh = trimesh.util.concatenate(list(_room_scene().dump()))
    to_y_up = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    mesh.apply_transform(to_y_up)  # (x, y, z) -> (x, z, -y): the file is y-up
    path = tmp_path / "room_yup.obj"
    mesh.export(path)
    s = load(path, up_axis="y")
    assert s.bounds[1, 2] == pytest.approx(0.75, abs=1e-5)
    assert np.allclose(s.bounds[:, :2], [[-3, -2], [3, 2]], atol=1e-5)
    assert not s.is_walkable(np.array([1.0, 0.5]))
    z_up = load(path)  # read as z-up it stands on its side: 4 m tall
    assert z_up.bounds[1, 2] - z_up.bounds[0, 2] == pytest.approx(4.0, abs=1e-5)


def test_floor_rule_prefers_large_low_surface():
    slab = trimesh.creation.box(extents=[6, 6, 0.1]).triangles
    pit = trimesh.creation.box(extents=[0.3, 0.3, 0.1]).triangles - np.array([0, 0, 2.0])
    assert floor_height(np.concatenate([slab, pit])) == pytest.approx(0.05)


# --------------------------------------------------------------------------- errors


def test_unknown_spec_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        load("procedural:castle")
    for spec in SPECS:
        assert spec in str(err.value)
    with pytest.raises(ValueError, match="unknown scene spec"):
        load("scene.fbx")


def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        load(tmp_path / "nope.obj")
    empty = tmp_path / "empty.obj"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.obj.*is empty"):
        load(empty)
    no_tris = tmp_path / "comments.obj"
    no_tris.write_text("# just a comment\nv 0 0 0\n")
    with pytest.raises(ValueError, match=r"comments\.obj.*no triangles"):
        load(no_tris)
    for name, data in (("bad.glb", b"glTF\x02\x00\x00\x00garbage"),
                       ("bad.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1\n")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=rf"could not read mesh file .*{name}"):
            load(path)


def test_bad_options(tmp_path):
    path = tmp_path / "room.glb"
    _room_scene().export(path)
    with pytest.raises(ValueError, match=r"up_axis must be one of 'z', 'y', got 'x'"):
        load(path, up_axis="x")
    with pytest.raises(ValueError, match="unknown option.*colour.*valid options: up_axis"):
        load(path, colour="red")
    for bad in (0.2, 0.0, -0.05, float("nan")):
        with pytest.raises(ValueError, match=r"grid_resolution must be in \(0, 0.1\]"):
            load("procedural:room", grid_resolution=bad)
    with pytest.raises(ValueError, match="body_radius must be a finite number > 0"):
        load("procedural:room", body_radius=-1)
    with pytest.raises(ValueError, match="unknown option.*num_rooms"):
        load("procedural:room", num_rooms=3)
    with pytest.raises(ValueError, match=r"triangles must have shape \(F, 3, 3\)"):
        Scene(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="face_semantic must have shape"):
        Scene(np.zeros((2, 3, 3)), face_semantic=np.zeros(3))
