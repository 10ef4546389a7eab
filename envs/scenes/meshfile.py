"""Scenes from mesh files (OBJ, GLB/GLTF, PLY) through ``trimesh``.

Every mesh of the file's scene graph is placed with its node transform, then the whole
scene is scaled, rotated to z up (``up_axis='y'`` turns +y into +z by a +90 degree
rotation about x, as pybullet's ``rpy="1.5707963 0 0"`` does for y-up OBJ files) and,
with ``align_floor``, shifted vertically so the floor lies at z = 0.

Floor rule (:func:`floor_height`): among up-facing faces (normal within 10 degrees of +z)
the face areas are binned by height in 5 cm bins; the floor is the lowest bin holding at
least 20 % of the area of the largest bin, at that bin's area-weighted mean height. With
no up-facing face, the lowest vertex is the floor.

Labels (semantic class and instance id per object):

- **OBJ**: every object (``o name``) and group (``g name``) of the file is its own part.
  Its class comes from keywords (:func:`~egosim.envs.scenes.classes.class_from_name`) in,
  in this order, the group name, the object name, the material name (the first that names
  a class); its instance id is one per object (faces under the same ``o`` name share it;
  groups outside any object get one per group name). ``o floor`` / ``o wall_n`` /
  ``o table_box`` give classes floor, wall and table and three instances.
- **GLB / GLTF / PLY**: every mesh node is a part: its class from the node name, then the
  mesh name, then the material name; one instance id per node.
- Names trimesh makes up from the file name (an OBJ without ``o``/``g`` lines, a PLY) are
  ignored: a file's name never labels it. A part no name classifies gets ``floor`` for its
  up-facing faces within 5 cm of the floor, else ``void``. Instance ids start at 1.

Reading: OBJ and MTL text that is not UTF-8 is read as Latin-1 (any byte is a character).
Truncated files are refused where that can be told (:func:`check_obj_text`): an OBJ face
referencing a vertex the file does not have; an OBJ that ends inside a line (no final line
end) with its last face or vertex cut short, or with vertices no face uses; an ASCII PLY
with fewer data lines than its header declares (binary PLY and GLB are checked by trimesh
against their declared lengths).
Appearance: material diffuse/base colour (MTL ``Kd`` and glTF ``baseColorFactor`` are
taken as linear), multiplied for textured faces by the texture's mean linear colour;
per-face or per-vertex colours (sRGB, e.g. PLY) are linearised. Texture images become
``(H, W, 3)`` uint8 arrays with per-corner UVs.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from egosim.envs.scenes.classes import class_from_name, class_id
from egosim.envs.scenes.geometry import face_areas, face_normals
from egosim.envs.scenes.materials import srgb_to_linear
from egosim.envs.scenes.specs import MESH_SUFFIXES

__all__ = [
    "MESH_SUFFIXES",
    "UP_AXES",
    "load_mesh_arrays",
    "floor_height",
    "check_obj_text",
    "decode_text",
    "up_axis_rotation",
]

UP_AXES: tuple[str, ...] = ("z", "y")


def up_axis_rotation(up_axis: str) -> np.ndarray:
    """``(3, 3)`` rotation taking the file's up axis to +z (``'z'``: identity; ``'y'``:
    +90 degrees about x, i.e. ``(x, y, z) -> (x, -z, y)``)."""
    if up_axis == "z":
        return np.eye(3)
    if up_axis == "y":
        return np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    allowed = ", ".join(repr(a) for a in UP_AXES)
    raise ValueError(f"up_axis must be one of {allowed}, got {up_axis!r}")


def floor_height(triangles: np.ndarray) -> float:
    """Height of the floor of ``(F, 3, 3)`` z-up triangles (rule in the module docstring)."""
    n = face_normals(triangles)
    area = face_areas(triangles)
    up = (n[:, 2] >= np.cos(np.deg2rad(10.0))) & (area > 0)
    if not np.any(up):
        return float(triangles[..., 2].min())
    z = triangles[up, :, 2].mean(axis=1)
    a = area[up]
    bins = np.floor(z / 0.05).astype(np.int64)
    ub, inv = np.unique(bins, return_inverse=True)
    per_bin = np.bincount(inv, weights=a)
    first = int(np.flatnonzero(per_bin >= 0.2 * per_bin.max())[0])
    sel = inv == first
    return float(np.average(z[sel], weights=a[sel]))


def decode_text(data: bytes) -> str:
    """Text of a mesh or material file: UTF-8 (a BOM dropped), else Latin-1."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _obj_index(token: str, count: int, seen: int) -> bool:
    """True when the OBJ reference ``token`` (1-based, negative: relative) is valid for
    ``count`` elements in the file, ``seen`` of them before the reference."""
    try:
        i = int(token)
    except ValueError:
        return False
    return 1 <= i <= count if i > 0 else (i < 0 and -i <= seen)


