"""The ``egosim demo`` and ``egosim scene`` jobs.

``run_demo`` builds a procedural apartment, places posed SMPL-X bodies of different shapes
in walkable spots, plans a path between two of them, and writes a top-down map and a
turntable image of one body; with ``video`` also ``walk.mp4`` (a scripted walk along that
path, :mod:`egosim.apps.walk_video`), ``clips.mp4`` (a few EgoM2P clips of two humans in
the same scene, :mod:`egosim.egom2p.preview`) and, with ``crowd_video``, ``crowd.mp4`` (humans
driven by the shipped PPO policy walking to their goals, :mod:`egosim.apps.crowd_video`).
``describe_scene`` prints a scene's statistics and writes its top-down map.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from tqdm import tqdm

from egosim.apps.config import DemoConfig, SceneConfig, SceneJobConfig
from egosim.apps.visualize import turntable
from egosim.atomic_io import atomic_path
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.topdown import topdown_map

__all__ = ["run_demo", "describe_scene", "load_scene", "standing_pose"]

_L_SHOULDER, _R_SHOULDER, _L_ELBOW, _R_ELBOW, _L_HIP, _R_HIP = 16, 17, 18, 19, 1, 2


def _scene_options(cfg: SceneConfig) -> dict[str, Any]:
    """``scenes.load`` options of a :class:`SceneConfig` (``up_axis`` only for files)."""
    from egosim.envs import scenes

    options: dict[str, Any] = {
        "grid_resolution": cfg.grid_resolution,
        "body_radius": cfg.body_radius,
        "body_height": cfg.body_height,
    }
    if cfg.spec not in scenes.SPECS:
        options["up_axis"] = cfg.up_axis
    return options


def load_scene(cfg: SceneConfig) -> Any:
    """Load the scene a :class:`SceneConfig` names (``up_axis`` only applies to files)."""
    from egosim.envs import scenes

    return scenes.load(cfg.spec, seed=cfg.seed, **_scene_options(cfg))


def standing_pose(rng: np.random.Generator) -> np.ndarray:
    """A relaxed standing pose with a random stride: ``(63,)`` SMPL-X body-pose axis-angles.

    Arms come down from the T-pose by rotating the shoulders about the body's forward
    (+z) axis; elbows bend a little; one hip flexes forward and the other back.
    """
    pose = np.zeros((21, 3))
    drop = rng.uniform(1.1, 1.35)
    pose[_L_SHOULDER - 1, 2] = -drop
    pose[_R_SHOULDER - 1, 2] = drop
    pose[_L_ELBOW - 1, 1] = rng.uniform(-0.5, -0.1)
    pose[_R_ELBOW - 1, 1] = rng.uniform(0.1, 0.5)
    stride = rng.uniform(0.1, 0.35)
    pose[_L_HIP - 1, 0] = -stride
    pose[_R_HIP - 1, 0] = stride
    return pose.reshape(-1)


def _save(path: Path, image: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, image)
    return path


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo job; returns a summary (paths written, body positions, timings)."""
    import torch

    from egosim.envs.humans import BodyModel, body_to_world, sample_appearance

    out_dir = Path(cfg.output_dir)
    rng = np.random.default_rng(cfg.body_seed)
    steps = tqdm(total=4 + cfg.num_bodies, desc="egosim demo", unit="step")

    t0 = time.perf_counter()
    scene = load_scene(cfg.scene)
    _ = scene.walkable
    t_scene = time.perf_counter() - t0
    steps.update(1)

    # Distinct walkable spots, at least 1 m apart where the scene allows it.
    spots: list[np.ndarray] = []
    for _attempt in range(200):
        if len(spots) == cfg.num_bodies:
            break
        p, _goal = scene.sample_start_goal(rng, min_dist=1.0, max_dist=50.0)
        if all(np.linalg.norm(p[:2] - q[:2]) >= 1.0 for q in spots):
            spots.append(p)
    while len(spots) < cfg.num_bodies:  # tiny scenes: accept closer spots
        spots.append(scene.sample_start_goal(rng, min_dist=0.0, max_dist=50.0)[0])
    steps.update(1)

    bodies: list[dict[str, Any]] = []
    models: dict[str, Any] = {}
    for i, spot in enumerate(spots):
        gender = GENDERS[i % len(GENDERS)]
        model = models.get(gender) or models.setdefault(gender, BodyModel(gender=gender))
        betas = np.clip(rng.normal(0.0, 1.0, model.num_betas), -2.0, 2.0)
        pose = standing_pose(rng)
        with torch.no_grad():
            output = model(betas=betas[None], body_pose=pose[None])
        verts = output.vertices[0].numpy()
        yaw = float(rng.uniform(-np.pi, np.pi))
        world = body_to_world(verts, yaw=yaw, position=spot, on_floor=True)
        appearance = sample_appearance(rng)
        bodies.append({"gender": gender, "betas": betas, "yaw": yaw, "position": spot,
                       "vertices": world, "rest": verts, "faces": model.faces,
                       "colors": appearance.vertex_colors,
                       "height_m": float(np.ptp(verts[:, 1]))})
        steps.update(1)

    start, goal = bodies[0]["position"], bodies[-1]["position"]
    try:
        path = scene.plan_path(start, goal)
    except ValueError:
        start, goal = scene.sample_start_goal(rng, min_dist=2.0, max_dist=50.0)
        path = scene.plan_path(start, goal)
    steps.update(1)

    topdown = topdown_map(scene, cfg.topdown_pixels_per_m,
                          bodies=[b["vertices"] for b in bodies], paths=[path],
                          markers=[start, goal])
    body0 = bodies[0]
    table = turntable(body0["rest"], body0["faces"], body0["colors"],
                      views=cfg.turntable_views, size=cfg.turntable_size)
    written = {
        "topdown": _save(out_dir / "topdown.png", topdown),
        "turntable": _save(out_dir / "turntable.png", table),
    }
    steps.update(1)
    steps.close()
    video = None
    if cfg.video:
        from egosim.apps.walk_video import render_walk_video

        video = render_walk_video(scene, path, out_dir / "walk.mp4", size=cfg.video_size,
                                  fps=cfg.video_fps, seed=cfg.body_seed,
                                  max_seconds=cfg.video_max_seconds)
        written["video"] = video["video"]
    clips = None
    if cfg.video:
        clips = _clips_preview(cfg, out_dir / "clips.mp4")
        written["clips_video"] = clips["video"]
    crowd = None
    if cfg.video and cfg.crowd_video:
        from egosim.apps.crowd_video import render_crowd_video

        crowd = render_crowd_video(out_dir / "crowd.mp4", scene_spec=cfg.scene.spec,
                                   scene_seed=cfg.scene.seed,
                                   scene_options=_scene_options(cfg.scene),
                                   num_humans=cfg.crowd_humans, seed=cfg.body_seed,
                                   size=cfg.crowd_size, fps=cfg.crowd_fps,
                                   max_seconds=cfg.crowd_max_seconds, policy=cfg.crowd_policy)
        written["crowd_video"] = crowd["video"]

    print(f"scene: {scene!r} (built in {t_scene:.2f} s)")
    for i, b in enumerate(bodies):
        x, y, z = b["position"]
        print(f"body {i}: {b['gender']:<7} height {b['height_m']:.2f} m at "
              f"({x:.2f}, {y:.2f}, {z:.2f}) m, yaw {np.degrees(b['yaw']):.0f} deg")
    length = float(np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1).sum())
    print(f"path: {len(path)} points, {length:.2f} m from body 0 to body {len(bodies) - 1}")
    for name, path_out in written.items():
        print(f"wrote {name}: {path_out.resolve()}")
    if video is not None:
        print(f"video: {video['frames']} frames ({video['seconds']:.1f} s), "
              f"{video['walked_m']:.2f} m walked: ego RGB + gaze | depth | semantic | map")
    if clips is not None:
        print(f"clips video: {clips['clips']} EgoM2P clips of 2 s (16 frames at 8 fps, "
              f"{clips['size']} px): RGB | depth | gaze | camera trajectory")
    if crowd is not None:
        print(f"crowd video: {crowd['frames']} frames ({crowd['seconds']:.1f} s, "
              f"{crowd['steps']} policy steps), {len(crowd['successes'])} humans, "
              f"{int(crowd['successes'].sum())} at their goals, walked "
              + ", ".join(f"{w:.1f}" for w in crowd["walked_m"])
              + " m: ego RGB per human | top-down map")
    return {"written": written, "bodies": bodies, "path": path, "scene": scene,
            "video": video, "crowd_video": crowd}


