"""One shard of a generated dataset: made, written atomically, recorded, verified, read.

:func:`make_shard` is the unit of work every backend runs (in this process, a local
worker process or a Ray actor): shard ``k`` is the first ``clips`` clips of
``ClipBuilder(config, seed=seed, worker=k)`` (a pure function of ``(seed, k)`` and the
config, :mod:`egosim.egom2p.clips`), turned into samples (one per clip, or one per video
frame for ``task=hmr``), written as tars under temporary names (:mod:`egosim.atomic_io`)
that are renamed into place once complete, and then its *done record*
(``.done/shard-%06d.json``: sha256 and size of every tar, sample count, keys, statistics)
is written, atomically too. A shard is finished when its record exists and every tar it
names has that size and checksum (:func:`verify_shard`); anything else (no record, a
missing, truncated or altered tar) is made again, giving the same bytes.

Tars are reproducible: entries in key order (each sample's entries sorted), fixed mtime
(0), mode 0o444, owner ``egosim``; arrays as ``.npy``, JSON with sorted keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egosim.egom2p.datasets.layout import (
    EGOM2P_MODALITIES,
    META_DIR,
    done_path,
    encode_entry,
    jsonable,
    sample_key,
    shard_files,
)

__all__ = ["CLIP_ENTRIES", "ShardJob", "ShardStats", "iter_tar", "make_shard",
           "read_done", "sha256_file", "summarize_stats", "verify_shard", "warm_up"]

#: Array entries of a ``task=clips`` sample, in the clip layout (those the clip has).
CLIP_ENTRIES: tuple[str, ...] = ("rgb", "depth", "camera", "camera_9d", "video_camera",
                                 "gaze", "gaze_valid", "intrinsics", "video_times",
                                 "pose_times")
_TAR_MTIME = 0
_TAR_USER = "egosim"
_TAR_MODE = 0o444
_TOKENIZE: dict[tuple[str, ...], Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True)
class ShardJob:
    """What one shard is (picklable: it travels to worker processes and Ray actors).

    Attributes:
        root: the dataset folder.
        index: the shard index ``k`` (the builder's ``worker``).
        clips: clips in this shard.
        seed: the dataset's base seed (the builder's ``seed``).
        clip_config: the resolved clip config as a JSON-able dict.
        layout: ``"clips"`` or ``"egom2p"``.
        task: ``"clips"`` or ``"hmr"``.
        tokens: add ``tokens_<modality>`` entries (the shipped tokenizers).
        dataset_name: the ``<dataset>`` folder of ``layout=egom2p``.
    """

    root: str
    index: int
    clips: int
    seed: int
    clip_config: dict[str, Any] = field(hash=False)
    layout: str = "clips"
    task: str = "clips"
    tokens: bool = False
    dataset_name: str = "egosim"

    @property
    def modalities(self) -> tuple[str, ...]:
        """The clip config's modalities."""
        return tuple(self.clip_config["modalities"])

    def files(self) -> dict[str, str]:
        """``{part: relative tar path}`` of this shard (:func:`~.layout.shard_files`)."""
        mods = tuple(m for m in EGOM2P_MODALITIES if m in self.modalities)
        return shard_files(self.layout, self.index, mods, self.dataset_name)


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def read_done(root: str | Path, shard: int) -> dict[str, Any] | None:
    """Shard ``shard``'s done record, or None (missing or unreadable)."""
    try:
        rec = json.loads(done_path(root, shard).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("index") == shard else None


def verify_shard(root: str | Path, shard: int, files: Mapping[str, str]) -> str | None:
    """Why shard ``shard`` is not finished, or None when it is: its done record exists,
    names exactly ``files`` (relative paths), and every tar has the recorded size and
    sha256."""
    rec = read_done(root, shard)
    if rec is None:
        return "no done record"
    have = rec.get("files", {})
    if sorted(have) != sorted(files.values()):
        return "its done record names other files"
    for rel, info in have.items():
        p = Path(root) / rel
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != info.get("bytes"):
            return f"{rel} has {p.stat().st_size} bytes, the record says {info.get('bytes')}"
        if sha256_file(p) != info.get("sha256"):
            return f"{rel} fails its sha256 checksum"
    return None


def iter_tar(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {entry: bytes})`` of each sample of a tar, in order (entries ``<key>.<entry>``
    grouped by consecutive key, as WebDataset reads them)."""
    key: str | None = None
    entries: dict[str, bytes] = {}
    with tarfile.open(path, "r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            base = info.name.rsplit("/", 1)[-1]
            k, _, ext = base.partition(".")
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if k != key and key is not None:
                yield key, entries
                entries = {}
            key = k
            entries[ext] = data
    if key is not None:
        yield key, entries


# -- statistics ---------------------------------------------------------------------------


class ShardStats:
    """Sums over a shard's samples, merged across shards by :func:`summarize_stats`."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = {}

    def _add(self, group: str, name: str, value: Any) -> None:
        g = self.raw.setdefault(group, {})
        v = np.asarray(value, np.float64)
        g[name] = (np.asarray(g[name]) + v).tolist() if name in g else v.tolist()

    def _extreme(self, group: str, name: str, value: float, fn: Callable) -> None:
        g = self.raw.setdefault(group, {})
        g[name] = float(fn(g[name], value)) if name in g else float(value)

    def _count(self, group: str, key: Any) -> None:
        g = self.raw.setdefault(group, {})
        g[str(key)] = g.get(str(key), 0) + 1

    def add_clip(self, clip: Mapping[str, Any]) -> None:
        """Count one clip (the clip layout)."""
        if "rgb" in clip:
            px = np.asarray(clip["rgb"], np.float64).reshape(-1, 3)
            self._add("rgb", "n", len(px))
            self._add("rgb", "sum", px.sum(0))
            self._add("rgb", "sumsq", (px * px).sum(0))
        if "depth" in clip:
            d = np.asarray(clip["depth"], np.float64)
            v = d[d > 0]
            self._add("depth", "pixels", d.size)
            self._add("depth", "n", v.size)
            self._add("depth", "sum", v.sum())
            self._add("depth", "sumsq", (v * v).sum())
            if v.size:
                self._extreme("depth", "min", v.min(), min)
                self._extreme("depth", "max", v.max(), max)
        if "camera" in clip:
            t = np.asarray(clip["camera"], np.float64)[:, :3, 3]
            self._add("camera", "n", len(t))
            self._add("camera", "sum", t.sum(0))
            self._add("camera", "sumsq", (t * t).sum(0))
            self._add("camera", "clips", 1)
            self._add("camera", "end_distance_sum", np.linalg.norm(t[-1]))
        if "gaze" in clip:
            ok = np.asarray(clip["gaze_valid"], bool)
            g = np.asarray(clip["gaze"], np.float64)[ok]
            self._add("gaze", "n", ok.size)
            self._add("gaze", "valid", ok.sum())
            self._add("gaze", "sum", g.sum(0) if len(g) else np.zeros(2))
            self._add("gaze", "sumsq", (g * g).sum(0) if len(g) else np.zeros(2))
        meta = clip.get("meta", {})
        if "humans" in meta:
            self._count("humans", int(meta["humans"]))
        if "scene_spec" in meta:
            g = self.raw.setdefault("scenes", {})
            g[f"{meta['scene_spec']}:{meta['scene_seed']}"] = 1
        att = meta.get("attention", {})
        if "kind" in att:
            from egosim.egom2p.clips import ATTENTION_KINDS

            kinds = np.asarray(att["kind"])
            for i, name in enumerate(ATTENTION_KINDS):
                self._add("attention", name, int((kinds == i).sum()))

    def add_hmr_frame(self, sample: Mapping[str, Any]) -> None:
        """Count one ``task=hmr`` frame sample."""
        m = len(sample["hmr_instance"])
        self._count("persons_per_frame", m)
        if m:
            vis = np.asarray(sample["hmr_joints_visible"])
            box = np.asarray(sample["hmr_bbox"], np.float64)
            self._add("hmr", "persons", m)
            self._add("hmr", "joints", vis.size)
            self._add("hmr", "joints_visible", vis.sum())
            self._add("hmr", "bbox_height_sum", (box[:, 3] - box[:, 1] + 1).sum())
            self._add("hmr", "mask_pixels_sum", np.asarray(sample["hmr_mask_pixels"]).sum())


def _mean_std(n: float, s: Any, ss: Any) -> tuple[Any, Any]:
    s, ss = np.asarray(s, np.float64), np.asarray(ss, np.float64)
    mean = s / max(n, 1.0)
    std = np.sqrt(np.maximum(ss / max(n, 1.0) - mean * mean, 0.0))
    return mean.tolist(), std.tolist()


def summarize_stats(raws: list[dict[str, Any]]) -> dict[str, Any]:
    """Dataset statistics from the shards' raw sums (in shard order): RGB mean / std per
    channel (0-255), depth valid fraction, mean / std / min / max (m, valid pixels),
    camera translation mean / std per axis (m, canonical frame) and mean end distance,
    gaze valid fraction and mean / std of the valid points, humans-per-clip and attention
    histograms, distinct scenes; for ``task=hmr`` persons per frame, visible joint
    fraction, mean box height and mask size (pixels)."""
    tot = ShardStats()
    for raw in raws:
        for group, vals in raw.items():
            for name, v in vals.items():
                if group in ("humans", "persons_per_frame"):
                    g = tot.raw.setdefault(group, {})
                    g[name] = g.get(name, 0) + v
                elif group == "scenes":
                    tot.raw.setdefault(group, {})[name] = 1
                elif name == "min":
                    tot._extreme(group, name, v, min)
                elif name == "max":
                    tot._extreme(group, name, v, max)
                else:
                    tot._add(group, name, v)
    r = tot.raw
    out: dict[str, Any] = {}
    if "rgb" in r:
        mean, std = _mean_std(r["rgb"]["n"], r["rgb"]["sum"], r["rgb"]["sumsq"])
        out["rgb"] = {"mean": mean, "std": std}
    if "depth" in r:
        d = r["depth"]
        mean, std = _mean_std(d["n"], d["sum"], d["sumsq"])
        out["depth"] = {"valid_fraction": d["n"] / max(d["pixels"], 1.0), "mean_m": mean,
                        "std_m": std, "min_m": d.get("min"), "max_m": d.get("max")}
    if "camera" in r:
        c = r["camera"]
        mean, std = _mean_std(c["n"], c["sum"], c["sumsq"])
        out["camera"] = {"translation_mean_m": mean, "translation_std_m": std,
                         "end_distance_mean_m": c["end_distance_sum"] / max(c["clips"], 1)}
    if "gaze" in r:
        g = r["gaze"]
        mean, std = _mean_std(g["valid"], g["sum"], g["sumsq"])
        out["gaze"] = {"valid_fraction": g["valid"] / max(g["n"], 1.0), "mean": mean,
                       "std": std}
    if "humans" in r:
        out["humans_per_clip"] = dict(sorted(r["humans"].items(), key=lambda kv: int(kv[0])))
    if "attention" in r:
        n = max(sum(r["attention"].values()), 1.0)
        out["attention_fraction"] = {k: v / n for k, v in r["attention"].items()}
    if "scenes" in r:
        out["distinct_scenes"] = len(r["scenes"])
    if "persons_per_frame" in r:
        out["persons_per_frame"] = dict(sorted(r["persons_per_frame"].items(),
                                               key=lambda kv: int(kv[0])))
    if "hmr" in r:
        h = r["hmr"]
        p = max(h["persons"], 1.0)
        out["hmr"] = {"persons": int(h["persons"]),
                      "joints_visible_fraction": h["joints_visible"] / max(h["joints"], 1.0),
                      "bbox_height_mean_px": h["bbox_height_sum"] / p,
                      "mask_pixels_mean": h["mask_pixels_sum"] / p}
    return jsonable(out)


# -- making a shard -----------------------------------------------------------------------


def _tokenizer(modalities: tuple[str, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The shipped tokenizers' hook, loaded once per process."""
    if modalities not in _TOKENIZE:
        from egosim.egom2p.stream import default_tokenize

        _TOKENIZE[modalities] = default_tokenize(modalities)
    return _TOKENIZE[modalities]


def _builder(job: ShardJob, worker: int | None = None) -> Any:
    from egosim.egom2p.clips import ClipBuilder

    return ClipBuilder(job.clip_config, seed=job.seed,
                       worker=job.index if worker is None else worker, threads=1,
                       hmr=job.task == "hmr")


def _clip_samples(job: ShardJob, clip: dict[str, Any], c: int
                  ) -> list[tuple[str, dict[str, Any]]]:
    """``(key, {entry name: value})`` samples of one clip (module docstring of
    :mod:`~.layout`)."""
    if job.task == "hmr":
        from egosim.egom2p.datasets.hmr import frame_samples

        out = []
        for f, s in enumerate(frame_samples(clip)):
            entries = {f"{k}.npy": v for k, v in s.items() if k != "meta"}
            entries["meta.json"] = s["meta"]
            out.append((sample_key(job.index, c, f), entries))
        return out
    entries = {f"{k}.npy": clip[k] for k in CLIP_ENTRIES if k in clip}
    for k in sorted(clip):
        if k.startswith("tokens_"):
            entries[f"{k}.npy"] = clip[k]
    entries["meta.json"] = clip["meta"]
    return [(sample_key(job.index, c), entries)]


def _tar_writer(fh: Any) -> Any:
    import webdataset as wds

    return wds.TarWriter(fh, user=_TAR_USER, group=_TAR_USER, mode=_TAR_MODE, encoder=False,
                         mtime=_TAR_MTIME)


def make_shard(job: ShardJob, progress: Callable[[int], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Make, write and record shard ``job.index`` (module docstring); returns its done record
    plus ``seconds`` (wall) and ``cpu_s`` (this process's CPU time) of making it.

    Args:
        job: the shard.
        progress: called with 1 after each clip.
        should_stop: checked before each clip; True aborts (nothing is renamed into place,
            the temporary files are removed).

    Raises:
        InterruptedError: ``should_stop`` said so.
    """
    from egosim.atomic_io import atomic_open, write_json
    from egosim.egom2p.clips import _torch_threads

    root = Path(job.root)
    files = job.files()
    t0, c0 = time.perf_counter(), time.process_time()
    stats = ShardStats()
    keys: list[str] = []
    hook = _tokenizer(job.modalities) if job.tokens else None
    with _torch_threads(1), contextlib.ExitStack() as stack:
        builder = _builder(job)
        stack.callback(builder.close)
        hashers: dict[str, _HashingWriter] = {}
        writers: dict[str, Any] = {}
        for part, rel in files.items():
            fh = stack.enter_context(atomic_open(root / rel, "wb"))
            hashers[part] = _HashingWriter(fh)
            writers[part] = _tar_writer(hashers[part])
        for c in range(job.clips):
            if should_stop is not None and should_stop():
                raise InterruptedError(f"shard {job.index} stopped")
            clip = builder.next_clip()
            if hook is not None:
                clip = hook(clip)
            if job.task == "clips":
                stats.add_clip(clip)
            for key, entries in _clip_samples(job, clip, c):
                if job.task == "hmr":
                    stats.add_hmr_frame({k[:-4]: v for k, v in entries.items()
                                         if k.endswith(".npy")})
                keys.append(key)
                if job.layout == "clips":
                    writers["all"].write({"__key__": key, **{
                        n: encode_entry(n, v) for n, v in entries.items()}})
                else:
                    for m in files:
                        if m == META_DIR:
                            writers[m].write({"__key__": key, "json": encode_entry(
                                "meta.json", entries["meta.json"])})
                        else:
                            writers[m].write({"__key__": key, "npy": encode_entry(
                                "x.npy", entries[f"tokens_{m}.npy"])})
            if progress is not None:
                progress(1)
        for w in writers.values():
            w.close()
        made = builder.clips_made
    # the ExitStack has renamed every tar into place: now the record
    record = {
        "index": job.index, "clips": made, "samples": len(keys),
        "first_key": keys[0] if keys else None, "last_key": keys[-1] if keys else None,
        "files": {rel: {"sha256": hashers[part].sha.hexdigest(),
                        "bytes": hashers[part].size} for part, rel in files.items()},
        "stats": stats.raw,
    }
    write_json(done_path(root, job.index), record, indent=1, sort_keys=True)
    record["seconds"] = time.perf_counter() - t0
    record["cpu_s"] = time.process_time() - c0
    return record


def warm_up(job: ShardJob) -> float:
    """Load what every shard of ``job``'s dataset needs in this process (modules, the motion
    prior, the controller, the tokenizers) by making one throwaway clip of a builder no
    shard uses; returns the seconds it took. Shards are the same bytes with or without."""
    t0 = time.perf_counter()
    from egosim.egom2p.clips import _torch_threads

    with _torch_threads(1):
        b = _builder(job, worker=2**31 - 1)
        clip = b.next_clip()
        b.close()
        if job.tokens:
            _tokenizer(job.modalities)(clip)
    return time.perf_counter() - t0