def check_obj_text(text: str, path: str | os.PathLike) -> set[str]:
    """Validate OBJ ``text`` (see the module docstring); returns the object, group and
    material names it defines.

    Faces may reference only vertices the file has. A file that does not end with a line
    end was probably cut: its last statement must then be complete (a face of >= 3
    vertices, a vertex of 3 numbers) and its faces must use every vertex.

    Raises:
        ValueError: a reference to missing data or a cut statement (names the file, the
            line and the problem).
    """
    lines = text.replace("\\\r\n", " ").replace("\\\n", " ").splitlines()
    totals = {"v": 0, "vt": 0, "vn": 0}
    for line in lines:
        head = line.split(None, 1)[0] if line.strip() else ""
        if head in totals:
            totals[head] += 1
    seen = {"v": 0, "vt": 0, "vn": 0}
    used = np.zeros(totals["v"] + 1, bool)
    names: set[str] = set()

    def bad(n: int, what: str) -> ValueError:
        return ValueError(f"could not read mesh file {str(path)!r}: line {n}: {what} (is the "
                          "file truncated or corrupt?)")

    for n, raw in enumerate(lines, 1):
        tokens = raw.split("#", 1)[0].split()
        if not tokens:
            continue
        head, args = tokens[0], tokens[1:]
        if head in seen:
            seen[head] += 1
        elif head == "f":
            for ref in args:
                parts = ref.split("/")
                if not _obj_index(parts[0], totals["v"], seen["v"]):
                    raise bad(n, f"face vertex {ref!r} is not one of the file's "
                                 f"{totals['v']} vertices")
                i = int(parts[0])
                used[i if i > 0 else seen["v"] + 1 + i] = True
                for kind, part in zip(("vt", "vn"), parts[1:3], strict=False):
                    if part and not _obj_index(part, totals[kind], seen[kind]):
                        raise bad(n, f"face vertex {ref!r} references {kind} {part} of "
                                     f"{totals[kind]}")
        elif head in ("o", "g", "usemtl"):
            names.update(args)
    if text.endswith(("\n", "\r")) or not lines:
        return names
    n, raw = len(lines), lines[-1]
    tokens = raw.split("#", 1)[0].split()
    if tokens[:1] == ["f"] and len(tokens) < 4:
        raise bad(n, f"the last face has {len(tokens) - 1} vertices: {raw.strip()!r}")
    if tokens[:1] == ["v"]:
        try:
            [float(a) for a in tokens[1:4]]
        except ValueError:
            raise bad(n, f"the last vertex has a non-number: {raw.strip()!r}") from None
        if len(tokens) < 4:
            raise bad(n, f"the last vertex has {len(tokens) - 1} of 3 numbers: "
                         f"{raw.strip()!r}")
    unused = totals["v"] - int(used[1:].sum())
    if tokens[:1] in (["f"], ["v"]) and unused > 0 and used.any():
        raise ValueError(f"could not read mesh file {str(path)!r}: it looks truncated: it ends "
                         f"inside a line and {unused} of its {totals['v']} vertices are used "
                         "by no face")
    return names


