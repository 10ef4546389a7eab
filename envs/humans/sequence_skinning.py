"""Exact all-vertex SMPL-X skinning for sequences of bodies that share a shape.

``smplx.SMPLX.forward`` evaluates every body from scratch: shape blend shapes, pose
correctives ``(B, 486) @ (486, 31425)``, joint regression, a kinematic chain of 54 small
matrix products and dense linear blend skinning ``(B, 10475, 55) @ (B, 55, 16)``. For the
motion prior most of that work is redundant, and :class:`SparseSkinning` leaves it out
without changing the result:

* **shape once per human.** Betas are constant over a rollout, so the shaped rest vertices
  ``v_template + shapedirs @ betas`` are computed once per human, not once per frame.
* **sparse skinning.** A posed vertex is ``v' = sum_j w_vj A_j [v; 1]`` with ``A_j`` the
  top three rows of smplx's relative joint transform (``(3, 4)``). Writing
  ``Phi[v, 4 j + c] = w_vj [v; 1]_c`` (a sparse ``(V, 4 J)`` matrix: 4 entries per
  non-zero weight; SMPL-X bodies have at most 4 non-zero weights per vertex, the procedural
  body 1.6 on average) and ``a[4 j + c, (t, c')] = A_tj[c', c]`` gives all frames ``t`` of a
  human in one sparse x dense product ``transl + Phi @ a -> (V, T, 3)`` (MKL's sparse BLAS),
  copied into the ``(T, V, 3)`` output in runs of one vertex's 3 coordinates; several
  humans share one product through a block-diagonal ``Phi``. Every non-zero weight is kept
  (no top-k truncation), so the vertices equal smplx's up to float32 rounding (the tests
  check ``< 1e-5 m``).
* **pose correctives only where they exist.** Correctives ``(R_j - I) . posedirs`` are
  skipped when the model's posedirs are exactly zero (the embedded procedural body). With a
  licensed model they are applied, split into a constant part (jaw, eyes and hands have fixed
  rotations in the motion prior: computed once per gender) and the 21 body joints
  ``(T, 189) @ (189, 3 V)``; a frame's posed rest vertices then differ, so each frame gets its
  own ``Phi`` (one sparse ``(V, 4 J) @ (4 J, 3)`` product per frame).
* **kinematic chain by tree level.** :class:`KinematicTree` composes the joint transforms
  of all joints at the same depth in one batched product (10 levels below the SMPL-X root
  instead of 54 products; the same products as ``smplx.lbs.batch_rigid_transform``).

Frames: SMPL-X body frame rotated by the global orientation, metres, ``transl`` added after
skinning (as ``smplx``). Output memory is allocated through numpy on the CPU: numpy asks the
kernel for transparent huge pages on large arrays, which cuts the first-touch page faults
of a ``(64, 18, 10475, 3)`` float32 result (145 MB) about three-fold.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["SparseSkinning", "KinematicTree", "NUM_FREE_JOINTS", "empty_output"]

#: Joints whose rotations vary per frame: the pelvis (global orientation) and 21 body joints.
NUM_FREE_JOINTS = 22


def empty_output(shape: Sequence[int], dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """An uninitialised tensor for large results (CPU: numpy-allocated, huge-page friendly).

    Args:
        shape: tensor shape.
        dtype: ``torch.float32`` or ``torch.float64`` (other dtypes use ``torch.empty``).
        device: target device; only CPU tensors go through numpy.
    """
    np_dtypes = {torch.float32: np.float32, torch.float64: np.float64}
    if torch.device(device).type == "cpu" and dtype in np_dtypes:
        return torch.from_numpy(np.empty(tuple(shape), dtype=np_dtypes[dtype]))
    return torch.empty(tuple(shape), dtype=dtype, device=device)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
         size: tuple[int, int]) -> torch.Tensor:
    """A CSR tensor without torch's one-time 'beta' and invariant-check warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


