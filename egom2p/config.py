"""Schema of ``configs/egom2p_clips.yaml``: EgoM2P's 2-second multimodal clips, streamed.

:class:`ClipConfig` is the one source of the clip builder's defaults
(:mod:`egosim.egom2p.clips`, :class:`egosim.egom2p.stream.SimStream`); the YAML documents
them. A clip is ``seconds`` (2 s) of motion: ``video_frames`` (16) RGB / depth frames at
``video_fps`` (8 Hz) of ``video_size`` squared pixels and ``pose_samples`` (60) camera
poses and gaze points at ``pose_fps`` (30 Hz), all on one clock. The ``stream`` section is
how ``egosim egom2p stream`` runs (the stream itself ignores it). Unknown keys and bad values
are errors that name the key. Units: seconds, Hz, pixels, metres, degrees where ``*_deg``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator, model_validator

from egosim.config import ConfigValueError, SeedRange, StrictModel
from egosim.envs.config import SceneSpec

__all__ = ["CLIP_MODALITIES", "MOTION_FPS", "AttentionSection", "AugmentSection", "ClipConfig",
           "ClipSceneSection", "StreamSection", "check_controller_path"]

#: Modalities a clip can hold (its keys: ``rgb``; ``depth``; ``camera`` and ``camera_9d``;
#: ``gaze`` and ``gaze_valid``).
CLIP_MODALITIES: tuple[str, ...] = ("rgb", "depth", "camera", "gaze")
#: The motion clock (Hz): the simulation decodes 40 frames per second.
MOTION_FPS = 40.0
#: The shipped controller factory (the PPO policy of ``agents/checkpoints``).
DEFAULT_CONTROLLER = "egosim.agents.controllers:shipped_policy"


def check_controller_path(value: str) -> str:
    """Return ``value`` if it reads ``package.module:attribute`` (not imported here)."""
    module, sep, attr = value.partition(":")
    if not sep or not all(p.isidentifier() for p in module.split(".")) \
            or not all(p.isidentifier() for p in attr.split(".")):
        raise ValueError(f"must be an import path 'package.module:attribute' (e.g. "
                         f"{DEFAULT_CONTROLLER!r}); got {value!r}")
    return value


class ClipSceneSection(StrictModel):
    """Where the humans walk: scene specs and the per-worker pool of scene seeds.

    Each worker draws ``pool_size`` (spec, seed) pairs once (specs uniformly, seeds in
    ``seed_range``) and each episode's worlds pick scenes from that pool, so scenes are
    built once per worker; every ``refresh_episodes`` episodes the oldest pool entry is
    replaced by a new draw (0: never).
    """

    specs: list[SceneSpec] = Field(default_factory=lambda: ["procedural:apartment"],
                                   description="scenes.load specs or mesh paths")
    seed_range: SeedRange = Field((0, 200), description="[low, high) procedural scene seeds")
    pool_size: int = Field(8, ge=1, le=1024, description="scenes per worker")
    refresh_episodes: int = Field(8, ge=0, le=1_000_000, description="episodes between pool "
                                  "refreshes (one new scene each); 0: never")
    options: dict[str, Any] = Field(default_factory=dict, description="extra scenes.load "
                                    "options")

    @field_validator("specs")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must list at least one scene spec")
        return value


class AttentionSection(StrictModel):
    """What the eyes look at (see :mod:`egosim.egom2p.clips`, "Gaze").

    Looks last a Gamma(2, mean ``look_mean_s``) time; each picks a kind with these weights
    among the kinds available (in view and in line of sight): the route ahead, the goal,
    another human, a scene object; the stochastic eye model
    (``egosim.sensors.EyeModel``) adds fixations, drift, pursuit and saccades.
    """

    look_mean_s: float = Field(0.8, gt=0.0, le=10.0, description="mean look duration, s")
    path_weight: float = Field(0.4, ge=0.0, description="the route ahead, on the floor")
    goal_weight: float = Field(0.1, ge=0.0, description="the current goal, on the floor")
    person_weight: float = Field(0.3, ge=0.0, description="another human's head")
    object_weight: float = Field(0.2, ge=0.0, description="a scene object passed by")
    path_ahead_m: float = Field(3.0, gt=0.0, le=20.0, description="route distance ahead of "
                                "the pelvis looked at (nearer points when hidden)")
    person_max_m: float = Field(8.0, gt=0.0, le=50.0, description="farthest human looked at")
    object_max_m: float = Field(4.0, gt=0.0, le=50.0, description="farthest object looked at")
    view_margin: float = Field(0.8, gt=0.0, le=1.0, description="a target must project "
                               "within this fraction of the image half-size to be chosen")
    eye_model: bool = Field(True, description="false: the gaze hits the target exactly")

    @model_validator(mode="after")
    def _some_weight(self) -> AttentionSection:
        if self.path_weight + self.goal_weight + self.person_weight + self.object_weight <= 0:
            raise ConfigValueError(("path_weight", "goal_weight", "person_weight",
                                    "object_weight"), "at least one weight must be > 0")
        return self


class AugmentSection(StrictModel):
    """EgoGen's augmentations (``egosim.sensors`` models; the random ones are seeded)."""

    depth_noise: bool = Field(False, description="Kinect-style depth noise (DepthNoise "
                              "defaults, range up to far_m)")
    motion_blur: bool = Field(False, description="RGB motion blur from the head's velocity "
                              "(MotionBlur defaults: 40 % of frames, 1/30 s, 5 samples)")
    blur_probability: float = Field(0.4, ge=0.0, le=1.0, description="frames blurred when "
                                    "motion_blur")
    intrinsics_jitter: bool = Field(False, description="random focal length / principal "
                                    "point, one draw per world and clip segment")
    focal_rel_sigma: float = Field(0.03, ge=0.0, lt=0.5, description="relative focal sigma")
    principal_sigma_px: float = Field(0.5, ge=0.0, le=64.0, description="principal point "
                                      "sigma, pixels")
    random_light: bool = Field(True, description="Lighting.sample per world and episode "
                               "(false: the default light)")
    appearance: bool = Field(True, description="random skin / clothing colours per body "
                             "(false: one grey)")


