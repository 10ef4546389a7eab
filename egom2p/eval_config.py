"""Schema of ``configs/egom2p_eval.yaml`` (``egosim egom2p eval``): EgoM2P beside classical
methods and trivial baselines on the same held-out clips.

:class:`EvalConfig` is the one source of the defaults; the YAML documents them. The
evaluation itself is :func:`egosim.egom2p.evaluation.run` (its module docstring has the
protocol, the methods, the result layout and the user-model protocol). Units: metres,
degrees where ``*_deg``, pixels, seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from egosim.config import ConfigValueError, SeedRange, StrictModel
from egosim.egom2p.config import ClipSceneSection
from egosim.envs.config import SceneSpec

__all__ = ["EVAL_TASKS", "TRAIN_SCENE_SEEDS", "EvalConfig", "MonoVOSection",
           "RgbdOdometrySection", "looks_like_callable"]

#: The tasks, in table order: RGB -> camera, RGB -> depth, RGB -> gaze, depth -> RGB.
EVAL_TASKS: tuple[str, ...] = ("camera", "depth", "gaze", "rgb")
#: The procedural scene seeds the training clips come from (the clip config's default).
TRAIN_SCENE_SEEDS: tuple[int, int] = tuple(ClipSceneSection.model_fields["seed_range"].default)
#: Clip keys the evaluation sets itself (``clip_overrides`` may not name them).
_OWN_CLIP_KEYS = ("video_size", "scene.specs", "scene.seed_range")


def looks_like_callable(value: str) -> bool:
    """Whether ``value`` reads ``package.module:attribute`` (a user's method), not a path."""
    module, sep, attr = value.partition(":")
    return bool(sep) and all(p.isidentifier() for p in module.split(".")) and all(
        p.isidentifier() for p in attr.split("."))


class RgbdOdometrySection(StrictModel):
    """The ``opencv_rgbd`` baseline: OpenCV's RGB-D odometry between consecutive video
    frames (photometric + ICP, ``cv2.Odometry`` of type RGB_DEPTH), chained.

    OpenCV's defaults accept at most 0.15 m and 15 degrees between two frames, which a
    walking head exceeds at 8 fps (half the steps then fail); a failed step counts as no
    motion.
    """

    max_translation_m: float = Field(0.5, gt=0.0, le=10.0, description="largest "
                                     "frame-to-frame translation accepted")
    max_rotation_deg: float = Field(30.0, gt=0.0, le=180.0, description="largest "
                                    "frame-to-frame rotation accepted")
    max_depth_diff_m: float = Field(0.3, gt=0.0, le=10.0, description="ICP: largest depth "
                                    "difference of a correspondence")


class MonoVOSection(StrictModel):
    """The ``mono_vo`` baseline: ORB features matched between consecutive frames, the
    essential matrix (RANSAC) and ``cv2.recoverPose``, chained with unit-length steps
    (monocular: no scale; its main figure is the Sim(3) ATE)."""

    upscale: int = Field(2, ge=1, le=8, description="frames are upscaled this many times "
                         "before ORB (its 31-pixel patches need more than 64 pixels)")
    features: int = Field(500, ge=8, le=100_000, description="ORB features per frame")
    min_inliers: int = Field(15, ge=5, le=10_000, description="fewer pose inliers: the step "
                             "counts as no motion")
    ransac_threshold_px: float = Field(1.0, gt=0.0, le=50.0, description="RANSAC "
                                       "threshold of the essential matrix, upscaled pixels")


class EvalConfig(StrictModel):
    """``egosim egom2p eval`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True,
                              allow_inf_nan=False)
    model: str | None = Field(None, description="null: the shipped EgoM2P model "
                              "(egosim.egom2p.load_model()); a checkpoint path; or "
                              "'module:callable', a user's method")
    specialist: str | None = Field("shipped", description="checkpoint of the same-size "
                                   "single-task RGB -> depth model; shipped: the one in "
                                   "egom2p/model/checkpoints/depth_specialist.pt; null: the "
                                   "row is skipped")
    tasks: list[Literal["camera", "depth", "gaze", "rgb"]] = Field(
        default_factory=lambda: list(EVAL_TASKS), description="tasks to evaluate")
    clips: int = Field(12, ge=1, le=100_000, description="clips per scene group (held-out "
                       "apartments; unseen scenes, split evenly over scenes)")
    scene_seeds: SeedRange = Field((1000, 1200), description="[low, high) held-out procedural "
                                   "apartment seeds (disjoint from the training seeds)")
    scenes: list[SceneSpec] = Field(default_factory=lambda: ["pybullet:samurai",
                                                             "pybullet:stadium"],
                                    description="unseen scenes (metrics '<name>@unseen'); "
                                    "[]: none")
    video_size: int = Field(64, ge=8, le=1024, description="square frame side, pixels")
    seed: int = Field(0, ge=0, description="base seed of every clip builder")
    clip_config: str = Field("egom2p_clips", description="clip config (shipped name or YAML)")
    clip_overrides: dict[str, Any] = Field(
        default_factory=lambda: {"scene.pool_size": 4, "worlds": 2},
        description="dotted clip config overrides (not video_size, scene.specs, "
        "scene.seed_range: the evaluation sets them)")
    train_stats: str | None = Field(None, description="the trivial baselines' training means: "
                                    "null: from train_clips stream clips of the training "
                                    "seeds; an .npz this command wrote (train_stats.npz); "
                                    "or a clip cache folder (its train/ clips)")
    train_clips: int = Field(32, ge=1, le=100_000, description="training clips the means "
                             "average")
    rgbd_odometry: RgbdOdometrySection = Field(default_factory=RgbdOdometrySection)
    mono_vo: MonoVOSection = Field(default_factory=MonoVOSection)
    threads: int = Field(1, ge=1, le=256, description="torch and OpenCV threads")
    print_json: bool = Field(False, alias="json", description="print the results as one JSON "
                             "object on the last stdout line (override key: json)")
    output_dir: str = Field("outputs/egom2p/eval", description="table.md, table.png, "
                            "results.json, train_stats.npz")
    progress: bool = Field(True, description="tqdm progress bars (stderr)")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be null, a checkpoint path or 'module:callable'; got ''")
        return value

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"must list distinct tasks of {', '.join(EVAL_TASKS)}, at least "
                             f"one; got {value}")
        return [t for t in EVAL_TASKS if t in value]

    @field_validator("scene_seeds")
    @classmethod
    def _held_out(cls, value: tuple[int, int]) -> tuple[int, int]:
        lo, hi = TRAIN_SCENE_SEEDS
        if value[0] < hi and lo < value[1]:
            raise ValueError(f"held-out seeds must be disjoint from the training seeds "
                             f"[{lo}, {hi}); got {list(value)}")
        return value

    @field_validator("video_size")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"must be a multiple of 8 (the clips' rule); got {value}")
        return value

    @field_validator("clip_overrides")
    @classmethod
    def _not_own(cls, value: dict[str, Any]) -> dict[str, Any]:
        own = sorted(k for k in value if k in _OWN_CLIP_KEYS or k in ("scene", "scene.specs"))
        if own:
            raise ValueError(f"may not set {', '.join(own)}: use the keys video_size, scenes "
                             "and scene_seeds")
        return value

    @model_validator(mode="after")
    def _specialist_needs_depth(self) -> EvalConfig:
        if self.specialist not in (None, "shipped") and "depth" not in self.tasks:
            raise ConfigValueError(("specialist", "tasks"), "a specialist is a depth model: "
                                   "add depth to tasks or set specialist to null")
        if self.specialist is not None and looks_like_callable(self.specialist):
            raise ConfigValueError("specialist", "must be a checkpoint path, not "
                                   f"'module:callable'; got {self.specialist!r}")
        return self
