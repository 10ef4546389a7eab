"""A human walking a planned path, seen from its own head: the demo's MP4.

The gait is scripted: the retargeted DeepMimic walk cycle (``egosim.envs.motion``) is
looped and laid along the path at the clip's own speed, turning with the path's heading.
Each output frame shows, side by side: the ego RGB view with the gaze point, ego depth,
ego semantics, and a top-down map (:class:`egosim.envs.topdown.TopdownMap`) with the body,
the path and the gaze ray. The head camera, its views and the gaze come from
:class:`egosim.sensors.HeadRecorder`: camera at the eye midpoint aimed at a point on the path
about 2.5 m ahead, the eyes looking there through :class:`egosim.sensors.EyeModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from scipy.spatial.transform import Rotation
from skimage.draw import disk
from tqdm import tqdm

from egosim.atomic_io import atomic_path
from egosim.envs.motion.primitive_windows import MOTION_FPS

__all__ = ["scripted_walk", "render_walk_video", "colorize_depth", "colorize_labels"]

_GAZE_POINT = (255, 40, 40)
_GAZE_RAY_M = 2.0


def _path_arclength(path: np.ndarray) -> np.ndarray:
    seg = np.linalg.norm(np.diff(path[:, :2], axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def _smooth_heading(path: np.ndarray, s: np.ndarray, at: np.ndarray,
                    window: float = 0.6) -> np.ndarray:
    """Heading (rad) of the path at arc lengths ``at``, from points ``window`` m apart."""
    ahead = np.clip(at + window / 2, 0.0, s[-1])
    behind = np.clip(at - window / 2, 0.0, s[-1])
    pa = np.column_stack([np.interp(ahead, s, path[:, i]) for i in range(2)])
    pb = np.column_stack([np.interp(behind, s, path[:, i]) for i in range(2)])
    d = pa - pb
    return np.unwrap(np.arctan2(d[:, 1], d[:, 0]))


def scripted_walk(path: np.ndarray, clip: Any, pelvis_rest: np.ndarray,
                  fps: float = 20.0) -> dict[str, np.ndarray]:
    """Lay a looped walk cycle along a path.

    Args:
        path: ``(N, 3)`` world polyline (m, z up) on the floor.
        clip: a :class:`egosim.envs.motion.MotionClip` of one walk cycle at 40 fps whose
            SMPL-X parameters give world points directly (z up, walking along +x).
        pelvis_rest: ``(3,)`` the body's rest pelvis joint ``J0`` (m), so that the pelvis
            is ``J0 + transl``.
        fps: output frame rate (Hz).

    Returns:
        ``global_orient (T, 3)``, ``body_pose (T, 63)``, ``transl (T, 3)`` (world, m, rad),
        ``look_at (T, 3)`` a point on the path about 2.5 m ahead at eye height, and
        ``progress (T,)`` arc length walked (m).
    """
    period = clip.global_orient.shape[0] - 1  # DeepMimic cycles repeat their first frame
    pelvis = clip.transl[:period] + pelvis_rest
    t_clip = np.arange(period) / clip.fps
    speed = (clip.transl[period, 0] - clip.transl[0, 0]) / (period / clip.fps)
    trend = np.polyval(np.polyfit(t_clip, pelvis[:, 0], 1), t_clip)
    local = pelvis - np.column_stack([trend, np.zeros((period, 2))])  # sway around the line
    s = _path_arclength(path)
    duration = s[-1] / speed
    times = np.arange(0.0, duration, 1.0 / fps)
    walked = np.minimum(times * speed, s[-1])
    k = np.round(times * MOTION_FPS).astype(int) % period
    yaw = _smooth_heading(path, s, walked)
    rz = Rotation.from_euler("z", yaw[:, None])
    xy = np.column_stack([np.interp(walked, s, path[:, i]) for i in range(2)])
    floor = np.interp(walked, s, path[:, 2])
    pel_world = rz.apply(local[k]) + np.column_stack([xy, floor])
    orient = (rz * Rotation.from_rotvec(clip.global_orient[k])).as_rotvec()
    ahead = np.minimum(walked + 2.5, s[-1] + 1e-3)
    look = np.column_stack([np.interp(ahead, s, path[:, i]) for i in range(2)]
                           + [floor + 1.5])
    return {"global_orient": orient, "body_pose": clip.body_pose[k],
            "transl": pel_world - pelvis_rest, "look_at": look, "progress": walked}


def colorize_depth(depth: np.ndarray, far: float = 8.0) -> np.ndarray:
    """``(H, W)`` metres -> ``(H, W, 3)`` uint8: near bright, far dark, invalid black."""
    v = np.clip(1.0 - depth / far, 0.0, 1.0) ** 1.5
    rgb = np.stack([v, 0.6 * v + 0.2 * v**2, 0.3 + 0.7 * v], -1) * (depth > 0)[..., None]
    return (rgb * 255).astype(np.uint8)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """``(H, W)`` int ids -> ``(H, W, 3)`` uint8, a fixed colour per id, -1 black."""
    ids = np.asarray(labels, np.int64)
    golden = (ids * 0.61803398875) % 1.0
    rgb = np.stack([golden, (golden + 0.33) % 1.0, (golden + 0.66) % 1.0], -1)
    rgb = 0.25 + 0.75 * np.abs(2 * rgb - 1)
    rgb[ids < 0] = 0.0
    return (rgb * 255).astype(np.uint8)


def render_walk_video(scene: Any, path: np.ndarray, out_path: str | Path, *,
                      size: int = 192, fps: float = 20.0, seed: int = 0,
                      max_seconds: float = 30.0, pixels_per_m: int = 40) -> dict[str, Any]:
    """Render the demo MP4 of a scripted walk along ``path``; returns a summary.

    Args:
        scene: a :class:`egosim.envs.scenes.Scene`.
        path: ``(N, 3)`` world polyline (m) from :meth:`Scene.plan_path`.
        out_path: the ``.mp4`` file to write.
        size: pixels of each square ego view.
        fps: video and sensor rate (Hz); the motion is sampled from 40 fps.
        seed: seeds appearance, gaze and lighting.
        max_seconds: the walk is cut after this long.
        pixels_per_m: scale of the top-down map.

    Returns:
        ``video`` (path), ``frames`` ``T``, ``seconds``, ``walked_m`` (arc length, m),
        ``eyes (T, 2, 3)`` left and right eye (m, world), ``head (T, 4, 4)`` head camera
        camera-to-world (OpenCV axes), ``gaze_valid (T,)`` the gaze point is in the RGB view.
    """
    import torch

    from egosim.envs.humans import (
        BODY_PART_NAMES,
        EYE_JOINTS,
        BodyModel,
        body_part_labels,
        sample_appearance,
    )
    from egosim.envs.motion import retarget_named
    from egosim.envs.scenes import class_id
    from egosim.envs.topdown import TopdownMap
    from egosim.sensors import CameraSpec, DynamicMesh, EyeModel, HeadRecorder, Lighting, Renderer

    rng = np.random.default_rng(seed)
    clip, _report = retarget_named("walk")
    model = BodyModel(gender=clip.gender)
    with torch.no_grad():
        rest = model(betas=clip.betas[None].astype(np.float32))
    pelvis_rest = rest.joints[0, 0].numpy().astype(np.float64)
    motion = scripted_walk(path, clip, pelvis_rest, fps=fps)
    n = min(len(motion["transl"]), int(max_seconds * fps))
    with torch.no_grad():
        out = model(betas=np.repeat(clip.betas[None], n, 0).astype(np.float32),
                    global_orient=motion["global_orient"][:n].astype(np.float32),
                    body_pose=motion["body_pose"][:n].astype(np.float32),
                    transl=motion["transl"][:n].astype(np.float32))
    verts = out.vertices.numpy()
    eyes = out.joints[:, list(EYE_JOINTS)].numpy().astype(np.float64)
    faces = model.faces
    labels = body_part_labels()
    hands_feet = [i for i, p in enumerate(BODY_PART_NAMES) if p.endswith(("hand", "foot"))]
    own = np.isin(labels, hands_feet)
    self_visible = own[faces].all(axis=1)
    face_colors = sample_appearance(rng).vertex_colors[faces].mean(axis=1)

    specs = [CameraSpec(uuid=m, modality=m, resolution=(size, size), hfov_deg=90.0,
                        near=0.05, far=20.0) for m in ("rgb", "depth", "semantic")]
    renderer = Renderer(scene, lighting=Lighting(), seed=seed)  # the default, well-lit
    recorder = HeadRecorder(renderer, specs, fps=fps, eye_model=EyeModel())
    track = recorder.track(eyes, look_at=motion["look_at"][:n], rng=rng)
    head, gaze = track.poses, track.gaze_tracks[0]
    gaze_xy, gaze_ok = track.gaze_xy["rgb"], track.gaze_valid["rgb"]
    tmap = TopdownMap(scene, pixels_per_m)
    tmap.path(path)
    tmap.marker(path[0])
    tmap.marker(path[-1])

    person = class_id("person")
    frames = []
    for i in tqdm(range(n), desc="walk video", unit="frame"):
        body = DynamicMesh(verts[i][faces], person, 1000, face_colors, self_visible)
        views = recorder.render(head[i], meshes=[body], wearer=0)
        rgb = views["rgb"].copy()
        if gaze_ok[i]:
            u = (gaze_xy[i] + 1.0) * 0.5 * size
            rr, cc = disk((u[1], u[0]), max(3, size // 40), shape=rgb.shape[:2])
            rgb[rr, cc] = _GAZE_POINT
        top = tmap.frame()
        tmap.footprint(verts[i], 0, top, stride=7)
        tmap.gaze(gaze.origin[i], gaze.direction[i], _GAZE_RAY_M, top)
        panel = [rgb, colorize_depth(views["depth"]), colorize_labels(views["semantic"]),
                 TopdownMap.resized(top, size)]
        frames.append(np.concatenate(panel, axis=1))
    renderer.close()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        imageio.mimwrite(tmp, frames, fps=fps, macro_block_size=1)
    return {"video": out_path, "frames": n, "seconds": n / fps,
            "walked_m": float(motion["progress"][n - 1]), "eyes": eyes, "head": head,
            "gaze_valid": gaze_ok}
