"""Linear blend skinning of a few vertices only (markers, subsampled vertices).

smplx evaluates all 10,475 vertices: shape blend shapes, pose correctives and dense skinning.
When only some vertices are needed (the 67 markers of the motion state, a vertex subset for
penetration tests), the joints can be regressed from precomputed ``J_regressor @ template``
and ``J_regressor @ shapedirs`` and only the selected vertices skinned. The result equals
smplx's own output for those vertices (same formulas, same order of operations up to float
rounding); the tests check it against ``smplx.SMPLX.forward``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues

__all__ = ["SparseOutput", "SparseLBS"]


@dataclass
class SparseOutput:
    """Result of :meth:`SparseLBS.forward`.

    Attributes:
        vertices: ``(B, K, 3)`` the selected posed vertices (m, body frame + ``transl``).
        joints: ``(B, 55, 3)`` posed SMPL-X joints (m), as ``smplx``'s ``joints[:, :55]``.
    """

    vertices: torch.Tensor
    joints: torch.Tensor


class SparseLBS(torch.nn.Module):
    """Skin a fixed subset of an ``smplx.SMPLX`` model's vertices.

    Args:
        model: a constructed ``smplx.SMPLX`` (its buffers are read, not copied per call).
        vertex_ids: ``(K,)`` vertex indices to evaluate.
    """

    def __init__(self, model: torch.nn.Module, vertex_ids: np.ndarray) -> None:
        super().__init__()
        ids = torch.as_tensor(np.asarray(vertex_ids, dtype=np.int64))
        shapedirs = torch.cat([model.shapedirs, model.expr_dirs], dim=-1)  # (V, 3, S)
        jreg = model.J_regressor  # (55, V)
        self.register_buffer("j_template", jreg @ model.v_template)
        self.register_buffer("j_dirs", torch.einsum("jv,vcs->jcs", jreg, shapedirs))
        self.register_buffer("v_template", model.v_template[ids])
        self.register_buffer("shapedirs", shapedirs[ids])
        v = model.v_template.shape[0]
        cols = (ids[:, None] * 3 + torch.arange(3)[None]).reshape(-1)
        posedirs = model.posedirs.reshape(-1, v * 3)[:, cols]  # (P, K*3)
        self.has_posedirs = bool(torch.any(posedirs != 0))
        self.register_buffer("posedirs", posedirs)
        self.register_buffer("weights", model.lbs_weights[ids])
        self.register_buffer("parents", model.parents.clone())

    def forward(self, full_pose: torch.Tensor, shape_components: torch.Tensor,
                transl: torch.Tensor) -> SparseOutput:
        """Pose the selected vertices.

        Args:
            full_pose: ``(B, 55 * 3)`` axis-angles (rad), hand PCA already expanded and the
                pose mean already added (as smplx's ``full_pose``).
            shape_components: ``(B, S)`` betas followed by expression coefficients.
            transl: ``(B, 3)`` translation (m).

        Returns:
            :class:`SparseOutput`.
        """
        b = full_pose.shape[0]
        rot = batch_rodrigues(full_pose.reshape(-1, 3)).reshape(b, -1, 3, 3)
        v = self.v_template + torch.einsum("bs,kcs->bkc", shape_components, self.shapedirs)
        joints = self.j_template + torch.einsum("bs,jcs->bjc", shape_components, self.j_dirs)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
            feat = (rot[:, 1:] - eye).reshape(b, -1)
            v = v + (feat @ self.posedirs).reshape(b, -1, 3)
        posed_joints, rel = batch_rigid_transform(rot, joints, self.parents, dtype=rot.dtype)
        t = torch.einsum("kj,bjmn->bkmn", self.weights, rel)
        out = torch.einsum("bkmn,bkn->bkm", t[..., :3, :3], v) + t[..., :3, 3]
        return SparseOutput(vertices=out + transl[:, None], joints=posed_joints + transl[:, None])
