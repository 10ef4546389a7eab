"""Training masks: fixed input and target token budgets split over modalities by Dirichlets.

For each sample (4M's / EgoM2P's scheme):

1. draw ``alpha`` uniformly from ``alphas`` (a mixture of symmetric Dirichlets; EgoM2P:
   0.01, 0.1, 1, 10) and a split ``w ~ Dirichlet(alpha, ..., alpha)`` over the modalities the
   sample *has* (``available[m]``); small ``alpha`` puts nearly the whole budget on one
   modality, large ``alpha`` spreads it evenly;
2. the input budget becomes integer shares ``round(budget * w)`` (largest remainders), each
   clamped to the modality's token count; what a clamp frees goes to the other modalities in
   proportion to ``w`` (evenly where their weights are all 0) until the budget is spent or
   every modality is full;
3. the target budget is split the same way with a fresh draw, over the tokens not used as
   input;
4. each modality's input and target positions are a random subset of its token slots.

A modality a sample lacks gets neither input nor target tokens. **Roles** (optional,
``roles={modality: "both" | "input" | "target"}``, unlisted ones ``both``): an ``input``
modality never gets target tokens and a ``target`` one never gets input tokens; the input
split (step 1-2) runs over the available modalities allowed as inputs, the target split
(step 3) over those allowed as targets (a single-task specialist: ``{rgb: input, depth:
target}``). With every role ``both`` (or ``roles=None``) the draws are exactly those of the
plain scheme. The result is a 4M mod_dict (True = excluded). A sample whose available
tokens are fewer than the budgets gets all it has. Everything is drawn from one
``torch.Generator`` (each sample's numpy generator is seeded from it), so the same
generator state gives the same masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

__all__ = ["DEFAULT_ALPHAS", "ROLES", "make_mod_dict", "sample_masks", "split_budget"]

DEFAULT_ALPHAS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
"""EgoM2P's Dirichlet concentrations."""

ROLES: tuple[str, ...] = ("both", "input", "target")
"""A modality's possible roles (see the module docstring)."""


def split_budget(budget: int, weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integer shares of ``budget`` in proportion to ``weights``, each at most ``caps``.

    Args:
        budget: tokens to hand out (>= 0).
        weights: ``(M,)`` non-negative weights (need not sum to 1).
        caps: ``(M,)`` int capacities.

    Returns:
        ``(M,)`` int64 shares, ``0 <= share <= cap``, summing to ``min(budget, caps.sum())``.
    """
    caps = np.asarray(caps, np.int64)
    w = np.where(caps > 0, np.maximum(np.asarray(weights, np.float64), 0.0), 0.0)
    out = np.zeros(len(caps), np.int64)
    left = int(min(budget, caps.sum()))
    while left > 0:
        room = caps - out
        open_ = room > 0
        ww = np.where(open_, w, 0.0)
        if ww.sum() <= 0 or not np.isfinite(ww.sum()):
            ww = open_.astype(np.float64)
        ww = ww / ww.sum()
        raw = left * ww
        share = np.floor(raw).astype(np.int64)
        rest = left - int(share.sum())
        if rest > 0:  # largest remainders (ties: lower index) among open modalities
            frac = np.where(open_, raw - share, -1.0)
            share[np.argsort(-frac, kind="stable")[:rest]] += 1
        share = np.minimum(share, room)
        out += share
        left -= int(share.sum())
    return out


def sample_masks(available: Mapping[str, torch.Tensor], num_tokens: Mapping[str, int],
                 input_budget: int, target_budget: int,
                 alphas: Sequence[float] = DEFAULT_ALPHAS,
                 generator: torch.Generator | None = None,
                 roles: Mapping[str, str] | None = None
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Input and target masks of a batch (see the module docstring).

    Args:
        available: modality -> ``(B,)`` bool, whether each sample has it.
        num_tokens: modality -> tokens of one clip.
        input_budget, target_budget: tokens per sample.
        alphas: Dirichlet concentrations (one drawn per sample and budget).
        generator: the source of randomness (None: a fresh one seeded 0).
        roles: modality -> ``both``, ``input`` or ``target`` (unlisted: ``both``; None: all
            ``both``).

    Returns:
        modality -> ``(input_mask (B, N), target_mask (B, N))`` bool, True = excluded.

    Raises:
        ValueError: negative budgets, non-positive alphas, or a role not in :data:`ROLES`.
    """
    if input_budget < 0 or target_budget < 0:
        raise ValueError(f"budgets must be >= 0, got {input_budget} and {target_budget}")
    if not alphas or any(a <= 0 for a in alphas):
        raise ValueError(f"alphas must be positive, got {list(alphas)}")
    roles = dict(roles or {})
    bad = {m: r for m, r in roles.items() if r not in ROLES}
    if bad:
        raise ValueError(f"roles must be one of {', '.join(ROLES)}; got {bad}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    mods = list(num_tokens)
    as_input = np.array([roles.get(m, "both") != "target" for m in mods], bool)
    as_target = np.array([roles.get(m, "both") != "input" for m in mods], bool)
    b = int(next(iter(available.values())).shape[0])
    counts = np.array([num_tokens[m] for m in mods], np.int64)
    masks = {m: (torch.ones(b, num_tokens[m], dtype=torch.bool),
                 torch.ones(b, num_tokens[m], dtype=torch.bool)) for m in mods}
    seeds = torch.randint(0, 2**62, (b,), generator=g).tolist()
    avail = np.stack([np.asarray(available[m], bool) if m in available else np.zeros(b, bool)
                      for m in mods], axis=1)
    for i in range(b):
        rng = np.random.default_rng(seeds[i])
        caps = np.where(avail[i], counts, 0)
        if not avail[i].any():
            continue
        shares: list[np.ndarray] = []
        for budget, side in ((input_budget, as_input), (target_budget, as_target)):
            alpha = float(alphas[rng.integers(len(alphas))])
            open_ = avail[i] & side       # all of avail[i] when every role is both
            k = int(open_.sum())
            w = np.zeros(len(mods))
            if k:
                w[open_] = rng.dirichlet(np.full(k, alpha)) if k > 1 else 1.0
            caps_now = np.where(side, caps if not shares else caps - shares[0], 0)
            shares.append(split_budget(budget, np.nan_to_num(w), caps_now))
        for j, m in enumerate(mods):
            if caps[j] == 0:
                continue
            perm = torch.from_numpy(rng.permutation(int(counts[j])))
            n_in, n_tg = int(shares[0][j]), int(shares[1][j])
            masks[m][0][i, perm[:n_in]] = False
            masks[m][1][i, perm[n_in:n_in + n_tg]] = False
    return masks


def make_mod_dict(tokens: Mapping[str, torch.Tensor], available: Mapping[str, torch.Tensor],
                  input_budget: int, target_budget: int,
                  alphas: Sequence[float] = DEFAULT_ALPHAS,
                  generator: torch.Generator | None = None,
                  roles: Mapping[str, str] | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """A training mod_dict of a batch of token ids.

    Args:
        tokens: modality -> ``(B, N)`` int64 ids (zeros where a sample lacks it).
        available: modality -> ``(B,)`` bool.
        input_budget, target_budget, alphas, generator, roles: as in :func:`sample_masks`.

    Returns:
        ``{m: {"tensor", "input_mask", "target_mask"}}`` (True = excluded).
    """
    masks = sample_masks(available, {m: int(t.shape[1]) for m, t in tokens.items()},
                         input_budget, target_budget, alphas, generator, roles)
    return {m: {"tensor": t, "input_mask": masks[m][0], "target_mask": masks[m][1]}
            for m, t in tokens.items()}
