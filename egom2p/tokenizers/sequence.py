"""Tokenizers of the 60-sample sequences, camera and gaze: Transformer VQ-VAEs and fitted codes.

EgoM2P's design: a Conv1d (kernel = stride = ``patch`` = 2) turns 60 samples (30 fps, 2 s)
into 30 tokens, a Transformer encoder, a vector quantiser (256 codes of width 32, cosine
similarity, EMA 0.99, dead codes replaced by batch vectors), a Transformer decoder and a
linear head back to ``patch`` samples per token; MSE loss. ``quantizer: fsq`` replaces the
learnt codebook by finite scalar quantisation (``fsq_levels``, e.g. [256]: each token one
scalar of 256 levels, projected from and back to the Transformer width): no codebook to
collapse, and the encoder spreads the trajectory over the 30 tokens as it likes (a linear
PCA of camera_9d with 30 coefficients at 8 bits already beats the 256-code VQ of the same
size by 3x in ATE on stream clips).

- Camera (:data:`~egosim.egom2p.modalities.MODALITY_INFO` ``camera``): input ``camera_9d``
  float32 ``(B, 60, 9)`` (first two rotation columns and the translation of the canonical
  camera-to-world poses, z-scored with the statistics of
  :mod:`egosim.egom2p.camera_9d`). The tokenizer keeps the statistics it was trained with
  (buffers ``stats_mean``, ``stats_std``): when a batch also holds ``camera`` (the clip
  does), :meth:`SequenceTokenizer.encode` scores those poses itself, so a later change of
  the shipped statistics cannot shift its input. :meth:`SequenceTokenizer.decode` returns
  ``camera_9d`` and ``camera`` ``(B, 60, 4, 4)`` float64 poses, decoded by
  :func:`egosim.egom2p.camera_9d.decode_9d` (Gram-Schmidt on the rotation columns).
- ``quantizer: pca`` (camera only; the shipped camera tokenizer): no Transformer, a linear
  code fitted to the training clips (:mod:`.pca_code`): 30 principal-direction
  coefficients, each with its own 256 Lloyd-Max levels; same input, statistics and outputs.
- Gaze: input ``[x, y, valid]`` ``(B, 60, 3)`` from ``gaze`` ``(B, 60, 2)`` in [-1, 1]
  (zeroed where invalid) and ``gaze_valid`` ``(B, 60)``; the x, y error is masked by
  validity, the valid channel is fitted everywhere; decoded ``gaze_valid`` is its output
  above 0.5.
- ``quantizer: dpcm`` (gaze only; the shipped gaze tokenizer): no Transformer, a
  closed-loop predictive code fitted to the training clips (:mod:`.dpcm_code`): each token
  the k-means code of its two samples' offsets from the last reconstructed sample; same
  input and outputs (decoded ``gaze_valid``: the reconstruction inside the image).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import FSQ, VectorQuantize

from egosim.egom2p.modalities import POSE_SAMPLES, sequence_positions
from egosim.egom2p.tokenizer_config import SequenceModelSection

from .base import Batch, Tokenizer, as_tensor
from .dpcm_code import DPCMCode
from .pca_code import PCACode

__all__ = ["SequenceTokenizer", "SequenceVQVAE"]

_CHANNELS = {"camera": 9, "gaze": 3}


def _transformer(cfg: SequenceModelSection) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.width, cfg.heads, int(cfg.width * cfg.mlp_ratio), dropout=0.0,
        activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, cfg.layers, norm=nn.LayerNorm(cfg.width),
                                 enable_nested_tensor=False)


class SequenceVQVAE(nn.Module):
    """``(B, 60, C)`` <-> ``60 / patch`` VQ codes (see the module docstring).

    Args:
        channels: input channels ``C``.
        cfg: architecture section.
    """

    def __init__(self, channels: int, cfg: SequenceModelSection) -> None:
        super().__init__()
        self.channels = channels
        self.patch = cfg.patch
        self.length = POSE_SAMPLES // cfg.patch
        self.embed = nn.Conv1d(channels, cfg.width, cfg.patch, stride=cfg.patch)
        self.register_buffer("positions", sequence_positions(cfg.width, self.length),
                             persistent=False)
        self.encoder = _transformer(cfg)
        self.kind = cfg.quantizer
        if cfg.quantizer == "fsq":
            self.fsq = FSQ(list(cfg.fsq_levels), dim=cfg.width)
        else:
            self.vq = VectorQuantize(
                dim=cfg.width, codebook_size=cfg.codebook_size, codebook_dim=cfg.code_dim,
                use_cosine_sim=cfg.cosine, decay=cfg.decay,
                threshold_ema_dead_code=cfg.dead_code_threshold,
                kmeans_init=cfg.kmeans_init, commitment_weight=cfg.commitment_weight)
        self.decoder = _transformer(cfg)
        self.head = nn.Linear(cfg.width, channels * cfg.patch)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 60, C)`` -> pre-quantisation features ``(B, 30, width)``."""
        if x.ndim != 3 or x.shape[1:] != (POSE_SAMPLES, self.channels):
            raise ValueError(f"sequences must be (B, {POSE_SAMPLES}, {self.channels}), got "
                             f"{tuple(x.shape)}")
        h = self.embed(x.transpose(1, 2)).transpose(1, 2) + self.positions
        return self.encoder(h)

    def quantize(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features ``(B, 30, width)`` -> (quantised features, ids ``(B, 30)`` int64,
        commitment loss; 0 for FSQ)."""
        if self.kind == "fsq":
            q, ids = self.fsq(h)
            return q, ids.long(), h.new_zeros(())
        q, ids, commit = self.vq(h)
        return q, ids.long(), commit.sum()

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, 30)`` -> quantised features ``(B, 30, width)``."""
        if self.kind == "fsq":
            return self.fsq.indices_to_codes(ids)
        return self.vq.get_output_from_indices(ids)

    def decode_latent(self, q: torch.Tensor) -> torch.Tensor:
        """Quantised features ``(B, 30, width)`` -> ``(B, 60, C)``."""
        out = self.head(self.decoder(q + self.positions))
        return out.reshape(q.shape[0], self.length * self.patch, self.channels)

    def expected_codes(self, probs: torch.Tensor) -> torch.Tensor:
        """Per-token distributions over the ids ``(B, 30, V)`` -> expected quantised
        features ``(B, 30, width)`` (the posterior mean of each token's code)."""
        table = self.codes(torch.arange(probs.shape[-1], device=probs.device)[None])[0]
        return probs.to(table.dtype) @ table

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, 60, C)`` -> (reconstruction, ids ``(B, 30)``, commitment loss)."""
        q, ids, commit = self.quantize(self.encode_latent(x))
        return self.decode_latent(q), ids, commit


class SequenceTokenizer(Tokenizer):
    """Camera or gaze sequence <-> 30 tokens (see the module docstring).

    Args:
        name: ``"camera"`` or ``"gaze"``.
        cfg: architecture section (default: the schema's).
    """

    def __init__(self, name: Literal["camera", "gaze"],
                 cfg: SequenceModelSection | None = None) -> None:
        super().__init__()
        if name not in _CHANNELS:
            raise ValueError(f"sequence tokenizer name must be 'camera' or 'gaze', got "
                             f"{name!r}")
        self.name = name
        self.cfg = cfg if cfg is not None else SequenceModelSection()
        self.clip_keys = ("camera_9d", "camera") if name == "camera" else ("gaze",
                                                                          "gaze_valid")
        if self.cfg.quantizer == "pca" and name != "camera":
            raise ValueError(f"quantizer 'pca' is for the camera tokenizer, not {name!r}")
        if self.cfg.quantizer == "dpcm" and name != "gaze":
            raise ValueError(f"quantizer 'dpcm' is for the gaze tokenizer, not {name!r}")
        self.net: SequenceVQVAE | PCACode | DPCMCode
        if self.cfg.quantizer == "pca":
            self.net = PCACode(_CHANNELS[name], self.cfg)
        elif self.cfg.quantizer == "dpcm":
            self.net = DPCMCode(_CHANNELS[name], self.cfg)
        else:
            self.net = SequenceVQVAE(_CHANNELS[name], self.cfg)
        self.vocab_size = self.cfg.codebook_size
        self.translation_weight = 1.0  # camera loss; set by the trainer from its config
        if name == "camera":  # the z-scoring of camera_9d, saved with the weights
            self.register_buffer("stats_mean", torch.zeros(9, dtype=torch.float64))
            self.register_buffer("stats_std", torch.ones(9, dtype=torch.float64))

    def set_camera_stats(self, mean: Any, std: Any) -> None:
        """The 9-D statistics the training clips' ``camera_9d`` were scored with
        (:class:`egosim.egom2p.camera_9d.Camera9DStats` ``mean``, ``std``: ``(9,)``); decode
        un-scores with them."""
        if self.name != "camera":
            raise ValueError("only the camera tokenizer has 9-D statistics")
        self.stats_mean.copy_(torch.as_tensor(mean, dtype=torch.float64))
        self.stats_std.copy_(torch.as_tensor(std, dtype=torch.float64))

    @property
    def fitted_code(self) -> bool:
        """Whether :meth:`fit` must see the training clips before use (``quantizer: pca`` or
        ``dpcm``)."""
        return isinstance(self.net, (PCACode, DPCMCode))

    @property
    def ordinal_ids(self) -> bool:  # type: ignore[override]
        """Whether the ids are ordinal bins (``quantizer: pca``: each id a sorted level of
        its token's coefficient)."""
        return isinstance(self.net, PCACode)

    def token_variance(self) -> np.ndarray | None:
        """``quantizer: pca``: the variance of each token's coefficient, ``(K,)`` float64 in
        the code's units, read as the variance of its Lloyd-Max levels (within 1 % of the
        training coefficients' own share for the two leading ones, which carry 93 % of the
        shipped code's variance); ``None`` for the other quantisers."""
        if not isinstance(self.net, PCACode):
            return None
        return self.net.levels.var(1).cpu().numpy()

    def fit(self, batch: Batch) -> None:
        """Fit a ``quantizer: pca`` camera code (:mod:`.pca_code`) or a ``quantizer: dpcm``
        gaze code (:mod:`.dpcm_code`) to training clips (``batch``: their ``camera`` or
        ``camera_9d``, or ``gaze`` and ``gaze_valid`` entries, all of them); the other
        quantisers learn by gradient only, and for them this does nothing."""
        if isinstance(self.net, PCACode):
            x, _ = self.to_input(batch)
            self.net.fit(x, self.stats_std)
        elif isinstance(self.net, DPCMCode):
            self.net.fit(self.to_input(batch)[0])

    def score_poses(self, poses: torch.Tensor) -> torch.Tensor:
        """Canonical camera-to-world poses ``(B, 60, 4, 4)`` -> their ``camera_9d``
        ``(B, 60, 9)`` float32, z-scored with this tokenizer's statistics."""
        from egosim.egom2p.camera_9d import Camera9DStats, camera_9d

        stats = Camera9DStats(self.stats_mean.cpu().numpy(), self.stats_std.cpu().numpy())
        return torch.from_numpy(camera_9d(poses.detach().cpu().numpy(), stats))

    def num_tokens(self, height: int = 64, width: int = 64) -> int:
        return self.net.length

    def model_config(self) -> dict[str, Any]:
        return self.cfg.model_dump(mode="json")

    def to_input(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network input ``(B, 60, C)`` and, for gaze, the validity ``(B, 60)`` float."""
        if self.name == "camera":
            if "camera" in batch:  # re-scored with the statistics this tokenizer learnt with
                return self.score_poses(as_tensor(batch, "camera", torch.float64)), None
            return as_tensor(batch, "camera_9d", torch.float32), None
        gaze = as_tensor(batch, "gaze", torch.float32)
        valid = as_tensor(batch, "gaze_valid").bool()
        if gaze.ndim != 3 or gaze.shape[-1] != 2 or valid.shape != gaze.shape[:-1]:
            raise ValueError(f"gaze must be (B, 60, 2) with gaze_valid (B, 60), got "
                             f"{tuple(gaze.shape)} and {tuple(valid.shape)}")
        v = valid.float()
        xy = torch.where(valid[..., None], gaze.clamp(-1.0, 1.0), torch.zeros_like(gaze))
        return torch.cat([xy, v[..., None]], dim=-1), v

    def from_output(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Network output ``(B, 60, C)`` -> clip entries."""
        if self.name == "gaze":
            return {"gaze": y[..., :2].clamp(-1.0, 1.0).to(torch.float32),
                    "gaze_valid": y[..., 2] > 0.5}
        x9 = y.to(torch.float32)
        return {"camera_9d": x9, "camera": poses_from_9d(x9, self.stats_mean, self.stats_std)}

    @torch.no_grad()
    def encode(self, batch: Batch) -> torch.Tensor:
        x, _ = self.to_input(batch)
        _, ids, _ = self.net.quantize(self.net.encode_latent(x))
        return ids

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = torch.as_tensor(tokens).long()
        if tokens.ndim != 2 or tokens.shape[1] != self.net.length:
            raise ValueError(f"tokens must be (B, {self.net.length}), got "
                             f"{tuple(tokens.shape)}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise ValueError(f"token ids must be in [0, {self.vocab_size})")
        return self.from_output(self.net.decode_latent(self.net.codes(tokens)))

    @torch.no_grad()
    def decode_expected(self, tokens: torch.Tensor, probs: Sequence[torch.Tensor]
                        ) -> dict[str, torch.Tensor]:
        """Clip entries of the expected codes of per-token distributions (``probs``: one
        ``(B, 30, V)`` tensor, e.g. a model's softmax): the posterior-mean estimate, where
        :meth:`decode` of one id per token is a draw; the ids ``tokens`` are not needed.
        With one-hot ``probs`` it equals :meth:`decode`."""
        del tokens
        if len(probs) != 1:
            raise ValueError(f"a sequence tokenizer takes one distribution per token, got "
                             f"{len(probs)} factors")
        p = torch.as_tensor(probs[0])
        if p.ndim != 3 or p.shape[1:] != (self.net.length, self.vocab_size):
            raise ValueError(f"probs must be (B, {self.net.length}, {self.vocab_size}), got "
                             f"{tuple(p.shape)}")
        return self.from_output(self.net.decode_latent(self.net.expected_codes(p)))

    def loss(self, batch: Batch, flip: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x, valid = self.to_input(batch)
        recon, _, commit = self.net(x)
        if isinstance(self.net, PCACode):  # the fitted code's error (nothing to train)
            mse = self.net.vector_error(recon, x)
            return {"total": mse + commit, "mse": mse, "commit": commit}
        recon = recon.to(x.dtype)
        if valid is None:  # camera: the translation dims weigh translation_weight
            w = recon.new_ones(9)
            w[6:] = self.translation_weight
            mse = ((recon - x) ** 2 * w).mean() * (9.0 / float(w.sum()))
            return {"total": mse + commit, "mse": mse, "commit": commit}
        err = (recon[..., :2] - x[..., :2]) ** 2
        mse_xy = (err * valid[..., None]).sum() / (2.0 * valid.sum()).clamp(min=1.0)
        mse_valid = F.mse_loss(recon[..., 2], x[..., 2])
        mse = mse_xy + mse_valid
        return {"total": mse + commit, "mse": mse, "mse_xy": mse_xy,
                "mse_valid": mse_valid, "commit": commit}


def poses_from_9d(x9: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """z-scored 9-D camera ``(B, 60, 9)`` -> canonical camera-to-world poses
    ``(B, 60, 4, 4)`` float64, by :func:`egosim.egom2p.camera_9d.decode_9d` with the
    statistics ``mean``, ``std`` ``(9,)``."""
    from egosim.egom2p.camera_9d import Camera9DStats, decode_9d

    stats = Camera9DStats(mean.detach().cpu().numpy(), std.detach().cpu().numpy())
    return torch.from_numpy(decode_9d(x9.detach().cpu().numpy(), stats))