def _check_ascii_ply(data: bytes, path: str | os.PathLike) -> None:
    """Refuse an ASCII PLY with fewer data lines than its header declares."""
    head, sep, body = data.partition(b"end_header")
    if not sep or b"format ascii" not in head:
        return
    counts = [int(m) for m in re.findall(rb"^element\s+\S+\s+(\d+)", head, re.M)]
    rows = body.split(b"\n")[1:]
    have = sum(1 for r in rows if r.strip())
    if have < sum(counts):
        raise ValueError(f"could not read mesh file {str(path)!r}: it is truncated: {have} of "
                         f"the {sum(counts)} data lines its header declares")


_PART = "__egosim_part_"
_PART_NAME = re.compile(rf"^{_PART}(\d+)(?:_|$)")


def _tag_obj_parts(text: str) -> tuple[str, list[tuple[str | None, str | None]]]:
    """OBJ ``text`` with every ``o`` / ``g`` statement replaced by ``o __egosim_part_<k>``,
    ``k`` indexing the returned ``(object, group)`` names in force from there on (None
    where the file has none), so that trimesh's ``split_objects`` keeps each object and
    group apart and its geometry names lead back to the file's names."""
    parts: list[tuple[str | None, str | None]] = []
    index: dict[tuple[str | None, str | None], int] = {}
    obj: str | None = None
    out = []
    for line in text.splitlines(keepends=True):
        tokens = line.split("#", 1)[0].split()
        if tokens and tokens[0] in ("o", "g"):
            name = " ".join(tokens[1:]) or None
            if tokens[0] == "o":
                obj, group = name, None
            else:
                group = name
            key = (obj, group)
            if key not in index:
                index[key] = len(parts)
                parts.append(key)
            out.append(f"o {_PART}{index[key]}\n")
        else:
            out.append(line)
    return "".join(out), parts


def _read_scene(p: Path):
    """``trimesh.Scene`` of ``p`` (OBJ/MTL text decoded by :func:`decode_text`) and, for
    an OBJ, the ``(object, group)`` names of its parts (:func:`_tag_obj_parts`), else None."""
    import trimesh
    from trimesh.resolvers import FilePathResolver

    class _TextResolver(FilePathResolver):
        def get(self, name: str) -> bytes:
            data = super().get(name)
            if name.strip().lower().endswith(".mtl"):
                return decode_text(data).encode("utf-8")
            return data

    suffix = p.suffix.lower()
    if suffix == ".obj":
        text = decode_text(p.read_bytes())
        check_obj_text(text, p)
        tagged, parts = _tag_obj_parts(text)
        scene = trimesh.load(io.BytesIO(tagged.encode("utf-8")), file_type="obj",
                             resolver=_TextResolver(str(p)), force="scene", process=False,
                             split_objects=True)
        return scene, parts
    if suffix == ".ply":
        with open(p, "rb") as fh:
            _check_ascii_ply(fh.read(), p)
    return trimesh.load(str(p), force="scene", process=False), None


def _from_file_name(name: str, p: Path) -> bool:
    """True when ``name`` is the file's name (or its stem), as trimesh names unnamed parts,
    possibly with a ``_<n>`` / ``.<n>`` / ``-<n>`` counter."""
    n = name.strip().lower()
    for base in (p.name.lower(), p.stem.lower()):
        if n == base or re.fullmatch(re.escape(base) + r"[_.\-]\d+", n):
            return True
    return False


def _part_names(node: str, geom_name: str, material: str, p: Path,
                parts: list[tuple[str | None, str | None]] | None
                ) -> tuple[list[str], str]:
    """(names that may label a part, most specific first; its instance key).

    OBJ parts (``parts`` given): the group, object and material names the file defines;
    the key is the object name (or the group's outside objects). Other formats: node,
    mesh and material names, never one trimesh made up from the file name; the key is the
    node."""
    if parts is not None:
        m = _PART_NAME.match(geom_name)
        obj, group = parts[int(m.group(1))] if m else (None, None)
        names = [n for n in (group, obj, material) if n]
        key = f"o:{obj}" if obj is not None else (f"g:{group}" if group is not None
                                                  else f"node:{node}")
        return names, key
    names = [n for n in (node, geom_name, material) if n and not _from_file_name(n, p)]
    return names, f"node:{node}"


