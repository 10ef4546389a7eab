"""What the EgoGen envs share: config resolution, spaces, action checks, rendering.

The envs themselves (:mod:`.locomotion`, :mod:`.crowd`, :mod:`.vector`) only wire a
:class:`~egosim.envs.simulation.Simulation` to Gymnasium's API.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pydantic import BaseModel, ValidationError

from egosim.envs.motion.primitive_windows import STEP_SECONDS
from egosim.envs.observation import OBS_KEYS
from egosim.envs.simulation import GOAL_DIM, MARKER_CLIP, MARKER_DIM

__all__ = ["resolve_config", "observation_space", "action_space", "check_action",
           "flatten_obs", "render_world", "RENDER_MODES", "RENDER_FPS"]

RENDER_MODES = ["rgb_array"]
#: Rendered frames per second: one frame per env step (one motion primitive).
RENDER_FPS: float = 1.0 / STEP_SECONDS

ConfigLike = str | os.PathLike | dict | BaseModel | None
M = TypeVar("M", bound=BaseModel)


def resolve_config(config: ConfigLike, overrides: list[str] | dict[str, Any] | None,
                   schema: type[M]) -> M:
    """A validated ``schema`` instance, with dotted ``key=value`` overrides applied.

    ``config``: None (the schema's defaults), a shipped config name or a YAML path (loaded
    with :func:`egosim.config.load_config`), a dict of (nested) keys, or a config model (an
    instance of ``schema`` is used as it is; another model is validated from its keys).

    Raises:
        egosim.config.ConfigError: unknown key or bad value (names the key and the rule).
    """
    from egosim.config import (
        ConfigError,
        apply_overrides,
        dump_config,
        format_validation_error,
        load_config,
        normalize_overrides,
        with_overrides,
    )

    if isinstance(config, (str, os.PathLike)):
        return load_config(config, overrides, schema=schema)
    if type(config) is schema:
        return with_overrides(config, overrides) if overrides else config
    if config is None:
        config = {}
    elif isinstance(config, BaseModel):
        config = dump_config(config)
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a config name, a YAML path, a dict or a "
                          f"{schema.__name__}; got {type(config).__name__}")
    if overrides:
        config = apply_overrides(config, normalize_overrides(overrides))
    try:
        return schema.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(format_validation_error("<dict>", exc, schema)) from None


def _camera_space(spec, n: int) -> spaces.Box:
    h, w = spec.resolution
    lead = () if n == 1 else (n,)
    if spec.modality == "rgb":
        return spaces.Box(0, 255, lead + (h, w, 3), np.uint8)
    if spec.modality == "depth":
        return spaces.Box(0.0, float(spec.far), lead + (h, w), np.float32)
    from egosim.envs.scenes.classes import NUM_CLASSES

    return spaces.Box(-1, NUM_CLASSES - 1, lead + (h, w), np.int32)


def observation_space(num_humans: int, num_rays: int, camera_specs: list) -> spaces.Dict:
    """Per-env Dict space: the vector keys (:data:`~egosim.envs.observation.OBS_KEYS`, in
    that order; each holds ``num_humans`` rows, flattened), then one image per camera."""
    n = num_humans
    boxes = {
        "markers": spaces.Box(-MARKER_CLIP, MARKER_CLIP, (n * MARKER_DIM,), np.float32),
        "goal_dirs": spaces.Box(-1.0, 1.0, (n * GOAL_DIM,), np.float32),
        "ego_sensing": spaces.Box(-1.0, 1.0, (n * num_rays,), np.float32),
        "goal_distance": spaces.Box(0.0, 1.0, (n,), np.float32),
        "time_left": spaces.Box(0.0, 1.0, (n,), np.float32),
    }
    d = {key: boxes[key] for key in OBS_KEYS}
    for s in camera_specs:
        d[s.uuid] = _camera_space(s, n)
    return spaces.Dict(d)


def action_space(num_humans: int, latent_dim: int) -> spaces.Box:
    """``Box(-1, 1, (num_humans * latent_dim,), float32)``."""
    return spaces.Box(-1.0, 1.0, (num_humans * latent_dim,), np.float32)


def check_action(action: Any, space: spaces.Box, lead: tuple[int, ...] = ()) -> np.ndarray:
    """Validated float32 action(s) of shape ``lead + space.shape``.

    Raises:
        ValueError: wrong shape, NaN/inf, or values outside [-1, 1] (actions are never
            clipped silently).
    """
    try:
        raw = np.asarray(action)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action must be an array of real numbers; got "
                         f"{type(action).__name__} ({exc})") from None
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"action must be an array of real numbers (int or float); got dtype "
                         f"{raw.dtype} ({type(action).__name__}): bool, complex and object "
                         "actions are refused")
    want = lead + space.shape
    if raw.shape != want:
        raise ValueError(f"action must have shape {want} (latent z / scale); got {raw.shape}")
    wide = raw.astype(np.float64, copy=False)
    if not np.all(np.isfinite(wide)):
        raise ValueError("action contains NaN or inf")
    worst = float(np.max(np.abs(wide))) if wide.size else 0.0
    if worst > 1.0 + 1e-6:
        raise ValueError(f"action values must lie in [-1, 1] (z = action.scale * action); "
                         f"got min {float(wide.min())!r}, max {float(wide.max())!r}")
    return raw.astype(np.float32)


def flatten_obs(obs: dict[str, np.ndarray], camera_uuids: list[str], n: int
                ) -> dict[str, np.ndarray]:
    """Per-human arrays ``(N, ...)`` -> the env layout (vectors flattened; images ``(H, W,
    ...)`` for one human, ``(N, H, W, ...)`` for several)."""
    out = {}
    for k, v in obs.items():
        if k in camera_uuids:
            out[k] = v[0] if n == 1 else v
        else:
            out[k] = v.reshape(-1)
    return out


def render_world(sim, e: int) -> np.ndarray:
    """``(size, 2 * size, 3)`` uint8: top-down map beside the ego view (see
    :mod:`egosim.envs.topdown`).

    The map (``render.pixels_per_m``) is centred on the humans: each human's route, current
    target, goal and latest markers, and the first human's ego-sensing rays.
    """
    from egosim.envs.ego_sensing import fan_directions, gaze_forward
    from egosim.envs.topdown import cached_map, ray_strip, side_by_side

    cfg = sim.cfg
    w = sim.worlds[e]
    if w.scene is None:
        raise gym.error.ResetNeeded("call reset() before render()")
    hs = sim.humans(e)
    m = sim.markers[hs, 1]
    center = sim.pelvis(m)[:, :2].mean(0)
    eyes = sim.eyes[hs[0]]
    mid = eyes.mean(0)
    fwd = gaze_forward(eyes[None, 0], eyes[None, 1])
    dirs = fan_directions(fwd, cfg.sensing.num_rays, cfg.sensing.fov_deg)[0]
    dist = sim.ego_dist[hs[0]]
    tmap = cached_map(w.scene, cfg.render.pixels_per_m)
    img = tmap.frame()
    for i, r in enumerate(w.routes):
        tmap.route(r.points, i, img)
    tmap.rays(np.repeat(mid[None], len(dirs), 0), mid[None] + dirs * dist[:, None], img)
    for i, r in enumerate(w.routes):
        tmap.target(r.target(), img)
        tmap.goal(r.goal, i, img)
    for i, mk in enumerate(m):
        tmap.human_markers(mk, i, img)
    left = tmap.crop(img, center, cfg.render.size)
    rgb = [s for s in sim.camera_specs if s.modality == "rgb"]
    if rgb:
        right = sim.camera_images(e)[rgb[0].uuid][0]
    else:
        right = ray_strip(dist, cfg.sensing.max_range, cfg.render.size)
    return side_by_side(left, right)


class EgoEnvBase(gym.Env):
    """A Gymnasium env over one world of ``N`` humans (see :class:`EgoLocomotionEnv`)."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def _setup(self, cfg, num_humans: int, min_separation: float,
               render_mode: str | None) -> None:
        from egosim.envs.simulation import Simulation

        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None; got "
                             f"{render_mode!r}")
        self.cfg = cfg
        self.render_mode = render_mode
        self.num_humans = num_humans
        self.sim = Simulation(cfg, 1, num_humans, min_separation)
        self.camera_uuids = [s.uuid for s in self.sim.camera_specs]
        self.observation_space = observation_space(num_humans, cfg.sensing.num_rays,
                                                   self.sim.camera_specs)
        self.action_space = action_space(num_humans, self.sim.latent_dim)
        self._running = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.sim.reset_worlds([0], [self.np_random])
        self._running = True
        w = self.sim.worlds[0]
        info = {"scene_seed": -1 if w.scene_seed is None else int(w.scene_seed),
                "route_length_m": float(np.mean([r.length for r in w.routes]))}
        return self._obs(), info

    def _obs(self) -> dict[str, np.ndarray]:
        return flatten_obs(self.sim.observe(0), self.camera_uuids, self.num_humans)

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool,
                                         dict[str, Any]]:
        if not self._running:
            raise gym.error.ResetNeeded("call reset() before step() (also after an episode "
                                        "ended)")
        a = check_action(action, self.action_space)
        r, term, trunc, infos = self.sim.step([0], a.reshape(1, self.num_humans, -1))
        terminated, truncated = bool(term[0]), bool(trunc[0])
        self._running = not (terminated or truncated)
        return self._obs(), float(r[0]), terminated, truncated, infos[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; use render_mode="
                            "'rgb_array'")
            return None
        return render_world(self.sim, 0)
