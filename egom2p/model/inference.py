"""Use a trained EgoM2P model on raw clips: :func:`load_model`, :func:`predict`.

::

    from egosim.egom2p.model import load_model, predict
    model = load_model()                       # the shipped checkpoints/small.pt
    poses = predict(model, clip, "camera")     # (60, 4, 4) float64, canonical

Tasks (:data:`TASKS`; inputs -> output):

=============  =============  ===============================================================
task           inputs         returns
=============  =============  ===============================================================
camera         rgb            ``(60, 4, 4)`` float64 camera-to-world, canonical (pose 0 = I)
camera_rgbd    rgb, depth     the same
depth          rgb            ``(16, H, W)`` float32 metres (0 = no depth), range tokens too
gaze           rgb            ``(60, 2)`` float32 in [-1, 1]
rgb            depth          ``(16, H, W, 3)`` uint8
=============  =============  ===============================================================

A clip is a raw clip dict of :mod:`egosim.egom2p.clips` (``rgb`` ``(16, H, W, 3)`` uint8,
``depth`` ``(16, H, W)`` float32 metres); its inputs are tokenized here with the shipped
tokenizers (:func:`egosim.egom2p.tokenizers.load`, loaded once per process), decoded with
the task's schedule (:func:`egosim.egom2p.model.decoding.default_schedule`, ROAR) and
detokenized (camera through the camera tokenizer and :mod:`egosim.egom2p.camera_9d`).
``H x W`` must be the model's video size.

A model trained with fixed roles (``roles`` of the training config, kept as
``model.roles``: e.g. the depth specialist, rgb ``input``, depth ``target``) never saw its
``target`` modalities as inputs nor a sample without inputs, so by default such a target is
decoded in one step (every position queried at once) without guidance; a task whose input
is a ``target``-only modality, or whose target an ``input``-only one, is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .decoding import DEFAULT_SCHEDULES, DecodeStep, decode_with_probs, default_schedule
from .transformer import Architecture, EgoM2P

__all__ = ["DEFAULT_ESTIMATES", "ESTIMATES", "TASKS", "checkpoint_dir", "load_model", "predict",
           "predict_batch", "tokenize_inputs", "tokenizer"]

TASKS: dict[str, tuple[tuple[str, ...], str]] = {
    task: (tuple(spec["inputs"]), spec["target"]) for task, spec in DEFAULT_SCHEDULES.items()}
"""Task -> (input modalities, target modality)."""

ESTIMATES: tuple[str, ...] = ("mean", "guided_mean", "sample")
"""How an output is read from the decoding (:func:`predict_batch`'s ``estimate``)."""

DEFAULT_ESTIMATES: dict[str, str] = {"camera": "guided_mean", "camera_rgbd": "guided_mean",
                                     "depth": "mean", "gaze": "guided_mean", "rgb": "mean"}
"""Task -> how its output is read from the decoding (:data:`ESTIMATES`): ``"mean"``, the
posterior-mean code of each position under the model's conditional distribution;
``"guided_mean"``, the same under the guided one (guidance 2 sharpens it away from the
model's own); ``"sample"``, the decoded ids. Chosen per task on 64 held-out clips of the
tokenizers' clip cache (not the eval's clips; ``benchmarks/bench_model_inputs.py``): the
conditional mean is 5 % better in depth AbsRel and 0.23 dB in PSNR, the guided one 0.5 %
in camera ATE and 1 % in gaze L2."""

TRAIN_COMMAND = ("egosim egom2p train export_dir=egom2p/model/checkpoints "
                 "(config configs/egom2p_model.yaml)")


def checkpoint_dir() -> Path:
    """Folder of the shipped model checkpoint (``small.pt``) and its card (``small.md``)."""
    return Path(__file__).resolve().parent / "checkpoints"


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu") -> EgoM2P:
    """A trained model in eval mode.

    Args:
        path: an export (``<size>.pt``) or a training checkpoint of ``egosim egom2p
            train``; None: the shipped ``egom2p/model/checkpoints/small.pt``.
        device: where to put it.

    Raises:
        FileNotFoundError: no checkpoint there (the message names the command that trains
            and exports the shipped one).
        ValueError: not a model checkpoint.

    The model's ``roles`` attribute holds the training config's roles of its modalities
    (all ``both`` for a checkpoint without them).
    """
    from .train import read_checkpoint

    target = Path(path) if path is not None else checkpoint_dir() / "small.pt"
    if not target.is_file():
        raise FileNotFoundError(f"no EgoM2P model checkpoint at {target}; train and export "
                                f"one with: {TRAIN_COMMAND}")
    ckpt = read_checkpoint(target)
    model = EgoM2P(Architecture.from_dict(ckpt["arch"]))
    model.load_state_dict(ckpt["state_dict"])  # float16 exports are cast to the float32 params
    cfg = ckpt.get("config") or (ckpt.get("info") or {}).get("config") or {}
    roles = cfg.get("roles") or {}
    model.roles = {m: roles.get(m, "both") for m in model.num_tokens}
    return model.to(device).eval()


@cache
def tokenizer(name: str) -> Any:
    """The shipped tokenizer ``name`` (loaded once per process, eval mode)."""
    from egosim.egom2p.tokenizers import load

    return load(name)


def _check_size(model: EgoM2P, clip: Mapping[str, Any], modality: str) -> None:
    h, w = model.arch.video_size
    shape = np.shape(clip[modality])
    if len(shape) < 3 or tuple(shape[1:3]) != (h, w):
        raise ValueError(f"clip {modality!r} has shape {shape}; the model takes "
                         f"(16, {h}, {w}{', 3' if modality == 'rgb' else ''}) clips")


def tokenize_inputs(model: EgoM2P, clips: Sequence[Mapping[str, Any]],
                    modalities: Sequence[str]) -> dict[str, torch.Tensor]:
    """Token ids ``{m: (B, N)}`` of ``clips``' entries of ``modalities`` (shipped
    tokenizers; ``tokens_<m>`` entries of a clip are used as they are).

    Raises:
        KeyError: a clip lacks an input the task needs.
        ValueError: frames of another size than the model's.
    """
    out: dict[str, torch.Tensor] = {}
    for m in modalities:
        if all(f"tokens_{m}" in c for c in clips):
            out[m] = torch.stack([torch.as_tensor(np.asarray(c[f"tokens_{m}"])).long()
                                  for c in clips])
            continue
        tok = tokenizer(m)
        for c in clips:
            missing = [k for k in tok.clip_keys[:1] if k not in c]
            if missing:
                raise KeyError(f"clip lacks {missing[0]!r}, needed as input {m!r}")
            if m in ("rgb", "depth"):
                _check_size(model, c, m)
        keys = [k for k in tok.clip_keys if all(k in c for c in clips)]
        batch = {k: np.stack([np.asarray(c[k]) for c in clips]) for k in keys}
        with torch.no_grad():
            out[m] = tok.encode(batch).long()
    return out


def _detokenize(model: EgoM2P, target: str, tokens: torch.Tensor,
                probs: Sequence[torch.Tensor] | None = None) -> np.ndarray:
    """Model outputs of ``tokens`` ``(B, N)``; with ``probs``, the posterior mean
    (``decode_expected``) instead of the decoded ids."""
    tok = tokenizer(target)
    tokens = tokens.cpu()
    probs = [p.cpu() for p in probs] if probs is not None else None
    h, w = model.arch.video_size
    with torch.no_grad():
        if probs is None:
            out = tok.decode(tokens, h, w) if target in ("rgb", "depth") else tok.decode(tokens)
        elif target in ("rgb", "depth"):
            out = tok.decode_expected(tokens, probs, h, w)
        else:
            out = tok.decode_expected(tokens, probs)
    if target == "camera":
        from egosim.egom2p.camera_9d import canonical

        return canonical(np.asarray(out["camera"].cpu().numpy(), np.float64))
    if target == "gaze":
        return out["gaze"].clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)
    return out[target].cpu().numpy().astype(np.uint8 if target == "rgb" else np.float32)


