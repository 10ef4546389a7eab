"""Schemas of ``configs/env_locomotion.yaml`` and ``configs/env_crowd.yaml``.

Every value of the EgoGen environments lives here: the scene and how often it changes, goal
sampling and waypoints, the action scaling, ego-sensing, the reward weights (EgoGen's
published values) and the penetration rule, the episode length, the motion prior checkpoint,
optional head cameras and the ``rgb_array`` view. The defaults here are what the envs use
without a config (the YAMLs document them). Unknown keys and bad values are errors that name
the key. Units: metres, degrees where named ``*_deg``.

:func:`crowd_config` and :func:`locomotion_config` turn one config into the other (the same
world with or without a crowd section).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from egosim.config import MAX_SEED, ConfigValueError, SeedRange, StrictModel
from egosim.envs.observation import OBS_KEYS
from egosim.envs.scenes.specs import check_scene_spec

__all__ = ["SceneSpec", "ActionSection", "CameraSection", "CrowdEnvConfig", "CrowdSection",
           "EpisodeSection", "GoalSection", "LocomotionEnvConfig", "PriorSection",
           "RenderSection", "RewardSection", "RewardWeights", "SceneSection",
           "SensingSection", "crowd_config", "locomotion_config"]


#: A validated scene spec: one of ``egosim.envs.scenes.SPECS`` or a mesh-file path.
SceneSpec = Annotated[str, AfterValidator(check_scene_spec)]

class SceneSection(StrictModel):
    """Which scene each episode uses (``egosim.envs.scenes.load``)."""

    spec: SceneSpec = Field("procedural:apartment", description="scenes.load spec or mesh "
                            "path")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="fixed scene seed; null: a "
                             "new seed per episode, drawn from seed_range")
    seed_range: SeedRange = Field((0, 200), description="[low, high) of per-episode scene "
                                  "seeds (keep evaluation seeds outside it)")
    cache_size: int = Field(16, ge=1, le=4096, description="scenes kept in memory per process")
    options: dict[str, Any] = Field(default_factory=dict, description="extra scenes.load "
                                    "options (grid_resolution, body_radius, num_rooms, ...)")


class GoalSection(StrictModel):
    """Start/goal sampling and the waypoint route (metres, floor plane)."""

    min_dist: float = Field(2.0, gt=0.0, description="shortest start-goal distance")
    max_dist: float = Field(8.0, gt=0.0, description="longest start-goal distance")
    metric: Literal["geodesic", "euclidean"] = Field("geodesic", description="how the "
                                                     "start-goal distance is measured")
    lookahead: float = Field(1.5, gt=0.0, le=10.0, description="the current target is the "
                             "route point this far (along the route) past the pelvis")
    success_radius: float = Field(0.3, gt=0.0, le=2.0, description="success: pelvis within "
                                  "this floor-plane distance of the final goal")
    heading_noise_deg: float = Field(45.0, ge=0.0, le=180.0, description="start heading: "
                                     "towards the first target +- uniform noise, degrees")

    @model_validator(mode="after")
    def _order(self) -> GoalSection:
        if self.max_dist <= self.min_dist:
            raise ConfigValueError(("max_dist", "min_dist"), f"max_dist ({self.max_dist}) "
                                   f"must exceed min_dist ({self.min_dist})")
        return self


class ActionSection(StrictModel):
    """Action -> latent: ``z = scale * action`` with ``action`` in [-1, 1]^128."""

    scale: float = Field(3.0, gt=0.0, le=20.0, description="latent per unit action "
                         "(3: covers +-3 sigma of the N(0, I) prior)")


class SensingSection(StrictModel):
    """EgoGen's ego-sensing: horizontal rays from the eyes around the gaze direction."""

    num_rays: int = Field(32, ge=1, le=1024, description="rays")
    fov_deg: float = Field(180.0, gt=0.0, le=360.0, description="fan width, degrees")
    max_range: float = Field(7.0, gt=0.0, le=100.0, description="ray length, m")
    human_radius: float = Field(0.25, gt=0.0, le=1.0, description="radius of the vertical "
                                "cylinder standing in for another human, m")
    see_humans: bool = Field(True, description="other humans block rays (EgoGen: yes)")


class RewardWeights(StrictModel):
    """Weights of the EgoGen reward terms (EgoGen's published values)."""

    foot_skating: float = 0.3
    floor_contact: float = 0.1
    face_target: float = 0.1
    look_at_target: float = 0.3
    progress: float = 1.0
    success: float = 0.5
    penetration: float = 1.0
    pose_prior: float = 0.1


class RewardSection(StrictModel):
    """Reward weights, thresholds and the two-stage penetration rule."""

    weights: RewardWeights = Field(default_factory=RewardWeights)
    skating_threshold: float = Field(0.075, ge=0.0, description="foot speed allowed before "
                                     "skating costs, m/s")
    contact_height: float = Field(0.02, ge=0.0, description="target lowest-foot height, m")
    penetration_mode: Literal["soft", "strict"] = Field(
        "soft", description="soft: penalty only (pre-training); strict: also terminate at "
        ">= penetration_limit penetrating vertices in a frame (fine-tuning)")
    penetration_limit: int = Field(40, ge=1, description="strict mode threshold, vertices")
    penetration_vertices: int = Field(256, ge=16, le=10475, description="fixed subsample of "
                                      "non-foot body vertices tested against the scene SDF")
    variant: Literal["egogen", "per_progress"] = Field(
        "egogen", description="egogen: EgoGen's reward (per-step terms paid every step); "
        "per_progress: a deviation from EgoGen, the per-step terms paid per metre of "
        "progress, so the return is bounded by the route length (egosim.envs.rewards)")


