"""Scenes assembled from ``pybullet_data`` assets, placed as their URDF/SDF files say.

The XML is parsed here (no pybullet simulation is started): for URDF, every link's
``<visual>`` mesh with its ``scale`` and ``<origin xyz rpy>``, links chained through their
joints' origins (joint angles at zero); for SDF, every model's ``<pose>``, its links'
and visuals' poses, the mesh ``<uri>``/``<scale>`` and the ``<material><diffuse>`` colour.
Meshes are read with :func:`egosim.envs.scenes.meshfile.load_mesh_arrays` without floor
alignment, so the files' own transforms decide where things are.

==========  ================================================================
name        contents
==========  ================================================================
samurai     ``samurai.urdf`` (the y-up ``samurai_monastry.obj`` turned z-up by its
            visual origin ``rpy="1.5707963 0 0"``; ~125k triangles) plus pybullet's
            ``plane.urdf`` (``plane100.obj``, 200 m x 200 m at z = 0, checker texture)
            as its ground plane, labelled ``floor``
stadium     ``stadium.sdf``: three coplanar ``roboschool`` stadium parts at z = 0
            (white markings, dirt track, textured grass) with their SDF colours
==========  ================================================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from egosim.envs.scenes.classes import class_id
from egosim.envs.scenes.geometry import rotation_matrix_rpy
from egosim.envs.scenes.meshfile import load_mesh_arrays

__all__ = ["PYBULLET_SCENES", "load_pybullet_arrays", "data_path", "urdf_visuals", "sdf_visuals"]

# name -> list of (asset file, forced semantic class name or None)
PYBULLET_SCENES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "samurai": (("samurai.urdf", None), ("plane.urdf", "floor")),
    "stadium": (("stadium.sdf", None),),
}


def data_path() -> Path:
    """Directory of the installed ``pybullet_data`` package."""
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def _floats(text: str | None, n: int, default: float = 0.0) -> np.ndarray:
    if text is None or not text.strip():
        return np.full(n, default)
    vals = np.array([float(v) for v in text.split()])
    if vals.size == 1 and n > 1:
        vals = np.full(n, vals[0])
    if vals.size != n:
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return vals


def _tf(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rotation_matrix_rpy(*rpy)
    t[:3, 3] = xyz
    return t


def _urdf_origin(elem: ET.Element | None) -> np.ndarray:
    if elem is None:
        return np.eye(4)
    return _tf(_floats(elem.get("xyz"), 3), _floats(elem.get("rpy"), 3))


def _sdf_pose(elem: ET.Element | None) -> np.ndarray:
    if elem is None or elem.text is None:
        return np.eye(4)
    v = _floats(elem.text, 6)
    return _tf(v[:3], v[3:])


def _resolve(base: Path, name: str) -> Path:
    for prefix in ("package://", "file://", "model://"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return (base / name).resolve()


def urdf_visuals(path: Path) -> list[dict]:
    """Mesh visuals of a URDF: dicts with ``file``, ``transform`` (4x4 world from mesh,
    scale included) and ``color`` (linear RGB or None)."""
    root = ET.parse(path).getroot()
    links = {link.get("name"): link for link in root.findall("link")}
    parent_of: dict[str, tuple[str, np.ndarray]] = {}
    for joint in root.findall("joint"):
        child = joint.find("child").get("link")
        parent = joint.find("parent").get("link")
        parent_of[child] = (parent, _urdf_origin(joint.find("origin")))

    def link_tf(name: str) -> np.ndarray:
        if name not in parent_of:
            return np.eye(4)
        parent, origin = parent_of[name]
        return link_tf(parent) @ origin

    out = []
    for name, link in links.items():
        for vis in link.findall("visual"):
            mesh = vis.find("geometry/mesh")
            if mesh is None:
                continue
            scale = _floats(mesh.get("scale"), 3, 1.0)
            tf = link_tf(name) @ _urdf_origin(vis.find("origin")) @ np.diag([*scale, 1.0])
            color_elem = vis.find("material/color")
            color = None
            if color_elem is not None:
                rgba = _floats(color_elem.get("rgba"), 4, 1.0)
                color = None if np.allclose(rgba[:3], 1.0) else rgba[:3]
            out.append({"file": _resolve(path.parent, mesh.get("filename")), "transform": tf,
                        "color": color})
    return out


def sdf_visuals(path: Path, data_root: Path) -> list[dict]:
    """Mesh visuals of an SDF world/model file (same dicts as :func:`urdf_visuals`).

    Mesh URIs are resolved against the SDF's folder and then ``data_root``."""
    root = ET.parse(path).getroot()
    out = []
    for model in root.iter("model"):
        model_tf = _sdf_pose(model.find("pose"))
        for link in model.findall("link"):
            link_tf = model_tf @ _sdf_pose(link.find("pose"))
            for vis in link.findall("visual"):
                mesh = vis.find("geometry/mesh")
                if mesh is None:
                    continue
                uri = mesh.findtext("uri", "").strip()
                file = _resolve(path.parent, uri)
                if not file.is_file():
                    file = _resolve(data_root, uri)
                scale = _floats(mesh.findtext("scale"), 3, 1.0)
                tf = link_tf @ _sdf_pose(vis.find("pose")) @ np.diag([*scale, 1.0])
                diffuse = vis.findtext("material/diffuse")
                color = None if diffuse is None else _floats(diffuse, 4, 1.0)[:3]
                out.append({"file": file, "transform": tf, "color": color})
    return out


def load_pybullet_arrays(name: str) -> dict:
    """Scene arrays (as :func:`~egosim.envs.scenes.meshfile.load_mesh_arrays`) of the
    pybullet scene ``name`` (see :data:`PYBULLET_SCENES`); instance ids are unique
    across the assembled files."""
    if name not in PYBULLET_SCENES:
        raise ValueError(
            f"unknown pybullet scene {name!r}; valid: {', '.join(sorted(PYBULLET_SCENES))}"
        )
    root = data_path()
    parts: list[dict] = []
    for asset, forced in PYBULLET_SCENES[name]:
        path = root / asset
        visuals = urdf_visuals(path) if path.suffix == ".urdf" else sdf_visuals(path, root)
        for vis in visuals:
            parts.append(
                load_mesh_arrays(
                    vis["file"],
                    align_floor=False,
                    transform=vis["transform"],
                    semantic=None if forced is None else class_id(forced),
                    color=vis["color"],
                )
            )
    textures: list[np.ndarray] = []
    out: dict[str, list] = {k: [] for k in ("triangles", "face_semantic", "face_instance",
                                            "face_texture", "face_albedo", "face_uv")}
    offset = 0
    for p in parts:
        out["triangles"].append(p["triangles"])
        out["face_semantic"].append(p["face_semantic"])
        out["face_instance"].append(p["face_instance"] + offset)
        offset += int(p["face_instance"].max())
        out["face_texture"].append(np.where(p["face_texture"] >= 0,
                                            p["face_texture"] + len(textures), -1))
        textures.extend(p["textures"])
        out["face_albedo"].append(p["face_albedo"])
        out["face_uv"].append(p["face_uv"])
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    arrays["textures"] = textures
    return arrays
