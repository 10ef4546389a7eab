"""Training data for the motion model: primitive sets, continuous sequences, synthetic walks.

:class:`PrimitiveSet` holds EgoGen primitives as the data side's ``build_primitive_dataset``
writes them (an ``.npz``): ``markers (N, 20, 67, 3)`` float32 in each primitive's canonical
frame (m, z up), ``origin (N, 3)`` and ``rot (N, 3, 3)`` canonical -> world
(``world = canon @ rot.T + origin``), ``betas (N, 10)``, ``gender (N,)`` (0 neutral, 1 male,
2 female), ``clip_id (N,)`` and, when present, per-frame canonical SMPL-X parameters
``global_orient (N, 20, 3)``, ``body_pose (N, 20, 63)``, ``transl (N, 20, 3)`` and window
``start (N,)`` frames. :func:`synthetic_primitives` makes a small set of the same layout from
procedural walking (sinusoidal legs and arms, forward speed, yaw rate) for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from egosim.atomic_io import save_npz
from egosim.envs.motion.canonical_markers import frame_from_joints, to_canonical

__all__ = ["PrimitiveSet", "load_primitives", "from_dataset", "synthetic_primitives",
           "clip_sequences"]

#: Accepted spellings of the per-frame parameter keys (first match wins).
_PARAM_KEYS = {
    "global_orient": ("global_orient", "smplx_global_orient"),
    "body_pose": ("body_pose", "smplx_body_pose"),
    "transl": ("transl", "smplx_transl"),
}


@dataclass
class PrimitiveSet:
    """A set of motion primitives (see the module docstring for shapes and frames)."""

    markers: np.ndarray
    origin: np.ndarray
    rot: np.ndarray
    betas: np.ndarray
    gender: np.ndarray
    clip_id: np.ndarray
    global_orient: np.ndarray | None = None
    body_pose: np.ndarray | None = None
    transl: np.ndarray | None = None
    start: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.markers.shape[0]
        if self.markers.ndim != 4 or self.markers.shape[2:] != (67, 3):
            raise ValueError(f"markers must have shape (N, T, 67, 3); got {self.markers.shape}")
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and v.shape[0] != n:
                raise ValueError(f"{f.name} has {v.shape[0]} rows but markers has {n}")
        if not np.isfinite(self.markers).all():
            raise ValueError("markers contain NaN or inf")

    def __len__(self) -> int:
        return int(self.markers.shape[0])

    @property
    def has_params(self) -> bool:
        """True when per-frame SMPL-X parameters are present."""
        return self.global_orient is not None and self.body_pose is not None

    def subset(self, idx: np.ndarray) -> PrimitiveSet:
        """Rows ``idx`` as a new set."""
        return PrimitiveSet(**{f.name: None if getattr(self, f.name) is None
                               else getattr(self, f.name)[idx] for f in fields(self)})

    def split(self, holdout: float, seed: int) -> tuple[PrimitiveSet, PrimitiveSet]:
        """``(train, held_out)`` by whole clips: ``holdout`` fraction of clip ids held out."""
        clips = np.unique(self.clip_id)
        rng = np.random.default_rng(seed)
        k = max(1, int(round(holdout * len(clips)))) if holdout > 0 else 0
        if k >= len(clips):
            raise ValueError(f"holdout {holdout} leaves no training clip ({len(clips)} clips)")
        held = rng.permutation(clips)[:k]
        mask = np.isin(self.clip_id, held)
        return self.subset(np.nonzero(~mask)[0]), self.subset(np.nonzero(mask)[0])

    def world_markers(self) -> np.ndarray:
        """``(N, 20, 67, 3)`` markers in the world frame (m)."""
        return (np.einsum("nij,ntkj->ntki", self.rot, self.markers)
                + self.origin[:, None, None]).astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        """Write an ``.npz`` readable by :func:`load_primitives` (atomically; ``.npz`` is
        appended to a path without it, as ``np.savez`` does)."""
        arrays = {f.name: getattr(self, f.name) for f in fields(self)
                  if getattr(self, f.name) is not None}
        p = Path(path)
        save_npz(p if p.name.endswith(".npz") else p.with_name(p.name + ".npz"), arrays)


def load_primitives(path: str | os.PathLike) -> PrimitiveSet:
    """Read a primitive ``.npz`` (keys as in the module docstring; ``smplx_*`` spellings ok)."""
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        missing = {"markers", "origin", "rot", "betas", "gender", "clip_id"} - keys
        if missing:
            raise KeyError(f"primitive file {path} lacks {sorted(missing)}; has {sorted(keys)}")
        kw = {k: z[k] for k in ("markers", "origin", "rot", "betas", "gender")}
        kw["clip_id"] = z["clip_id"]
        for name, spellings in _PARAM_KEYS.items():
            kw[name] = next((z[s] for s in spellings if s in keys), None)
        kw["start"] = z["start"] if "start" in keys else None
    kw["markers"] = kw["markers"].astype(np.float32)
    kw["gender"] = kw["gender"].astype(np.int64)
    kw["clip_id"] = np.unique(kw["clip_id"], return_inverse=True)[1].astype(np.int64)
    return PrimitiveSet(**kw)


def from_dataset(ds: object) -> PrimitiveSet:
    """Convert the data side's :class:`~.data_dataset.PrimitiveDataset` (same arrays)."""
    p = ds.smplx  # type: ignore[attr-defined]
    return PrimitiveSet(
        markers=np.asarray(ds.markers, np.float32), origin=np.asarray(ds.origin),  # type: ignore
        rot=np.asarray(ds.rot), betas=np.asarray(ds.betas),  # type: ignore[attr-defined]
        gender=np.asarray(ds.gender, np.int64), clip_id=np.asarray(ds.clip_id, np.int64),  # type: ignore
        global_orient=p.get("global_orient"), body_pose=p.get("body_pose"),
        transl=p.get("transl"))


