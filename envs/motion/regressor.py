"""Markers -> SMPL-X regressor (EgoGen's "MoSh" stand-in) with iterative refinement.

Input: markers ``(N, 67, 3)`` (m, any z-up frame), ``betas (N, S)`` and ``gender (N,)`` (index
into ``("neutral", "male", "female")``). Each body is first moved into a *local* frame built
from its four waist markers (origin at their centroid, ``x`` from the left to the right waist
markers flattened, ``z`` up), so the network does not have to learn yaw or position.

A ResNet-style MLP (width 128, 10 residual blocks) is applied ``iterations = 3`` times with
shared weights. Its input at each iteration is ``[local markers (201), betas, gender one-hot
(3), current parameters (135), marker error (201)]`` where the parameters are translation (3),
global orientation and 21 body joints in the 6D rotation representation (22 x 6) and the error
is ``markers - re-projected markers`` through :class:`~.body_layer.BodyLayer` (differentiable);
its output is an additive update of the parameters. Hands stay at smplx's relaxed mean pose
(hand PCA width 0: the embedded motion capture has no finger motion).

Output parameters are returned in the *input* frame as smplx expects them (axis-angle
``global_orient (N, 3)``, ``body_pose (N, 63)``, ``transl (N, 3)``), with the re-projected
markers and joints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from egosim.envs.humans.marker_set import MARKER_NAMES
from egosim.envs.motion.rotations_torch import (
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)

from .body_layer import NUM_BODY_ROT, BodyLayer

__all__ = ["RegressorConfig", "MarkerRegressor", "RegressorOutput", "regressor_loss",
           "waist_frame", "params_to_frame", "sample_bodies", "pose_bodies"]

_WAIST = [MARKER_NAMES.index(n) for n in ("LFWT", "LBWT", "RFWT", "RBWT")]
#: Body frame (x left, y up, z forward) -> local frame (x right, y forward, z up).
_BODY_TO_LOCAL = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class RegressorConfig:
    """Sizes of :class:`MarkerRegressor` (EgoGen's values by default)."""

    num_markers: int = 67
    num_betas: int = 10
    width: int = 128
    blocks: int = 10
    iterations: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RegressorOutput:
    """Regressed bodies (``N`` = batch); frames as the input markers unless noted.

    Attributes:
        global_orient: ``(N, 3)`` axis-angle (rad).
        body_pose: ``(N, 63)`` axis-angles of the 21 body joints (rad).
        transl: ``(N, 3)`` smplx translation (m).
        rot: ``(N, 22, 3, 3)`` rotation matrices (global orientation first).
        markers: ``(N, 67, 3)`` re-projected markers (m).
        joints: ``(N, 55, 3)`` posed joints (m).
        local_markers: per iteration, ``(N, 67, 3)`` re-projected markers in the local frame.
        local_target: ``(N, 67, 3)`` the input markers in the local frame.
        local_rot: ``(N, 22, 3, 3)`` and ``local_transl (N, 3)``: final local-frame parameters.
        frame_origin: ``(N, 3)``, ``frame_rot (N, 3, 3)``: local -> input frame.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    transl: torch.Tensor
    rot: torch.Tensor
    markers: torch.Tensor
    joints: torch.Tensor
    local_markers: list[torch.Tensor]
    local_target: torch.Tensor
    local_rot: torch.Tensor
    local_transl: torch.Tensor
    frame_origin: torch.Tensor
    frame_rot: torch.Tensor


def waist_frame(markers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Local frame of ``(N, 67, 3)`` markers: ``origin (N, 3)``, ``rot (N, 3, 3)`` local->input."""
    w = markers[:, _WAIST]
    origin = w.mean(1)
    x = 0.5 * (w[:, 2] + w[:, 3] - w[:, 0] - w[:, 1])
    x = torch.stack([x[:, 0], x[:, 1], torch.zeros_like(x[:, 0])], -1)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    z = torch.zeros_like(x)
    z[:, 2] = 1.0
    return origin, torch.stack([x, torch.cross(z, x, dim=-1), z], -1)


def params_to_frame(rot: torch.Tensor, transl: torch.Tensor, pelvis_rest: torch.Tensor,
                    frame_rot: torch.Tensor, frame_origin: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-express smplx parameters after a rigid change of frame ``p' = R p + o``.

    smplx rotates about the rest pelvis ``J0`` (``pelvis_rest (N, 3)``), so the global rotation
    becomes ``R @ G`` and the translation ``R (J0 + t) + o - J0``.

    Returns ``(rot' (N, 22, 3, 3), transl' (N, 3))``.
    """
    glob = frame_rot @ rot[:, 0]
    new_rot = torch.cat([glob[:, None], rot[:, 1:]], 1)
    new_t = ((pelvis_rest + transl)[:, None] @ frame_rot.transpose(1, 2))[:, 0]
    return new_rot, new_t + frame_origin - pelvis_rest


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, width))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.net(x))


class MarkerRegressor(nn.Module):
    """Iterative markers -> SMPL-X regressor (see the module docstring).

    Args:
        config: sizes.
        body: the differentiable body used for re-projection (built on first use if None;
            its buffers are not part of the state dict).
    """

    def __init__(self, config: RegressorConfig | None = None, body: BodyLayer | None = None
                 ) -> None:
        super().__init__()
        self.config = c = config or RegressorConfig()
        self.num_params = 3 + 6 * NUM_BODY_ROT
        d_in = 2 * 3 * c.num_markers + c.num_betas + 3 + self.num_params
        self.inp = nn.Linear(d_in, c.width)
        self.blocks = nn.Sequential(*[_Block(c.width) for _ in range(c.blocks)])
        self.out = nn.Linear(c.width, self.num_params)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self._body = [body]  # a list keeps it out of the module tree and the state dict

    @property
    def body(self) -> BodyLayer:
        """The :class:`BodyLayer` used for re-projection."""
        if self._body[0] is None:
            self._body[0] = BodyLayer()
        return self._body[0]

    def _initial(self, n: int, pelvis_rest: torch.Tensor) -> torch.Tensor:
        rot = torch.eye(3).expand(n, NUM_BODY_ROT, 3, 3).clone()
        rot[:, 0] = _BODY_TO_LOCAL
        return torch.cat([-pelvis_rest, matrix_to_rot6d(rot).reshape(n, -1)], -1)

    def _split(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rot = rot6d_to_matrix(p[:, 3:].reshape(-1, NUM_BODY_ROT, 6))
        return rot, p[:, :3]

    def forward(self, markers: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor
                ) -> RegressorOutput:
        """Regress bodies; see :class:`RegressorOutput` (all tensors batch-first)."""
        c = self.config
        n = markers.shape[0]
        if markers.shape[1:] != (c.num_markers, 3):
            raise ValueError(f"markers must have shape (N, {c.num_markers}, 3); got "
                             f"{tuple(markers.shape)}")
        if betas.shape != (n, c.num_betas):
            raise ValueError(f"betas must have shape ({n}, {c.num_betas}); got "
                             f"{tuple(betas.shape)}")
        gender = gender.long()
        origin, frot = waist_frame(markers)
        local = (markers - origin[:, None]) @ frot
        rest = self.body.rest(betas, gender)  # shapes are fixed over the iterations
        pelvis_rest = rest[1][:, 0]
        onehot = torch.nn.functional.one_hot(gender, 3).to(markers.dtype)
        params = self._initial(n, pelvis_rest)
        flat = local.reshape(n, -1)
        history = []
        for _ in range(c.iterations):
            rot, transl = self._split(params)
            proj, _ = self.body.markers(rot, betas, gender, transl, rest)
            history.append(proj)
            err = (local - proj).reshape(n, -1)
            h = self.inp(torch.cat([flat, betas, onehot, params, err], -1))
            params = params + self.out(self.blocks(h))
        rot, transl = self._split(params)
        proj, joints = self.body.markers(rot, betas, gender, transl, rest)
        history.append(proj)
        wrot, wt = params_to_frame(rot, transl, pelvis_rest, frot, origin)
        aa = matrix_to_axis_angle(wrot)
        return RegressorOutput(
            global_orient=aa[:, 0], body_pose=aa[:, 1:].reshape(n, -1), transl=wt, rot=wrot,
            markers=proj @ frot.transpose(1, 2) + origin[:, None],
            joints=joints @ frot.transpose(1, 2) + origin[:, None],
            local_markers=history, local_target=local, local_rot=rot, local_transl=transl,
            frame_origin=origin, frame_rot=frot)


def regressor_loss(out: RegressorOutput, true_rot: torch.Tensor, true_transl: torch.Tensor,
                   pelvis_rest: torch.Tensor, clean_markers: torch.Tensor | None = None,
                   param_weight: float = 0.1) -> dict[str, torch.Tensor]:
    """Training loss: re-projected marker error (every iteration) + parameter error.

    Args:
        out: the regressor's output.
        true_rot: ``(N, 22, 3, 3)`` ground-truth rotations in the input frame.
        true_transl: ``(N, 3)`` ground-truth smplx translation in the input frame (m).
        pelvis_rest: ``(N, 3)`` rest pelvis of each body (m).
        clean_markers: ``(N, 67, 3)`` noise-free markers in the input frame when the input
            was noised (the re-projection is compared with these); default the input.
        param_weight: weight of the parameter term.

    Returns ``{"total", "marker", "marker_final", "param"}``: ``marker`` is the mean over
    iterations ``k = 1..K`` of ``k/K`` times the mean per-marker Euclidean distance (m),
    ``marker_final`` the last one alone, ``param`` the mean absolute difference of rotation
    matrices plus that of the translations (m).
    """
    target = out.local_target
    if clean_markers is not None:
        target = (clean_markers - out.frame_origin[:, None]) @ out.frame_rot
    k = len(out.local_markers) - 1
    dists = [(p - target).norm(dim=-1).mean() for p in out.local_markers[1:]]
    marker = sum((i + 1) / k * d for i, d in enumerate(dists)) / sum(
        (i + 1) / k for i in range(k))
    # ground truth in the local frame: inverse of the local -> input change of frame
    inv = out.frame_rot.transpose(1, 2)
    lrot, lt = params_to_frame(true_rot, true_transl, pelvis_rest, inv,
                               -(out.frame_origin[:, None] @ out.frame_rot)[:, 0])
    param = (out.local_rot - lrot).abs().mean() + (out.local_transl - lt).abs().mean()
    return {"total": marker + param_weight * param, "marker": marker,
            "marker_final": dists[-1], "param": param}


def sample_bodies(poses: np.ndarray, rng: np.random.Generator, batch: int,
                  pose_noise: float, shape_std: float, betas_bank: np.ndarray | None = None,
                  genders: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Random training bodies for the regressor (numpy, float32).

    Args:
        poses: ``(P, 22, 3)`` axis-angle pose bank (global orientation first, z-up frame).
        rng: numpy generator (the only randomness used).
        batch: number of bodies.
        pose_noise: std of Gaussian noise added to the body-joint axis-angles (rad) on half of
            the samples (perturbations of the motion data).
        shape_std: std of random betas (``N(0, shape_std^2)``); used when ``betas_bank`` is
            None or on half the samples otherwise.
        betas_bank: ``(P, S)`` betas that go with ``poses`` (optional).
        genders: ``(P,)`` genders that go with ``poses``; default random.

    Returns ``{"pose" (B, 22, 3), "betas" (B, S), "gender" (B,) int64, "transl" (B, 3)}``:
    a random yaw about z and a random horizontal offset are applied to the global orientation.
    """
    idx = rng.integers(0, poses.shape[0], batch)
    pose = poses[idx].astype(np.float64).copy()
    noisy = rng.random(batch) < 0.5
    pose[noisy, 1:] += rng.normal(0.0, pose_noise, (int(noisy.sum()), NUM_BODY_ROT - 1, 3))
    s = 10 if betas_bank is None else betas_bank.shape[1]
    betas = rng.normal(0.0, shape_std, (batch, s))
    if betas_bank is not None:
        keep = rng.random(batch) < 0.5
        betas[keep] = betas_bank[idx[keep]]
    gender = rng.integers(0, 3, batch) if genders is None else genders[idx].astype(np.int64)
    yaw = rng.uniform(-np.pi, np.pi, batch)
    transl = np.concatenate([rng.uniform(-1.0, 1.0, (batch, 2)), np.zeros((batch, 1))], 1)
    return {"pose": pose.astype(np.float32), "betas": betas.astype(np.float32),
            "gender": gender.astype(np.int64), "yaw": yaw.astype(np.float32),
            "transl": transl.astype(np.float32)}


def pose_bodies(body: BodyLayer, sample: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Ground truth for a :func:`sample_bodies` batch: rotations, translation and markers.

    The yaw and offset are applied as a rigid change of frame (about world ``z`` through the
    origin, then the offset), so the bodies stay valid smplx parameter sets.

    Returns torch tensors ``rot (B, 22, 3, 3)``, ``transl (B, 3)``, ``markers (B, 67, 3)``,
    ``pelvis_rest (B, 3)``, ``betas``, ``gender``.
    """
    from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

    pose = torch.from_numpy(sample["pose"])
    betas = torch.from_numpy(sample["betas"])
    gender = torch.from_numpy(sample["gender"])
    yaw = torch.from_numpy(sample["yaw"])
    c, s = torch.cos(yaw), torch.sin(yaw)
    o, z = torch.ones_like(c), torch.zeros_like(c)
    rz = torch.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(-1, 3, 3)
    rot0 = axis_angle_to_matrix(pose)
    pelvis_rest = body.rest_joints(betas, gender)[:, 0]
    zero = torch.zeros_like(pelvis_rest)
    rot, transl = params_to_frame(rot0, zero, pelvis_rest, rz, torch.from_numpy(sample["transl"]))
    with torch.no_grad():
        markers, _ = body.markers(rot, betas, gender, transl)
    return {"rot": rot, "transl": transl, "markers": markers, "pelvis_rest": pelvis_rest,
            "betas": betas, "gender": gender}
