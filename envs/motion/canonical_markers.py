"""Canonical frames computed from markers alone (for re-canonicalising rollouts).

EgoGen canonicalises every primitive: origin at the first-frame pelvis, ``x`` from the left
to the right hip flattened onto the floor, ``z`` up, ``y = z x x`` (forward). The data side
computes it from SMPL-X joints; a rollout only has markers. :class:`MarkerJoints` is a fixed
affine combination of the 67 markers (weights summing to 1, so it commutes with rotations
and translations) fitted by least squares to the pelvis and hip joints of training bodies.

Frame convention: ``world = canonical @ rot.T + origin`` (``rot`` canonical -> world,
columns are the canonical axes in world coordinates).
"""

from __future__ import annotations

import torch

__all__ = ["MarkerJoints", "frame_from_joints", "to_canonical", "to_world"]


class MarkerJoints(torch.nn.Module):
    """Pelvis, left hip and right hip as affine combinations of markers.

    Args:
        weights: ``(3, 67)`` rows summing to 1 (pelvis, left hip, right hip).
    """

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        if weights.ndim != 2 or weights.shape[0] != 3:
            raise ValueError(f"weights must have shape (3, K); got {tuple(weights.shape)}")
        self.register_buffer("weights", weights.float().clone())

    @classmethod
    def fit(cls, markers: torch.Tensor, joints: torch.Tensor, ridge: float = 1e-4
            ) -> MarkerJoints:
        """Least-squares fit (ridge-regularised, affine) of joints from markers.

        Args:
            markers: ``(N, 67, 3)`` markers (m), any frame.
            joints: ``(N, 3, 3)`` pelvis, left hip, right hip in the same frame (m).
            ridge: Tikhonov weight on the centred weights.
        """
        m = markers.double()
        j = joints.double()
        mc = m - m.mean(1, keepdim=True)  # (N, K, 3)
        jc = j - m.mean(1, keepdim=True)  # (N, 3, 3)
        a = mc.permute(0, 2, 1).reshape(-1, m.shape[1])  # (N*3, K)
        b = jc.permute(0, 2, 1).reshape(-1, 3)  # (N*3, 3)
        k = m.shape[1]
        gram = a.T @ a + ridge * a.shape[0] * torch.eye(k, dtype=a.dtype)
        w = torch.linalg.solve(gram, a.T @ b).T  # (3, K)
        w = w + (1.0 - w.sum(1, keepdim=True)) / k
        return cls(w.float())

    def forward(self, markers: torch.Tensor) -> torch.Tensor:
        """``(..., 67, 3)`` markers -> ``(..., 3, 3)`` pelvis, left hip, right hip (m)."""
        return torch.einsum("jk,...kc->...jc", self.weights, markers)

    def frame(self, markers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Canonical frame ``(origin (B, 3), rot (B, 3, 3))`` of markers ``(B, 67, 3)``."""
        return frame_from_joints(self(markers))


def frame_from_joints(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, 3)`` pelvis/left hip/right hip (z-up) -> ``origin (B, 3)``, ``rot (B, 3, 3)``."""
    x = joints[:, 2] - joints[:, 1]
    x = torch.stack([x[:, 0], x[:, 1], torch.zeros_like(x[:, 0])], -1)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    z = torch.zeros_like(x)
    z[:, 2] = 1.0
    y = torch.cross(z, x, dim=-1)
    return joints[:, 0], torch.stack([x, y, z], -1)


def to_canonical(points: torch.Tensor, origin: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """World points ``(B, ..., 3)`` -> canonical, for ``origin (B, 3)``, ``rot (B, 3, 3)``."""
    shape = points.shape
    p = points.reshape(shape[0], -1, 3) - origin[:, None]
    return (p @ rot).reshape(shape)


def to_world(points: torch.Tensor, origin: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Canonical points ``(B, ..., 3)`` -> world (inverse of :func:`to_canonical`)."""
    shape = points.shape
    p = points.reshape(shape[0], -1, 3) @ rot.transpose(1, 2) + origin[:, None]
    return p.reshape(shape)
