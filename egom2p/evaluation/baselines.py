"""Classical methods and trivial baselines of the EgoM2P evaluation: callables ``clip -> output``.

Every method here is an object with ``task`` (what it predicts: ``camera``, ``depth``,
``gaze`` or ``rgb``), ``inputs`` (the clip keys it reads besides ``intrinsics``,
``video_times`` and ``pose_times``) and ``__call__(clip) -> output`` of the task's shape
(``T`` = 60 pose samples, ``K`` = 16 video frames, ``S`` the frame side):

=================  ======  ==========  ==================================================
method             task    inputs      output
=================  ======  ==========  ==================================================
OpenCVRgbd         camera  rgb, depth  ``(T, 4, 4)``: :func:`~.odometry.rgbd_odometry` over
                                       the video frames, then :func:`~.odometry.
                                       interpolate_poses` from ``video_times`` to
                                       ``pose_times``
MonoVO             camera  rgb         the same with :func:`~.odometry.mono_vo` (no scale)
ZeroMotion         camera  --          ``T`` identities
MeanTrajectory     camera  --          the mean canonical training trajectory
MeanDepth          depth   --          the mean training depth map in every frame
CenterGaze         gaze    --          ``(0, 0)``, the image centre, at every sample
MeanGaze           gaze    --          the mean valid training gaze point
MeanFrame          rgb     --          the mean training frame in every frame
=================  ======  ==========  ==================================================

The training means (:class:`TrainStats`) are computed from clips of the training
distribution (:func:`compute_train_stats`): the mean trajectory averages the canonical
poses sample by sample (translations arithmetically, rotations by their chordal mean: the
rotation nearest the mean matrix); the mean depth averages each pixel over its valid
(non-zero) samples; the mean frame and the mean gaze are plain means (gaze over its valid
samples).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egosim.egom2p.evaluation.odometry import interpolate_poses, mono_vo, rgbd_odometry

__all__ = ["CenterGaze", "MeanDepth", "MeanFrame", "MeanGaze", "MeanTrajectory", "MonoVO",
           "OpenCVRgbd", "TrainStats", "ZeroMotion", "chordal_mean", "compute_train_stats",
           "load_train_stats", "save_train_stats"]

Clip = Mapping[str, Any]


# -- training means ---------------------------------------------------------------------


@dataclass
class TrainStats:
    """Means of training clips for the trivial baselines.

    Attributes:
        camera: ``(T, 4, 4)`` float64 mean canonical trajectory (``camera[0] = I``).
        depth: ``(S, S)`` float32 mean valid depth per pixel, metres.
        rgb: ``(S, S, 3)`` uint8 mean frame.
        gaze: ``(2,)`` float32 mean valid gaze point, [-1, 1] units.
        clips: how many clips were averaged.
        source: where they came from (text).
    """

    camera: np.ndarray
    depth: np.ndarray
    rgb: np.ndarray
    gaze: np.ndarray
    clips: int
    source: str

    @property
    def video_size(self) -> int:
        """The frame side ``S`` of the means."""
        return int(self.depth.shape[-1])


def chordal_mean(rotations: np.ndarray) -> np.ndarray:
    """The rotation nearest (Frobenius) the arithmetic mean of rotation matrices.

    Args:
        rotations: ``(N, ..., 3, 3)`` rotation matrices; averaged over the first axis.

    Returns:
        ``(..., 3, 3)`` float64 rotations (the SVD projection of the mean onto SO(3)).
    """
    m = np.mean(np.asarray(rotations, np.float64), axis=0)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[..., :, -1] *= d[..., None]
    return u @ vt


def compute_train_stats(clips: Iterable[Clip], source: str) -> TrainStats:
    """The means of :class:`TrainStats` over ``clips`` (see the module docstring).

    Args:
        clips: clips with ``camera``, ``depth``, ``rgb``, ``gaze`` and ``gaze_valid``.
        source: a description of where they come from.

    Raises:
        ValueError: no clips, or clips of different shapes.
    """
    cams, rots = [], []
    depth_sum = depth_count = rgb_sum = None
    gaze_sum, gaze_n, n = np.zeros(2), 0, 0
    for clip in clips:
        cam = np.asarray(clip["camera"], np.float64)
        d = np.asarray(clip["depth"], np.float64)
        if n and (cam.shape[0] != cams[0].shape[0] or d.shape[1:] != depth_sum.shape):
            raise ValueError(f"training clips differ in shape: camera {cam.shape} / depth "
                             f"{d.shape} after {cams[0].shape[0]} poses / {depth_sum.shape}")
        cams.append(cam[:, :3, 3])
        rots.append(cam[:, :3, :3])
        valid = d > 0
        if depth_sum is None:
            depth_sum = np.zeros(d.shape[1:])
            depth_count = np.zeros(d.shape[1:])
            rgb_sum = np.zeros(d.shape[1:] + (3,))
        depth_sum += np.where(valid, d, 0.0).sum(axis=0)
        depth_count += valid.sum(axis=0)
        rgb_sum += np.asarray(clip["rgb"], np.float64).mean(axis=0)
        gv = np.asarray(clip["gaze_valid"], bool)
        gaze_sum += np.asarray(clip["gaze"], np.float64)[gv].sum(axis=0)
        gaze_n += int(gv.sum())
        n += 1
    if n == 0:
        raise ValueError("no training clips to average")
    camera = np.tile(np.eye(4), (cams[0].shape[0], 1, 1))
    camera[:, :3, 3] = np.mean(cams, axis=0)
    camera[:, :3, :3] = chordal_mean(np.stack(rots))
    camera[0] = np.eye(4)
    overall = depth_sum.sum() / max(depth_count.sum(), 1.0)
    depth = np.where(depth_count > 0, depth_sum / np.maximum(depth_count, 1.0), overall)
    gaze = gaze_sum / gaze_n if gaze_n else np.zeros(2)
    return TrainStats(camera=camera, depth=depth.astype(np.float32),
                      rgb=np.clip(np.rint(rgb_sum / n), 0, 255).astype(np.uint8),
                      gaze=gaze.astype(np.float32), clips=n, source=str(source))


def save_train_stats(path: str | Path, stats: TrainStats) -> Path:
    """Write ``stats`` to an ``.npz`` (atomically); :func:`load_train_stats` reads it."""
    from egosim.atomic_io import save_npz

    meta = json.dumps({"clips": stats.clips, "source": stats.source})
    return save_npz(path, {"camera": stats.camera, "depth": stats.depth, "rgb": stats.rgb,
                           "gaze": stats.gaze, "meta_json": np.asarray(meta)})


def load_train_stats(path: str | Path) -> TrainStats:
    """Read an ``.npz`` of :func:`save_train_stats`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file lacks a key or its shapes are wrong (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train_stats {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in ("camera", "depth", "rgb", "gaze", "meta_json")}
    except (KeyError, OSError, ValueError) as exc:
        raise ValueError(f"train_stats {str(path)!r} is not a file of training means "
                         f"(config key train_stats): {exc}") from None
    meta = json.loads(str(data["meta_json"]))
    s = data["depth"].shape
    if (data["camera"].ndim != 3 or data["camera"].shape[1:] != (4, 4) or len(s) != 2
            or data["rgb"].shape != s + (3,) or data["gaze"].shape != (2,)):
        raise ValueError(f"train_stats {str(path)!r} has wrong shapes (camera "
                         f"{data['camera'].shape}, depth {s}, rgb {data['rgb'].shape})")
    return TrainStats(camera=data["camera"].astype(np.float64),
                      depth=data["depth"].astype(np.float32), rgb=data["rgb"].astype(np.uint8),
                      gaze=data["gaze"].astype(np.float32), clips=int(meta["clips"]),
                      source=str(meta["source"]))


# -- methods ----------------------------------------------------------------------------


def _pose_count(clip: Clip) -> int:
    return int(np.asarray(clip["pose_times"]).shape[0])


class OpenCVRgbd:
    """OpenCV RGB-D odometry over the video frames, interpolated to the pose clock
    (``camera``; metric). Keyword arguments go to
    :func:`~egosim.egom2p.evaluation.odometry.rgbd_odometry`.

    Attributes:
        failures: failed steps so far (each counted as no motion).
        steps: steps so far.
    """

    task = "camera"
    inputs = ("rgb", "depth")

    def __init__(self, **options: float) -> None:
        self.options = dict(options)
        self.failures = 0
        self.steps = 0

    def reset(self) -> None:
        """Zero the step counters."""
        self.failures = self.steps = 0

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 4, 4)`` canonical camera-to-world poses at ``clip["pose_times"]``."""
        poses, failed = rgbd_odometry(clip["rgb"], clip["depth"], clip["intrinsics"],
                                      **self.options)
        self.failures += failed
        self.steps += len(poses) - 1
        return interpolate_poses(poses, clip["video_times"], clip["pose_times"])


class MonoVO:
    """Monocular ORB visual odometry, interpolated to the pose clock (``camera``; unit
    steps, no metric scale: score it by the Sim(3) ATE). Keyword arguments go to
    :func:`~egosim.egom2p.evaluation.odometry.mono_vo`.

    Attributes:
        failures: failed steps so far (each counted as no motion).
        steps: steps so far.
    """

    task = "camera"
    inputs = ("rgb",)

    def __init__(self, **options: float) -> None:
        self.options = dict(options)
        self.failures = 0
        self.steps = 0

    def reset(self) -> None:
        """Zero the step counters."""
        self.failures = self.steps = 0

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 4, 4)`` canonical camera-to-world poses at ``clip["pose_times"]``."""
        poses, failed = mono_vo(clip["rgb"], clip["intrinsics"], **self.options)
        self.failures += failed
        self.steps += len(poses) - 1
        return interpolate_poses(poses, clip["video_times"], clip["pose_times"])


