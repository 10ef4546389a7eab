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

from egosim.envs.motion.primitive_windows import MOTION_FPS, STEP_SECONDS
from egosim.envs.observation import OBS_KEYS
from egosim.envs.simulation import GOAL_DIM, MARKER_CLIP, MARKER_DIM

__all__ = ["resolve_config", "observation_space", "camera_space", "action_space",
           "check_action", "check_max_steps", "flatten_obs", "render_world", "time_limit_of",
           "EgoEnvBase", "RENDER_MODES", "RENDER_FPS"]

#: ``rgb_array``: one image of the latest state; ``rgb_array_list``: every 40-fps frame.
RENDER_MODES = ["rgb_array", "rgb_array_list"]
#: Rendered frames per second of ``rgb_array``: one frame per env step (one primitive);
#: ``rgb_array_list`` renders at :data:`MOTION_FPS` (40).
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


def camera_space(spec, n: int = 1) -> spaces.Box:
    """Observation space of one head camera ``spec`` (``egosim.sensors.CameraSpec``) for
    ``n`` humans (leading ``(n,)`` axis when ``n > 1``): rgb ``Box(0, 255, (H, W, 3),
    uint8)``; depth ``Box(0, far, (H, W, 1), float32)`` (metres; the channel axis makes
    it an image for CNN feature extractors); semantic ``Box(-1, NUM_CLASSES - 1, (H, W),
    int32)``; instance ``Box(-1, 2**31 - 1, (H, W), int32)``; normal ``Box(-1, 1, (H, W,
    3), float32)`` (unit normals, camera frame)."""
    h, w = spec.resolution
    lead = () if n == 1 else (n,)
    if spec.modality == "rgb":
        return spaces.Box(0, 255, lead + (h, w, 3), np.uint8)
    if spec.modality == "depth":
        return spaces.Box(0.0, float(spec.far), lead + (h, w, 1), np.float32)
    if spec.modality == "normal":
        return spaces.Box(-1.0, 1.0, lead + (h, w, 3), np.float32)
    if spec.modality == "instance":
        return spaces.Box(-1, np.iinfo(np.int32).max, lead + (h, w), np.int32)
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
        d[s.uuid] = camera_space(s, n)
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
    outside = np.abs(wide) > 1.0 + 1e-6
    if outside.any():
        idx = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"action values must lie in [-1, 1] (z = action.scale * action); "
                         f"got {float(wide[idx])!r} at index {idx[0] if len(idx) == 1 else idx}"
                         f" ({int(outside.sum())} of {wide.size} values outside; min "
                         f"{float(wide.min())!r}, max {float(wide.max())!r}; actions are never "
                         "clipped)")
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


