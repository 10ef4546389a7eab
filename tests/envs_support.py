"""Shared helpers of the env tests: a motion-prior checkpoint and env overrides.

The env tests use the shipped checkpoints when they exist; otherwise (or with
``EGOSIM_TEST_PRIOR=untrained``) a checkpoint exported from an *untrained* EgoGen-sized prior
(C-VAE with random weights over synthetic-walk statistics; the regressor's zero-initialised
output layer returns an upright rest body at the markers' waist frame). It is built once into
the egosim cache (a few seconds) and is deterministic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from egosim.paths import cache_dir


def _untrained_prior() -> str:
    from egosim.envs.motion.config import TrainPriorConfig
    from egosim.envs.motion.prior import CVAE_FILE
    from egosim.envs.motion.train_prior import Trainer
    from egosim.envs.motion.training_data import synthetic_primitives

    folder = cache_dir("test_env_prior", "untrained-v1")
    if (folder / CVAE_FILE).is_file():
        return str(folder)
    data = synthetic_primitives(3, 80, seed=0)
    cfg = TrainPriorConfig(output_dir=str(folder / "run"), progress=False, tensorboard=False,
                           resume=False, num_seeds=8,
                           cvae={"hidden": 64, "mlp": [128, 64], "latent": 128},
                           regressor={"blocks": 2},
                           stage2={"steps": 0, "batch_size": 4, "num_primitives": 2})
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    Trainer(cfg, data, data.subset(np.arange(0))).export(tmp)
    for f in tmp.iterdir():
        f.replace(folder / f.name)
    tmp.rmdir()
    return str(folder)


def prior_path() -> str:
    """Checkpoint folder for env tests (see the module docstring)."""
    from egosim.envs.motion.prior import CVAE_FILE, REGRESSOR_FILE, checkpoint_dir

    choice = os.environ.get("EGOSIM_TEST_PRIOR", "")
    if choice and choice != "untrained":
        return choice
    shipped = checkpoint_dir()
    if choice != "untrained" and all((Path(shipped) / f).is_file()
                                     for f in (CVAE_FILE, REGRESSOR_FILE)):
        return str(shipped)
    return _untrained_prior()


def is_untrained(path: str) -> bool:
    """True for the untrained fallback checkpoint (its C-VAE barely moves the body)."""
    return "test_env_prior" in str(path)


def overrides(**extra) -> dict:
    """Small, fast env settings: a fixed procedural room, short episodes."""
    base = {"prior.path": prior_path(), "scene.spec": "procedural:apartment", "scene.seed": 3,
            "episode.max_steps": 8}
    base.update(extra)
    return base
