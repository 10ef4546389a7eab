"""``egosim generate``: datasets of simulated clips on demand, crash-safe and resumable.

:func:`generate` writes ``cfg.clips`` clips as WebDataset shards into ``cfg.output_dir``
(layouts in :mod:`egosim.egom2p.datasets.layout`), ``cfg.workers`` shards at a time on the
local machine (processes) or on Ray (:mod:`egosim.egom2p.datasets.ray_backend`), with a
tqdm bar (clips, ETA), then ``dataset.json`` (config, seeds, counts, per-shard sha256 and
sample counts, statistics), a dataset card ``README.md`` and ``preview.mp4`` of the first
``cfg.previews`` clips::

    egosim generate output_dir=data/sim clips=10000 workers=8 clip_overrides.video_size=128
    egosim generate output_dir=data/sim_tok layout=egom2p tokens=true
    egosim generate output_dir=data/hmr task=hmr clip_overrides.humans=[2,4]
    egosim generate backend=ray ray_address=auto workers=200 clips=1000000

**Determinism.** Shard ``k`` is the first clips of ``ClipBuilder(config, seed=seed,
worker=k)``, a pure function of ``(seed, k)`` and the config, so sample ``i`` is the same
bytes whatever ``workers`` or ``backend`` (tars are written reproducibly:
:mod:`egosim.egom2p.datasets.shards`).

**Crash safety.** Each shard's tars are written under temporary names and renamed when
complete, then its done record (sha256 and size of every tar) is written atomically. A
rerun of the same command (after ``kill -9`` at any moment, a power loss, or to check a
copy) verifies every recorded shard (``verify``: sha256 or size), makes again the shards
that have no record or fail it (a truncated or altered tar: same bytes as before), and
rewrites ``dataset.json`` and the card. A folder made with another config is refused with
the keys that differ (``dataset.json``'s ``identity``: the content keys
:data:`~egosim.egom2p.generate_config.CONTENT_KEYS`, the resolved clip config and, with
tokens, the tokenizer checkpoints' checksums); ``workers``, ``backend``, ``ray_*``,
``previews`` and ``progress`` may change between runs.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from egosim.egom2p.datasets.layout import (
    DATASET_JSON,
    DONE_DIR,
    META_DIR,
    PREVIEW,
    README,
    decode_entry,
    done_path,
)
from egosim.egom2p.datasets.shards import (
    ShardJob,
    iter_tar,
    make_shard,
    read_done,
    sha256_file,
    summarize_stats,
    verify_shard,
    warm_up,
)
from egosim.egom2p.generate_config import CONTENT_KEYS, GenerateConfig

__all__ = ["FORMAT", "clips_per_shard", "dataset_identity", "generate", "plan_shards",
           "resolve_clips", "run_generate"]

#: ``dataset.json``'s ``format``.
FORMAT = "egosim-dataset/1"
_RUNTIME_KEYS = ("output_dir", "workers", "backend", "ray_address", "ray_temp_dir",
                 "previews", "progress", "verify")


# -- config ---------------------------------------------------------------------------


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> dotted keys (empty dicts stay leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resolve_clips(cfg: GenerateConfig) -> Any:
    """The :class:`~egosim.egom2p.config.ClipConfig` of ``cfg`` (``clip_config`` with the
    dotted ``clip_overrides``; nested sections are flattened to dotted keys).

    Raises:
        egosim.config.ConfigError: a bad clip key or value (named).
    """
    from egosim.egom2p.clips import resolve_clip_config

    return resolve_clip_config(cfg.clip_config, _flatten(dict(cfg.clip_overrides)))


def clips_per_shard(cfg: GenerateConfig, clip_cfg: Any) -> int:
    """Clips per shard: ``shard_size`` (``task=hmr``: ``shard_size // video_frames``, at
    least 1, as its samples are frames)."""
    if cfg.task == "hmr":
        return max(1, cfg.shard_size // clip_cfg.video_frames)
    return cfg.shard_size


def plan_shards(cfg: GenerateConfig, clip_cfg: Any) -> list[ShardJob]:
    """The dataset's shards in order (the last one may hold fewer clips)."""
    from egosim.config import dump_config

    per = clips_per_shard(cfg, clip_cfg)
    data = dump_config(clip_cfg, mode="json")
    return [ShardJob(root=str(Path(cfg.output_dir).resolve()), index=k,
                     clips=min(per, cfg.clips - k * per), seed=cfg.seed, clip_config=data,
                     layout=cfg.layout, task=cfg.task, tokens=cfg.tokens,
                     dataset_name=cfg.dataset_name)
            for k in range(math.ceil(cfg.clips / per))]


