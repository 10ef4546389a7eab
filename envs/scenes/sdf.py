"""Signed distance field of a scene, sampled on a regular 3-D grid.

Build: exact point-to-mesh distances from libigl. Closed scenes (a union of closed
solids; inside any solid is negative) are signed by the fast winding number, evaluated
only where the sign cannot be carried over from a coarser node (see ``_Evaluator``);
open meshes by the closest point's pseudonormal (negative behind the nearest surface).

Distances are evaluated coarse-to-fine: the grid is refined by factors of 2 from a coarse
level (at most 16^3 nodes). A node of a finer level is computed exactly when it lies in a
coarse cell whose corner values come within the cell's diagonal (plus a quarter cell) of
a surface, or within ``exact_band`` (0.3 m) of one; otherwise it is interpolated
trilinearly from the coarse level. A cell left to interpolation holds no surface, so its
values keep the right sign; their magnitude can be underestimated near ridges of the
field (e.g. half-way between floor and ceiling) by up to about half a coarse cell. Nodes
within ``exact_band`` of a surface are exact (to float32; the sign of nodes within ~1 mm
of a surface is arbitrary).

Inside overlapping solids the magnitude is the distance to the nearest triangle, which
may be an internal face of the union, so depths there are lower bounds; outside, the
distance is exact.

Query: trilinear interpolation of the grid (``scipy.ndimage.map_coordinates``). A point
outside the grid box is clamped onto the box and the Euclidean distance from the point to
the box is added to the value found there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["SDFGrid", "build_sdf_grid", "choose_resolution"]

_COARSE_NODES = 16**3
_SIGN_TOL = 1e-3


@dataclass
class SDFGrid:
    """Signed distances on the nodes of a regular grid.

    Attributes:
        values: ``(NX, NY, NZ)`` float32 signed distance in metres at node
            ``origin + (i, j, k) * resolution``; negative inside solids.
        origin: ``(3,)`` float64 world position of node ``(0, 0, 0)``, metres.
        resolution: node spacing in metres (the resolution actually used, after the
            voxel cap).
    """

    values: np.ndarray
    origin: np.ndarray
    resolution: float

    @property
    def box(self) -> np.ndarray:
        """``(2, 3)`` world-frame box spanned by the nodes."""
        hi = self.origin + (np.array(self.values.shape) - 1) * self.resolution
        return np.stack([self.origin, hi])

    def query(self, points: np.ndarray) -> np.ndarray:
        """Signed distance at ``(..., 3)`` world points -> ``(...)`` float32 metres."""
        p = np.asarray(points, np.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {p.shape}")
        flat = p.reshape(-1, 3)
        box = self.box
        clamped = np.clip(flat, box[0], box[1])
        outside = np.linalg.norm(flat - clamped, axis=1)
        coords = ((clamped - self.origin) / self.resolution).T
        vals = ndimage.map_coordinates(self.values, coords, order=1, mode="nearest")
        return (vals + outside).astype(np.float32).reshape(p.shape[:-1])


def choose_resolution(
    bounds: np.ndarray, resolution: float, max_voxels: int, margin: float
) -> float:
    """Grid spacing: ``resolution``, coarsened just enough to keep at most ``max_voxels``
    nodes over ``bounds`` ``(2, 3)`` padded by ``margin`` metres."""
    ext = np.asarray(bounds[1] - bounds[0], np.float64) + 2 * margin
    res = float(resolution)
    while np.prod(np.ceil(ext / res) + 1) > max_voxels:
        res *= 1.05
    return res


class _Evaluator:
    """Exact signed distances to an indexed mesh (libigl).

    Open meshes: ``igl.signed_distance`` with pseudonormal signs. Closed meshes: the
    unsigned distance ``u`` from an AABB tree; the sign is copied from a reference point
    (a coarser grid node) when that point lies within ``u`` (the ball of radius ``u``
    holds no surface, so the sign cannot change), and otherwise comes from the fast
    winding number (inside where it exceeds 0.5).
    """

    def __init__(self, v: np.ndarray, f: np.ndarray, closed: bool) -> None:
        import igl

        self._igl = igl
        self.v = np.ascontiguousarray(v, np.float64)
        self.f = np.ascontiguousarray(f, np.int64)
        self.closed = closed
        if closed:
            self.tree = igl.AABB()
            self.tree.init(self.v, self.f)
            self.fwn = igl.FastWindingNumberBVH()
            self.fwn.init(self.v, self.f, 2)

    def __call__(
        self,
        points: np.ndarray,
        ref_sign: np.ndarray | None = None,
        ref_dist: np.ndarray | None = None,
    ) -> np.ndarray:
        p = np.ascontiguousarray(points, np.float64)
        if p.shape[0] == 0:
            return np.zeros(0)
        if not self.closed:
            igl = self._igl
            sign = igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL
            return igl.signed_distance(p, self.v, self.f, sign_type=sign)[0]
        u = np.sqrt(np.maximum(self.tree.squared_distance(self.v, self.f, p)[0], 0.0))
        if ref_sign is None:
            sign = np.ones_like(u)
            unknown = np.ones(u.shape, bool)
        else:
            sign = np.where(ref_sign < 0, -1.0, 1.0)
            # A reference within ~1 mm of a surface has an unreliable sign of its own.
            unknown = (u <= ref_dist + _SIGN_TOL) | (np.abs(ref_sign) <= _SIGN_TOL)
        if np.any(unknown):
            w = self.fwn.winding_number(np.ascontiguousarray(p[unknown]), accuracy_scale=1.0)
            sign[unknown] = np.where(w > 0.5, -1.0, 1.0)
        return sign * u


def _upsample(a: np.ndarray) -> np.ndarray:
    """Trilinear refinement by 2 of node values: shape n -> 2n - 1 on each axis."""
    for axis in range(3):
        a = np.moveaxis(a, axis, 0)
        out = np.empty((2 * a.shape[0] - 1,) + a.shape[1:], a.dtype)
        out[::2] = a
        out[1::2] = 0.5 * (a[:-1] + a[1:])
        a = np.moveaxis(out, 0, axis)
    return a


def _near_nodes(cell_near: np.ndarray) -> np.ndarray:
    """Nodes of the refined grid lying in (closed) coarse cells flagged in ``cell_near``."""
    m = cell_near
    for axis in range(3):
        m = np.moveaxis(m, axis, 0)
        out = np.zeros((2 * m.shape[0] + 1,) + m.shape[1:], bool)
        out[0:-1:2] |= m
        out[1::2] |= m
        out[2::2] |= m
        m = np.moveaxis(out, 0, axis)
    return m


def build_sdf_grid(
    vertices: np.ndarray,
    faces: np.ndarray,
    bounds: np.ndarray,
    closed: bool,
    resolution: float = 0.1,
    max_voxels: int = 1 << 22,
    margin: float = 0.3,
    exact_band: float = 0.3,
) -> SDFGrid:
    """Signed distance grid of an indexed mesh (see the module docstring).

    Args:
        vertices: ``(V, 3)`` float64 metres; faces: ``(F, 3)`` int64 (welded mesh).
        bounds: ``(2, 3)`` box to cover; padded by ``margin`` metres on every side.
        closed: union of closed surfaces (winding-number sign) or open (pseudonormal).
        resolution: requested node spacing in metres.
        max_voxels: cap on the node count; the spacing grows until it fits.
        margin: padding of ``bounds`` in metres.
        exact_band: nodes within this distance (metres) of a surface are always exact.
    """
    res = choose_resolution(bounds, resolution, max_voxels, margin)
    lo = np.asarray(bounds[0], np.float64) - margin
    ext = np.asarray(bounds[1], np.float64) + margin - lo
    need = np.ceil(ext / res).astype(np.int64)  # cells per axis
    levels = 0
    while np.prod(need // (2 ** (levels + 1)) + 2) >= _COARSE_NODES and levels < 6:
        levels += 1
    step = 2**levels
    cells = -(-need // step) * step  # fine cells, multiple of 2**levels
    ext_used = cells * res
    lo = lo - 0.5 * (ext_used - ext)  # centre the slack
    evaluate = _Evaluator(vertices, faces, closed)

    def nodes(idx: tuple[np.ndarray, ...], spacing: float) -> np.ndarray:
        return lo + np.stack(idx, axis=-1) * spacing

    coarse_shape = tuple(int(c // step) + 1 for c in cells)
    grid = np.indices(coarse_shape).reshape(3, -1)
    d = evaluate(nodes(tuple(grid), res * step)).reshape(coarse_shape)
    exact = np.ones(coarse_shape, bool)
    for level in range(levels, 0, -1):
        spacing = res * 2**level
        absd = np.abs(d)
        corner_min = absd[:-1, :-1, :-1]
        for sl in np.ndindex(2, 2, 2):
            corner_min = np.minimum(
                corner_min,
                absd[
                    sl[0] : absd.shape[0] - 1 + sl[0],
                    sl[1] : absd.shape[1] - 1 + sl[1],
                    sl[2] : absd.shape[2] - 1 + sl[2],
                ],
            )
        near_cells = corner_min <= max(spacing * (np.sqrt(3.0) + 0.25), exact_band)
        fine = _upsample(d)
        known = np.zeros(fine.shape, bool)
        known[::2, ::2, ::2] = exact  # exact values carried over from the coarser level
        need_exact = _near_nodes(near_cells) & ~known
        idx = np.nonzero(need_exact)
        # Reference: the coarser node at the even indices just below (exact or far).
        ref = tuple(i - i % 2 for i in idx)
        odd = sum((i % 2).astype(np.float64) for i in idx)
        fine[idx] = evaluate(nodes(idx, spacing / 2), fine[ref], np.sqrt(odd) * spacing / 2)
        d = fine
        exact = known | need_exact
    return SDFGrid(values=d.astype(np.float32), origin=lo, resolution=float(res))