def predict_batch(model: EgoM2P, clips: Sequence[Mapping[str, Any]], task: str,
                  schedule: Sequence[DecodeStep | Mapping[str, Any]] | None = None,
                  seed: int = 0, batch_size: int = 8, estimate: str | None = None
                  ) -> list[np.ndarray]:
    """:func:`predict` of many clips, ``batch_size`` at a time.

    Args:
        model: a model (e.g. :func:`load_model`).
        clips: raw clip dicts.
        task: a key of :data:`TASKS`.
        schedule: decoding steps (None: the task's default, ROAR).
        seed: seed of the decoding randomness (batch ``j`` uses ``[seed, j]``).
        batch_size: clips decoded together.
        estimate: ``"mean"`` (the tokenizer decodes the posterior-mean code of each
            position's conditional predictive distribution), ``"guided_mean"`` (the same
            of the guided distribution) or ``"sample"`` (it decodes the drawn ids); the ids
            are drawn with the schedule's guidance in all three. None: the task's
            :data:`DEFAULT_ESTIMATES` entry.

    Returns:
        one array per clip, as :func:`predict`.
    """
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    estimate = estimate if estimate is not None else DEFAULT_ESTIMATES[task]
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate must be one of {', '.join(ESTIMATES)}, got {estimate!r}")
    inputs, target = TASKS[task]
    missing = [m for m in (*inputs, target) if m not in model.num_tokens]
    if missing:
        raise ValueError(f"task {task!r} needs modalities {', '.join(missing)} the model "
                         f"does not have ({', '.join(model.num_tokens)})")
    roles = getattr(model, "roles", None) or {}
    unseen = [(m, "an input", "a target") for m in inputs if roles.get(m) == "target"]
    if roles.get(target) == "input":
        unseen.append((target, "the target", "an input"))
    if unseen:
        m, want, had = unseen[0]
        raise ValueError(f"task {task!r} needs {m} as {want}; the model was trained with it "
                         f"as {had} only (roles {roles})")
    steps = schedule if schedule is not None else default_schedule(task, model.num_tokens)
    if schedule is None and roles.get(target) == "target":  # as trained: one pass, no CFG
        steps = [replace(steps[0], tokens=model.num_tokens[target], cfg_scale=1.0)]
    was = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        for j, start in enumerate(range(0, len(clips), batch_size)):
            part = clips[start:start + batch_size]
            ids = tokenize_inputs(model, part, inputs)
            seq = np.random.SeedSequence([seed, j]).generate_state(1, np.uint64)[0] >> 2
            g = torch.Generator().manual_seed(int(seq))
            tokens, probs = decode_with_probs(model, ids, steps, g,
                                              keep_probs=estimate != "sample",
                                              guided_probs=estimate == "guided_mean")
            out.extend(list(_detokenize(model, target, tokens[target],
                                        probs.get(target))))
    finally:
        model.train(was)
    return out


def predict(model: EgoM2P, clip: Mapping[str, Any], task: str,
            schedule: Sequence[DecodeStep | Mapping[str, Any]] | None = None, seed: int = 0,
            estimate: str | None = None) -> np.ndarray:
    """The model's prediction of ``task`` for one raw clip.

    Args:
        model: a model (e.g. :func:`load_model`).
        clip: a raw clip dict (needs the task's inputs, see :data:`TASKS`).
        task: ``camera``, ``camera_rgbd``, ``depth``, ``gaze`` or ``rgb``.
        schedule: decoding steps (None: the task's default, ROAR).
        seed: seed of the decoding randomness.
        estimate: ``"mean"``, ``"guided_mean"`` or ``"sample"`` (see
            :func:`predict_batch`); None: the task's :data:`DEFAULT_ESTIMATES` entry.

    Returns:
        camera / camera_rgbd: ``(60, 4, 4)`` float64 canonical camera-to-world (OpenCV
        axes, metres); depth: ``(16, H, W)`` float32 metres; gaze: ``(60, 2)`` float32 in
        [-1, 1]; rgb: ``(16, H, W, 3)`` uint8.
    """
    return predict_batch(model, [clip], task, schedule, seed, batch_size=1,
                         estimate=estimate)[0]
