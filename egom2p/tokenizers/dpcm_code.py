"""Closed-loop predictive (DPCM) code of a 60-sample gaze sequence, with k-means codebooks.

The gaze tokenizer's ``quantizer: dpcm`` (:mod:`egosim.egom2p.tokenizers.sequence`). Token
``t`` codes the ``P = patch`` samples ``2t .. 2t + P - 1`` of the gaze ``(x, y)`` as one
``2 P``-vector: for ``t = 0`` the positions themselves, for ``t > 0`` their offsets from the
last *reconstructed* sample of token ``t - 1`` (closed loop: the encoder runs the decoder, so
quantisation errors do not accumulate). Fitted once to the training clips
(:meth:`DPCMCode.fit`; deterministic, no gradients, no training steps):

- **Codebooks**: ``codebook_size`` centres for the first token's positions and
  ``codebook_size`` for the offsets of the others, the k-means centres
  (:func:`scipy.cluster.vq.kmeans2`, k-means++ started with a fixed seed) of the training
  vectors. The offset codebook is refitted ``fit_rounds`` times to the offsets the closed-loop
  encoder actually sees.
- **Encoder**: greedy with a one-token lookahead: of the ``lookahead`` nearest codes for
  token ``t``, the one whose best continuation at token ``t + 1`` leaves the least squared
  error over both.
- **Decoder**: linear, ``x_{2t + j} = x_{2t - 1} + c_t[j]``: the reconstruction is a running
  sum of code vectors, so a distribution over each token's ids has a meaningful mean
  (:meth:`DPCMCode.expected_codes`: the expected code vector), and the expected
  reconstruction is that of the expected codes.
- **Validity**: invalid input samples (the gaze left the image for a sample; their values are
  0) are filled by linear interpolation of the valid ones and cost no bits; the decoded
  ``valid`` channel is 1 where the reconstruction lies inside the image (``|x|, |y| <= 1``).

Why not the Transformer VQ-VAE EgoM2P uses (``quantizer: vq`` / ``fsq``, still available):
measured on the stream clips (3,000 training, 128 held-out), at the same 30 tokens x 256
codes, this code scores a gaze L2 of 0.0186 where the VQ-VAE reached 0.031 (the level of
keeping every 3rd sample), and the eye model's drift (a median 0.025 a sample) is what the
code must follow.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from torch import nn

from egosim.egom2p.modalities import POSE_SAMPLES
from egosim.egom2p.tokenizer_config import SequenceModelSection

__all__ = ["DPCMCode", "fill_invalid"]


def fill_invalid(xy: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace invalid samples by linear interpolation of the valid ones (held constant
    beyond the first and last valid sample; a clip with none valid becomes 0).

    Args:
        xy: ``(B, T, 2)`` positions.
        valid: ``(B, T)`` bool.

    Returns:
        ``(B, T, 2)`` float64 copy.
    """
    out = np.array(xy, dtype=np.float64)
    t = np.arange(out.shape[1])
    for b in np.flatnonzero(~valid.all(axis=1)):
        ok = valid[b]
        if not ok.any():
            out[b] = 0.0
            continue
        for d in range(out.shape[2]):
            out[b, :, d] = np.interp(t, t[ok], out[b, ok, d])
    return out


