"""Schema of ``configs/egom2p_tokenizer.yaml`` (``egosim egom2p train-tokenizer``).

One file for the four tokenizers: ``modality`` picks the section that is trained (``rgb``,
``depth``, ``camera`` or ``gaze``); each section holds that tokenizer's architecture
(``model``, stored in its checkpoint) and its optimisation. The defaults are what trained
the shipped checkpoints (``egom2p/tokenizers/checkpoints/<name>.md``). Units: steps are
optimiser steps, sizes are pixels, depths metres.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from egosim.config import ConfigValueError, SeedRange, StrictModel

__all__ = [
    "ClipDataSection",
    "SequenceModelSection",
    "SequenceTrainSection",
    "TrainTokenizerConfig",
    "VideoModelSection",
    "VideoTrainSection",
]

TOKENIZER_NAMES = ("rgb", "depth", "camera", "gaze")


class VideoModelSection(StrictModel):
    """Causal video autoencoder with FSQ (4x in time, 8x8 in space), one design for RGB
    and depth (:mod:`egosim.egom2p.tokenizers.video`)."""

    stem_width: int = Field(48, ge=4, le=512, description="channels at 1/4 resolution")
    width: int = Field(128, ge=8, le=1024, description="channels at the latent resolution")
    blocks: int = Field(2, ge=0, le=16, description="causal (2+1)-D residual blocks at the "
                        "latent resolution, encoder and decoder each")
    frame_blocks: int = Field(1, ge=0, le=8, description="residual blocks at 1/4 "
                              "resolution per frame, encoder and decoder each")
    levels: list[int] = Field(default_factory=lambda: [8, 8, 8, 5, 5, 5],
                              description="FSQ levels (codes = their product)")
    decoder_stem_width: int | None = Field(None, ge=4, le=512, description="decoder "
                                           "channels at 1/4 resolution (null: stem_width)")
    decoder_width: int | None = Field(None, ge=8, le=1024, description="decoder channels "
                                      "at the latent resolution (null: width)")
    decoder_blocks: int | None = Field(None, ge=0, le=16, description="decoder causal "
                                       "residual blocks (null: blocks)")
    decoder_frame_blocks: int | None = Field(None, ge=0, le=8, description="decoder "
                                             "residual blocks at 1/4 resolution (null: "
                                             "frame_blocks)")
    depth_near_m: float = Field(0.05, gt=0.0, description="depth: smallest range-token "
                                "depth (metres)")
    depth_far_m: float = Field(100.0, gt=0.0, description="depth: largest range-token depth")

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if not v or any(level < 2 for level in v):
            raise ValueError(f"levels must be a non-empty list of integers >= 2, got {v}")
        return v

    def decoder_sizes(self) -> tuple[int, int, int, int]:
        """The decoder's ``(stem_width, width, blocks, frame_blocks)``: its own where set,
        else the encoder's. A larger decoder over the same encoder and FSQ keeps every token
        id (``train_parts: decoder``)."""
        pick = [(self.decoder_stem_width, self.stem_width), (self.decoder_width, self.width),
                (self.decoder_blocks, self.blocks),
                (self.decoder_frame_blocks, self.frame_blocks)]
        s, w, b, f = (own if own is not None else enc for own, enc in pick)
        return s, w, b, f

    def encoder_config(self) -> dict[str, Any]:
        """The keys that fix the encoder, the quantiser and so the token ids."""
        return self.model_dump(mode="json", exclude={"decoder_stem_width", "decoder_width",
                                                     "decoder_blocks",
                                                     "decoder_frame_blocks"})

    @model_validator(mode="after")
    def _range(self) -> VideoModelSection:
        if self.depth_far_m <= self.depth_near_m:
            raise ConfigValueError(("depth_near_m", "depth_far_m"), "depth_far_m must exceed "
                                   f"depth_near_m, got {self.depth_near_m} and "
                                   f"{self.depth_far_m}")
        return self


class SequenceModelSection(StrictModel):
    """A 60-sample sequence tokenizer (:mod:`egosim.egom2p.tokenizers.sequence`): a Transformer
    autoencoder (``quantizer`` vq or fsq) or a code fitted to the training clips: for the
    camera a linear code (pca), for gaze a closed-loop predictive code (dpcm)."""

    width: int = Field(128, ge=8, le=1024, description="Transformer width")
    layers: int = Field(3, ge=1, le=24, description="Transformer blocks, encoder and "
                        "decoder each")
    heads: int = Field(4, ge=1, le=32, description="attention heads")
    mlp_ratio: float = Field(4.0, gt=0.0, le=8.0, description="MLP width / width")
    patch: int = Field(2, ge=1, le=6, description="samples per token (Conv1d kernel = "
                       "stride); 60 / patch tokens")
    codebook_size: int = Field(256, ge=2, le=65536, description="VQ codes (vocabulary)")
    quantizer: Literal["vq", "fsq", "pca", "dpcm"] = Field(
        "fsq", description="vq: learnt codebook (the keys below); fsq: finite scalar "
        "quantisation with fsq_levels (product = codebook_size); pca (camera only): fitted "
        "principal directions, one coefficient a token with codebook_size Lloyd-Max levels; "
        "dpcm (gaze only): each token a k-means code of its samples' offsets from the last "
        "reconstructed sample (pca and dpcm: no Transformer; steps must be 0)")
    fsq_levels: list[int] = Field(default_factory=lambda: [256], min_length=1, max_length=8,
                                  description="fsq: levels per latent dimension of a token")
    code_dim: int = Field(32, ge=2, le=512, description="vq: code width")
    cosine: bool = Field(True, description="cosine-similarity codes (l2-normalised)")
    decay: float = Field(0.99, gt=0.0, lt=1.0, description="EMA decay of the codebook")
    dead_code_threshold: float = Field(2.0, ge=0.0, description="codes whose EMA cluster "
                                       "size falls below this are replaced by batch vectors")
    commitment_weight: float = Field(0.25, ge=0.0, description="commitment loss weight")
    kmeans_init: bool = Field(True, description="initialise the codebook by k-means on the "
                              "first batch")
    pca_translation_scale: float = Field(8.0, gt=0.0, le=1000.0, description="pca: units "
                                         "of a metre of translation in the fitted vector "
                                         "(rotation-column entries are unitless)")
    dpcm_lookahead: int = Field(4, ge=1, le=256, description="dpcm: nearest codes of a "
                                "token tried against the best code of the next (1: greedy)")
    dpcm_fit_rounds: int = Field(3, ge=0, le=50, description="dpcm: refits of the offset "
                                 "codebook to the offsets the closed-loop encoder sees")

    @model_validator(mode="after")
    def _heads_divide(self) -> SequenceModelSection:
        if self.width % self.heads:
            raise ConfigValueError(("width", "heads"), f"width must be a multiple of heads, "
                                   f"got {self.width} and {self.heads}")
        if 60 % self.patch:
            raise ConfigValueError("patch", f"patch must divide the 60 samples, got "
                                   f"{self.patch}")
        if self.quantizer == "fsq" and math.prod(self.fsq_levels) != self.codebook_size:
            raise ConfigValueError(("fsq_levels", "codebook_size"), f"the product of "
                                   f"fsq_levels {self.fsq_levels} must equal codebook_size "
                                   f"{self.codebook_size}")
        if any(v < 2 for v in self.fsq_levels):
            raise ConfigValueError("fsq_levels", f"every level must be >= 2, got "
                                   f"{self.fsq_levels}")
        return self


class _TrainSection(StrictModel):
    """Optimisation shared by both kinds: AdamW, linear warm-up, cosine decay."""

    steps: int = Field(2000, ge=0, description="optimiser steps")
    batch_size: int = Field(8, ge=1, le=4096, description="clips a step")
    lr: float = Field(2e-3, gt=0.0, le=1.0, description="peak AdamW learning rate")
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0, description="final lr / peak lr")
    warmup_steps: int = Field(50, ge=0, description="linear warm-up steps")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    grad_clip: float = Field(1.0, ge=0.0, description="gradient-norm clip (0 = none)")
    init_from: str | None = Field(None, description="start from this tokenizer checkpoint "
                                  "(a path, or 'shipped': the shipped one); its architecture "
                                  "must be the model section's (null: random init)")
    train_parts: Literal["all", "decoder"] = Field(
        "all", description="decoder: only the decoder learns, the encoder and quantiser "
        "stay as init_from has them, so every clip keeps its token ids (a token cache and a "
        "model trained on them stay valid); all: the whole autoencoder")

    @model_validator(mode="after")
    def _decoder_needs_a_start(self) -> _TrainSection:
        if self.train_parts == "decoder" and self.init_from is None:
            raise ConfigValueError(("train_parts", "init_from"), "train_parts=decoder keeps "
                                   "the encoder of a trained tokenizer: set init_from (a "
                                   "checkpoint path or 'shipped')")
        return self


class VideoTrainSection(_TrainSection):
    """A video tokenizer's training (rgb or depth)."""

    model: VideoModelSection = Field(default_factory=VideoModelSection)
    mse_weight: float = Field(1.0, ge=0.0, description="weight of the MSE of the "
                              "normalised video")
    l1_weight: float = Field(0.0, ge=0.0, description="weight of its L1 (for depth: the "
                             "mean log-depth error)")
    abs_rel_weight: float = Field(0.0, ge=0.0, description="depth only: weight of the AbsRel "
                                  "of the metric decode on valid pixels")
    flip: bool = Field(True, description="random horizontal flips of training clips")