class EpisodeSection(StrictModel):
    """Episode length (one step = one 20-frame primitive = 0.45 s of new motion)."""

    max_steps: int = Field(60, ge=1, le=100000, description="truncation step limit")
    end_outside: bool = Field(True, description="a human whose pelvis leaves the scene "
                              "(Scene.in_footprint false) ends its episode, end_reason "
                              "left_scene; false: it walks on (the motion prior passes "
                              "through walls, so it may come back in)")


class PriorSection(StrictModel):
    """The motion prior (the transition model)."""

    path: str | None = Field(None, description="checkpoint folder (cvae.pt, regressor.pt); "
                             "null: the shipped checkpoints")


class CameraSection(StrictModel):
    """Optional head cameras (``egosim.sensors.CameraSpec`` fields, one dict each), how the
    rig is mounted and how the other humans look in them.

    Observation per spec (key: its ``uuid``): rgb uint8 ``(H, W, 3)``, depth float32
    ``(H, W, 1)`` metres, semantic / instance int32 ``(H, W)``, normal float32
    ``(H, W, 3)``; ``info["camera_pose"]`` / ``info["camera_intrinsics"]`` hold each
    camera's camera-to-world pose (OpenCV axes) and ``K``.
    """

    specs: list[dict[str, Any]] = Field(default_factory=list, description="camera specs; "
                                        "empty: no images in the observation")
    mount: Literal["gaze", "head"] = Field(
        "gaze", description="gaze: the rig looks along the env's gaze (level, "
        "perpendicular to the eye line, as the ego-sensing rays); head: it turns and tilts "
        "with the SMPL-X head joint")
    other_humans: Literal["capsules", "bodies"] = Field(
        "bodies", description="how the head cameras draw the other humans: their posed "
        "SMPL-X bodies (as the EgoM2P clips) or capsules (the rays' cylinders, cheaper)")

    @field_validator("specs")
    @classmethod
    def _valid_specs(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from egosim.sensors.spec import CameraSpec

        uuids = set()
        for i, d in enumerate(value):
            try:
                spec = CameraSpec(**d)
            except Exception as exc:  # pydantic or TypeError: name the entry
                raise ValueError(f"cameras.specs[{i}] is not a valid CameraSpec: {exc}") from None
            if spec.uuid in uuids or spec.uuid in OBS_KEYS:
                raise ValueError(f"cameras.specs[{i}].uuid {spec.uuid!r} repeats another uuid "
                                 f"or an observation key ({', '.join(OBS_KEYS)})")
            if spec.motion_blur is not None:
                raise ValueError(f"cameras.specs[{i}].motion_blur: an env observation is one "
                                 "frame per step, without the camera velocity blur needs; "
                                 "remove motion_blur")
            uuids.add(spec.uuid)
        return value


class RenderSection(StrictModel):
    """The ``rgb_array`` third-person (top-down) view."""

    pixels_per_m: int = Field(40, ge=5, le=200, description="map scale")
    size: int = Field(256, ge=64, le=2048, description="square view size, pixels")


class LocomotionEnvConfig(StrictModel):
    """``egosim/EgoLocomotion-v0``: one human walks to a goal."""

    scene: SceneSection = Field(default_factory=SceneSection)
    goal: GoalSection = Field(default_factory=GoalSection)
    action: ActionSection = Field(default_factory=ActionSection)
    sensing: SensingSection = Field(default_factory=SensingSection)
    reward: RewardSection = Field(default_factory=RewardSection)
    episode: EpisodeSection = Field(default_factory=EpisodeSection)
    prior: PriorSection = Field(default_factory=PriorSection)
    cameras: CameraSection = Field(default_factory=CameraSection)
    render: RenderSection = Field(default_factory=RenderSection)


class CrowdSection(StrictModel):
    """How many humans share a scene and how far apart they start."""

    num_humans: int = Field(4, ge=2, le=64, description="humans per scene")
    min_separation: float = Field(1.0, gt=0.0, le=10.0, description="smallest start-start "
                                  "and goal-goal distance, m")


class CrowdEnvConfig(LocomotionEnvConfig):
    """``egosim/EgoCrowd-v0``: several humans, each with its own goal, in one scene."""

    crowd: CrowdSection = Field(default_factory=CrowdSection)


def crowd_config(env: LocomotionEnvConfig, crowd: CrowdSection | None = None
                 ) -> CrowdEnvConfig:
    """``env``'s sections with a ``crowd`` section (None: the default one): the EgoCrowd
    config of the same world. A :class:`CrowdEnvConfig` keeps its own crowd section unless
    ``crowd`` is given."""
    data = env.model_dump()
    if crowd is not None:
        data["crowd"] = crowd.model_dump()
    return CrowdEnvConfig.model_validate(data)


def locomotion_config(env: LocomotionEnvConfig) -> LocomotionEnvConfig:
    """``env`` without its crowd section (a :class:`CrowdEnvConfig` becomes the
    EgoLocomotion config of the same world); a :class:`LocomotionEnvConfig` is returned as
    it is."""
    if type(env) is LocomotionEnvConfig:
        return env
    return LocomotionEnvConfig.model_validate(env.model_dump(exclude={"crowd"}))
