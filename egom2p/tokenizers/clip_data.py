"""Clips for training and measuring the tokenizers: the stream's clip cache, or synthetic.

A :class:`ClipSet` holds ``M`` clips as stacked arrays of the clip layout (``rgb`` uint8
``(M, 16, H, W, 3)``, ``depth`` float32 ``(M, 16, H, W)`` metres, ``camera`` float64
``(M, 60, 4, 4)``, ``camera_9d`` float32 ``(M, 60, 9)``, ``gaze`` float32 ``(M, 60, 2)``,
``gaze_valid`` bool ``(M, 60)``), only the keys a tokenizer needs.

The cache (:func:`build_cache`, :func:`load_cache`): raw clips of
:class:`egosim.egom2p.stream.SimStream` written once, one atomic ``.npz`` a clip, to
``cache_dir/train/clip_XXXXXX.npz`` and ``cache_dir/holdout/`` (held-out clips: other
stream seeds and scenes of other procedural seeds, ``holdout_scene_seeds``), with
``manifest.json`` naming what made it. Clips are made in chunks of consecutive clips of one
stream each (:func:`chunk_seed`); an interrupted build redoes only its unfinished chunks,
and a clip file that does not read back is rebuilt. The four tokenizers share one cache, so
the simulation runs once.

:func:`synthetic_clips`: moving coloured boxes, tilted depth planes and smooth random
trajectories of the same shapes, for tests and smoke runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egosim.atomic_io import save_npz, write_json
from egosim.egom2p.camera_9d import Camera9DStats, camera_9d
from egosim.egom2p.modalities import CLIP_FRAMES, POSE_SAMPLES
from egosim.egom2p.tokenizer_config import ClipDataSection

__all__ = ["ClipSet", "KEYS", "SYNTHETIC_CAMERA_STATS", "build_cache", "chunk_seed", "load_cache",
           "load_clips", "synthetic_clips"]

KEYS: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb",),
    "depth": ("depth",),
    "camera": ("camera", "camera_9d"),
    "gaze": ("gaze", "gaze_valid"),
}
"""Tokenizer name -> the clip keys its training and evaluation read."""

SYNTHETIC_CAMERA_STATS = (np.zeros(9), np.array([1.0] * 6 + [0.2] * 3))
"""``(mean, std)`` of the synthetic clips' ``camera_9d`` (translations over 0.2 m)."""

_ALL_KEYS = ("rgb", "depth", "camera", "camera_9d", "gaze", "gaze_valid")
_MANIFEST = "manifest.json"


@dataclass
class ClipSet:
    """``M`` clips as stacked arrays (``arrays[key]`` of shape ``(M, ...)``).

    Attributes:
        arrays: clip key -> ``(M, ...)`` array.
        camera_stats: ``(mean, std)`` ``(9,)`` the clips' ``camera_9d`` were scored with
            (:class:`egosim.egom2p.camera_9d.Camera9DStats`), when they hold it.
    """

    arrays: dict[str, np.ndarray]
    camera_stats: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0]) if self.arrays else 0

    def batch(self, index: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """The clips ``index`` as a batch ``{key: (len(index), ...)}``."""
        idx = np.asarray(index, dtype=np.int64)
        return {k: v[idx] for k, v in self.arrays.items()}

    def batches(self, size: int) -> Iterable[dict[str, np.ndarray]]:
        """Consecutive batches of at most ``size`` clips, in order."""
        for start in range(0, len(self), size):
            yield self.batch(np.arange(start, min(start + size, len(self))))


# ---------------------------------------------------------------------------------------
# synthetic clips
# ---------------------------------------------------------------------------------------


def _smooth(rng: np.random.Generator, n: int, t: np.ndarray, dims: int, scale: float
            ) -> np.ndarray:
    """``(n, len(t), dims)`` sums of three random low-frequency sinusoids."""
    freq = rng.uniform(0.2, 1.5, (n, 1, dims, 3))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, dims, 3))
    amp = rng.normal(0, scale, (n, 1, dims, 3))
    return np.sum(amp * np.sin(2 * np.pi * freq * t[None, :, None, None] + phase), axis=-1)


