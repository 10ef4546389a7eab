"""The motion-primitive dataset: THE interface between motion data and the motion models.

``PrimitiveDataset`` arrays (``N`` primitives of ``F = 20`` frames at 40 fps):

=========================== ================ ================================================
key                         dtype / shape    meaning
=========================== ================ ================================================
``markers``                 f32 (N, 20, 67, 3) SSM2 markers in the primitive's canonical frame
                                             (:mod:`.canonical`; metres; frames 0-1 history)
``origin``                  f32 (N, 3)       canonical origin in the world (first-frame
                                             pelvis); the floor is at ``z = -origin[:, 2]``
                                             in canonical coordinates
``rot``                     f32 (N, 3, 3)    canonical -> world rotation
                                             (``world = rot @ canon + origin``)
``betas``                   f32 (N, 10)      body shape
``gender``                  i8 (N,)          0 neutral, 1 male, 2 female
``smplx["global_orient"]``  f32 (N, 20, 3)   axis-angle, canonical frame
``smplx["body_pose"]``      f32 (N, 20, 63)  axis-angles of the 21 body joints
``smplx["transl"]``         f32 (N, 20, 3)   translation, canonical frame (SMPL-X with these
                                             parameters reproduces ``markers``)
``clip_id``                 i32 (N,)         index into ``clip_names`` of the motion sequence
                                             (all body shapes of a sequence share it: hold
                                             out whole ids for held-out splits)
``clip_names``              list[str]        sequence names
``fps``                     float            40.0
=========================== ================ ================================================

On disk: one compressed ``.npz`` (the ``smplx`` entries stored as ``smplx_<name>``, the card
as ``card_json``) and a JSON copy of the card next to it (``.json``: counts, config, build
time, foot-contact statistics); both written atomically (:mod:`egosim.atomic_io`).

The cache of :func:`default_dataset` holds self-checking entries (:mod:`egosim.cache_entry`):
key, checksum and the layout of the table above (:data:`CACHE_SPEC`, float arrays finite)
are verified on every read; a bad file is reported, deleted and rebuilt. Builders hold a
file lock, so concurrent processes build an entry once and all read the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import egosim.envs.motion.augment as aug
from egosim.atomic_io import file_lock, save_npz, write_text
from egosim.cache_entry import ArraySpec, load_entry, stamp
from egosim.envs.motion.body_sequences import GENDER_CODES, rest_joints
from egosim.envs.motion.canonical_joints import canonicalize, canonicalize_params
from egosim.envs.motion.foot_contact import foot_contact_stats
from egosim.envs.motion.motion_clip import MOTION_FPS, MotionClip
from egosim.envs.motion.primitive_windows import PRIMITIVE_FRAMES, cut_windows, window_starts
from egosim.envs.motion.retarget import replant, retarget_named

__all__ = [
    "CACHE_SPEC",
    "DATA_VERSION",
    "DEFAULT_CLIPS",
    "DatasetConfig",
    "PrimitiveDataset",
    "augmented_sequences",
    "build_primitive_dataset",
    "default_dataset",
]

#: Bump when the data pipeline changes (part of the cache key).
DATA_VERSION: str = "motion-data-3"

#: Shipped DeepMimic clips used by default and how many cycles to loop the cyclic ones.
#: Left out: crawl, roll, get-ups, cartwheel and backflip (the body, not the feet, carries the
#: weight there; the foot clean-up is not meant for them). Pass them in ``clips`` if wanted.
DEFAULT_CLIPS: dict[str, int] = {
    "walk": 6, "run": 8, "jump": 2, "dance_a": 2, "dance_b": 2, "kick": 1, "punch": 1,
    "spin": 1, "spinkick": 2,
}


_F = PRIMITIVE_FRAMES

#: Layout of a cached dataset (checked on every read of the cache).
CACHE_SPEC: dict[str, ArraySpec] = {
    "markers": ArraySpec("float32", ("N", _F, 67, 3), finite=True),
    "origin": ArraySpec("float32", ("N", 3), finite=True),
    "rot": ArraySpec("float32", ("N", 3, 3), finite=True),
    "betas": ArraySpec("float32", ("N", 10), finite=True),
    "gender": ArraySpec("int8", ("N",)),
    "clip_id": ArraySpec("int32", ("N",)),
    "clip_names": ArraySpec("U", ("C",)),
    "fps": ArraySpec("float64", (), finite=True, positive=True),
    "smplx_global_orient": ArraySpec("float32", ("N", _F, 3), finite=True),
    "smplx_body_pose": ArraySpec("float32", ("N", _F, 63), finite=True),
    "smplx_transl": ArraySpec("float32", ("N", _F, 3), finite=True),
    "card_json": ArraySpec("U", ()),
}


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a built dataset (hashed for the cache key).

    Attributes:
        clips: shipped DeepMimic clip name -> loop cycles.
        num_augmented: number of augmented locomotion sequences (speed, turning, mirroring,
            start/stop, idle, walk<->run), drawn from ``seed``.
        num_shapes: bodies per sequence: the mean neutral body, then random shapes
            (``betas ~ N(0, 1)`` clipped to ±2, gender uniform).
        stride: frames between primitive starts.
        seed: seed of every random choice.
        genders: genders to draw random bodies from.
    """

    clips: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CLIPS))
    num_augmented: int = 70
    num_shapes: int = 3
    stride: int = 10
    seed: int = 0
    genders: tuple[str, ...] = ("neutral", "male", "female")

    def key(self) -> str:
        """Short hash of the config and :data:`DATA_VERSION`."""
        blob = json.dumps({"v": DATA_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class PrimitiveDataset:
    """Motion primitives (see the module table for every field)."""

    markers: np.ndarray
    origin: np.ndarray
    rot: np.ndarray
    betas: np.ndarray
    gender: np.ndarray
    smplx: dict[str, np.ndarray]
    clip_id: np.ndarray
    clip_names: list[str]
    fps: float = MOTION_FPS
    card: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.markers.shape[0])

    def world_markers(self, index: Any = slice(None)) -> np.ndarray:
        """Markers of primitives ``index`` in the z-up world, ``(n, 20, 67, 3)`` float64."""
        from egosim.envs.motion.canonical_joints import uncanonicalize

        return uncanonicalize(self.markers[index], self.rot[index], self.origin[index])

    def split(self, held_out_ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(train, held_out)`` of primitives whose ``clip_id`` is not / is held out."""
        mask = np.isin(self.clip_id, np.asarray(held_out_ids))
        return np.flatnonzero(~mask), np.flatnonzero(mask)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file (module docstring), the card as ``card_json``."""
        arrays = {"markers": self.markers, "origin": self.origin, "rot": self.rot,
                  "betas": self.betas, "gender": self.gender, "clip_id": self.clip_id,
                  "clip_names": np.asarray(self.clip_names), "fps": np.float64(self.fps),
                  "card_json": np.asarray(json.dumps(self.card, sort_keys=True))}
        arrays.update({f"smplx_{k}": v for k, v in self.smplx.items()})
        return arrays

    def save(self, path: str | Path, key: str | None = None) -> Path:
        """Write ``path`` (``.npz``, compressed) and its card ``path.with_suffix('.json')``,
        each atomically; with ``key`` as a self-checking cache entry of that key."""
        p = Path(path)
        arrays = self.to_arrays()
        write_text(p.with_suffix(".json"), json.dumps(self.card, indent=2, sort_keys=True))
        save_npz(p, arrays if key is None else stamp(arrays, key), compress=True)
        return p

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], card: dict[str, Any] | None = None
                    ) -> PrimitiveDataset:
        """Inverse of :meth:`to_arrays` (``card`` default: the stored ``card_json``)."""
        if card is None:
            card = json.loads(str(a["card_json"])) if "card_json" in a else {}
        return cls(markers=a["markers"], origin=a["origin"], rot=a["rot"], betas=a["betas"],
                   gender=a["gender"],
                   smplx={k[6:]: v for k, v in a.items() if k.startswith("smplx_")},
                   clip_id=a["clip_id"], clip_names=[str(s) for s in a["clip_names"]],
                   fps=float(a["fps"]), card=card)

    @classmethod
    def load(cls, path: str | Path) -> PrimitiveDataset:
        """Read a dataset written by :meth:`save` (no checks: see :func:`default_dataset`
        for the checked cache)."""
        p = Path(path)
        with np.load(p, allow_pickle=False) as d:
            a = {k: d[k] for k in d.files}
        card = None
        card_path = p.with_suffix(".json")
        if "card_json" not in a:
            card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        return cls.from_arrays(a, card)


