"""EgoGen's human-mesh-recovery labels: the other humans a head camera sees, per video frame.

:func:`hmr_labels` turns what the clip builder simulated (the other humans' SMPL-X
parameters and joints in the world, the head camera's poses, an instance render) into
labels in the camera frame of each video frame; :class:`~egosim.egom2p.clips.ClipBuilder`
with ``hmr=True`` adds them to every clip as ``clip["hmr"]`` and :func:`frame_samples`
splits a clip into per-frame samples (``egosim generate task=hmr``).

Per clip (``K`` video frames, ``J`` = the wearer's world's other humans, ``S`` pixels):

=================  =======================  ==============================================
key                shape, dtype             meaning
=================  =======================  ==============================================
instance           (J,) int32               instance id of each other human in the render
                                            (``1000 + i`` for human ``i`` of the world)
betas              (J, 10) float32          SMPL-X shape coefficients
gender             (J,) int64               index into ``GENDERS`` (neutral, male, female)
global_orient      (K, J, 3) float32        SMPL-X global orientation, axis-angle (rad), in
                                            the camera frame (OpenCV: x right, y down, z
                                            forward)
body_pose          (K, J, 63) float32       axis-angles of the 21 body joints (rad; the
                                            same in any frame)
transl             (K, J, 3) float32        SMPL-X translation (m) that poses the body in
                                            the camera frame (see :func:`params_to_camera`)
joints_3d          (K, J, 55, 3) float32    SMPL-X joints (m, camera frame)
joints_2d          (K, J, 55, 2) float32    their pixels ``(u, v)`` (pixel centres at
                                            integers; meaningless where not in front)
joints_visible     (K, J, 55) bool          in front (z > near), inside the image and not
                                            hidden (:func:`joint_visibility`)
bbox               (K, J, 4) int32          ``[u_min, v_min, u_max, v_max]`` of the human's
                                            instance mask (inclusive pixels; -1: no pixel)
mask_pixels        (K, J) int32             pixels of the instance mask
in_view            (K, J) bool              the human has at least one mask pixel
camera_pose        (K, 4, 4) float64        camera-to-world pose of each frame (world, m)
instance_map       (K, S, S) int32          the instance render (-1: nothing hit)
=================  =======================  ==============================================

The body model: SMPL-X with hands at smplx's relaxed mean pose (``flat_hand_mean=False``,
zero PCA coefficients), jaw and eyes at rest, zero expression, as the simulation poses it
(``egosim.envs.humans.BodyModel(gender)`` called with ``betas``, ``global_orient``,
``body_pose`` and ``transl`` gives the camera-frame mesh and joints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["HMR_KEYS", "OCCLUSION_TOLERANCE_M", "TORSO_JOINTS", "frame_samples", "preview_frame",
           "hmr_labels", "joint_visibility", "mask_bbox", "params_to_camera",
           "project_points", "world_to_camera", "write_hmr_preview"]

#: The per-clip keys of ``clip["hmr"]`` (module table).
HMR_KEYS: tuple[str, ...] = ("instance", "betas", "gender", "global_orient", "body_pose",
                             "transl", "joints_3d", "joints_2d", "joints_visible", "bbox",
                             "mask_pixels", "in_view", "camera_pose", "instance_map")
#: SMPL-X torso joints: pelvis, hips, spine 1-3, neck.
TORSO_JOINTS: tuple[int, ...] = (0, 1, 2, 3, 6, 9, 12)
#: A joint is hidden where the render shows something else at least this much nearer (m).
OCCLUSION_TOLERANCE_M = 0.1
_PER_HUMAN = ("global_orient", "body_pose", "transl", "joints_3d", "joints_2d",
              "joints_visible", "bbox", "mask_pixels")


def _rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    r = np.asarray(rotvec, np.float64)
    return Rotation.from_rotvec(r.reshape(-1, 3)).as_matrix().reshape(r.shape[:-1] + (3, 3))


def _matrix_to_rotvec(mat: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    m = np.asarray(mat, np.float64)
    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_rotvec().reshape(m.shape[:-2] + (3,))


def world_to_camera(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World points ``(..., P, 3)`` (m) into the camera of ``pose`` ``(..., 4, 4)``
    (camera-to-world, OpenCV axes): ``R^T (p - c)``, float64 ``(..., P, 3)``."""
    p = np.asarray(pose, np.float64)
    x = np.asarray(points, np.float64) - p[..., None, :3, 3]
    return np.einsum("...pi,...ij->...pj", x, p[..., :3, :3])


