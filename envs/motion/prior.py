"""``MotionPrior``: the learned transition model (C-VAE + markers -> SMPL-X regressor).

One transition (:meth:`MotionPrior.step`) takes the last two frames of 67 markers of each
human (world frame: metres, z up, floor at z = 0) and a latent action ``z (B, 128)``:

1. the canonical frame of the first history frame is computed from the markers
   (:class:`~.marker_frame.MarkerJoints`: pelvis origin, x from left to right hip, z up);
2. the C-VAE decodes 18 future frames in that frame;
3. the regressor fits SMPL-X bodies to every future frame, and the markers re-projected from
   them are blended with the decoded markers (``blend = 0.5``: EgoGen's 50/50 blend);
4. the blended frames go back to the world frame; the last two are the next history.
5. floor contact (``floor_contact=True``, default): the canonical frame has its origin at
   the pelvis, so the C-VAE never sees the floor and long rollouts drift up or down. The
   new frames are shifted along z by a ramp ``dz_t = (t + 1) / 18 * delta`` (continuous at
   the primitive boundary) with ``delta`` = the training data's typical lowest foot-marker
   height over a primitive (``data_stats["data_primitive_floor"]``) minus the same figure of
   the new primitive. Set ``prior.floor_contact = False`` for the raw model.

:meth:`MotionPrior.rollout` chains ``num_primitives`` steps from a seed motion (the history of
a training primitive stored in the checkpoint, or ``init``) and returns ``2 + 18 * P`` frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.envs.motion.canonical_markers import MarkerJoints, to_canonical, to_world
from egosim.envs.motion.rotations_torch import matrix_to_axis_angle

from .body_layer import BodyLayer
from .cvae import CVAEConfig, MarkerCVAE
from .regressor import MarkerRegressor, RegressorConfig, params_to_frame

__all__ = ["MotionPrior", "PriorState", "Rollout", "checkpoint_dir", "CVAE_FILE",
           "REGRESSOR_FILE"]

CVAE_FILE = "cvae.pt"
REGRESSOR_FILE = "regressor.pt"


def checkpoint_dir() -> Path:
    """Folder of the shipped checkpoints (package data ``egosim.envs.motion/checkpoints``)."""
    return Path(str(resources.files("egosim.envs.motion") / "checkpoints"))


@dataclass
class PriorState:
    """Per-human state between transitions.

    Attributes:
        history: ``(B, 2, 67, 3)`` last two marker frames, world frame (m).
        betas: ``(B, 10)`` shape coefficients.
        gender: ``(B,)`` int64 gender index (0 neutral, 1 male, 2 female).
    """

    history: torch.Tensor
    betas: torch.Tensor
    gender: torch.Tensor


@dataclass
class Rollout:
    """Output of :meth:`MotionPrior.rollout` / :meth:`MotionPrior.step` (world frame).

    Attributes:
        markers: ``(B, T, 67, 3)`` markers (m, z up).
        global_orient: ``(B, T, 3)`` smplx global orientation, axis-angle (rad), world.
        body_pose: ``(B, T, 63)`` axis-angles of the 21 body joints (rad).
        transl: ``(B, T, 3)`` smplx translation (m), world.
        joints: ``(B, T, 55, 3)`` posed joints of the regressed bodies (m).
        betas: ``(B, 10)``; gender: ``(B,)``.
        z: ``(B, P, 128)`` the latent codes used.
        decoded: ``(B, T, 67, 3)`` the C-VAE's markers before blending and floor contact
            (history frames: the seed markers).
    """

    markers: torch.Tensor
    global_orient: torch.Tensor
    body_pose: torch.Tensor
    transl: torch.Tensor
    joints: torch.Tensor
    betas: torch.Tensor
    gender: torch.Tensor
    z: torch.Tensor
    decoded: torch.Tensor


class MotionPrior(torch.nn.Module):
    """C-VAE motion primitives + regressed SMPL-X bodies (see the module docstring).

    Args:
        cvae: the motion-primitive C-VAE.
        regressor: the markers -> SMPL-X regressor.
        marker_joints: pelvis/hip estimator used for canonical frames.
        seeds: seed motions ``{"history" (S, 2, 67, 3) canonical, "height" (S,) pelvis height
            (m), "betas" (S, 10), "gender" (S,)}``.
        blend: weight of the decoded markers in the blend (1 - blend: re-projected).
        data_stats: reference figures of the training data (for metrics), optional.
    """

    def __init__(self, cvae: MarkerCVAE, regressor: MarkerRegressor,
                 marker_joints: MarkerJoints, seeds: dict[str, torch.Tensor],
                 blend: float = 0.5, data_stats: dict[str, float] | None = None) -> None:
        super().__init__()
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1]; got {blend}")
        self.cvae = cvae.eval()
        self.regressor = regressor.eval()
        self.marker_joints = marker_joints
        self.seeds = {k: torch.as_tensor(v) for k, v in seeds.items()}
        self.blend = blend
        self.data_stats = dict(data_stats or {})
        self.floor_contact = "data_primitive_floor" in self.data_stats

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, body: BodyLayer | None = None
             ) -> MotionPrior:
        """Load ``cvae.pt`` and ``regressor.pt`` from ``path`` (a folder; default: shipped).

        Raises:
            FileNotFoundError: a checkpoint is missing (names the folder and files).
        """
        folder = Path(path) if path is not None else checkpoint_dir()
        files = [folder / CVAE_FILE, folder / REGRESSOR_FILE]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"motion prior checkpoint(s) {missing} not found in {folder}; "
                                    "train them with `egosim train-prior`")
        c = torch.load(files[0], map_location="cpu", weights_only=True)
        r = torch.load(files[1], map_location="cpu", weights_only=True)
        cfg = c["config"]
        cvae = MarkerCVAE(CVAEConfig(**{**cfg, "mlp": tuple(cfg["mlp"])}))
        cvae.load_state_dict(c["model"])
        reg = MarkerRegressor(RegressorConfig(**r["config"]),
                              body=body or BodyLayer(with_vertices=True))
        reg.load_state_dict(r["model"])
        return cls(cvae, reg, MarkerJoints(c["marker_joints"]), c["seeds"],
                   blend=float(c.get("blend", 0.5)), data_stats=c.get("data_stats"))

    @property
    def body(self) -> BodyLayer:
        """The body layer (markers, joints, fast vertices)."""
        return self.regressor.body

    @property
    def latent_dim(self) -> int:
        """Size of the latent action ``z`` (128)."""
        return self.cvae.config.latent

    # -- transitions --------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, history: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """C-VAE decoding: canonical ``history (B, 2, 67, 3)``, ``z (B, 128)`` -> future
        ``(B, 18, 67, 3)`` (m, canonical frame)."""
        return self.cvae.decode(history, z)

    @torch.no_grad()
    def regress(self, markers: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor
                ) -> Any:
        """Regress bodies for ``markers (N, 67, 3)``: a :class:`~.regressor.RegressorOutput`."""
        return self.regressor(markers, betas, gender)

    @torch.no_grad()
    def step(self, state: PriorState, z: torch.Tensor) -> tuple[PriorState, Rollout]:
        """One transition (one primitive, 18 new frames) for every human.

        Args:
            state: current :class:`PriorState` (batch ``B``).
            z: ``(B, 128)`` latent action (finite).

        Returns:
            ``(next_state, out)`` with ``out`` a :class:`Rollout` of the 18 new frames.
        """
        b = state.history.shape[0]
        z = torch.as_tensor(z, dtype=torch.float32)
        if z.shape != (b, self.latent_dim):
            raise ValueError(f"z must have shape ({b}, {self.latent_dim}) (batch, latent); "
                             f"got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("z contains NaN or infinite values")
        origin, rot = self.marker_joints.frame(state.history[:, 0])
        hist = to_canonical(state.history, origin, rot)
        fut = self.cvae.decode(hist, z)  # (B, 18, 67, 3)
        f = fut.shape[1]
        body = self._bodies(fut.reshape(b * f, 67, 3), state.betas, state.gender, f)
        blended = self.blend * fut + (1.0 - self.blend) * body["markers"]
        world = to_world(blended, origin, rot)
        params = self._params_to_world(body, origin, rot, f)
        if self.floor_contact:
            dz = self._floor_shift(world)  # (B, F)
            world = world.clone()
            world[..., 2] += dz[..., None]
            params["transl"][..., 2] += dz
            params["joints"][..., 2] += dz[..., None]
        out = Rollout(markers=world, z=z[:, None], decoded=to_world(fut, origin, rot),
                      betas=state.betas, gender=state.gender, **params)
        return PriorState(world[:, -2:].clone(), state.betas, state.gender), out

    def _floor_shift(self, world: torch.Tensor) -> torch.Tensor:
        """Ramped z shift ``(B, F)`` (m) that puts a primitive's lowest foot at the data's."""
        from egosim.envs.humans.marker_set import FOOT_MARKER_INDICES

        low = world[:, :, torch.as_tensor(FOOT_MARKER_INDICES), 2].amin(dim=(1, 2))  # (B,)
        delta = float(self.data_stats["data_primitive_floor"]) - low
        f = world.shape[1]
        ramp = torch.arange(1, f + 1, dtype=world.dtype) / f
        return delta[:, None] * ramp[None]

    def _bodies(self, markers: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
                frames: int) -> dict[str, torch.Tensor]:
        b = betas.shape[0]
        reg = self.regressor(markers, betas.repeat_interleave(frames, 0),
                             gender.repeat_interleave(frames, 0))
        pelvis_rest = self.body.rest_joints(betas, gender)[:, 0].repeat_interleave(frames, 0)
        return {"markers": reg.markers.reshape(b, frames, 67, 3), "rot": reg.rot,
                "transl": reg.transl, "joints": reg.joints, "pelvis_rest": pelvis_rest}

    def _params_to_world(self, body: dict[str, torch.Tensor], origin: torch.Tensor,
                         rot: torch.Tensor, frames: int) -> dict[str, torch.Tensor]:
        b = origin.shape[0]
        o = origin.repeat_interleave(frames, 0)
        r = rot.repeat_interleave(frames, 0)
        wrot, wt = params_to_frame(body["rot"], body["transl"], body["pelvis_rest"], r, o)
        aa = matrix_to_axis_angle(wrot).reshape(b, frames, 22, 3)
        joints = to_world(body["joints"].reshape(b, frames, 55, 3), origin, rot)
        return {"global_orient": aa[:, :, 0], "body_pose": aa[:, :, 1:].reshape(b, frames, 63),
                "transl": wt.reshape(b, frames, 3), "joints": joints}

    # -- episodes -----------------------------------------------------------------------
    def reset(self, batch_size: int = 1, seed: int = 0, init: dict[str, Any] | None = None
              ) -> tuple[PriorState, Rollout]:
        """Start state for ``batch_size`` humans.

        Args:
            batch_size: number of humans ``B``.
            seed: picks seed motions from the checkpoint's bank (numpy generator).
            init: optional ``{"history": (B, 2, 67, 3) world markers, "betas": (B, 10),
                "gender": (B,)}`` instead of the bank (betas/gender default to the
                neutral mean body).

        Returns:
            ``(state, out)`` where ``out`` holds the two history frames with their bodies.
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        if init is None:
            rng = np.random.default_rng(seed)
            idx = torch.from_numpy(rng.integers(0, self.seeds["history"].shape[0], batch_size))
            hist = self.seeds["history"][idx].float().clone()
            hist[..., 2] += self.seeds["height"][idx].float()[:, None, None]
            betas = self.seeds["betas"][idx].float()
            gender = self.seeds["gender"][idx].long()
        else:
            hist = torch.as_tensor(init["history"], dtype=torch.float32)
            if hist.shape != (batch_size, 2, 67, 3):
                raise ValueError(f"init['history'] must have shape ({batch_size}, 2, 67, 3); "
                                 f"got {tuple(hist.shape)}")
            betas = torch.as_tensor(init.get("betas", torch.zeros(batch_size, 10)),
                                    dtype=torch.float32)
            gender = torch.as_tensor(init.get("gender", torch.zeros(batch_size)),
                                     dtype=torch.long)
            if betas.shape != (batch_size, 10) or gender.shape != (batch_size,):
                raise ValueError(f"init betas/gender must have shapes ({batch_size}, 10) / "
                                 f"({batch_size},); got {tuple(betas.shape)} / "
                                 f"{tuple(gender.shape)}")
        if not torch.isfinite(hist).all():
            raise ValueError("init history contains NaN or inf")
        with torch.no_grad():
            origin, rot = self.marker_joints.frame(hist[:, 0])
            canon = to_canonical(hist, origin, rot)
            body = self._bodies(canon.reshape(-1, 67, 3), betas, gender, 2)
            params = self._params_to_world(body, origin, rot, 2)
        out = Rollout(markers=hist, z=torch.zeros(batch_size, 0, self.latent_dim), decoded=hist,
                      betas=betas, gender=gender, **params)
        return PriorState(hist, betas, gender), out

    def rollout(self, num_primitives: int, batch_size: int = 1, seed: int = 0,
                z: torch.Tensor | None = None, init: dict[str, Any] | None = None) -> Rollout:
        """Chain ``num_primitives`` transitions: ``T = 2 + 18 * num_primitives`` frames.

        Args:
            num_primitives: number of primitives ``P >= 1``.
            batch_size: number of humans ``B``.
            seed: seeds the seed-motion choice and ``z ~ N(0, I)`` (torch generator).
            z: ``(B, P, 128)`` latent codes instead of sampling.
            init: see :meth:`reset`.

        Returns:
            :class:`Rollout` (world frame) with ``markers (B, T, 67, 3)``.
        """
        if not isinstance(num_primitives, int) or num_primitives < 1:
            raise ValueError(f"num_primitives must be a positive int; got {num_primitives!r}")
        if z is None:
            g = torch.Generator().manual_seed(int(seed))
            z = torch.randn(batch_size, num_primitives, self.latent_dim, generator=g)
        z = torch.as_tensor(z, dtype=torch.float32)
        want = (batch_size, num_primitives, self.latent_dim)
        if tuple(z.shape) != want:
            raise ValueError(f"z must have shape {want} (batch, primitives, latent); got "
                             f"{tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("z contains NaN or infinite values")
        state, first = self.reset(batch_size, seed, init)
        outs = [first]
        for p in range(num_primitives):
            state, out = self.step(state, z[:, p])
            outs.append(out)
        cat = {k: torch.cat([getattr(o, k) for o in outs], 1) for k in (
            "markers", "global_orient", "body_pose", "transl", "joints", "decoded")}
        return Rollout(betas=state.betas, gender=state.gender, z=z, **cat)

    @torch.no_grad()
    def vertices(self, out: Rollout, buffer: torch.Tensor | None = None) -> torch.Tensor:
        """Vertices ``(B, T, 10475, 3)`` (m, world) of a rollout's regressed bodies.

        Equal to ``smplx.SMPLX`` for every frame (betas, gender, pose and ``transl`` of the
        rollout; pose correctives included when the model has them), computed by
        :meth:`~.body_layer.BodyLayer.vertices_sequence` (shaped rest mesh once per human,
        sparse skinning).

        Args:
            out: the rollout (or one :meth:`step`'s output).
            buffer: optional contiguous float32 ``(B, T, 10475, 3)`` tensor to write into and
                return (a loop that reuses it skips allocating, and page-faulting, 145 MB per
                call at ``B = 64``, ``T = 18``); overwritten on the next call that gets it.
        """
        from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

        b, t = out.transl.shape[:2]
        pose = torch.cat([out.global_orient[:, :, None], out.body_pose.reshape(b, t, 21, 3)], 2)
        rot = axis_angle_to_matrix(pose)  # (B, T, 22, 3, 3)
        return self.body.vertices_sequence(rot, out.betas, out.gender, out.transl,
                                           out=buffer)
