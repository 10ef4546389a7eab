"""Scenes as env worlds: mesh-file labels from object / group / node names, and pybullet's
samurai walked inside its monastery (``scene.options.floor_level: 1.7``)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from envs_support import prior_path

from egosim.envs.scenes import class_id, load
from egosim.envs.scenes.meshfile import load_mesh_arrays

PARTS = {  # name in the file -> (centre, extents) of a box, metres, z up
    "floor": ((0.0, 0.0, -0.051), (6.0, 6.0, 0.1)),  # top at -1 mm: apart from the rest
    "wall_n": ((0.0, 3.0, 1.25), (6.0, 0.1, 2.5)),
    "table_box": ((1.0, 1.0, 0.4), (1.0, 0.6, 0.8)),
}
WANT = {"floor": "floor", "wall_n": "wall", "table_box": "table"}


def _boxes() -> dict[str, trimesh.Trimesh]:
    out = {}
    for name, (centre, ext) in PARTS.items():
        b = trimesh.creation.box(extents=ext)
        b.apply_translation(centre)
        out[name] = b
    return out


def _write_obj(path, keyword: str) -> None:
    lines, offset = [], 0
    for name, m in _boxes().items():
        lines.append(f"{keyword} {name}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in m.vertices]
        lines += [f"f {a + 1 + offset} {b + 1 + offset} {c + 1 + offset}" for a, b, c in m.faces]
        offset += len(m.vertices)
    path.write_text("\n".join(lines) + "\n")


def _labels_by_part(arrays: dict) -> dict[str, tuple[int, int]]:
    """(semantic, instance) of the faces inside each part's box (every face of a box shares
    them, or the check fails)."""
    tri = arrays["triangles"]
    cent = tri.mean(axis=1)
    out = {}
    for name, m in _boxes().items():
        lo, hi = m.bounds
        inside = np.all((cent >= lo - 1e-6) & (cent <= hi + 1e-6), axis=1)
        # the table stands on the floor slab: keep faces whose corners all lie in the box
        inside &= np.all((tri >= lo - 1e-6) & (tri <= hi + 1e-6), axis=(1, 2))
        sem = np.unique(arrays["face_semantic"][inside])
        inst = np.unique(arrays["face_instance"][inside])
        assert len(sem) == 1 and len(inst) == 1, (name, sem, inst)
        out[name] = (int(sem[0]), int(inst[0]))
    return out


@pytest.mark.parametrize("keyword", ["o", "g"])
def test_obj_objects_and_groups_name_classes_and_instances(tmp_path, keyword):
    path = tmp_path / "room.obj"
    _write_obj(path, keyword)
    got = _labels_by_part(load_mesh_arrays(path, align_floor=False))
    assert {n: s for n, (s, _) in got.items()} == {n: class_id(c) for n, c in WANT.items()}
    assert len({i for _, i in got.values()}) == 3  # one instance per object / group


def test_obj_groups_inside_an_object_share_its_instance(tmp_path):
    m = _boxes()["table_box"]
    half = len(m.faces) // 2
    lines = ["o table_1", *[f"v {x} {y} {z}" for x, y, z in m.vertices], "g top"]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in m.faces[:half]]
    lines += ["g leg_mesh"] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in m.faces[half:]]
    path = tmp_path / "t.obj"
    path.write_text("\n".join(lines) + "\n")
    a = load_mesh_arrays(path, align_floor=False)
    assert set(a["face_instance"].tolist()) == {1}  # groups of one object: one instance
    assert set(a["face_semantic"].tolist()) == {class_id("table")}  # from the object name


def test_glb_node_names_give_classes_and_instances(tmp_path):
    scene = trimesh.Scene()
    for k, (name, m) in enumerate(_boxes().items()):
        scene.add_geometry(m, node_name=name, geom_name=f"mesh_{k}")
    path = tmp_path / "room.glb"
    path.write_bytes(scene.export(file_type="glb"))
    got = _labels_by_part(load_mesh_arrays(path, align_floor=False))
    assert {n: s for n, (s, _) in got.items()} == {n: class_id(c) for n, c in WANT.items()}
    assert len({i for _, i in got.values()}) == 3


def test_a_file_without_names_is_not_labelled_by_its_file_name(tmp_path):
    m = _boxes()["table_box"]
    path = tmp_path / "table.obj"  # the file's name must not make it a table
    path.write_text("\n".join([*[f"v {x} {y} {z}" for x, y, z in m.vertices],
                               *[f"f {a + 1} {b + 1} {c + 1}" for a, b, c in m.faces]]) + "\n")
    a = load_mesh_arrays(path, align_floor=False)
    assert class_id("table") not in set(a["face_semantic"].tolist())


@pytest.mark.slow
def test_samurai_env_starts_and_goals_lie_inside_the_monastery():
    from egosim.envs.locomotion import EgoLocomotionEnv

    env = EgoLocomotionEnv(overrides={"prior.path": prior_path(), "episode.max_steps": 2,
                                      "scene.spec": "pybullet:samurai",
                                      "scene.options": {"floor_level": 1.7}})
    scene = None
    for seed in range(4):
        _, info = env.reset(seed=seed)
        scene = env.sim.worlds[0].scene
        plane = scene.face_instance == scene.face_instance.max()  # the ground plane
        lo = scene.triangles[~plane].reshape(-1, 3).min(0)
        hi = scene.triangles[~plane].reshape(-1, 3).max(0)
        route = env.sim.worlds[0].routes[0]
        for p in (route.points[0], route.goal):
            assert np.all(p[:2] > lo[:2]) and np.all(p[:2] < hi[:2]), (p, lo, hi)
            assert abs(p[2] - 1.7) < 0.15  # on the platform, not the ground plane at 0
        _, _, _, _, info = env.step(np.zeros(128, np.float32))
        pel = env.sim.pelvis(env.sim.markers[0, 1])
        assert 2.2 < pel[2] < 2.9  # standing on the platform (pelvis ~0.9 m above it)
        assert info["end_reason"] is None
    # the ground plane around the monastery is no floor at this level
    assert not scene.has_floor(np.array([80.0, 80.0]))
    assert not scene.in_footprint(np.array([80.0, 80.0]))  # walking there: left_scene
    assert load("pybullet:samurai").has_floor(np.array([80.0, 80.0]))  # the default level
    env.close()