class SequenceTrainSection(_TrainSection):
    """A sequence tokenizer's training (camera or gaze)."""

    model: SequenceModelSection = Field(default_factory=SequenceModelSection)
    steps: int = Field(3000, ge=0, description="optimiser steps")
    batch_size: int = Field(64, ge=1, le=4096, description="clips a step")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="peak AdamW learning rate")
    translation_weight: float = Field(1.0, gt=0.0, le=100.0, description="camera only, "
                                      "fsq / vq: MSE weight of the 3 translation dims (the "
                                      "rotation dims weigh 1); pca uses "
                                      "pca_translation_scale")

    @model_validator(mode="after")
    def _fitted_codes_take_no_steps(self) -> SequenceTrainSection:
        q = self.model.quantizer
        if q in ("pca", "dpcm") and self.steps:
            raise ConfigValueError("steps", f"quantizer {q} is fitted to the training clips, "
                                   f"not trained: steps must be 0, got {self.steps}")
        return self


class ClipDataSection(StrictModel):
    """Where the training clips come from."""

    source: Literal["cache", "synthetic"] = Field(
        "cache", description="cache: stream clips made once into cache_dir, shared by the "
        "four tokenizers; synthetic: random clips of the layout (tests)")
    cache_dir: str = Field("runs/egom2p/clip_cache", description="clip cache folder")
    train_clips: int = Field(3000, ge=1, description="training clips")
    holdout_clips: int = Field(128, ge=1, description="held-out clips (other streams and "
                               "scenes)")
    video_size: int = Field(64, ge=8, le=1024, description="square frame side, pixels "
                            "(multiple of 8); replaces the clip config's video_size")
    seed: int = Field(0, ge=0, description="chunk c's stream seed: seed * 10**6 + c "
                      "(held-out: + 500000)")
    chunk_clips: int = Field(100, ge=1, le=100000, description="consecutive clips of one "
                             "stream per cache chunk (the unit of parallel and resumed builds)")
    holdout_chunk_clips: int = Field(16, ge=1, le=100000, description="the same for the "
                                     "held-out clips (smaller: more streams, more variety)")
    holdout_scene_seeds: SeedRange = Field((1000, 1200), description="[low, high) scene "
                                           "seeds of the held-out clips (training: the clip "
                                           "config's)")
    clip_config: str | None = Field(None, description="clip config of the stream (shipped "
                                    "name or YAML path; null: the clip schema's defaults)")
    clip_overrides: dict[str, Any] = Field(default_factory=dict, description="dotted clip "
                                           "config overrides")
    workers: int = Field(1, ge=1, le=64, description="processes that build cache chunks")

    @field_validator("video_size")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"video_size must be a multiple of 8, got {value}")
        return value


