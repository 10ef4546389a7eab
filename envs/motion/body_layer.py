"""A differentiable SMPL-X layer driven by rotation matrices, for markers and fast vertices.

The regressor refines body parameters by re-projecting them to the 67 SSM2 markers at every
iteration, and the rollout needs vertices for many bodies at once. :class:`BodyLayer` reads
the buffers of :class:`egosim.envs.humans.BodyModel` (one per gender) and evaluates

* :meth:`BodyLayer.markers` — the 67 markers and 55 joints (same formulas as
  ``BodyModel.markers_only``: linear blend skinning of the marker vertices, pose correctives
  when the model has them), batched over mixed genders;
* :meth:`BodyLayer.vertices` — all 10,475 vertices by linear blend skinning, block-sparse:
  vertices are grouped by the joint with their largest skinning weight, and each group's
  blended transforms are one matrix product ``weights (n_g, |U_g|) @ transforms (|U_g|, 12 n)``
  over the union ``U_g`` of joints the group uses (about 7 % of the dense work; exact, since
  every non-zero weight is kept). Pose correctives are left out of this path (the procedural
  body has none; with licensed files the vertices differ from ``smplx`` by those correctives).

Inputs: ``rot (B, 22, 3, 3)`` rotations of the pelvis (global orientation) and the 21 body
joints; jaw and eyes are at rest, hands at smplx's relaxed mean pose (``flat_hand_mean=False``,
zero PCA coefficients); expression zero. Frame: SMPL-X's body frame rotated by the global
orientation, metres, ``transl`` added (as ``smplx``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform

from egosim.envs.humans.body_model import BodyModel
from egosim.envs.humans.marker_set import MARKER_VERTEX_IDS
from egosim.envs.humans.procedural import GENDERS

from .rotations import axis_angle_to_matrix

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


def _weight_blocks(weights: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, torch.Tensor,
                                                                   torch.Tensor]]]:
    """Group vertices by their main joint: ``order (V,)``, ``inverse (V,)``, blocks.

    Each block is ``(start, stop, joints (U,), weights (stop - start, U))`` over the vertices
    ``order[start:stop]``; ``joints`` are all joints with a non-zero weight in the block.
    """
    main = weights.argmax(1)
    order = torch.argsort(main, stable=True)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel())
    sorted_main = main[order]
    blocks = []
    for j in torch.unique(sorted_main).tolist():
        idx = torch.nonzero(sorted_main == j).squeeze(1)
        start, stop = int(idx[0]), int(idx[-1]) + 1
        w = weights[order[start:stop]]
        used = torch.nonzero((w != 0).any(0)).squeeze(1)
        blocks.append((start, stop, used, w[:, used].contiguous()))
    return order, inverse, blocks


class BodyLayer(torch.nn.Module):
    """SMPL-X evaluation from rotation matrices for all genders at once (buffers only).

    Args:
        model_dir: licensed SMPL-X folder (``None``: ``$EGOSIM_SMPLX_DIR`` or procedural).
        num_betas: shape coefficients used.
        with_vertices: also prepare the fast all-vertex path (:meth:`vertices`).
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, num_betas: int = 10,
                 with_vertices: bool = True) -> None:
        super().__init__()
        ids = torch.as_tensor(MARKER_VERTEX_IDS)
        stacks: dict[str, list[torch.Tensor]] = {k: [] for k in (
            "j_template", "j_dirs", "m_template", "m_dirs", "m_posedirs", "m_weights",
            "const_rot", "v_template", "v_dirs", "v_inverse")}
        self.num_betas = num_betas
        self.faces: np.ndarray | None = None
        self._blocks: list[list[tuple[int, int, torch.Tensor, torch.Tensor]]] = []
        has_posedirs = False
        for g in GENDERS:
            m = BodyModel(g, model_dir=model_dir, num_betas=num_betas).smplx
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
            if with_vertices:
                order, inv, groups = _weight_blocks(m.lbs_weights)
                stacks["v_template"].append(m.v_template[order])
                stacks["v_dirs"].append(dirs[order].reshape(v * 3, num_betas))
                stacks["v_inverse"].append(inv)
                self._blocks.append(groups)
                self.faces = np.asarray(m.faces, dtype=np.int64)
            parents = m.parents.clone()
        for k, vals in stacks.items():
            if vals:
                self.register_buffer(k, torch.stack(vals), persistent=False)
        self.register_buffer("parents", parents, persistent=False)
        self.has_posedirs = has_posedirs
        self.with_vertices = with_vertices

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

    def _transforms(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = gender.long()
        full = torch.cat([rot, self.const_rot[g].to(rot.dtype)], 1)  # (B, 55, 3, 3)
        joints = self.rest_joints(betas, gender)
        posed, rel = batch_rigid_transform(full, joints, self.parents, dtype=rot.dtype)
        return full, posed, rel

    # -- public -------------------------------------------------------------------------
    def markers(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                transl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Markers ``(B, 67, 3)`` and joints ``(B, 55, 3)`` (m), differentiable.

        Args:
            rot: ``(B, 22, 3, 3)`` global orientation and 21 body-joint rotations.
            betas: ``(B, S)`` shape coefficients.
            gender: ``(B,)`` integer index into :data:`GENDERS`.
            transl: ``(B, 3)`` smplx translation (m).
        """
        self._check(rot, betas, gender)
        g = gender.long()
        full, posed, rel = self._transforms(rot, betas, gender)
        v = self.m_template[g] + torch.einsum("bs,bkcs->bkc", betas,
                                              self.m_dirs[g][..., :betas.shape[1]])
        if self.has_posedirs:
            eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
            feat = (full[:, 1:] - eye).reshape(rot.shape[0], 1, -1)
            v = v + torch.bmm(feat, self.m_posedirs[g]).reshape(v.shape)
        t = torch.einsum("bkj,bjmn->bkmn", self.m_weights[g], rel)
        out = torch.einsum("bkmn,bkn->bkm", t[..., :3, :3], v) + t[..., :3, 3]
        return out + transl[:, None], posed + transl[:, None]

    @torch.no_grad()
    def vertices(self, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                 transl: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """All vertices ``(B, 10475, 3)`` (m) by linear blend skinning (no gradients).

        Args:
            rot, betas, gender, transl: as :meth:`markers`.
            chunk: bodies per matrix product (bounds the ``(V, 12, chunk)`` intermediate).
        """
        if not self.with_vertices:
            raise RuntimeError("BodyLayer was built with with_vertices=False")
        self._check(rot, betas, gender)
        b = rot.shape[0]
        _, _, rel = self._transforms(rot, betas, gender)
        nv = self.v_template.shape[1]
        out = torch.empty(b, nv, 3, dtype=rot.dtype, device=rot.device)
        s = betas.shape[1]
        for gi in torch.unique(gender).tolist():
            sel_all = torch.nonzero(gender == gi).squeeze(1)
            for c in range(0, sel_all.numel(), chunk):
                sel = sel_all[c:c + chunk]
                n = sel.numel()
                a = rel[sel, :, :3, :].permute(1, 2, 3, 0).reshape(rel.shape[1], 12 * n)
                t = torch.empty(nv, 12 * n, dtype=rot.dtype, device=rot.device)
                for start, stop, used, w in self._blocks[gi]:
                    torch.mm(w, a[used], out=t[start:stop])
                t = t.view(nv, 3, 4, n)  # (V, 3, 4, n), vertices in block order
                v = (self.v_dirs[gi][:, :s] @ betas[sel].T).view(nv, 3, n)
                v = v + self.v_template[gi][:, :, None]  # (V, 3, n) shaped rest vertices
                posed = (t[:, :, 3] + t[:, :, 0] * v[:, 0:1] + t[:, :, 1] * v[:, 1:2]
                         + t[:, :, 2] * v[:, 2:3])  # (V, 3, n)
                posed = posed.permute(2, 0, 1)[:, self.v_inverse[gi]]
                out[sel] = posed + transl[sel, None]
        return out
