"""EgoGen's reward terms for one motion primitive (its published terms and weights), and the
body-vertex probe of the penetration term.

All terms are computed per human from the 18 new frames of a primitive (40 fps) plus the last
frame of the previous one; each raw term is weighted by ``reward.weights`` and the reward is
their sum (every weighted term is reported in ``info["reward_terms"]``):

=================  =========================================================  ======
term               raw value                                                  weight
=================  =========================================================  ======
foot_skating       ``exp(-mean_t max(min_f |v_f,t| - 0.075, 0))``, foot        0.3
                   marker speeds ``v`` in m/s, min over the 6 foot markers
floor_contact      ``exp(-mean_t |min_f z_f,t - 0.02|)``, foot heights (m)      0.1
                   above the human's floor (``Simulation.floor_z``)
face_target        ``(cos(body forward, pelvis->target) + 1) / 2``, last frame  0.1
look_at_target     same with the gaze direction (eye line), last frame          0.3
progress           remaining route length before - after the step (m)          1.0
success            1 in the step that ends the episode at the goal, else 0     0.5
penetration        ``exp(-mean_t n_t / 10)``, ``n_t`` the estimated number of   1.0
                   body vertices (feet excluded) with scene SDF < 0 in frame t
pose_prior         ``exp(-mean_i z_i^2 / 2)``: the N(0, I) prior's per-dim     0.1
                   log-density of the latent (up to a constant), exponentiated
=================  =========================================================  ======

Reward variants (``reward.variant``):

* ``egogen`` (default): the weighted terms above, EgoGen's reward. Its six per-step terms
  (every term but ``progress`` and ``success``) are in ``(0, weight]`` each step, so an
  episode pays more the longer it lasts: with ``episode.end_outside: false`` the motion
  prior's random walks time out after 56 steps on average and return 71, the shipped
  policy, reaching its goals in 18 steps, 31 (16 held-out episodes). PPO from scratch on it
  learns to collect per-step reward rather than to arrive (README, Agent).
* ``per_progress`` (a deviation from EgoGen, off by default): the per-step terms pay per
  metre of progress along the route instead of per step. With ``p`` the step's progress
  (m), per-step term ``i`` is ``w_i raw_i p`` when ``p >= 0`` and ``w_i p`` when ``p < 0``;
  ``progress`` and ``success`` are unchanged. With ``W = sum_i w_i`` (1.9 for EgoGen's
  weights), an episode's return is at most ``(w_progress + W) L + w_success``, ``L`` the
  remaining route at the start (progress telescopes), however long it lasts; standing still
  earns nothing, and walking back costs as much as walking forward can earn.

Penetration (:class:`PenetrationProbe`): a fixed subsample of ``K`` (256) vertices, drawn
once with seed 0 from the body vertices outside the feet, is posed by top-4 linear blend
skinning of the regressed bodies (exact for the procedural body; pose correctives of licensed
models are left out) and tested with ``Scene.sdf``; ``n_t = count_t * V_nonfoot / K``
estimates the full-body count (EgoGen counts all 10,475 vertices but the feet).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["TERMS", "PER_STEP_TERMS", "VARIANTS", "PenetrationProbe", "foot_terms",
           "facing", "pose_prior", "penetration_reward", "weighted_terms"]

TERMS: tuple[str, ...] = ("foot_skating", "floor_contact", "face_target", "look_at_target",
                          "progress", "success", "penetration", "pose_prior")
#: The terms EgoGen pays every step (all but progress and success).
PER_STEP_TERMS: tuple[str, ...] = tuple(t for t in TERMS if t not in ("progress", "success"))
#: ``reward.variant`` values (see the module docstring).
VARIANTS: tuple[str, ...] = ("egogen", "per_progress")


def weighted_terms(raw: dict[str, np.ndarray], weights: dict[str, float], variant: str,
                   active: np.ndarray) -> dict[str, np.ndarray]:
    """Weighted reward terms ``{term: (B,)}`` of one step; they sum to the reward.

    Args:
        raw: ``{term: (B,)}`` raw values of every term of :data:`TERMS` (``progress`` in m).
        weights: ``reward.weights`` as a dict.
        variant: one of :data:`VARIANTS` (module docstring).
        active: ``(B,)`` bool, humans that walked in this step (the others get 0).
    """
    if variant not in VARIANTS:
        raise ValueError(f"reward variant must be one of {VARIANTS}; got {variant!r}")
    out = {k: np.where(active, weights[k] * raw[k], 0.0) for k in TERMS}
    if variant == "per_progress":
        p = np.asarray(raw["progress"], np.float64)
        for k in PER_STEP_TERMS:
            per_m = np.where(p >= 0.0, weights[k] * raw[k] * p, weights[k] * p)
            out[k] = np.where(active, per_m, 0.0)
    return out

FPS = 40.0


def foot_terms(feet: np.ndarray, skating_threshold: float, contact_height: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Foot skating and floor contact.

    Args:
        feet: ``(B, T + 1, 6, 3)`` foot markers (m, world, z up): the previous primitive's
            last frame then the ``T`` new frames.

    Returns:
        ``(skating (B,), contact (B,))`` raw terms in (0, 1].
    """
    speed = np.linalg.norm(np.diff(feet, axis=1), axis=-1) * FPS  # (B, T, 6) m/s
    skate = np.maximum(speed.min(-1) - skating_threshold, 0.0).mean(-1)
    height = feet[:, 1:, :, 2].min(-1)  # (B, T)
    contact = np.abs(height - contact_height).mean(-1)
    return np.exp(-skate), np.exp(-contact)