def render_world(sim, e: int, frame=None, rng: np.random.Generator | None = None
                 ) -> np.ndarray:
    """``(size, 2 * size, 3)`` uint8: top-down map beside the ego view (see
    :mod:`egosim.envs.topdown`).

    The map (``render.pixels_per_m``) is centred on the humans: each human's route, current
    target, goal and markers, and the first human's ego-sensing rays; the ego view is the
    first human's first rgb head camera, or a strip of its ray distances without one.

    Args:
        sim: the :class:`~egosim.envs.simulation.Simulation`.
        e: the world.
        frame: a one-frame :class:`~egosim.envs.simulation.FrameRollout` of world ``e``'s
            humans (one of the 40-fps frames of the last step) to draw instead of the
            latest state; its rays and camera view are computed for that frame.
        rng: generator of the camera noise of a ``frame``'s view (default: a fixed seed;
            never the world's, so rendering does not change the episode).
    """
    from egosim.envs.ego_sensing import HEAD_ABOVE_EYES, ego_sensing, fan_directions, gaze_forward
    from egosim.envs.topdown import cached_map, ray_strip, side_by_side

    cfg = sim.cfg
    w = sim.worlds[e]
    if w.scene is None:
        raise gym.error.ResetNeeded("call reset() before render()")
    hs = sim.humans(e)
    if frame is None:
        m, eyes_all = sim.markers[hs, 1], sim.eyes[hs]
        dist = sim.ego_dist[hs[0]]
    else:
        m, eyes_all = frame.markers[:, 0], frame.eyes[:, 0]
    center = sim.pelvis(m)[:, :2].mean(0)
    eyes = eyes_all[0]
    mid = eyes.mean(0)
    fwd = gaze_forward(eyes[None, 0], eyes[None, 1])
    s = cfg.sensing
    if frame is not None:
        others = None
        if s.see_humans and sim.N > 1:
            pel = sim.pelvis(m)[1:, :2]
            others = [(pel, eyes_all[1:, :, 2].mean(1) + HEAD_ABOVE_EYES)]
        _, d = ego_sensing(w.scene.raycaster, mid[None], fwd, s.num_rays, s.fov_deg,
                           s.max_range, others, s.human_radius)
        dist = d[0]
    dirs = fan_directions(fwd, s.num_rays, s.fov_deg)[0]
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
    rgb = [c for c in sim.camera_specs if c.modality == "rgb"]
    if rgb:
        if frame is None and sim._last_images[e] is not None:
            views = sim._last_images[e]
        else:
            g = np.random.default_rng(0) if rng is None else rng
            views = sim.camera_images(e, frame=frame, rng=g)
        right = views[rgb[0].uuid][0]
    else:
        right = ray_strip(dist, s.max_range, cfg.render.size)
    return side_by_side(left, right)


def time_limit_of(env: gym.Env) -> int | None:
    """The smallest ``max_episode_steps`` of the Gymnasium ``TimeLimit`` wrappers that are
    resetting ``env`` right now (found on the call stack of its ``reset``), or None.

    This is how an env sees a ``TimeLimit`` put around it, by ``gymnasium.make(...,
    max_episode_steps=k)`` or by hand (``TimeLimit(env, k)``): wrappers call their inner
    env's ``reset``, and the inner env knows no other way to learn of them.
    """
    import sys

    from gymnasium.wrappers import TimeLimit

    found: list[int] = []
    f = sys._getframe(1)
    for _ in range(64):
        if f is None:
            break
        obj = f.f_locals.get("self")
        if isinstance(obj, TimeLimit) and obj.unwrapped is env:
            found.append(int(obj._max_episode_steps))
        f = f.f_back
    return min(found) if found else None