class ZeroMotion:
    """The camera never moves (``camera``): ``T`` identity poses."""

    task = "camera"
    inputs: tuple[str, ...] = ()

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 4, 4)`` identities."""
        return np.tile(np.eye(4), (_pose_count(clip), 1, 1))


class MeanTrajectory:
    """The mean canonical training trajectory (``camera``), the same for every clip."""

    task = "camera"
    inputs: tuple[str, ...] = ()

    def __init__(self, stats: TrainStats) -> None:
        self.camera = np.asarray(stats.camera, np.float64)

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 4, 4)`` poses (raises ValueError if the clip has another ``T``)."""
        if _pose_count(clip) != len(self.camera):
            raise ValueError(f"the mean trajectory has {len(self.camera)} poses, the clip "
                             f"{_pose_count(clip)}")
        return self.camera.copy()


class MeanDepth:
    """The mean training depth map in every frame (``depth``, metres)."""

    task = "depth"
    inputs: tuple[str, ...] = ()

    def __init__(self, stats: TrainStats) -> None:
        self.depth = np.asarray(stats.depth, np.float32)

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(K, S, S)`` float32 depth, ``K = len(clip["video_times"])``."""
        k = int(np.asarray(clip["video_times"]).shape[0])
        return np.broadcast_to(self.depth, (k,) + self.depth.shape).copy()


class CenterGaze:
    """The image centre at every gaze sample (``gaze``)."""

    task = "gaze"
    inputs: tuple[str, ...] = ()

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 2)`` float32 zeros."""
        return np.zeros((_pose_count(clip), 2), np.float32)


class MeanGaze:
    """The mean valid training gaze point at every sample (``gaze``)."""

    task = "gaze"
    inputs: tuple[str, ...] = ()

    def __init__(self, stats: TrainStats) -> None:
        self.gaze = np.asarray(stats.gaze, np.float32)

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(T, 2)`` float32."""
        return np.tile(self.gaze, (_pose_count(clip), 1))


class MeanFrame:
    """The mean training frame in every frame (``rgb``)."""

    task = "rgb"
    inputs: tuple[str, ...] = ()

    def __init__(self, stats: TrainStats) -> None:
        self.rgb = np.asarray(stats.rgb, np.uint8)

    def __call__(self, clip: Clip) -> np.ndarray:
        """``(K, S, S, 3)`` uint8."""
        k = int(np.asarray(clip["video_times"]).shape[0])
        return np.broadcast_to(self.rgb, (k,) + self.rgb.shape).copy()