def augmented_sequences(base: dict[str, MotionClip], num: int,
                        seed: int | np.random.Generator) -> list[MotionClip]:
    """``num`` augmented locomotion sequences from the retargeted ``walk`` and ``run``.

    Kinds, in turn: walk with speed/turn/mirror; idle -> walk -> idle (start and stop);
    walk -> run -> walk; idle standing; run with speed/turn/mirror; walk steered by a
    random yaw-rate profile (up to 1.6 rad/s, :func:`~.augment.random_yaw_rates`); a slow
    walk steered more sharply (up to 2.4 rad/s) and stopped/started. The steered kinds
    change the turning rate within primitives, so the prior's latent learns to steer.
    """
    rng = aug.as_generator(seed)
    walk, run = base["walk"], base["run"]
    out: list[MotionClip] = []
    for i in range(num):
        kind = i % 7
        if kind == 0:
            c = aug.turn(aug.time_warp(walk, rng.uniform(0.75, 1.35)), rng.uniform(-0.9, 0.9))
        elif kind == 1:
            c = aug.start_stop(aug.time_warp(walk, rng.uniform(0.8, 1.2)),
                               aug.idle(rng.uniform(0.6, 1.5), rng),
                               aug.idle(rng.uniform(0.6, 1.5), rng))
            c = aug.turn(c, rng.uniform(-0.4, 0.4))
        elif kind == 2:
            r = aug.time_warp(run, rng.uniform(0.9, 1.1)).slice(0, int(rng.integers(60, 140)))
            c = aug.transition(aug.transition(walk.slice(0, int(rng.integers(80, 160))), r),
                               walk)
        elif kind == 3:
            c = aug.idle(rng.uniform(2.0, 4.0), rng)
        elif kind == 4:
            c = aug.turn(aug.time_warp(run, rng.uniform(0.85, 1.15)), rng.uniform(-0.6, 0.6))
        elif kind == 5:
            c = aug.time_warp(walk, rng.uniform(0.7, 1.3))
            c = aug.steer(c, aug.random_yaw_rates(c.num_frames, c.fps, 1.6, rng))
        else:
            c = aug.start_stop(aug.time_warp(walk, rng.uniform(0.55, 0.8)),
                               aug.idle(rng.uniform(0.7, 1.2), rng),
                               aug.idle(rng.uniform(0.7, 1.2), rng))
            c = aug.steer(c, aug.random_yaw_rates(c.num_frames, c.fps, 2.4, rng))
        if kind != 3 and rng.random() < 0.5:
            c = aug.mirror(c)
        out.append(c.replace(name=f"aug{i:03d}:{c.name}"))
    return out


