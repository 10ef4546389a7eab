"""Per-body appearance drawn from a seed: skin tone, hair and clothing colours.

Regions come from the body-part labels and the rest-pose template: hair covers the top and
back of the head above the ears; the shirt covers the torso and the upper arms (and the
forearms for long sleeves); trousers cover thighs and lower legs (down to the knee for
shorts); shoes cover the feet; everything else shows skin. Colours are linear-ish sRGB in
``[0, 1]``, with a small per-vertex variation so flat regions do not look plastic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .body_parts import BODY_PART_NAMES, body_part_labels

__all__ = ["Appearance", "sample_appearance", "REGION_NAMES", "SKIN_TONES"]

#: Region ids of :attr:`Appearance.regions`.
REGION_NAMES: tuple[str, ...] = ("skin", "hair", "shirt", "pants", "shoes")

#: Skin tone palette (sRGB in [0, 1]), light to dark (roughly Fitzpatrick I-VI).
SKIN_TONES: np.ndarray = np.array([
    [0.96, 0.80, 0.69], [0.92, 0.72, 0.58], [0.80, 0.60, 0.45],
    [0.65, 0.45, 0.32], [0.47, 0.31, 0.21], [0.30, 0.20, 0.14],
])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.16, 0.09], [0.50, 0.35, 0.18],
                  [0.80, 0.68, 0.45], [0.55, 0.22, 0.10], [0.60, 0.60, 0.60]])


@dataclass(frozen=True)
class Appearance:
    """A body's colours.

    Attributes:
        skin: ``(3,)`` skin colour.
        hair: ``(3,)`` hair colour.
        shirt: ``(3,)`` shirt colour.
        pants: ``(3,)`` trousers colour.
        shoes: ``(3,)`` shoe colour.
        long_sleeves: whether the shirt covers the forearms.
        shorts: whether the trousers stop at the knees.
        regions: ``(V,)`` int64 region id per vertex (see :data:`REGION_NAMES`).
        vertex_colors: ``(V, 3)`` float32 in ``[0, 1]``.
    """

    skin: np.ndarray
    hair: np.ndarray
    shirt: np.ndarray
    pants: np.ndarray
    shoes: np.ndarray
    long_sleeves: bool
    shorts: bool
    regions: np.ndarray
    vertex_colors: np.ndarray


def _cloth_colour(rng: np.random.Generator) -> np.ndarray:
    hue = rng.random()
    sat = rng.uniform(0.15, 0.75)
    val = rng.uniform(0.15, 0.9)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    rgb = val - val * sat * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return rgb


def _regions(labels: np.ndarray, template: np.ndarray, long_sleeves: bool,
             shorts: bool) -> np.ndarray:
    part = {n: i for i, n in enumerate(BODY_PART_NAMES)}
    reg = np.zeros(len(labels), dtype=np.int64)
    shirt = ["torso", "left_upper_arm", "right_upper_arm"]
    if long_sleeves:
        shirt += ["left_forearm", "right_forearm"]
    reg[np.isin(labels, [part[n] for n in shirt])] = 2
    reg[np.isin(labels, [part["left_thigh"], part["right_thigh"]])] = 3
    if not shorts:
        reg[np.isin(labels, [part["left_lower_leg"], part["right_lower_leg"]])] = 3
    reg[np.isin(labels, [part["left_foot"], part["right_foot"]])] = 4
    head = labels == part["head"]
    if head.any():
        hv = template[head]
        top, bottom = hv[:, 1].max(), hv[:, 1].min()
        depth = hv[:, 2].max() - hv[:, 2].min()
        front = hv[:, 2].max()
        y, z = template[:, 1], template[:, 2]
        hair = head & (y > bottom + 0.62 * (top - bottom))
        hair &= (z < front - 0.22 * depth) | (y > bottom + 0.86 * (top - bottom))
        hair |= head & (y > bottom + 0.45 * (top - bottom)) & (z < front - 0.75 * depth)
        reg[hair] = 1
    return reg


def sample_appearance(rng_or_seed: np.random.Generator | int,
                      labels: np.ndarray | None = None,
                      template: np.ndarray | None = None) -> Appearance:
    """Draw skin tone, hair and clothing colours and paint the vertices.

    Args:
        rng_or_seed: a ``numpy.random.Generator`` or an int seed (same seed, same bytes).
        labels: ``(V,)`` body-part labels (:func:`~.body_parts.body_part_labels`);
            ``None`` uses the procedural neutral body.
        template: ``(V, 3)`` rest-pose vertices (body frame) for the hair line; ``None``
            uses the procedural neutral template.

    Returns:
        :class:`Appearance` with ``vertex_colors (V, 3)`` float32 in ``[0, 1]``.
    """
    if isinstance(rng_or_seed, np.random.Generator):
        rng = rng_or_seed
    elif isinstance(rng_or_seed, (int, np.integer)) and not isinstance(rng_or_seed, bool):
        rng = np.random.default_rng(int(rng_or_seed))
    else:
        raise TypeError(f"rng_or_seed must be a numpy Generator or an int seed; "
                        f"got {rng_or_seed!r}")
    if labels is None or template is None:
        from egosim.envs.humans.procedural.generator import procedural_model_path

        with np.load(procedural_model_path("neutral")) as data:
            if labels is None:
                labels = body_part_labels(data["weights"])
            if template is None:
                template = data["v_template"]
    labels = np.asarray(labels)
    template = np.asarray(template)
    if template.shape != (len(labels), 3):
        raise ValueError(f"template must have shape ({len(labels)}, 3); got {template.shape}")

    t = rng.uniform(0.0, len(SKIN_TONES) - 1)
    i = int(np.floor(t))
    skin = SKIN_TONES[i] + (t - i) * (SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] - SKIN_TONES[i])
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15)
    shirt, pants = _cloth_colour(rng), _cloth_colour(rng)
    shoes = _cloth_colour(rng) * rng.uniform(0.3, 1.0)
    long_sleeves = bool(rng.random() < 0.4)
    shorts = bool(rng.random() < 0.25)
    regions = _regions(labels, template, long_sleeves, shorts)
    palette = np.stack([skin, hair, shirt, pants, shoes])
    colors = palette[regions] * rng.uniform(0.94, 1.06, size=(len(labels), 1))
    colors = np.clip(colors, 0.0, 1.0).astype(np.float32)
    return Appearance(skin=np.clip(skin, 0, 1), hair=np.clip(hair, 0, 1), shirt=shirt,
                      pants=pants, shoes=shoes, long_sleeves=long_sleeves, shorts=shorts,
                      regions=regions, vertex_colors=colors)
