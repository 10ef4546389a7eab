"""Humans driven by the PPO policy walk to their goals: the demo's ``crowd.mp4``.

``N`` humans (:class:`egosim.envs.crowd.EgoCrowdEnv`) start in one scene, each with its own
goal; every primitive (0.45 s, 18 frames at 40 fps) the policy (the shipped
``agents/checkpoints/ppo_locomotion.zip`` unless told otherwise, mean action) picks each
human's latent action from that human's own observation, and the motion prior decodes the
next 18 frames. The frames come from the simulation's per-frame seam
(:attr:`egosim.envs.simulation.Simulation.last_rollout`, what the env simulated) and are
sampled at the video rate (nearest 40 fps frame); the regressed SMPL-X bodies of those frames
are skinned (all 10475 vertices, world frame, m), and each human's head camera
(:class:`egosim.sensors.HeadRecorder`) renders an RGB view in which the other humans are
posed meshes: a coarse proxy of each skinned body
(:class:`egosim.envs.humans.body_proxy.BodyProxy`), which a small view cannot tell from the
full mesh and whose per-frame BVH is cheap. Its own hands and feet are visible to the
wearer, the rest of its body is hidden.

Each video frame, left to right (all panels ``size`` pixels high):

=============  ============================================================================
panel          content
=============  ============================================================================
ego ``i``      human ``i``'s head camera (90 deg hfov, horizontal gaze from the eyes, as
               the envs' cameras), framed in the human's colour; "at goal" once it arrived
map            top-down map of the scene (:class:`egosim.envs.topdown.TopdownMap`, north,
               +y, up): each human's planned route (pale), goal (ringed dot), walked pelvis
               trail and body footprint (its colour) and gaze ray (yellow, 1.5 m along the
               head camera's axis)
=============  ============================================================================

A finished human (goal reached, or stopped by the env) stands still at its last pose, as
in the env. The run ends when every human has stopped or the env truncates the episode
(then the last frame is held for a second), or when ``max_seconds`` of video are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from egosim.atomic_io import atomic_path
from egosim.envs.motion.primitive_windows import MOTION_FPS
from egosim.envs.topdown import human_color

__all__ = ["render_crowd_video"]

_GAZE_LEN_M = 1.5
_BORDER = 3
_HOLD_SECONDS = 1.0


def _ego_panel(rgb: np.ndarray, index: int, at_goal: bool) -> np.ndarray:
    """Frame an ego view in its human's colour and label it (``1``-based)."""
    img = rgb.copy()
    col = human_color(index)
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
    if not 0.0 < fps <= MOTION_FPS:
        raise ValueError(f"fps must be in (0, {MOTION_FPS:g}] (crowd_fps); got {fps}")
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
    from egosim.envs.humans.body_proxy import sample_face_colors
    from egosim.envs.scenes import class_id
    from egosim.envs.topdown import TopdownMap
    from egosim.sensors import CameraSpec, HeadRecorder, Lighting, Renderer

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
    obs, _info = env.reset(seed=seed)
    world = sim.worlds[0]
    scene = world.scene

    proxy = sim.body_proxy()
    albedo = sample_face_colors(proxy, n, np.random.default_rng(seed))
    person = class_id("person")
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(size, size), hfov_deg=90.0,
                      near=0.05, far=20.0)
    renderer = Renderer(scene, lighting=Lighting(), seed=seed)
    recorder = HeadRecorder(renderer, spec)
    routes = [r.points.copy() for r in world.routes]
    goals = np.stack([r.goal for r in world.routes])
    tmap = TopdownMap.fit(scene, size)
    for i, route in enumerate(routes):
        tmap.route(route, i)
    for i, goal in enumerate(goals):
        tmap.goal(goal, i)

    max_frames = max(1, int(round(max_seconds * fps)))
    motion_index = np.round(np.arange(max_frames) * MOTION_FPS / fps).astype(int)
    eyes_now: np.ndarray | None = None
    pelvis_last: np.ndarray | None = None
    paths: list[np.ndarray] = []
    eyes_all: list[np.ndarray] = []
    at_goal = np.zeros(n, bool)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp_path:  # the MP4 appears only when complete
        writer = imageio.get_writer(tmp_path, fps=fps, macro_block_size=1)
        bar = tqdm(total=max_frames, desc="crowd video", unit="frame", disable=not progress)
        written, steps, frame_shape = 0, 0, None
        last: dict[str, np.ndarray] = {}

        def emit(rollout: Any) -> None:
            """Render the video frames that fall in ``rollout`` (one world's
            :class:`~egosim.envs.simulation.FrameRollout`; a stopped human's rows already
            repeat its last pose)."""
            nonlocal eyes_now, pelvis_last
            numbers = rollout.frames[0]
            wanted = motion_index[written:]
            wanted = wanted[(wanted >= numbers[0]) & (wanted <= numbers[-1])]
            if not len(wanted):
                return
            sub = rollout.select_frames(wanted - numbers[0])
            verts = proxy.vertices(sim.vertices(sub))  # (N, F, V', 3)
            for k in range(len(wanted)):
                eyes_now = sub.eyes[:, k]
                pelvis = sub.joints[:, k, 0].astype(np.float64)
                if pelvis_last is None:
                    pelvis_last = pelvis
                for i in range(n):
                    tmap.trail(pelvis_last[i], pelvis[i], i)
                pelvis_last = pelvis
                heads, views = recorder.frame(eyes_now, meshes=proxy.meshes(verts[:, k], albedo,
                                                                            person),
                                              wearer=np.arange(n))
                last["views"] = views["rgb"]
                img = tmap.frame()
                for i in range(n):
                    tmap.footprint(verts[i, k], i, img)
                    tmap.gaze(heads[i, :3, 3], heads[i, :3, 2], _GAZE_LEN_M, img)
                last["map"] = img
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
                emit(sim.last_rollout.world(0).select_frames([-1]))  # the start pose: frame 0
                done = False
                while written < max_frames and not done:
                    action = act({k: v[None] for k, v in obs.items()})[0]
                    obs, _r, terminated, truncated, info = env.step(action)
                    steps += 1
                    done = terminated or truncated
                    emit(sim.last_rollout.world(0))
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