def build_primitive_dataset(config: DatasetConfig | None = None,
                            clips: list[MotionClip] | None = None,
                            progress: bool = True) -> PrimitiveDataset:
    """Build primitives from motion sequences, deterministically from ``config.seed``.

    Args:
        config: what to build (default :class:`DatasetConfig`).
        clips: sequences to use instead of the shipped DeepMimic clips and their
            augmentations (e.g. from :func:`~.loaders.load_folder`); they keep their own
            body shape as the first of the ``num_shapes`` bodies.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`PrimitiveDataset` whose card holds counts, timing and the foot-contact
        statistics (:func:`~.data_stats.foot_contact_stats`) of the data.
    """
    from tqdm.auto import tqdm

    cfg = config or DatasetConfig()
    t0 = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    if clips is None:
        base = {name: retarget_named(name, cycles=cycles)[0] for name, cycles in
                cfg.clips.items()}
        if {"walk", "run"} <= set(base):
            seqs = list(base.values()) + augmented_sequences(base, cfg.num_augmented, rng)
        else:
            seqs = list(base.values())
    else:
        seqs = list(clips)
    names = [c.name for c in seqs]
    out: dict[str, list[np.ndarray]] = {k: [] for k in (
        "markers", "origin", "rot", "betas", "gender", "go", "bp", "tr", "clip_id")}
    stats = []
    with tqdm(total=len(seqs) * cfg.num_shapes, desc="motion primitives",
              disable=not progress) as bar:
        for cid, seq in enumerate(seqs):
            for s in range(cfg.num_shapes):
                if s == 0:
                    body = seq
                else:
                    gender = cfg.genders[int(rng.integers(len(cfg.genders)))]
                    body = aug.reshape(seq, aug.random_betas(rng), gender)
                clip, markers, joints = replant(body)
                stats.append(foot_contact_stats(markers, clip.fps, pelvis=joints[:, 0]))
                starts = window_starts(clip.num_frames, PRIMITIVE_FRAMES, cfg.stride)
                bar.update(1)
                if starts.size == 0:
                    continue
                first = starts
                canon, rot, origin = canonicalize(cut_windows(markers, starts), joints[first, 0],
                                                  joints[first, 1], joints[first, 2])
                j0 = np.repeat(rest_joints(clip.betas, clip.gender)[0][None], len(starts), 0)
                go, tr = canonicalize_params(cut_windows(clip.global_orient, starts),
                                             cut_windows(clip.transl, starts), j0, rot, origin)
                n = len(starts)
                out["markers"].append(canon)
                out["origin"].append(origin)
                out["rot"].append(rot)
                out["betas"].append(np.repeat(clip.betas[None], n, 0))
                out["gender"].append(np.full(n, GENDER_CODES[clip.gender]))
                out["go"].append(go)
                out["bp"].append(cut_windows(clip.body_pose, starts))
                out["tr"].append(tr)
                out["clip_id"].append(np.full(n, cid))
    cat = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}
    seconds = time.perf_counter() - t0

    def agg(key: str, fn: Any) -> float:
        vals = np.array([getattr(s, key) for s in stats], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        return float(fn(vals)) if vals.size else float("nan")

    card = {
        "data_version": DATA_VERSION, "config": asdict(cfg), "config_key": cfg.key(),
        "num_primitives": int(cat["markers"].shape[0]), "num_sequences": len(seqs),
        "num_bodies": len(stats), "frames": PRIMITIVE_FRAMES, "fps": MOTION_FPS,
        "build_seconds": round(seconds, 2),
        "foot_contact_stats": {
            "foot_height_at_contact_mean": agg("foot_height_at_contact", np.mean),
            "skating_speed_mean": agg("skating_speed", np.mean),
            "skating_speed_median": agg("skating_speed", np.median),
            "pelvis_height_min": agg("pelvis_height_min", np.min),
            "pelvis_height_max": agg("pelvis_height_max", np.max),
        },
    }
    f32 = np.float32
    return PrimitiveDataset(
        markers=cat["markers"].astype(f32), origin=cat["origin"].astype(f32),
        rot=cat["rot"].astype(f32), betas=cat["betas"].astype(f32),
        gender=cat["gender"].astype(np.int8),
        smplx={"global_orient": cat["go"].astype(f32), "body_pose": cat["bp"].astype(f32),
               "transl": cat["tr"].astype(f32)},
        clip_id=cat["clip_id"].astype(np.int32), clip_names=names, fps=MOTION_FPS, card=card)


def default_dataset(config: DatasetConfig | None = None, cache: bool = True,
                    progress: bool = True) -> PrimitiveDataset:
    """The default dataset from the shipped DeepMimic clips, cached on disk.

    Cached as ``cache_dir('motion')/primitives-<config key>.npz`` (+ ``.json`` card); a cached
    file is reused when the config (and :data:`DATA_VERSION`) hash matches and it passes its
    checks (key, checksum, :data:`CACHE_SPEC`). A bad file is reported
    (:class:`~egosim.cache_entry.CorruptCacheWarning`), deleted and rebuilt. Building holds
    a file lock: a process that finds another one building waits for, then reads, its file.
    """
    from egosim.paths import cache_dir

    cfg = config or DatasetConfig()
    if not cache:
        return build_primitive_dataset(cfg, progress=progress)
    key = f"primitives-{cfg.key()}"
    path = cache_dir("motion") / f"{key}.npz"
    what = "motion primitive cache file"
    arrays = load_entry(path, key, CACHE_SPEC, discard=False, what=what)
    if arrays is None:
        with file_lock(path):
            arrays = load_entry(path, key, CACHE_SPEC, what=what)
            if arrays is None:
                ds = build_primitive_dataset(cfg, progress=progress)
                ds.save(path, key=key)
                arrays = ds.to_arrays()  # what a reader of the file gets
    return PrimitiveDataset.from_arrays(arrays)
