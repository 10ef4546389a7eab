"""Loaders for licensed motion capture: AMASS (``.npz``) and SAMP (``.pkl``) -> ``MotionClip``.

Both are resampled to 40 fps (slerp for rotations, linear for translation).

AMASS (SMPL-X ``*_stageii.npz`` / SMPL+H ``*_poses.npz``) keys used:

=================== ========================================================================
``poses``           ``(T, 165)`` SMPL-X (root 3, body 63, jaw 3, eyes 6, hands 90) or
                    ``(T, 156)`` SMPL+H (root 3, body 63, hands 90); the first 66 columns are
                    kept: ``global_orient = poses[:, :3]``, ``body_pose = poses[:, 3:66]``
``trans``           ``(T, 3)`` translation (m)
``betas``           ``(>=10,)`` shape; the first 10 are kept
``gender``          ``"neutral" | "male" | "female"`` (string or bytes)
``mocap_framerate`` frames/s (``mocap_frame_rate`` is accepted too)
=================== ========================================================================

AMASS is already in egosim's world convention (z up, SMPL-X parameters evaluate directly in
the world), so no frame change is applied; its floor is only approximately at ``z = 0``,
which :func:`~.retarget.replant` fixes when the dataset builder uses it.

SAMP (``*.pkl``, a pickled dict, MoSh++ fits) keys used:

======================== ===================================================================
``pose_est_fullposes``   ``(T, 165)`` (or ``(T, 156)``) full pose, layout as AMASS
``pose_est_trans``       ``(T, 3)`` translation (m)
``shape_est_betas``      ``(>=10,)`` shape
``mocap_framerate``      frames/s (SAMP captures at 120)
``gender`` (optional)    default ``"neutral"``
======================== ===================================================================

SAMP's MoSh++ fits use the same z-up mocap frame as AMASS; no frame change is applied.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from egosim.envs.motion.motion_clip import MOTION_FPS, MotionClip
from egosim.envs.motion.rotations_numpy import resample_linear, resample_rotvec, resample_times

__all__ = ["clip_from_arrays", "load_amass", "load_samp", "load_folder"]


def _gender(value: Any) -> str:
    if value is None:
        return "neutral"
    if isinstance(value, np.ndarray):
        value = value.item() if value.shape == () else value.tolist()
    if isinstance(value, bytes):
        value = value.decode()
    g = str(value).strip().lower()
    if g not in ("neutral", "male", "female"):
        raise ValueError(f"gender must be neutral, male or female; got {value!r}")
    return g


def clip_from_arrays(name: str, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray,
                     gender: Any, fps: float, out_fps: float = MOTION_FPS,
                     meta: dict[str, Any] | None = None) -> MotionClip:
    """A :class:`MotionClip` from AMASS-layout arrays, resampled to ``out_fps``.

    Args:
        poses: ``(T, 165)`` or ``(T, 156)`` (or ``(T, >= 66)``) axis-angles.
        trans: ``(T, 3)`` metres.
        betas: ``(>= 10,)``; padded with zeros if shorter.
        gender: string/bytes.
        fps: source frame rate.

    Raises:
        ValueError: bad shapes or frame rate, naming the field.
    """
    p = np.asarray(poses, dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 66:
        raise ValueError(f"{name}: poses must have shape (T, 165) or (T, 156); got {p.shape}")
    if t.shape != (p.shape[0], 3):
        raise ValueError(f"{name}: trans must have shape ({p.shape[0]}, 3); got {t.shape}")
    if not fps > 0:
        raise ValueError(f"{name}: mocap_framerate must be positive; got {fps!r}")
    b = np.asarray(betas, dtype=np.float64).reshape(-1)[:10]
    b = np.pad(b, (0, 10 - b.size))
    t_src = np.arange(p.shape[0]) / float(fps)
    t_dst = resample_times(t_src[-1], out_fps)
    go = resample_rotvec(p[:, :3], t_src, t_dst)
    bp = resample_rotvec(p[:, 3:66].reshape(-1, 21, 3), t_src, t_dst).reshape(-1, 63)
    return MotionClip(name=name, global_orient=go, body_pose=bp,
                      transl=resample_linear(t, t_src, t_dst), betas=b,
                      gender=_gender(gender), fps=out_fps, meta=dict(meta or {}))


def _get(data: Mapping[str, Any], keys: tuple[str, ...], path: Path) -> Any:
    for k in keys:
        if k in data:
            return data[k]
    raise KeyError(f"{path}: missing field {' or '.join(repr(k) for k in keys)}; "
                   f"found {sorted(data)}")


def load_amass(path: str | Path, out_fps: float = MOTION_FPS) -> MotionClip:
    """Load an AMASS ``.npz`` (see the module table) as a 40 fps clip."""
    p = Path(path)
    with np.load(p, allow_pickle=False) as d:
        data = {k: d[k] for k in d.files}
    return clip_from_arrays(
        p.stem, _get(data, ("poses",), p), _get(data, ("trans",), p),
        _get(data, ("betas",), p), data.get("gender"),
        float(_get(data, ("mocap_framerate", "mocap_frame_rate"), p)), out_fps,
        meta={"source": f"amass:{p}"})


def load_samp(path: str | Path, out_fps: float = MOTION_FPS) -> MotionClip:
    """Load a SAMP ``.pkl`` (see the module table) as a 40 fps clip.

    Only open files you trust: pickles can run code when loaded.
    """
    p = Path(path)
    with open(p, "rb") as f:
        data = pickle.load(f, encoding="latin1")
    if not isinstance(data, Mapping):
        raise ValueError(f"{p}: a SAMP file must hold a dict; got {type(data).__name__}")
    return clip_from_arrays(
        p.stem, _get(data, ("pose_est_fullposes",), p), _get(data, ("pose_est_trans",), p),
        _get(data, ("shape_est_betas",), p), data.get("gender"),
        float(_get(data, ("mocap_framerate", "mocap_frame_rate"), p)), out_fps,
        meta={"source": f"samp:{p}"})


def load_folder(folder: str | Path, out_fps: float = MOTION_FPS,
                min_frames: int = 20) -> list[MotionClip]:
    """All AMASS ``.npz`` and SAMP ``.pkl`` files under ``folder`` (recursive, sorted).

    AMASS's per-subject ``shape.npz`` files (no ``poses``) are skipped; clips shorter than
    ``min_frames`` after resampling are dropped.

    Raises:
        FileNotFoundError: the folder does not exist or holds no motion file.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"motion folder not found: {root}")
    clips: list[MotionClip] = []
    files = sorted(list(root.rglob("*.npz")) + list(root.rglob("*.pkl")))
    for f in files:
        if f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as d:
                if "poses" not in d.files:
                    continue
            clip = load_amass(f, out_fps)
        else:
            clip = load_samp(f, out_fps)
        if clip.num_frames >= min_frames:
            clips.append(clip.replace(name=str(f.relative_to(root).with_suffix(""))))
    if not clips:
        raise FileNotFoundError(f"no AMASS (.npz with 'poses') or SAMP (.pkl) motion files "
                                f"under {root}")
    return clips
