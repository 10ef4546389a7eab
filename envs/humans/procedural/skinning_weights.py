"""Skinning weights and the joint regressor of the procedural body.

Weights: every vertex starts bound to the owner joint of its closest primitive (the bone it
was sculpted from); the binding is then diffused along the surface with a few steps of
uniform-Laplacian smoothing, so that weights blend over a few edge rings around each joint,
and finally sparsified to at most four joints with weight >= 0.04 and renormalised. Eye
joints carry no skin (the procedural body has no separate eyeballs).

Joint regressor: for each joint, non-negative weights over the surface vertices around it
(NNLS, with a sum-to-one row and a small ridge term that spreads the weight) reproduce the
designed joint centre, so ``J = J_regressor @ v`` follows shape changes of the surface.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from egosim.envs.humans.procedural.implicit_shapes import Primitive
from egosim.envs.humans.skeleton import NUM_JOINTS

__all__ = ["owner_joints", "vertex_adjacency", "smooth_field", "skinning_weights",
           "joint_regressor"]


def owner_joints(vertices: np.ndarray, prims: list[Primitive]) -> np.ndarray:
    """Owner joint ``(V,)`` int64 of each vertex: the joint of its closest primitive."""
    d = np.stack([p.distance(vertices) for p in prims], axis=1)
    owners = np.array([p.owner for p in prims])
    return owners[np.argmin(d, axis=1)]


def vertex_adjacency(faces: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """Row-normalised vertex adjacency ``(V, V)`` (uniform Laplacian averaging operator)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    a = sparse.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])),
                          shape=(num_vertices, num_vertices)).tocsr()
    a.data[:] = 1.0
    deg = np.asarray(a.sum(1)).ravel()
    return sparse.diags(1.0 / deg) @ a


def smooth_field(field: np.ndarray, adjacency: sparse.csr_matrix, iterations: int,
                 alpha: float = 0.5) -> np.ndarray:
    """Diffuse a per-vertex field ``(V, ...)``: ``f <- (1 - alpha) f + alpha A f``."""
    shape = field.shape
    f = field.reshape(shape[0], -1).astype(np.float64)
    for _ in range(iterations):
        f = (1.0 - alpha) * f + alpha * (adjacency @ f)
    return f.reshape(shape)


def skinning_weights(owners: np.ndarray, adjacency: sparse.csr_matrix, iterations: int = 8,
                     top_k: int = 4, min_weight: float = 0.04) -> np.ndarray:
    """Smooth sparse linear-blend-skinning weights.

    Args:
        owners: ``(V,)`` owner joint per vertex.
        adjacency: row-normalised adjacency from :func:`vertex_adjacency`.
        iterations: diffusion steps (blend width grows like ``sqrt(iterations)`` edges).
        top_k: maximum number of joints per vertex.
        min_weight: weights below this are dropped before renormalising.

    Returns:
        ``(V, 55)`` float64, rows sum to 1, at most ``top_k`` non-zeros per row.
    """
    n = len(owners)
    w = np.zeros((n, NUM_JOINTS))
    w[np.arange(n), owners] = 1.0
    w = smooth_field(w, adjacency, iterations)
    order = np.argsort(-w, axis=1, kind="stable")
    keep = np.zeros_like(w, dtype=bool)
    np.put_along_axis(keep, order[:, :top_k], True, axis=1)
    w = np.where(keep & (w >= min_weight), w, 0.0)
    return w / w.sum(1, keepdims=True)


def joint_regressor(vertices: np.ndarray, joints: np.ndarray, ridge: float = 1e-3,
                    tolerance: float = 5e-4) -> np.ndarray:
    """Convex vertex weights that reproduce each joint centre.

    For each joint the candidate vertices are those within ``1.6 x`` the distance to the
    nearest vertex (at least 24); the radius grows until NNLS reaches ``tolerance``.

    Args:
        vertices: ``(V, 3)`` template vertices (m).
        joints: ``(J, 3)`` designed joint centres (m).
        ridge: weight of the ``||w||^2`` term that spreads weight over the candidates.
        tolerance: accepted reproduction error (m).

    Returns:
        ``(J, V)`` float64, non-negative, rows summing to 1.
    """
    from scipy.optimize import nnls

    reg = np.zeros((len(joints), len(vertices)))
    for j, p in enumerate(joints):
        d = np.linalg.norm(vertices - p, axis=1)
        order = np.argsort(d, kind="stable")
        scale = 1.6
        while True:
            cand = order[: max(24, int(np.sum(d <= scale * d[order[0]])))]
            k = len(cand)
            a = np.vstack([1e3 * vertices[cand].T, 1e3 * np.ones((1, k)),
                           np.sqrt(ridge) * np.eye(k)])
            b = np.concatenate([1e3 * p, [1e3], np.zeros(k)])
            w, _ = nnls(a, b, maxiter=50 * k)
            w = w / w.sum()
            err = np.linalg.norm(w @ vertices[cand] - p)
            if err <= tolerance or scale > 12:
                break
            scale *= 1.4
        reg[j, cand] = w
    return reg
