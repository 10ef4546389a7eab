"""The embedded procedural SMPL-X body: generation, file format and cache.

The procedural files stand in for the licensed ``SMPLX_{NEUTRAL,MALE,FEMALE}.npz`` and use
exactly their format, so ``smplx.SMPLX(model_path=file)`` loads them unchanged:

| key                        | shape            | content                                   |
|----------------------------|------------------|-------------------------------------------|
| ``v_template``             | (10475, 3)       | T-pose template (m), pelvis at the origin |
| ``f``                      | (20946, 3)       | triangles, closed genus-0 surface         |
| ``J_regressor``            | (55, 10475)      | convex vertex weights per joint           |
| ``weights``                | (10475, 55)      | skinning weights (<= 4 joints per vertex) |
| ``kintree_table``          | (2, 55)          | SMPL-X parents / joint ids                |
| ``shapedirs``              | (10475, 3, 20)   | 10 shape + 10 expression directions       |
| ``posedirs``               | (10475, 3, 486)  | zeros: no pose correctives                |
| ``hands_components{l,r}``  | (45, 45)         | orthonormal hand pose basis               |
| ``hands_mean{l,r}``        | (45,)            | relaxed hand pose                         |
| ``lmk_faces_idx``          | (51,)            | static facial landmarks: faces            |
| ``lmk_bary_coords``        | (51, 3)          | ... and barycentric coordinates           |
| ``dynamic_lmk_faces_idx``  | (79, 17)         | jaw contour per neck-yaw bin              |
| ``dynamic_lmk_bary_coords``| (79, 17, 3)      |                                           |
| ``joint_names``            | (55,)            | extra: SMPL-X joint names                 |
| ``generator_version``      | ()               | extra: :data:`GENERATOR_VERSION`          |
| ``cache_key``              | ()               | extra: ``<GENERATOR_VERSION>/<gender>``   |
| ``checksum``               | ()               | extra: checksum of all the other arrays   |

Generation (deterministic, ~10 s for all three genders on 2 cores) sculpts the body from
implicit primitives (:mod:`.primitives`), meshes and decimates it to exactly 10,475 vertices
(:mod:`.meshing`), puts the vertex ids used by smplx's extra joints and by the SSM2 markers
at their anatomical places (:mod:`.anatomy`), then derives skinning weights and the joint
regressor (:mod:`.skinning`), shape/expression directions and the male/female variants
(:mod:`.shape_space`), the hand basis (:mod:`.hands`) and the facial landmarks
(:mod:`.landmarks`). Files are cached under ``cache_dir("bodies", GENERATOR_VERSION)``.

The cached files are self-checking entries (:mod:`egosim.cache_entry`): before a file is
used its keys, dtypes, shapes, finiteness, key and checksum are verified (once per process
and file version); a missing or bad file (truncated, zeroed, garbage, a flipped bit) is
reported (:class:`~egosim.cache_entry.CorruptCacheWarning`), deleted and generated again.
Generation holds a file lock, so processes starting together generate once; files appear
atomically (:mod:`egosim.atomic_io`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from egosim.atomic_io import file_lock
from egosim.cache_entry import ArraySpec, discard_entry, entry_problem, read_npz, save_entry
from egosim.envs.humans.model_files import GENDERS, model_filename
from egosim.envs.humans.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, PELVIS_HEIGHT, rest_joints

__all__ = ["GENERATOR_VERSION", "NUM_VERTICES", "BODY_FILE_SPEC", "generate_body_arrays",
           "body_file_problem", "procedural_model_path", "procedural_model_dir"]

#: Bump whenever the generated arrays change; it keys the cache.
GENERATOR_VERSION = "procedural-smplx-2"
#: SMPL-X's vertex count.
NUM_VERTICES = 10475
#: Marching-cubes grid step (m).
GRID_SPACING = 0.004
_NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9
_NUM_FACES = 20946

#: Layout of a procedural file (checked before use).
BODY_FILE_SPEC: dict[str, ArraySpec] = {
    "v_template": ArraySpec("float64", (NUM_VERTICES, 3), finite=True),
    "f": ArraySpec("int32", (_NUM_FACES, 3)),
    "J_regressor": ArraySpec("float64", (NUM_JOINTS, NUM_VERTICES), finite=True),
    "weights": ArraySpec("float64", (NUM_VERTICES, NUM_JOINTS), finite=True),
    "kintree_table": ArraySpec("int64", (2, NUM_JOINTS)),
    "shapedirs": ArraySpec("float64", (NUM_VERTICES, 3, 20), finite=True),
    "posedirs": ArraySpec("float32", (NUM_VERTICES, 3, _NUM_POSE_BASIS), finite=True),
    "hands_componentsl": ArraySpec("float64", (45, 45), finite=True),
    "hands_componentsr": ArraySpec("float64", (45, 45), finite=True),
    "hands_meanl": ArraySpec("float64", (45,), finite=True),
    "hands_meanr": ArraySpec("float64", (45,), finite=True),
    "lmk_faces_idx": ArraySpec("int64", (51,)),
    "lmk_bary_coords": ArraySpec("float64", (51, 3), finite=True),
    "dynamic_lmk_faces_idx": ArraySpec("int64", (79, 17)),
    "dynamic_lmk_bary_coords": ArraySpec("float64", (79, 17, 3), finite=True),
    "joint_names": ArraySpec("U", (NUM_JOINTS,)),
    "generator_version": ArraySpec("U", ()),
}


def _neutral_mesh() -> dict[str, np.ndarray]:
    """Neutral surface, re-indexed, with per-vertex owners (floor coordinates)."""
    from egosim.envs.humans.procedural.anatomy import assign_vertex_ids, vertex_targets
    from egosim.envs.humans.procedural.implicit_shapes import body_primitives
    from egosim.envs.humans.procedural.meshing import decimate_exact, extract_surface
    from egosim.envs.humans.procedural.skinning_weights import owner_joints

    prims = body_primitives()
    v, f = extract_surface(prims, GRID_SPACING)
    v, f = decimate_exact(v, f, NUM_VERTICES, prims)
    owners = owner_joints(v, prims)
    key = owners * 10.0 + (v[:, 1] - v[:, 1].min()) / (np.ptp(v[:, 1]) + 1e-9)
    perm = assign_vertex_ids(v, f, vertex_targets(), order_key=key)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(len(perm))
    return {"v": v[perm], "f": inverse[f], "owners": owners[perm]}


def generate_body_arrays() -> dict[str, dict[str, np.ndarray]]:
    """Generate the three procedural SMPL-X model files in memory (no caching).

    Returns:
        ``{gender: {npz key: array}}`` for ``neutral``, ``male``, ``female``; see the module
        docstring for the keys. Deterministic: the same bytes on every call.
    """
    from egosim.envs.humans.procedural.hands import hand_components, hand_mean
    from egosim.envs.humans.procedural.implicit_shapes import body_primitives
    from egosim.envs.humans.procedural.landmarks import facial_landmarks
    from egosim.envs.humans.procedural.shape_space import (
        chest_field,
        expression_directions,
        gender_offset,
        shape_directions,
    )
    from egosim.envs.humans.procedural.skinning_weights import (
        joint_regressor,
        skinning_weights,
        vertex_adjacency,
    )

    mesh = _neutral_mesh()
    v, f, owners = mesh["v"], mesh["f"], mesh["owners"]
    prims = body_primitives()
    adj = vertex_adjacency(f, len(v))
    weights = skinning_weights(owners, adj)
    regressor = joint_regressor(v, rest_joints(floor=True))
    shapedirs = np.concatenate([shape_directions(v, owners, prims, adj),
                                expression_directions(v, owners, adj)], axis=2)
    # Gaussian tails would become float32 subnormals, which slow CPU arithmetic ~2x
    shapedirs[np.abs(shapedirs) < 1e-7] = 0.0
    regressor[regressor < 1e-7] = 0.0
    regressor /= regressor.sum(1, keepdims=True)
    chest = chest_field(v, adj)
    lmk = facial_landmarks(v, f)
    kintree = np.stack([PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # SMPL-X files store the root's parent as uint32(-1)
    common = {
        "f": f.astype(np.int32),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "shapedirs": shapedirs,
        "posedirs": np.zeros((len(v), 3, _NUM_POSE_BASIS), dtype=np.float32),
        "hands_componentsl": hand_components("left"),
        "hands_componentsr": hand_components("right"),
        "hands_meanl": hand_mean("left"),
        "hands_meanr": hand_mean("right"),
        **lmk,
        "joint_names": np.array(JOINT_NAMES),
        "generator_version": np.array(GENERATOR_VERSION),
    }
    shift = np.array([0.0, PELVIS_HEIGHT, 0.0])
    out: dict[str, dict[str, np.ndarray]] = {}
    for gender in GENDERS:
        template = v + gender_offset(gender, shapedirs, chest) - shift
        out[gender] = {"v_template": template, **common}
    return out


def procedural_model_dir() -> Path:
    """Cache folder of the procedural files (``cache_dir("bodies", GENERATOR_VERSION)``)."""
    from egosim.paths import cache_dir

    return cache_dir("bodies", GENERATOR_VERSION)


def _entry_key(gender: str) -> str:
    return f"{GENERATOR_VERSION}/{gender}"


#: (path, gender) -> (inode, size, mtime) of the file when last found good in this process.
_GOOD: dict[tuple[Path, str], tuple[int, int, int]] = {}


def body_file_problem(path: Path, gender: str) -> str | None:
    """What is wrong with the procedural file ``path`` of ``gender`` (``"missing"`` when
    absent), or None when it is good; good results are remembered per file version."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    ident = (st.st_ino, st.st_size, st.st_mtime_ns)
    if _GOOD.get((path, gender)) == ident:
        return None
    arrays, problem = read_npz(path)
    if arrays is not None:
        problem = entry_problem(arrays, _entry_key(gender), BODY_FILE_SPEC)
    if problem is None:
        _GOOD[(path, gender)] = ident
    return problem


def procedural_model_path(gender: str = "neutral") -> Path:
    """Path of the cached procedural ``SMPLX_{GENDER}.npz``, checked; a missing or bad file
    (reported and deleted) is generated again, with the other genders' missing or bad ones.

    Safe with several processes: generation holds a lock (the others wait, then use its
    files) and files appear atomically.
    """
    name = model_filename(gender)
    folder = procedural_model_dir()
    path = folder / name
    if body_file_problem(path, gender) is None:
        return path
    with file_lock(folder / "generate"):
        bad = {g: body_file_problem(folder / model_filename(g), g) for g in GENDERS}
        bad = {g: problem for g, problem in bad.items() if problem is not None}
        if bad:
            for g, problem in bad.items():
                if problem != "missing":
                    discard_entry(folder / model_filename(g), problem, "procedural body file")
            generated = generate_body_arrays()
            for g in bad:
                target = folder / model_filename(g)
                save_entry(target, _entry_key(g), generated[g], compress=True)
    return path
