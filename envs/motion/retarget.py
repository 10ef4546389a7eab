"""DeepMimic humanoid clips -> SMPL-X parameters at 40 fps, feet planted on the floor.

Frames
------
* Humanoid body/world (:mod:`.deepmimic`): ``+x`` forward, ``+y`` up, ``+z`` right.
* SMPL-X body: ``+x`` left, ``+y`` up, ``+z`` forward. A humanoid vector ``v`` is the SMPL-X
  body vector ``M v`` with :data:`HUMANOID_TO_SMPLX` ``M`` (a proper rotation); a local
  joint rotation ``R`` becomes ``M R M^T`` (both skeletons have all joint frames aligned with
  the root at rest).
* egosim world (z up, floor ``z = 0``): humanoid world ``v`` -> :data:`HUMANOID_TO_WORLD`
  ``A v`` (``x -> x``, ``y -> z``, ``z -> -y``), so the walk travels along world ``+x``.
  Clip parameters follow :mod:`.data_clip`: ``global_orient = A R_root M^T``.

Joint mapping (DeepMimic -> SMPL-X ``body_pose`` joints; every other joint is zero)
-------------------------------------------------------------------------------------
================  ==========================================================================
root              ``global_orient`` (see above); root position = hip centre
chest             spine1, spine2, spine3: each gets a third of the rotation (same axis)
neck              neck, head: half each
right/left hip    right/left hip
right/left knee   right/left knee: angle ``a`` about humanoid ``+z`` -> ``a * (-1, 0, 0)``
right/left ankle  right/left ankle
right/left        right/left shoulder, with the rest-pose correction ``R_S = (M R M^T) C``:
shoulder          ``C`` turns SMPL-X's T-pose arm (``±x``) down to the humanoid's rest arm
                  (``-y``): ``C = R_z(-90°)`` left, ``R_z(+90°)`` right (about body ``+z``)
right/left elbow  right/left elbow, in the corrected arm frame: ``C^T (M R_e M^T) C``
================  ==========================================================================

Translation: the humanoid's root (hip centre) is scaled by ``leg_SMPL-X / leg_humanoid``
(hip-knee-ankle lengths) and moved to SMPL-X's pelvis through the rest-pose offset between
the hip centre and the pelvis joint; the clip starts above the world origin.

Foot-contact clean-up (:func:`plant_feet`): support points are the 67 markers and the sole
points of :func:`~.data_body.sole_vertex_ids` (the soles, not the skin markers, touch the
floor: the lowest foot marker then sits about 2 cm up in flat stance, as EgoGen's floor
reward ``|min foot height - 0.02|`` expects); a frame is in contact when its lowest point is
within ``contact_height`` of the clip's lowest level and moves slower than
``contact_speed``. (1) A per-frame vertical offset puts the lowest point at ``z = 0`` on
contact frames, linearly interpolated between them (flight phases) and raised wherever a
point would go below the floor. (2) The horizontal root motion is corrected so the lowest
point of each contact frame stays put until the next frame (the body pivots about its
planted point instead of sliding). Both are rigid shifts of ``transl``, so markers move with
them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.envs.motion.body_sequences import evaluate, leg_length, rest_joints
from egosim.envs.motion.foot_contact import FootContactStats, foot_contact_stats
from egosim.envs.motion.motion_clip import MOTION_FPS, MotionClip
from egosim.envs.motion.rotations_numpy import (
    matrix_to_rotvec,
    quat_to_rotvec,
    resample_linear,
    resample_rotvec,
    resample_times,
    rot_z,
    rotvec_to_matrix,
)

from .deepmimic import DeepMimicMotion, load_motion, urdf_skeleton

__all__ = [
    "HUMANOID_TO_SMPLX",
    "HUMANOID_TO_WORLD",
    "JOINT_MAP",
    "RetargetReport",
    "humanoid_leg_length",
    "deepmimic_to_smplx",
    "plant_feet",
    "retarget",
    "retarget_named",
    "replant",
]

#: Humanoid body axes (x fwd, y up, z right) -> SMPL-X body axes (x left, y up, z fwd).
HUMANOID_TO_SMPLX: np.ndarray = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
#: Humanoid world (y up) -> egosim world (z up): x -> x, y -> z, z -> -y.
HUMANOID_TO_WORLD: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: DeepMimic joint -> SMPL-X joint indices (into ``JOINT_NAMES``) that receive its rotation.
JOINT_MAP: dict[str, tuple[int, ...]] = {
    "chest": (3, 6, 9),
    "neck": (12, 15),
    "right_hip": (2,),
    "right_knee": (5,),
    "right_ankle": (8,),
    "right_shoulder": (17,),
    "right_elbow": (19,),
    "left_hip": (1,),
    "left_knee": (4,),
    "left_ankle": (7,),
    "left_shoulder": (16,),
    "left_elbow": (18,),
}

_ARM_CORRECTION = {"left": rot_z(-np.pi / 2), "right": rot_z(np.pi / 2)}


@dataclass(frozen=True)
class RetargetReport:
    """What the clean-up changed (see :mod:`.data_stats` for the definitions).

    Attributes:
        scale: translation scale ``leg_SMPL-X / leg_humanoid``.
        before: foot-contact statistics of the raw retargeted clip (after only a constant
            vertical shift that puts its lowest point on the floor).
        after: the same after :func:`plant_feet`.
        contact_fraction: fraction of frames the clean-up treated as contact.
    """

    scale: float
    before: FootContactStats
    after: FootContactStats
    contact_fraction: float


def humanoid_leg_length() -> float:
    """Hip-knee-ankle length of the DeepMimic humanoid (m), from the scaled URDF."""
    off = {j.name: j.offset for j in urdf_skeleton()}
    return float(np.linalg.norm(off["right_knee"]) + np.linalg.norm(off["right_ankle"]))


def _local(rot_xyzw: np.ndarray) -> np.ndarray:
    """Humanoid local quaternions ``(T, 4)`` -> SMPL-X body-frame matrices ``(T, 3, 3)``."""
    m = HUMANOID_TO_SMPLX
    return m @ rotvec_to_matrix(quat_to_rotvec(rot_xyzw)) @ m.T


def deepmimic_to_smplx(motion: DeepMimicMotion, fps: float = MOTION_FPS
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample a humanoid clip at ``fps`` (slerp) and map its joints to SMPL-X.

    Returns:
        ``global_orient (K, 3)``, ``body_pose (K, 63)`` (axis-angle, rad) and the humanoid
        root position in the z-up world, unscaled, ``(K, 3)`` (m), for ``K`` samples at
        ``k / fps`` over the clip's duration.
    """
    t_src = motion.times
    t_dst = resample_times(motion.duration, fps)
    k = t_dst.shape[0]

    def rs_quat(q: np.ndarray) -> np.ndarray:
        from egosim.envs.motion.rotations_numpy import rotvec_to_quat

        return rotvec_to_quat(resample_rotvec(quat_to_rotvec(q), t_src, t_dst))

    root = rs_quat(motion.root_rot)
    g = HUMANOID_TO_WORLD @ rotvec_to_matrix(quat_to_rotvec(root)) @ HUMANOID_TO_SMPLX.T
    pose = np.zeros((k, 22, 3))  # SMPL-X joints 0..21 (0 unused here)
    axis_z = HUMANOID_TO_SMPLX @ np.array([0.0, 0.0, 1.0])  # knee/elbow axis in SMPL-X
    for name, targets in JOINT_MAP.items():
        side = name.split("_")[0]
        if name in motion.rotations:
            r = _local(rs_quat(motion.rotations[name]))
            if name.endswith("shoulder"):
                r = r @ _ARM_CORRECTION[side]
            rv = matrix_to_rotvec(r) / len(targets)
        else:
            ang = resample_linear(motion.angles[name], t_src, t_dst)
            ax = axis_z
            if name.endswith("elbow"):
                ax = _ARM_CORRECTION[side].T @ axis_z
            rv = ang[:, None] * ax[None]
        for j in targets:
            pose[:, j] = rv
    root_pos = resample_linear(motion.root_pos, t_src, t_dst) @ HUMANOID_TO_WORLD.T
    return matrix_to_rotvec(g), pose[:, 1:].reshape(k, 63), root_pos


