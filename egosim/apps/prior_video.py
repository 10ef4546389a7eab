"""``egosim prior-video``: random motion-prior rollouts on a floor grid, as an MP4.

A person judges the motion by eye: ``num_bodies`` humans (different seed motions and body
shapes from the prior's bank) each roll out ``num_primitives`` primitives from
``z ~ N(0, I)``; they are shown side by side (each shifted sideways for display only) on a
1 m checkerboard floor, from a third-person camera that follows their centroid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
from tqdm import tqdm

from egosim.apps.config import PriorVideoConfig
from egosim.atomic_io import atomic_path

__all__ = ["floor_grid", "render_prior_video"]


def floor_grid(half_size: int, tile: float = 1.0) -> Any:
    """A checkerboard floor at z = 0: ``(2 * half_size)^2`` tiles of ``tile`` metres.

    Returns:
        A :class:`egosim.sensors.SimpleScene` (semantic 1, instance 0), light and dark
        grey tiles.
    """
    from egosim.sensors import SimpleScene

    scene = SimpleScene()
    idx = np.arange(-half_size, half_size)
    for parity, colour in ((0, (0.82, 0.82, 0.80)), (1, (0.45, 0.47, 0.50))):
        tris = []
        for i in idx:
            for j in idx:
                if (i + j) % 2 != parity:
                    continue
                x0, y0, x1, y1 = i * tile, j * tile, (i + 1) * tile, (j + 1) * tile
                tris += [[(x0, y0, 0), (x1, y0, 0), (x1, y1, 0)],
                         [(x0, y0, 0), (x1, y1, 0), (x0, y1, 0)]]
        scene.add(np.array(tris, np.float32), semantic=1, instance=0, albedo=colour)
    return scene


def _follow_camera(centre: np.ndarray, distance: float, height: float) -> np.ndarray:
    """``(T, 4, 4)`` OpenCV camera-to-world poses behind-left of ``centre (T, 3)``."""
    from egosim.sensors import head_frame

    offset = np.array([-0.6 * distance, -0.8 * distance, height])
    eye = centre + offset
    side = np.cross(centre - eye, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    eyes = np.stack([eye - 0.03 * side, eye + 0.03 * side], axis=1)
    return head_frame(eyes, look_at=centre)


def render_prior_video(cfg: PriorVideoConfig) -> dict[str, Any]:
    """Roll the shipped (or configured) motion prior out and write the MP4; returns a summary
    with the path, frame count and the lowest foot height seen (m)."""
    import torch

    from egosim.envs.humans import FOOT_MARKER_INDICES, sample_appearance
    from egosim.envs.motion import MotionPrior
    from egosim.sensors import CameraSpec, DynamicMesh, Lighting, Renderer

    torch.set_num_threads(cfg.threads)
    prior = MotionPrior.load(cfg.checkpoint_dir)
    out = prior.rollout(cfg.num_primitives, batch_size=cfg.num_bodies, seed=cfg.seed)
    step = max(1, int(round(40.0 / cfg.fps)))
    verts = prior.vertices(out).numpy()[:, ::step]  # (B, T, V, 3)
    markers = out.markers.numpy()[:, ::step]
    b, t = verts.shape[:2]
    lanes = (np.arange(b) - (b - 1) / 2.0) * cfg.spacing
    # Display only: each rollout starts at the bank's origin; spread them sideways.
    shift = np.zeros((b, 1, 1, 3))
    shift[:, 0, 0, 1] = lanes
    verts = verts + shift
    faces = prior.body.faces if hasattr(prior.body, "faces") else None
    if faces is None:
        from egosim.envs.humans import BodyModel

        faces = BodyModel().faces
    rng = np.random.default_rng(cfg.seed)
    colours = [sample_appearance(rng).vertex_colors[faces].mean(axis=1) for _ in range(b)]
    reach = float(np.abs(verts[..., :2]).max()) + 4.0
    scene = floor_grid(int(np.ceil(reach)))
    renderer = Renderer(scene, lighting=Lighting(), seed=cfg.seed)
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(cfg.height, cfg.width),
                      hfov_deg=70.0, near=0.05, far=100.0)
    centre = verts.mean(axis=(0, 2))
    centre[:, 2] = 0.9
    # Smooth the follow camera so it does not shake with the gait.
    kernel = np.ones(9) / 9.0
    smooth = np.stack([np.convolve(np.pad(centre[:, i], 4, mode="edge"), kernel, "valid")
                       for i in range(3)], axis=1)
    poses = _follow_camera(smooth, cfg.camera_distance, cfg.camera_height)
    frames = []
    for k in tqdm(range(t), desc="prior video", unit="frame", disable=not cfg.progress):
        renderer.set_dynamic_meshes([DynamicMesh(verts[i, k][faces], 14, 1000 + i, colours[i])
                                     for i in range(b)])
        frames.append(renderer.render(spec, poses[k])["rgb"])
    renderer.close()
    path = Path(cfg.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        imageio.mimwrite(tmp, frames, fps=cfg.fps, macro_block_size=1)
    feet = markers[:, :, FOOT_MARKER_INDICES, 2]
    summary = {"video": path, "frames": t, "seconds": t / cfg.fps,
               "lowest_foot_m": float(feet.min()), "finite": bool(np.isfinite(verts).all())}
    print(f"wrote {path.resolve()}: {cfg.num_bodies} rollouts x {cfg.num_primitives} "
          f"primitives, {t} frames at {cfg.fps:g} fps; lowest foot marker "
          f"{100 * summary['lowest_foot_m']:.1f} cm")
    return summary
