"""Schemas of the apps' configs: ``configs/demo.yaml`` (``egosim demo``),
``configs/scene.yaml`` (``egosim scene``) and ``configs/prior_video.yaml``
(``egosim prior-video``).

The defaults here are the shipped files' values (the YAMLs document them). Unknown keys and
bad values are errors that name the key. Units: metres, seconds, Hz, pixels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from egosim.config import StrictModel
from egosim.envs.config import SceneSpec

__all__ = ["DemoConfig", "PriorVideoConfig", "SceneConfig", "SceneJobConfig"]


class SceneConfig(StrictModel):
    """Which scene to build and how to derive its walkability and SDF.

    Units: metres.
    """

    spec: SceneSpec = Field("procedural:apartment", description="scenes.load spec or mesh path")
    seed: int = Field(0, ge=0, description="generator seed for procedural scenes")
    up_axis: Literal["z", "y"] = Field("z", description="up axis of a mesh file")
    grid_resolution: float = Field(0.05, gt=0.0, le=0.10, description="walkability cell, m")
    body_radius: float = Field(0.25, gt=0.0, le=1.0, description="clearance radius, m")
    body_height: float = Field(1.8, gt=0.5, le=2.5, description="clearance height, m")



class DemoConfig(StrictModel):
    """``egosim demo``: an apartment, posed bodies in walkable spots, pictures on disk."""

    scene: SceneConfig = Field(default_factory=SceneConfig)
    num_bodies: int = Field(3, ge=1, le=8, description="bodies placed in the scene")
    body_seed: int = Field(0, ge=0, description="seed for shapes, poses and appearance "
                           "(crowd.mp4: also starts, goals and seed motions)")
    output_dir: str = Field("outputs/demo", description="folder the pictures go to")
    topdown_pixels_per_m: int = Field(40, ge=5, le=200, description="top-down map scale")
    turntable_views: int = Field(8, ge=1, le=36, description="views in the turntable image")
    turntable_size: int = Field(256, ge=32, le=1024, description="pixels per turntable view")
    video: bool = Field(True, description="write the MP4s: walk.mp4, and crowd.mp4 when "
                        "crowd_video is true")
    video_size: int = Field(192, ge=32, le=1024, description="pixels of each ego view")
    video_fps: float = Field(20.0, gt=0.0, le=40.0, description="video and sensor rate, Hz")
    video_max_seconds: float = Field(30.0, gt=0.0, le=300.0, description="walk cut after, s")
    crowd_video: bool = Field(True, description="write crowd.mp4: humans driven by the PPO "
                              "policy walk to their goals (ego RGB views | top-down map)")
    crowd_humans: int = Field(3, ge=2, le=6, description="humans in crowd.mp4")
    crowd_size: int = Field(160, ge=32, le=512, description="pixels of each crowd ego view")
    crowd_fps: float = Field(20.0, gt=0.0, le=40.0, description="crowd video and sensor "
                             "rate, Hz (motion is 40 fps)")
    crowd_max_seconds: float = Field(20.0, gt=0.0, le=120.0, description="crowd video cut "
                                     "after, s (it ends earlier once every human stopped)")
    crowd_policy: str | None = Field(None, description="PPO .zip driving the crowd; null: "
                                     "the shipped agents/checkpoints/ppo_locomotion.zip")


class SceneJobConfig(StrictModel):
    """``egosim scene``: load a scene, print its statistics, write its top-down map."""

    scene: SceneConfig = Field(default_factory=SceneConfig)
    output_dir: str = Field("outputs/scene", description="folder the map goes to")
    pixels_per_m: int = Field(20, ge=2, le=200, description="top-down map scale")


class PriorVideoConfig(StrictModel):
    """``egosim prior-video``: random rollouts of the motion prior on a floor grid (MP4)."""

    checkpoint_dir: str | None = Field(None, description="folder with cvae.pt + regressor.pt "
                                       "(null: the shipped checkpoints)")
    num_bodies: int = Field(3, ge=1, le=8, description="rollouts shown side by side")
    num_primitives: int = Field(10, ge=1, le=200, description="primitives per rollout")
    seed: int = Field(0, ge=0, description="seed motions, latent codes and colours")
    fps: float = Field(20.0, gt=0.0, le=40.0, description="video rate, Hz (motion is 40 fps)")
    width: int = Field(480, ge=32, le=1920, description="video width, pixels")
    height: int = Field(270, ge=32, le=1080, description="video height, pixels")
    spacing: float = Field(1.5, gt=0.0, le=10.0, description="sideways gap between rollouts, m")
    camera_distance: float = Field(5.0, gt=0.5, le=50.0, description="camera distance, m")
    camera_height: float = Field(2.5, gt=0.0, le=20.0, description="camera height, m")
    output: str = Field("outputs/prior_video.mp4", description="the MP4 written")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")
    progress: bool = Field(True, description="tqdm progress bar")
