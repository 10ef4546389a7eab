"""A differentiable SMPL-X layer driven by rotation matrices, for markers and fast vertices.

The regressor refines body parameters by re-projecting them to the 67 SSM2 markers at every
iteration, and the rollout needs vertices for many bodies at once. :class:`BodyLayer` reads
the buffers of :class:`egosim.envs.humans.BodyModel` (one per gender) and evaluates

* :meth:`BodyLayer.markers` — the 67 markers and 55 joints (same formulas as
  ``BodyModel.markers_only``: linear blend skinning of the marker vertices, pose correctives
  when the model has them), batched over mixed genders;
* :meth:`BodyLayer.vertices` / :meth:`BodyLayer.vertices_sequence` — all 10,475 vertices,
  equal to ``smplx``'s (pose correctives included when the model has them) by
  :class:`~.skinning.SparseSkinning`: shaped rest vertices once per human, sparse linear
  blend skinning that keeps every non-zero weight, correctives skipped only when posedirs are
  exactly zero (the procedural body).

Inputs: ``rot (B, 22, 3, 3)`` rotations of the pelvis (global orientation) and the 21 body
joints; jaw and eyes are at rest, hands at smplx's relaxed mean pose (``flat_hand_mean=False``,
zero PCA coefficients); expression zero. Frame: SMPL-X's body frame rotated by the global
orientation, metres, ``transl`` added (as ``smplx``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from egosim.envs.humans.body_model import BodyModel
from egosim.envs.humans.marker_set import MARKER_VERTEX_IDS
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.humans.sequence_skinning import KinematicTree, SparseSkinning, empty_output
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

__all__ = ["BodyLayer", "GENDERS", "gender_index"]

NUM_BODY_ROT = 22  # pelvis + 21 body joints


def gender_index(gender: str | int) -> int:
    """Index of ``gender`` in :data:`GENDERS` (``neutral``, ``male``, ``female``)."""
    if isinstance(gender, (int, np.integer)):
        if not 0 <= int(gender) < len(GENDERS):
            raise ValueError(f"gender index must be in 0..{len(GENDERS) - 1}; got {gender}")
        return int(gender)
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(GENDERS)}; got {gender!r}")
    return GENDERS.index(gender)


class BodyLayer(torch.nn.Module):
    """SMPL-X evaluation from rotation matrices for all genders at once (buffers only).

    Args:
        model_dir: licensed SMPL-X folder (``None``: ``$EGOSIM_SMPLX_DIR`` or procedural).
        num_betas: shape coefficients used.
        with_vertices: also prepare the all-vertex path (:meth:`vertices`).
        models: instead of files, one constructed ``smplx.SMPLX`` per gender in
            :data:`GENDERS` order (``flat_hand_mean=False``, as :class:`BodyModel` builds
            them); ``model_dir`` is then ignored.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, num_betas: int = 10,
                 with_vertices: bool = True, models: Sequence[torch.nn.Module] | None = None
                 ) -> None:
        super().__init__()
        if models is None:
            models = [BodyModel(g, model_dir=model_dir, num_betas=num_betas).smplx
                      for g in GENDERS]
        elif len(models) != len(GENDERS):
            raise ValueError(f"models must hold one smplx model per gender ({len(GENDERS)}: "
                             f"{', '.join(GENDERS)}); got {len(models)}")
        ids = torch.as_tensor(MARKER_VERTEX_IDS)
        stacks: dict[str, list[torch.Tensor]] = {k: [] for k in (
            "j_template", "j_dirs", "m_template", "m_dirs", "m_posedirs", "m_weights",
            "const_rot")}
        self.num_betas = num_betas
        self.faces: np.ndarray | None = None
        has_posedirs = False
        for m in models:
            v = m.v_template.shape[0]
            dirs = m.shapedirs[..., :num_betas]  # (V, 3, S)
            stacks["j_template"].append(m.J_regressor @ m.v_template)
            stacks["j_dirs"].append(torch.einsum("jv,vcs->jcs", m.J_regressor, dirs))
            stacks["m_template"].append(m.v_template[ids])
            stacks["m_dirs"].append(dirs[ids])
            cols = (ids[:, None] * 3 + torch.arange(3)[None]).reshape(-1)
            pd = m.posedirs.reshape(-1, v * 3)[:, cols]
            has_posedirs |= bool(torch.any(pd != 0))
            stacks["m_posedirs"].append(pd)
            stacks["m_weights"].append(m.lbs_weights[ids])
            rest = m.pose_mean.reshape(-1, 3)[NUM_BODY_ROT:]
            stacks["const_rot"].append(axis_angle_to_matrix(rest))
            parents = m.parents.clone()
        for k, vals in stacks.items():
            self.register_buffer(k, torch.stack(vals).detach(), persistent=False)
        self.register_buffer("parents", parents, persistent=False)
        self.has_posedirs = has_posedirs
        self.with_vertices = with_vertices
        self.skinning: SparseSkinning | None = None
        self.kinematics = KinematicTree(parents)
        if with_vertices:
            self.skinning = SparseSkinning(models, num_betas, self.const_rot)
            self.faces = np.asarray(models[0].faces, dtype=np.int64)

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _check(rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor) -> None:
        b = rot.shape[0]
        if rot.shape[1:] != (NUM_BODY_ROT, 3, 3):
            raise ValueError(f"rot must have shape (B, {NUM_BODY_ROT}, 3, 3); got "
                             f"{tuple(rot.shape)}")
        if betas.ndim != 2 or betas.shape[0] != b:
            raise ValueError(f"betas must have shape ({b}, S); got {tuple(betas.shape)}")
        if gender.shape != (b,):
            raise ValueError(f"gender must have shape ({b},); got {tuple(gender.shape)}")

    def rest_joints(self, betas: torch.Tensor, gender: torch.Tensor) -> torch.Tensor:
        """Rest-pose joints ``(B, 55, 3)`` (m, body frame) for ``betas (B, S)``."""
        g = gender.long()
        s = betas.shape[1]
        return self.j_template[g] + torch.einsum("bs,bjcs->bjc", betas,
                                                 self.j_dirs[g][..., :s])

    def rest_markers(self, betas: torch.Tensor, gender: torch.Tensor) -> torch.Tensor:
        """Rest-pose markers ``(B, 67, 3)`` (m, body frame) for ``betas (B, S)``."""
        g = gender.long()
        return self.m_template[g] + torch.einsum("bs,bkcs->bkc", betas,
                                                 self.m_dirs[g][..., :betas.shape[1]])

    def rest(self, betas: torch.Tensor, gender: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rest_markers, rest_joints)`` for :meth:`markers`' ``rest`` argument: bodies
        posed several times with the same shapes (the regressor's iterations) compute them
        once."""
        return self.rest_markers(betas, gender), self.rest_joints(betas, gender)

    def _blend_transforms(self, rel: torch.Tensor, gender: torch.Tensor) -> torch.Tensor:
        """Per-marker blended transforms ``(B, 67, 4, 4)`` of ``rel (B, 55, 4, 4)``: one
        ``(67, 55) @ (55, 16 n)`` product per gender present (no per-body weight copy)."""
        b, j = rel.shape[:2]
        flat = rel.reshape(b, j, 16)
        genders = torch.unique(gender).tolist()
        if len(genders) == 1:
            w = self.m_weights[genders[0]].to(rel.dtype)
            return torch.matmul(w, flat).view(b, -1, 4, 4)
        out = rel.new_empty(b, self.m_weights.shape[1], 16)
        for gi in genders:
            idx = torch.nonzero(gender == gi).squeeze(1)
            w = self.m_weights[gi].to(rel.dtype)
            out = out.index_copy(0, idx, torch.matmul(w, flat.index_select(0, idx)))
        return out.view(b, -1, 4, 4)

    # -- public -------------------------------------------------------------------------
    def markers(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                transl: torch.Tensor,
                rest: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Markers ``(B, 67, 3)`` and joints ``(B, 55, 3)`` (m), differentiable.

        Args:
            rot: ``(B, 22, 3, 3)`` global orientation and 21 body-joint rotations.
            betas: ``(B, S)`` shape coefficients.
            gender: ``(B,)`` integer index into :data:`GENDERS`.
            transl: ``(B, 3)`` smplx translation (m).
            rest: optional :meth:`rest` of the same ``betas`` and ``gender`` (reused).
        """
        self._check(rot, betas, gender)
        g = gender.long()
        v, joints = self.rest(betas, g) if rest is None else rest
        full = torch.cat([rot, self.const_rot[g].to(rot.dtype)], 1)  # (B, 55, 3, 3)
        posed, rel = self.kinematics(full, joints)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
            feat = (full[:, 1:] - eye).reshape(rot.shape[0], 1, -1)
            v = v + torch.bmm(feat, self.m_posedirs[g]).reshape(v.shape)
        t = self._blend_transforms(rel, g)
        out = torch.einsum("bkmn,bkn->bkm", t[..., :3, :3], v) + t[..., :3, 3]
        return out + transl[:, None], posed + transl[:, None]

    @torch.no_grad()
    def vertices(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                 transl: torch.Tensor) -> torch.Tensor:
        """All vertices ``(B, 10475, 3)`` (m) of independent bodies (no gradients).

        Equal to ``smplx.SMPLX`` with the same inputs (pose correctives included). Bodies
        with the same betas and gender share one shaped rest mesh; for sequences use
        :meth:`vertices_sequence`, which needs no grouping.

        Args:
            rot, betas, gender, transl: as :meth:`markers`.
        """
        self._require_vertices()
        self._check(rot, betas, gender)
        out = empty_output((rot.shape[0], self.skinning.num_vertices, 3), rot.dtype, rot.device)
        key = torch.cat([betas, gender[:, None].to(betas.dtype)], 1)
        _, inverse = torch.unique(key, dim=0, return_inverse=True)
        for u in torch.unique(inverse).tolist():
            idx = torch.nonzero(inverse == u).squeeze(1)
            first, n = int(idx[0]), idx.numel()
            run = int(idx[-1]) - first + 1 == n  # consecutive bodies: write in place
            v = self.vertices_sequence(rot[idx][None], betas[first:first + 1],
                                       gender[first:first + 1], transl[idx][None],
                                       out=out[first:first + n][None] if run else None)
            if not run:
                out[idx] = v[0]
        return out

    @torch.no_grad()
    def vertices_sequence(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                          transl: torch.Tensor, out: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """All vertices ``(H, T, 10475, 3)`` (m) of ``H`` humans over ``T`` frames.

        Equal to ``smplx.SMPLX`` frame by frame (pose correctives included); each human's
        shaped rest mesh is computed once (see :mod:`.skinning`).

        Args:
            rot: ``(H, T, 22, 3, 3)`` global orientation and 21 body-joint rotations.
            betas: ``(H, S)`` shape coefficients (constant over a human's frames).
            gender: ``(H,)`` integer index into :data:`GENDERS`.
            transl: ``(H, T, 3)`` smplx translation (m).
            out: optional contiguous ``(H, T, 10475, 3)`` destination.
        """
        self._require_vertices()
        if rot.ndim != 5 or rot.shape[2:] != (NUM_BODY_ROT, 3, 3):
            raise ValueError(f"rot must have shape (H, T, {NUM_BODY_ROT}, 3, 3); got "
                             f"{tuple(rot.shape)}")
        h, t = rot.shape[:2]
        if betas.ndim != 2 or betas.shape[0] != h:
            raise ValueError(f"betas must have shape ({h}, S); got {tuple(betas.shape)}")
        if gender.shape != (h,):
            raise ValueError(f"gender must have shape ({h},); got {tuple(gender.shape)}")
        if transl.shape != (h, t, 3):
            raise ValueError(f"transl must have shape ({h}, {t}, 3); got {tuple(transl.shape)}")
        g = gender.long()
        full = torch.cat([rot, self.const_rot[g][:, None].to(rot.dtype).expand(
            h, t, *self.const_rot.shape[1:])], 2).reshape(h * t, -1, 3, 3)
        joints = self.rest_joints(betas, g)[:, None].expand(h, t, -1, -1)
        _, rel = self.kinematics(full, joints.reshape(h * t, -1, 3))
        return self.skinning(rel.view(h, t, *rel.shape[1:]), rot, betas, g, transl, out=out)

    def _require_vertices(self) -> None:
        if self.skinning is None:
            raise RuntimeError("BodyLayer was built with with_vertices=False")
