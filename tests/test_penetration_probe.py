"""The penetration probe poses its vertex subsample exactly like the full SMPL-X body."""

from __future__ import annotations

import numpy as np
import torch

from egosim.envs import resources
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix


def test_probe_points_equal_full_body_vertices():
    probe = resources.get_probe(None, 64)
    g = torch.tensor([0, 1, 2])
    b, t = 3, 4
    gen = torch.Generator().manual_seed(0)
    go = torch.randn(b, t, 3, generator=gen) * 0.3
    bp = torch.randn(b, t, 63, generator=gen) * 0.3
    tr = torch.randn(b, t, 3, generator=gen)
    be = torch.randn(b, probe.body.num_betas, generator=gen)
    pts = probe.points(go, bp, tr, be, g)  # (B, T, K, 3)
    aa = torch.cat([go[:, :, None], bp.reshape(b, t, 21, 3)], 2)
    rot = axis_angle_to_matrix(aa.reshape(b * t, 22, 3)).reshape(b, t, 22, 3, 3)
    full = probe.body.vertices_sequence(rot, be, g, tr)  # (B, T, 10475, 3)
    ref = full[:, :, torch.as_tensor(probe.vertex_ids)].numpy()
    np.testing.assert_allclose(pts, ref, atol=1e-5)

