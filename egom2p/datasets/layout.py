"""Where a generated dataset's files live, how its samples are keyed and encoded.

Two layouts (``layout`` of :class:`~egosim.egom2p.generate_config.GenerateConfig`)::

    layout=clips                          layout=egom2p (EgoM2P's own)
    <root>/dataset.json                   <root>/dataset.json
    <root>/README.md                      <root>/README.md
    <root>/preview.mp4                    <root>/preview.mp4
    <root>/shard-000000.tar               <root>/rgb/<dataset>/shard-000000.tar
    <root>/shard-000001.tar ...           <root>/depth/<dataset>/shard-000000.tar
    <root>/.done/shard-000000.json        <root>/camera/<dataset>/ ... gaze/ ... meta/
                                          <root>/.done/shard-000000.json

A tar holds samples as WebDataset entries ``<key>.<entry>``: ``layout=clips`` puts every
entry of a sample in one tar (``rgb.npy``, ``depth.npy``, ..., ``meta.json``); in
``layout=egom2p`` the tar of modality ``m`` holds ``<key>.npy``, the sample's
``tokens_<m>`` (``meta/`` holds ``<key>.json``), so the same key names one sample in every
modality's tar. Sample keys: ``<shard:06d>_<clip:06d>`` (``task=hmr``:
``<shard:06d>_<clip:06d>_<frame:02d>``; no dots, as WebDataset splits names at the first
one). Arrays are ``.npy`` (``numpy.lib.format``, no pickles), ``meta`` JSON with sorted
keys. ``.done/`` holds one record per finished shard (:mod:`egosim.egom2p.datasets.shards`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATASET_JSON", "DONE_DIR", "EGOM2P_MODALITIES", "META_DIR", "PREVIEW",
           "README", "SHARD_PATTERN", "decode_entry", "done_path", "encode_entry",
           "jsonable", "sample_key", "shard_files"]

DATASET_JSON = "dataset.json"
README = "README.md"
PREVIEW = "preview.mp4"
DONE_DIR = ".done"
#: Shard file names (``%`` formatting with the shard index).
SHARD_PATTERN = "shard-%06d.tar"
#: Modality folders of ``layout=egom2p`` (the tokenizers' names), then ``meta``.
EGOM2P_MODALITIES: tuple[str, ...] = ("rgb", "depth", "camera", "gaze")
META_DIR = "meta"


def sample_key(shard: int, clip: int, frame: int | None = None) -> str:
    """The WebDataset key of clip ``clip`` of shard ``shard`` (and of its video frame
    ``frame`` for ``task=hmr``)."""
    key = f"{shard:06d}_{clip:06d}"
    return key if frame is None else f"{key}_{frame:02d}"


def shard_files(layout: str, shard: int, modalities: tuple[str, ...] = EGOM2P_MODALITIES,
                dataset: str = "egosim") -> dict[str, str]:
    """Relative paths of shard ``shard``'s tars: ``{part: path}`` with part ``"all"``
    (``layout=clips``) or a modality name and ``"meta"`` (``layout=egom2p``)."""
    name = SHARD_PATTERN % shard
    if layout == "clips":
        return {"all": name}
    if layout != "egom2p":
        raise ValueError(f"layout must be 'clips' or 'egom2p'; got {layout!r}")
    return {m: f"{m}/{dataset}/{name}" for m in (*modalities, META_DIR)}


def done_path(root: str | Path, shard: int) -> Path:
    """The done record of shard ``shard`` (written after its tars)."""
    return Path(root) / DONE_DIR / (SHARD_PATTERN % shard).replace(".tar", ".json")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def encode_entry(name: str, value: Any) -> bytes:
    """The bytes of one tar entry: ``.json`` entries as sorted compact JSON, everything
    else as a ``.npy`` array (deterministic: the same value gives the same bytes)."""
    if name.endswith(".json"):
        return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":")).encode()
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(np.asarray(value)),
                              allow_pickle=False)
    return buf.getvalue()


def decode_entry(name: str, data: bytes) -> Any:
    """Inverse of :func:`encode_entry` (by the entry name's last suffix)."""
    if name.endswith(".json"):
        return json.loads(data)
    if name.endswith(".npy"):
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    return data
