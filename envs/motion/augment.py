"""Augmentation of :class:`~.data_clip.MotionClip` s into varied locomotion.

Every operation returns a new clip in the same z-up world convention and records itself in
``clip.meta["ops"]``. Operations that change where feet go (turning, transitions, new body
shapes) leave the final foot planting to :func:`~.retarget.replant`, which the dataset
builder applies to every clip. Random operations take a ``seed`` or a
``numpy.random.Generator``; none uses a global RNG.

Root-local representation (used by turning and transitions): per frame the heading ``psi``
(yaw of the body's forward axis), the orientation relative to the heading
``L = R_z(-psi) G``, the pelvis height, the horizontal pelvis step to the next frame in the
heading frame, and the heading change to the next frame. Rebuilding integrates the steps,
so edits compose without foot-independent jumps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from egosim.envs.motion.motion_clip import STANDING_ORIENT, MotionClip
from egosim.envs.motion.rotations_numpy import (
    heading_of,
    matrix_to_rotvec,
    resample_linear,
    resample_rotvec,
    rot_z,
    rotvec_to_matrix,
    slerp_rotvec,
    wrap_angle,
)

__all__ = [
    "MIRROR_PAIRS",
    "time_warp",
    "turn",
    "turn_angle",
    "steer",
    "random_yaw_rates",
    "mirror",
    "idle",
    "transition",
    "start_stop",
    "random_betas",
    "reshape",
    "as_generator",
]

#: Left/right SMPL-X joint index pairs among the body joints 1..21.
MIRROR_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21))


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed (or the generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _ops(clip: MotionClip, op: dict[str, Any]) -> dict[str, Any]:
    meta = dict(clip.meta)
    meta["ops"] = list(meta.get("ops", [])) + [op]
    return meta


def time_warp(clip: MotionClip, speed: float) -> MotionClip:
    """Play ``clip`` ``speed`` times faster (slerp/linear resampling at the same fps).

    The duration becomes ``duration / speed`` (to the frame). Raises ValueError if
    ``speed <= 0``.
    """
    if not speed > 0:
        raise ValueError(f"speed must be positive; got {speed!r}")
    t_src = np.arange(clip.num_frames) / clip.fps
    n = int(np.floor(clip.duration / speed * clip.fps + 1e-6)) + 1
    t_dst = np.arange(n) / clip.fps * speed
    bp = resample_rotvec(clip.body_pose.reshape(-1, 21, 3), t_src, t_dst).reshape(n, 63)
    return clip.replace(
        name=f"{clip.name}@{speed:.2f}x",
        global_orient=resample_rotvec(clip.global_orient, t_src, t_dst), body_pose=bp,
        transl=resample_linear(clip.transl, t_src, t_dst),
        meta=_ops(clip, {"op": "time_warp", "speed": float(speed)}))


# -- root-local representation ------------------------------------------------------------
def _decompose(clip: MotionClip) -> dict[str, np.ndarray]:
    psi = heading_of(clip.global_orient)
    g = rotvec_to_matrix(clip.global_orient)
    local = rot_z(-psi) @ g
    step = np.diff(clip.transl, axis=0)
    if step.shape[0] == 0:
        step = np.zeros((1, 3))
    step = np.concatenate([step, step[-1:]], axis=0)
    step_local = np.einsum("tji,tj->ti", rot_z(psi), step)  # R_z(psi)^T step
    dpsi = np.zeros_like(psi)
    if len(psi) >= 2:
        dpsi[:-1] = wrap_angle(np.diff(psi))
        dpsi[-1] = dpsi[-2]
    return {"local": matrix_to_rotvec(local), "pose": clip.body_pose.copy(),
            "height": clip.transl[:, 2].copy(), "step": step_local[:, :2], "dpsi": dpsi}


def _compose(parts: dict[str, np.ndarray], psi0: float, xy0: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Integrate a root-local representation: ``global_orient (T, 3)``, ``transl (T, 3)``."""
    n = parts["local"].shape[0]
    psi = psi0 + np.concatenate([[0.0], np.cumsum(parts["dpsi"][:-1])])
    step = np.concatenate([parts["step"], np.zeros((n, 1))], axis=1)
    world_step = np.einsum("tij,tj->ti", rot_z(psi), step)[:, :2]
    xy = np.asarray(xy0, dtype=np.float64) + np.concatenate(
        [np.zeros((1, 2)), np.cumsum(world_step[:-1], axis=0)])
    go = matrix_to_rotvec(rot_z(psi) @ rotvec_to_matrix(parts["local"]))
    return go, np.concatenate([xy, parts["height"][:, None]], axis=1)


