"""Lighting for RGB: ambient plus one directional light (Lambert), drawn per episode.

Shading of a surface point with albedo ``a`` (linear [0, 1]) and unit normal ``n``
turned to face the camera (surfaces are two-sided)::

    colour = a * (ambient * ambient_color + diffuse * max(0, n . -direction) * light_color)

clipped to [0, 1] and stored as uint8 (``round(255 * colour)``). Rays that hit nothing
show ``background``. There are no shadows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Lighting"]


@dataclass(frozen=True)
class Lighting:
    """Ambient + directional light.

    Attributes:
        direction: ``(3,)`` unit vector, world frame, the direction light travels (from
            the light towards the scene; ``(0, 0, -1)`` is straight down).
        ambient: ambient intensity, >= 0.
        diffuse: directional intensity, >= 0.
        light_color, ambient_color: ``(3,)`` RGB in [0, 1].
        background: ``(3,)`` RGB in [0, 1] of pixels that see nothing.
    """

    direction: tuple[float, float, float] = (0.3, 0.2, -0.93)
    ambient: float = 0.45
    diffuse: float = 0.6
    light_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        d = np.asarray(self.direction, np.float64)
        if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0:
            raise ValueError("Lighting.direction must be a finite non-zero 3-vector, "
                             f"got {self.direction}")
        object.__setattr__(self, "direction", tuple(float(x) for x in d / np.linalg.norm(d)))
        if self.ambient < 0 or self.diffuse < 0:
            raise ValueError("Lighting.ambient and .diffuse must be >= 0, "
                             f"got {self.ambient}, {self.diffuse}")
        for name in ("light_color", "ambient_color", "background"):
            c = np.asarray(getattr(self, name), np.float64)
            if c.shape != (3,) or c.min() < 0 or c.max() > 1:
                raise ValueError(f"Lighting.{name} must be 3 values in [0, 1], "
                                 f"got {getattr(self, name)}")

    @classmethod
    def sample(cls, rng) -> Lighting:
        """Random lighting, as EgoGen randomises ambient and directional light.

        Draws: ambient ~ U(0.2, 0.6); diffuse ~ U(0.3, 0.9); light elevation ~ U(25, 85)
        degrees above the horizon, azimuth ~ U(0, 360); each colour channel of the light
        ~ U(0.85, 1.0) (slightly warm or cool white); background grey ~ U(0, 0.3).

        Args:
            rng: seed or ``numpy.random.Generator``.
        """
        g = np.random.default_rng(rng)
        elev = np.radians(g.uniform(25.0, 85.0))
        azim = g.uniform(0.0, 2.0 * np.pi)
        d = -np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
        col = g.uniform(0.85, 1.0, size=3)
        bg = g.uniform(0.0, 0.3)
        return cls(
            direction=tuple(d),
            ambient=float(g.uniform(0.2, 0.6)),
            diffuse=float(g.uniform(0.3, 0.9)),
            light_color=tuple(float(c) for c in col),
            background=(float(bg),) * 3,
        )
