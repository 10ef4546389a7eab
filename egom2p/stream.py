"""The endless stream of EgoM2P clips: :class:`SimStream`, a torch ``IterableDataset``.

Each DataLoader worker runs its own :class:`~egosim.egom2p.clips.ClipBuilder` (simulation,
scene pool and renderers kept across clips) and yields clips without end (layout in
:mod:`egosim.egom2p.clips`)::

    from torch.utils.data import DataLoader
    from egosim.egom2p.stream import SimStream

    stream = SimStream(overrides={"video_size": 64}, seed=0)
    loader = DataLoader(stream, batch_size=None, num_workers=2)   # clip by clip
    for clip in loader:                                           # tensors (default_convert)
        ...
    print(stream.format_stats())                                  # clips/s, seconds per stage

**Determinism.** Clip ``i`` of worker ``w`` (``torch.utils.data.get_worker_info().id``; 0
with ``num_workers=0``) under base seed ``s`` is a pure function of ``(s, w, i)``: each
iterator (every epoch of a DataLoader, every ``iter(stream)``) starts its workers at clip 0,
and a worker makes its clips in order. So the same seed and worker count give the same
clips in the same order (a DataLoader takes them from its workers in turn), the first
clips of worker 0 are the same with 0 or more workers, and two workers never make the same
clip (their scenes, episodes and generators differ). ``clip["meta"]`` holds ``worker`` and
``index``.

**Tokens.** ``tokenized=True`` passes every clip through ``tokenize`` (a callable ``clip ->
clip``), by default :func:`default_tokenize`: the shipped tokenizers of
:mod:`egosim.egom2p.tokenizers` add ``tokens_<modality>`` ``(N,)`` int64 entries.

**Counters.** Per worker: clips made, wall seconds since its first clip was started, and
seconds per stage (:data:`STAGES`: scene, policy, motion, skin, render, gaze, assemble,
tokenize), kept in shared memory so the main process reads them (:meth:`SimStream.stats`,
:meth:`SimStream.format_stats`) while the workers run.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from egosim.egom2p.clips import STAGES as BUILD_STAGES
from egosim.egom2p.clips import ClipBuilder, resolve_clip_config
from egosim.egom2p.config import ClipConfig

__all__ = ["MAX_WORKERS", "STAGES", "SimStream", "default_tokenize", "format_stats",
           "run_stream"]

#: Timed stages of a stream worker (the builder's, then tokenize).
STAGES: tuple[str, ...] = (*BUILD_STAGES, "tokenize")
#: Workers whose counters are kept (higher worker ids are not counted).
MAX_WORKERS = 64
_COLUMNS = ("clips", "wall", *STAGES)

Clip = dict[str, Any]


def default_tokenize(modalities: Sequence[str]) -> Callable[[Clip], Clip]:
    """A ``clip -> clip`` hook adding ``tokens_<name>`` ``(N,)`` int64 entries: the shipped
    tokenizer of each of ``modalities`` (``egosim.egom2p.tokenizers.load(name)``), loaded
    on first use in the process that tokenizes.

    Raises:
        RuntimeError: (on first use) the tokenizers or their checkpoints are not available;
            pass ``tokenize=`` to :class:`SimStream` instead.
    """
    names = tuple(modalities)
    loaded: dict[str, Any] = {}

    def tokenize(clip: Clip) -> Clip:
        if not loaded:
            try:
                tok = importlib.import_module("egosim.egom2p.tokenizers")
                for name in names:
                    loaded[name] = tok.load(name)
            except (ImportError, AttributeError, KeyError, OSError, ValueError) as exc:
                raise RuntimeError(f"tokenized=True needs the shipped tokenizers of "
                                   f"{', '.join(names)} ({type(exc).__name__}: {exc}); pass "
                                   "tokenize=callable to SimStream") from None
        out = dict(clip)
        with torch.no_grad():
            for name, t in loaded.items():
                batch = {k: np.asarray(clip[k])[None] for k in t.clip_keys if k in clip}
                out[f"tokens_{name}"] = t.encode(batch)[0].cpu().numpy().astype(np.int64)
        return out

    return tokenize


class SimStream(IterableDataset):
    """Clips from the simulation without end (see the module docstring).

    Args:
        config: a :class:`~egosim.egom2p.config.ClipConfig`, a shipped config name or YAML
            path, a dict, or None (``configs/egom2p_clips.yaml``'s defaults).
        overrides: dotted ``key=value`` overrides.
        seed: the base seed ``s``.
        tokenized: pass clips through ``tokenize``.
        tokenize: the ``clip -> clip`` hook (None: :func:`default_tokenize` of the
            configured modalities).
        threads: ray-casting threads per worker (None: 1 in DataLoader workers, every core
            with ``num_workers=0``).
        extra_views: see :class:`~egosim.egom2p.clips.ClipBuilder`.
        warm: each worker builds its whole scene pool before its first clip
            (:meth:`~egosim.egom2p.clips.ClipBuilder.warm_up`; the clips are the same).

    Raises:
        egosim.config.ConfigError: a bad config (the message names the key).
    """

    def __init__(self, config: ClipConfig | str | dict | None = None,
                 overrides: Sequence[str] | dict[str, Any] | None = None, seed: int = 0,
                 tokenized: bool = False, tokenize: Callable[[Clip], Clip] | None = None,
                 threads: int | None = None, extra_views: Sequence[str] = (),
                 warm: bool = False) -> None:
        super().__init__()
        if seed < 0:
            raise ValueError(f"seed must be >= 0; got {seed}")
        self.cfg = resolve_clip_config(config, overrides)
        self.seed = int(seed)
        self.tokenized = bool(tokenized)
        self.tokenize = tokenize
        self.threads = threads
        self.extra_views = tuple(extra_views)
        self.warm = bool(warm)
        self._counters = torch.zeros(MAX_WORKERS, len(_COLUMNS), dtype=torch.float64)
        self._counters.share_memory_()

    def __iter__(self) -> Iterator[Clip]:
        """The clips of this process's worker, from clip 0 on."""
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else int(info.id)
        threads = self.threads
        if threads is None:
            from egosim.sensors.raycast import default_num_threads

            threads = 1 if info is not None else default_num_threads()
        hook = None
        if self.tokenized:
            hook = self.tokenize or default_tokenize(self.cfg.modalities)
        return self._clips(worker, threads, hook)

    def _clips(self, worker: int, threads: int, hook: Callable[[Clip], Clip] | None
               ) -> Iterator[Clip]:
        builder = ClipBuilder(self.cfg, seed=self.seed, worker=worker, threads=threads,
                              extra_views=self.extra_views)
        row = self._counters[worker] if worker < MAX_WORKERS else None
        if row is not None:
            row.zero_()
        start = time.perf_counter()
        if self.warm:
            builder.warm_up()
        tokenize_s = 0.0
        try:
            while True:
                clip = builder.next_clip()
                if hook is not None:
                    t0 = time.perf_counter()
                    clip = hook(clip)
                    tokenize_s += time.perf_counter() - t0
                if row is not None:
                    values = [builder.clips_made, time.perf_counter() - start,
                              *(builder.times[s] for s in BUILD_STAGES), tokenize_s]
                    row.copy_(torch.tensor(values, dtype=torch.float64))
                yield clip
        finally:
            builder.close()

    def stats(self) -> dict[int, dict[str, float]]:
        """Counters of every worker that made clips: ``{worker: {"clips", "wall" (s),
        "clips_per_s", <stage> (s) ...}}``, as of the workers' latest clips."""
        out: dict[int, dict[str, float]] = {}
        for w, row in enumerate(self._counters.tolist()):
            if row[0] <= 0:
                continue
            d = dict(zip(_COLUMNS, row, strict=True))
            d["clips_per_s"] = d["clips"] / d["wall"] if d["wall"] > 0 else 0.0
            out[w] = d
        return out

    def format_stats(self) -> str:
        """:meth:`stats` as a table (see :func:`format_stats`)."""
        return format_stats(self.stats())

    def reset_stats(self) -> None:
        """Zero the counters (the workers keep counting from their current totals)."""
        self._counters.zero_()


def format_stats(stats: dict[int, dict[str, float]]) -> str:
    """A table of per-worker counters: clips, clips/s and milliseconds per clip per stage,
    and the total (clips/s summed over workers)."""
    head = f"{'worker':>6} {'clips':>7} {'clips/s':>8} " + " ".join(f"{s:>9}" for s in STAGES)
    lines = [head + "   (ms per clip)", "-" * len(head)]
    for w, d in sorted(stats.items()):
        per = [1000.0 * d[s] / max(d["clips"], 1.0) for s in STAGES]
        lines.append(f"{w:>6} {int(d['clips']):>7} {d['clips_per_s']:>8.2f} "
                     + " ".join(f"{p:>9.1f}" for p in per))
    if len(stats) > 1:
        clips = sum(d["clips"] for d in stats.values())
        rate = sum(d["clips_per_s"] for d in stats.values())
        per = [1000.0 * sum(d[s] for d in stats.values()) / max(clips, 1.0) for s in STAGES]
        lines.append(f"{'all':>6} {int(clips):>7} {rate:>8.2f} "
                     + " ".join(f"{p:>9.1f}" for p in per))
    return "\n".join(lines)


#: Fewest clips after each worker's first for :func:`run_stream` to report a steady rate.
MIN_STEADY_CLIPS = 16


def run_stream(cfg: ClipConfig) -> dict[str, Any]:
    """``egosim egom2p stream``: stream ``cfg.stream.clips`` clips through a DataLoader of
    ``cfg.stream.num_workers`` workers (tqdm bar), print the rate and the per-stage table,
    and write the preview MP4 of the first ``preview_clips`` clips (unless ``preview`` is
    null).

    Returns:
        ``clips``, ``seconds`` (wall, worker start-up included), ``clips_per_s`` (over the
        clips after the first one of each worker when there are at least
        :data:`MIN_STEADY_CLIPS` of them and a second has passed, else over the whole run),
        ``stats`` (per worker) and
        ``preview`` (path or None).
    """
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from egosim.egom2p.preview import write_preview

    run = cfg.stream
    stream = SimStream(cfg, seed=run.seed)
    loader = DataLoader(stream, batch_size=None, num_workers=run.num_workers)
    keep: list[Clip] = []
    workers = max(1, run.num_workers)
    t0 = time.perf_counter()
    t_first = None
    bar = tqdm(total=run.clips, desc="egom2p stream", unit="clip", disable=not run.progress)
    it = iter(loader)
    try:
        for i in range(run.clips):
            clip = next(it)
            if i + 1 == min(workers, run.clips):
                t_first = time.perf_counter()
            if run.preview is not None and len(keep) < run.preview_clips:
                keep.append(clip)
            bar.update(1)
    finally:
        bar.close()
        del it
    t_end = time.perf_counter()
    wall = t_end - t0
    steady = run.clips - workers
    # clips arrive in bursts (one batched step finishes several), so a steady rate needs
    # enough clips and time after the first ones; otherwise report the whole run's rate
    if t_first is not None and steady >= MIN_STEADY_CLIPS and t_end - t_first >= 1.0:
        rate = steady / (t_end - t_first)
        how = f"after the first clip of each of {workers} worker(s)"
    else:
        rate = run.clips / wall
        how = (f"start-up included: fewer than {MIN_STEADY_CLIPS} clips after the first of "
               "each worker")
    stats = stream.stats()
    print(f"egom2p stream: {run.clips} clips in {wall:.1f} s ({rate:.2f} clips/s {how}; "
          f"{cfg.video_size} px, {', '.join(cfg.modalities)})")
    print(format_stats(stats))
    preview = None
    if run.preview is not None:
        preview = write_preview(run.preview, keep, fps=cfg.video_fps, far=cfg.far_m)
        print(f"wrote preview: {preview.resolve()} (RGB | depth | gaze | trajectory)")
    return {"clips": run.clips, "seconds": wall, "clips_per_s": rate, "stats": stats,
            "preview": preview}
