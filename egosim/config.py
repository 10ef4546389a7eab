"""YAML configs: loading, ``key=value`` overrides and validation.

Every config file in ``configs/`` has one schema here (a pydantic model that forbids
unknown keys). :func:`load_config` reads the shipped default or a user file, applies
dotted ``key=value`` overrides, and validates; any problem is a :class:`ConfigError`
whose message names the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from egosim.config_base import StrictModel
from egosim.envs.scenes.specs import check_scene_spec
from egosim.paths import configs_dir

__all__ = [
    "ConfigError",
    "DemoConfig",
    "SceneConfig",
    "SceneJobConfig",
    "SCHEMAS",
    "apply_overrides",
    "check_seed_range",
    "format_validation_error",
    "load_config",
    "parse_overrides",
]

class ConfigError(ValueError):
    """A config file or override is malformed; the message names key, value and rule."""


def check_seed_range(name: str, value: tuple[int, int]) -> tuple[int, int]:
    """Return ``value`` if it is a half-open seed range ``[low, high)`` with
    ``0 <= low < high``; else ValueError naming the field ``name``."""
    if not 0 <= value[0] < value[1]:
        raise ValueError(f"{name} must be [low, high) with 0 <= low < high; got {value}")
    return value


class SceneConfig(StrictModel):
    """Which scene to build and how to derive its walkability and SDF.

    Units: metres.
    """

    spec: str = Field("procedural:apartment", description="scenes.load spec or mesh path")
    seed: int = Field(0, ge=0, description="generator seed for procedural scenes")
    up_axis: Literal["z", "y"] = Field("z", description="up axis of a mesh file")
    grid_resolution: float = Field(0.05, gt=0.0, le=0.10, description="walkability cell, m")
    body_radius: float = Field(0.25, gt=0.0, le=1.0, description="clearance radius, m")
    body_height: float = Field(1.8, gt=0.5, le=2.5, description="clearance height, m")

    @field_validator("spec")
    @classmethod
    def _valid_spec(cls, value: str) -> str:
        return check_scene_spec(value)


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


def _schemas() -> dict[str, type[BaseModel]]:
    from egosim.agents.config import EvalAgentConfig, TrainAgentConfig
    from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig
    from egosim.envs.motion.config import PriorVideoConfig, TrainPriorConfig

    return {"demo": DemoConfig, "scene": SceneJobConfig, "train_prior": TrainPriorConfig,
            "prior_video": PriorVideoConfig, "env_locomotion": LocomotionEnvConfig,
            "env_crowd": CrowdEnvConfig, "train_agent": TrainAgentConfig,
            "eval_agent": EvalAgentConfig}


SCHEMAS: dict[str, type[BaseModel]] = _schemas()

M = TypeVar("M", bound=BaseModel)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Parse ``["a.b=1", "c=text"]`` into ``{"a.b": 1, "c": "text"}`` (values as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
    return out


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted-key ``overrides`` set (nested dicts created)."""
    result = _deep_copy(data)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _section_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) section of ``model`` at ``loc``."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def format_validation_error(source: str, exc: ValidationError, model: type[BaseModel]) -> str:
    """A readable message for a pydantic error: each bad key, its value and the rule."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            allowed = _section_fields(model, tuple(err["loc"][:-1]))
            lines.append(f"  unknown key {key!r} (value {err.get('input')!r}); allowed keys "
                         f"here: {', '.join(allowed)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  key {key!r}: value {err.get('input')!r} is not allowed: {msg}")
    return "\n".join(lines)


def _resolve_path(name_or_path: str | os.PathLike[str]) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    shipped = configs_dir() / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    if path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"config file {str(path)!r} does not exist")
    names = sorted(p.stem for p in configs_dir().glob("*.yaml"))
    raise ConfigError(f"unknown config {str(name_or_path)!r}; shipped configs: {names}, "
                      "or give a path to a .yaml file")


def load_config(
    name_or_path: str | os.PathLike[str],
    overrides: list[str] | dict[str, Any] | None = None,
    schema: type[M] | None = None,
) -> M:
    """Load, override and validate a config.

    Args:
        name_or_path: a shipped config name (``"demo"``) or a path to a YAML file.
        overrides: ``["key.sub=value", ...]`` or an already parsed dotted-key dict.
        schema: the pydantic model to validate against; by default the schema registered
            for the shipped name (or for the file's stem).

    Raises:
        ConfigError: unreadable YAML, unknown key, or bad value (the message names them).
    """
    path = _resolve_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, got {type(data).__name__}")
    if overrides:
        parsed = parse_overrides(overrides) if isinstance(overrides, list) else overrides
        data = apply_overrides(data, parsed)
    model = schema or SCHEMAS.get(path.stem)
    if model is None:
        raise ConfigError(f"no schema for config {path.name}; known: {sorted(SCHEMAS)}")
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc, model)) from None