def clip_sequences(data: PrimitiveSet, tol: float = 1e-3) -> list[np.ndarray]:
    """Continuous world-frame marker sequences ``[(T_i, 67, 3), ...]`` rebuilt from primitives.

    Primitives of one clip are laid on a common timeline, by ``start`` when the set has it,
    otherwise by finding, for consecutive primitives in file order, the frame offset at which
    their world-frame markers overlap (within ``tol`` m). A gap splits the clip.
    """
    world = data.world_markers()
    n_t = world.shape[1]
    out: list[np.ndarray] = []
    for cid in np.unique(data.clip_id):
        rows = np.nonzero(data.clip_id == cid)[0]
        if data.start is not None:
            rows = rows[np.argsort(data.start[rows], kind="stable")]
        seq = world[rows[0]]
        for a, b in zip(rows[:-1], rows[1:], strict=True):
            if data.start is not None:
                d = int(data.start[b] - data.start[a])
                ok = 0 < d <= n_t
            else:
                d = next((d for d in range(1, n_t) if np.abs(
                    world[a, d:] - world[b, :n_t - d]).max() < tol), 0)
                ok = d > 0
            if ok:
                seq = np.concatenate([seq, world[b, n_t - d:]], 0)
            else:
                out.append(seq)
                seq = world[b]
        out.append(seq)
    return out


