"""EgoM2P's 9-D camera trajectory encoding: canonical poses <-> z-scored 9-vectors.

A clip's camera trajectory is ``T`` (60) OpenCV camera-to-world poses, made canonical by
left-multiplying each with the inverse of the first (frame 0 becomes the identity, the
others are relative to it). Pose ``k`` then becomes the 9-vector

    ``[R[:, 0], R[:, 1], t]`` = ``(r00, r10, r20, r01, r11, r21, tx, ty, tz)``

(the first two rotation columns, then the translation in metres: EgoM2P's layout), and each
of the 9 dimensions is z-scored with global statistics (:class:`Camera9DStats`, shipped as
``egom2p/tokenizers/checkpoints/camera_9d_stats.json`` beside the camera tokenizer, fitted
by :func:`fit_stats` on stream clips). :func:`decode_9d` inverts it: un-scores, then
Gram-Schmidt turns the two (possibly noisy) columns into a rotation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["STATS_FILE", "Camera9DStats", "camera_9d", "canonical", "decode_9d",
           "encode_9d", "fit_stats", "gram_schmidt", "load_stats", "save_stats"]

#: The shipped statistics, relative to the ``egosim.egom2p`` package.
STATS_FILE = ("tokenizers", "checkpoints", "camera_9d_stats.json")
#: Smallest standard deviation used for z-scoring (a constant dimension is not blown up).
MIN_STD = 1e-3


@dataclass(frozen=True)
class Camera9DStats:
    """Per-dimension mean and standard deviation of canonical 9-D poses.

    Attributes:
        mean: ``(9,)`` float64 (rotation entries unitless, translation metres).
        std: ``(9,)`` float64, each >= :data:`MIN_STD`.
        clips: how many clips they were fitted on (0: the identity statistics).
    """

    mean: np.ndarray
    std: np.ndarray
    clips: int = 0

    @classmethod
    def identity(cls) -> Camera9DStats:
        """Mean 0, std 1: z-scoring does nothing."""
        return cls(np.zeros(9), np.ones(9), 0)


def canonical(poses: np.ndarray) -> np.ndarray:
    """``inv(P[..., 0]) @ P[..., k]``: ``(..., T, 4, 4)`` -> the same, frame 0 the identity."""
    p = np.asarray(poses, np.float64)
    if p.ndim < 3 or p.shape[-2:] != (4, 4):
        raise ValueError(f"poses must have shape (..., T, 4, 4), got {p.shape}")
    return np.linalg.inv(p[..., :1, :, :]) @ p


def encode_9d(poses: np.ndarray) -> np.ndarray:
    """Raw 9-vectors ``(..., T, 9)`` float64 of (canonical) poses ``(..., T, 4, 4)``."""
    p = np.asarray(poses, np.float64)
    if p.ndim < 2 or p.shape[-2:] != (4, 4):
        raise ValueError(f"poses must have shape (..., 4, 4), got {p.shape}")
    return np.concatenate([p[..., :3, 0], p[..., :3, 1], p[..., :3, 3]], axis=-1)


def gram_schmidt(a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """Rotations ``(..., 3, 3)`` from two column estimates ``(..., 3)`` each: ``b1 = a1 /
    |a1|``, ``b2`` = ``a2`` minus its ``b1`` part, normalised, ``b3 = b1 x b2``."""
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-1)


def camera_9d(poses: np.ndarray, stats: Camera9DStats | None = None) -> np.ndarray:
    """The clip entry ``camera_9d``: z-scored 9-vectors ``(..., T, 9)`` float32 of poses
    ``(..., T, 4, 4)`` (made canonical here; canonical poses stay as they are).

    Args:
        poses: camera-to-world poses (OpenCV axes, metres).
        stats: the statistics; None: the shipped ones (:func:`load_stats`).
    """
    s = load_stats() if stats is None else stats
    return ((encode_9d(canonical(poses)) - s.mean) / s.std).astype(np.float32)


def decode_9d(z: np.ndarray, stats: Camera9DStats | None = None) -> np.ndarray:
    """Canonical poses ``(..., T, 4, 4)`` float64 of z-scored 9-vectors ``(..., T, 9)``.

    Args:
        z: ``camera_9d`` values (any float dtype; a tokenizer's reconstruction works too).
        stats: the statistics they were scored with; None: the shipped ones.
    """
    s = load_stats() if stats is None else stats
    v = np.asarray(z, np.float64)
    if v.shape[-1] != 9:
        raise ValueError(f"z must have shape (..., 9), got {v.shape}")
    raw = v * s.std + s.mean
    out = np.zeros(v.shape[:-1] + (4, 4))
    out[..., :3, :3] = gram_schmidt(raw[..., 0:3], raw[..., 3:6])
    out[..., :3, 3] = raw[..., 6:9]
    out[..., 3, 3] = 1.0
    return out


def fit_stats(poses: np.ndarray) -> Camera9DStats:
    """Statistics of clips' trajectories ``(K, T, 4, 4)`` (made canonical here): mean and
    standard deviation of each 9-D dimension over every clip and frame (frame 0 included,
    as the tokenizer sees it); std floored at :data:`MIN_STD`."""
    p = np.asarray(poses, np.float64)
    if p.ndim != 4 or p.shape[-2:] != (4, 4):
        raise ValueError(f"poses must have shape (K, T, 4, 4), got {p.shape}")
    raw = encode_9d(canonical(p)).reshape(-1, 9)
    return Camera9DStats(raw.mean(axis=0), np.maximum(raw.std(axis=0), MIN_STD), len(p))


def save_stats(path: str | Path, stats: Camera9DStats, source: str = "") -> Path:
    """Write ``stats`` as JSON (``mean``, ``std``, ``clips``, ``layout``, ``source``),
    atomically."""
    from egosim.atomic_io import write_json

    return write_json(path, {"layout": ["r00", "r10", "r20", "r01", "r11", "r21", "tx", "ty",
                                        "tz"],
                             "mean": [float(x) for x in stats.mean],
                             "std": [float(x) for x in stats.std],
                             "clips": int(stats.clips), "source": source}, indent=2)


_CACHE: dict[str, Camera9DStats] = {}


def _read(text: str, where: str) -> Camera9DStats:
    data = json.loads(text)
    mean, std = np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64)
    if mean.shape != (9,) or std.shape != (9,) or not np.all(std > 0) \
            or not np.all(np.isfinite(mean)):
        raise ValueError(f"{where}: need 9 finite means and 9 positive stds")
    return Camera9DStats(mean, std, int(data.get("clips", 0)))


def load_stats(path: str | Path | None = None) -> Camera9DStats:
    """The statistics in ``path`` (a JSON of :func:`save_stats`); None: the shipped file
    (read once per process through ``importlib.resources``)."""
    if path is not None:
        return _read(Path(path).read_text(), str(path))
    if "shipped" not in _CACHE:
        node = resources.files("egosim.egom2p")
        for part in STATS_FILE:
            node = node.joinpath(part)
        _CACHE["shipped"] = _read(node.read_text(), "/".join(STATS_FILE))
    return _CACHE["shipped"]
