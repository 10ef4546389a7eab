"""Schema of ``configs/train_prior.yaml`` (``egosim train-prior``): the motion prior's training.

Every hyper-parameter of the C-VAE (stage 1 and the stage-2 rollout fine-tuning) and of the
markers -> SMPL-X regressor lives here, CleanRL-style; unknown keys and bad values are errors.
The defaults are what trained the shipped checkpoints (``envs/motion/checkpoints/*.md``) and
what ``configs/train_prior.yaml`` documents. Units: metres, radians, steps are optimiser steps.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from egosim.config import ConfigValueError, StrictModel

__all__ = ["TrainPriorConfig", "DataSection", "CVAESection", "StageSection", "Stage2Section",
           "RegressorSection"]


class DataSection(StrictModel):
    """Where the primitives come from."""

    source: Literal["default", "npz", "synthetic"] = Field(
        "default", description="default: the shipped DeepMimic clips, augmented (data side's "
        "default_dataset, cached); npz: a primitive file (PrimitiveDataset.save); synthetic: "
        "procedural walking (tests, smoke runs)")
    path: str | None = Field(None, description="primitive .npz (source=npz)")
    holdout: float = Field(0.15, ge=0.0, lt=1.0, description="fraction of clips held out")
    synthetic_clips: int = Field(6, ge=2, le=200, description="clips (source=synthetic)")
    synthetic_frames: int = Field(120, ge=40, le=4000, description="frames per clip")

    @model_validator(mode="after")
    def _path_for_npz(self) -> DataSection:
        if self.source == "npz" and not self.path:
            raise ConfigValueError("path", "path must name a primitive .npz when source is "
                                   "'npz'")
        return self


class CVAESection(StrictModel):
    """C-VAE sizes and loss weights (EgoGen's published architecture)."""

    hidden: int = Field(256, ge=8, le=2048, description="GRU width")
    mlp: list[int] = Field(default_factory=lambda: [512, 256], description="posterior MLP")
    latent: int = Field(128, ge=1, le=1024, description="latent size (RL action size)")
    diff_weight: float = Field(3.0, ge=0.0, description="weight of the frame-difference L1")
    kl_weight: float = Field(0.001, ge=0.0, description="weight of the robust KL")


class StageSection(StrictModel):
    """One optimisation stage of the C-VAE; the defaults are stage 1's (single primitives,
    posterior reconstruction)."""

    steps: int = Field(600, ge=0, description="optimiser steps")
    batch_size: int = Field(128, ge=1, le=8192, description="primitives (or sequences) a step")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate")
    num_primitives: int = Field(10, ge=2, le=50,
                                description="stage 2: primitives per rollout sequence")


class Stage2Section(StageSection):
    """Stage 2: rollouts of ``num_primitives`` primitives fed back into themselves."""

    steps: int = Field(60, ge=0, description="optimiser steps")
    batch_size: int = Field(16, ge=1, le=8192, description="sequences a step")
    lr: float = Field(1e-4, gt=0.0, le=1.0, description="Adam learning rate")


class RegressorSection(StrictModel):
    """Markers -> SMPL-X regressor sizes, sampling and optimisation."""

    width: int = Field(128, ge=8, le=2048, description="MLP width")
    blocks: int = Field(10, ge=1, le=64, description="residual blocks")
    iterations: int = Field(3, ge=1, le=10, description="refinement iterations")
    steps: int = Field(600, ge=0, description="optimiser steps")
    batch_size: int = Field(256, ge=1, le=8192, description="bodies a step")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="Adam learning rate")
    pose_noise: float = Field(0.15, ge=0.0, le=1.0, description="pose perturbation std, rad")
    shape_std: float = Field(1.0, ge=0.0, le=3.0, description="random betas std")
    marker_noise: float = Field(0.005, ge=0.0, le=0.1, description="input marker noise, m")
    param_weight: float = Field(0.1, ge=0.0, description="weight of the parameter loss")


class TrainPriorConfig(StrictModel):
    """``egosim train-prior``: stage 1, stage 2 and the regressor, then export."""

    seed: int = Field(0, ge=0, description="seed of data order, sampling and init")
    output_dir: str = Field("outputs/train_prior", description="checkpoints and logs")
    export_dir: str | None = Field(None, description="write cvae.pt/regressor.pt here at the end")
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints")
    log_every: int = Field(50, ge=1, description="steps between TensorBoard scalars")
    tensorboard: bool = Field(True, description="write TensorBoard logs")
    progress: bool = Field(True, description="show a tqdm progress bar")
    resume: bool = Field(True, description="continue from the latest checkpoint in output_dir")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")
    blend: float = Field(0.5, ge=0.0, le=1.0, description="decoded weight in the rollout blend")
    evaluate: bool = Field(True, description="measure exported models, write model cards")
    eval_primitives: int = Field(100, ge=1, le=1000, description="rollout length for metrics")
    eval_batch: int = Field(8, ge=2, le=256, description="rollouts measured")
    num_seeds: int = Field(256, ge=1, le=10000, description="seed motions kept in the checkpoint")
    data: DataSection = Field(default_factory=DataSection)
    cvae: CVAESection = Field(default_factory=CVAESection)
    stage1: StageSection = Field(default_factory=StageSection)
    stage2: Stage2Section = Field(default_factory=Stage2Section)
    regressor: RegressorSection = Field(default_factory=RegressorSection)
