"""Per-process caches the environments share: scenes by seed, motion priors by path.

Both are read-only once built, so every env (and every world of a batched env) in a process
uses the same objects; nothing here holds random state. Scenes are kept in a small LRU
(``scene.cache_size``) so that a new scene seed per episode does not rebuild scenes that were
seen recently; a world keeps its own reference while its episode runs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["get_scene", "get_prior", "get_probe", "clear"]

_SCENES: OrderedDict[tuple, Any] = OrderedDict()
_PRIORS: dict[str, Any] = {}
_PROBES: dict[tuple, Any] = {}


def _key(spec: str, seed: int | None, options: dict[str, Any]) -> tuple:
    return (spec, seed, tuple(sorted((k, repr(v)) for k, v in options.items())))


def get_scene(spec: str, seed: int | None, options: dict[str, Any], cache_size: int):
    """``egosim.envs.scenes.load(spec, seed, **options)``, cached (LRU of ``cache_size``).

    Raises:
        ValueError: from ``scenes.load`` (unknown spec or option, bad value), prefixed with
            the config keys to change.
    """
    from egosim.envs import scenes

    key = _key(spec, seed, options)
    if key in _SCENES:
        _SCENES.move_to_end(key)
        return _SCENES[key]
    try:
        scene = scenes.load(spec, seed=seed, **options)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"scene (config keys scene.spec / scene.options): {exc}") from None
    _SCENES[key] = scene
    while len(_SCENES) > cache_size:
        _SCENES.popitem(last=False)
    return scene


def get_prior(path: str | None):
    """``MotionPrior.load(path)`` (None: the shipped checkpoints), cached per path.

    Raises:
        FileNotFoundError: the checkpoints are missing (names the folder and ``prior.path``).
    """
    from egosim.envs.motion.prior import MotionPrior

    key = str(path)
    if key not in _PRIORS:
        try:
            _PRIORS[key] = MotionPrior.load(path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc}; or point the config key prior.path at a folder "
                                    "with cvae.pt and regressor.pt") from None
    return _PRIORS[key]


def get_probe(path: str | None, num_vertices: int):
    """The :class:`~egosim.envs.rewards.PenetrationProbe` of the prior at ``path``."""
    from egosim.envs.rewards import PenetrationProbe

    key = (str(path), int(num_vertices))
    if key not in _PROBES:
        _PROBES[key] = PenetrationProbe(get_prior(path).body, num_vertices)
    return _PROBES[key]


def clear() -> None:
    """Drop every cached scene, prior and probe."""
    _SCENES.clear()
    _PRIORS.clear()
    _PROBES.clear()
