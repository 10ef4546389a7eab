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
plain scheme.

**Task masks** (optional, ``tasks=[(inputs, target), ...]`` and ``task_fraction=p > 0``; off
by default, EgoM2P trains with the Dirichlet scheme alone): each sample is, with probability
``p``, a sample of one of ``tasks`` drawn uniformly among those whose modalities it has
(and whose roles allow): the input budget is spread evenly over the task's input
modalities, the target budget goes to the task's target modality only. These are the masks
the decoding schedules meet at inference (e.g. all of rgb in, camera out), which the
Dirichlet draws rarely make (they mostly ask for tokens of a modality already in the
input); the shipped CPU model, trained on ~1/1000 of EgoM2P's budget, spends half its
samples on them. A sample with no usable task falls back to the Dirichlet draw. With
``p = 0`` no extra random draw is made, so the masks are bit-identical to the plain
scheme's.

The result is a 4M mod_dict (True = excluded). A sample whose available tokens are fewer
than the budgets gets all it has. Everything is drawn from one
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
                 roles: Mapping[str, str] | None = None,
                 tasks: Sequence[tuple[Sequence[str], str]] = (),
                 task_fraction: float = 0.0
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
        tasks: ``(input modalities, target modality)`` pairs of the task masks (module
            docstring); modalities not in ``num_tokens`` make a task unusable.
        task_fraction: probability in ``[0, 1]`` that a sample gets a task mask.

    Returns:
        modality -> ``(input_mask (B, N), target_mask (B, N))`` bool, True = excluded.

    Raises:
        ValueError: negative budgets, non-positive alphas, a role not in :data:`ROLES`, a
            ``task_fraction`` outside ``[0, 1]`` or a task whose target is among its inputs.
    """
    if input_budget < 0 or target_budget < 0:
        raise ValueError(f"budgets must be >= 0, got {input_budget} and {target_budget}")
    if not alphas or any(a <= 0 for a in alphas):
        raise ValueError(f"alphas must be positive, got {list(alphas)}")
    roles = dict(roles or {})
    bad = {m: r for m, r in roles.items() if r not in ROLES}
    if bad:
        raise ValueError(f"roles must be one of {', '.join(ROLES)}; got {bad}")
    if not 0.0 <= task_fraction <= 1.0:
        raise ValueError(f"task_fraction must be in [0, 1], got {task_fraction}")
    for inputs, target in tasks:
        if target in inputs or not inputs:
            raise ValueError(f"a task needs inputs without its target, got {list(inputs)} -> "
                             f"{target!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    mods = list(num_tokens)
    task_rows = [(np.array([m in inputs for m in mods]), np.array([m == target for m in mods]))
                 for inputs, target in tasks
                 if target in num_tokens and all(m in num_tokens for m in inputs)]
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
        task = None
        if task_fraction > 0 and task_rows and rng.random() < task_fraction:
            usable = [(ins, tg) for ins, tg in task_rows
                      if avail[i][ins | tg].all() and as_input[ins].all() and as_target[tg].all()]
            if usable:
                task = usable[int(rng.integers(len(usable)))]
        sides = ((as_input, as_target) if task is None else task)
        shares: list[np.ndarray] = []
        for budget, side in zip((input_budget, target_budget), sides, strict=True):
            if task is None:                  # the Dirichlet split
                alpha = float(alphas[rng.integers(len(alphas))])
                open_ = avail[i] & side       # all of avail[i] when every role is both
                k = int(open_.sum())
                w = np.zeros(len(mods))
                if k:
                    w[open_] = rng.dirichlet(np.full(k, alpha)) if k > 1 else 1.0
            else:                             # a task: even over its inputs / its target
                w = side.astype(np.float64)
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
                  roles: Mapping[str, str] | None = None,
                  tasks: Sequence[tuple[Sequence[str], str]] = (),
                  task_fraction: float = 0.0) -> dict[str, dict[str, torch.Tensor]]:
    """A training mod_dict of a batch of token ids.

    Args:
        tokens: modality -> ``(B, N)`` int64 ids (zeros where a sample lacks it).
        available: modality -> ``(B,)`` bool.
        input_budget, target_budget, alphas, generator, roles, tasks, task_fraction: as in
            :func:`sample_masks`.

    Returns:
        ``{m: {"tensor", "input_mask", "target_mask"}}`` (True = excluded).
    """
    masks = sample_masks(available, {m: int(t.shape[1]) for m, t in tokens.items()},
                         input_budget, target_budget, alphas, generator, roles, tasks,
                         task_fraction)
    return {m: {"tensor": t, "input_mask": masks[m][0], "target_mask": masks[m][1]}
            for m, t in tokens.items()}