class TrainTokenizerConfig(StrictModel):
    """``egosim egom2p train-tokenizer``: train one tokenizer (``modality``) on raw clips."""

    modality: Literal["rgb", "depth", "camera", "gaze"] = Field(
        "rgb", description="the tokenizer to train; its section below configures it")
    data: ClipDataSection = Field(default_factory=ClipDataSection)
    rgb: VideoTrainSection = Field(default_factory=VideoTrainSection)
    depth: VideoTrainSection = Field(default_factory=lambda: VideoTrainSection(
        abs_rel_weight=1.0))
    camera: SequenceTrainSection = Field(default_factory=lambda: SequenceTrainSection(
        steps=0, translation_weight=4.0, model=SequenceModelSection(quantizer="pca")))
    gaze: SequenceTrainSection = Field(default_factory=lambda: SequenceTrainSection(
        steps=0, model=SequenceModelSection(width=96, layers=2, quantizer="dpcm")))
    output_dir: str = Field("runs/egom2p/tokenizers", description="runs go to "
                            "output_dir/<modality> (checkpoints, tensorboard, summary.json)")
    export_dir: str | None = Field(None, description="write <modality>.pt and its model card "
                                   "<modality>.md here after training (none: no export)")
    seed: int = Field(0, ge=0, description="seed of initialisation and batch order")
    threads: int = Field(1, ge=1, le=256, description="torch CPU threads")
    checkpoint_every: int = Field(200, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, le=1000, description="newest checkpoints kept")
    log_every: int = Field(10, ge=1, description="steps between TensorBoard scalars")
    tensorboard: bool = Field(True, description="write TensorBoard scalars")
    progress: bool = Field(True, description="show a tqdm progress bar")
    resume: bool = Field(True, description="continue from the newest good checkpoint")
    evaluate: bool = Field(True, description="measure the export on the held-out clips and "
                           "write the model card")
    eval_batch: int = Field(16, ge=1, le=4096, description="clips per evaluation batch")

    def section(self) -> VideoTrainSection | SequenceTrainSection:
        """The training section of :attr:`modality`."""
        return getattr(self, self.modality)