class DPCMCode(nn.Module):
    """``(B, 60, 3)`` gaze ``[x, y, valid]`` <-> ``60 / patch`` ids (module docstring).

    Args:
        channels: input channels (3: x, y, valid).
        cfg: the architecture section (its ``patch``, ``codebook_size``, ``dpcm_lookahead``
            and ``dpcm_fit_rounds``; the Transformer keys are not used).
    """

    kind = "dpcm"

    def __init__(self, channels: int, cfg: SequenceModelSection) -> None:
        super().__init__()
        if channels != 3:
            raise ValueError(f"the dpcm code takes gaze [x, y, valid], 3 channels, got "
                             f"{channels}")
        self.channels = channels
        self.patch = cfg.patch
        self.length = POSE_SAMPLES // cfg.patch
        self.lookahead = cfg.dpcm_lookahead
        self.fit_rounds = cfg.dpcm_fit_rounds
        v = cfg.codebook_size
        # fitted by fit(); saved with the weights. [0]: first token, [1]: the offsets
        self.register_buffer("codebooks", torch.zeros(2, v, 2 * cfg.patch,
                                                      dtype=torch.float64))

    def _tables(self) -> np.ndarray:
        """``(2, V, 2 P)`` float64 codebooks as numpy."""
        return self.codebooks.detach().cpu().numpy()

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Fit both codebooks to training sequences.

        Args:
            x: ``(N, 60, 3)`` gaze ``[x, y, valid]`` of the training clips.
        """
        g = self._positions(x)
        n, p, v = g.shape[0], self.patch, self.codebooks.shape[1]
        first = g[:, :p].reshape(n, -1)
        # open-loop offsets start the offset codebook; the closed loop then refits it
        offsets = (g[:, p:].reshape(n, self.length - 1, p, 2)
                   - g[:, p - 1:-1:p][:, :, None]).reshape(-1, 2 * p)
        c0 = self._kmeans(first, v)
        c1 = self._kmeans(offsets, v)
        for _ in range(self.fit_rounds):
            self.codebooks.copy_(torch.from_numpy(np.stack([c0, c1])))
            _, _, seen = self._encode(g, lookahead=1)
            c1 = self._kmeans(seen[:, 1:].reshape(-1, 2 * p), v, start=c1)
        self.codebooks.copy_(torch.from_numpy(np.stack([c0, c1])))

    @staticmethod
    def _kmeans(data: np.ndarray, count: int, start: np.ndarray | None = None) -> np.ndarray:
        """``count`` k-means centres of ``data`` ``(M, D)`` (k-means++ with seed 0, or
        refined from ``start``); fewer distinct rows than ``count`` are all kept as centres
        (the last repeated)."""
        distinct = np.unique(data, axis=0)
        if distinct.shape[0] <= count:
            pad = np.repeat(distinct[-1:], count - distinct.shape[0], axis=0)
            return np.concatenate([distinct, pad])
        if start is None:
            centres, _ = kmeans2(data, count, iter=30, minit="++", seed=0, missing="warn")
        else:
            centres, _ = kmeans2(data, start, iter=30, minit="matrix", missing="warn")
        return centres

    def _positions(self, x: torch.Tensor) -> np.ndarray:
        """``(B, 60, 3)`` input -> ``(B, 60, 2)`` float64 positions, invalid ones filled."""
        if x.ndim != 3 or x.shape[1:] != (POSE_SAMPLES, self.channels):
            raise ValueError(f"sequences must be (B, {POSE_SAMPLES}, {self.channels}), got "
                             f"{tuple(x.shape)}")
        a = x.detach().cpu().double().numpy()
        return fill_invalid(a[..., :2], a[..., 2] > 0.5)

    def _encode(self, g: np.ndarray, lookahead: int) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
        """Closed-loop encoding of positions ``g`` ``(B, 60, 2)`` -> (ids ``(B, K)``, their
        code vectors ``(B, K, 2 P)``, the vectors each token was asked to code
        ``(B, K, 2 P)``)."""
        b, p = g.shape[0], self.patch
        c0, c1 = self._tables()
        ids = np.zeros((b, self.length), np.int64)
        wanted = np.zeros((b, self.length, 2 * p))
        last = np.zeros((b, 2))
        rows = np.arange(b)
        for t in range(self.length):
            table = c0 if t == 0 else c1
            r = (g[:, t * p:(t + 1) * p] - last[:, None]).reshape(b, -1)
            wanted[:, t] = r
            d = ((r[:, None] - table[None]) ** 2).sum(-1)                  # (B, V)
            if lookahead > 1 and t < self.length - 1:
                k = min(lookahead, d.shape[1])
                cand = np.argpartition(d, k - 1, axis=1)[:, :k]             # (B, k)
                ends = last[:, None] + table[cand].reshape(b, k, p, 2)[:, :, -1]
                nxt = g[:, None, (t + 1) * p:(t + 2) * p] - ends[:, :, None]
                d2 = ((nxt.reshape(b, k, 1, -1) - c1[None, None]) ** 2).sum(-1).min(-1)
                ids[:, t] = cand[rows, (np.take_along_axis(d, cand, 1) + d2).argmin(1)]
            else:
                ids[:, t] = d.argmin(1)
            last = last + table[ids[:, t]].reshape(b, p, 2)[:, -1]
        codes = np.concatenate([c0[ids[:, :1]], c1[ids[:, 1:]]], axis=1)
        return ids, codes, wanted

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 60, 3)`` -> ``(B, 60, 2)`` float64 positions (invalid samples filled); the
        code is chosen by :meth:`quantize`, which needs the whole sequence."""
        return torch.from_numpy(self._positions(x))

    def quantize(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positions ``(B, 60, 2)`` -> (code vectors ``(B, K, 2 P)`` float64, ids ``(B, K)``
        int64, 0)."""
        ids, codes, _ = self._encode(h.detach().cpu().double().numpy(), self.lookahead)
        return (torch.from_numpy(codes), torch.from_numpy(ids),
                torch.zeros((), dtype=torch.float32))

    def codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Ids ``(B, K)`` -> their code vectors ``(B, K, 2 P)`` float64."""
        ids = ids.long()
        return torch.cat([self.codebooks[0][ids[:, :1]], self.codebooks[1][ids[:, 1:]]],
                         dim=1)

    def expected_codes(self, probs: torch.Tensor) -> torch.Tensor:
        """Per-token distributions over the ids ``(B, K, V)`` -> expected code vectors
        ``(B, K, 2 P)`` (the decoder is linear in them: the posterior-mean sequence)."""
        p = probs.double()
        return torch.cat([p[:, :1] @ self.codebooks[0], p[:, 1:] @ self.codebooks[1]], dim=1)

    def decode_latent(self, q: torch.Tensor) -> torch.Tensor:
        """Code vectors ``(B, K, 2 P)`` -> ``(B, 60, 3)`` float32 ``[x, y, valid]`` (valid:
        1 inside the image)."""
        b = q.shape[0]
        steps = q.double().reshape(b, self.length, self.patch, 2)
        # each token's samples sit on the last sample of the tokens before it
        base = torch.cumsum(steps[:, :, -1], dim=1) - steps[:, :, -1]        # (B, K, 2)
        xy = (base[:, :, None] + steps).reshape(b, POSE_SAMPLES, 2)
        inside = (xy.abs() <= 1.0).all(-1, keepdim=True).double()
        return torch.cat([xy, inside], dim=-1).float()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, 60, 3)`` -> (reconstruction ``(B, 60, 3)``, ids ``(B, K)``, 0)."""
        q, ids, commit = self.quantize(self.encode_latent(x))
        return self.decode_latent(q), ids, commit