def turn_angle(duration: float, yaw_rate: float, ramp_s: float) -> float:
    """Total heading change (rad) of :func:`turn` over ``duration`` seconds."""
    if ramp_s <= 0:
        return yaw_rate * duration
    if duration <= ramp_s:
        return yaw_rate * duration ** 2 / (2.0 * ramp_s)
    return yaw_rate * (duration - ramp_s / 2.0)


def turn(clip: MotionClip, yaw_rate: float, ramp_s: float = 0.5) -> MotionClip:
    """Add a progressive turn: the yaw rate ramps linearly from 0 to ``yaw_rate`` (rad/s,
    counter-clockwise seen from above) over ``ramp_s`` seconds, then stays.

    Both the orientation and the travel direction turn; the heading at the last frame
    changes by :func:`turn_angle` ``(clip.duration, yaw_rate, ramp_s)``.
    """
    t = np.arange(clip.num_frames) / clip.fps
    # rate over [t, t + dt] (midpoint rule)
    t_mid = t + 0.5 / clip.fps
    ramp_mid = np.clip(t_mid / ramp_s, 0.0, 1.0) if ramp_s > 0 else np.ones_like(t)
    out = steer(clip, yaw_rate * ramp_mid)
    return out.replace(name=f"{clip.name}+turn{yaw_rate:+.2f}",
                       meta=_ops(clip, {"op": "turn", "yaw_rate": float(yaw_rate),
                                        "ramp_s": float(ramp_s)}))


def steer(clip: MotionClip, yaw_rates: np.ndarray) -> MotionClip:
    """Add a per-frame yaw rate ``yaw_rates (T,)`` (rad/s, counter-clockwise seen from
    above, frame ``t`` -> ``t + 1``) to the clip's own: orientation and travel direction
    both turn, the root-local motion (steps, pose, height) is kept."""
    rates = np.asarray(yaw_rates, dtype=np.float64).reshape(-1)
    if rates.shape[0] != clip.num_frames:
        raise ValueError(f"yaw_rates needs {clip.num_frames} values (one per frame); got "
                         f"{rates.shape[0]}")
    parts = _decompose(clip)
    parts["dpsi"] = parts["dpsi"] + rates / clip.fps
    go, tr = _compose(parts, float(heading_of(clip.global_orient[0])), clip.transl[0, :2])
    return clip.replace(name=f"{clip.name}+steer", global_orient=go, transl=tr,
                        meta=_ops(clip, {"op": "steer", "max_rate": float(np.abs(rates).max(
                            initial=0.0))}))


def random_yaw_rates(num_frames: int, fps: float, max_rate: float,
                     seed: int | np.random.Generator | None, hold_s: tuple[float, float]
                     = (0.4, 1.5), ramp_s: float = 0.3) -> np.ndarray:
    """A steering profile ``(num_frames,)`` (rad/s): piecewise-constant yaw rates drawn
    uniformly in ``[-max_rate, max_rate]`` (a quarter of the segments straight, rate 0),
    each held ``hold_s`` seconds, joined by smooth ramps of ``ramp_s`` seconds. Teaches the
    prior that the turning rate changes within a primitive, so its latent can steer."""
    rng = as_generator(seed)
    knots_t, knots_v, t = [0.0], [0.0], 0.0
    total = num_frames / fps
    while t < total:
        v = 0.0 if rng.random() < 0.25 else rng.uniform(-max_rate, max_rate)
        knots_t += [t + ramp_s, t + ramp_s + rng.uniform(*hold_s)]
        knots_v += [v, v]
        t = knots_t[-1]
    times = np.arange(num_frames) / fps
    return np.interp(times, knots_t, knots_v)


