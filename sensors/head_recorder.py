"""One head-camera recorder: eyes, head orientation and look-at targets -> poses, views, gaze.

The head-camera pipeline every video, env and clip builder shares, per frame:

1. **Camera pose** (:meth:`HeadRecorder.camera_poses`): the head frame of
   :func:`egosim.sensors.head_frame`, camera-to-world in OpenCV axes: origin at the eye
   midpoint, x along the eye line (left eye to right eye), z forward, y = z x x (down for
   an upright head). Forward is, in this order of preference: the head's forward (column 2
   of a given head-to-world rotation, x right / y down / z forward), the direction to the
   look-at target, or horizontal (``up x eye line``). Each spec's own ``position`` /
   ``orientation_rpy`` place its sensor in that rig frame.
2. **Views** (:meth:`HeadRecorder.render`): every :class:`~egosim.sensors.CameraSpec`
   rendered by a :class:`~egosim.sensors.Renderer` at the rig pose, with that frame's
   :class:`~egosim.sensors.DynamicMesh` list (the bodies); a wearer sees only the
   ``self_visible`` faces of its own mesh.
3. **Gaze** (:meth:`HeadRecorder.gaze`): the eyes look at the look-at target, exactly, or
   with the stochastic :class:`~egosim.sensors.EyeModel` (:func:`simulate_gaze`) when the
   recorder has one; the 3-D gaze point is projected into each camera by
   :func:`gaze_points_2d`: ``(x, y)`` in [-1, 1] (-1 the left / top image edge) and a
   validity flag (in front of the camera and inside the image). Intrinsics jitter is not
   seen by the gaze projection (it uses the spec's nominal intrinsics).

Shapes: one wearer's track is ``eyes (F, 2, 3)`` -> poses ``(F, 4, 4)``, views ``{uuid:
(F, H, W[, C])}``; ``N`` wearers in one scene are ``eyes (N, F, 2, 3)`` -> ``(N, F, 4,
4)``, ``{uuid: (N, F, H, W[, C])}`` (all wearers of a frame share its meshes). World
frame: metres, z up. Knows poses and triangles only, nothing about bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from egosim.sensors.camera import sensor_extrinsic
from egosim.sensors.gaze import EyeModel, GazeTrack, gaze_points_2d, simulate_gaze
from egosim.sensors.renderer import Renderer
from egosim.sensors.rig import head_frame
from egosim.sensors.scene_contract import DynamicMesh
from egosim.sensors.spec import CameraSpec
from egosim.sensors.trajectory import pose_velocity

__all__ = ["HeadRecorder", "HeadRecording", "MeshesPerFrame"]

MeshesPerFrame = (Sequence[Sequence[DynamicMesh]] | Sequence[DynamicMesh]
                  | Callable[[int], Sequence[DynamicMesh]])
"""Dynamic meshes of each frame: ``F`` per-frame lists, ``f -> list``, or one list of
:class:`DynamicMesh` for every frame."""


@dataclass
class HeadRecording:
    """A recorded head-camera track (see the module docstring for the shapes).

    Attributes:
        poses: ``(F, 4, 4)`` or ``(N, F, 4, 4)`` float64 rig (head) camera-to-world poses,
            OpenCV axes, metres.
        views: ``{uuid: (F, H, W[, C])}`` or ``(N, F, ...)``: rgb uint8, depth float32
            metres (plus ``f"{uuid}_valid"`` bool), semantic / instance int32 (-1 =
            nothing), normal float32; empty from :meth:`HeadRecorder.track`.
        gaze_points: ``(F, 3)`` or ``(N, F, 3)`` float64 world gaze points (on the gaze
            ray at the target's distance); None without look-at targets.
        gaze_xy: ``{uuid: (F, 2) | (N, F, 2)}`` float64 gaze point in each camera,
            normalised to [-1, 1] (NaN behind the camera); empty without targets.
        gaze_valid: ``{uuid: (F,) | (N, F)}`` bool, in front of the camera and inside its
            image.
        gaze_tracks: the simulated :class:`GazeTrack` per wearer (eye model only), else
            empty.
    """

    poses: np.ndarray
    views: dict[str, np.ndarray] = field(default_factory=dict)
    gaze_points: np.ndarray | None = None
    gaze_xy: dict[str, np.ndarray] = field(default_factory=dict)
    gaze_valid: dict[str, np.ndarray] = field(default_factory=dict)
    gaze_tracks: list[GazeTrack] = field(default_factory=list)


class HeadRecorder:
    """Head cameras of one or more wearers in one renderer's scene.

    Args:
        renderer: the scene's :class:`Renderer` (its lighting and, when a call gets no
            ``rng``, its generator are used; the caller closes it).
        specs: the cameras, distinct uuids; their poses are in the head (rig) frame.
        fps: frame rate of the tracks given to :meth:`track` / :meth:`record` (Hz): the
            eye model's clock and the velocity of motion-blurred specs.
        eye_model: gaze around the look-at target; None: the gaze hits the target exactly.
    """

    def __init__(self, renderer: Renderer, specs: CameraSpec | Sequence[CameraSpec], *,
                 fps: float = 40.0, eye_model: EyeModel | None = None) -> None:
        if not isinstance(renderer, Renderer):
            raise TypeError(f"renderer must be an egosim.sensors.Renderer, got "
                            f"{type(renderer).__name__}")
        self.renderer = renderer
        self.specs: tuple[CameraSpec, ...] = tuple(Renderer._check_specs(specs))
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.eye_model = eye_model

    # -- geometry -----------------------------------------------------------------------
    @staticmethod
    def camera_poses(eyes: np.ndarray, head_orientation: np.ndarray | None = None,
                     look_at: np.ndarray | None = None) -> np.ndarray:
        """Rig camera-to-world poses ``(..., 4, 4)`` (OpenCV axes, m) of ``eyes (..., 2, 3)``.

        Args:
            eyes: left and right eye positions (m, world), any leading shape.
            head_orientation: ``(..., 3, 3)`` head-to-world rotations (columns: the head's
                right, down, forward): the camera looks along column 2.
            look_at: ``(..., 3)`` (or ``(3,)``) world points: the camera looks at them
                (used when ``head_orientation`` is None).

        With neither, the camera looks horizontally forward.
        """
        e = np.asarray(eyes, np.float64)
        if e.ndim < 2 or e.shape[-2:] != (2, 3):
            raise ValueError(f"eyes must have shape (..., 2, 3), got {e.shape}")
        lead = e.shape[:-2]
        flat = e.reshape(-1, 2, 3)
        if head_orientation is not None:
            r = np.asarray(head_orientation, np.float64)
            if r.shape != lead + (3, 3):
                raise ValueError(f"head_orientation must have shape {lead + (3, 3)}, "
                                 f"got {r.shape}")
            poses = head_frame(flat, gaze=r.reshape(-1, 3, 3)[:, :, 2])
        elif look_at is not None:
            t = np.broadcast_to(np.asarray(look_at, np.float64), lead + (3,))
            poses = head_frame(flat, look_at=t.reshape(-1, 3))
        else:
            poses = head_frame(flat)
        return poses.reshape(lead + (4, 4))

    def gaze(self, eyes: np.ndarray, look_at: np.ndarray, rng=None
             ) -> tuple[np.ndarray, list[GazeTrack]]:
        """World gaze points of tracks looking at ``look_at``.

        Args:
            eyes: ``(F, 2, 3)`` or ``(N, F, 2, 3)`` eye positions (m, world).
            look_at: ``(F, 3)`` / ``(N, F, 3)`` (or broadcastable) targets (m, world).
            rng: seed or Generator of the eye model (default: the renderer's).

        Returns:
            ``points`` ``(F, 3)`` or ``(N, F, 3)`` (the targets themselves without an eye
            model) and the simulated tracks (one per wearer; empty without an eye model).
        """
        e, single = self._tracks(eyes)
        t = np.broadcast_to(np.asarray(look_at, np.float64), e.shape[:2] + (3,))
        if self.eye_model is None:
            points, tracks = t.copy(), []
        else:
            g = self._rng(rng)
            tracks = [simulate_gaze(e[i].mean(axis=1), t[i], self.fps, g, self.eye_model)
                      for i in range(len(e))]
            points = np.stack([tr.points_3d() for tr in tracks])
        return (points[0] if single else points), tracks

    def project_gaze(self, points: np.ndarray, poses: np.ndarray
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Gaze points ``(..., 3)`` seen from rig poses ``(..., 4, 4)``: ``({uuid: xy
        (..., 2)}, {uuid: valid (...)})`` per camera (see :func:`gaze_points_2d`)."""
        p = np.asarray(points, np.float64)
        q = np.asarray(poses, np.float64)
        lead = q.shape[:-2]
        xy, valid = {}, {}
        for s in self.specs:
            sensor = q.reshape(-1, 4, 4) @ sensor_extrinsic(s)
            a, b = gaze_points_2d(p.reshape(-1, 3), sensor, s)
            xy[s.uuid], valid[s.uuid] = a.reshape(lead + (2,)), b.reshape(lead)
        return xy, valid

    def track(self, eyes: np.ndarray, *, head_orientation: np.ndarray | None = None,
              look_at: np.ndarray | None = None, rng=None) -> HeadRecording:
        """Poses and gaze of whole tracks, without rendering (``views`` empty).

        Args:
            eyes: ``(F, 2, 3)`` or ``(N, F, 2, 3)`` eye positions (m, world).
            head_orientation: ``(F, 3, 3)`` / ``(N, F, 3, 3)`` head-to-world rotations.
            look_at: ``(F, 3)`` / ``(N, F, 3)`` (or ``(3,)``) look-at targets (m, world):
                the camera aims at them when no head orientation is given, and the gaze
                follows them.
            rng: seed or Generator of the eye model (default: the renderer's).
        """
        self._tracks(eyes)
        poses = self.camera_poses(eyes, head_orientation, look_at)
        rec = HeadRecording(poses=poses)
        if look_at is not None:
            rec.gaze_points, rec.gaze_tracks = self.gaze(eyes, look_at, rng)
            rec.gaze_xy, rec.gaze_valid = self.project_gaze(rec.gaze_points, poses)
        return rec

    # -- rendering ----------------------------------------------------------------------
    def render(self, poses: np.ndarray, *, meshes: Sequence[DynamicMesh] | None = None,
               wearer: int | Sequence[int] | np.ndarray | None = None,
               velocity: np.ndarray | None = None, rng=None) -> dict[str, np.ndarray]:
        """Render every spec at one frame's rig poses.

        Args:
            poses: ``(N, 4, 4)`` (or ``(4, 4)``) rig camera-to-world poses.
            meshes: this frame's dynamic meshes (replacing the renderer's); None keeps the
                renderer's current ones.
            wearer: index into ``meshes`` of the body wearing each rig (``(N,)`` or one
                for all); -1 or None: none.
            velocity: ``(N, 6)`` rig velocities for motion-blurred specs (m/s, rad/s).
            rng: seed or Generator of the noise models (default: the renderer's).

        Returns:
            ``{uuid: (N, H, W[, C])}`` (batch dropped for a ``(4, 4)`` pose).
        """
        if meshes is not None:
            self.renderer.set_dynamic_meshes(list(meshes))
        return self.renderer.render(self.specs, poses, wearer=wearer, velocity=velocity,
                                    rng=rng)

    def frame(self, eyes: np.ndarray, *, head_orientation: np.ndarray | None = None,
              look_at: np.ndarray | None = None, meshes: Sequence[DynamicMesh] | None = None,
              wearer: int | Sequence[int] | np.ndarray | None = None,
              velocity: np.ndarray | None = None, rng=None
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One frame of ``N`` wearers: ``eyes (N, 2, 3)`` (or ``(2, 3)``) -> ``(poses (N,
        4, 4), views {uuid: (N, H, W[, C])})`` (see :meth:`camera_poses`,
        :meth:`render`)."""
        poses = self.camera_poses(eyes, head_orientation, look_at)
        return poses, self.render(poses, meshes=meshes, wearer=wearer, velocity=velocity,
                                  rng=rng)

    def record(self, eyes: np.ndarray, *, head_orientation: np.ndarray | None = None,
               look_at: np.ndarray | None = None, meshes: MeshesPerFrame | None = None,
               wearer: int | Sequence[int] | np.ndarray | None = None, rng=None
               ) -> HeadRecording:
        """Poses, gaze and rendered views of whole tracks (see :meth:`track`).

        Args:
            eyes, head_orientation, look_at: as :meth:`track`.
            meshes: dynamic meshes of each frame (``F`` lists, ``f -> list``, or one list
                for all frames, see :data:`MeshesPerFrame`); None: the renderer's current
                ones in every frame.
            wearer: for ``N`` tracks, ``(N,)`` indices into each frame's meshes (or one
                for all); for one track an int; -1 or None: no wearer.
            rng: seed or Generator of the eye model, then of the noise models (default:
                the renderer's).

        Returns:
            A :class:`HeadRecording` with ``views`` stacked over frames.
        """
        e, single = self._tracks(eyes)
        g = self._rng(rng)
        rec = self.track(eyes, head_orientation=head_orientation, look_at=look_at, rng=g)
        poses = rec.poses[None] if single else rec.poses  # (N, F, 4, 4)
        n, f = poses.shape[:2]
        velocity = None
        if any(s.motion_blur is not None for s in self.specs):
            velocity = (np.stack([pose_velocity(p, self.fps) for p in poses]) if f > 1
                        else np.zeros((n, f, 6)))
        frame_meshes = self._meshes_per_frame(meshes, f)
        per_frame: list[dict[str, np.ndarray]] = []
        for k in range(f):
            mk = frame_meshes(k)
            per_frame.append(self.render(poses[:, k], meshes=mk, wearer=wearer,
                                         velocity=None if velocity is None else velocity[:, k],
                                         rng=g))
        views = {key: np.stack([v[key] for v in per_frame], axis=1) for key in per_frame[0]}
        rec.views = {key: v[0] for key, v in views.items()} if single else views
        return rec

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _meshes_per_frame(meshes: MeshesPerFrame | None, frames: int
                          ) -> Callable[[int], Sequence[DynamicMesh] | None]:
        if meshes is None:
            return lambda k: None
        if callable(meshes):
            return meshes
        items = list(meshes)
        if not items or isinstance(items[0], DynamicMesh):
            return lambda k: items
        if len(items) != frames:
            raise ValueError(f"meshes must hold one list per frame ({frames}), got "
                             f"{len(items)}")
        return lambda k: items[k]

    def _rng(self, rng) -> np.random.Generator:
        return self.renderer.rng if rng is None else np.random.default_rng(rng)

    @staticmethod
    def _tracks(eyes: np.ndarray) -> tuple[np.ndarray, bool]:
        """``eyes`` as ``(N, F, 2, 3)`` and whether it was one ``(F, 2, 3)`` track."""
        e = np.asarray(eyes, np.float64)
        if e.ndim == 3 and e.shape[1:] == (2, 3):
            return e[None], True
        if e.ndim == 4 and e.shape[2:] == (2, 3):
            return e, False
        raise ValueError(f"eyes must have shape (F, 2, 3) or (N, F, 2, 3), got {e.shape}")
