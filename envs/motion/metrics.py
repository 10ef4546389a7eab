"""Figures of merit of the motion prior (issue 4), all computed from markers.

Definitions (world frame, z up, floor at z = 0, 40 fps):

* lowest foot marker: per frame, the one of the six foot markers (heels, toes, ...) with the
  smallest height; its height ``h_t``;
* contact: frames with ``h_t < contact_height`` (0.05 m);
* foot height at contact: mean ``h_t`` over contact frames (m);
* foot skating: mean horizontal speed (m/s) of the lowest foot marker of frame ``t`` between
  ``t`` and ``t + 1``, over contact frames;
* pelvis height: the pelvis estimated from markers (:class:`~.marker_frame.MarkerJoints`), so
  training data and rollouts are measured the same way;
* diversity: average pairwise distance (APD) of samples from one seed motion: mean over pairs
  of the mean per-marker Euclidean distance over all frames (m);
* reconstruction: mean per-marker Euclidean distance (m) over the 18 future frames;
* primitive floor: median over primitives of the lowest foot-marker height in the primitive
  (the rollout's floor-contact target, see :mod:`.prior`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egosim.envs.humans.marker_set import FOOT_MARKER_INDICES

from .cvae import MarkerCVAE, constant_velocity
from .marker_frame import MarkerJoints

__all__ = ["foot_stats", "pelvis_heights", "data_reference", "apd", "reconstruction_errors",
           "evaluate_all",
           "regressor_error", "rollout_metrics", "FPS", "CONTACT_HEIGHT"]

FPS = 40.0
CONTACT_HEIGHT = 0.05


def foot_stats(markers: np.ndarray | torch.Tensor, fps: float = FPS,
               contact_height: float = CONTACT_HEIGHT) -> dict[str, float]:
    """Foot height at contact, skating and contact fraction of ``(B, T, 67, 3)`` world markers."""
    m = torch.as_tensor(markers, dtype=torch.float64)
    feet = m[:, :, torch.as_tensor(FOOT_MARKER_INDICES)]  # (B, T, 6, 3)
    h, idx = feet[..., 2].min(-1)  # (B, T)
    low = torch.gather(feet, 2, idx[..., None, None].expand(*idx.shape, 1, 3)).squeeze(2)
    nxt = torch.gather(feet[:, 1:], 2, idx[:, :-1, None, None].expand(
        *idx[:, :-1].shape, 1, 3)).squeeze(2)
    speed = (nxt - low[:, :-1])[..., :2].norm(dim=-1) * fps  # (B, T-1)
    contact = h[:, :-1] < contact_height
    n = int(contact.sum())
    return {
        "foot_height_contact": float(h[:, :-1][contact].mean()) if n else float("nan"),
        "skating": float(speed[contact].mean()) if n else float("nan"),
        "contact_fraction": float(contact.double().mean()),
        "min_foot_height": float(h.min()),
    }


def pelvis_heights(markers: np.ndarray | torch.Tensor, joints: MarkerJoints) -> torch.Tensor:
    """Pelvis height (m) ``(B, T)`` of ``(B, T, 67, 3)`` world markers."""
    m = torch.as_tensor(markers, dtype=torch.float32)
    return joints(m)[..., 0, 2]


def data_reference(world_markers: np.ndarray, joints: MarkerJoints) -> dict[str, float]:
    """Reference figures of training primitives ``(N, 20, 67, 3)`` (world frame)."""
    stats = foot_stats(world_markers)
    ph = pelvis_heights(world_markers, joints)
    feet = torch.as_tensor(world_markers)[:, :, torch.as_tensor(FOOT_MARKER_INDICES), 2]
    stats["primitive_floor"] = float(feet.amin(dim=(1, 2)).median())
    return {**{f"data_{k}": v for k, v in stats.items()},
            "data_pelvis_min": float(ph.min()), "data_pelvis_max": float(ph.max()),
            "data_pelvis_mean": float(ph.mean())}


def apd(samples: torch.Tensor) -> float:
    """Average pairwise distance (m) of ``(S, T, 67, 3)`` samples (see module docstring)."""
    s = samples.shape[0]
    if s < 2:
        raise ValueError("apd needs at least two samples")
    d = [(samples[i] - samples[j]).norm(dim=-1).mean() for i in range(s) for j in range(i + 1, s)]
    return float(torch.stack(d).mean())


@torch.no_grad()
def reconstruction_errors(cvae: MarkerCVAE, markers: np.ndarray | torch.Tensor,
                          batch: int = 512) -> dict[str, float]:
    """C-VAE vs constant velocity on canonical primitives ``(N, 20, 67, 3)``.

    Returns mean per-marker errors (m): ``cvae_posterior`` (z = posterior mean),
    ``cvae_prior_mean`` (z = 0, no access to the future) and ``constant_velocity``.
    """
    x = torch.as_tensor(markers, dtype=torch.float32)
    h_n = cvae.config.history
    sums = {"cvae_posterior": 0.0, "cvae_prior_mean": 0.0, "constant_velocity": 0.0}
    for s in range(0, x.shape[0], batch):
        hist, fut = x[s:s + batch, :h_n], x[s:s + batch, h_n:]
        mu, _ = cvae.encode(hist, fut)
        preds = {"cvae_posterior": cvae.decode(hist, mu),
                 "cvae_prior_mean": cvae.decode(hist, torch.zeros_like(mu)),
                 "constant_velocity": constant_velocity(hist, fut.shape[1])}
        for k, p in preds.items():
            sums[k] += float((p - fut).norm(dim=-1).mean(dim=(1, 2)).sum())
    return {k: v / x.shape[0] for k, v in sums.items()}


@torch.no_grad()
def regressor_error(regressor: Any, markers: torch.Tensor, betas: torch.Tensor,
                    gender: torch.Tensor, batch: int = 2048) -> dict[str, float]:
    """Mean and 95th-percentile marker re-projection error (m) of ``(N, 67, 3)`` markers."""
    errs = []
    for s in range(0, markers.shape[0], batch):
        out = regressor(markers[s:s + batch], betas[s:s + batch], gender[s:s + batch])
        errs.append((out.markers - markers[s:s + batch]).norm(dim=-1).mean(-1))
    e = torch.cat(errs)
    return {"regressor_mean": float(e.mean()), "regressor_p95": float(e.quantile(0.95))}


@torch.no_grad()
def rollout_metrics(prior: Any, num_primitives: int = 100, batch_size: int = 8, seed: int = 1,
                    diversity_samples: int = 10) -> dict[str, float]:
    """Long rollouts from ``z ~ N(0, I)`` and diversity, against ``prior.data_stats``."""
    out = prior.rollout(num_primitives, batch_size=batch_size, seed=seed)
    m = out.markers
    res: dict[str, float] = {"rollout_nan": float(bool(torch.isnan(m).any())),
                             "rollout_frames": float(m.shape[1])}
    res.update({f"rollout_{k}": v for k, v in foot_stats(m).items()})
    ph = pelvis_heights(m, prior.marker_joints)
    res["rollout_pelvis_min"] = float(ph.min())
    res["rollout_pelvis_max"] = float(ph.max())
    ref = prior.data_stats
    if "data_pelvis_min" in ref:
        inside = (ph >= ref["data_pelvis_min"]) & (ph <= ref["data_pelvis_max"])
        res["rollout_pelvis_in_range"] = float(inside.double().mean())
    if ref.get("data_skating"):
        res["skating_ratio"] = res["rollout_skating"] / ref["data_skating"]
    # diversity: the same seed motion, different z
    init_state, _ = prior.reset(1, seed)
    init = {"history": init_state.history.expand(diversity_samples, -1, -1, -1),
            "betas": init_state.betas.expand(diversity_samples, -1),
            "gender": init_state.gender.expand(diversity_samples)}
    for p in (1, 10):
        d = prior.rollout(p, batch_size=diversity_samples, seed=seed + 1, init=init)
        res[f"diversity_apd_{p}"] = apd(d.markers[:, 2:])
    return res


@torch.no_grad()
def evaluate_all(prior: Any, held: Any, num_primitives: int = 100, batch_size: int = 8,
                 seed: int = 1, max_frames: int = 4000) -> dict[str, float]:
    """Every figure of issue 4 on held-out primitives ``held`` (a ``PrimitiveSet``).

    Regressor: re-projection error on up to ``max_frames`` held-out frames (canonical
    markers with their bodies' betas and gender); C-VAE: :func:`reconstruction_errors`;
    rollouts: :func:`rollout_metrics`.
    """
    n, t = held.markers.shape[:2]
    rng = np.random.default_rng(seed)
    pick = rng.choice(n * t, min(max_frames, n * t), replace=False)
    i, f = pick // t, pick % t
    res = regressor_error(prior.regressor, torch.from_numpy(held.markers[i, f]),
                          torch.from_numpy(held.betas[i].astype(np.float32)),
                          torch.from_numpy(held.gender[i].astype(np.int64)))
    res.update({f"recon_{k}": v for k, v in
                reconstruction_errors(prior.cvae, held.markers).items()})
    res.update(rollout_metrics(prior, num_primitives, batch_size, seed))
    if prior.floor_contact:  # the raw model, without the floor-contact shift
        prior.floor_contact = False
        try:
            raw = rollout_metrics(prior, num_primitives, batch_size, seed)
        finally:
            prior.floor_contact = True
        res.update({f"raw_{k}": v for k, v in raw.items() if not k.startswith("diversity")})
    res.update(prior.data_stats)
    return res
