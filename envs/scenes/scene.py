"""The :class:`Scene`: labelled triangles of a static 3-D world plus walkability and SDF.

World frame: metres, z up, floor at z = 0. All arrays are per triangle ("face").
Walk map and SDF grid are computed on first use and cached in memory and on disk
(``cache_dir('scenes')``), keyed by :attr:`Scene.content_hash` and their parameters.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

import egosim.envs.scenes.cache as cache
import egosim.envs.scenes.planning as planning
from egosim.envs.scenes.classes import CLASS_NAMES, NUM_CLASSES
from egosim.envs.scenes.geometry import is_closed, weld
from egosim.envs.scenes.sdf import SDFGrid, build_sdf_grid
from egosim.envs.scenes.walkability import MAX_GRID_RESOLUTION, WalkMap, compute_walkmap

__all__ = ["Scene"]


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


class Scene:
    """A static scene: labelled triangles (world frame, z up, metres) and derived maps.

    Args:
        triangles: ``(F, 3, 3)`` vertex positions, metres; stored as float32.
        face_semantic: ``(F,)`` class ids (:data:`~egosim.envs.scenes.classes.CLASS_NAMES`);
            default all 0 (void).
        face_instance: ``(F,)`` instance ids; 0 means "no instance". Every object of a
            procedural scene (floor slab, each wall piece, each ceiling, each furniture
            piece) has its own id >= 1; loaded files get one id per mesh part/node.
        face_albedo: ``(F, 3)`` linear RGB in [0, 1]; default 0.5 grey.
        textures: list of ``(H, W, 3)`` uint8 sRGB images.
        face_texture: ``(F,)`` index into ``textures`` or -1; default all -1.
        face_uv: ``(F, 3, 2)`` per-corner texture coordinates (repeat-wrapped, v up as in
            OBJ/OpenGL); zeros when untextured.
        name: a label (the load spec for loaded scenes).
        seed: the seed the scene was generated with (None for files).
        grid_resolution: walk-grid cell size in metres, in (0, 0.10]; default 0.05.
        body_radius: walker radius in metres used to erode the walk map; default 0.25.
        body_height: head clearance in metres above walkable floor; default 1.8.
        floor_tolerance: walkable floor must lie within this height of ``floor_level``, m.
        floor_level: height of the walkable floor level in metres; default 0 (the package
            convention). E.g. ``pybullet:samurai``'s monastery courtyard is a platform at
            1.70 m, walkable with ``floor_level=1.7``.
        sdf_resolution: requested SDF node spacing in metres; default 0.1.
        sdf_max_voxels: cap on SDF nodes, default 2**22 (16 MiB of float32); the spacing
            grows until the grid fits (see :attr:`sdf_grid`; e.g. ``pybullet:samurai``
            with its 200 m ground plane gets 0.70 m, a procedural apartment 0.10 m).
        walk_max_cells: largest walk grid computed (cells); a larger one is refused with its
            size and a hint about units (None: 2.5e7, see
            :func:`~egosim.envs.scenes.walkability.check_grid_size`).

    Derived data is lazy: the walk map (:mod:`~egosim.envs.scenes.walkability`) and the
    SDF grid (:mod:`~egosim.envs.scenes.sdf`) are computed on first use, kept in memory
    and stored in ``cache_dir('scenes')`` under a key of :attr:`content_hash` and their
    parameters. Procedural scenes arrive with their walk map already computed (their
    generator checks it for connectivity). Pickling keeps both and drops native helpers.

    Attributes:
        triangles, face_semantic, face_instance, face_albedo, textures, face_texture,
        face_uv, name, seed: as above (int32 / float32 arrays).
        bounds: ``(2, 3)`` float64 min and max corners of the triangles.
        content_hash: hex BLAKE2b digest of triangles, semantic and instance labels.
        rooms, doors: the layout of procedural scenes (lists of
            :class:`~egosim.envs.scenes.procedural.Room` / ``Door``); None otherwise.
    """

    def __init__(
        self,
        triangles: np.ndarray,
        face_semantic: np.ndarray | None = None,
        face_instance: np.ndarray | None = None,
        face_albedo: np.ndarray | None = None,
        *,
        textures: list[np.ndarray] | None = None,
        face_texture: np.ndarray | None = None,
        face_uv: np.ndarray | None = None,
        name: str = "scene",
        seed: int | None = None,
        grid_resolution: float = 0.05,
        body_radius: float = 0.25,
        body_height: float = 1.8,
        floor_tolerance: float = 0.15,
        floor_level: float = 0.0,
        sdf_resolution: float = 0.1,
        sdf_max_voxels: int = 1 << 22,
        walk_max_cells: int | None = None,
    ) -> None:
        tris = np.ascontiguousarray(np.asarray(triangles, np.float32))
        if tris.ndim != 3 or tris.shape[1:] != (3, 3) or tris.shape[0] == 0:
            raise ValueError(f"triangles must have shape (F, 3, 3) with F >= 1, got {tris.shape}")
        if not np.all(np.isfinite(tris)):
            raise ValueError("triangles contain NaN or inf")
        f = tris.shape[0]

        def per_face(value, field, dtype, shape, default):
            if value is None:
                return np.full((f,) + shape, default, dtype)
            arr = np.ascontiguousarray(np.asarray(value, dtype))
            if arr.shape != (f,) + shape:
                raise ValueError(f"{field} must have shape {(f,) + shape}, got {arr.shape}")
            return arr

        self.triangles = tris
        self.face_semantic = per_face(face_semantic, "face_semantic", np.int32, (), 0)
        if self.face_semantic.min() < 0 or self.face_semantic.max() >= NUM_CLASSES:
            raise ValueError(f"face_semantic ids must be in [0, {NUM_CLASSES - 1}]")
        self.face_instance = per_face(face_instance, "face_instance", np.int32, (), 0)
        self.face_albedo = per_face(face_albedo, "face_albedo", np.float32, (3,), 0.5)
        self.textures = [np.ascontiguousarray(t, np.uint8) for t in (textures or [])]
        for i, t in enumerate(self.textures):
            if t.ndim != 3 or t.shape[2] != 3:
                raise ValueError(f"textures[{i}] must be (H, W, 3) uint8, got {t.shape}")
        self.face_texture = per_face(face_texture, "face_texture", np.int32, (), -1)
        if self.face_texture.max() >= len(self.textures) or self.face_texture.min() < -1:
            raise ValueError(
                f"face_texture must be -1 or an index below len(textures)={len(self.textures)}"
            )
        self.face_uv = per_face(face_uv, "face_uv", np.float32, (3, 2), 0.0)
        self.name = str(name)
        self.seed = seed
        if float(grid_resolution) > MAX_GRID_RESOLUTION or not float(grid_resolution) > 0:
            raise ValueError(
                f"grid_resolution must be in (0, {MAX_GRID_RESOLUTION}] metres, "
                f"got {grid_resolution!r}"
            )
        self._grid_resolution = _positive("grid_resolution", grid_resolution)
        self._body_radius = _positive("body_radius", body_radius)
        self._body_height = _positive("body_height", body_height)
        self._floor_tolerance = _positive("floor_tolerance", floor_tolerance)
        if not math.isfinite(float(floor_level)):
            raise ValueError(f"floor_level must be a finite number, got {floor_level!r}")
        self._floor_level = float(floor_level)
        self._sdf_resolution = _positive("sdf_resolution", sdf_resolution)
        if int(sdf_max_voxels) < 1000:
            raise ValueError(f"sdf_max_voxels must be an int >= 1000, got {sdf_max_voxels!r}")
        self._sdf_max_voxels = int(sdf_max_voxels)
        if walk_max_cells is not None and not (float(walk_max_cells) >= 1):
            raise ValueError(f"walk_max_cells must be a number >= 1, got {walk_max_cells!r}")
        self._walk_max_cells = None if walk_max_cells is None else int(walk_max_cells)
        self.bounds = np.stack([tris.reshape(-1, 3).min(0), tris.reshape(-1, 3).max(0)]).astype(
            np.float64
        )
        h = hashlib.blake2b(digest_size=20)
        for arr in (self.triangles, self.face_semantic, self.face_instance):
            h.update(arr.tobytes())
        self.content_hash: str = h.hexdigest()
        self.rooms: list | None = None
        self.doors: list | None = None
        self._welded: tuple[np.ndarray, np.ndarray] | None = None
        self._closed: bool | None = None
        self._caster = None
        self._fwn = None
        self._walk: WalkMap | None = None
        self._sdf: SDFGrid | None = None
        self._footprint: np.ndarray | None = None

    # ------------------------------------------------------------------ geometry
    @property
    def num_faces(self) -> int:
        """Number of triangles ``F``."""
        return int(self.triangles.shape[0])

    def _weld(self) -> tuple[np.ndarray, np.ndarray]:
        if self._welded is None:
            self._welded = weld(self.triangles)
        return self._welded

    @property
    def is_closed(self) -> bool:
        """True if the triangles form closed, consistently oriented surfaces (e.g. a union
        of boxes); decides the inside test of walkability and the SDF sign method."""
        if self._closed is None:
            self._closed = is_closed(self._weld()[1])
        return self._closed

    def inside(self, points: np.ndarray) -> np.ndarray:
        """``(...)`` bool: ``(..., 3)`` world points lie inside a solid, by the fast
        winding number (> 0.5) of the triangles; meaningful for closed scenes
        (:attr:`is_closed`), a soft guess for open ones."""
        p = np.asarray(points, np.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3), got {p.shape}")
        if self._fwn is None:
            import igl

            v, f = self._weld()
            self._fwn = igl.FastWindingNumberBVH()
            self._fwn.init(v, f, 2)
        flat = np.ascontiguousarray(p.reshape(-1, 3))
        if flat.shape[0] == 0:
            return np.zeros(p.shape[:-1], bool)
        w = self._fwn.winding_number(flat, accuracy_scale=1.0)
        return (w > 0.5).reshape(p.shape[:-1])

    @property
    def raycaster(self):
        """A :class:`egosim.sensors.raycast.RayCaster` over :attr:`triangles` (built once)."""
        if self._caster is None:
            from egosim.sensors.raycast import RayCaster

            self._caster = RayCaster(self.triangles)
        return self._caster

    # ------------------------------------------------------------------ walkability
    @property
    def grid_resolution(self) -> float:
        """Walk-grid cell size in metres (<= 0.10)."""
        return self._grid_resolution

    @property
    def body_radius(self) -> float:
        """Walker radius in metres (walk-map erosion)."""
        return self._body_radius

    @property
    def body_height(self) -> float:
        """Required head clearance in metres."""
        return self._body_height

    @property
    def floor_level(self) -> float:
        """Height of the walkable floor level in metres (the ``floor_level`` option; 0 by
        the package's convention): walk cells, starts and goals lie on floor within
        ``floor_tolerance`` of it, and :meth:`has_floor` is False elsewhere."""
        return self._floor_level

    def _walk_params(self) -> dict[str, float]:
        return {
            "resolution": self._grid_resolution,
            "body_radius": self._body_radius,
            "body_height": self._body_height,
            "floor_tolerance": self._floor_tolerance,
            "floor_level": self._floor_level,
        }

    @property
    def walk_map(self) -> WalkMap:
        """The full :class:`~egosim.envs.scenes.walkability.WalkMap` (lazy, cached)."""
        if self._walk is None:
            key = cache.cache_key("walk", self.content_hash, **self._walk_params())
            stored = cache.load_arrays(key)
            if stored is not None:
                self._walk = WalkMap.from_arrays(stored, self._body_radius)
            else:
                self._walk = self._compute_walk_map()
                cache.save_arrays(key, self._walk.to_arrays(), compress=True)
        return self._walk

    def _compute_walk_map(self) -> WalkMap:
        """Compute the walk map from the triangles (no caching)."""
        return compute_walkmap(
            self.raycaster,
            self.bounds,
            self._grid_resolution,
            self._body_radius,
            self._body_height,
            inside=self.inside if self.is_closed else None,
            floor_tolerance=self._floor_tolerance,
            floor_level=self._floor_level,
            max_cells=self._walk_max_cells,
        )

    def _set_walk_map(self, walk: WalkMap) -> None:
        """Adopt a walk map computed elsewhere with this scene's parameters."""
        self._walk = walk
        self._footprint = None

    @property
    def walkable(self) -> np.ndarray:
        """``(H, W)`` bool walkable grid; ``[row, col]`` is at
        ``grid_origin + (col, row) * grid_resolution`` (rows along +y)."""
        return self.walk_map.walkable

    @property
    def grid_origin(self) -> np.ndarray:
        """``(2,)`` float64 world ``(x, y)`` of the centre of walk cell ``[0, 0]``, metres."""
        return self.walk_map.origin

    @property
    def components(self) -> np.ndarray:
        """``(H, W)`` int32 connected-region labels of walkable cells (0 = not walkable)."""
        return self.walk_map.components

    @property
    def floor_height(self) -> np.ndarray:
        """``(H, W)`` float32 floor height per cell in metres (NaN where no floor)."""
        return self.walk_map.floor_height

    def world_to_grid(self, points: np.ndarray) -> np.ndarray:
        """``(..., 2)`` int64 ``(row, col)`` walk cells of ``(..., 2|3)`` world points
        (not clipped to the grid)."""
        return planning.world_to_grid(self.walk_map, points)

    def grid_to_world(self, cells: np.ndarray) -> np.ndarray:
        """``(..., 3)`` float64 world centres of ``(..., 2)`` ``(row, col)`` cells, z on the
        floor (0 where the cell has no floor)."""
        return planning.grid_to_world(self.walk_map, cells)

    def is_walkable(self, points: np.ndarray) -> np.ndarray:
        """``(...)`` bool for ``(..., 2|3)`` world points: the walk cell under the point is
        walkable. z is ignored; points off the grid are not walkable."""
        return planning.is_walkable(self.walk_map, points)

    def has_floor(self, points: np.ndarray) -> np.ndarray:
        """``(...)`` bool for ``(..., 2|3)`` world points: the walk cell under the point
        has a floor (walkable or under furniture); False off the grid or where the
        scene has no floor (outside the building). z is ignored."""
        return planning.has_floor(self.walk_map, points)

    def in_footprint(self, points: np.ndarray) -> np.ndarray:
        """``(...)`` bool for ``(..., 2|3)`` world points: inside the building's footprint
        (:func:`~egosim.envs.scenes.planning.footprint`: floor cells, the walls between
        them and the furniture they enclose); False beyond the outer walls, off the grid,
        or (with ``floor_level`` set) off that level's floor. Computed on first use. z is
        ignored."""
        if getattr(self, "_footprint", None) is None:
            self._footprint = planning.footprint(self.walk_map)
        return planning.in_mask(self.walk_map, self._footprint, points)

    def sample_start_goal(
        self,
        rng: np.random.Generator | int | None,
        min_dist: float = 1.0,
        max_dist: float = 10.0,
        same_component: bool = True,
        metric: str = "euclidean",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random start and goal on walkable cells.

        Args:
            rng: a ``numpy.random.Generator`` or an int seed (None: fresh entropy).
            min_dist, max_dist: allowed start-goal distance in metres.
            same_component: goal in the start's connected walkable region.
            metric: ``"euclidean"`` (straight line in x-y, default) or ``"geodesic"``
                (length of the shortest 8-connected grid path, no clearance cost;
                implies ``same_component``).

        Returns:
            ``(start, goal)``, each ``(3,)`` float64 world point at a walk-cell centre, z on
            the floor.

        Raises:
            ValueError: no pair meets the constraints (after 64 random starts), or bad
                arguments.
        """
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        if not self.walk_map.walkable.any():
            from egosim.envs.scenes.walkability import no_walkable_message

            raise ValueError(no_walkable_message(self.bounds, self._grid_resolution,
                                                 self._body_radius))
        return planning.sample_start_goal(
            self.walk_map, gen, float(min_dist), float(max_dist), same_component, metric
        )

    def plan_path(
        self, a: np.ndarray, b: np.ndarray, step: float = 0.1, smooth: bool = True
    ) -> np.ndarray:
        """Walkable path from ``a`` to ``b`` ((2,) or (3,) world points, z ignored).

        Dijkstra on the walk grid with a cost that keeps away from obstacles, then
        line-of-sight shortcuts (see :mod:`egosim.envs.scenes.planning`).

        Returns:
            ``(N, 3)`` float64 points spaced at most ``step`` metres, from ``a`` to ``b``.

        Raises:
            ValueError: ``a`` or ``b`` is not walkable, or they are not connected.
        """
        return planning.plan_path(
            self.walk_map, a, b, self._body_radius, step=_positive("step", step), smooth=smooth
        )

    # ------------------------------------------------------------------ SDF
    @property
    def sdf_grid(self) -> SDFGrid:
        """The :class:`~egosim.envs.scenes.sdf.SDFGrid` (lazy, cached). Its
        ``resolution`` is the spacing actually used after the ``sdf_max_voxels`` cap."""
        if self._sdf is None:
            params = {"res": self._sdf_resolution, "cap": self._sdf_max_voxels}
            key = cache.cache_key("sdf", self.content_hash, **params)
            stored = cache.load_arrays(key)
            if stored is not None:
                self._sdf = SDFGrid(
                    stored["values"], stored["origin"], float(stored["resolution"])
                )
            else:
                v, f = self._weld()
                self._sdf = build_sdf_grid(
                    v,
                    f,
                    self.bounds,
                    closed=self.is_closed,
                    resolution=self._sdf_resolution,
                    max_voxels=self._sdf_max_voxels,
                )
                cache.save_arrays(
                    key,
                    {
                        "values": self._sdf.values,
                        "origin": self._sdf.origin,
                        "resolution": np.float64(self._sdf.resolution),
                    },
                )
        return self._sdf

    def sdf(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (metres, float32, negative inside solids) at ``(..., 3)`` world
        points -> ``(...)``. Trilinear in the SDF grid; outside the grid box the point is
        clamped onto the box and its distance to the box added."""
        return self.sdf_grid.query(points)

    def __getstate__(self) -> dict:
        # Native helpers (Embree scene, winding-number tree) are rebuilt on demand; the
        # walk map and SDF grid travel with the scene.
        state = self.__dict__.copy()
        state["_caster"] = None
        state["_fwn"] = None
        return state

    # ------------------------------------------------------------------ export
    def to_trimesh(self):
        """A ``trimesh.Trimesh`` (unwelded soup) with sRGB face colours and the labels in
        ``face_attributes`` (``semantic``, ``instance``)."""
        import trimesh

        from egosim.envs.scenes.materials import linear_to_srgb

        f = self.num_faces
        rgb = np.round(linear_to_srgb(self.face_albedo) * 255).astype(np.uint8)
        colors = np.concatenate([rgb, np.full((f, 1), 255, np.uint8)], axis=1)
        return trimesh.Trimesh(
            vertices=self.triangles.reshape(-1, 3),
            faces=np.arange(3 * f).reshape(f, 3),
            face_colors=colors,
            face_attributes={"semantic": self.face_semantic, "instance": self.face_instance},
            process=False,
        )

    def class_counts(self) -> dict[str, int]:
        """Number of faces per semantic class name (classes with faces only)."""
        ids, counts = np.unique(self.face_semantic, return_counts=True)
        return {CLASS_NAMES[i]: int(c) for i, c in zip(ids, counts, strict=True)}

    def __repr__(self) -> str:
        ext = self.bounds[1] - self.bounds[0]
        return (
            f"Scene(name={self.name!r}, seed={self.seed}, faces={self.num_faces}, "
            f"instances={len(np.unique(self.face_instance[self.face_instance > 0]))}, "
            f"classes={len(np.unique(self.face_semantic))}, textures={len(self.textures)}, "
            f"extent=({ext[0]:.2f}, {ext[1]:.2f}, {ext[2]:.2f}) m)"
        )