class EgoEnvBase(gym.Env):
    """A Gymnasium env over one world of ``N`` humans (see :class:`EgoLocomotionEnv`).

    Step limit: :attr:`max_steps`, the config's ``episode.max_steps`` unless a Gymnasium
    ``TimeLimit`` wraps the env (``gymnasium.make(..., max_episode_steps=k)`` or
    ``TimeLimit(env, k)``): then ``k``, read at every ``reset``. The env truncates at it and
    ``time_left`` counts down to it; ``spec.max_episode_steps`` reports it.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": RENDER_FPS}

    def _setup(self, cfg, num_humans: int, min_separation: float,
               render_mode: str | None, max_episode_steps: int | None = None) -> None:
        from egosim.envs.simulation import Simulation

        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be one of {RENDER_MODES} or None; got "
                             f"{render_mode!r}")
        self.cfg = cfg
        self.render_mode = render_mode
        if render_mode == "rgb_array_list":  # one image per 40-fps frame
            self.metadata = {**type(self).metadata, "render_fps": MOTION_FPS}
        self.num_humans = num_humans
        self.sim = Simulation(cfg, 1, num_humans, min_separation)
        self._own_limit = check_max_steps(max_episode_steps, cfg.episode.max_steps)
        self.sim.max_steps = self._own_limit
        self.camera_uuids = [s.uuid for s in self.sim.camera_specs]
        self.observation_space = observation_space(num_humans, cfg.sensing.num_rays,
                                                   self.sim.camera_specs)
        self.action_space = action_space(num_humans, self.sim.latent_dim)
        self._running = False
        self._frames: list[np.ndarray] = []
        self._render_rng = np.random.default_rng(0)

    # -- step limit and spec ------------------------------------------------------------
    @property
    def max_steps(self) -> int:
        """The step limit of the current episode (see the class docstring)."""
        return int(self.sim.max_steps)

    @property
    def spec(self):
        """The ``EnvSpec`` ``gymnasium.make`` gave the env, with ``max_episode_steps``
        set to :attr:`max_steps` (None when the env was built directly)."""
        spec = self.__dict__.get("_spec")
        if spec is None:
            return None
        from dataclasses import replace

        return replace(spec, max_episode_steps=self.max_steps)

    @spec.setter
    def spec(self, value) -> None:
        self.__dict__["_spec"] = value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        limit = time_limit_of(self)
        self.sim.max_steps = self._own_limit if limit is None else limit
        self.sim.reset_worlds([0], [self.np_random])
        self._running = True
        w = self.sim.worlds[0]
        info = {"scene_seed": -1 if w.scene_seed is None else int(w.scene_seed),
                "route_length_m": float(np.mean([r.length for r in w.routes])),
                "max_steps": self.max_steps}
        obs = self._obs()
        info.update(self._camera_info())
        if self.render_mode == "rgb_array_list":
            self._frames = [render_world(self.sim, 0)]
        return obs, info

    def _obs(self) -> dict[str, np.ndarray]:
        return flatten_obs(self.sim.observe(0), self.camera_uuids, self.num_humans)

    def _camera_info(self) -> dict[str, Any]:
        """``camera_pose`` ``{uuid: (4, 4)}`` (``(N, 4, 4)`` for several humans) and
        ``camera_intrinsics`` ``{uuid: (3, 3)}`` of the latest images (none without
        cameras)."""
        info = self.sim.camera_info[0]
        if not info:
            return {}
        pose = {k: v[0] if self.num_humans == 1 else v for k, v in info["camera_pose"].items()}
        return {"camera_pose": pose, "camera_intrinsics": dict(info["camera_intrinsics"])}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool,
                                         dict[str, Any]]:
        if not self._running:
            raise gym.error.ResetNeeded("call reset() before step() (also after an episode "
                                        "ended)")
        a = check_action(action, self.action_space)
        r, term, trunc, infos = self.sim.step([0], a.reshape(1, self.num_humans, -1))
        terminated, truncated = bool(term[0]), bool(trunc[0])
        self._running = not (terminated or truncated)
        obs = self._obs()
        info = infos[0]
        info.update(self._camera_info())
        if self.render_mode == "rgb_array_list":
            fr = self.sim.last_rollout.world(0)
            for k in range(fr.num_frames):
                self._frames.append(render_world(self.sim, 0, fr.select_frames([k]),
                                                 self._render_rng))
        return obs, float(r[0]), terminated, truncated, info

    def render(self) -> np.ndarray | list[np.ndarray] | None:
        """``rgb_array``: the latest state's ``(size, 2 size, 3)`` uint8 image;
        ``rgb_array_list``: every 40-fps frame since the last ``render()`` or ``reset()``
        (18 per step, the reset's one first), then the list starts over."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; use render_mode="
                            "'rgb_array' or 'rgb_array_list'")
            return None
        if self.render_mode == "rgb_array_list":
            frames, self._frames = self._frames, []
            return frames
        return render_world(self.sim, 0)


def check_max_steps(value: int | None, default: int) -> int:
    """``value`` (a step limit given as ``max_episode_steps``) or ``default`` when None.

    Raises:
        ValueError: not a positive int (names ``max_episode_steps``).
    """
    if value is None:
        return int(default)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"max_episode_steps must be a positive int or None; got {value!r}")
    return int(value)