def synthetic_clips(n: int, height: int = 64, width: int = 64, seed: int = 0,
                    keys: Sequence[str] = _ALL_KEYS) -> ClipSet:
    """``n`` synthetic clips of the clip layout (see the module docstring).

    RGB: a two-colour gradient background with two boxes that move linearly; depth: a
    tilted plane (1-6 m) with a nearer box, a few pixels without a hit; camera: smooth
    rotations (about 10 degrees) and translations (about 0.2 m) starting at the identity,
    ``camera_9d`` scored with :data:`SYNTHETIC_CAMERA_STATS`;
    gaze: a smooth walk in [-1, 1] with a few invalid runs.
    """
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    ft = np.arange(CLIP_FRAMES) / 8.0
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    if "rgb" in keys or "depth" in keys:
        rgb = np.empty((n, CLIP_FRAMES, height, width, 3), np.float32)
        depth = np.empty((n, CLIP_FRAMES, height, width), np.float32)
        for i in range(n):
            c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            a = rng.uniform(0, 1)
            bg = (c0 * (a * xx + (1 - a) * yy)[..., None]
                  + c1 * (1 - (a * xx + (1 - a) * yy))[..., None])
            plane = rng.uniform(1.0, 3.0) + rng.uniform(0, 3.0) * yy + rng.uniform(-1, 1) * xx
            start = rng.uniform(0, 1, (2, 2))
            vel = rng.uniform(-0.25, 0.25, (2, 2))
            size = rng.uniform(0.1, 0.35, (2, 2))
            colour = rng.uniform(0, 255, (2, 3))
            for f, t in enumerate(ft):
                frame = bg.copy()
                d = plane.copy()
                for b in range(2):
                    cy, cx = start[b] + vel[b] * t
                    inside = (np.abs(yy - cy) < size[b, 0] / 2) & (np.abs(xx - cx) < size[b, 1] / 2)
                    frame[inside] = colour[b]
                    d[inside] = 0.6 + 0.3 * b
                d[:2, :3] = 0.0
                rgb[i, f] = frame
                depth[i, f] = np.clip(d, 0.0, None)
        if "rgb" in keys:
            out["rgb"] = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
        if "depth" in keys:
            out["depth"] = depth
    pt = np.arange(POSE_SAMPLES) / 30.0
    if "camera" in keys or "camera_9d" in keys:
        rotvec = _smooth(rng, n, pt, 3, 0.06)
        trans = _smooth(rng, n, pt, 3, 0.1) + rng.normal(0, 0.2, (n, 1, 3)) * pt[None, :, None]
        rotvec -= rotvec[:, :1]
        trans -= trans[:, :1]
        rot = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(n, -1, 3, 3)
        cam = np.tile(np.eye(4), (n, POSE_SAMPLES, 1, 1))
        cam[..., :3, :3] = rot
        cam[..., :3, 3] = trans
        if "camera" in keys:
            out["camera"] = cam
        if "camera_9d" in keys:
            out["camera_9d"] = camera_9d(cam, Camera9DStats(*SYNTHETIC_CAMERA_STATS))
    if "gaze" in keys or "gaze_valid" in keys:
        g = np.tanh(_smooth(rng, n, pt, 2, 0.4)).astype(np.float32)
        valid = np.ones((n, POSE_SAMPLES), bool)
        for i in range(n):
            if rng.uniform() < 0.5:
                s = int(rng.integers(0, POSE_SAMPLES - 6))
                valid[i, s:s + int(rng.integers(2, 6))] = False
        g[~valid] = 0.0
        if "gaze" in keys:
            out["gaze"] = g
        if "gaze_valid" in keys:
            out["gaze_valid"] = valid
    stats = SYNTHETIC_CAMERA_STATS if "camera_9d" in keys else None
    return ClipSet({k: out[k] for k in keys if k in out}, stats)


# ---------------------------------------------------------------------------------------
# the stream's clip cache
# ---------------------------------------------------------------------------------------


def _manifest(cfg: ClipDataSection) -> dict[str, Any]:
    return {"video_size": cfg.video_size, "seed": cfg.seed, "clip_config": cfg.clip_config,
            "clip_overrides": cfg.clip_overrides, "chunk_clips": cfg.chunk_clips,
            "holdout_chunk_clips": cfg.holdout_chunk_clips,
            "holdout_scene_seeds": list(cfg.holdout_scene_seeds)}


def chunk_seed(cfg: ClipDataSection, split: str, chunk: int) -> int:
    """Stream base seed of cache chunk ``chunk`` of ``split``: ``seed * 10**6 + chunk``
    for training, ``+ 500000`` for held-out clips."""
    return cfg.seed * 1_000_000 + (0 if split == "train" else 500_000) + chunk


def _clip_path(root: Path, split: str, index: int) -> Path:
    return root / split / f"clip_{index:06d}.npz"


def _readable(path: Path) -> bool:
    try:
        with np.load(path) as z:
            return all(k in z.files for k in _ALL_KEYS) and z["rgb"].shape[0] == CLIP_FRAMES
    except Exception:  # a truncated or foreign file
        return False


