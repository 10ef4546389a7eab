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

Generation (deterministic, ~10 s for all three genders on 2 cores) sculpts the body from
implicit primitives (:mod:`.primitives`), meshes and decimates it to exactly 10,475 vertices
(:mod:`.meshing`), puts the vertex ids used by smplx's extra joints and by the SSM2 markers
at their anatomical places (:mod:`.anatomy`), then derives skinning weights and the joint
regressor (:mod:`.skinning`), shape/expression directions and the male/female variants
(:mod:`.shape_space`), the hand basis (:mod:`.hands`) and the facial landmarks
(:mod:`.landmarks`). Files are cached under ``cache_dir("bodies", GENERATOR_VERSION)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from egosim.envs.humans.model_files import GENDERS, model_filename
from egosim.envs.humans.skeleton import JOINT_NAMES, NUM_JOINTS, PARENTS, PELVIS_HEIGHT, rest_joints

__all__ = ["GENERATOR_VERSION", "NUM_VERTICES", "generate_body_arrays",
           "procedural_model_path", "procedural_model_dir"]

#: Bump whenever the generated arrays change; it keys the cache.
GENERATOR_VERSION = "procedural-smplx-1"
#: SMPL-X's vertex count.
NUM_VERTICES = 10475
#: Marching-cubes grid step (m).
GRID_SPACING = 0.004
_NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9


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


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def procedural_model_path(gender: str = "neutral") -> Path:
    """Path of the cached procedural ``SMPLX_{GENDER}.npz``, generating all three if missing.

    Safe with several processes: files appear atomically (a race only costs a second
    generation).
    """
    name = model_filename(gender)
    folder = procedural_model_dir()
    path = folder / name
    if not path.exists():
        for g, arrays in generate_body_arrays().items():
            target = folder / model_filename(g)
            if not target.exists():
                _write_atomic(target, arrays)
    return path
