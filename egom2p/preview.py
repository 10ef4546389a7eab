"""Preview videos of EgoM2P clips: RGB | depth | RGB with the gaze dot | camera trajectory.

:func:`preview_frames` draws one clip's 16 video frames as panels side by side (numpy only):

===========  ==============================================================================
panel        content
===========  ==============================================================================
rgb          the head-camera RGB frame (grey without the ``rgb`` modality)
depth        z-depth, near bright to far dark (0 to ``far`` m, log scale), black = no hit
gaze         the RGB frame with the gaze point of the nearest pose sample (red dot;
             none where invalid)
trajectory   top-down (x right, z forward of the clip's first camera) of the 60 canonical
             camera centres: the whole path grey, the part up to the frame white, the
             camera now a red dot with its viewing direction
===========  ==============================================================================

:func:`write_preview` writes clips one after the other into an MP4 (``egosim.atomic_io``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["preview_frames", "write_preview"]

_RED = np.array([255, 40, 40], np.uint8)


def _np(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def _upscale(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(H, W, ...)`` to ``(size, size, ...)``."""
    h, w = img.shape[:2]
    return img[(np.arange(size) * h // size)[:, None], (np.arange(size) * w // size)[None]]


def _depth_panel(depth: np.ndarray, far: float) -> np.ndarray:
    """Log-scaled grey image ``(H, W, 3)`` uint8 of a z-depth image (m; 0 = no hit)."""
    d = np.clip(depth, 0.0, far)
    with np.errstate(divide="ignore"):
        v = 1.0 - np.log1p(d) / np.log1p(far)
    g = np.where(depth > 0, 40 + 215 * v, 0).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def _disc(img: np.ndarray, x: float, y: float, r: float, color: np.ndarray) -> None:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    img[(xx - x) ** 2 + (yy - y) ** 2 <= r * r] = color


def _line(img: np.ndarray, a: np.ndarray, b: np.ndarray, color: np.ndarray) -> None:
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    t = np.linspace(0.0, 1.0, n)[:, None]
    p = np.rint(a[None] * (1 - t) + b[None] * t).astype(int)
    h, w = img.shape[:2]
    ok = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
    img[p[ok, 1], p[ok, 0]] = color


def _trajectory_panel(camera: np.ndarray, upto: int, size: int) -> np.ndarray:
    """Top-down view of canonical camera centres ``camera (T, 4, 4)``: x to the right, z
    (the first camera's forward) up; poses ``0 .. upto`` highlighted."""
    img = np.full((size, size, 3), 24, np.uint8)
    xz = camera[:, [0, 2], 3]
    span = max(float(np.abs(xz).max()) * 1.2, 0.5)
    margin = 0.1 * size

    def px(p: np.ndarray) -> np.ndarray:
        return np.array([size / 2 + p[0] / span * (size / 2 - margin),
                         size / 2 - p[1] / span * (size / 2 - margin)])

    img[int(size / 2), :] = 48
    img[:, int(size / 2)] = 48
    for k in range(len(xz) - 1):
        color = np.array([235, 235, 235] if k < upto else [110, 110, 110], np.uint8)
        _line(img, px(xz[k]), px(xz[k + 1]), color)
    now = px(xz[upto])
    fwd = camera[upto, [0, 2], 2]
    _line(img, now, now + np.array([fwd[0], -fwd[1]]) * size * 0.12, _RED)
    _disc(img, now[0], now[1], max(1.5, size / 40), _RED)
    return img


def preview_frames(clip: Mapping[str, Any], panel: int = 128, far: float = 20.0
                   ) -> np.ndarray:
    """``(K, panel, 4 panel, 3)`` uint8 preview frames of one clip (module table).

    Args:
        clip: a clip (numpy arrays or tensors); needs ``video_times`` and ``pose_times``.
        panel: side of each square panel, pixels.
        far: depth shown as black from here on, m.
    """
    vt, pt = _np(clip["video_times"]), _np(clip["pose_times"])
    k_n = len(vt)
    rgb = _np(clip["rgb"]) if "rgb" in clip else np.full((k_n, 8, 8, 3), 96, np.uint8)
    depth = _np(clip["depth"]) if "depth" in clip else np.zeros(rgb.shape[:3], np.float32)
    camera = _np(clip["camera"]) if "camera" in clip else None
    frames = []
    for k in range(k_n):
        j = int(np.argmin(np.abs(pt - vt[k])))
        a = _upscale(rgb[k], panel)
        b = _upscale(_depth_panel(depth[k], far), panel)
        c = a.copy()
        if "gaze" in clip and bool(_np(clip["gaze_valid"])[j]):
            x, y = _np(clip["gaze"])[j]
            _disc(c, (x + 1) / 2 * panel - 0.5, (y + 1) / 2 * panel - 0.5, max(2.0, panel / 32),
                  _RED)
        d = (_trajectory_panel(camera, j, panel) if camera is not None
             else np.zeros_like(a))
        frames.append(np.concatenate([a, b, c, d], axis=1))
    return np.stack(frames)


def write_preview(path: str | Path, clips: Iterable[Mapping[str, Any]], fps: float = 8.0,
                  panel: int = 128, far: float = 20.0) -> Path:
    """Write the preview frames of ``clips``, one after the other, to the MP4 ``path``
    (folders created; atomic). Returns the path."""
    import imageio.v2 as imageio

    from egosim.atomic_io import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, fps=fps, macro_block_size=1)
        try:
            for clip in clips:
                for frame in preview_frames(clip, panel, far):
                    writer.append_data(frame)
        finally:
            writer.close()
    return path