def facing(direction: np.ndarray, origin: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(cos(direction, origin -> target) + 1) / 2`` in the floor plane, ``(B,)``.

    Args:
        direction: ``(B, 3)`` horizontal unit vectors; origin, target: ``(B, 3)`` points (m).
    """
    to = target[:, :2] - origin[:, :2]
    to = to / np.maximum(np.linalg.norm(to, axis=1, keepdims=True), 1e-9)
    d = direction[:, :2] / np.maximum(np.linalg.norm(direction[:, :2], axis=1,
                                                     keepdims=True), 1e-9)
    return ((d * to).sum(1) + 1.0) / 2.0


def pose_prior(z: np.ndarray) -> np.ndarray:
    """``exp(-mean_i z_i^2 / 2)`` for latents ``z (B, D)``, ``(B,)``."""
    return np.exp(-0.5 * np.mean(np.square(z, dtype=np.float64), axis=1))


def penetration_reward(per_frame: np.ndarray) -> np.ndarray:
    """``exp(-mean_t n_t / 10)`` for ``per_frame (B, T)`` estimated vertex counts."""
    return np.exp(-per_frame.mean(1) / 10.0)


class PenetrationProbe:
    """Poses a fixed subsample of non-foot body vertices (see the module docstring).

    Args:
        body: the prior's :class:`egosim.envs.motion.body_layer.BodyLayer` (rest joints,
            constant hand/face rotations, kinematic tree).
        num_vertices: subsample size ``K``.
        model_dir: licensed SMPL-X folder (None: as the body layer: env var or procedural).
    """

    def __init__(self, body, num_vertices: int = 256, model_dir=None) -> None:
        from egosim.envs.humans import BODY_PART_NAMES, BodyModel, body_part_labels
        from egosim.envs.humans.model_files import GENDERS

        self.body = body
        tmpl, dirs, widx, wval = [], [], [], []
        idx = None
        for g in GENDERS:
            m = BodyModel(g, model_dir=model_dir, num_betas=body.num_betas).smplx
            weights = m.lbs_weights.detach()
            if idx is None:
                labels = body_part_labels(weights.numpy())
                feet = [BODY_PART_NAMES.index("left_foot"), BODY_PART_NAMES.index("right_foot")]
                keep = np.nonzero(~np.isin(labels, feet))[0]
                k = min(int(num_vertices), len(keep))
                idx = np.sort(np.random.default_rng(0).choice(keep, k, replace=False))
                self.num_nonfoot = len(keep)
            sel = torch.as_tensor(idx)
            tmpl.append(m.v_template[sel])
            dirs.append(m.shapedirs[sel][..., :body.num_betas])
            w, j = torch.topk(weights[sel], 4, dim=1)
            wval.append(w / w.sum(1, keepdim=True))
            widx.append(j)
        self.vertex_ids = idx
        self.template = torch.stack(tmpl).float()  # (G, K, 3)
        self.dirs = torch.stack(dirs).float()  # (G, K, 3, S)
        self.w_idx = torch.stack(widx)  # (G, K, 4)
        self.w_val = torch.stack(wval).float()  # (G, K, 4)
        # the same top-4 weights as a dense (G, K, J) matrix: skinning is then one batched
        # matmul per gender (BLAS) instead of a gather of 4 transforms per vertex
        num_joints = int(self.body.parents.shape[0])
        self.w_dense = torch.zeros(len(GENDERS), len(idx), num_joints).scatter_(
            2, self.w_idx, self.w_val)

    @property
    def scale(self) -> float:
        """Factor from a subsample count to the estimated non-foot body count."""
        return self.num_nonfoot / len(self.vertex_ids)

    @torch.no_grad()
    def points(self, global_orient: torch.Tensor, body_pose: torch.Tensor,
               transl: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor) -> np.ndarray:
        """World positions ``(B, T, K, 3)`` (m) of the probe vertices of posed bodies.

        Args:
            global_orient: ``(B, T, 3)``; body_pose: ``(B, T, 63)`` axis-angles (rad);
            transl: ``(B, T, 3)`` (m); betas: ``(B, S)``; gender: ``(B,)`` int.
        """
        from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

        b, t = transl.shape[:2]
        g = gender.long().repeat_interleave(t)
        aa = torch.cat([global_orient[:, :, None], body_pose.reshape(b, t, 21, 3)], 2)
        rot = axis_angle_to_matrix(aa.reshape(b * t, 22, 3))
        full = torch.cat([rot, self.body.const_rot[g].to(rot.dtype)], 1)
        joints = self.body.rest_joints(betas, gender.long()).repeat_interleave(t, 0)
        _, rel = self.body.kinematics(full, joints)  # one product per tree level
        shaped = self.template[gender.long()] + torch.einsum(
            "bs,bkcs->bkc", betas, self.dirs[gender.long()][..., :betas.shape[1]])
        shaped = shaped.repeat_interleave(t, 0)  # (BT, K, 3)
        a = rel[:, :, :3, :].reshape(b * t, rel.shape[1], 12)  # (BT, 55, 12)
        tf = torch.empty(b * t, shaped.shape[1], 12, dtype=a.dtype)
        for gi in torch.unique(g).tolist():  # (K, 55) @ (n, 55, 12) per gender
            sel = g == gi
            tf[sel] = torch.matmul(self.w_dense[gi].to(a.dtype), a[sel])
        tf = tf.reshape(b * t, -1, 3, 4)  # (BT, K, 3, 4) blended transforms
        pts = (tf[..., :3] @ shaped[..., None]).squeeze(-1) + tf[..., 3]
        pts = pts + transl.reshape(b * t, 1, 3)
        return pts.reshape(b, t, -1, 3).numpy()

    def count(self, scene, points: np.ndarray) -> np.ndarray:
        """Estimated penetrating non-foot vertices ``(B, T)`` (float) of ``points
        (B, T, K, 3)`` in ``scene`` (SDF < 0)."""
        inside = scene.sdf(points) < 0.0
        return inside.sum(-1).astype(np.float64) * self.scale
