"""Schema of ``configs/egom2p_model.yaml`` (``egosim egom2p train``): the EgoM2P model.

:class:`TrainModelConfig` is the one source of the trainer's defaults
(:mod:`egosim.egom2p.model.train`); the YAML documents them, and
``configs/egom2p_model_base.yaml`` is EgoM2P's size on a GPU. Units: steps are optimiser
steps, budgets are tokens per sample, sizes pixels, times seconds.

Two options leave the defaults' behaviour untouched when off: ``roles`` (every modality
``both`` by default; ``input`` or ``target`` fix a modality to one side of the masks, for a
single-task specialist such as ``configs/egom2p_depth_specialist.yaml``) and the stream's
replay buffer ``data.replay_clips`` (0: off; see :mod:`egosim.egom2p.model.train`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from egosim.config import ConfigValueError, StrictModel
from egosim.egom2p.config import CLIP_MODALITIES
from egosim.egom2p.model.transformer import POSITION_SCALE

__all__ = ["DataSection", "OptimSection", "StreamSection", "TrainModelConfig"]

Role = Literal["both", "input", "target"]
"""A modality's role in the training masks (:data:`egosim.egom2p.model.masking.ROLES`):
input and target tokens (``both``), input tokens only (``input``: never predicted) or target
tokens only (``target``: never an input)."""


class OptimSection(StrictModel):
    """AdamW with linear warm-up, then cosine decay to ``min_lr``."""

    lr: float = Field(1e-3, gt=0.0, le=1.0, description="peak learning rate")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas")
    weight_decay: float = Field(0.05, ge=0.0, le=10.0, description="AdamW weight decay "
                                "(not on norms, embeddings of modality and mask tokens)")
    warmup_steps: int = Field(200, ge=0, description="linear warm-up steps")
    min_lr: float = Field(1e-5, ge=0.0, le=1.0, description="learning rate at the end of "
                          "the decay")
    decay_steps: int = Field(0, ge=0, description="step at which the cosine reaches min_lr "
                             "(0: the run's steps); fix it to stop and extend a run without "
                             "changing its schedule")
    grad_clip: float = Field(1.0, ge=0.0, description="gradient-norm clip (0: none)")

    @field_validator("betas")
    @classmethod
    def _betas(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in v):
            raise ValueError(f"betas must be in [0, 1), got {list(v)}")
        return v

    @model_validator(mode="after")
    def _min_below_peak(self) -> OptimSection:
        if self.min_lr > self.lr:
            raise ConfigValueError(("min_lr", "lr"), f"min_lr ({self.min_lr}) must not "
                                   f"exceed lr ({self.lr})")
        return self


class StreamSection(StrictModel):
    """The live clip stream (``data.source: stream``): a tokenized ``SimStream``."""

    clip_config: str | None = Field("egom2p_clips", description="clip config (shipped name "
                                    "or YAML path; null: the clip schema's defaults)")
    clip_overrides: dict[str, Any] = Field(default_factory=dict, description="dotted clip "
                                           "config overrides")
    num_workers: int = Field(2, ge=0, le=64, description="DataLoader worker processes "
                             "(0: clips made in the training process)")
    seed: int = Field(0, ge=0, description="stream seed; rank r of a DDP run uses seed + "
                      "1000 r")
    drop_depth_fraction: float = Field(0.0, ge=0.0, le=1.0, description="fraction of clips "
                                       "(of any source) whose depth is marked unavailable "
                                       "(the missing-modality case); drawn per clip")


class DataSection(StrictModel):
    """Where the token batches come from."""

    source: Literal["stream", "cache", "synthetic"] = Field(
        "stream", description="stream: live SimStream clips, tokenized; cache: clips in "
        "cache_dir (token .npz, or raw clips tokenized once); synthetic: random tokens "
        "(tests, benchmarks)")
    cache_dir: str = Field("runs/egom2p/clip_cache/train", description="folder of clip "
                           ".npz files (tokens_<modality> entries, or raw clips)")
    cache_clips: int = Field(0, ge=0, description="clips read from cache_dir (0: all)")
    replay_clips: int = Field(0, ge=0, le=10_000_000, description="source stream: a replay "
                              "buffer of the newest this many tokenized clips, filled by a "
                              "background thread, each batch drawn from it (0: off, every "
                              "clip used once; at least batch_size)")
    replay_reuse: float = Field(4.0, ge=0.0, le=1_000_000.0, description="with replay: "
                                "clips consumed per clip streamed; > 0: fixed schedule, exact "
                                "and resumable, the learner waits only when the stream is "
                                "slower than that; 0: never wait once batch_size clips are "
                                "in, not reproducible, a resume starts a fresh buffer")


class TrainModelConfig(StrictModel):
    """``egosim egom2p train``: train the EgoM2P model (see :mod:`egosim.egom2p.model.train`)."""

    size: Literal["tiny", "small", "base"] = Field("small", description="model size "
                                                   "(egosim.egom2p.model.SIZES)")
    video_size: int = Field(64, ge=8, le=1024, description="square frame side of the "
                            "tokenized clips, pixels (multiple of 8)")
    modalities: list[str] = Field(default_factory=lambda: list(CLIP_MODALITIES),
                                  description="modalities the model learns")
    roles: dict[str, Role] = Field(default_factory=lambda: dict.fromkeys(CLIP_MODALITIES,
                                                                         "both"),
                                   description="modality -> both, input (never a target) or "
                                   "target (never an input); a modality not listed: both")
    video_head: Literal["factorized", "full"] = Field(
        "factorized", description="video token head: factorized over the 6 FSQ digits "
        "(tied), or the full 64,000-way tied softmax (EgoM2P's; about 10x slower on a CPU)")
    position_scale: float = Field(
        POSITION_SCALE, gt=0.0, le=10.0, description="factor of the fixed sin-cos position "
        "tables (Architecture.position_scale): 1.0 lets them outweigh the token embeddings "
        "35 : 1")
    position_table: Literal["sincos", "fitted", "learned"] = Field(
        "sincos", description="position tables (Architecture.position_table): sincos "
        "(4M's, temperature 10000), fitted (sin-cos with temperatures fitted to each grid "
        "axis) or learned (trained, initialised as fitted)")
    ordinal_head: list[str] = Field(default_factory=list, description="learned sequence "
                                    "modalities whose token ids are ordinal bins (the "
                                    "camera's pca code) to embed with an "
                                    "OrdinalTokenEmbedding (a per-id table plus smooth "
                                    "features of the id; tied logits); []: plain tables")
    input_budget: int = Field(128, ge=1, le=100_000, description="input tokens per sample")
    target_budget: int = Field(128, ge=1, le=100_000, description="target tokens per "
                               "sample")
    alphas: list[float] = Field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0],
                                description="symmetric Dirichlet concentrations (mixture)")
    task_fraction: float = Field(0.0, ge=0.0, le=1.0, description="fraction of samples "
                                 "masked as one of the decoding tasks (all of its inputs in, "
                                 "its target out; egosim.egom2p.model.masking) instead of by "
                                 "the Dirichlet draws; 0: EgoM2P's scheme alone")
    ordinal_smoothing: dict[str, float] = Field(
        default_factory=lambda: {"camera": 4.0}, description="per modality whose token ids "
        "are ordinal bins (the camera's pca code): the standard deviation, in ids, of a "
        "discretised Gaussian target around the true id (cross-entropy to it; nearby bins "
        "earn credit); absent or 0: one-hot targets; a modality not learned is ignored")
    token_weighting: dict[str, float] = Field(
        default_factory=dict, description="per modality whose tokens are coefficients of a "
        "linear code (the camera's pca code): beta in [0, 1]; its per-token cross-entropies "
        "are averaged with weights (1 - beta) + beta * K * share, share = the token's share "
        "of the code's variance (mean weight 1); absent or 0: the plain mean")
    optim: OptimSection = Field(default_factory=OptimSection)
    steps: int = Field(6000, ge=0, description="optimiser steps")
    batch_size: int = Field(16, ge=1, le=65536, description="clips a step (per process)")
    bf16: Literal["auto", True, False] = Field("auto", description="bf16 autocast; auto: on "
                                               "a CUDA device that supports it, else off")
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda or "
                        "cuda:N")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")
    seed: int = Field(0, ge=0, description="seed of initialisation, masks and batch order")
    data: DataSection = Field(default_factory=DataSection)
    stream: StreamSection = Field(default_factory=StreamSection)
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, le=1000, description="newest checkpoints kept")
    log_every: int = Field(10, ge=1, description="steps between TensorBoard scalars")
    resume: bool = Field(True, description="continue from the newest good checkpoint")
    init: str | None = Field(None, description="fine-tune: start from the weights of this "
                             "model file (an export such as egom2p/model/checkpoints/"
                             "small.pt, or a training checkpoint) of the config's "
                             "architecture; optimiser, schedule and step start fresh; a "
                             "checkpoint to resume in output_dir comes first (null: random "
                             "initialisation)")
    tensorboard: bool = Field(True, description="write TensorBoard scalars")
    progress: bool = Field(True, description="show a tqdm progress bar")
    output_dir: str = Field("runs/egom2p/model", description="checkpoints, tensorboard, "
                            "summary.json")
    export_dir: str | None = Field(None, description="write <size>.pt and its model card "
                                   "<size>.md here at the end (null: none)")

    @field_validator("modalities")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [m for m in value if m not in CLIP_MODALITIES]
        if bad or not value or len(set(value)) != len(value):
            raise ValueError(f"modalities must be distinct names of {', '.join(CLIP_MODALITIES)}"
                             f", at least one; got {value}")
        return value

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [m for m in value if m not in CLIP_MODALITIES]
        if bad:
            raise ValueError(f"roles names unknown modalities {bad}; known: "
                             f"{', '.join(CLIP_MODALITIES)}")
        return {m: value.get(m, "both") for m in CLIP_MODALITIES}

    def learned_roles(self) -> dict[str, str] | None:
        """The roles of the learned modalities (``modalities`` order), or None when every
        one is ``both`` (the masks of the plain scheme)."""
        roles = {m: self.roles.get(m, "both") for m in self.modalities}
        return None if all(r == "both" for r in roles.values()) else roles

    @field_validator("alphas")
    @classmethod
    def _alphas(cls, value: list[float]) -> list[float]:
        if not value or any(a <= 0 for a in value):
            raise ValueError(f"alphas must be a non-empty list of positive numbers, got {value}")
        return value

    @field_validator("video_size")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"video_size must be a multiple of 8, got {value}")
        return value

    @model_validator(mode="after")
    def _roles_and_replay(self) -> TrainModelConfig:
        stray = [m for m, r in self.roles.items() if r != "both" and m not in self.modalities]
        if stray:
            raise ConfigValueError(tuple(f"roles.{m}" for m in stray),
                                   f"{', '.join(stray)} not in modalities {self.modalities}: "
                                   "only a learned modality takes a role other than both")
        roles = {m: self.roles[m] for m in self.modalities}
        for side, other in (("input", "target"), ("target", "input")):
            if all(r == other for r in roles.values()):
                raise ConfigValueError("roles", f"no learned modality can be {side}: every one "
                                       f"of {self.modalities} is {other}-only")
        d = self.data
        if d.replay_clips and d.source != "stream":
            raise ConfigValueError(("data.replay_clips", "data.source"), "the replay buffer "
                                   f"is for data.source=stream, got {d.source!r} (set "
                                   "data.replay_clips=0)")
        if 0 < d.replay_clips < self.batch_size:
            raise ConfigValueError(("data.replay_clips", "batch_size"), "the replay buffer "
                                   f"({d.replay_clips} clips) must hold at least a batch "
                                   f"({self.batch_size} clips)")
        return self

    @model_validator(mode="after")
    def _per_modality_values_in_range(self) -> TrainModelConfig:
        for key, values, top, unit in (("ordinal_smoothing", self.ordinal_smoothing, 1000.0,
                                        " ids"),
                                       ("token_weighting", self.token_weighting, 1.0, "")):
            for m, v in values.items():
                if m not in CLIP_MODALITIES:
                    raise ConfigValueError(f"{key}.{m}", f"{m!r} is not a modality "
                                           f"({', '.join(CLIP_MODALITIES)})")
                if not 0.0 <= v <= top:
                    raise ConfigValueError(f"{key}.{m}", f"{key}.{m} must be in [0, {top:g}]"
                                           f"{unit}, got {v}")
        return self

    @model_validator(mode="after")
    def _ordinal_head_of_learned_sequences(self) -> TrainModelConfig:
        from egosim.egom2p.modalities import modality_info

        for m in self.ordinal_head:
            if m not in self.modalities or modality_info(m).kind == "video":
                seq = [x for x in self.modalities if modality_info(x).kind != "video"]
                raise ConfigValueError("ordinal_head", f"ordinal_head: {m!r} is not a learned "
                                       f"sequence modality ({', '.join(seq) or 'none'})")
        return self

    @model_validator(mode="after")
    def _budget_leaves_targets(self) -> TrainModelConfig:
        from egosim.egom2p.modalities import modality_info

        total = sum(modality_info(m, self.video_size, self.video_size).num_tokens
                    for m in self.modalities)
        if self.input_budget >= total:
            raise ConfigValueError("input_budget", f"input_budget ({self.input_budget}) must "
                                   f"be below the {total} tokens of a clip of "
                                   f"{', '.join(self.modalities)} at video_size "
                                   f"{self.video_size}, or no token is left as a target")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        ok = value in ("auto", "cpu", "cuda") or (value.startswith("cuda:")
                                                  and value[5:].isdigit())
        if not ok:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value
