"""Schema of ``configs/generate.yaml``: ``egosim generate``, datasets of simulated clips.

:class:`GenerateConfig` is the one source of the defaults; the YAML documents them. A
dataset is ``clips`` clips of the clip config (``clip_config`` with ``clip_overrides``, a
:class:`~egosim.egom2p.config.ClipConfig`) written as WebDataset shards into
``output_dir`` (:mod:`egosim.egom2p.datasets.generate`). Shard ``k`` holds the first clips
of the clip builder ``ClipBuilder(seed=seed, worker=k)``, so the bytes depend on the keys
that define the content (:data:`CONTENT_KEYS` and the resolved clip config), never on
``workers``, ``backend`` or ``ray_address``. Unknown keys and bad values are errors that
name the key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from egosim.config import ConfigValueError, StrictModel

__all__ = ["CONTENT_KEYS", "GenerateConfig"]

#: The keys that define a dataset's bytes (with the resolved clip config); a folder made
#: with other values of these is refused.
CONTENT_KEYS: tuple[str, ...] = ("clips", "seed", "layout", "task", "shard_size", "tokens",
                                 "dataset_name")


class GenerateConfig(StrictModel):
    """``egosim generate``: a dataset of simulated clips (see the module docstring)."""

    output_dir: str = Field("outputs/datasets/egosim", description="dataset folder")
    clips: int = Field(1000, ge=1, le=1_000_000_000, description="clips in the dataset")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="base seed: shard k is "
                      "ClipBuilder(seed=seed, worker=k)")
    workers: int = Field(2, ge=1, le=4096, description="shards made at once (local "
                         "processes or Ray actors); the bytes do not depend on it")
    backend: Literal["local", "ray"] = Field("local", description="local: processes on "
                                             "this machine; ray: Ray actors")
    layout: Literal["clips", "egom2p"] = Field("clips", description="clips: one tar "
                                               "series, every key of a sample in it; "
                                               "egom2p: <modality>/<dataset>/shard-*.tar "
                                               "of tokens, keys aligned")
    task: Literal["clips", "hmr"] = Field("clips", description="clips: one sample per "
                                          "clip; hmr: one sample per video frame with "
                                          "the other humans' SMPL-X labels")
    shard_size: int = Field(1000, ge=1, le=1_000_000, description="samples per shard "
                            "(task=hmr: frames; a shard then holds shard_size // "
                            "video_frames clips, at least one)")
    tokens: bool = Field(False, description="add tokens_<modality> (the shipped "
                         "tokenizers); required by layout=egom2p")
    dataset_name: str = Field("egosim", description="<dataset> folder of layout=egom2p "
                              "and the dataset card's title")
    clip_config: str = Field("egom2p_clips", description="clip config: shipped name or "
                             "YAML path (schema ClipConfig)")
    clip_overrides: dict[str, Any] = Field(default_factory=dict, description="dotted "
                                           "clip config overrides, e.g. video_size: 128")
    ray_address: str | None = Field(None, description="backend=ray: null starts a local "
                                    "Ray instance; 'auto' joins the running cluster; or "
                                    "ray://host:port")
    ray_temp_dir: str | None = Field(None, description="backend=ray, local instance: "
                                     "Ray's session folder (a short path; null: Ray's "
                                     "default)")
    verify: Literal["sha256", "size"] = Field("sha256", description="how a rerun checks "
                                              "the finished shards: sha256 of every tar, or "
                                              "its size only (faster on huge datasets)")
    previews: int = Field(4, ge=0, le=1000, description="first clips written to "
                          "preview.mp4 (0: none)")
    progress: bool = Field(True, description="tqdm progress bar (clips, ETA)")

    @field_validator("dataset_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError(f"must be letters, digits, '-' or '_' (a folder name); got "
                             f"{value!r}")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> GenerateConfig:
        if self.layout == "egom2p" and not self.tokens:
            raise ConfigValueError(("layout", "tokens"), "layout=egom2p stores tokens: set "
                                   "tokens=true")
        if self.task == "hmr" and self.layout != "clips":
            raise ConfigValueError(("task", "layout"), "task=hmr writes frame samples: use "
                                   "layout=clips")
        if self.backend != "ray":
            for key in ("ray_address", "ray_temp_dir"):
                if getattr(self, key) is not None:
                    raise ConfigValueError((key, "backend"), f"{key} is used by backend=ray "
                                           f"only; got backend={self.backend}")
        return self
