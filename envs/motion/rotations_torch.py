"""Rotation conversions used by the motion model (torch, batched, differentiable).

Conventions: rotation matrices act on column vectors (``p' = R @ p``); axis-angle vectors
are ``angle * unit_axis`` in radians; the 6D representation (Zhou et al., CVPR 2019) is the
first two *columns* of the matrix, stored as ``(..., 6) = [c0 (3), c1 (3)]``.
"""

from __future__ import annotations

import torch

__all__ = ["axis_angle_to_matrix", "matrix_to_axis_angle", "rot6d_to_matrix", "matrix_to_rot6d"]


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` axis-angle (rad) -> ``(..., 3, 3)`` rotation (Rodrigues, safe at 0)."""
    angle = aa.norm(dim=-1, keepdim=True)
    small = angle < 1e-8
    safe = torch.where(small, torch.ones_like(angle), angle)
    axis = aa / safe
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    rot = eye + s * k + (1.0 - c) * (k @ k)
    # first-order expansion near zero keeps gradients finite
    kk = torch.stack([zero, -aa[..., 2], aa[..., 1], aa[..., 2], zero, -aa[..., 0],
                      -aa[..., 1], aa[..., 0], zero], -1).reshape_as(k)
    return torch.where(small[..., None], eye + kk, rot)


def matrix_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation -> ``(..., 3)`` axis-angle (rad, angle in ``[0, pi]``).

    Goes through a unit quaternion chosen by the largest-diagonal rule, so it is stable
    near ``pi`` as well as near ``0``.
    """
    m = rot
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cand = torch.stack([
        torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                     m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1],
                     1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                     m[..., 2, 1] + m[..., 1, 2]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 2, 1] + m[..., 1, 2], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]],
                    -1),
    ], -2)  # (..., 4, 4): row i is proportional to the quaternion (w, x, y, z)
    diag = torch.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, xyz = q[..., 0], q[..., 1:]
    sin_half = xyz.norm(dim=-1)
    angle = 2.0 * torch.atan2(sin_half, w)
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp_min(1e-12),
                        2.0 / w.clamp_min(1e-12))
    return xyz * scale[..., None]


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` two columns -> ``(..., 3, 3)`` rotation by Gram-Schmidt."""
    a, b = d6[..., :3], d6[..., 3:]
    c0 = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (c0 * b).sum(-1, keepdim=True) * c0
    c1 = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    c2 = torch.cross(c0, c1, dim=-1)
    return torch.stack([c0, c1, c2], -1)


def matrix_to_rot6d(rot: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation -> ``(..., 6)`` (first two columns)."""
    return torch.cat([rot[..., :, 0], rot[..., :, 1]], -1)