def mirror(clip: MotionClip) -> MotionClip:
    """Swap left and right: the body mirrored in its sagittal plane, the trajectory mirrored
    in the vertical plane through the first-frame pelvis along the first-frame heading.

    Body joints: left/right partners (:data:`MIRROR_PAIRS`) swap and every axis-angle
    ``(a_x, a_y, a_z)`` (SMPL-X body frame, ``x`` left) becomes ``(a_x, -a_y, -a_z)``.
    World: ``G -> S_w G S_b`` with ``S_b = diag(-1, 1, 1)`` and ``S_w`` the world reflection.
    """
    pose = clip.body_pose.reshape(-1, 21, 3).copy()
    for a, b in MIRROR_PAIRS:
        pose[:, [a - 1, b - 1]] = pose[:, [b - 1, a - 1]]
    pose *= np.array([1.0, -1.0, -1.0])
    h = rot_z(heading_of(clip.global_orient[0]))
    s_w = h @ np.diag([1.0, -1.0, 1.0]) @ h.T
    s_b = np.diag([-1.0, 1.0, 1.0])
    go = matrix_to_rotvec(s_w @ rotvec_to_matrix(clip.global_orient) @ s_b)
    tr = clip.transl[0] + (clip.transl - clip.transl[0]) @ s_w.T
    return clip.replace(name=f"{clip.name}+mirror", global_orient=go,
                        body_pose=pose.reshape(-1, 63), transl=tr,
                        meta=_ops(clip, {"op": "mirror"}))


def idle(duration: float = 2.0, seed: int | np.random.Generator | None = 0,
         betas: np.ndarray | None = None, gender: str = "neutral", fps: float = 40.0,
         pelvis_height: float = 0.95) -> MotionClip:
    """Idle standing: arms down, slow breathing of the spine and a small weight shift.

    Amplitudes and phases are drawn from ``seed``. The body faces world ``+x`` with its
    pelvis above the origin at about ``pelvis_height`` (m); :func:`~.retarget.replant`
    puts the soles exactly on the floor.
    """
    rng = as_generator(seed)
    n = int(np.floor(duration * fps + 1e-6)) + 1
    t = np.arange(n) / fps
    pose = np.zeros((n, 21, 3))
    arm = np.pi / 2 - rng.uniform(0.12, 0.25)  # T-pose arm down, slightly abducted
    pose[:, 15] = [0.0, 0.0, -arm]  # left shoulder (joint 16)
    pose[:, 16] = [0.0, 0.0, arm]   # right shoulder (joint 17)
    elbow = rng.uniform(0.05, 0.3)
    pose[:, 17] = [0.0, -elbow, 0.0]  # left elbow (joint 18), forearm forward
    pose[:, 18] = [0.0, elbow, 0.0]   # right elbow
    breath = rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t
                                              + rng.uniform(0, 2 * np.pi))
    for j in (3, 6, 9):  # spine1..3 pitch
        pose[:, j - 1, 0] = breath / 3.0
    sway = rng.uniform(0.01, 0.04) * np.sin(2 * np.pi * rng.uniform(0.1, 0.2) * t
                                            + rng.uniform(0, 2 * np.pi))
    # weight shift: roll the pelvis frame, compensate in the hips so the legs stay vertical
    go = np.repeat(STANDING_ORIENT[None], n, axis=0)
    roll = rotvec_to_matrix(np.stack([np.zeros(n), np.zeros(n), sway], -1))  # body z axis
    go = matrix_to_rotvec(rotvec_to_matrix(go) @ roll)
    pose[:, 0] = np.stack([np.zeros(n), np.zeros(n), -sway], -1)
    pose[:, 1] = np.stack([np.zeros(n), np.zeros(n), -sway], -1)
    transl = np.zeros((n, 3))
    transl[:, 2] = pelvis_height
    return MotionClip(name="idle", global_orient=go, body_pose=pose.reshape(n, 63),
                      transl=transl, betas=np.zeros(10) if betas is None else betas,
                      gender=gender, fps=fps,
                      meta={"source": "procedural:idle", "ops": [{"op": "idle",
                                                                   "duration": duration}]})


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def transition(a: MotionClip, b: MotionClip, blend_s: float = 0.5) -> MotionClip:
    """``a`` followed by ``b`` with a cross-fade of ``blend_s`` seconds.

    ``b`` continues from where ``a`` ends (its heading and travel are rotated onto ``a``'s);
    over the last ``blend_s`` of ``a`` and the first ``blend_s`` of ``b`` the body pose, the
    heading-relative orientation, the pelvis height, the step and the turning rate blend with
    a smoothstep weight. The result has ``len(a) + len(b) - K`` frames (``K`` blend frames).

    Raises:
        ValueError: different fps, or a clip shorter than the blend.
    """
    if a.fps != b.fps:
        raise ValueError(f"clips must share fps; got {a.fps} and {b.fps}")
    k = max(1, int(round(blend_s * a.fps)))
    if a.num_frames < k or b.num_frames < k:
        raise ValueError(f"both clips need at least {k} frames for a {blend_s} s blend")
    pa, pb = _decompose(a), _decompose(b)
    w = _smoothstep((np.arange(k) + 0.5) / k)
    parts: dict[str, np.ndarray] = {}
    for key in pa:
        xa, xb = pa[key][-k:], pb[key][:k]
        if key == "pose":
            mid = slerp_rotvec(xa.reshape(k, 21, 3), xb.reshape(k, 21, 3),
                               w[:, None]).reshape(k, 63)
        elif key == "local":
            mid = slerp_rotvec(xa, xb, w)
        else:
            ww = w.reshape((k,) + (1,) * (xa.ndim - 1))
            mid = (1.0 - ww) * xa + ww * xb
        parts[key] = np.concatenate([pa[key][:-k], mid, pb[key][k:]], axis=0)
    go, tr = _compose(parts, float(heading_of(a.global_orient[0])), a.transl[0, :2])
    return a.replace(name=f"{a.name}>{b.name}", global_orient=go, body_pose=parts["pose"],
                     transl=tr, meta=_ops(a, {"op": "transition", "to": b.name,
                                              "blend_s": float(blend_s)}))