class KinematicTree(torch.nn.Module):
    """Joint transforms of a kinematic tree, one batched product per tree level.

    Args:
        parents: ``(J,)`` parent index of each joint (``parents[0] = -1``; every parent before
            its children, as in SMPL-X).
    """

    def __init__(self, parents: torch.Tensor) -> None:
        super().__init__()
        parents = torch.as_tensor(parents, dtype=torch.long).cpu()
        depth = [0] * parents.numel()
        for j in range(1, parents.numel()):
            p = int(parents[j])
            if not 0 <= p < j:
                raise ValueError(f"parents[{j}] must be in 0..{j - 1}; got {p}")
            depth[j] = depth[p] + 1
        self.register_buffer("parents", parents.clone(), persistent=False)
        self.num_levels = max(depth)
        for d in range(1, self.num_levels + 1):
            idx = torch.tensor([j for j in range(len(depth)) if depth[j] == d])
            self.register_buffer(f"level{d}", idx, persistent=False)
            self.register_buffer(f"level{d}_parents", parents[idx].clone(), persistent=False)

    def forward(self, rot: torch.Tensor, joints: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed joints and relative transforms, as ``smplx.lbs.batch_rigid_transform``.

        Args:
            rot: ``(N, J, 3, 3)`` local joint rotations.
            joints: ``(N, J, 3)`` rest joint positions (m).

        Returns:
            ``posed (N, J, 3)`` (m) and ``rel (N, J, 4, 4)``: each joint's world transform
            with its rest position removed (``rel @ [v; 1]`` moves a rest point ``v``).
        """
        n, j = rot.shape[:2]
        rel_joints = joints.clone()
        rel_joints[:, 1:] -= joints[:, self.parents[1:]]
        local = rot.new_zeros(n, j, 4, 4)
        local[..., :3, :3] = rot
        local[..., :3, 3] = rel_joints
        local[..., 3, 3] = 1.0
        world = torch.empty_like(local)
        world[:, 0] = local[:, 0]
        for d in range(1, self.num_levels + 1):
            idx, par = getattr(self, f"level{d}"), getattr(self, f"level{d}_parents")
            world.index_copy_(1, idx, torch.matmul(world.index_select(1, par),
                                                   local.index_select(1, idx)))
        posed = world[..., :3, 3].clone()
        rel = world.clone()
        rel[..., :3, 3] -= (world[..., :3, :3] @ joints[..., None])[..., 0]
        return posed, rel


class _GenderSkin(torch.nn.Module):
    """Buffers of one gender's model (see :class:`SparseSkinning`).

    ``Phi``'s CSR structure comes from the non-zero skinning weights (``nnz`` of them,
    ``max_weights`` at most per vertex); its values depend on the human's betas.
    """

    def __init__(self, model: torch.nn.Module, num_betas: int, const_rot: torch.Tensor) -> None:
        super().__init__()
        weights = model.lbs_weights.detach()  # (V, J)
        v, j = weights.shape
        rows, cols = torch.nonzero(weights, as_tuple=True)  # row-major order
        counts = torch.bincount(rows, minlength=v)
        crow = torch.zeros(v + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(counts, 0)
        self.num_vertices = v
        self.num_joints = j
        self.nnz = rows.numel()
        self.max_weights = int(counts.max())
        # Phi: 4 columns (homogeneous rest coordinates) per non-zero weight
        # int32 indices: MKL's sparse BLAS (LP64) would otherwise convert them on every call
        self.register_buffer("crow", (crow * 4).to(torch.int32), persistent=False)
        self.register_buffer("col", (cols[:, None] * 4 + torch.arange(4)).reshape(-1)
                             .to(torch.int32), persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("w", weights[rows, cols].clone(), persistent=False)
        self.register_buffer("v_template", model.v_template.detach().clone(), persistent=False)
        dirs = model.shapedirs.detach()[..., :num_betas]  # (V, 3, S)
        self.register_buffer("shapedirs", dirs.reshape(v * 3, -1).clone(), persistent=False)
        # the same per non-zero weight (row of Phi), shape axis first: (S, nnz * 3)
        self.register_buffer("nz_template", self.v_template[rows].reshape(-1).clone(),
                             persistent=False)
        self.register_buffer("nz_shapedirs", dirs[rows].reshape(-1, dirs.shape[-1]).T
                             .contiguous(), persistent=False)
        posedirs = model.posedirs.detach()  # (9 (J - 1), 3 V)
        self.has_posedirs = bool(torch.any(posedirs != 0))
        nb = 9 * (NUM_FREE_JOINTS - 1)
        if self.has_posedirs:
            eye = torch.eye(3, dtype=const_rot.dtype)
            const_feat = (const_rot - eye).reshape(-1).to(posedirs.dtype)
            self.register_buffer("posedirs_body", posedirs[:nb].clone(), persistent=False)
            self.register_buffer("pose_offset_const", const_feat @ posedirs[nb:],
                                 persistent=False)
        self._blocks = (self.crow[:1], self.col[:0])  # see block_structure

    def phi_values(self, betas: torch.Tensor) -> torch.Tensor:
        """``Phi`` values ``(H, nnz, 4)``: ``w * [v_template + shapedirs @ betas; 1]``."""
        s = betas.shape[1]
        shaped = torch.addmm(self.nz_template, betas, self.nz_shapedirs[:s])  # (H, nnz * 3)
        vals = betas.new_empty(betas.shape[0], self.nnz, 4)
        torch.mul(shaped.view(-1, self.nnz, 3), self.w[:, None], out=vals[..., :3])
        vals[..., 3] = self.w
        return vals

    def block_structure(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """CSR ``(crow, col)`` of a block-diagonal ``Phi`` of ``k`` humans.

        The largest structure built so far is cached; a smaller one is its prefix
        (``crow[:k V + 1]``, ``col[:4 k nnz]``).
        """
        v, nz4 = self.num_vertices, self.col.numel()
        crow, col = self._blocks
        if crow.numel() < k * v + 1 or crow.device != self.crow.device:
            i = torch.arange(k, dtype=self.crow.dtype, device=self.crow.device)[:, None]
            crow = torch.cat([self.crow[:1], (self.crow[None, 1:] + i * nz4).reshape(-1)])
            col = (self.col[None] + i * (4 * self.num_joints)).reshape(-1)
            self._blocks = (crow, col)
        return crow[:k * v + 1], col[:k * nz4]


class SparseSkinning(torch.nn.Module):
    """All 10,475 SMPL-X vertices for ``(H, T)`` bodies, exactly as ``smplx`` (see module doc).

    The rotations of joints ``22..54`` (jaw, eyes, hands) are the constants ``const_rot``;
    the 22 free rotations and the relative joint transforms come from the caller
    (:class:`~.body_layer.BodyLayer` computes them with :class:`KinematicTree`).

    Args:
        models: one ``smplx.SMPLX`` per gender index (their buffers are read once).
        num_betas: shape coefficients used.
        const_rot: ``(G, J - 22, 3, 3)`` fixed rotations of joints ``22..`` per gender, as in
            smplx's ``full_pose`` (relaxed hand mean pose for ``flat_hand_mean=False``).
        chunk: bodies (humans x frames) per sparse product; bounds the ``(chunk, V, 3)``
            float32 buffer (8 MB at 64: three humans of an 18-frame primitive).
    """

    def __init__(self, models: Sequence[torch.nn.Module], num_betas: int,
                 const_rot: torch.Tensor, chunk: int = 64) -> None:
        super().__init__()
        if len(models) != const_rot.shape[0]:
            raise ValueError(f"const_rot must have one entry per model ({len(models)}); got "
                             f"shape {tuple(const_rot.shape)}")
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive int; got {chunk!r}")
        self.genders = torch.nn.ModuleList(
            _GenderSkin(m, num_betas, const_rot[i]) for i, m in enumerate(models))
        self.num_vertices = self.genders[0].num_vertices
        self.num_betas = num_betas
        self.chunk = chunk

    @property
    def has_posedirs(self) -> bool:
        """True when some gender's model has non-zero pose correctives."""
        return any(g.has_posedirs for g in self.genders)

    def shaped(self, betas: torch.Tensor, gender: int) -> torch.Tensor:
        """Shaped rest vertices ``(V, 3)`` (m, body frame) of one human, ``betas (S,)``."""
        g = self.genders[gender]
        s = betas.shape[0]
        return g.v_template + (g.shapedirs[:, :s] @ betas).view(-1, 3)

    @torch.no_grad()
    def forward(self, rel: torch.Tensor, rot: torch.Tensor, betas: torch.Tensor,
                gender: torch.Tensor, transl: torch.Tensor, out: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Pose ``H`` humans over ``T`` frames (no gradients).

        Args:
            rel: ``(H, T, J, 4, 4)`` relative joint transforms (smplx's ``A``: world transform
                of each joint with its rest position removed).
            rot: ``(H, T, 22, 3, 3)`` free rotations (pelvis + 21 body joints; used for the
                pose correctives only).
            betas: ``(H, S)`` shape coefficients, one set per human.
            gender: ``(H,)`` gender index (into ``models``).
            transl: ``(H, T, 3)`` translation (m).
            out: optional contiguous ``(H, T, V, 3)`` destination.

        Returns:
            ``(H, T, V, 3)`` vertices (m): ``sum_j w_vj (A_tj [v_posed; 1]) + transl[t]``.
        """
        h, t = rel.shape[:2]
        v = self.num_vertices
        if out is None:
            out = empty_output((h, t, v, 3), rel.dtype, rel.device)
        elif out.shape != (h, t, v, 3) or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous ({h}, {t}, {v}, 3) tensor; got "
                             f"{tuple(out.shape)}")
        if rel.shape[3:] != (4, 4) or rel.shape[2] != self.genders[0].num_joints:
            raise ValueError(f"rel must have shape (H, T, {self.genders[0].num_joints}, 4, 4); "
                             f"got {tuple(rel.shape)}")
        if h == 0 or t == 0:
            return out
        for gi in torch.unique(gender).tolist():
            sel = torch.nonzero(gender == gi).squeeze(1)
            if self.genders[gi].has_posedirs:
                for i in sel.tolist():
                    self._skin_posed(out[i], rel[i], rot[i], betas[i], gi, transl[i])
            else:
                self._skin_shared_rest(out, rel, betas, gi, transl, sel)
        return out

    def _skin_shared_rest(self, out: torch.Tensor, rel: torch.Tensor, betas: torch.Tensor,
                         gender: int, transl: torch.Tensor, sel: torch.Tensor) -> None:
        """No correctives: one rest mesh per human for all its frames, ``k`` humans per
        block-diagonal product, ``frames`` frames per product."""
        g = self.genders[gender]
        t, v, j = rel.shape[1], g.num_vertices, g.num_joints
        frames = min(t, self.chunk)  # frames per product
        k_max = min(sel.numel(), max(1, self.chunk // frames))  # humans per product
        vals = g.phi_values(betas[sel])  # (Hg, nnz, 4)
        buf = rel.new_empty(k_max * v * 3 * frames)
        for i0 in range(0, sel.numel(), k_max):
            hs = sel[i0:i0 + k_max]
            k = hs.numel()
            crow, col = g.block_structure(k)
            phi = _csr(crow, col, vals[i0:i0 + k].view(-1), (k * v, k * 4 * j))
            run = int(hs[-1]) - int(hs[0]) + 1 == k
            part = rel[int(hs[0]):int(hs[0]) + k] if run else rel[hs]
            tr = transl[int(hs[0]):int(hs[0]) + k] if run else transl[hs]
            for t0 in range(0, t, frames):
                m = min(t, t0 + frames) - t0
                # a[(h, j, c), (t, c')] = A_htj[c', c]: each row of the product holds one
                # vertex's (t, xyz) for m frames, so the (T, V, 3) output is a copy of
                # 12-byte runs, not an element-wise transpose
                a = part[:, t0:t0 + m, :, :3, :].permute(0, 2, 4, 1, 3).reshape(k * 4 * j, m * 3)
                r = buf[:k * v * m * 3].view(k, v, m, 3)
                # r = transl + Phi @ a: smplx adds transl after skinning (and no zero fill)
                r.copy_(tr[:, None, t0:t0 + m])
                r.view(k * v, m * 3).addmm_(phi, a)
                if run:
                    out[int(hs[0]):int(hs[0]) + k, t0:t0 + m].copy_(r.transpose(1, 2))
                else:
                    for i, hi in enumerate(hs.tolist()):
                        out[hi, t0:t0 + m].copy_(r[i].transpose(0, 1))

    def _skin_posed(self, out: torch.Tensor, rel: torch.Tensor, rot: torch.Tensor,
                    betas: torch.Tensor, gender: int, transl: torch.Tensor) -> None:
        """With correctives: ``out (T, V, 3)`` of one human, one ``Phi`` per frame."""
        g = self.genders[gender]
        n, v, j = rel.shape[0], g.num_vertices, g.num_joints
        shaped = self.shaped(betas, gender)
        nb = 9 * (NUM_FREE_JOINTS - 1)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        for t0 in range(0, n, self.chunk):
            t1 = min(n, t0 + self.chunk)
            m = t1 - t0
            feat = (rot[t0:t1, 1:] - eye).reshape(m, nb)
            posed = (feat @ g.posedirs_body + g.pose_offset_const).view(m, v, 3)
            posed += shaped  # (m, V, 3) posed rest vertices, one set per frame
            vals = rel.new_empty(m, g.nnz, 4)
            torch.mul(posed.index_select(1, g.rows), g.w[:, None], out=vals[..., :3])
            vals[..., 3] = g.w
            a = rel[t0:t1, :, :3, :].transpose(2, 3).reshape(m, 4 * j, 3)
            for i in range(m):
                phi = _csr(g.crow, g.col, vals[i].view(-1), (v, 4 * j))
                torch.mm(phi, a[i], out=out[t0 + i])
            out[t0:t1] += transl[t0:t1, None, :]
