"""Batched body evaluation for motion data: markers and joints of SMPL-X parameter sequences.

A thin layer over :class:`egosim.envs.humans.BodyModel` (its sparse ``vertices_subset`` fast
path), with one cached model per gender and numpy in/out (float64). Besides the 67 markers it
can pose a few *sole points* (:func:`sole_vertex_ids`: the lowest rest-pose vertices under
each foot, heel to toe), which is what really touches the floor: the SSM2 foot markers sit on
the skin 2-5 cm above the sole. SMPL-X applies
``global_orient`` about the pelvis joint ``J0(betas)`` of the rest pose, so the posed pelvis is
``J0 + transl`` whatever the orientation; :func:`rest_joints` gives ``J0`` and the others.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["GENDER_CODES", "gender_code", "body_model", "sole_vertex_ids", "evaluate",
           "rest_joints", "leg_length"]

#: Integer code of each gender (the dataset's ``gender`` array).
GENDER_CODES: dict[str, int] = {"neutral": 0, "male": 1, "female": 2}


def gender_code(gender: str) -> int:
    """``0`` neutral, ``1`` male, ``2`` female; ValueError names the allowed values."""
    if gender not in GENDER_CODES:
        raise ValueError(f"gender must be one of {', '.join(GENDER_CODES)}; got {gender!r}")
    return GENDER_CODES[gender]


@lru_cache(maxsize=3)
def body_model(gender: str = "neutral") -> Any:
    """The process-wide :class:`~egosim.envs.humans.BodyModel` for ``gender`` (cached)."""
    gender_code(gender)
    from egosim.envs.humans import BodyModel

    return BodyModel(gender=gender)


@lru_cache(maxsize=3)
def sole_vertex_ids(gender: str = "neutral", per_foot: int = 8) -> np.ndarray:
    """Vertex ids ``(2 * per_foot,)`` along the soles (left foot first), heel to toe.

    From the rest pose (mean shape): the vertices within 1 cm of the lowest point under each
    foot are split into ``per_foot`` bins along the foot's length (``z``); the lowest vertex
    of each non-empty bin is kept.
    """
    import torch

    model = body_model(gender)
    with torch.no_grad():
        v = model(betas=torch.zeros(1, model.num_betas)).vertices[0].double().numpy()
    ids: list[int] = []
    for side in (1.0, -1.0):  # SMPL-X +x is the body's left
        foot = np.flatnonzero((side * v[:, 0] > 0) & (v[:, 1] < v[:, 1].min() + 0.01))
        z = v[foot, 2]
        edges = np.linspace(z.min(), z.max() + 1e-9, per_foot + 1)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            sel = foot[(z >= a) & (z < b)]
            if sel.size:
                ids.append(int(sel[np.argmin(v[sel, 1])]))
    return np.asarray(ids, dtype=np.int64)


@lru_cache(maxsize=6)
def _sparse(gender: str, with_soles: bool) -> Any:
    from egosim.envs.humans import MARKER_VERTEX_IDS
    from egosim.envs.humans.subset_skinning import SparseLBS

    ids = np.asarray(MARKER_VERTEX_IDS, dtype=np.int64)
    if with_soles:
        ids = np.concatenate([ids, sole_vertex_ids(gender)])
    return ids, SparseLBS(body_model(gender).smplx, ids)


def evaluate(global_orient: np.ndarray, body_pose: np.ndarray, transl: np.ndarray,
             betas: np.ndarray, gender: str = "neutral", chunk: int = 4096,
             soles: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Markers and joints of posed bodies.

    Args:
        global_orient: ``(T, 3)`` axis-angle (rad).
        body_pose: ``(T, 63)`` axis-angles of the 21 body joints (rad).
        transl: ``(T, 3)`` (m).
        betas: ``(10,)`` shared by all frames, or ``(T, 10)``.
        gender: body model gender.
        chunk: frames per body-model call.
        soles: also pose the sole points of :func:`sole_vertex_ids`.

    Returns:
        ``markers (T, 67, 3)`` (``(T, 67 + S, 3)`` with the ``S`` sole points appended when
        ``soles``) and ``joints (T, 55, 3)``, float64, in the frame the parameters define
        (the z-up world for :class:`~egosim.envs.motion.MotionClip` parameters).
    """
    import torch

    go = np.asarray(global_orient, dtype=np.float64).reshape(-1, 3)
    n = go.shape[0]
    bp = np.asarray(body_pose, dtype=np.float64).reshape(n, 63)
    tr = np.asarray(transl, dtype=np.float64).reshape(n, 3)
    b = np.asarray(betas, dtype=np.float64)
    b = np.repeat(b[None], n, axis=0) if b.ndim == 1 else b.reshape(n, -1)
    model = body_model(gender)
    ids, sparse = _sparse(gender, soles)
    markers = np.empty((n, len(ids), 3))
    joints = np.empty((n, 55, 3))
    with torch.no_grad():
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            out = model.vertices_subset(ids, sparse=sparse, betas=b[s:e], global_orient=go[s:e],
                                        body_pose=bp[s:e], transl=tr[s:e])
            markers[s:e] = out.vertices.double().numpy()
            joints[s:e] = out.joints.double().numpy()
    return markers, joints


def rest_joints(betas: np.ndarray, gender: str = "neutral") -> np.ndarray:
    """Rest-pose (T-pose, zero ``transl``) joints ``(55, 3)`` in the SMPL-X body frame (m)."""
    z = np.zeros((1, 3))
    return evaluate(z, np.zeros((1, 63)), z, np.asarray(betas, dtype=np.float64), gender)[1][0]


def leg_length(betas: np.ndarray, gender: str = "neutral") -> float:
    """Mean hip-knee-ankle length of the two legs at rest (m)."""
    j = rest_joints(betas, gender)
    total = 0.0
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        total += np.linalg.norm(j[knee] - j[hip]) + np.linalg.norm(j[ankle] - j[knee])
    return float(total / 2.0)
