"""Train the motion prior: C-VAE stage 1, stage 2 (rollout fine-tuning), then the regressor.

Read top to bottom (CleanRL style); every hyper-parameter is in ``configs/train_prior.yaml``
(:class:`egosim.envs.motion.config.TrainPriorConfig`). Entry point: :func:`run` (``egosim
train-prior``). One global step counter runs through three phases::

    [0, S1)              stage 1: posterior reconstruction of single primitives
    [S1, S1 + S2)        stage 2: rollouts of K primitives fed back into themselves
    [S1 + S2, S1+S2+SR)  regressor on body-model samples

Determinism: the batch of step ``s`` is drawn from ``numpy.random.default_rng([seed, phase,
s])`` and the torch noise of that step from a ``torch.Generator`` seeded from it, so the data
order is a function of ``(seed, step)``; a checkpoint (models, optimisers, step) therefore
resumes to exactly the bytes of an uninterrupted run. Checkpoints go to
``output_dir/checkpoints/step_XXXXXXX.pt`` every ``checkpoint_every`` steps and on exit
(also on Ctrl-C and SIGTERM); the final models are exported as ``cvae.pt`` and ``regressor.pt``.
Every file is written atomically (:mod:`egosim.atomic_io`): a kill mid-save leaves the
previous checkpoints intact. A resumed run loads the newest checkpoint that reads back; a
bad one (truncated, zeroed: written by something else or damaged later) is reported in one
line and moved aside to ``<name>.bad``, and the next older one is used.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.atomic_io import exit_on_sigterm, newest_good_checkpoint, torch_save, write_json
from egosim.envs.humans.marker_set import MARKER_NAMES
from egosim.envs.motion.canonical_markers import MarkerJoints, to_canonical, to_world
from egosim.envs.motion.config import TrainPriorConfig
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix
from egosim.envs.motion.training_data import (
    PrimitiveSet,
    clip_sequences,
    from_dataset,
    load_primitives,
    synthetic_primitives,
)

from .body_layer import BodyLayer
from .cvae import CVAEConfig, MarkerCVAE, cvae_loss
from .metrics import data_reference
from .prior import CVAE_FILE, REGRESSOR_FILE
from .regressor import MarkerRegressor, RegressorConfig, pose_bodies, regressor_loss, sample_bodies

__all__ = ["run", "Trainer", "load_data", "evaluate_export", "evaluate_shipped",
           "resume_state"]

PHASES = ("stage1", "stage2", "regressor")


def load_data(cfg: TrainPriorConfig) -> PrimitiveSet:
    """The primitives named by ``cfg.data``."""
    if cfg.data.source == "synthetic":
        return synthetic_primitives(cfg.data.synthetic_clips, cfg.data.synthetic_frames,
                                    seed=cfg.seed)
    if cfg.data.source == "default":
        from egosim.envs.motion.primitive_dataset import default_dataset

        return from_dataset(default_dataset(progress=cfg.progress))
    path = Path(cfg.data.path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data.path {str(path)!r} does not exist; build it with the "
                                "motion data pipeline or use data.source=synthetic")
    return load_primitives(path)


def _init_modules(seed: int, fn: Any) -> Any:
    """Build modules with a private seed (the global torch RNG is restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _fit_marker_joints(data: PrimitiveSet, body: BodyLayer, seed: int, n: int = 4096
                       ) -> MarkerJoints:
    """Pelvis/hip estimator fitted on (up to ``n``) frames of the training bodies."""
    from egosim.envs.humans.skeleton import joint_index

    rng = np.random.default_rng([seed, 7])
    frames = data.markers.shape[1]
    pick = rng.integers(0, len(data) * frames, min(n, len(data) * frames))
    i, t = pick // frames, pick % frames
    if not data.has_params:
        # no bodies: waist markers stand in for pelvis and hips
        w = np.zeros((3, len(MARKER_NAMES)), dtype=np.float32)
        for row, names in enumerate((("LFWT", "LBWT", "RFWT", "RBWT"), ("LFWT", "LBWT"),
                                     ("RFWT", "RBWT"))):
            for nm in names:
                w[row, MARKER_NAMES.index(nm)] = 1.0 / len(names)
        return MarkerJoints(torch.from_numpy(w))
    pose = np.concatenate([data.global_orient[i, t][:, None],
                           data.body_pose[i, t].reshape(-1, 21, 3)], 1)
    rot = axis_angle_to_matrix(torch.from_numpy(pose).float())
    with torch.no_grad():
        m, j = body.markers(rot, torch.from_numpy(data.betas[i]).float(),
                            torch.from_numpy(data.gender[i]), torch.from_numpy(
                                data.transl[i, t]).float())
    ids = [0, joint_index("left_hip"), joint_index("right_hip")]
    return MarkerJoints.fit(m, j[:, ids])


class Trainer:
    """State of one training run (models, optimisers, data, step); see the module docstring."""

    def __init__(self, cfg: TrainPriorConfig, train: PrimitiveSet, held: PrimitiveSet,
                 body: BodyLayer | None = None) -> None:
        self.cfg = cfg
        self.train, self.held = train, held
        self.body = body or BodyLayer(with_vertices=False)
        x = torch.from_numpy(train.markers).reshape(-1, train.markers.shape[2] * 3)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-3)
        c = cfg.cvae
        self.cvae_config = CVAEConfig(hidden=c.hidden, mlp=tuple(c.mlp), latent=c.latent)
        self.reg_config = RegressorConfig(width=cfg.regressor.width, blocks=cfg.regressor.blocks,
                                          iterations=cfg.regressor.iterations)
        self.cvae = _init_modules(cfg.seed, lambda: MarkerCVAE(self.cvae_config, mean, std))
        self.regressor = _init_modules(cfg.seed + 1, lambda: MarkerRegressor(
            self.reg_config, body=self.body))
        self.marker_joints = _fit_marker_joints(train, self.body, cfg.seed)
        self.opts = {
            "stage1": torch.optim.Adam(self.cvae.parameters(), lr=cfg.stage1.lr),
            "stage2": torch.optim.Adam(self.cvae.parameters(), lr=cfg.stage2.lr),
            "regressor": torch.optim.Adam(self.regressor.parameters(), lr=cfg.regressor.lr),
        }
        self.bounds = np.cumsum([cfg.stage1.steps, cfg.stage2.steps, cfg.regressor.steps])
        self.step = 0
        k = cfg.stage2.num_primitives
        self.seq_len = 2 + 18 * k
        self.sequences = [s for s in clip_sequences(train) if s.shape[0] >= self.seq_len]
        if cfg.stage2.steps > 0 and not self.sequences:
            raise ValueError(f"stage 2 needs continuous clips of >= {self.seq_len} frames "
                             f"({k} primitives); none in the training data: lower "
                             "stage2.num_primitives or set stage2.steps=0")
        if cfg.regressor.steps > 0 and not train.has_params:
            raise ValueError("the regressor needs per-frame SMPL-X parameters in the data")
        if train.has_params:
            self.poses = np.concatenate([train.global_orient[..., None, :],
                                         train.body_pose.reshape(*train.body_pose.shape[:2],
                                                                 21, 3)], 2).reshape(-1, 22, 3)
            nf = train.markers.shape[1]
            self.pose_betas = np.repeat(train.betas, nf, 0)
            self.pose_gender = np.repeat(train.gender, nf, 0)

    # -- bookkeeping --------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return int(self.bounds[-1])

    def phase(self, step: int) -> int:
        return int(np.searchsorted(self.bounds, step, side="right"))

    def _rngs(self, step: int) -> tuple[np.random.Generator, torch.Generator]:
        rng = np.random.default_rng([self.cfg.seed, self.phase(step), step])
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        return rng, gen

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "cvae": self.cvae.state_dict(),
                "regressor": self.regressor.state_dict(),
                "marker_joints": self.marker_joints.weights,
                "opts": {k: o.state_dict() for k, o in self.opts.items()},
                "config": self.cfg.model_dump()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.cvae.load_state_dict(state["cvae"])
        self.regressor.load_state_dict(state["regressor"])
        self.marker_joints = MarkerJoints(state["marker_joints"])
        for k, o in self.opts.items():
            o.load_state_dict(state["opts"][k])

    # -- the three kinds of step --------------------------------------------------------
    def step_stage1(self, rng: np.random.Generator, gen: torch.Generator) -> dict[str, Any]:
        idx = rng.integers(0, len(self.train), self.cfg.stage1.batch_size)
        x = torch.from_numpy(self.train.markers[idx])
        out = self.cvae(x[:, :2], x[:, 2:], generator=gen)
        return cvae_loss(out, self.cfg.cvae.diff_weight, self.cfg.cvae.kl_weight)

    def step_stage2(self, rng: np.random.Generator, gen: torch.Generator) -> dict[str, Any]:
        cfg = self.cfg.stage2
        which = rng.integers(0, len(self.sequences), cfg.batch_size)
        starts = [int(rng.integers(0, self.sequences[w].shape[0] - self.seq_len + 1))
                  for w in which]
        gt = torch.from_numpy(np.stack([self.sequences[w][s:s + self.seq_len]
                                        for w, s in zip(which, starts, strict=True)]))
        hist = gt[:, :2]
        total: dict[str, Any] = {}
        for k in range(cfg.num_primitives):
            origin, rot = self.marker_joints.frame(hist[:, 0])
            h_c = to_canonical(hist, origin, rot)
            f_c = to_canonical(gt[:, 2 + 18 * k: 2 + 18 * (k + 1)], origin, rot)
            out = self.cvae(h_c, f_c, generator=gen)
            for name, v in cvae_loss(out, self.cfg.cvae.diff_weight,
                                     self.cfg.cvae.kl_weight).items():
                total[name] = total.get(name, 0.0) + v / cfg.num_primitives
            pred = self.cvae.denormalize(out["pred_n"])
            hist = to_world(pred[:, -2:], origin, rot).detach()
        return total

    def step_regressor(self, rng: np.random.Generator, gen: torch.Generator
                       ) -> dict[str, Any]:
        cfg = self.cfg.regressor
        smp = sample_bodies(self.poses, rng, cfg.batch_size, cfg.pose_noise, cfg.shape_std,
                            self.pose_betas, self.pose_gender)
        gt = pose_bodies(self.body, smp)
        noise = torch.randn(gt["markers"].shape, generator=gen) * cfg.marker_noise
        out = self.regressor(gt["markers"] + noise, gt["betas"], gt["gender"])
        return regressor_loss(out, gt["rot"], gt["transl"], gt["pelvis_rest"],
                              clean_markers=gt["markers"], param_weight=cfg.param_weight)

    def train_step(self) -> tuple[str, dict[str, float]]:
        """Run the step ``self.step`` and advance; returns ``(phase, scalar losses)``."""
        phase = PHASES[self.phase(self.step)]
        rng, gen = self._rngs(self.step)
        self.cvae.train(phase != "regressor")
        losses = getattr(self, f"step_{phase}")(rng, gen)
        opt = self.opts[phase]
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        self.step += 1
        return phase, {k: float(v.detach()) for k, v in losses.items()}

    # -- export -------------------------------------------------------------------------
    def seeds(self) -> dict[str, torch.Tensor]:
        """Seed motions for rollouts: history frames of training primitives (canonical)."""
        rng = np.random.default_rng([self.cfg.seed, 11])
        n = min(self.cfg.num_seeds, len(self.train))
        idx = np.sort(rng.choice(len(self.train), n, replace=False))
        return {"history": torch.from_numpy(self.train.markers[idx, :2].copy()),
                "height": torch.from_numpy(self.train.origin[idx, 2].astype(np.float32)),
                "betas": torch.from_numpy(self.train.betas[idx].astype(np.float32)),
                "gender": torch.from_numpy(self.train.gender[idx].astype(np.int64))}

    def export(self, folder: Path) -> dict[str, float]:
        """Write ``cvae.pt`` and ``regressor.pt`` (model-only checkpoints) to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        ref = data_reference(self.train.world_markers(), self.marker_joints)
        torch_save({"config": self.cvae_config.to_dict(), "model": self.cvae.state_dict(),
                    "marker_joints": self.marker_joints.weights, "seeds": self.seeds(),
                    "blend": self.cfg.blend, "data_stats": ref, "step": self.step},
                   folder / CVAE_FILE)
        torch_save({"config": self.reg_config.to_dict(), "model": self.regressor.state_dict(),
                    "step": self.step}, folder / REGRESSOR_FILE)
        return ref




_STATE_KEYS = ("step", "cvae", "regressor", "marker_joints", "opts")


def _read_checkpoint(path: Path) -> dict[str, Any]:
    """The trainer state in ``path``.

    Raises:
        ValueError: unreadable or not a train-prior checkpoint (the message says why).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated/garbage files raise many types
        raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or any(k not in state for k in _STATE_KEYS):
        raise ValueError(f"not a train-prior checkpoint (needs {', '.join(_STATE_KEYS)})")
    return state


