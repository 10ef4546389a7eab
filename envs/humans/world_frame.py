"""From SMPL-X's y-up body frame to egosim's z-up world.

SMPL-X (canonical body frame): ``+x`` the body's left, ``+y`` up, ``+z`` forward.
World (ARCHITECTURE.md, "Conventions"): metres, ``+z`` up, floor at ``z = 0``.

:data:`Y_UP_TO_Z_UP` maps body coordinates to a z-up frame in which the body faces ``+x``
and its left is ``+y`` (a proper rotation: a cyclic permutation of the axes). A body with
heading ``yaw`` (rad, counter-clockwise about ``+z`` from ``+x``) then faces
``(cos yaw, sin yaw, 0)``::

    world = R_z(yaw) @ Y_UP_TO_Z_UP @ p_body + position
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["Y_UP_TO_Z_UP", "yaw_rotation", "body_to_world", "body_rotation"]

#: ``(3, 3)`` rotation: body (x left, y up, z forward) -> z-up frame facing +x, left +y.
Y_UP_TO_Z_UP: np.ndarray = np.array([[0.0, 0.0, 1.0],
                                     [1.0, 0.0, 0.0],
                                     [0.0, 1.0, 0.0]])


def yaw_rotation(yaw: Any) -> np.ndarray:
    """Rotation(s) about world ``+z``: scalar -> ``(3, 3)``, ``(B,)`` -> ``(B, 3, 3)``."""
    y = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(y), np.sin(y)
    z, o = np.zeros_like(y), np.ones_like(y)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], -2)


def body_rotation(yaw: Any) -> np.ndarray:
    """Body-to-world rotation ``R_z(yaw) @ Y_UP_TO_Z_UP``: ``(3, 3)`` or ``(B, 3, 3)``."""
    return yaw_rotation(yaw) @ Y_UP_TO_Z_UP


def body_to_world(points: Any, yaw: Any = 0.0, position: Any = (0.0, 0.0, 0.0),
                  on_floor: bool = False) -> Any:
    """Place body-frame points in the z-up world.

    Args:
        points: ``(N, 3)`` or ``(B, N, 3)`` points in the SMPL-X body frame (m), numpy or
            torch (e.g. smplx's ``vertices`` or ``joints``).
        yaw: heading (rad): scalar, or ``(B,)`` for batched points; the body faces
            ``(cos yaw, sin yaw, 0)``.
        position: world position (m) of the body frame's origin, ``(3,)`` or ``(B, 3)``.
        on_floor: if True, additionally shift each body along ``z`` so that its lowest point
            is at ``position[..., 2]`` (stand it on a floor at that height).

    Returns:
        World points with the input's shape and type (torch keeps device and dtype).
    """
    is_torch = isinstance(points, torch.Tensor)
    if points.shape[-1] != 3 or points.ndim not in (2, 3):
        raise ValueError(f"points must have shape (N, 3) or (B, N, 3); got {tuple(points.shape)}")
    rot = body_rotation(yaw)
    pos = np.asarray(position, dtype=np.float64)
    batched = points.ndim == 3
    if not batched and (rot.ndim != 2 or pos.shape != (3,)):
        raise ValueError("unbatched points need a scalar yaw and a (3,) position")
    if batched:
        b = points.shape[0]
        rot = np.broadcast_to(rot, (b, 3, 3))
        pos = np.broadcast_to(pos, (b, 3))
    if is_torch:
        r = torch.tensor(np.array(rot), dtype=points.dtype, device=points.device)
        t = torch.tensor(np.array(pos), dtype=points.dtype, device=points.device)
        w = points @ r.transpose(-1, -2) + t.unsqueeze(-2)
        if on_floor:
            w = w.clone()
            w[..., 2] += (t[..., 2] - w[..., 2].amin(-1)).unsqueeze(-1)
        return w
    p = np.asarray(points, dtype=np.float64)
    w = p @ np.swapaxes(rot, -1, -2) + pos[..., None, :]
    if on_floor:
        w[..., 2] += (pos[..., 2] - w[..., 2].min(-1))[..., None]
    return w