def dataset_identity(cfg: GenerateConfig, clip_cfg: Any) -> dict[str, Any]:
    """What defines the dataset's bytes: the content keys, the resolved clip config (less
    its ``stream`` section, which the builder ignores) and, with tokens, the sha256 of each
    shipped tokenizer checkpoint used."""
    from egosim.config import dump_config

    clip = dump_config(clip_cfg, mode="json")
    clip.pop("stream", None)
    ident: dict[str, Any] = {k: getattr(cfg, k) for k in CONTENT_KEYS}
    ident["clip"] = clip
    if cfg.tokens:
        from egosim.egom2p.tokenizers import checkpoint_path

        ident["tokenizers"] = {m: sha256_file(checkpoint_path(m))
                               for m in clip_cfg.modalities}
    return ident


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    a, b = _flatten(stored), _flatten(wanted)
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            out.append(f"{k} (folder: {a.get(k, '<absent>')!r}, asked: "
                       f"{b.get(k, '<absent>')!r})")
    return out


def _check_folder(root: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The stored ``dataset.json`` (None for a new folder), after checking that it was made
    with ``identity``.

    Raises:
        ValueError: another config made the folder (names the keys), or the folder holds
            other files and no ``dataset.json``.
    """
    import json

    meta = root / DATASET_JSON
    if not meta.is_file():
        from egosim.atomic_io import is_temp_file

        other = [p.name for p in root.iterdir() if p.name not in (".generate.lock", DONE_DIR)
                 and not is_temp_file(p)] if root.is_dir() else []
        if other:
            raise ValueError(f"{root} is not empty ({', '.join(sorted(other)[:5])}) and has no "
                             f"{DATASET_JSON}: choose an empty or new output_dir")
        return None
    try:
        stored = json.loads(meta.read_text())
        have = stored["identity"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{meta} is not a dataset record of egosim generate ({exc}); "
                         "choose another output_dir") from None
    diff = _differences(have, identity)
    if diff:
        raise ValueError(f"{root} holds a dataset made with another config; these keys "
                         f"differ: {'; '.join(diff)}. Use the same config to resume, or "
                         "choose another output_dir")
    return stored


def _remove_temps(root: Path) -> None:
    from egosim.atomic_io import remove_temp_files

    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        remove_temp_files(folder)


# -- backends -------------------------------------------------------------------------

_POOL: dict[str, Any] = {}


def _pool_init(counter: Any, ready: Any, parent: int, warm: ShardJob | None) -> None:
    import torch

    torch.set_num_threads(1)
    _POOL.update(counter=counter, parent=parent)
    if warm is not None:
        warm_up(warm)
    with ready.get_lock():
        ready.value += 1


def _pool_progress(n: int) -> None:
    c = _POOL["counter"]
    with c.get_lock():
        c.value += n


def _pool_orphaned() -> bool:
    return os.getppid() != _POOL["parent"]


def _pool_run(job: ShardJob) -> dict[str, Any]:
    return make_shard(job, progress=_pool_progress, should_stop=_pool_orphaned)


def _run_local(todo: list[ShardJob], workers: int, bar: Any, warm: bool
               ) -> tuple[list[dict[str, Any]], float, float]:
    """Make ``todo`` on this machine: ``(records, startup_s, seconds)``."""
    t0 = time.perf_counter()
    n = min(workers, len(todo))
    if n <= 1:
        if warm:
            warm_up(todo[0])
        t1 = time.perf_counter()
        records = [make_shard(j, progress=bar.update) for j in todo]
        return records, t1 - t0, time.perf_counter() - t1
    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    ready = ctx.Value("i", 0)
    records = []
    with ctx.Pool(n, initializer=_pool_init,
                  initargs=(counter, ready, os.getpid(), todo[0] if warm else None)) as pool:
        while warm and ready.value < n:
            time.sleep(0.05)
        t1 = time.perf_counter()
        it = pool.imap_unordered(_pool_run, todo, chunksize=1)
        shown = 0
        while len(records) < len(todo):
            with contextlib.suppress(mp.TimeoutError):
                records.append(it.next(timeout=0.25))
            now = counter.value
            bar.update(now - shown)
            shown = now
    return records, t1 - t0, time.perf_counter() - t1


# -- outputs --------------------------------------------------------------------------


def _decoded(entries: dict[str, bytes]) -> dict[str, Any]:
    out = {}
    for name, data in entries.items():
        base = name.rsplit(".", 1)[0]
        out[base] = decode_entry(name, data)
    return out


def _first_samples(root: Path, jobs: list[ShardJob], part: str) -> Iterator[dict[str, Any]]:
    for job in jobs:
        for _, entries in iter_tar(root / job.files()[part]):
            yield _decoded(entries)


def _write_previews(root: Path, cfg: GenerateConfig, clip_cfg: Any, jobs: list[ShardJob]
                    ) -> Path | None:
    """``preview.mp4`` of the first ``cfg.previews`` clips (made if missing)."""
    path = root / PREVIEW
    if cfg.previews <= 0 or path.is_file():
        return path if path.is_file() else None
    from egosim.egom2p.preview import write_preview

    n = cfg.previews
    if cfg.task == "hmr":
        from egosim.egom2p.datasets.hmr import write_hmr_preview

        frames = []
        for s in _first_samples(root, jobs, "all"):
            frames.append(s)
            if len(frames) >= n * clip_cfg.video_frames:
                break
        return write_hmr_preview(path, frames, fps=clip_cfg.video_fps)
    clips: list[dict[str, Any]] = []
    if cfg.layout == "clips":
        for s in _first_samples(root, jobs, "all"):
            clips.append(s)
            if len(clips) >= n:
                break
    else:  # token shards hold no images: the first clips again (the same clips)
        from egosim.egom2p.datasets.shards import _builder

        for job in jobs:
            b = _builder(job)
            clips += [b.next_clip() for _ in range(min(job.clips, n - len(clips)))]
            b.close()
            if len(clips) >= n:
                break
    return write_preview(path, clips, fps=clip_cfg.video_fps, far=clip_cfg.far_m)


def _urls(cfg: GenerateConfig, jobs: list[ShardJob]) -> dict[str, str]:
    """WebDataset brace patterns of the shards, per part."""
    last = len(jobs) - 1
    out = {}
    for part, rel in jobs[0].files().items():
        head, _, _ = rel.rpartition("shard-")
        out[part] = (f"{head}shard-{{{0:06d}..{last:06d}}}.tar" if last else rel)
    return out


def _record(cfg: GenerateConfig, clip_cfg: Any, identity: dict[str, Any],
            jobs: list[ShardJob], records: list[dict[str, Any]], root: Path
            ) -> dict[str, Any]:
    from egosim.config import dump_config

    first = next(iter_tar(root / jobs[0].files()["all" if cfg.layout == "clips"
                                                  else META_DIR]))[1]
    entries = sorted(first)
    if cfg.layout == "egom2p":
        entries = sorted(f"{m}/{cfg.dataset_name}: <key>.npy (tokens_{m})"
                         for m in jobs[0].files() if m != META_DIR) + [
            f"{META_DIR}/{cfg.dataset_name}: <key>.json"]
    config = {k: v for k, v in dump_config(cfg, mode="json").items()
              if k not in _RUNTIME_KEYS}
    return {
        "format": FORMAT,
        "status": "complete",
        "identity": identity,
        "config": config,
        "seeds": {"base": cfg.seed,
                  "shard": "shard k = the first clips of ClipBuilder(clip config, "
                           f"seed={cfg.seed}, worker=k); its clip i: gaze generators from "
                           f"SeedSequence([{cfg.seed}, k, 0, i]), episode j from "
                           f"SeedSequence([{cfg.seed}, k, 1, j])"},
        "counts": {"clips": sum(r["clips"] for r in records),
                   "samples": sum(r["samples"] for r in records),
                   "shards": len(records),
                   "clips_per_shard": clips_per_shard(cfg, clip_cfg),
                   "bytes": sum(f["bytes"] for r in records for f in r["files"].values())},
        "layout": cfg.layout,
        "task": cfg.task,
        "modalities": list(clip_cfg.modalities),
        "entries": entries,
        "urls": _urls(cfg, jobs),
        "shards": [{"index": r["index"], "clips": r["clips"], "samples": r["samples"],
                    "first_key": r["first_key"], "last_key": r["last_key"],
                    "files": r["files"]} for r in records],
        "statistics": summarize_stats([r["stats"] for r in records]),
    }


# -- the job --------------------------------------------------------------------------


def _bar(cfg: GenerateConfig, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=cfg.clips, initial=initial, desc="generate", unit="clip",
                disable=not cfg.progress, smoothing=0.05, dynamic_ncols=True)


def generate(cfg: GenerateConfig, *, warm: bool = False,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make (or finish) the dataset ``cfg`` describes (module docstring).

    Args:
        cfg: the job.
        warm: load every worker (modules, prior, controller, tokenizers) before the clock
            starts, so that ``seconds`` and ``clips_per_s`` measure generation alone
            (benchmarks); the bytes are the same.
        log: where one-line notes go (default stderr).

    Returns:
        ``root``, ``shards``, ``made`` (shards made now), ``clips_made``, ``startup_s``,
        ``seconds`` (making them, wall), ``clips_per_s``, ``cpu_s`` (the workers' CPU time
        making them), ``clips_per_cpu_s`` (clips per second of one core), ``bytes``,
        ``preview`` (path or None), ``record`` (the ``dataset.json`` content).

    Raises:
        ValueError: the folder was made with another config (names the keys), or is not a
            dataset folder.
        egosim.config.ConfigError: a bad clip config.
    """
    from egosim.atomic_io import file_lock, write_json, write_text

    note = log or (lambda s: print(s, file=sys.stderr))
    clip_cfg = resolve_clips(cfg)
    identity = dataset_identity(cfg, clip_cfg)
    root = Path(cfg.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    jobs = plan_shards(cfg, clip_cfg)
    with file_lock(root / ".generate"):
        stored = _check_folder(root, identity)
        _remove_temps(root)
        if stored is None:
            write_json(root / DATASET_JSON, {"format": FORMAT, "status": "incomplete",
                                             "identity": identity}, indent=1)
        todo = []
        for job in jobs:
            why = _stale(root, job, cfg.verify)
            if why is None:
                continue
            if why != "no done record" or any((root / r).exists()
                                               for r in job.files().values()):
                note(f"generate: shard {job.index}: {why}; making it again")
            with contextlib.suppress(FileNotFoundError):
                done_path(root, job.index).unlink()
            todo.append(job)
        made_clips = sum(j.clips for j in todo)
        bar = _bar(cfg, cfg.clips - made_clips)
        startup = seconds = 0.0
        made: list[dict[str, Any]] = []
        try:
            if todo and cfg.backend == "ray":
                from egosim.egom2p.datasets.ray_backend import run_ray

                made, startup, seconds = run_ray(todo, cfg, bar, warm)
            elif todo:
                made, startup, seconds = _run_local(todo, cfg.workers, bar, warm)
        finally:
            bar.close()
        records = []
        for job in jobs:
            rec = read_done(root, job.index)
            if rec is None:
                raise RuntimeError(f"shard {job.index} has no done record after generation")
            records.append(rec)
        record = _record(cfg, clip_cfg, identity, jobs, records, root)
        write_json(root / DATASET_JSON, record, indent=1)
        write_text(root / README, dataset_card(record))
        preview = _write_previews(root, cfg, clip_cfg, jobs)
    total = record["counts"]["bytes"]
    cpu = sum(r["cpu_s"] for r in made)
    return {"root": root, "shards": len(jobs), "made": len(todo), "clips_made": made_clips,
            "startup_s": startup, "seconds": seconds,
            "clips_per_s": made_clips / seconds if seconds > 0 else 0.0, "cpu_s": cpu,
            "clips_per_cpu_s": made_clips / cpu if cpu > 0 else 0.0, "bytes": total,
            "preview": preview, "record": record}


def _stale(root: Path, job: ShardJob, verify: str) -> str | None:
    if verify == "sha256":
        return verify_shard(root, job.index, job.files())
    rec = read_done(root, job.index)
    if rec is None:
        return "no done record"
    for rel, info in rec.get("files", {}).items():
        p = root / rel
        if not p.is_file() or p.stat().st_size != info.get("bytes"):
            return f"{rel} is missing or has another size than recorded"
    if sorted(rec.get("files", {})) != sorted(job.files().values()):
        return "its done record names other files"
    return None


def run_generate(cfg: GenerateConfig) -> dict[str, Any]:
    """``egosim generate``: :func:`generate`, then one summary line."""
    out = generate(cfg)
    rec = out["record"]
    c = rec["counts"]
    rate = (f"{out['clips_made']} clips made in {out['seconds']:.1f} s "
            f"({out['clips_per_s']:.2f} clips/s, {cfg.workers} worker(s), {cfg.backend})"
            if out["made"] else "nothing to make: every shard verified")
    print(f"generate: {out['root']}: {c['clips']} clips, {c['samples']} samples in "
          f"{c['shards']} shards, {c['bytes'] / 2**20:.1f} MiB "
          f"({c['bytes'] / max(c['clips'], 1) / 1024:.0f} KiB per clip); {rate}")
    if out["preview"] is not None:
        print(f"generate: preview {out['preview']}")
    return out


# -- the dataset card -----------------------------------------------------------------


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


def dataset_card(record: dict[str, Any]) -> str:
    """The ``README.md`` of a dataset folder, from its ``dataset.json`` record."""
    import yaml

    c = record["counts"]
    clip = record["identity"]["clip"]
    urls = record["urls"]
    lines = [
        f"# {record['config']['dataset_name']}: simulated egocentric clips (egosim)",
        "",
        f"{c['clips']} clips of {clip['seconds']:g} s from simulated humans walking in "
        f"indoor scenes, seen by their head cameras ({clip['video_size']} x "
        f"{clip['video_size']} px, {clip['video_fps']:g} fps video; {clip['pose_fps']:g} Hz "
        f"camera and gaze), made by `egosim generate` "
        f"(task `{record['task']}`, layout `{record['layout']}`). {c['samples']} samples in "
        f"{c['shards']} WebDataset shards ({c['clips_per_shard']} clips a shard), "
        f"{c['bytes'] / 2**20:.1f} MiB.",
        "",
        "Everything here is synthetic: no person was recorded. Bodies are SMPL-X (the "
        "embedded procedural body unless licensed files were configured), motions come "
        "from the motion prior driven by the configured controller "
        f"(`{clip['controller']}`), scenes from `{', '.join(clip['scene']['specs'])}`.",
        "",
        "## Reading",
        "",
        "```python",
        "import webdataset as wds",
    ]
    if record["layout"] == "clips":
        lines += [f"ds = wds.WebDataset('{urls['all']}', shardshuffle=False).decode()",
                  "for sample in ds:   # sample['rgb.npy'], sample['meta.json'], ...",
                  "    ..."]
    else:
        first = next(p for p in urls if p != META_DIR)
        lines += [f"ds = wds.WebDataset('{urls[first]}', shardshuffle=False).decode()",
                  "# every modality folder holds the same keys in the same order"]
    lines += ["```", "", "or `egosim.egom2p.datasets.ShardSource(folder)` (numpy arrays, "
              "decoded meta).", "", "## Entries", ""]
    lines += [f"- `{e}`" for e in record["entries"]]
    lines += ["", "Layouts and shapes: `egosim.egom2p.clips` (clip layout), "
              "`egosim.egom2p.datasets.hmr` (HMR labels), `egosim.egom2p.datasets.layout`.",
              "", "## Statistics", ""]
    lines += [f"- {k}: {_fmt(v)}" for k, v in record["statistics"].items()]
    lines += ["", "## Seeds and determinism", "", record["seeds"]["shard"] + ". The same "
              "config gives the same bytes whatever the number of workers or the backend; "
              "`dataset.json` lists every shard's sha256.", "", "## Config", "", "```yaml",
              yaml.safe_dump(record["config"], sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines)
