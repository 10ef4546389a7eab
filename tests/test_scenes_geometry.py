"""Class table, closed primitives and mesh helpers of egosim.envs.scenes."""

from __future__ import annotations

import numpy as np
import pytest

from egosim.envs.scenes import CLASS_NAMES, class_id
from egosim.envs.scenes.classes import class_from_name
from egosim.envs.scenes.geometry import face_normals, is_closed, weld
from egosim.envs.scenes.mesh_builder import cylinder_triangles
from egosim.sensors.shapes import box_triangles


def test_class_table_has_required_classes():
    for name in ("void", "floor", "wall", "ceiling", "door", "table", "chair", "sofa", "bed",
                 "shelf", "cabinet", "plant", "lamp", "person"):
        assert CLASS_NAMES[class_id(name)] == name
    assert class_id("void") == 0
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)


def test_class_id_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="valid names: void, floor"):
        class_id("spaceship")


def test_class_from_name_keywords():
    assert class_from_name("Floor_04:Arena:blinn3SG") == class_id("floor")
    assert class_from_name("PaperLanterns1") == class_id("lamp")
    assert class_from_name("stadium_grass") == class_id("ground")
    assert class_from_name("xyz") == 0


def _signed_volume(tris: np.ndarray) -> float:
    return float(np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum() / 6)


@pytest.mark.parametrize(
    "tris, volume",
    [
        (box_triangles(np.array([0.0, 0, 0]), np.array([1.0, 2, 3])), 6.0),
        (cylinder_triangles(np.array([1.0, 2.0]), 0.5, 0.0, 2.0, segments=12),
         0.5 * 12 * 0.25 * np.sin(2 * np.pi / 12) * 2.0),
    ],
)
def test_primitives_closed_with_outward_normals(tris, volume):
    _, f = weld(tris)
    assert is_closed(f)
    assert _signed_volume(tris) == pytest.approx(volume)  # positive: normals point out
    centroid = tris.reshape(-1, 3).mean(0)
    n = face_normals(tris)
    assert np.all(np.einsum("ij,ij->i", n, tris.mean(1) - centroid) > 0)


def test_box_top_faces_first_two_after_bottom():
    tris = box_triangles(np.zeros(3), np.ones(3))
    n = face_normals(tris)
    assert np.allclose(n[:2], [0, 0, -1]) and np.allclose(n[2:4], [0, 0, 1])


def test_is_closed_detects_open_and_unions():
    a = box_triangles(np.zeros(3), np.ones(3))
    b = box_triangles(np.array([0.5, 0.5, 0.5]), np.array([2.0, 2, 2]))
    assert is_closed(weld(np.concatenate([a, b]))[1])  # overlapping union
    assert not is_closed(weld(a[1:])[1])  # one triangle missing


def test_box_rejects_bad_corners():
    with pytest.raises(ValueError, match="lo < hi"):
        box_triangles(np.ones(3), np.zeros(3))