def _clips_preview(cfg: DemoConfig, path: Path, num_clips: int = 3) -> dict[str, Any]:
    """A few EgoM2P clips in the demo's scene (two humans driven by the shipped policy,
    64 px) written as a preview MP4 (:mod:`egosim.egom2p.preview`)."""
    from egosim.egom2p.clips import ClipBuilder
    from egosim.egom2p.preview import write_preview

    size = 64
    builder = ClipBuilder(overrides={
        "video_size": size, "worlds": 1, "humans": [2, 2],
        "scene.specs": [cfg.scene.spec], "scene.pool_size": 1,
        "scene.seed_range": [cfg.scene.seed, cfg.scene.seed + 1],
        "scene.options": _scene_options(cfg.scene)}, seed=cfg.body_seed)
    try:
        clips = [builder.next_clip() for _ in range(num_clips)]
    finally:
        builder.close()
    return {"video": write_preview(path, clips, fps=8.0), "clips": num_clips, "size": size}


def describe_scene(job: SceneJobConfig) -> dict[str, Any]:
    """Load a scene, print its statistics and write its top-down map; returns a summary."""
    cfg = job.scene
    t0 = time.perf_counter()
    scene = load_scene(cfg)
    walkable = scene.walkable
    elapsed = time.perf_counter() - t0
    area = float(walkable.sum()) * scene.grid_resolution**2
    n_comp = int(scene.components.max())
    print(f"{scene!r}")
    print(f"built with walkability in {elapsed:.2f} s; walkable area {area:.1f} m^2 "
          f"in {n_comp} connected component(s)")
    for name, count in sorted(scene.class_counts().items(), key=lambda kv: -kv[1]):
        print(f"  {name:<12} {count:>8} faces")
    name = cfg.spec.replace(":", "_").replace("/", "_")
    out = _save(Path(job.output_dir) / f"{name}_topdown.png",
                topdown_map(scene, job.pixels_per_m))
    print(f"wrote top-down map: {out.resolve()}")
    return {"scene": scene, "walkable_area_m2": area, "topdown": out}
