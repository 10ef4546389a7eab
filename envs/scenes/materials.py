"""Per-class base colours (linear RGB) and the small generated textures of procedural scenes.

Colours are linear RGB in [0, 1] (the renderer applies the sRGB transfer when it writes
``uint8`` images). :func:`jitter` varies them per instance, from a caller's Generator.
"""

from __future__ import annotations

import numpy as np

from egosim.envs.scenes.classes import class_id

__all__ = [
    "BASE_COLORS",
    "rgb255",
    "base_color",
    "jitter",
    "srgb_to_linear",
    "linear_to_srgb",
    "wood_floor_texture",
    "checker_texture",
]


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear RGB (IEC 61966-2-1), same shape."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear RGB in [0, 1] to sRGB-encoded values in [0, 1], same shape."""
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def rgb255(r: int, g: int, b: int) -> np.ndarray:
    """``(3,)`` linear RGB of an sRGB colour given as 0-255 integers."""
    return srgb_to_linear(np.array([r, g, b]) / 255.0)


# Linear RGB per class name (designed in sRGB, converted once).
BASE_COLORS: dict[str, np.ndarray] = {
    "void": rgb255(128, 128, 128),
    "floor": rgb255(170, 130, 90),
    "wall": rgb255(225, 220, 205),
    "ceiling": rgb255(240, 240, 236),
    "door": rgb255(140, 100, 60),
    "window": rgb255(180, 210, 230),
    "table": rgb255(150, 105, 65),
    "chair": rgb255(120, 80, 50),
    "sofa": rgb255(70, 90, 140),
    "bed": rgb255(200, 195, 185),
    "shelf": rgb255(130, 95, 60),
    "cabinet": rgb255(205, 200, 190),
    "plant": rgb255(60, 130, 55),
    "lamp": rgb255(235, 225, 190),
    "person": rgb255(200, 160, 140),
    "ground": rgb255(90, 140, 70),
    "structure": rgb255(160, 160, 160),
    "object": rgb255(180, 180, 180),
}


def base_color(name: str) -> np.ndarray:
    """``(3,)`` linear RGB base colour of the class called ``name``."""
    class_id(name)  # validates the name
    return BASE_COLORS[name].copy()


def jitter(color: np.ndarray, rng: np.random.Generator, amount: float = 0.08) -> np.ndarray:
    """Colour with a small per-instance variation: brightness and per-channel tint.

    Args:
        color: ``(3,)`` linear RGB.
        rng: random source (consumes 4 draws).
        amount: relative spread of the variation.

    Returns:
        ``(3,)`` linear RGB clipped to [0, 1].
    """
    scale = 1.0 + amount * rng.uniform(-1.0, 1.0)
    tint = 1.0 + 0.5 * amount * rng.uniform(-1.0, 1.0, 3)
    return np.clip(np.asarray(color) * scale * tint, 0.0, 1.0)


def wood_floor_texture(size: int = 128) -> np.ndarray:
    """Deterministic wooden-plank texture, ``(size, size, 3)`` uint8 sRGB.

    Four planks across, staggered joints, a low-frequency grain. One texture tile is
    meant to cover 1 m x 1 m of floor (UVs repeat).
    """
    v, u = np.mgrid[0:size, 0:size] / size
    plank = np.floor(v * 4)
    offset = (plank * 0.37) % 1.0
    along = (u + offset) % 1.0
    grain = 0.5 + 0.5 * np.sin(2 * np.pi * (v * 4 * 3 + 0.6 * np.sin(2 * np.pi * along * 2)))
    shade = 0.85 + 0.1 * grain + 0.05 * np.sin(plank * 2.1)
    seam = ((v * 4) % 1.0 < 0.03) | (along < 0.01)
    shade = np.where(seam, 0.55, shade)
    base = np.array([178, 134, 92], np.float64)
    return np.clip(shade[..., None] * base, 0, 255).astype(np.uint8)


def checker_texture(size: int = 64, cells: int = 8) -> np.ndarray:
    """Deterministic two-tone checker, ``(size, size, 3)`` uint8 sRGB."""
    v, u = np.mgrid[0:size, 0:size] * cells // size
    on = ((u + v) % 2).astype(bool)
    img = np.where(on[..., None], np.array([200, 200, 200]), np.array([90, 90, 90]))
    return img.astype(np.uint8)