def _clip_arrays(clip: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The array entries of one raw stream clip, plus its ``meta`` as JSON text."""
    out = {k: np.asarray(clip[k]) for k in _ALL_KEYS}
    for k in ("intrinsics", "video_times", "pose_times", "video_camera"):
        if k in clip:
            out[k] = np.asarray(clip[k])
    if "meta" in clip:
        meta = {k: v for k, v in clip["meta"].items() if k != "attention"}
        out["meta_json"] = np.asarray(json.dumps(meta, default=str))
    return out


def _build_chunk(args: tuple[ClipDataSection, str, int, int, int]) -> int:
    """Write the clips ``first .. first + count - 1`` of ``split`` (one stream, chunk
    ``chunk``); returns how many files were written."""
    from egosim.egom2p.stream import SimStream

    cfg, split, chunk, first, count = args
    root = Path(cfg.cache_dir)
    paths = [_clip_path(root, split, first + k) for k in range(count)]
    todo = [not _readable(p) for p in paths]
    if not any(todo):
        return 0
    overrides: dict[str, Any] = {**cfg.clip_overrides, "video_size": cfg.video_size}
    if split == "holdout":
        overrides["scene.seed_range"] = list(cfg.holdout_scene_seeds)
    stream = SimStream(cfg.clip_config, overrides, seed=chunk_seed(cfg, split, chunk),
                       threads=1)
    written = 0
    for k, clip in enumerate(stream):  # clips are a function of the chunk's seed and index
        if todo[k]:
            save_npz(paths[k], _clip_arrays(clip), compress=True)
            written += 1
        if k + 1 == count or not any(todo[k + 1:]):
            break
    return written


def build_cache(cfg: ClipDataSection, progress: bool = True) -> Path:
    """Fill ``cfg.cache_dir`` with the configured clips (missing or unreadable ones only).

    Clips are made in chunks of ``chunk_clips`` (held-out: ``holdout_chunk_clips``)
    consecutive clips of one stream (base seed :func:`chunk_seed`), ``workers`` chunks at a
    time; held-out clips come from scenes of
    ``holdout_scene_seeds``. Returns the cache folder.

    Raises:
        ValueError: the folder holds a cache made with other settings (``manifest.json``).
    """
    from tqdm.auto import tqdm

    root = Path(cfg.cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    man = root / _MANIFEST
    want = _manifest(cfg)
    if man.is_file():
        have = json.loads(man.read_text())
        same = {k: have.get(k) for k in want}
        if same != want:
            raise ValueError(f"{root} holds clips made with {same}, the config asks for "
                             f"{want}; choose another data.cache_dir")
    jobs = []
    for split, total in (("train", cfg.train_clips), ("holdout", cfg.holdout_clips)):
        (root / split).mkdir(exist_ok=True)
        size = cfg.chunk_clips if split == "train" else cfg.holdout_chunk_clips
        for chunk, first in enumerate(range(0, total, size)):
            count = min(size, total - first)
            if not all(_readable(_clip_path(root, split, first + k)) for k in range(count)):
                jobs.append((cfg, split, chunk, first, count))
    if jobs:
        write_json(man, {**want, "stats_mean": None}, indent=1)
        t0 = time.time()
        bar = tqdm(total=len(jobs), desc="clip cache (chunks)", disable=not progress)
        if cfg.workers <= 1:
            for job in jobs:
                _build_chunk(job)
                bar.update(1)
        else:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(min(cfg.workers, len(jobs))) as pool:
                for _ in pool.imap_unordered(_build_chunk, jobs):
                    bar.update(1)
        bar.close()
        print(f"clip cache: {len(jobs)} chunks of up to {cfg.chunk_clips} clips in "
              f"{time.time() - t0:.0f} s", file=sys.stderr)
    write_json(man, want, indent=1)
    return root


def load_cache(cfg: ClipDataSection, split: str, keys: Sequence[str]) -> ClipSet:
    """The ``split`` (``"train"`` or ``"holdout"``) clips of the cache, ``keys`` only.

    ``camera_9d`` is scored from ``camera`` with the current shipped statistics
    (:func:`egosim.egom2p.camera_9d.load_stats`), which the set carries as
    :attr:`ClipSet.camera_stats`.

    Raises:
        FileNotFoundError: a clip of the configured count is missing (run
            :func:`build_cache`).
    """
    from egosim.egom2p.camera_9d import load_stats

    count = cfg.train_clips if split == "train" else cfg.holdout_clips
    root = Path(cfg.cache_dir)
    read = [k for k in keys if k != "camera_9d"]
    if "camera_9d" in keys and "camera" not in read:
        read.append("camera")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in read}
    for i in range(count):
        path = _clip_path(root, split, i)
        if not path.is_file():
            raise FileNotFoundError(f"clip cache {root / split} lacks {path.name}; build it "
                                    "first")
        with np.load(path) as z:
            for k in read:
                parts[k].append(z[k])
    arrays = {k: np.stack(v) for k, v in parts.items()}
    stats = None
    if "camera_9d" in keys:
        s = load_stats()
        arrays["camera_9d"] = camera_9d(arrays["camera"], s)
        stats = (s.mean, s.std)
    return ClipSet({k: arrays[k] for k in keys}, stats)


def load_clips(cfg: ClipDataSection, name: str, progress: bool = True
               ) -> tuple[ClipSet, ClipSet]:
    """``(train, held-out)`` clips for tokenizer ``name`` as ``cfg`` configures them."""
    keys = KEYS[name]
    if cfg.source == "synthetic":
        size = cfg.video_size
        return (synthetic_clips(cfg.train_clips, size, size, cfg.seed, keys),
                synthetic_clips(cfg.holdout_clips, size, size, cfg.seed + 1, keys))
    build_cache(cfg, progress)
    return load_cache(cfg, "train", keys), load_cache(cfg, "holdout", keys)
