"""Humans driven by the PPO policy walk to their goals: the demo's ``crowd.mp4``.

``N`` humans (:class:`egosim.envs.crowd.EgoCrowdEnv`) start in one scene, each with its own
goal; every primitive (0.45 s, 18 frames at 40 fps) the policy (the shipped
``agents/checkpoints/ppo_locomotion.zip`` unless told otherwise, mean action) picks each
human's latent action from that human's own observation, and the motion prior decodes the
next 18 frames. The frames are sampled at the video rate (nearest 40 fps frame), the
regressed SMPL-X bodies of those frames are skinned (all 10475 vertices, world frame, m),
and each human's head camera renders an RGB view in which the other humans are posed
meshes: a coarse proxy of each skinned body (:class:`BodyProxy`), which a small view cannot
tell from the full mesh and whose per-frame BVH is cheap. Its own hands and feet are
visible to the wearer, the rest of its body is hidden.

Each video frame, left to right (all panels ``size`` pixels high):

=============  ============================================================================
panel          content
=============  ============================================================================
ego ``i``      human ``i``'s head camera (90 deg hfov, horizontal gaze from the eyes, as
               the envs' cameras), framed in the human's colour; "at goal" once it arrived
map            top-down map of the scene (north, +y, up): each human's planned route
               (pale), goal (ringed dot), walked pelvis trail and body footprint (its
               colour) and gaze ray (yellow, 1.5 m along the head camera's axis)
=============  ============================================================================

A finished human (goal reached, or stopped by the env) stands still at its last pose, as
in the env. The run ends when every human has stopped or the env truncates the episode
(then the last frame is held for a second), or when ``max_seconds`` of video are written.

The env keeps the prior's per-frame output to itself; :class:`_RecordingPrior` wraps this
env's prior (not the shared cached one) to keep the latest
:class:`~egosim.envs.motion.prior.Rollout`, so the env's own code path runs unchanged.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw
from skimage.draw import disk, line
from tqdm import tqdm

from egosim.apps.visualize import topdown_map

__all__ = ["render_crowd_video", "BodyProxy", "HUMAN_COLORS"]

_MOTION_FPS = 40.0
_FRAMES_PER_STEP = 18
_EYES = [23, 24]
_GAZE_LEN_M = 1.5
_BORDER = 3
_HOLD_SECONDS = 1.0
HUMAN_COLORS = np.array([[230, 60, 50], [50, 110, 240], [40, 170, 80], [235, 140, 20],
                         [160, 70, 210], [20, 170, 170], [240, 90, 170], [120, 80, 40]],
                        np.uint8)
"""``(8, 3)`` uint8 colour of human ``i`` (``i % 8``) in the ego-view frames and the map."""


class _RecordingPrior:
    """Delegates to a ``MotionPrior`` and keeps the :class:`Rollout` of its latest
    ``reset`` / ``step`` call in :attr:`last`."""

    def __init__(self, prior: Any) -> None:
        self._prior = prior
        self.last: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._prior, name)

    def reset(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        state, out = self._prior.reset(*args, **kwargs)
        self.last = out
        return state, out

    def step(self, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        state, out = self._prior.step(*args, **kwargs)
        self.last = out
        return state, out


class BodyProxy:
    """A coarse render mesh of the SMPL-X topology by vertex clustering.

    The full body (10475 vertices, 20946 faces) is more than a small ego view resolves,
    and each frame's dynamic meshes get a new BVH, so the humans are drawn with a proxy:
    the template's vertices (procedural neutral body, rest pose, m) are grouped by body
    part and by a ``cell``-metre grid; a proxy vertex is the mean of its group's posed
    vertices, and the faces whose corners fall in three different groups are kept once.
    Groups never span two body parts, so the proxy follows the skinning of each limb.

    Args:
        faces: ``(F, 3)`` SMPL-X faces of the bodies to draw (the motion prior's).
        cell: grid size (m); 0.04 gives about 1450 vertices and 2950 faces, which a
            160-pixel view cannot tell from the full mesh.

    Attributes:
        faces: ``(F', 3)`` int64 proxy faces (indices of proxy vertices).
        self_visible: ``(F',)`` bool, faces on the hands and feet (seen by their wearer).
    """

    def __init__(self, faces: np.ndarray, cell: float = 0.04) -> None:
        import scipy.sparse as sp

        from egosim.envs.humans import (
            BODY_PART_NAMES,
            body_part_labels,
            procedural_model_path,
        )

        with np.load(procedural_model_path("neutral")) as data:
            template = np.asarray(data["v_template"], np.float64)
        faces = np.asarray(faces, np.int64)
        if faces.max() >= len(template):
            raise ValueError(f"faces index {faces.max() + 1} vertices; the SMPL-X template "
                             f"has {len(template)}")
        labels = body_part_labels()
        key = np.column_stack([labels, np.floor(template / cell).astype(np.int64)])
        _, group = np.unique(key, axis=0, return_inverse=True)
        group = group.reshape(-1)
        count = int(group.max()) + 1
        self.num_vertices_full = len(template)
        weights = 1.0 / np.bincount(group, minlength=count)[group]
        self._avg = sp.csr_matrix((weights, (group, np.arange(len(template)))),
                                  shape=(count, len(template)))
        f = group[faces]
        keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
        f = f[keep]
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        self.faces = f[np.sort(first)]
        ends = [i for i, p in enumerate(BODY_PART_NAMES) if p.endswith(("hand", "foot"))]
        part = np.zeros(count, np.int64)
        part[group] = labels
        self.self_visible = np.isin(part, ends)[self.faces].all(axis=1)

    def vertices(self, full: np.ndarray) -> np.ndarray:
        """Proxy vertices ``(..., V', 3)`` of posed full-body vertices ``(..., 10475, 3)``."""
        lead = full.shape[:-2]
        flat = np.moveaxis(full.reshape((-1,) + full.shape[-2:]), 0, 1).reshape(
            full.shape[-2], -1)
        out = self._avg @ flat.astype(np.float64)
        return np.moveaxis(out.reshape(out.shape[0], -1, 3), 1, 0).reshape(
            lead + (out.shape[0], 3))

    def face_colors(self, vertex_colors: np.ndarray) -> np.ndarray:
        """``(F', 3)`` face colours from per-vertex colours ``(10475, 3)`` in [0, 1]."""
        return np.clip((self._avg @ vertex_colors)[self.faces].mean(axis=1), 0.0, 1.0)


def _frames_of(out: Any, idx: np.ndarray) -> Any:
    """The rollout ``out`` restricted to its frames ``idx`` (every per-frame field)."""
    import torch

    t = torch.as_tensor(idx, dtype=torch.long)
    return dataclasses.replace(out, **{k: getattr(out, k)[:, t] for k in (
        "markers", "global_orient", "body_pose", "transl", "joints", "decoded")})


class _MapPanel:
    """Top-down map panel ``(size, W, 3)`` with persistent trails (see the module table).

    Args:
        scene: the env's :class:`egosim.envs.scenes.Scene`.
        size: panel height in pixels; the width follows the scene's aspect ratio (even).
        routes: ``(K_i, 3)`` planned route per human (world, m).
        goals: ``(N, 3)`` goals (world, m).
    """

    def __init__(self, scene: Any, size: int, routes: list[np.ndarray],
                 goals: np.ndarray) -> None:
        lo, hi = np.asarray(scene.bounds, dtype=np.float64)
        self.lo, self.hi = lo, hi
        extent = hi[:2] - lo[:2]
        self.h = int(size)
        self.w = max(2, int(round(size * extent[0] / extent[1])) // 2 * 2)
        ppm = max(4, int(np.ceil(2.0 * size / extent[1])))  # 2x supersampled, then shrunk
        full = topdown_map(scene, ppm)
        base = np.asarray(Image.fromarray(full).resize((self.w, self.h), Image.BOX))
        self.image = base.copy()
        rad = max(2.0, size / 45.0)
        for i, route in enumerate(routes):
            col = HUMAN_COLORS[i % len(HUMAN_COLORS)].astype(np.float64)
            self.polyline(route, (0.45 * col + 0.55 * 255).astype(np.uint8))
        for i, goal in enumerate(goals):
            r, c = self.px(goal[None])
            self.image[disk((r[0], c[0]), rad + 1.5, shape=self.image.shape[:2])] = 0
            self.image[disk((r[0], c[0]), rad, shape=self.image.shape[:2])] = \
                HUMAN_COLORS[i % len(HUMAN_COLORS)]

    def px(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of world points ``p (..., 2|3)`` (m), clipped to the panel."""
        r = (self.hi[1] - p[..., 1]) / (self.hi[1] - self.lo[1]) * self.h
        c = (p[..., 0] - self.lo[0]) / (self.hi[0] - self.lo[0]) * self.w
        return (np.clip(r.astype(int), 0, self.h - 1), np.clip(c.astype(int), 0, self.w - 1))

    def polyline(self, points: np.ndarray, color: Any, image: np.ndarray | None = None
                 ) -> None:
        """Draw ``points (K, 2|3)`` (world, m) as connected segments into ``image``
        (default: the persistent panel)."""
        img = self.image if image is None else image
        r, c = self.px(np.asarray(points, np.float64))
        for k in range(len(r) - 1):
            rr, cc = line(int(r[k]), int(c[k]), int(r[k + 1]), int(c[k + 1]))
            img[rr, cc] = color

    def frame(self, bodies: np.ndarray, eye_mid: np.ndarray, gaze: np.ndarray) -> np.ndarray:
        """A copy of the panel with footprints ``bodies (N, V, 3)`` and gaze rays from
        ``eye_mid (N, 3)`` along unit ``gaze (N, 3)`` (world, m)."""
        img = self.image.copy()
        for i in range(len(bodies)):
            r, c = self.px(bodies[i, ::5])
            img[r, c] = HUMAN_COLORS[i % len(HUMAN_COLORS)]
            self.polyline(np.stack([eye_mid[i], eye_mid[i] + _GAZE_LEN_M * gaze[i]]),
                          (255, 230, 0), img)
        return img


def _ego_panel(rgb: np.ndarray, index: int, at_goal: bool) -> np.ndarray:
    """Frame an ego view in its human's colour and label it (``1``-based)."""
    img = rgb.copy()
    col = HUMAN_COLORS[index % len(HUMAN_COLORS)]
    b = _BORDER
    img[:b], img[-b:], img[:, :b], img[:, -b:] = col, col, col, col
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    label = f"{index + 1}" + (" at goal" if at_goal else "")
    x0, y0 = b + 2, b + 2
    box = draw.textbbox((x0, y0), label)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1),
                   fill=tuple(int(v) for v in col))
    draw.text((x0, y0), label, fill=(255, 255, 255))
    return np.asarray(pil)


def render_crowd_video(out_path: str | Path, *, scene_spec: str = "procedural:apartment",
                       scene_seed: int | None = 0, scene_options: dict[str, Any] | None = None,
                       num_humans: int = 3, seed: int = 0,
                       size: int = 160, fps: float = 20.0, max_seconds: float = 20.0,
                       policy: str | Path | None = None, deterministic: bool = True,
                       progress: bool = True) -> dict[str, Any]:
    """Roll the PPO policy out in a crowd and write the MP4 (see the module docstring).

    Args:
        out_path: the ``.mp4`` file to write (folders are created).
        scene_spec: ``egosim.envs.scenes.load`` spec of the scene.
        scene_seed: seed of a procedural scene (None: drawn from the episode seed).
        scene_options: extra ``scenes.load`` options (the env's ``scene.options``).
        num_humans: humans in the scene (>= 2).
        seed: episode seed (starts, goals, seed motions) and body appearance.
        size: pixels of each square ego view; the map panel has the same height (an odd
            frame side gets one black row/column, as H.264 needs even sides).
        fps: video and sensor rate (Hz), at most 40; the motion is sampled from 40 fps.
        max_seconds: the video is cut after this long.
        policy: a stable-baselines3 PPO ``.zip`` of the single-human env; None: the shipped.
        deterministic: use the policy's mean action.
        progress: show a tqdm progress bar (frames).

    Returns:
        ``video`` (path), ``frames``, ``seconds``, ``steps`` (primitives), ``paths (N, T,
        3)`` pelvis per video frame (world, m), ``eyes (N, T, 2, 3)``, ``goals (N, 3)``,
        ``routes`` (``(K_i, 3)`` each), ``successes (N,)`` bool, ``walked_m (N,)`` pelvis
        path length on the floor, ``frame_shape`` ``(H, W, 3)``.

    Raises:
        ValueError: bad ``num_humans``/``size``/``fps``/``max_seconds``, or a policy whose
            observation does not match the env's.
        FileNotFoundError: no such policy file.
    """
    import torch

    if not isinstance(num_humans, int) or num_humans < 2:
        raise ValueError(f"num_humans must be an int >= 2 (crowd_humans); got {num_humans!r}")
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels (crowd_size); got {size}")
    if not 0.0 < fps <= _MOTION_FPS:
        raise ValueError(f"fps must be in (0, {_MOTION_FPS:g}] (crowd_fps); got {fps}")
    if max_seconds <= 0.0:
        raise ValueError(f"max_seconds must be > 0 (crowd_max_seconds); got {max_seconds}")

    threads = torch.get_num_threads()
    # A few humans per step: one torch thread is as fast, and leaves the cores to the
    # renderer's threads (idle torch workers spinning between calls slow both down).
    torch.set_num_threads(1)
    try:
        return _run(out_path, scene_spec, scene_seed, dict(scene_options or {}), num_humans,
                    seed, size, fps, max_seconds, policy, deterministic, progress)
    finally:
        torch.set_num_threads(threads)


def _run(out_path: str | Path, scene_spec: str, scene_seed: int | None,
         scene_options: dict[str, Any], num_humans: int, seed: int, size: int, fps: float,
         max_seconds: float, policy: str | Path | None, deterministic: bool, progress: bool
         ) -> dict[str, Any]:
    """:func:`render_crowd_video` after its checks (same arguments)."""
    import torch

    from egosim.agents.evaluate import load_policy, policy_controller
    from egosim.envs.crowd import EgoCrowdEnv
    from egosim.envs.humans import sample_appearance
    from egosim.envs.scenes import class_id
    from egosim.sensors import CameraSpec, DynamicMesh, Lighting, Renderer, head_frame

    model = load_policy(policy)
    env = EgoCrowdEnv(overrides={"crowd.num_humans": num_humans, "scene.spec": scene_spec,
                                 "scene.seed": scene_seed, "scene.options": scene_options})
    n = num_humans
    want = model.observation_space["markers"].shape[0]
    have = env.observation_space["markers"].shape[0]
    if want * n != have:
        raise ValueError(f"policy observation markers ({want},) do not match the env's "
                         f"({have},) for {n} humans (crowd_policy)")
    act = policy_controller(model, n, deterministic)
    sim = env.sim
    recorder = _RecordingPrior(sim.prior)
    sim.prior = recorder
    obs, _info = env.reset(seed=seed)
    world = sim.worlds[0]
    scene = world.scene

    proxy = BodyProxy(recorder.body.faces)
    rng = np.random.default_rng(seed)
    albedo = [proxy.face_colors(sample_appearance(rng).vertex_colors) for _ in range(n)]
    person = class_id("person")
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(size, size), hfov_deg=90.0,
                      near=0.05, far=20.0)
    renderer = Renderer(scene, lighting=Lighting(), seed=seed)
    routes = [r.points.copy() for r in world.routes]
    goals = np.stack([r.goal for r in world.routes])
    panel = _MapPanel(scene, size, routes, goals)

    max_frames = max(1, int(round(max_seconds * fps)))
    motion_index = np.round(np.arange(max_frames) * _MOTION_FPS / fps).astype(int)
    verts_now = eyes_now = None
    pelvis_last: np.ndarray | None = None
    paths: list[np.ndarray] = []
    eyes_all: list[np.ndarray] = []
    at_goal = np.zeros(n, bool)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio.get_writer(out_path, fps=fps, macro_block_size=1)
    bar = tqdm(total=max_frames, desc="crowd video", unit="frame", disable=not progress)
    written, steps, frame_shape = 0, 0, None
    last: dict[str, np.ndarray] = {}

    def emit(rollout: Any, frames: np.ndarray, moving: np.ndarray) -> None:
        """Render video frames from ``rollout``'s frames ``frames``; humans not
        ``moving`` keep their last pose."""
        nonlocal verts_now, eyes_now, pelvis_last
        sub = _frames_of(rollout, frames)
        verts = proxy.vertices(recorder.vertices(sub).numpy())  # (N, F, V', 3)
        joints = sub.joints.numpy().astype(np.float64)
        for k in range(len(frames)):
            if verts_now is None:
                verts_now, eyes_now = verts[:, k].copy(), joints[:, k, _EYES].copy()
                pelvis_last = joints[:, k, 0].copy()
            else:
                verts_now[moving] = verts[moving, k]
                eyes_now[moving] = joints[moving, k][:, _EYES]
            pelvis = np.where(moving[:, None], joints[:, k, 0], pelvis_last)
            for i in range(n):
                panel.polyline(np.stack([pelvis_last[i], pelvis[i]]),
                               HUMAN_COLORS[i % len(HUMAN_COLORS)])
            pelvis_last = pelvis
            renderer.set_dynamic_meshes([DynamicMesh(verts_now[i][proxy.faces], person,
                                                     1000 + i, albedo[i], proxy.self_visible)
                                         for i in range(n)])
            heads = head_frame(eyes_now)
            last["views"] = renderer.render(spec, heads, wearer=np.arange(n))["rgb"]
            last["map"] = panel.frame(verts_now, heads[:, :3, 3], heads[:, :3, 2])
            write()

    def write() -> None:
        """Append the latest views and map (labels as of now) as one video frame."""
        nonlocal written, frame_shape
        views = last["views"]
        frame = np.concatenate([_ego_panel(views[i], i, at_goal[i]) for i in range(n)]
                               + [last["map"]], axis=1)
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # the H.264 encoder wants even sides: pad a black row/column
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
        writer.append_data(frame)
        frame_shape = frame.shape
        paths.append(pelvis_last.copy())
        eyes_all.append(eyes_now.copy())
        written += 1
        bar.update(1)

    try:
        with torch.no_grad():
            first = recorder.last
            emit(first, np.array([first.transl.shape[1] - 1]), np.ones(n, bool))
            done = False
            while written < max_frames and not done:
                moving = world.active.copy()
                action = act({k: v[None] for k, v in obs.items()})[0]
                obs, _r, terminated, truncated, info = env.step(action)
                steps += 1
                done = terminated or truncated
                lo = (steps - 1) * _FRAMES_PER_STEP
                hi = steps * _FRAMES_PER_STEP
                want_idx = motion_index[written:]
                want_idx = want_idx[(want_idx > lo) & (want_idx <= hi)]
                if len(want_idx):
                    emit(recorder.last, want_idx - lo - 1, moving)
                at_goal = np.asarray(info["successes"], bool)
            if done:  # hold the final state a moment, with its labels up to date
                for _ in range(min(max_frames - written, int(round(_HOLD_SECONDS * fps)))):
                    write()
    finally:
        bar.close()
        writer.close()
        renderer.close()
        env.close()
    path_arr = np.stack(paths, axis=1)  # (N, T, 3)
    walked = np.linalg.norm(np.diff(path_arr[..., :2], axis=1), axis=-1).sum(axis=1)
    return {"video": out_path, "frames": written, "seconds": written / fps, "steps": steps,
            "paths": path_arr, "eyes": np.stack(eyes_all, axis=1), "goals": goals,
            "routes": routes, "successes": at_goal.copy(), "walked_m": walked,
            "frame_shape": frame_shape}