def resume_state(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """``(path, state)`` of the newest readable ``step_*.pt`` in ``folder``, or None (a bad
    newer one is reported and moved aside: :func:`egosim.atomic_io.newest_good_checkpoint`).
    """
    return newest_good_checkpoint(folder, "step_*.pt", _read_checkpoint, "train-prior")


def evaluate_export(cfg: TrainPriorConfig, summary: dict[str, Any], held: PrimitiveSet
                    ) -> dict[str, float]:
    """Measure the exported models on ``held`` and write the model cards next to them."""
    from .metrics import evaluate_all
    from .model_card import write_model_cards
    from .prior import MotionPrior

    prior = MotionPrior.load(cfg.export_dir)
    metrics = evaluate_all(prior, held, cfg.eval_primitives, cfg.eval_batch, seed=cfg.seed + 1)
    note = {"default": "The shipped DeepMimic clips of pybullet_data retargeted to SMPL-X and "
            "augmented (egosim.envs.motion.primitive_dataset.default_dataset, default "
            "DatasetConfig).", "npz": f"Primitive file {cfg.data.path}.",
            "synthetic": "Synthetic procedural walking (model_data.synthetic_primitives)."}
    write_model_cards(cfg.export_dir, cfg, metrics, summary, note[cfg.data.source])
    return metrics


def evaluate_shipped(cfg: TrainPriorConfig, folder: str | Path | None = None,
                     data: PrimitiveSet | None = None) -> dict[str, float]:
    """Re-measure existing checkpoints and rewrite ``metrics.json`` and the model cards.

    No training: ``cvae.pt`` and ``regressor.pt`` in ``folder`` (default ``cfg.export_dir``,
    else the shipped :func:`~.prior.checkpoint_dir`) are only read. The held-out primitives
    are those :func:`run` holds out (``cfg.data`` loaded by :func:`load_data`, split by
    ``cfg.data.holdout`` and ``cfg.seed``), and :func:`evaluate_export` measures and writes
    as after training.

    Raises:
        ValueError: the checkpoints were not trained with ``cfg`` (C-VAE sizes or step count
            differ), so its config would be mis-reported in the cards.
    """
    from .prior import checkpoint_dir

    torch.set_num_threads(cfg.threads)
    target = Path(folder or cfg.export_dir or checkpoint_dir())
    cvae = torch.load(target / CVAE_FILE, map_location="cpu", weights_only=True)
    want = {"hidden": cfg.cvae.hidden, "mlp": list(cfg.cvae.mlp), "latent": cfg.cvae.latent,
            "step": cfg.stage1.steps + cfg.stage2.steps + cfg.regressor.steps}
    have = {**{k: cvae["config"].get(k) for k in ("hidden", "latent")},
            "mlp": list(cvae["config"].get("mlp", [])), "step": cvae.get("step")}
    if have != want:
        raise ValueError(f"checkpoints in {target} do not match the config: {have} vs {want}")
    cfg = cfg.model_copy(update={"export_dir": str(target)})
    data = data if data is not None else load_data(cfg)
    train, held = data.split(cfg.data.holdout, cfg.seed)
    summary = {"train_primitives": len(train), "held_out_primitives": len(held)}
    return evaluate_export(cfg, summary, held)


def run(cfg: TrainPriorConfig, data: PrimitiveSet | None = None) -> dict[str, Any]:
    """Train (or resume) as configured; returns a summary dict (last losses, paths)."""
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    data = data if data is not None else load_data(cfg)
    train, held = data.split(cfg.data.holdout, cfg.seed)
    trainer = Trainer(cfg, train, held)
    out_dir = Path(cfg.output_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    found = resume_state(ckpt_dir) if cfg.resume else None
    if found is not None:
        trainer.load_state_dict(found[1])
    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=trainer.step)

    def save() -> Path:
        return torch_save(trainer.state_dict(), ckpt_dir / f"step_{trainer.step:07d}.pt")

    last: dict[str, float] = {}
    previous = exit_on_sigterm()
    bar = tqdm(total=trainer.total_steps, initial=trainer.step, disable=not cfg.progress,
               desc="train-prior")
    try:
        while trainer.step < trainer.total_steps:
            phase, last = trainer.train_step()
            bar.update(1)
            bar.set_postfix(phase=phase, loss=f"{last['total']:.4f}")
            if writer is not None and trainer.step % cfg.log_every == 0:
                for k, v in last.items():
                    writer.add_scalar(f"{phase}/{k}", v, trainer.step)
            if trainer.step % cfg.checkpoint_every == 0:
                save()
    finally:
        bar.close()
        final = save()
        if writer is not None:
            writer.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    summary: dict[str, Any] = {"step": trainer.step, "checkpoint": str(final),
                               "last_losses": last, "train_primitives": len(train),
                               "held_out_primitives": len(held)}
    if cfg.export_dir:
        summary["data_stats"] = trainer.export(Path(cfg.export_dir))
        summary["export_dir"] = cfg.export_dir
        if cfg.evaluate:
            summary["metrics"] = evaluate_export(cfg, summary, held)
    write_json(out_dir / "summary.json", summary, indent=2)
    return summary