def start_stop(walk: MotionClip, idle_before: MotionClip | None,
               idle_after: MotionClip | None, blend_s: float = 0.6) -> MotionClip:
    """Starting and stopping: idle standing -> ``walk`` -> idle standing (either optional)."""
    out = walk
    if idle_before is not None:
        out = transition(idle_before.replace(betas=walk.betas, gender=walk.gender), out,
                         blend_s)
    if idle_after is not None:
        out = transition(out, idle_after.replace(betas=walk.betas, gender=walk.gender),
                         blend_s)
    return out


def random_betas(seed: int | np.random.Generator | None, num: int | None = None,
                 limit: float = 2.0) -> np.ndarray:
    """Body shapes ``betas ~ N(0, 1)`` clipped to ``[-limit, limit]``.

    Returns ``(10,)`` if ``num`` is None, else ``(num, 10)``.
    """
    rng = as_generator(seed)
    shape = (10,) if num is None else (int(num), 10)
    return np.clip(rng.standard_normal(shape), -limit, limit)


def reshape(clip: MotionClip, betas: np.ndarray, gender: str | None = None) -> MotionClip:
    """The same motion on another body: horizontal travel scaled by the leg-length ratio.

    Heights are left to :func:`~.retarget.replant`, which must follow (the dataset builder
    does), since the new legs are longer or shorter.
    """
    from egosim.envs.motion.body_sequences import leg_length

    g = clip.gender if gender is None else gender
    b = np.asarray(betas, dtype=np.float64)
    ratio = leg_length(b, g) / leg_length(clip.betas, clip.gender)
    tr = clip.transl.copy()
    tr[:, :2] = tr[0, :2] + ratio * (tr[:, :2] - tr[0, :2])
    tr[:, 2] *= ratio
    return clip.replace(betas=b, gender=g, transl=tr,
                        meta=_ops(clip, {"op": "reshape", "gender": g,
                                         "betas": [round(float(x), 4) for x in b]}))
