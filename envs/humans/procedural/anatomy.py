"""Anatomical targets for SMPL-X vertex ids and the vertex re-indexing that honours them.

Code elsewhere (smplx's extra joints, the SSM2 marker set of EgoGen) refers to SMPL-X
vertices by index. The procedural mesh has its own vertex order, so each such index gets an
anatomical target: a ray from a point inside the body (``anchor``) in a ``direction``; where
the ray leaves the surface is the target, and the nearest still-free vertex is moved to that
index. Coordinates are floor coordinates (m) of the SMPL-X frame: ``+x`` left, ``+y`` up,
``+z`` forward. A leading ``L``/``R`` (``l``/``r`` for smplx's names) means the body's left
(``+x``) or right (``-x``) side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.envs.humans.marker_set import load_marker_file
from egosim.envs.humans.skeleton import design_point

__all__ = ["SurfaceTarget", "vertex_targets", "ray_exit",
           "assign_vertex_ids"]


@dataclass(frozen=True)
class SurfaceTarget:
    """Where a named vertex id must sit.

    Attributes:
        name: marker or landmark name (e.g. ``"LHEE"``, ``"nose"``).
        vertex_id: the SMPL-X vertex index that must land there.
        anchor: ``(3,)`` ray origin inside the body (m, floor coordinates).
        direction: ``(3,)`` ray direction (any length) pointing to the surface.
    """

    name: str
    vertex_id: int
    anchor: np.ndarray
    direction: np.ndarray


def _p(name: str) -> np.ndarray:
    return design_point(name, floor=True)


def _side_specs(s: float) -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
    """Marker specs for one side (``s = +1`` left, ``-1`` right), names without L/R."""
    side = "left" if s > 0 else "right"
    knee, ankle, elbow, wrist = (_p(f"{side}_knee"), _p(f"{side}_ankle"), _p(f"{side}_elbow"),
                                 _p(f"{side}_wrist"))
    a = np.array
    return {
        "FWT": (a([s * 0.09, 0.98, 0.0]), (s * 0.35, 0.0, 1.0)),
        "BWT": (a([s * 0.06, 0.98, 0.0]), (s * 0.3, 0.0, -1.0)),
        "BAK": (a([s * 0.08, 1.28, 0.0]), (s * 0.25, 0.0, -1.0)),
        "BSH": (a([s * 0.15, 1.40, -0.02]), (0.0, 0.3, -1.0)),
        "SHO": (a([s * 0.165, 1.40, -0.018]), (0.0, 1.0, 0.0)),
        "NWST": (a([s * 0.07, 1.06, 0.0]), (s * 1.0, 0.0, 0.4)),
        "BUM": (a([s * 0.075, 0.86, -0.03]), (0.0, 0.0, -1.0)),
        "THI": (a([s * 0.09, 0.68, 0.0]), (s * 1.0, 0.0, 0.0)),
        "FTHI": (a([s * 0.088, 0.74, 0.0]), (0.0, 0.0, 1.0)),
        "FTHIIN": (a([s * 0.09, 0.62, 0.0]), (-s * 0.7, 0.0, 1.0)),
        "KNE": (knee, (s * 1.0, 0.0, 0.0)),
        "KNI": (knee, (-s * 1.0, 0.0, 0.0)),
        "TIB": (a([s * 0.098, 0.30, -0.01]), (s * 0.6, 0.0, 1.0)),
        "ANK": (ankle, (s * 1.0, 0.0, 0.0)),
        "HEE": (a([s * 0.10, 0.045, -0.03]), (0.0, -0.15, -1.0)),
        "TOE": (a([s * 0.11, 0.025, 0.12]), (0.0, 0.12, 1.0)),
        "MT1": (a([s * 0.10, 0.03, 0.09]), (-s * 1.0, 0.2, 0.0)),
        "MT5": (a([s * 0.11, 0.03, 0.07]), (s * 1.0, 0.2, 0.0)),
        "RSTBEEF": (a([s * 0.103, 0.05, 0.04]), (0.0, 1.0, 0.35)),
        "BCEP": (a([s * 0.29, 1.403, -0.022]), (0.0, 0.3, 1.0)),
        "ELB": (elbow, (0.0, 0.4, -1.0)),
        "ELBIN": (elbow, (0.0, -1.0, 0.3)),
        "FRM2": (a([s * 0.55, 1.40, -0.023]), (0.0, 0.5, -1.0)),
        "FRM2IN": (a([s * 0.55, 1.40, -0.023]), (0.0, -0.5, 1.0)),
        "IWR": (wrist, (0.0, 0.0, 1.0)),
        "OWR": (wrist, (0.0, 0.0, -1.0)),
        "FIN": (a([s * 0.745, 1.396, -0.016]), (0.0, 1.0, 0.0)),
        "THMB": (_p(f"{side}_thumb3"), (0.0, 1.0, 0.3)),
        "CHEECK": (a([s * 0.03, 1.57, 0.03]), (s * 0.7, 0.0, 1.0)),
        "FHD": (a([s * 0.03, 1.65, 0.0]), (s * 0.45, 0.35, 1.0)),
        "BHD": (a([s * 0.03, 1.63, 0.0]), (s * 0.45, 0.25, -1.0)),
        "BUST": (a([s * 0.085, 1.27, 0.0]), (s * 0.1, 0.0, 1.0)),
        "BUSTLO": (a([s * 0.085, 1.22, 0.0]), (s * 0.1, -0.1, 1.0)),
    }


_MIDLINE = {
    "C7": (np.array([0.0, 1.455, -0.03]), (0.0, 0.25, -1.0)),
    "CLAV": (np.array([0.0, 1.42, -0.02]), (0.0, 0.1, 1.0)),
    "STRN": (np.array([0.0, 1.30, 0.0]), (0.0, 0.0, 1.0)),
    "T8": (np.array([0.0, 1.29, 0.0]), (0.0, 0.0, -1.0)),
    "MBLLY": (np.array([0.0, 1.05, 0.0]), (0.0, 0.0, 1.0)),
}


def _marker_spec(name: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    if name in _MIDLINE:
        return _MIDLINE[name]
    if name[0] in "LR":
        specs = _side_specs(1.0 if name[0] == "L" else -1.0)
        if name[1:] in specs:
            return specs[name[1:]]
    raise KeyError(f"no anatomical target defined for marker {name!r}")


def _smplx_extra_specs() -> dict[str, tuple[np.ndarray, tuple[float, float, float]]]:
    out: dict[str, tuple[np.ndarray, tuple[float, float, float]]] = {
        "nose": (np.array([0.0, 1.575, 0.08]), (0.0, -0.15, 1.0)),
    }
    for s, side, c in ((1.0, "left", "l"), (-1.0, "right", "r")):
        out[f"{c}eye"] = (_p(f"{side}_eye_smplhf"), (0.0, 0.0, 1.0))
        out[f"{c}ear"] = (np.array([s * 0.06, 1.595, -0.008]), (s * 1.0, 0.0, 0.0))
        for f in ("thumb", "index", "middle", "ring", "pinky"):
            j3 = _p(f"{side}_{f}3")
            out[f"{c}{f}"] = (j3, tuple(_p(f"{side}_{f}_tip") - j3))
        big = "LBigToe" if s > 0 else "RBigToe"
        small = "LSmallToe" if s > 0 else "RSmallToe"
        heel = "LHeel" if s > 0 else "RHeel"
        out[big] = (np.array([s * 0.095, 0.025, 0.13]), (-s * 0.3, 0.1, 1.0))
        out[small] = (np.array([s * 0.125, 0.022, 0.12]), (s * 0.5, 0.1, 1.0))
        out[heel] = (np.array([s * 0.10, 0.04, -0.03]), (0.0, -0.5, -1.0))
    return out


def vertex_targets() -> list[SurfaceTarget]:
    """Targets for every vertex id used by smplx's extra joints and the SSM2-67 markers.

    smplx's extra joints come first (finger tips and toes need the few vertices there),
    then the markers in file order. An id used twice (``LHEE`` = smplx's ``LHeel``) keeps
    its first target.
    """
    from smplx.vertex_ids import vertex_ids as smplx_vertex_ids

    targets: list[SurfaceTarget] = []
    seen: set[int] = set()
    extra = _smplx_extra_specs()
    items = [(n, i, extra[n]) for n, i in smplx_vertex_ids["smplx"].items()]
    items += [(n, i, _marker_spec(n)) for n, i in load_marker_file()["markers"].items()]
    for name, vid, (anchor, direction) in items:
        if vid in seen:
            continue
        seen.add(vid)
        targets.append(SurfaceTarget(name, int(vid), np.asarray(anchor, dtype=np.float64),
                                     np.asarray(direction, dtype=np.float64)))
    return targets


def ray_exit(
    vertices: np.ndarray, faces: np.ndarray, anchors: np.ndarray, directions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First surface hit of rays from ``anchors`` ``(R, 3)`` along ``directions`` ``(R, 3)``.

    Returns ``(points (R, 3) m, face indices (R,))``; raises ValueError if a ray misses.
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    d = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    locs, ray_idx, tri_idx = mesh.ray.intersects_location(anchors, d, multiple_hits=True)
    points = np.full((len(anchors), 3), np.nan)
    fidx = np.full(len(anchors), -1, dtype=np.int64)
    best = np.full(len(anchors), np.inf)
    dist = np.einsum("ij,ij->i", locs - anchors[ray_idx], d[ray_idx])
    for k in np.argsort(dist, kind="stable"):
        r = ray_idx[k]
        if dist[k] > 0 and dist[k] < best[r]:
            best[r] = dist[k]
            points[r] = locs[k]
            fidx[r] = tri_idx[k]
    if np.any(fidx < 0):
        raise ValueError(f"{int((fidx < 0).sum())} anatomical rays missed the surface")
    return points, fidx


def assign_vertex_ids(
    vertices: np.ndarray, faces: np.ndarray, targets: list[SurfaceTarget],
    order_key: np.ndarray | None = None,
) -> np.ndarray:
    """Permutation that puts each target's nearest free vertex at the target's index.

    Args:
        vertices: ``(V, 3)`` surface vertices (m).
        faces: ``(F, 3)`` triangles.
        targets: anatomical targets (ids in ``[0, V)``, unique).
        order_key: optional ``(V,)`` sort key for the vertices that fill the other slots
            (defaults to the current order).

    Returns:
        ``perm`` ``(V,)`` int64: new vertex ``i`` is old vertex ``perm[i]``.
    """
    n = len(vertices)
    anchors = np.stack([t.anchor for t in targets])
    dirs = np.stack([t.direction for t in targets])
    hits, _ = ray_exit(vertices, faces, anchors, dirs)
    perm = -np.ones(n, dtype=np.int64)
    used = np.zeros(n, dtype=bool)
    for t, h in zip(targets, hits, strict=True):
        d2 = ((vertices - h) ** 2).sum(1)
        d2[used] = np.inf
        old = int(np.argmin(d2))
        used[old] = True
        perm[t.vertex_id] = old
    rest = np.flatnonzero(~used)
    if order_key is not None:
        rest = rest[np.argsort(order_key[rest], kind="stable")]
    perm[perm < 0] = rest
    return perm