def plant_feet(points: np.ndarray, fps: float, contact_height: float = 0.05,
               contact_speed: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame rigid shifts that plant the lowest point on the floor and stop sliding.

    Args:
        points: ``(T, K, 3)`` support points in the z-up world (m): the markers, and
            preferably the sole points too (``evaluate(..., soles=True)``).
        fps: frame rate.
        contact_height: contact when the lowest point is within this height (m) of the
            lowest level it reaches in the clip.
        contact_speed: and when it moves slower than this (m/s, horizontal).

    Returns:
        ``shift (T, 3)`` to add to ``transl`` (and to every marker/joint), and the contact
        mask ``(T,)`` bool used.
    """
    m = np.asarray(points, dtype=np.float64)
    t = m.shape[0]
    h = m[..., 2]
    low = np.argmin(h, axis=1)
    rows = np.arange(t)
    low_h = h[rows, low]
    nxt = np.minimum(rows + 1, t - 1)
    prv = np.maximum(rows - 1, 0)
    # speed of frame t's lowest point: the smaller of the backward and forward differences,
    # so that a single-frame jump in the data does not hide a planted foot
    fwd = np.linalg.norm(m[nxt, low, :2] - m[rows, low, :2], axis=-1)
    bwd = np.linalg.norm(m[rows, low, :2] - m[prv, low, :2], axis=-1)
    fwd[-1], bwd[0] = bwd[-1], fwd[0]
    v = np.minimum(fwd, bwd) * fps
    contact = (low_h - low_h.min() < contact_height) & (v < contact_speed)
    shift = np.zeros((t, 3))
    # (1) vertical: lowest point at z = 0 on contact frames, interpolated elsewhere
    if contact.any():
        idx = np.flatnonzero(contact)
        shift[:, 2] = np.interp(rows, idx, -low_h[idx])
    else:
        shift[:, 2] = -low_h.min()
    shift[:, 2] = np.maximum(shift[:, 2], -low_h)  # nothing below the floor
    # (2) horizontal: pin the lowest point of each contact frame until the next frame
    for i in range(t - 1):
        shift[i + 1, :2] = shift[i, :2]
        if contact[i] and contact[i + 1]:
            k = low[i]
            shift[i + 1, :2] -= m[i + 1, k, :2] - m[i, k, :2]
    return shift, contact


def retarget(motion: DeepMimicMotion, betas: np.ndarray | None = None,
             gender: str = "neutral", fps: float = MOTION_FPS, cleanup: bool = True,
             scale: float | None = None) -> tuple[MotionClip, RetargetReport]:
    """Retarget a DeepMimic clip onto an SMPL-X body (see the module docstring).

    Args:
        motion: a parsed humanoid clip (loop it first with ``motion.looped(n)`` if wanted).
        betas: ``(10,)`` SMPL-X shape (default zeros).
        gender: body model gender.
        fps: output frame rate.
        cleanup: apply :func:`plant_feet` (else only a constant shift onto the floor).
        scale: translation scale; default ``leg_SMPL-X / leg_humanoid``.

    Returns:
        The clip (world frame of :mod:`.data_clip`) and a :class:`RetargetReport`.
    """
    b = np.zeros(10) if betas is None else np.asarray(betas, dtype=np.float64)
    go, bp, root = deepmimic_to_smplx(motion, fps)
    s = leg_length(b, gender) / humanoid_leg_length() if scale is None else float(scale)
    j = rest_joints(b, gender)
    hip_centre = 0.5 * (j[1] + j[2])
    pelvis = s * root + rotvec_to_matrix(go) @ (j[0] - hip_centre)
    pelvis[:, :2] -= pelvis[0, :2]
    transl = pelvis - j[0]
    points, _ = evaluate(go, bp, transl, b, gender, soles=True)  # markers + sole points
    const = np.zeros(3)
    const[2] = -points[..., 2].min()
    before = foot_contact_stats(points[:, :67] + const, fps)
    if cleanup:
        shift, contact = plant_feet(points, fps)
    else:
        shift, contact = np.broadcast_to(const, (len(transl), 3)), np.zeros(len(transl), bool)
    after = foot_contact_stats(points[:, :67] + shift[:, None], fps)
    clip = MotionClip(name=motion.name, global_orient=go, body_pose=bp, transl=transl + shift,
                      betas=b, gender=gender, fps=fps,
                      meta={"source": f"deepmimic:{motion.name}", "scale": s})
    return clip, RetargetReport(scale=s, before=before, after=after,
                                contact_fraction=float(contact.mean()))


def retarget_named(name: str, cycles: int = 1, **kwargs: object
                   ) -> tuple[MotionClip, RetargetReport]:
    """Load a shipped clip by name, loop it ``cycles`` times if cyclic, and :func:`retarget`."""
    motion = load_motion(name)
    if motion.loop == "wrap" and cycles > 1:
        motion = motion.looped(cycles)
    return retarget(motion, **kwargs)


def replant(clip: MotionClip, cleanup: bool = True
            ) -> tuple[MotionClip, np.ndarray, np.ndarray]:
    """Plant an (augmented) clip's feet again with :func:`plant_feet`.

    Returns:
        The clip with corrected ``transl``, its markers ``(T, 67, 3)`` and joints
        ``(T, 55, 3)`` in the z-up world (computed once; the correction is a rigid shift).
    """
    points, joints = evaluate(clip.global_orient, clip.body_pose, clip.transl, clip.betas,
                              clip.gender, soles=True)
    if cleanup:
        shift, _ = plant_feet(points, clip.fps)
    else:
        shift = np.zeros((clip.num_frames, 3))
        shift[:, 2] = -points[..., 2].min()
    out = clip.replace(transl=clip.transl + shift)
    return out, points[:, :67] + shift[:, None], joints + shift[:, None]
