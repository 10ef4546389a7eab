"""EgoGen's motion-primitive C-VAE over the 67 SSM2 markers.

A primitive is 20 frames at 40 fps: ``H = 2`` history frames and ``F = 18`` future frames of
67 markers, in the primitive's canonical frame (metres, z up, origin at the first-frame
pelvis, x from the left to the right hip). Each frame is flattened to ``D = 67 * 3 = 201``
numbers and normalised per coordinate with statistics stored in the model (buffers
``mean``/``std``, so they travel with the checkpoint).

Architecture (EgoGen's published C-VAE):

* history encoder: GRU ``201 -> 256`` over the ``H`` history frames, last hidden state;
* future encoder: GRU ``201 -> 256`` over the ``F`` future frames, last hidden state;
* posterior MLP ``[512, 256]`` on both codes -> ``mu``, ``logvar`` (latent 128);
* decoder: a GRUCell whose input is ``[history code, z, previous frame]``; its hidden state
  starts from a linear map of ``[history code, z]``; each step predicts the residual
  ``x_t - x_{t-1}`` (normalised units) for 18 autoregressive steps.

Loss (:func:`cvae_loss`, all in normalised units, means over batch, frames and coordinates)::

    L = L1(x_hat, x) + w_diff * L1(diff(x_hat), diff(x)) + w_kl * (sqrt(1 + KL^2) - 1)

``diff`` takes frame differences including the step from the last history frame into the
first future frame; ``KL`` is the batch mean of the KL divergence ``q(z|x) || N(0, I)``
summed over the 128 latent dimensions. ``w_diff = 3.0`` as EgoGen; ``w_kl`` is a config value
(``cvae.kl_weight``): the robust form ``sqrt(1 + KL^2) - 1`` grows like ``|KL|`` for large KL
and quadratically for small KL, so it stops pushing the posterior onto the prior once they are
close (no posterior collapse), while still bounding how much information z carries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["CVAEConfig", "MarkerCVAE", "cvae_loss", "constant_velocity"]


@dataclass(frozen=True)
class CVAEConfig:
    """Sizes of :class:`MarkerCVAE` (EgoGen's values by default)."""

    num_markers: int = 67
    history: int = 2
    future: int = 18
    hidden: int = 256
    mlp: tuple[int, ...] = field(default=(512, 256))
    latent: int = 128

    @property
    def dim(self) -> int:
        """Numbers per frame (``3 * num_markers``)."""
        return 3 * self.num_markers

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mlp"] = list(self.mlp)
        return d


class MarkerCVAE(nn.Module):
    """Conditional VAE: (2 history frames, z) -> 18 future frames of markers.

    Args:
        config: sizes.
        mean: ``(D,)`` per-coordinate mean of marker frames (m); default zeros.
        std: ``(D,)`` per-coordinate standard deviation (m); default ones.
    """

    def __init__(self, config: CVAEConfig | None = None, mean: torch.Tensor | None = None,
                 std: torch.Tensor | None = None) -> None:
        super().__init__()
        self.config = c = config or CVAEConfig()
        d = c.dim
        self.register_buffer("mean", torch.zeros(d) if mean is None else mean.float().clone())
        self.register_buffer("std", torch.ones(d) if std is None else std.float().clone())
        self.enc_history = nn.GRU(d, c.hidden, batch_first=True)
        self.enc_future = nn.GRU(d, c.hidden, batch_first=True)
        layers: list[nn.Module] = []
        width = 2 * c.hidden
        for w in c.mlp:
            layers += [nn.Linear(width, w), nn.LeakyReLU(0.2)]
            width = w
        self.posterior = nn.Sequential(*layers)
        self.to_mu = nn.Linear(width, c.latent)
        self.to_logvar = nn.Linear(width, c.latent)
        self.dec_init = nn.Linear(c.hidden + c.latent, c.hidden)
        self.dec_cell = nn.GRUCell(c.hidden + c.latent + d, c.hidden)
        self.dec_out = nn.Linear(c.hidden, d)
        nn.init.zeros_(self.dec_out.weight)
        nn.init.zeros_(self.dec_out.bias)

    # -- normalisation ------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, 67, 3)`` metres -> ``(B, T, D)`` normalised."""
        return (x.reshape(*x.shape[:2], -1) - self.mean) / self.std

    def denormalize(self, xn: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` normalised -> ``(B, T, 67, 3)`` metres."""
        x = xn * self.std + self.mean
        return x.reshape(*x.shape[:2], self.config.num_markers, 3)

    def _check_frames(self, name: str, x: torch.Tensor, frames: int) -> None:
        want = (frames, self.config.num_markers, 3)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"{name} must have shape (B, {want[0]}, {want[1]}, 3); "
                             f"got {tuple(x.shape)}")

    def _check_z(self, z: torch.Tensor, batch: int) -> None:
        if z.shape != (batch, self.config.latent):
            raise ValueError(f"z must have shape ({batch}, {self.config.latent}) (batch, latent); "
                             f"got {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError("z contains NaN or infinite values")

    # -- parts --------------------------------------------------------------------------
    def encode_history(self, hist_n: torch.Tensor) -> torch.Tensor:
        """``(B, H, D)`` normalised history -> ``(B, hidden)`` code."""
        return self.enc_history(hist_n)[1][-1]

    def encode(self, history: torch.Tensor, future: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior ``q(z | history, future)``: ``mu, logvar``, each ``(B, latent)``.

        Args:
            history: ``(B, 2, 67, 3)`` metres, canonical frame.
            future: ``(B, 18, 67, 3)`` metres, canonical frame.
        """
        self._check_frames("history", history, self.config.history)
        self._check_frames("future", future, self.config.future)
        h = self.encode_history(self.normalize(history))
        f = self.enc_future(self.normalize(future))[1][-1]
        e = self.posterior(torch.cat([h, f], -1))
        return self.to_mu(e), self.to_logvar(e)

    def decode(self, history: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Future frames ``(B, 18, 67, 3)`` (m, canonical frame) from history and ``z``.

        Args:
            history: ``(B, 2, 67, 3)`` metres, canonical frame of the primitive.
            z: ``(B, 128)`` latent codes (finite).
        """
        self._check_frames("history", history, self.config.history)
        self._check_z(z, history.shape[0])
        return self.denormalize(self._decode_n(self.normalize(history), z))

    def _decode_n(self, hist_n: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        code = self.encode_history(hist_n)
        cond = torch.cat([code, z], -1)
        state = torch.tanh(self.dec_init(cond))
        prev = hist_n[:, -1]
        out = []
        for _ in range(self.config.future):
            state = self.dec_cell(torch.cat([cond, prev], -1), state)
            prev = prev + self.dec_out(state)
            out.append(prev)
        return torch.stack(out, 1)

    def forward(self, history: torch.Tensor, future: torch.Tensor,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Reconstruct ``future`` through the posterior (reparameterised sample).

        Returns a dict with ``pred_n`` ``(B, F, D)`` normalised prediction, ``target_n``,
        ``history_n``, ``mu`` and ``logvar`` ``(B, latent)``.
        """
        mu, logvar = self.encode(history, future)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        hist_n = self.normalize(history)
        return {"pred_n": self._decode_n(hist_n, z), "target_n": self.normalize(future),
                "history_n": hist_n, "mu": mu, "logvar": logvar}


def cvae_loss(out: dict[str, torch.Tensor], diff_weight: float = 3.0, kl_weight: float = 1.0
              ) -> dict[str, torch.Tensor]:
    """EgoGen's C-VAE loss from :meth:`MarkerCVAE.forward`'s output.

    Returns ``{"total", "rec", "diff", "kl", "robust_kl"}`` scalars; ``total = rec +
    diff_weight * diff + kl_weight * robust_kl`` (see the module docstring).
    """
    pred, target, hist = out["pred_n"], out["target_n"], out["history_n"]
    rec = (pred - target).abs().mean()
    last = hist[:, -1:]
    d_pred = torch.diff(torch.cat([last, pred], 1), dim=1)
    d_true = torch.diff(torch.cat([last, target], 1), dim=1)
    diff = (d_pred - d_true).abs().mean()
    mu, logvar = out["mu"], out["logvar"]
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
    robust = torch.sqrt(1 + kl.pow(2)) - 1
    total = rec + diff_weight * diff + kl_weight * robust
    return {"total": total, "rec": rec, "diff": diff, "kl": kl, "robust_kl": robust}


def constant_velocity(history: torch.Tensor, future: int = 18) -> torch.Tensor:
    """Baseline: extrapolate ``(B, 2, 67, 3)`` history at constant velocity -> ``(B, F, 67, 3)``."""
    vel = history[:, -1] - history[:, -2]
    steps = torch.arange(1, future + 1, dtype=history.dtype, device=history.device)
    return history[:, -1:] + steps[None, :, None, None] * vel[:, None]