def synthetic_primitives(num_clips: int = 6, frames: int = 120, seed: int = 0,
                         stride: int = 10, fps: float = 40.0) -> PrimitiveSet:
    """Procedural walking cut into canonical primitives (for tests and smoke runs).

    Each clip: an upright body facing a random yaw, walking at a random speed (0.6-1.4 m/s)
    and yaw rate (-0.5..0.5 rad/s) with hips, knees, shoulders and elbows swinging
    sinusoidally at a step frequency tied to the speed; random betas and gender.
    """
    from egosim.envs.humans.skeleton import joint_index
    from egosim.envs.motion.body_layer import BodyLayer
    from egosim.envs.motion.rotations_torch import axis_angle_to_matrix, matrix_to_axis_angle

    rng = np.random.default_rng(seed)
    body = BodyLayer(with_vertices=False)
    ji = {n: joint_index(n) for n in ("left_hip", "right_hip", "left_knee", "right_knee",
                                       "left_shoulder", "right_shoulder", "left_elbow",
                                       "right_elbow")}
    t = np.arange(frames) / fps
    keys: dict[str, list[np.ndarray]] = {k: [] for k in (
        "markers", "origin", "rot", "betas", "gender", "clip_id", "global_orient",
        "body_pose", "transl", "start")}
    to_z_up = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for c in range(num_clips):
        speed = rng.uniform(0.6, 1.4)
        yaw_rate = rng.uniform(-0.5, 0.5)
        yaw0 = rng.uniform(-np.pi, np.pi)
        freq = 0.9 * speed / 0.7
        phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
        amp = 0.25 + 0.2 * speed
        pose = np.zeros((frames, 22, 3))
        pose[:, ji["left_hip"], 0] = -amp * np.sin(phase)
        pose[:, ji["right_hip"], 0] = amp * np.sin(phase)
        pose[:, ji["left_knee"], 0] = 0.6 * amp * (1 + np.cos(phase))
        pose[:, ji["right_knee"], 0] = 0.6 * amp * (1 - np.cos(phase))
        pose[:, ji["left_shoulder"], 2] = -1.2
        pose[:, ji["right_shoulder"], 2] = 1.2
        pose[:, ji["left_shoulder"], 1] = 0.3 * amp * np.sin(phase)
        pose[:, ji["right_shoulder"], 1] = 0.3 * amp * np.sin(phase)
        pose[:, ji["left_elbow"], 1] = -0.3
        pose[:, ji["right_elbow"], 1] = 0.3
        yaw = yaw0 + yaw_rate * t
        cy, sy = np.cos(yaw), np.sin(yaw)
        rz = np.zeros((frames, 3, 3))
        rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = cy, -sy, sy, cy, 1
        heading = np.stack([cy, sy], -1)
        xy = np.cumsum(heading * speed / fps, 0)
        bob = 0.02 * np.cos(2 * phase)
        betas = rng.normal(0, 0.7, 10)
        gender = int(rng.integers(0, 3))
        rot = torch.from_numpy(np.ascontiguousarray(pose)).float()
        rmat = axis_angle_to_matrix(rot)
        rmat[:, 0] = torch.from_numpy(rz @ to_z_up).float()
        bt = torch.from_numpy(np.repeat(betas[None], frames, 0)).float()
        g = torch.full((frames,), gender)
        with torch.no_grad():
            m0, j0 = body.markers(rmat, bt, g, torch.zeros(frames, 3))
            lift = -m0[..., 2].amin() + 0.01
            tr = torch.from_numpy(np.concatenate([xy, (bob + float(lift))[:, None]], 1)).float()
            m, j = body.markers(rmat, bt, g, tr)
        starts = np.arange(0, frames - 20 + 1, stride)
        pelvis_rest = body.rest_joints(bt[:1], g[:1])[0, 0].numpy()
        for s in starts:
            joints = j[s, [0, joint_index("left_hip"), joint_index("right_hip")]][None]
            origin, frot = frame_from_joints(joints)
            w = slice(s, s + 20)
            keys["markers"].append(to_canonical(m[None, w], origin, frot)[0].numpy())
            keys["origin"].append(origin[0].numpy())
            keys["rot"].append(frot[0].numpy())
            keys["betas"].append(betas.astype(np.float32))
            keys["gender"].append(np.int64(gender))
            keys["clip_id"].append(np.int64(c))
            keys["start"].append(np.int64(s))
            r = frot[0].numpy().astype(np.float64)
            gw = rmat[w, 0].numpy().astype(np.float64)
            keys["global_orient"].append(matrix_to_axis_angle(
                torch.from_numpy(r.T @ gw)).numpy().astype(np.float32))
            keys["body_pose"].append(pose[w, 1:].reshape(20, 63).astype(np.float32))
            pel = (tr[w].numpy() + pelvis_rest - origin[0].numpy()) @ r
            keys["transl"].append((pel - pelvis_rest).astype(np.float32))
    arrays = {k: np.stack(v) for k, v in keys.items()}
    arrays["markers"] = arrays["markers"].astype(np.float32)
    arrays["origin"] = arrays["origin"].astype(np.float32)
    arrays["rot"] = arrays["rot"].astype(np.float32)
    return PrimitiveSet(**arrays)