class StreamSection(StrictModel):
    """How ``egosim egom2p stream`` runs (ignored by :class:`SimStream` itself)."""

    clips: int = Field(32, ge=1, le=10_000_000, description="clips to stream")
    num_workers: int = Field(2, ge=0, le=64, description="DataLoader worker processes")
    seed: int = Field(0, ge=0, description="base seed of the stream")
    preview: str | None = Field("outputs/egom2p/stream_preview.mp4", description="preview "
                                "MP4 (RGB | depth | gaze | trajectory); null: none")
    preview_clips: int = Field(4, ge=1, le=1000, description="clips in the preview")
    progress: bool = Field(True, description="tqdm progress bar")


class ClipConfig(StrictModel):
    """EgoM2P clips from the simulation (see the module docstring)."""

    seconds: float = Field(2.0, gt=0.0, le=60.0, description="clip length, s")
    video_fps: float = Field(8.0, gt=0.0, le=MOTION_FPS, description="RGB / depth rate, Hz")
    video_frames: int = Field(16, ge=1, le=1024, description="frames per clip")
    video_size: int = Field(64, ge=8, le=1024, description="square frame side, pixels "
                            "(multiple of 8)")
    pose_fps: float = Field(30.0, gt=0.0, le=MOTION_FPS, description="camera / gaze rate, Hz "
                            "(interpolated from the 40 fps motion)")
    pose_samples: int = Field(60, ge=2, le=4096, description="camera poses and gaze points")
    hfov_deg: float = Field(90.0, gt=0.0, lt=180.0, description="video camera field of view")
    near_m: float = Field(0.05, gt=0.0, description="near clipping plane, m")
    far_m: float = Field(20.0, gt=0.0, description="far plane, m (depth 0 beyond)")
    modalities: list[str] = Field(default_factory=lambda: list(CLIP_MODALITIES),
                                  description="subset of rgb, depth, camera, gaze")
    humans: tuple[int, int] = Field((1, 4), description="[min, max] humans per scene "
                                    "(inclusive), drawn per episode")
    min_separation_m: float = Field(1.0, gt=0.0, le=10.0, description="smallest start-start "
                                    "and goal-goal distance of the humans of one scene")
    worlds: int = Field(4, ge=1, le=256, description="scenes simulated together per worker "
                        "(one batched motion-prior step)")
    clips_per_episode: int = Field(4, ge=1, le=1000, description="consecutive clips per "
                                   "human and episode (goals renewed on arrival)")
    self_body: bool = Field(True, description="a wearer sees its own hands and feet")
    proxy_cell_m: float = Field(0.08, gt=0.0, le=0.5, description="grid of the coarse body "
                                "meshes other humans are drawn with (0.04 for >= 256 px)")
    scene: ClipSceneSection = Field(default_factory=ClipSceneSection)
    controller: str = Field(DEFAULT_CONTROLLER, description="controller factory "
                            "'module:attribute', called as factory(sim, seed, **options)")
    controller_options: dict[str, Any] = Field(default_factory=dict, description="keyword "
                                               "arguments of the controller factory")
    env: str = Field("env_locomotion", description="env config (shipped name or YAML) of "
                     "goals, action scale, sensing and the motion prior")
    env_overrides: dict[str, Any] = Field(default_factory=dict, description="dotted env "
                                          "config overrides")
    attention: AttentionSection = Field(default_factory=AttentionSection)
    augment: AugmentSection = Field(default_factory=AugmentSection)
    stream: StreamSection = Field(default_factory=StreamSection)

    @field_validator("video_size")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"video_size must be a multiple of 8 (the video tokenizers' "
                             f"8 x 8 patches), e.g. 64, 128 or 256; got {value}")
        return value

    @field_validator("modalities")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if m not in CLIP_MODALITIES]
        if bad:
            raise ValueError(f"unknown modality {', '.join(map(repr, bad))} in modalities; "
                             f"allowed: {', '.join(CLIP_MODALITIES)}")
        if not value or len(set(value)) != len(value):
            raise ValueError(f"modalities must list distinct modalities, at least one; got "
                             f"{value}")
        return value

    @field_validator("controller")
    @classmethod
    def _controller(cls, value: str) -> str:
        return check_controller_path(value)

    @field_validator("humans")
    @classmethod
    def _humans(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 16:
            raise ValueError(f"humans must be [min, max] with 1 <= min <= max <= 16; got "
                             f"{list(value)}")
        return value

    @model_validator(mode="after")
    def _clocks(self) -> ClipConfig:
        frames = self.seconds * MOTION_FPS
        if abs(frames - round(frames)) > 1e-6:
            raise ConfigValueError("seconds", f"must be a whole number of 40 fps motion "
                                   f"frames (a multiple of 0.025 s); got {self.seconds}")
        step = MOTION_FPS / self.video_fps
        if abs(step - round(step)) > 1e-6:
            raise ConfigValueError("video_fps", f"must divide the motion rate "
                                   f"{MOTION_FPS:g} Hz (video frames are simulated frames: "
                                   f"8, 10, 20, 40 ...); got {self.video_fps}")
        for fps, count, name in ((self.video_fps, self.video_frames, "video_frames"),
                                 (self.pose_fps, self.pose_samples, "pose_samples")):
            if count > math.floor(self.seconds * fps + 1e-6):
                raise ConfigValueError(name, f"{count} samples at {fps:g} Hz do not fit in "
                                       f"seconds = {self.seconds:g} (at most "
                                       f"{math.floor(self.seconds * fps + 1e-6)})")
        if self.far_m <= self.near_m:
            raise ConfigValueError(("near_m", "far_m"), f"far_m ({self.far_m}) must exceed "
                                   f"near_m ({self.near_m})")
        return self

    @property
    def motion_frames(self) -> int:
        """Simulated 40 fps frames per clip (80 for 2 s)."""
        return int(round(self.seconds * MOTION_FPS))

    @property
    def video_step(self) -> int:
        """Motion frames between two video frames (5 at 8 fps)."""
        return int(round(MOTION_FPS / self.video_fps))
