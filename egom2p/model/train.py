"""Train the EgoM2P model: ``egosim egom2p train`` (``configs/egom2p_model.yaml``).

Read top to bottom; every hyper-parameter is in
:class:`egosim.egom2p.model_config.TrainModelConfig`. Entry point: :func:`run`.

**Data** (``data.source``), always batches of ``{modality: (B, N) int64 ids}`` plus a
per-sample availability flag ``{modality: (B,) bool}`` (a clip without a modality gets
zeros and ``False``; :func:`collate_clips`):

- ``stream``: :class:`egosim.egom2p.stream.SimStream` with ``tokenized=True`` through a
  DataLoader of ``stream.num_workers`` workers (each worker yields whole batches of its
  own clips; the loader takes them from the workers in turn);
- ``cache``: the clips of ``data.cache_dir`` (``*.npz``: ``tokens_<m>`` entries, or raw
  clips, tokenized once with the shipped tokenizers and kept in
  ``output_dir/token_cache/``); the batch of step ``s`` is drawn from
  ``numpy.random.default_rng([seed, s])``;
- ``synthetic``: random ids of the right sizes, drawn from ``[seed, rank, s]`` (tests,
  benchmarks).

**Replay** (``data.replay_clips: N > 0``, stream only; :class:`ReplaySource`): a
background thread pulls tokenized clips from the stream's DataLoader (``batch_size=None``,
the workers keep only the tokens) into a buffer of the newest ``N``; each batch is
``batch_size`` distinct clips of the buffer drawn from ``default_rng([seed, rank, s, 1])``,
so the optimiser is not paced by the simulation. ``data.replay_reuse = r`` sets how:

- ``r > 0`` (default 4): a fixed schedule. Before step ``s`` the stream must have delivered
  ``A(s) = B + floor(s B / r)`` clips (``B = batch_size``) and the batch is drawn from clips
  ``[max(0, A(s) - N), A(s))`` of the loader's order: each clip is used about ``r`` times,
  the learner waits only when the stream delivers fewer than ``1 / r`` of the clips a step
  consumes per step, and the run is a pure function of the seeds and the worker count, as
  without replay. A resume is exact: its stream remakes (and drops) the first
  ``A(s) - N`` clips, ``r`` times fewer than the plain stream's resume remakes.
- ``r = 0``: free running. The batch is drawn from whatever the buffer holds (the newest
  ``N`` clips); once ``B`` clips are in, the learner never waits for the stream, and the
  reuse factor is whatever the two rates make it. This trades exact resume for throughput:
  batches depend on timing, so two runs differ, and **a resume continues from a fresh, empty
  buffer** on a new stream segment (seed ``stream.seed + 1000 rank + 1000000 k`` for the
  ``k``-th resume, so no clip of an earlier segment is made again).

Changing ``data.replay_clips`` or ``data.replay_reuse`` across a resume gives a valid run
that no uninterrupted run equals.

The thread (the stream's DataLoader iterator, its workers) stops at the end of the run.
TensorBoard gets ``replay/produced_clips_per_s`` (clips the stream delivered per second,
over the logging window), ``replay/reuse_factor`` (clips consumed / clips delivered, since
the start of this process), ``replay/buffer_clips`` and ``replay/wait_s`` (the learner's
seconds waiting for the buffer in the window); ``summary.json`` a ``replay`` section with
the same figures over the whole run.

**Roles** (``roles``): a modality's role in the masks (:mod:`.masking`): ``input`` ones are
never targets, ``target`` ones never inputs (e.g. ``configs/egom2p_depth_specialist.yaml``:
rgb in, depth out). The built model keeps them as ``model.roles`` (and
:func:`~egosim.egom2p.model.inference.load_model` restores them from the checkpoint's
config): :func:`~egosim.egom2p.model.inference.predict` then decodes a target-only modality
in one step without guidance, the way it was trained.

``stream.drop_depth_fraction`` marks depth unavailable on that fraction of clips (drawn per
clip), so the model learns without it. Each step's masks (:mod:`.masking`: input and
target budgets, Dirichlet splits) come from a generator seeded with ``[seed, rank, s]``.

**Determinism and resume.** On a CPU the model's arithmetic is deterministic, and the
masks of a step depend only on ``(seed, rank, step)``. A checkpoint holds the weights,
optimiser, learning-rate schedule, step, the RNG states of torch, numpy and Python, and
the data position (batches consumed). Resuming restores them all; the cache and synthetic
sources are pure functions of the step, and the stream is restarted and its first
``position`` batches are skipped (remade: slow, but the same clips, since clip ``i`` of a
worker is a pure function of ``(seed, worker, i)`` and the loader's order is fixed by the
worker count). So a resumed run equals an uninterrupted one bit for bit on a CPU (tested
on the tiny config), provided the worker count is unchanged. Checkpoints go to
``output_dir/checkpoints/step_XXXXXXX.pt`` every ``checkpoint_every`` steps and at the end
(also on Ctrl-C and SIGTERM), written atomically; the newest ``keep_checkpoints`` are kept;
a half-written or unreadable newest one is moved aside and the previous one is used
(:func:`egosim.atomic_io.newest_good_checkpoint`).

**DDP.** Under ``torchrun`` (``WORLD_SIZE > 1``) each process joins the group from the
environment (backend ``nccl`` on CUDA, ``gloo`` on a CPU), wraps the model in
``DistributedDataParallel``, and reads other data: the stream of rank ``r`` has seed
``stream.seed + 1000 r`` (with replay, each rank fills its own buffer); the cache's step
batch of ``B * world`` clips is sliced by rank; synthetic batches and masks are seeded
with the rank. Rank 0 alone writes checkpoints,
TensorBoard and the summary. ``batch_size`` is per process.

**Logs.** TensorBoard (``output_dir/tensorboard``): ``loss/total``, ``loss/<modality>``
(cross-entropy, nats), ``lr``, ``grad_norm`` (the gradient's norm before clipping),
``clips_per_s`` (clips consumed by the optimiser, all ranks), ``data_wait_fraction``
(time waiting for the next batch / step wall time). At the
end ``output_dir/summary.json``: steps, wall seconds, clips/s consumed, stream clips/s
produced (the workers' own counters), data-wait fraction, with replay its section (above),
final losses per modality (mean of the last 50 steps). With
``export_dir``: ``<size>.pt`` (weights) and the model card ``<size>.md``
(:func:`egosim.egom2p.model.inference.load_model` reads both a checkpoint and an export).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from egosim.atomic_io import (
    exit_on_sigterm,
    newest_good_checkpoint,
    save_npz,
    torch_save,
    write_json,
    write_text,
)
from egosim.config import ConfigValueError, machine_description
from egosim.egom2p.model_config import TrainModelConfig

from .decoding import DEFAULT_SCHEDULES
from .masking import make_mod_dict
from .transformer import SIZES, Architecture, EgoM2P

__all__ = ["CHECKPOINT_FORMAT", "Batch", "CacheSource", "ReplaySource", "StreamSource",
           "SyntheticSource", "architecture", "build_model", "collate_clips", "drop_depth",
           "export", "keep_tokens", "make_source", "params_digest", "read_checkpoint", "run"]

CHECKPOINT_FORMAT = "egosim.egom2p.model/1"

Batch = dict[str, dict[str, torch.Tensor]]
"""``{"tokens": {m: (B, N) int64}, "available": {m: (B,) bool}}``."""


# -- model ------------------------------------------------------------------------------
def architecture(cfg: TrainModelConfig) -> Architecture:
    """The :class:`~egosim.egom2p.model.transformer.Architecture` a config asks for."""
    return Architecture(**SIZES[cfg.size], modalities=tuple(cfg.modalities),
                        video_size=(cfg.video_size, cfg.video_size),
                        video_head=cfg.video_head, position_scale=cfg.position_scale,
                        position_table=cfg.position_table,
                        ordinal_head=tuple(cfg.ordinal_head))


def mask_tasks(cfg: TrainModelConfig) -> list[tuple[tuple[str, ...], str]]:
    """The ``(inputs, target)`` tasks of the task masks (``cfg.task_fraction``): the
    decoding tasks (:data:`~egosim.egom2p.model.decoding.DEFAULT_SCHEDULES`) whose
    modalities are all learned, each once."""
    out: list[tuple[tuple[str, ...], str]] = []
    for spec in DEFAULT_SCHEDULES.values():
        task = (tuple(spec["inputs"]), spec["target"])
        if task not in out and all(m in cfg.modalities for m in (*task[0], task[1])):
            out.append(task)
    return out


def build_model(cfg: TrainModelConfig) -> EgoM2P:
    """A freshly initialised model, its weights a function of ``cfg.seed`` only; its
    ``roles`` attribute holds the learned modalities' roles (``cfg.roles``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = EgoM2P(architecture(cfg))
    model.roles = {m: cfg.roles.get(m, "both") for m in cfg.modalities}
    return model


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict of a model checkpoint or export.

    Raises:
        FileNotFoundError: no file.
        ValueError: unreadable or not a model checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no EgoM2P model checkpoint at {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign files raise many types
        raise ValueError(f"{p}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{p}: not an EgoM2P model checkpoint (format {CHECKPOINT_FORMAT!r})")
    return ckpt


# -- data -------------------------------------------------------------------------------
def drop_depth(seed: int, key: Sequence[int], fraction: float) -> bool:
    """Whether the clip ``key`` (e.g. ``(worker, index)``) loses its depth: a draw of
    ``default_rng([seed, 7, *key])`` below ``fraction``."""
    if fraction <= 0:
        return False
    return bool(np.random.default_rng([seed, 7, *key]).random() < fraction)


def collate_clips(clips: Sequence[Mapping[str, Any]], num_tokens: Mapping[str, int],
                  drop_depth_fraction: float = 0.0, seed: int = 0) -> Batch:
    """Tokenized clips -> a :data:`Batch`.

    Args:
        clips: dicts with ``tokens_<m>`` ``(N,)`` ids for the modalities they have (and
            ``meta`` with ``worker`` and ``index``, used to draw the depth drop).
        num_tokens: modality -> tokens of one clip (the model's modalities).
        drop_depth_fraction: see :func:`drop_depth`.
        seed: the stream seed (part of the drop draw).

    Returns:
        ``tokens`` ``(B, N)`` int64 (zeros where unavailable) and ``available`` ``(B,)``.
    """
    b = len(clips)
    tokens = {m: torch.zeros(b, n, dtype=torch.int64) for m, n in num_tokens.items()}
    avail = {m: torch.zeros(b, dtype=torch.bool) for m in num_tokens}
    for i, clip in enumerate(clips):
        meta = clip.get("meta") or {}
        key = (int(meta.get("worker", 0)), int(meta.get("index", i)))
        lose_depth = drop_depth(seed, key, drop_depth_fraction)
        for m, n in num_tokens.items():
            t = clip.get(f"tokens_{m}")
            if t is None or (m == "depth" and lose_depth):
                continue
            t = torch.as_tensor(np.asarray(t), dtype=torch.int64).reshape(-1)
            if t.numel() != n:
                raise ValueError(f"clip tokens_{m} has {t.numel()} tokens, the model expects "
                                 f"{n} (video_size mismatch?)")
            tokens[m][i] = t
            avail[m][i] = True
    return {"tokens": tokens, "available": avail}


class SyntheticSource:
    """Random ids of the model's sizes; step ``s`` of rank ``r`` from ``[seed, r, s]``."""

    def __init__(self, cfg: TrainModelConfig, model: EgoM2P, rank: int = 0) -> None:
        self.cfg, self.rank = cfg, rank
        self.num_tokens, self.vocab = model.num_tokens, model.vocab

    def batch(self, step: int) -> Batch:
        """The batch of ``step``."""
        rng = np.random.default_rng([self.cfg.seed, self.rank, step])
        b = self.cfg.batch_size
        tokens = {m: torch.from_numpy(rng.integers(0, self.vocab[m], (b, n)))
                  for m, n in self.num_tokens.items()}
        avail = {m: torch.ones(b, dtype=torch.bool) for m in self.num_tokens}
        frac = self.cfg.stream.drop_depth_fraction
        if "depth" in avail and frac > 0:
            avail["depth"] = torch.from_numpy(rng.random(b) >= frac)
            tokens["depth"][~avail["depth"]] = 0
        return {"tokens": tokens, "available": avail}

    def state(self, step: int) -> dict[str, Any]:
        """Data position (nothing beyond the step)."""
        return {"step": step}

    def close(self) -> None:
        """Nothing to release."""


class CacheSource:
    """Clips of ``data.cache_dir``; the batch of step ``s`` is ``B * world`` clips drawn
    from ``default_rng([seed, s])``, rank ``r`` taking the ``r``-th slice.

    Raw clip files are tokenized once (shipped tokenizers) into
    ``output_dir/token_cache/<hash>.npz`` (the hash names the files, their sizes, the
    modalities and the tokenizer checkpoints), reused by later runs.
    """

    def __init__(self, cfg: TrainModelConfig, model: EgoM2P, rank: int = 0, world: int = 1
                 ) -> None:
        self.cfg, self.rank, self.world = cfg, rank, world
        self.num_tokens = model.num_tokens
        files = sorted(Path(cfg.data.cache_dir).glob("*.npz"))
        if cfg.data.cache_clips:
            files = files[:cfg.data.cache_clips]
        if not files:
            raise FileNotFoundError(f"data.cache_dir {cfg.data.cache_dir!r} holds no .npz "
                                    "clips (egosim egom2p train-tokenizer builds the raw clip "
                                    "cache runs/egom2p/clip_cache)")
        self.tokens, self.available = self._load(files)
        frac = cfg.stream.drop_depth_fraction
        if "depth" in self.available and frac > 0:
            lose = np.array([drop_depth(cfg.stream.seed, (0, i), frac)
                             for i in range(len(files))])
            self.available["depth"] &= ~lose
        self.size = len(files)

    def _load(self, files: list[Path]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        from tqdm.auto import tqdm

        with np.load(files[0]) as z:
            pretokenized = any(k.startswith("tokens_") for k in z.files)
        if pretokenized:
            tokens = {m: np.zeros((len(files), n), np.int64) for m, n in self.num_tokens.items()}
            avail = {m: np.zeros(len(files), bool) for m in self.num_tokens}
            for i, f in enumerate(files):
                with np.load(f) as z:
                    for m in self.num_tokens:
                        if f"tokens_{m}" in z.files:
                            tokens[m][i] = z[f"tokens_{m}"].reshape(-1)
                            avail[m][i] = True
            return tokens, avail
        from egosim.egom2p.tokenizers import checkpoint_path, load

        mods = list(self.num_tokens)
        h = hashlib.sha1()
        for f in files:
            h.update(f"{f.resolve()}:{f.stat().st_size}".encode())
        for m in mods:
            p = checkpoint_path(m)
            h.update(f"{m}:{p.stat().st_size}:{p.stat().st_mtime_ns}".encode())
        cache = Path(self.cfg.output_dir) / "token_cache" / f"{h.hexdigest()[:16]}.npz"
        if cache.is_file():
            try:
                with np.load(cache) as z:
                    return ({m: z[f"tokens_{m}"] for m in mods},
                            {m: z[f"available_{m}"] for m in mods})
            except (OSError, KeyError, ValueError):
                pass
        toks = {m: load(m) for m in mods}
        tokens = {m: np.zeros((len(files), n), np.int64) for m, n in self.num_tokens.items()}
        avail = {m: np.zeros(len(files), bool) for m in mods}
        chunk = 16
        bar = tqdm(total=len(files), desc="tokenize cache", unit="clip",
                   disable=not self.cfg.progress)
        for start in range(0, len(files), chunk):
            part = files[start:start + chunk]
            loaded = []
            for f in part:
                with np.load(f) as z:
                    loaded.append({k: z[k] for k in z.files})
            for m, tok in toks.items():
                keys = [k for k in tok.clip_keys if all(k in c for c in loaded)]
                if not keys:
                    continue
                batch = {k: np.stack([c[k] for c in loaded]) for k in keys}
                with torch.no_grad():
                    tokens[m][start:start + len(part)] = tok.encode(batch).cpu().numpy()
                avail[m][start:start + len(part)] = True
            bar.update(len(part))
        bar.close()
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_npz(cache, {**{f"tokens_{m}": tokens[m] for m in mods},
                         **{f"available_{m}": avail[m] for m in mods}})
        return tokens, avail

    def batch(self, step: int) -> Batch:
        """The batch of ``step`` (this rank's slice)."""
        b = self.cfg.batch_size
        rng = np.random.default_rng([self.cfg.seed, step])
        idx = rng.integers(0, self.size, b * self.world)[self.rank * b:(self.rank + 1) * b]
        return {"tokens": {m: torch.from_numpy(t[idx]) for m, t in self.tokens.items()},
                "available": {m: torch.from_numpy(a[idx]) for m, a in self.available.items()}}

    def state(self, step: int) -> dict[str, Any]:
        """Data position (the step fixes it)."""
        return {"step": step}

    def close(self) -> None:
        """Nothing to release."""


class StreamSource:
    """Batches of a tokenized :class:`~egosim.egom2p.stream.SimStream` (seed
    ``stream.seed + 1000 rank``), in the DataLoader's fixed order; :meth:`batch` of step
    ``s`` skips forward to batch ``s`` (a resumed run remakes the skipped clips)."""

    def __init__(self, cfg: TrainModelConfig, model: EgoM2P, rank: int = 0) -> None:
        from functools import partial

        from torch.utils.data import DataLoader

        from egosim.egom2p.stream import SimStream

        s = cfg.stream
        overrides = {**s.clip_overrides, "video_size": cfg.video_size,
                     "modalities": [m for m in model.num_tokens]}
        self.seed = s.seed + 1000 * rank
        self.stream = SimStream(s.clip_config, overrides=overrides, seed=self.seed,
                                tokenized=True)
        collate = partial(collate_clips, num_tokens=model.num_tokens,
                          drop_depth_fraction=s.drop_depth_fraction, seed=self.seed)
        self.loader = DataLoader(self.stream, batch_size=cfg.batch_size, collate_fn=collate,
                                 num_workers=s.num_workers,
                                 persistent_workers=False)
        self._it: Iterator[Batch] | None = None
        self.position = 0

    def batch(self, step: int) -> Batch:
        """The ``step``-th batch of the stream."""
        if self._it is None:
            self._it = iter(self.loader)
        while self.position < step:  # resume: remake and skip what was consumed
            next(self._it)
            self.position += 1
        out = next(self._it)
        self.position += 1
        return out

    def state(self, step: int) -> dict[str, Any]:
        """Data position: batches consumed."""
        return {"step": step, "stream_batches": self.position}

    def clips_per_s(self) -> float:
        """Clips/s the stream's workers produced (summed over workers)."""
        return float(sum(d["clips_per_s"] for d in self.stream.stats().values()))

    def close(self) -> None:
        """Stop the workers."""
        self._it = None


def keep_tokens(clip: Mapping[str, Any]) -> dict[str, Any]:
    """A tokenized clip reduced to what training reads: ``tokens_<m>`` ``(N,)`` int32 ids
    and ``meta`` ``{"worker", "index"}`` (the replay buffer's entries; run in the stream's
    DataLoader workers, so only these cross the process boundary)."""
    meta = clip.get("meta") or {}
    out: dict[str, Any] = {k: np.asarray(v, np.int32) for k, v in clip.items()
                           if k.startswith("tokens_")}
    out["meta"] = {"worker": int(meta.get("worker", 0)), "index": int(meta.get("index", 0))}
    return out


class ReplaySource:
    """Batches drawn from a replay buffer of the newest ``data.replay_clips`` stream clips,
    filled by a background thread (see the module docstring, **Replay**).

    Args:
        cfg: the config (``data.replay_clips > 0``).
        model: the model (its modalities and token counts).
        rank: the DDP rank (stream seed ``stream.seed + 1000 rank``).
        resume: the ``data`` state of the checkpoint resumed from (None: a fresh run); only
            free running (``replay_reuse = 0``) reads it, to start a new stream segment.
    """

    def __init__(self, cfg: TrainModelConfig, model: EgoM2P, rank: int = 0,
                 resume: Mapping[str, Any] | None = None) -> None:
        from torch.utils.data import DataLoader

        from egosim.egom2p.stream import SimStream

        s, d = cfg.stream, cfg.data
        self.cfg, self.rank = cfg, rank
        self.num_tokens = model.num_tokens
        self.capacity, self.reuse, self.batch_size = d.replay_clips, d.replay_reuse, \
            cfg.batch_size
        self.scheduled = self.reuse > 0
        prior = resume or {}
        self.segment = 0 if self.scheduled or not prior else int(
            prior.get("replay_segment", 0)) + 1
        self.seed = s.seed + 1000 * rank + 1_000_000 * self.segment
        overrides = {**s.clip_overrides, "video_size": cfg.video_size,
                     "modalities": list(model.num_tokens)}
        self.stream = SimStream(s.clip_config, overrides=overrides, seed=self.seed,
                                tokenized=True)
        self.loader = DataLoader(self.stream, batch_size=None, collate_fn=keep_tokens,
                                 num_workers=s.num_workers, persistent_workers=False)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._buf: deque[dict[str, Any]] = deque(maxlen=None if self.scheduled
                                                 else self.capacity)
        self._base = 0            # loader index of _buf[0] (scheduled mode)
        self._skip = 0            # clips remade and dropped before the window (resume)
        self._needed = 0          # clips the next step needs (scheduled mode)
        self._delivered = 0       # clips the loader delivered (skipped ones included)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._t_start = time.perf_counter()
        self.consumed = 0
        self.wait_s = 0.0
        self._window = (self._t_start, 0, 0.0)   # (time, delivered, wait_s) at last log

    # -- the schedule -------------------------------------------------------------------
    def needed(self, step: int) -> int:
        """Clips the stream must have delivered before ``step``: ``B + floor(s B / r)``
        (scheduled), or ``B`` (free running)."""
        if not self.scheduled:
            return self.batch_size
        return self.batch_size + math.floor(step * self.batch_size / self.reuse)

    def _fill(self, it: Iterator[dict[str, Any]]) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    while (self.scheduled and not self._stop.is_set()
                           and self._delivered >= self._needed + self.capacity):
                        self._cond.wait(0.2)     # far enough ahead: bound the memory
                if self._stop.is_set():
                    break
                clip = next(it)
                with self._cond:
                    if self._delivered >= self._skip:
                        self._buf.append(clip)
                    self._delivered += 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the learner's next batch()
            with self._cond:
                self._error = exc
                self._cond.notify_all()
        finally:
            del it

    def _start(self, step: int) -> None:
        if self.scheduled:
            self._skip = max(0, self.needed(step) - self.capacity)
            self._base = self._skip
        self._needed = self.needed(step)
        it = iter(self.loader)   # made here: the loader's signal handler needs the main thread
        self._thread = threading.Thread(target=self._fill, args=(it,), daemon=True,
                                        name="egom2p-replay")
        self._thread.start()

    def batch(self, step: int) -> Batch:
        """The batch of ``step``: waits until the buffer holds what the step needs."""
        if self._thread is None:
            self._start(step)
        need = self.needed(step)
        t = time.perf_counter()
        with self._cond:
            self._needed = need
            self._cond.notify_all()
            while self._error is None and (self._delivered < need if self.scheduled
                                           else len(self._buf) < self.batch_size):
                self._cond.wait(0.5)
            if self._error is not None:
                raise RuntimeError(f"the replay buffer's stream failed: "
                                   f"{type(self._error).__name__}: {self._error}"
                                   ) from self._error
            if self.scheduled:
                low = max(0, need - self.capacity)
                while self._base < low:
                    self._buf.popleft()
                    self._base += 1
                window = [self._buf[i] for i in range(need - self._base)]
            else:
                window = list(self._buf)
            self._cond.notify_all()
        self.wait_s += time.perf_counter() - t
        rng = np.random.default_rng([self.cfg.seed, self.rank, step, 1])
        idx = rng.choice(len(window), self.batch_size, replace=False)
        self.consumed += self.batch_size
        return collate_clips([window[i] for i in idx], self.num_tokens,
                             self.cfg.stream.drop_depth_fraction, self.seed)

    # -- reporting ----------------------------------------------------------------------
    def delivered(self) -> int:
        """Clips the stream delivered to the buffer this run (remade resume clips not
        counted)."""
        return max(0, self._delivered - self._skip)

    def reuse_factor(self) -> float:
        """Clips consumed by the batches / clips delivered (0 before the first)."""
        got = self.delivered()
        return self.consumed / got if got else 0.0

    def scalars(self) -> dict[str, float]:
        """TensorBoard scalars of the window since the previous call."""
        now, got, wait = time.perf_counter(), self._delivered, self.wait_s
        t0, got0, wait0 = self._window
        self._window = (now, got, wait)
        return {"replay/produced_clips_per_s": (got - got0) / max(now - t0, 1e-9),
                "replay/reuse_factor": self.reuse_factor(),
                "replay/buffer_clips": float(len(self._buf)),
                "replay/wait_s": wait - wait0}

    def summary(self) -> dict[str, Any]:
        """The run's replay figures (``summary.json``'s ``replay`` section)."""
        wall = time.perf_counter() - self._t_start
        return {"buffer_clips": self.capacity, "reuse_setting": self.reuse,
                "mode": "scheduled" if self.scheduled else "free",
                "segment": self.segment, "delivered_clips": self.delivered(),
                "consumed_clips": self.consumed, "remade_clips": self._skip,
                "produced_clips_per_s": self.delivered() / max(wall, 1e-9),
                "consumed_clips_per_s": self.consumed / max(wall, 1e-9),
                "reuse_factor": self.reuse_factor(), "wait_s": round(self.wait_s, 3),
                "source_wall_s": round(wall, 3)}

    def state(self, step: int) -> dict[str, Any]:
        """Data position: the step (scheduled mode needs nothing else), clips delivered and
        the stream segment."""
        return {"step": step, "replay_delivered": self._delivered,
                "replay_segment": self.segment, "replay_mode": "scheduled" if self.scheduled
                else "free"}

    def clips_per_s(self) -> float:
        """Clips/s the stream's workers produced (their own counters, summed)."""
        return float(sum(d["clips_per_s"] for d in self.stream.stats().values()))

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread (it finishes the clip it is waiting for) and the workers."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._buf.clear()


def make_source(cfg: TrainModelConfig, model: EgoM2P, rank: int = 0, world: int = 1,
                resume: Mapping[str, Any] | None = None
                ) -> SyntheticSource | CacheSource | StreamSource | ReplaySource:
    """The data source ``cfg.data.source`` of this rank (``resume``: the checkpoint's data
    state, read by a free-running replay source only)."""
    if cfg.data.source == "synthetic":
        return SyntheticSource(cfg, model, rank)
    if cfg.data.source == "cache":
        return CacheSource(cfg, model, rank, world)
    if cfg.data.replay_clips:
        return ReplaySource(cfg, model, rank, resume)
    return StreamSource(cfg, model, rank)


# -- optimisation -----------------------------------------------------------------------
def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        plain = (p.ndim < 2 or "norm" in name or name.endswith("mask_token")
                 or "_mod." in name or name.endswith(".positions"))
        (no_decay if plain else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(cfg: TrainModelConfig, step: int) -> float:
    """Learning rate of ``step`` / peak: linear warm-up, then cosine to ``min_lr``."""
    o = cfg.optim
    if step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    span = max((o.decay_steps or cfg.steps) - o.warmup_steps, 1)
    frac = min((step - o.warmup_steps) / span, 1.0)
    floor = o.min_lr / o.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))


class _Loss(nn.Module):
    """``mod_dict -> (total, per-modality)``: the module DDP wraps."""

    def __init__(self, model: EgoM2P, smoothing: Mapping[str, float] | None = None,
                 weights: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.smoothing = {m: s for m, s in (smoothing or {}).items() if m in model.vocab}
        self.weights = {m: w.to(next(model.parameters()).device)
                        for m, w in (weights or {}).items() if m in model.vocab}

    def forward(self, mod_dict: dict[str, dict[str, torch.Tensor]]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.model.loss(mod_dict, self.smoothing, self.weights)


def loss_token_weights(cfg: TrainModelConfig) -> dict[str, torch.Tensor]:
    """The per-position loss weights of ``cfg.token_weighting``: modality -> ``(N_m,)``
    (:func:`~egosim.egom2p.model.transformer.token_weights` of its shipped tokenizer's
    ``token_variance()``). Refuses a modality whose tokenizer's tokens are not coefficients
    of a linear code (the error names the key); the synthetic source has no tokenizers, so
    there it gives no weights."""
    from .transformer import token_weights

    if cfg.data.source == "synthetic":
        return {}
    from egosim.egom2p.tokenizers import load

    out: dict[str, torch.Tensor] = {}
    for m, beta in cfg.token_weighting.items():
        if not beta or m not in cfg.modalities:
            continue
        variance = load(m).token_variance()
        if variance is None:
            raise ConfigValueError(f"token_weighting.{m}", f"token_weighting.{m}: the shipped "
                                   f"{m} tokenizer's tokens are not coefficients of a linear "
                                   "code (only the camera's pca code's are); remove the key "
                                   "or set it to 0")
        out[m] = token_weights(torch.from_numpy(np.asarray(variance)), beta)
    return out


def check_ordinal_smoothing(cfg: TrainModelConfig) -> None:
    """Refuse ``ordinal_smoothing`` or ``ordinal_head`` of a modality whose shipped
    tokenizer's ids are not ordinal bins
    (:attr:`egosim.egom2p.tokenizers.Tokenizer.ordinal_ids`); the synthetic source has no
    tokenizer and random ids, so either is accepted there."""
    if cfg.data.source == "synthetic":
        return
    from egosim.egom2p.tokenizers import load

    for m, sigma in cfg.ordinal_smoothing.items():
        if sigma and m in cfg.modalities and not load(m).ordinal_ids:
            raise ConfigValueError(f"ordinal_smoothing.{m}", f"ordinal_smoothing.{m}: the "
                                   f"shipped {m} tokenizer's ids are not ordinal bins (only "
                                   "the camera's pca code is); remove the key or set it to 0")
    for m in cfg.ordinal_head:
        if not load(m).ordinal_ids:
            raise ConfigValueError("ordinal_head", f"ordinal_head: the shipped {m} "
                                   "tokenizer's ids are not ordinal bins (only the camera's "
                                   "pca code is); remove it from the list")


def _device(cfg: TrainModelConfig, local_rank: int) -> torch.device:
    if cfg.device == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if cfg.device == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(cfg.device)


def _bf16(cfg: TrainModelConfig, device: torch.device) -> bool:
    if cfg.bf16 == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if cfg.bf16 and device.type != "cuda":
        raise ValueError("bf16=true needs a CUDA device (set bf16: auto or false on a CPU)")
    return bool(cfg.bf16)


def export(model: EgoM2P, folder: str | Path, name: str, step: int, info: dict[str, Any]
           ) -> Path:
    """Write ``folder/<name>.pt`` (architecture, weights, step, info) and the model card
    ``folder/<name>.md``; returns the ``.pt`` path. Floating-point weights are stored as
    float16 (half the size; :func:`~egosim.egom2p.model.inference.load_model` loads them
    back into float32 parameters)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu().clone())
             for k, v in model.state_dict().items()}
    path = torch_save({"format": CHECKPOINT_FORMAT, "arch": model.arch.to_dict(),
                       "state_dict": state, "step": int(step), "info": info},
                      folder / f"{name}.pt")
    a = model.arch
    losses = info.get("final_losses", {})
    lines = [f"# EgoM2P model `{name}`", "",
             f"- Architecture: {a.encoder_depth} + {a.decoder_depth} blocks, width {a.dim}, "
             f"{a.heads} heads, SwiGLU, no biases; video head `{a.video_head}`; positions "
             f"`{a.position_table}` x {a.position_scale:g}; {model.num_parameters():,} parameters.",
             f"- Modalities: {', '.join(a.modalities)} at {a.video_size[0]} x "
             f"{a.video_size[1]} px (tokens: "
             + ", ".join(f"{m} {n}" for m, n in model.num_tokens.items()) + ").",
             f"- Trained {step} steps in {info.get('wall_s', 0):.0f} s on "
             f"{info.get('machine', '?')}; data: {info.get('data', '?')}.",
             f"- Budgets: {info.get('input_budget')} input + {info.get('target_budget')} "
             f"target tokens per sample; batch {info.get('batch_size')}.",
             "- Final training losses (cross-entropy, nats, mean of the last 50 steps): "
             + (", ".join(f"{m} {v:.3f}" for m, v in losses.items()) or "none") + "."
             + _smoothing_note(info.get("config", {}), model),
             "", "Config:", "", "```json", __import__("json").dumps(info.get("config", {}),
                                                                  indent=1), "```", ""]
    write_text(folder / f"{name}.md", "\n".join(lines))
    return path


def _smoothing_note(config: Mapping[str, Any], model: EgoM2P) -> str:
    """The card's note on losses to ordinal-smoothed targets (their floor is the target's
    own entropy), or ''."""
    from .transformer import ordinal_targets

    parts = []
    for m, sigma in (config.get("ordinal_smoothing") or {}).items():
        if sigma and m in model.vocab:
            t = ordinal_targets(torch.tensor([model.vocab[m] // 2]), model.vocab[m], sigma)[0]
            floor = float(-(t * t.clamp_min(1e-30).log()).sum())
            parts.append(f"{m} is to its ordinal-smoothed target (std {sigma:g} ids; floor "
                         f"{floor:.2f}, uniform {math.log(model.vocab[m]):.3f})")
    return (" The " + "; ".join(parts) + ".") if parts else ""


def params_digest(model: nn.Module) -> str:
    """SHA-1 of the bytes of every parameter and buffer of ``model`` (state-dict order): equal
    digests mean bit-identical weights (e.g. across DDP ranks)."""
    h = hashlib.sha1()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# -- the loop ---------------------------------------------------------------------------
def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _read_training_checkpoint(path: Path) -> dict[str, Any]:
    state = read_checkpoint(path)
    missing = [k for k in ("optimizer", "scheduler", "step", "arch") if k not in state]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (lacks {', '.join(missing)})")
    return state


def init_weights(model: EgoM2P, path: str | Path) -> None:
    """Load the weights of the model file ``path`` (an export or a training checkpoint)
    into ``model`` (the ``init`` key: fine-tuning).

    Raises:
        FileNotFoundError: no file there (the error names the ``init`` key).
        ValueError: not a model checkpoint, or one of another architecture.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"init: no model file at {target}")
    state = read_checkpoint(target)
    if "state_dict" not in state or "arch" not in state:
        raise ValueError(f"init: {target} is not an EgoM2P model checkpoint")
    if Architecture.from_dict(state["arch"]) != model.arch:
        raise ValueError(f"init: {target} holds a model of {state['arch']}, the config asks "
                         f"for {model.arch.to_dict()}")
    model.load_state_dict(state["state_dict"])  # float16 exports cast to the float32 params


def run(cfg: TrainModelConfig) -> dict[str, Any]:
    """Train (or resume) the model of ``cfg``; returns the summary (also
    ``output_dir/summary.json``, written by rank 0)."""
    import torch.distributed as dist
    from tqdm.auto import tqdm

    check_ordinal_smoothing(cfg)
    weights = loss_token_weights(cfg)
    torch.set_num_threads(cfg.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(cfg, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    bf16 = _bf16(cfg, device)
    lead = rank == 0
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(_param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                            betas=cfg.optim.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s))
    out_dir = Path(cfg.output_dir)
    ckpt_dir = out_dir / "checkpoints"
    if lead:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    if world > 1:
        dist.barrier()
    step = 0
    elapsed0 = 0.0
    resumed_data: dict[str, Any] | None = None
    found = newest_good_checkpoint(ckpt_dir, "step_*.pt", _read_training_checkpoint,
                                   "egom2p train") if cfg.resume and ckpt_dir.is_dir() else None
    if found is not None:
        state = found[1]
        if Architecture.from_dict(state["arch"]) != model.arch:  # older files: defaults
            raise ValueError(f"{found[0]} holds a model of {state['arch']}, the config asks "
                             f"for {model.arch.to_dict()} (set resume=false or another "
                             "output_dir)")
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        elapsed0 = float(state.get("elapsed_s", 0.0))
        resumed_data = state.get("data")
        _set_rng_state(state["rng"])
    elif cfg.init is not None:
        init_weights(model, cfg.init)
    net: nn.Module = _Loss(model, cfg.ordinal_smoothing, weights)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
    source = make_source(cfg, model, rank, world, resumed_data)
    roles = cfg.learned_roles()
    tasks = mask_tasks(cfg)
    writer = None
    if cfg.tensorboard and lead:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"), purge_step=step)

    def save() -> Path | None:
        if not lead:
            return None
        state = {"format": CHECKPOINT_FORMAT, "arch": model.arch.to_dict(),
                 "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "step": step, "rng": _rng_state(),
                 "data": source.state(step), "elapsed_s": elapsed0 + time.perf_counter() - t0,
                 "config": cfg.model_dump(mode="json"), "info": {"training_checkpoint": True}}
        path = torch_save(state, ckpt_dir / f"step_{step:07d}.pt")
        for old in sorted(ckpt_dir.glob("step_*.pt"), reverse=True)[cfg.keep_checkpoints:]:
            old.unlink(missing_ok=True)
        return path

    recent: deque[dict[str, float]] = deque(maxlen=50)
    wait_total = wall_total = 0.0
    win_wait = win_wall = 0.0
    win_steps = 0
    start_step = step
    previous = exit_on_sigterm()
    bar = tqdm(total=cfg.steps, initial=step, desc="egom2p train", disable=not (
        cfg.progress and lead))
    t0 = time.perf_counter()
    final: Path | None = None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    try:
        while step < cfg.steps:
            ts = time.perf_counter()
            batch = source.batch(step)
            g = torch.Generator().manual_seed(int(np.random.SeedSequence(
                [cfg.seed, rank, step]).generate_state(1, np.uint64)[0] >> 2))
            mod_dict = make_mod_dict(batch["tokens"], batch["available"], cfg.input_budget,
                                     cfg.target_budget, cfg.alphas, g, roles, tasks,
                                     cfg.task_fraction)
            mod_dict = {m: {k: v.to(device, non_blocking=True) for k, v in e.items()}
                        for m, e in mod_dict.items()}
            tw = time.perf_counter()
            with autocast:
                total, per = net(mod_dict)
            opt.zero_grad(set_to_none=True)
            total.backward()
            grad_norm = nn.utils.clip_grad_norm_(
                model.parameters(), cfg.optim.grad_clip if cfg.optim.grad_clip > 0
                else float("inf"))  # the norm before clipping, logged
            opt.step()
            sched.step()
            step += 1
            te = time.perf_counter()
            wait, wall = tw - ts, te - ts
            wait_total += wait
            wall_total += wall
            win_wait += wait
            win_wall += wall
            win_steps += 1
            recent.append({"total": float(total.detach()),
                           **{m: float(v.detach()) for m, v in per.items()}})
            bar.update(1)
            bar.set_postfix(loss=f"{recent[-1]['total']:.3f}")
            if writer is not None and step % cfg.log_every == 0:
                writer.add_scalar("loss/total", recent[-1]["total"], step)
                for m, v in per.items():
                    writer.add_scalar(f"loss/{m}", float(v.detach()), step)
                writer.add_scalar("lr", opt.param_groups[0]["lr"], step)
                writer.add_scalar("grad_norm", float(grad_norm), step)
                writer.add_scalar("clips_per_s", win_steps * cfg.batch_size * world
                                  / max(win_wall, 1e-9), step)
                writer.add_scalar("data_wait_fraction", win_wait / max(win_wall, 1e-9), step)
                if isinstance(source, ReplaySource):
                    for name, value in source.scalars().items():
                        writer.add_scalar(name, value, step)
                win_wait = win_wall = 0.0
                win_steps = 0
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save()
    finally:
        bar.close()
        final = save()
        if writer is not None:
            writer.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    wall_s = time.perf_counter() - t0
    done = step - start_step
    final_losses: dict[str, float] = {}
    for key in {k for r in recent for k in r}:
        vals = [r[key] for r in recent if key in r]
        final_losses[key] = float(np.mean(vals))
    summary: dict[str, Any] = {
        "steps": step, "steps_this_run": done, "wall_s": round(wall_s, 2),
        "train_s_total": round(elapsed0 + wall_s, 2),
        "clips_per_s": done * cfg.batch_size * world / max(wall_total, 1e-9) if done else 0.0,
        "stream_clips_per_s": (source.clips_per_s() if isinstance(source, (StreamSource,
                                                                            ReplaySource))
                               else None),
        "data_wait_fraction": wait_total / max(wall_total, 1e-9) if done else 0.0,
        "final_losses": dict(sorted(final_losses.items())),
        "parameters": model.num_parameters(), "params_sha1": params_digest(model),
        "device": str(device), "bf16": bf16,
        "world_size": world, "checkpoint": str(final) if final else None,
        "data": cfg.data.source,
    }
    if isinstance(source, ReplaySource):
        summary["replay"] = source.summary()
    source.close()
    if lead and cfg.export_dir:
        info = {"config": cfg.model_dump(mode="json"), "final_losses": summary["final_losses"],
                "wall_s": elapsed0 + wall_s, "machine": machine_description(),
                "data": cfg.data.source,
                "input_budget": cfg.input_budget, "target_budget": cfg.target_budget,
                "batch_size": cfg.batch_size}
        summary["export"] = str(export(model, cfg.export_dir, cfg.size, step, info))
    if lead:
        write_json(out_dir / "summary.json", summary, indent=2, default=str)
    if world > 1 and dist.is_initialized():
        dist.barrier()
    return summary