def params_to_camera(global_orient: np.ndarray, transl: np.ndarray, pelvis_rest: np.ndarray,
                     pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-X root parameters re-expressed in a camera frame.

    SMPL-X poses a body as ``v = R_g (v_rest - J0) + J0 + t`` (``J0``: the shaped rest
    pelvis; it rotates about it), so after the rigid change of frame ``p_c = R_cw p_w +
    t_cw`` (``R_cw = R^T``, ``t_cw = -R^T c`` of the camera pose) the same mesh is posed by
    ``R_g' = R_cw R_g`` and ``t' = R_cw (J0 + t) + t_cw - J0``; the body pose is unchanged.

    Args:
        global_orient: ``(..., 3)`` world axis-angles (rad).
        transl: ``(..., 3)`` world translations (m).
        pelvis_rest: ``(..., 3)`` rest pelvis ``J0`` of each body (m, body frame; from its
            betas and gender), broadcast against the others.
        pose: ``(..., 4, 4)`` camera-to-world poses (OpenCV axes), broadcast likewise.

    Returns:
        ``(global_orient_c (..., 3), transl_c (..., 3))`` float64, camera frame.
    """
    p = np.asarray(pose, np.float64)
    r_cw = np.swapaxes(p[..., :3, :3], -1, -2)
    t_cw = -np.einsum("...ij,...j->...i", r_cw, p[..., :3, 3])
    rot = r_cw @ _rotvec_to_matrix(global_orient)
    j0 = np.asarray(pelvis_rest, np.float64)
    t = np.einsum("...ij,...j->...i", r_cw, j0 + np.asarray(transl, np.float64)) + t_cw - j0
    return _matrix_to_rotvec(rot), t


def project_points(points_cam: np.ndarray, k_mat: np.ndarray, near: float = 1e-6
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of camera-frame points ``(..., 3)`` (m) with ``K`` ``(3, 3)``:
    ``(uv (..., 2) pixels, in_front (...,) bool: z > near)`` (pixel centres at integers;
    ``uv`` is NaN behind the camera)."""
    p = np.asarray(points_cam, np.float64)
    z = p[..., 2]
    front = z > near
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k_mat[0, 0] * p[..., 0] / z + k_mat[0, 2]
        v = k_mat[1, 1] * p[..., 1] / z + k_mat[1, 2]
    uv = np.stack([u, v], axis=-1)
    uv[~front] = np.nan
    return uv, front


def joint_visibility(uv: np.ndarray, z: np.ndarray, in_front: np.ndarray,
                     instance_map: np.ndarray, depth_map: np.ndarray, own_id: int,
                     tolerance: float = OCCLUSION_TOLERANCE_M) -> np.ndarray:
    """Which joints of one human a frame shows: ``(P,)`` bool.

    A joint is visible when it is in front of the camera, its pixel ``round(uv)`` is inside
    the image, and the render at that pixel shows the human itself (``instance_map ==
    own_id``) or nothing nearer than the joint by more than ``tolerance`` (the background
    behind a thin limb the coarse render missed). Something else nearer (a wall, furniture,
    another human, the wearer's own hands) hides it; the human's own body does not (a
    self-occluded joint counts as visible, as in keypoint datasets).

    Args:
        uv: ``(P, 2)`` pixels; z: ``(P,)`` camera depths (m); in_front: ``(P,)``.
        instance_map: ``(H, W)`` int32 instance render; depth_map: ``(H, W)`` float32
            noise-free z-depth (m, 0 = nothing hit).
        own_id: the human's instance id.
    """
    h, w = instance_map.shape
    ok = np.asarray(in_front, bool) & np.isfinite(uv).all(axis=-1)
    px = np.zeros(len(ok), np.int64)
    py = np.zeros(len(ok), np.int64)
    px[ok] = np.rint(uv[ok, 0]).astype(np.int64)
    py[ok] = np.rint(uv[ok, 1]).astype(np.int64)
    ok &= (px >= 0) & (px < w) & (py >= 0) & (py < h)
    vis = np.zeros(len(ok), bool)
    idx = np.nonzero(ok)[0]
    inst = instance_map[py[idx], px[idx]]
    d = depth_map[py[idx], px[idx]]
    vis[idx] = (inst == own_id) | (d <= 0) | (d >= z[idx] - tolerance)
    return vis


def mask_bbox(instance_map: np.ndarray, ids: Sequence[int] | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(bbox (J, 4) int32 [u_min, v_min, u_max, v_max] inclusive, -1 without pixels;
    pixels (J,) int32)`` of each instance id's mask in ``instance_map`` ``(H, W)``."""
    ids = np.asarray(ids, np.int64)
    box = np.full((len(ids), 4), -1, np.int32)
    count = np.zeros(len(ids), np.int32)
    for n, i in enumerate(ids):
        vs, us = np.nonzero(instance_map == i)
        count[n] = len(us)
        if len(us):
            box[n] = (us.min(), vs.min(), us.max(), vs.max())
    return box, count


def hmr_labels(joints: np.ndarray, global_orient: np.ndarray, body_pose: np.ndarray,
               transl: np.ndarray, betas: np.ndarray, gender: np.ndarray,
               pelvis_rest: np.ndarray, instance_ids: np.ndarray, poses: np.ndarray,
               k_mat: np.ndarray, instance_maps: np.ndarray, depth_maps: np.ndarray,
               near: float) -> dict[str, np.ndarray]:
    """The labels of the module table for one wearer's clip.

    Args:
        joints: ``(J, K, 55, 3)`` the other humans' SMPL-X joints at the video frames (m,
            world).
        global_orient, body_pose, transl: ``(J, K, 3)``, ``(J, K, 63)``, ``(J, K, 3)``
            their world SMPL-X parameters (rad, m).
        betas: ``(J, 10)``; gender: ``(J,)`` int; pelvis_rest: ``(J, 3)`` rest pelvis (m).
        instance_ids: ``(J,)`` their instance ids as rendered.
        poses: ``(K, 4, 4)`` the head camera's camera-to-world poses at the video frames.
        k_mat: ``(3, 3)`` intrinsics of the video camera (pixels).
        instance_maps: ``(K, S, S)`` int32 instance renders; depth_maps: ``(K, S, S)``
            float32 noise-free z-depth renders (m) of the same frames.
        near: the camera's near plane (m).
    """
    j_n, k_n = joints.shape[:2]
    poses = np.asarray(poses, np.float64)
    out: dict[str, np.ndarray] = {
        "instance": np.asarray(instance_ids, np.int32).reshape(j_n),
        "betas": np.asarray(betas, np.float32).reshape(j_n, np.shape(betas)[-1]),
        "gender": np.asarray(gender, np.int64).reshape(j_n),
    }
    pose_kj = np.broadcast_to(poses[:, None], (k_n, j_n, 4, 4))
    go = np.swapaxes(np.asarray(global_orient, np.float64), 0, 1)  # (K, J, 3)
    tr = np.swapaxes(np.asarray(transl, np.float64), 0, 1)
    j0 = np.broadcast_to(np.asarray(pelvis_rest, np.float64)[None], (k_n, j_n, 3))
    go_c, tr_c = params_to_camera(go, tr, j0, pose_kj)
    jc = world_to_camera(np.swapaxes(np.asarray(joints, np.float64), 0, 1), pose_kj)
    uv, front = project_points(jc, k_mat, near)
    vis = np.zeros(jc.shape[:3], bool)
    box = np.full((k_n, j_n, 4), -1, np.int32)
    pixels = np.zeros((k_n, j_n), np.int32)
    for k in range(k_n):
        box[k], pixels[k] = mask_bbox(instance_maps[k], out["instance"])
        for j in range(j_n):
            vis[k, j] = joint_visibility(uv[k, j], jc[k, j, :, 2], front[k, j],
                                         instance_maps[k], depth_maps[k],
                                         int(out["instance"][j]))
    out.update({
        "global_orient": go_c.astype(np.float32),
        "body_pose": np.swapaxes(np.asarray(body_pose, np.float32), 0, 1).copy(),
        "transl": tr_c.astype(np.float32),
        "joints_3d": jc.astype(np.float32),
        "joints_2d": np.nan_to_num(uv, nan=-1.0).astype(np.float32),
        "joints_visible": vis,
        "bbox": box,
        "mask_pixels": pixels,
        "in_view": pixels > 0,
        "camera_pose": poses.copy(),
        "instance_map": np.asarray(instance_maps, np.int32).copy(),
    })
    return out


def frame_samples(clip: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One sample per video frame of a clip with ``hmr`` labels (``hmr=True`` builder).

    Each sample holds the frame's images (``rgb`` ``(S, S, 3)``, ``depth`` ``(S, S)`` when
    the clip has them, ``instance`` ``(S, S)``), ``intrinsics`` ``(3, 3)``,
    ``camera_pose`` ``(4, 4)`` (world) and ``video_camera`` ``(4, 4)`` (the clip's canonical
    frame, when present), the humans in view (``M`` of them, ``in_view``) as
    ``hmr_<key>`` arrays with the human axis first (``hmr_instance (M,)``, ``hmr_betas
    (M, 10)``, ``hmr_gender (M,)``, ``hmr_global_orient (M, 3)``, ``hmr_body_pose
    (M, 63)``, ``hmr_transl (M, 3)``, ``hmr_joints_3d (M, 55, 3)``, ``hmr_joints_2d
    (M, 55, 2)``, ``hmr_joints_visible (M, 55)``, ``hmr_bbox (M, 4)``, ``hmr_mask_pixels
    (M,)``), and ``meta``: the clip's meta (without its per-sample attention) plus
    ``frame`` (video frame index) and ``time_s`` (seconds since the clip start).
    """
    h = clip["hmr"]
    k_n = h["camera_pose"].shape[0]
    meta = {k: v for k, v in clip["meta"].items() if k != "attention"}
    out = []
    for k in range(k_n):
        seen = np.nonzero(h["in_view"][k])[0]
        s: dict[str, Any] = {}
        for key in ("rgb", "depth"):
            if key in clip:
                s[key] = np.asarray(clip[key][k])
        s["instance"] = h["instance_map"][k]
        s["intrinsics"] = np.asarray(clip["intrinsics"])
        s["camera_pose"] = h["camera_pose"][k]
        if "video_camera" in clip:
            s["video_camera"] = np.asarray(clip["video_camera"][k])
        for key in ("instance", "betas", "gender"):
            s[f"hmr_{key}"] = h[key][seen]
        for key in _PER_HUMAN:
            s[f"hmr_{key}"] = h[key][k][seen]
        s["meta"] = {**meta, "frame": k, "time_s": float(clip["video_times"][k])}
        out.append(s)
    return out


def preview_frame(sample: Mapping[str, Any], panel: int = 192) -> np.ndarray:
    """``(panel, 2 panel, 3)`` uint8: the frame's RGB (grey without it) with each human's
    box and visible joints (torso red, others yellow) | its instance mask in colours."""
    inst = np.asarray(sample["instance"])
    s = inst.shape[0]
    rgb = (np.asarray(sample["rgb"]) if "rgb" in sample
           else np.full((s, s, 3), 96, np.uint8))
    scale = panel / s
    idx = (np.arange(panel) * s // panel)
    a = rgb[idx[:, None], idx[None]].copy()
    ids = np.where(inst >= 0, inst, 0).astype(np.int64)
    colour = np.stack([(ids * 97) % 255, (ids * 57) % 255, (ids * 23) % 255], -1)
    b = np.where((inst >= 1000)[..., None], colour, (inst >= 0)[..., None] * 40
                 ).astype(np.uint8)[idx[:, None], idx[None]]
    yy, xx = np.mgrid[0:panel, 0:panel]
    for m in range(len(sample["hmr_instance"])):
        x0, y0, x1, y1 = (np.asarray(sample["hmr_bbox"][m], np.float64) + [0, 0, 1, 1]) * scale
        edge = (((np.abs(xx - x0) < 1) | (np.abs(xx - x1) < 1)) & (yy >= y0) & (yy <= y1)) | \
               (((np.abs(yy - y0) < 1) | (np.abs(yy - y1) < 1)) & (xx >= x0) & (xx <= x1))
        a[edge] = (40, 255, 40)
        for q in np.nonzero(np.asarray(sample["hmr_joints_visible"][m]))[0]:
            u, v = (np.asarray(sample["hmr_joints_2d"][m][q]) + 0.5) * scale
            dot = (xx - u) ** 2 + (yy - v) ** 2 <= max(1.5, panel / 96) ** 2
            a[dot] = (255, 40, 40) if q in TORSO_JOINTS else (255, 220, 40)
    return np.concatenate([a, b], axis=1)


def write_hmr_preview(path: Any, samples: Sequence[Mapping[str, Any]], fps: float = 8.0,
                      panel: int = 192) -> Any:
    """Write :func:`preview_frame` of each frame sample to the MP4 ``path`` (atomic);
    returns the path."""
    from pathlib import Path

    import imageio.v2 as imageio

    from egosim.atomic_io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        writer = imageio.get_writer(tmp, fps=fps, macro_block_size=1)
        try:
            for s in samples:
                writer.append_data(preview_frame(s, panel))
        finally:
            writer.close()
    return path
