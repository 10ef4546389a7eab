"""Train one EgoM2P tokenizer: ``egosim egom2p train-tokenizer modality=NAME``.

Read top to bottom; every hyper-parameter is in ``configs/egom2p_tokenizer.yaml``
(:class:`egosim.egom2p.tokenizer_config.TrainTokenizerConfig`). Entry point: :func:`run`.

Data: raw clips of the simulation stream, generated once into a clip cache shared by the
four tokenizers (:mod:`~egosim.egom2p.tokenizers.clip_data`), or synthetic clips.

Determinism: the batch of step ``s`` (clip indices and flips) is drawn from
``numpy.random.default_rng([seed, s])``, and the torch random numbers of that step (the
vector quantiser's k-means start and dead-code replacement) come from a forked global
generator seeded from it; so a checkpoint (weights, quantiser buffers, optimiser, step)
resumes to the numbers of an uninterrupted run. Checkpoints go to
``output_dir/<modality>/checkpoints/step_XXXXXXX.pt`` every ``checkpoint_every`` steps and
on exit (also on Ctrl-C and SIGTERM), the newest ``keep_checkpoints`` are kept; each is
written atomically and is itself a loadable tokenizer checkpoint
(:func:`egosim.egom2p.tokenizers.load` ``(name, path=...)``). A resumed run takes the newest
checkpoint that reads back; a bad one is reported in one line, moved aside to
``<name>.bad``, and the previous one is used. With ``export_dir`` set, the final weights
are written as ``<modality>.pt`` and measured on the held-out clips
(:mod:`~egosim.egom2p.tokenizers.evaluate`) into the model card ``<modality>.md``.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.atomic_io import exit_on_sigterm, newest_good_checkpoint, torch_save, write_json
from egosim.config import machine_description
from egosim.egom2p.tokenizer_config import (
    SequenceTrainSection,
    TrainTokenizerConfig,
    VideoModelSection,
    VideoTrainSection,
)

from . import build
from .base import CHECKPOINT_FORMAT, Tokenizer, read_checkpoint, save_checkpoint
from .clip_data import ClipSet, load_clips

__all__ = ["Trainer", "evaluate_export", "export", "resume_state", "run"]

_STATE_KEYS = ("format", "name", "model", "state_dict", "step", "optimizer")
# parameter names of the decoders (video: CausalVideoAutoencoder.dec_*; sequence VQ-VAE:
# decoder and head), the ones train_parts=decoder trains
_DECODER_PREFIXES = ("net.dec_", "net.decoder.", "net.head.")


class Trainer:
    """One tokenizer, its optimiser and the step counter.

    Args:
        cfg: the run's config (its :attr:`~TrainTokenizerConfig.modality` section).
        train: training clips (the keys of that tokenizer).
    """

    def __init__(self, cfg: TrainTokenizerConfig, train: ClipSet) -> None:
        self.cfg = cfg
        self.section: VideoTrainSection | SequenceTrainSection = cfg.section()
        self.train = train
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            self.tokenizer: Tokenizer = build(cfg.modality, self.section.model.model_dump(
                mode="json"))
        if isinstance(self.section, VideoTrainSection):
            self.tokenizer.loss_weights = (  # type: ignore[attr-defined]
                self.section.mse_weight, self.section.l1_weight, self.section.abs_rel_weight)
        if cfg.modality == "camera":
            self.tokenizer.translation_weight = (  # type: ignore[attr-defined]
                self.section.translation_weight)  # type: ignore[union-attr]
        if cfg.modality == "camera" and train.camera_stats is not None:
            self.tokenizer.set_camera_stats(*train.camera_stats)  # type: ignore[attr-defined]
        if self.section.init_from is not None:
            self._load_init(self.section.init_from)
        start = time.perf_counter()
        if getattr(self.tokenizer, "fitted_code", False):  # pca, dpcm: all clips, no rng
            self.tokenizer.fit(train.batch(np.arange(len(train))))  # type: ignore[attr-defined]
        fit_s = time.perf_counter() - start
        self.tokenizer.train()
        params = self.params = self.trained_parameters()  # none for a fitted code
        self.opt = torch.optim.AdamW(params, lr=self.section.lr,
                                     weight_decay=self.section.weight_decay) if params else None
        self.step = 0
        self.elapsed_s = fit_s

    def _load_init(self, source: str) -> None:
        """Start from the weights of checkpoint ``source`` (a path or ``'shipped'``)."""
        from . import checkpoint_path

        path = checkpoint_path(self.cfg.modality) if source == "shipped" else Path(source)
        state = read_checkpoint(path)
        if self.section.train_parts != "decoder" or self._same_architecture(state["model"]):
            self._check_same(state, f"init_from {path}")
            self.tokenizer.load_state_dict(state["state_dict"])
            return
        # a decoder of other sizes over the checkpoint's encoder and quantiser: those
        # load (so every token id is kept), the decoder starts from its random init
        self._check_same(state, f"init_from {path}", encoder_only=True)
        keep = {k: v for k, v in state["state_dict"].items()
                if not k.startswith(_DECODER_PREFIXES)}
        missing, unexpected = self.tokenizer.load_state_dict(keep, strict=False)
        if unexpected or any(not k.startswith(_DECODER_PREFIXES) for k in missing):
            raise ValueError(f"init_from {path}: encoder weights do not match (missing "
                             f"{missing}, unexpected {unexpected})")

    def _same_architecture(self, model: dict[str, Any], encoder_only: bool = False) -> bool:
        """Whether a checkpoint's architecture dict ``model`` is this config's (compared as
        validated sections, so a dict written before a key existed reads as its default;
        ``encoder_only``: only the keys that fix the token ids, for a video tokenizer)."""
        mine = self.section.model
        try:
            theirs = type(mine).model_validate(model)
        except ValueError:
            return False
        if isinstance(mine, VideoModelSection) and isinstance(theirs, VideoModelSection):
            if theirs.encoder_config() != mine.encoder_config():
                return False
            return encoder_only or theirs.decoder_sizes() == mine.decoder_sizes()
        return theirs.model_dump(mode="json") == mine.model_dump(mode="json")

    def _check_same(self, state: dict[str, Any], what: str, encoder_only: bool = False
                    ) -> None:
        """Refuse a checkpoint ``state`` of another tokenizer or architecture (with
        ``encoder_only``: of another encoder and quantiser)."""
        if state["name"] != self.cfg.modality or not self._same_architecture(
                state["model"], encoder_only):
            raise ValueError(f"{what} holds a {state['name']!r} tokenizer of "
                             f"{state['model']}, the config asks for {self.cfg.modality!r} "
                             f"of {self.tokenizer.model_config()}")

    def trained_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the optimiser updates: all of them, or with ``train_parts:
        decoder`` those of the decoder (the rest get ``requires_grad = False``)."""
        if self.section.train_parts == "all":
            return list(self.tokenizer.parameters())
        out = []
        for name, p in self.tokenizer.named_parameters():
            p.requires_grad_(name.startswith(_DECODER_PREFIXES))
            if p.requires_grad:
                out.append(p)
        if not out:
            raise ValueError(f"the {self.cfg.modality} tokenizer has no decoder parameters "
                             "(a fitted code): train_parts=decoder does not apply")
        return out

    def _set_modes(self) -> None:
        """Training mode, but with ``train_parts: decoder`` the encoder side in eval mode:
        a VQ codebook's EMA and dead-code updates would otherwise move the codes."""
        self.tokenizer.train()
        if self.section.train_parts == "decoder":
            for name, module in self.tokenizer.net.named_children():
                if not f"net.{name}.".startswith(_DECODER_PREFIXES):
                    module.eval()

    def lr(self, step: int) -> float:
        """Learning rate of ``step``: linear warm-up, then cosine decay to
        ``min_lr_ratio * lr`` at the last step."""
        s = self.section
        if step < s.warmup_steps:
            return s.lr * (step + 1) / s.warmup_steps
        span = max(s.steps - s.warmup_steps, 1)
        frac = min((step - s.warmup_steps) / span, 1.0)
        return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(
            math.pi * frac)))

    def train_step(self) -> dict[str, float]:
        """Run step ``self.step`` and advance; returns its scalar losses and lr."""
        s = self.section
        if self.opt is None:
            raise RuntimeError(f"the {self.cfg.modality} tokenizer has no parameters to train "
                               "(a fitted code)")
        rng = np.random.default_rng([self.cfg.seed, self.step])
        idx = rng.integers(0, len(self.train), s.batch_size)
        flip = None
        if isinstance(s, VideoTrainSection) and s.flip:
            flip = torch.from_numpy(rng.random(s.batch_size) < 0.5)
        torch_seed = int(rng.integers(0, 2**62))
        lr = self.lr(self.step)
        self._set_modes()
        for group in self.opt.param_groups:
            group["lr"] = lr
        with torch.random.fork_rng():
            torch.manual_seed(torch_seed)
            losses = self.tokenizer.loss(self.train.batch(idx), flip)
            self.opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            if s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, s.grad_clip)
            self.opt.step()
        self.step += 1
        return {**{k: float(v.detach()) for k, v in losses.items()}, "lr": lr}

    def state_dict(self) -> dict[str, Any]:
        """A training checkpoint; also a tokenizer checkpoint (:func:`read_checkpoint`)."""
        return {"format": CHECKPOINT_FORMAT, "name": self.cfg.modality,
                "model": self.tokenizer.model_config(),
                "state_dict": self.tokenizer.state_dict(), "step": self.step,
                "optimizer": self.opt.state_dict() if self.opt is not None else {},
                "elapsed_s": self.elapsed_s,
                "config": self.cfg.model_dump(mode="json"),
                "info": {"training_checkpoint": True}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint of :meth:`state_dict`.

        Raises:
            ValueError: a checkpoint of another tokenizer or architecture.
        """
        self._check_same(state, "the checkpoint")
        self.tokenizer.load_state_dict(state["state_dict"])
        if self.opt is not None:
            self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.elapsed_s = float(state.get("elapsed_s", 0.0))


def _read_training_checkpoint(path: Path) -> dict[str, Any]:
    state = read_checkpoint(path)
    missing = [k for k in _STATE_KEYS if k not in state]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (lacks {', '.join(missing)})")
    return state


def resume_state(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """``(path, state)`` of the newest readable ``step_*.pt`` in ``folder``, or None (a bad
    newer one is reported and moved aside: :func:`egosim.atomic_io.newest_good_checkpoint`).
    """
    return newest_good_checkpoint(folder, "step_*.pt", _read_training_checkpoint,
                                  "train-tokenizer")


def _prune(folder: Path, keep: int) -> None:
    for old in sorted(folder.glob("step_*.pt"), reverse=True)[keep:]:
        old.unlink(missing_ok=True)




def _data_note(cfg: TrainTokenizerConfig, train: ClipSet, held: ClipSet) -> dict[str, Any]:
    d = cfg.data
    clip_cfg = d.clip_config or "the clip schema's defaults (egosim.egom2p.config.ClipConfig)"
    source = ("raw clips of egosim.egom2p.stream.SimStream (clip config: "
              f"{clip_cfg}, overrides {d.clip_overrides or 'none'}, video_size "
              f"{d.video_size}), generated once into a clip cache (one .npz a clip, written "
              f"atomically; egosim.egom2p.tokenizers.clip_data) in chunks of {d.chunk_clips} "
              f"consecutive clips of one stream (held-out: {d.holdout_chunk_clips}), cache seed "
              f"{d.seed}; the held-out clips come "
              f"from other stream seeds and from scenes of procedural seeds "
              f"{list(d.holdout_scene_seeds)} (training scenes: the clip config's)"
              if d.source == "cache" else
              "synthetic clips (egosim.egom2p.tokenizers.clip_data.synthetic_clips)")
    return {"source": source, "train_clips": len(train), "holdout_clips": len(held),
            "height": d.video_size, "width": d.video_size}


def export(trainer: Trainer, folder: Path, info: dict[str, Any]) -> Path:
    """Write the trained tokenizer as ``folder/<modality>.pt`` (weights only)."""
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(trainer.tokenizer, folder / f"{trainer.cfg.modality}.pt",
                           trainer.step, info)


def run(cfg: TrainTokenizerConfig, data: tuple[ClipSet, ClipSet] | None = None
        ) -> dict[str, Any]:
    """Train (or resume) the configured tokenizer; returns a summary dict.

    Args:
        cfg: the config.
        data: ``(train, held-out)`` clips to use instead of ``cfg.data``'s.
    """
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    train, held = data if data is not None else load_clips(cfg.data, cfg.modality,
                                                          cfg.progress)
    trainer = Trainer(cfg, train)
    out_dir = Path(cfg.output_dir) / cfg.modality
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
        path = torch_save(trainer.state_dict(), ckpt_dir / f"step_{trainer.step:07d}.pt")
        _prune(ckpt_dir, cfg.keep_checkpoints)
        return path

    total = trainer.section.steps
    last: dict[str, float] = {}
    previous = exit_on_sigterm()
    bar = tqdm(total=total, initial=trainer.step, disable=not cfg.progress,
               desc=f"train-tokenizer {cfg.modality}")
    start = time.perf_counter()
    base_elapsed = trainer.elapsed_s
    try:
        while trainer.step < total:
            last = trainer.train_step()
            trainer.elapsed_s = base_elapsed + time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(loss=f"{last['total']:.4f}")
            if writer is not None and trainer.step % cfg.log_every == 0:
                for k, v in last.items():
                    writer.add_scalar(f"{cfg.modality}/{k}", v, trainer.step)
            if trainer.step % cfg.checkpoint_every == 0:
                save()
    finally:
        bar.close()
        final = save()
        if writer is not None:
            writer.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    data_note = _data_note(cfg, train, held)
    summary: dict[str, Any] = {"modality": cfg.modality, "step": trainer.step,
                               "checkpoint": str(final), "last_losses": last,
                               "train_s": round(trainer.elapsed_s, 1), "data": data_note}
    if cfg.export_dir:
        info = {"data": data_note, "train_s": round(trainer.elapsed_s, 1),
                "threads": cfg.threads, "machine": machine_description(),
                "training": trainer.section.model_dump(mode="json", exclude={"model"})}
        path = export(trainer, Path(cfg.export_dir), info)
        summary["export"] = str(path)
        if cfg.evaluate:
            from .evaluate import evaluate, write_model_card

            trainer.tokenizer.eval()
            metrics = evaluate(trainer.tokenizer, held, cfg.eval_batch)
            info["metrics"] = metrics
            save_checkpoint(trainer.tokenizer, path, trainer.step, info)
            write_model_card(path.with_suffix(".md"), trainer.tokenizer, cfg, info)
            summary["metrics"] = metrics
    write_json(out_dir / "summary.json", summary, indent=2, default=str)
    return summary


def evaluate_export(cfg: TrainTokenizerConfig, folder: str | Path | None = None,
                    held: ClipSet | None = None) -> dict[str, Any]:
    """Re-measure an exported tokenizer and rewrite its metrics and model card.

    No training: ``<modality>.pt`` in ``folder`` (default ``cfg.export_dir``, else the
    shipped :func:`~egosim.egom2p.tokenizers.checkpoint_dir`) is measured on the held-out
    clips of ``cfg.data`` (or ``held``); its ``info`` keeps the training record.
    """
    from . import checkpoint_dir, load
    from .evaluate import evaluate, write_model_card

    torch.set_num_threads(cfg.threads)
    path = Path(folder or cfg.export_dir or checkpoint_dir()) / f"{cfg.modality}.pt"
    info = dict(read_checkpoint(path)["info"])
    tok = load(cfg.modality, path)
    if held is None:
        held = load_clips(cfg.data, cfg.modality, cfg.progress)[1]
    info["metrics"] = evaluate(tok, held, cfg.eval_batch)
    save_checkpoint(tok, path, int(read_checkpoint(path)["step"]), info)
    write_model_card(path.with_suffix(".md"), tok, cfg, info)
    return info["metrics"]