def _label(names: list[str]) -> int:
    """Class of the first name with a class keyword (0, void, when none has one)."""
    for n in names:
        c = class_from_name(n)
        if c:
            return c
    return 0


def _image_rgb(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


class _Textures:
    """Collects distinct texture images, keyed by object identity."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self._index: dict[int, int] = {}

    def index(self, image) -> int:
        key = id(image)
        if key not in self._index:
            self._index[key] = len(self.images)
            self.images.append(_image_rgb(image))
        return self._index[key]


def _material_parts(material) -> tuple[np.ndarray, object | None]:
    """(linear RGB factor, texture image or None) of a trimesh material."""
    factor = None
    image = None
    if hasattr(material, "baseColorFactor"):  # PBRMaterial
        if material.baseColorFactor is not None:
            factor = np.asarray(material.baseColorFactor, np.float64)[:3] / 255.0
        image = material.baseColorTexture
    else:  # SimpleMaterial (OBJ/MTL)
        if getattr(material, "diffuse", None) is not None:
            factor = np.asarray(material.diffuse, np.float64)[:3] / 255.0
        image = getattr(material, "image", None)
    if factor is None:
        factor = np.ones(3)
    return factor, image


def _mesh_appearance(
    mesh, textures: _Textures, color: np.ndarray | None
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(albedo (F, 3) linear, texture index or -1, face UVs (F, 3, 2) or None)."""
    f = len(mesh.faces)
    visual = mesh.visual
    kind = getattr(visual, "kind", None)
    if color is not None:
        color = np.asarray(color, np.float64).reshape(3)
    if kind == "texture" and getattr(visual, "material", None) is not None:
        factor, image = _material_parts(visual.material)
        if color is not None:
            factor = color
        uv = getattr(visual, "uv", None)
        if image is not None and uv is not None and len(uv) == len(mesh.vertices):
            tex = textures.index(image)
            mean = srgb_to_linear(textures.images[tex].reshape(-1, 3).mean(0) / 255.0)
            face_uv = np.asarray(uv, np.float64)[mesh.faces]
            return np.broadcast_to(factor * mean, (f, 3)), tex, face_uv
        return np.broadcast_to(factor, (f, 3)), -1, None
    if kind == "face":
        rgb = np.asarray(visual.face_colors, np.float64)[:, :3] / 255.0
        return srgb_to_linear(rgb), -1, None
    if kind == "vertex":
        rgb = np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0
        return srgb_to_linear(rgb[mesh.faces].mean(axis=1)), -1, None
    return np.full((f, 3), 0.5) if color is None else np.broadcast_to(color, (f, 3)), -1, None


def _material_name(mesh) -> str:
    material = getattr(mesh.visual, "material", None)
    return str(getattr(material, "name", "") or "")


def load_mesh_arrays(
    path: str | os.PathLike,
    up_axis: str = "z",
    scale: float = 1.0,
    align_floor: bool = True,
    transform: np.ndarray | None = None,
    semantic: int | None = None,
    color: np.ndarray | None = None,
) -> dict:
    """Scene arrays of a mesh file.

    Args:
        path: OBJ, GLB, GLTF or PLY file.
        up_axis: the file's up axis, ``'z'`` (default) or ``'y'``.
        scale: uniform scale to metres applied first (e.g. 0.01 for centimetres).
        align_floor: shift along z so :func:`floor_height` becomes 0.
        transform: optional ``(4, 4)`` world-from-file transform applied after scaling
            (replaces the up-axis rotation; used for URDF/SDF poses).
        semantic: class id forcing every face's class (None: keywords and floor rule).
        color: optional ``(3,)`` linear RGB replacing the materials' colour factors
            (textured faces still multiply it by the texture's mean colour).

    Returns:
        dict with ``triangles`` float64 ``(F, 3, 3)``, ``face_semantic``,
        ``face_instance``, ``face_texture`` int32 ``(F,)``, ``face_albedo`` ``(F, 3)``,
        ``face_uv`` ``(F, 3, 2)`` and ``textures`` (list of uint8 images).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unsupported suffix, bad ``up_axis``/``scale``, unreadable or empty file
            (the message names the file).
    """
    import trimesh

    p = Path(path)
    if p.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(
            f"unsupported mesh file {str(p)!r}: suffix must be one of {', '.join(MESH_SUFFIXES)}"
        )
    if not p.is_file():
        raise FileNotFoundError(f"mesh file not found: {str(p)!r}")
    rot = up_axis_rotation(up_axis)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    if p.stat().st_size == 0:
        raise ValueError(f"mesh file {str(p)!r} is empty")
    try:
        loaded, parts = _read_scene(p)
    except ValueError as exc:
        if str(p) in str(exc):
            raise
        raise ValueError(f"could not read mesh file {str(p)!r}: {exc}") from exc
    except Exception as exc:  # trimesh raises many types on malformed input
        raise ValueError(f"could not read mesh file {str(p)!r}: {exc}") from exc
    world = np.eye(4)
    world[:3, :3] = rot
    if transform is not None:
        world = np.asarray(transform, np.float64)
    world = world @ np.diag([scale, scale, scale, 1.0])

    textures = _Textures()
    tris, sem, inst, tex, alb, uvs = [], [], [], [], [], []
    instances: dict[str, int] = {}
    for node in sorted(loaded.graph.nodes_geometry):
        node_tf, geom_name = loaded.graph[node]
        mesh = loaded.geometry.get(geom_name)
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        tf = world @ node_tf
        v = np.asarray(mesh.vertices, np.float64) @ tf[:3, :3].T + tf[:3, 3]
        t = v[np.asarray(mesh.faces)]
        if np.linalg.det(tf[:3, :3]) < 0:  # mirrored transform flips winding
            t = t[:, [0, 2, 1]]
        albedo, tex_id, face_uv = _mesh_appearance(mesh, textures, color)
        if face_uv is not None and np.linalg.det(tf[:3, :3]) < 0:
            face_uv = face_uv[:, [0, 2, 1]]
        f = len(t)
        names, key = _part_names(str(node), str(geom_name), _material_name(mesh), p, parts)
        label = _label(names) if semantic is None else semantic
        instance = instances.setdefault(key, len(instances) + 1)
        tris.append(t)
        sem.append(np.full(f, label, np.int32))
        inst.append(np.full(f, instance, np.int32))
        tex.append(np.full(f, tex_id, np.int32))
        alb.append(np.asarray(albedo, np.float64))
        uvs.append(np.zeros((f, 3, 2)) if face_uv is None else face_uv)
    if not tris:
        raise ValueError(f"mesh file {str(p)!r} contains no triangles")
    triangles = np.concatenate(tris)
    if not np.all(np.isfinite(triangles)):
        raise ValueError(f"mesh file {str(p)!r} has non-finite vertex coordinates")
    face_semantic = np.concatenate(sem)
    if align_floor:
        triangles[..., 2] -= floor_height(triangles)
    if semantic is None:
        n = face_normals(triangles)
        flat_low = (n[:, 2] >= np.cos(np.deg2rad(10.0))) & (
            np.abs(triangles[..., 2].mean(axis=1)) <= 0.05
        )
        face_semantic = np.where((face_semantic == 0) & flat_low, class_id("floor"), face_semantic)
    return {
        "triangles": triangles,
        "face_semantic": face_semantic.astype(np.int32),
        "face_instance": np.concatenate(inst),
        "face_texture": np.concatenate(tex),
        "face_albedo": np.clip(np.concatenate(alb), 0.0, 1.0).astype(np.float32),
        "face_uv": np.concatenate(uvs).astype(np.float32),
        "textures": textures.images,
    }
