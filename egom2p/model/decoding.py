"""Parallel decoding of target modalities: ROAR and MaskGIT, with classifier-free guidance.

A *schedule* is data: a list of steps (:class:`DecodeStep`, or plain dicts of its fields)
``{target, tokens, temperature, cfg_scale, scheme, top_p, cond}``. Step by step,
:func:`decode` predicts ``tokens`` more positions of ``target``, conditioned on the given
input modalities and on every token decoded so far (they join the encoder input):

- ``scheme="roar"`` (random-order autoregressive, EgoM2P's): the step's positions are the
  next ``tokens`` of a random order of the target's positions (one order per sample);
  only they are queried and all of them are kept;
- ``scheme="maskgit"``: every undecoded position is queried, and the ``tokens`` whose
  sampled id has the highest probability are kept.

Sampling: logits / ``temperature`` (0: greedy), nucleus (``top_p``), then one draw per
position from the caller's ``torch.Generator``. A factorized video head
(:meth:`~egosim.egom2p.model.transformer.EgoM2P.factor_logits`) defines a product of 6
FSQ-digit distributions; guidance and temperature keep that product form, and each digit
is drawn from its own nucleus (top-p per digit, not over the 64,000 joint ids).
Guidance: ``logits = u + cfg_scale (c - u)``, ``c`` the conditional logits, ``u`` those
of the same query with the modalities ``cond`` removed (None: all given input
modalities; tokens decoded so far stay); scale 1 skips the second pass. Every id is in
``[0, vocab)``; positions a schedule leaves undecoded are filled by one more step with the
last step's settings.

:data:`DEFAULT_SCHEDULES` are EgoM2P's (linear token counts, temperature 0.01, guidance
2.0, top-p 0.8): rgb -> camera 3 steps, rgb -> depth 3, rgb -> gaze 5, depth -> rgb 6,
and rgb + depth -> camera 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from .transformer import EgoM2P

__all__ = ["DEFAULT_SCHEDULES", "DecodeStep", "as_schedule", "decode", "decode_with_probs",
           "default_schedule", "linear_counts", "sample_logits"]


@dataclass(frozen=True)
class DecodeStep:
    """One decoding step (see the module docstring).

    Attributes:
        target: the modality decoded.
        tokens: positions decoded by this step (>= 1).
        temperature: sampling temperature (0: greedy).
        cfg_scale: guidance scale (1: none; 0: unconditional).
        scheme: ``"roar"`` or ``"maskgit"``.
        top_p: nucleus mass in ``(0, 1]``.
        cond: modalities removed for the unconditional pass (None: all input modalities).
    """

    target: str
    tokens: int
    temperature: float = 0.01
    cfg_scale: float = 2.0
    scheme: str = "roar"
    top_p: float = 0.8
    cond: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.tokens < 1:
            raise ValueError(f"decode step tokens must be >= 1, got {self.tokens}")
        if self.scheme not in ("roar", "maskgit"):
            raise ValueError(f"decode step scheme must be 'roar' or 'maskgit', got "
                             f"{self.scheme!r}")
        if self.temperature < 0:
            raise ValueError(f"decode step temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"decode step top_p must be in (0, 1], got {self.top_p}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecodeStep:
        """A step from a dict of its fields (unknown keys are errors naming them)."""
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"unknown decode step key(s) {', '.join(bad)}; known: "
                             f"{', '.join(sorted(known))}")
        d = dict(d)
        if d.get("cond") is not None:
            d["cond"] = tuple(d["cond"])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The step as plain data."""
        d = asdict(self)
        d["cond"] = list(self.cond) if self.cond is not None else None
        return d


def linear_counts(total: int, steps: int) -> list[int]:
    """``total`` tokens over ``steps`` steps, as even as integers allow (larger first)."""
    steps = max(1, min(steps, total))
    base, extra = divmod(total, steps)
    return [base + (1 if i < extra else 0) for i in range(steps)]


DEFAULT_SCHEDULES: dict[str, dict[str, Any]] = {
    "camera": {"inputs": ["rgb"], "target": "camera", "steps": 3},
    "depth": {"inputs": ["rgb"], "target": "depth", "steps": 3},
    "gaze": {"inputs": ["rgb"], "target": "gaze", "steps": 5},
    "rgb": {"inputs": ["depth"], "target": "rgb", "steps": 6},
    "camera_rgbd": {"inputs": ["rgb", "depth"], "target": "camera", "steps": 3},
}
"""Task -> input modalities, target and steps (EgoM2P's); :func:`default_schedule` turns one
into steps with linear token counts, temperature 0.01, guidance 2.0, top-p 0.8."""


def default_schedule(task: str, num_tokens: Mapping[str, int], scheme: str = "roar",
                     temperature: float = 0.01, cfg_scale: float = 2.0, top_p: float = 0.8
                     ) -> list[DecodeStep]:
    """The steps of task ``task`` of :data:`DEFAULT_SCHEDULES`.

    Args:
        task: a key of :data:`DEFAULT_SCHEDULES`.
        num_tokens: modality -> tokens of one clip (``model.num_tokens``).
        scheme, temperature, cfg_scale, top_p: the steps' settings.
    """
    if task not in DEFAULT_SCHEDULES:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(DEFAULT_SCHEDULES)}")
    spec = DEFAULT_SCHEDULES[task]
    target = spec["target"]
    return [DecodeStep(target, n, temperature, cfg_scale, scheme, top_p)
            for n in linear_counts(num_tokens[target], spec["steps"])]


def as_schedule(schedule: Sequence[DecodeStep | Mapping[str, Any]]) -> list[DecodeStep]:
    """A schedule of steps or dicts -> steps."""
    return [s if isinstance(s, DecodeStep) else DecodeStep.from_dict(s) for s in schedule]


def sample_logits(logits: torch.Tensor, temperature: float, top_p: float,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one id per row of ``logits`` ``(R, V)``.

    Returns:
        ``(ids (R,) int64 in [0, V), probability of each drawn id (R,))`` (the
        probabilities after temperature and nucleus truncation).
    """
    logits = torch.nan_to_num(logits.float(), nan=-1e30, posinf=1e30, neginf=-1e30)
    if temperature <= 0:
        ids = logits.argmax(-1)
        return ids, torch.ones_like(ids, dtype=torch.float32)
    probs = torch.softmax(logits / temperature, -1)
    if top_p < 1:
        # the nucleus is a prefix of the sorted probabilities: look in the top 256 first
        # and sort in full only the rows whose nucleus is longer (the same result)
        k = min(256, probs.shape[-1])
        sp, si = probs.topk(k, dim=-1)
        long_rows = (sp.sum(-1) < top_p).nonzero()[:, 0]
        keep = torch.zeros_like(probs)
        drop = sp.cumsum(-1) - sp > top_p   # keep the smallest prefix reaching top_p
        keep.scatter_(-1, si, sp.masked_fill(drop, 0.0))
        if long_rows.numel():
            fp, fi = probs[long_rows].sort(-1, descending=True)
            fdrop = fp.cumsum(-1) - fp > top_p
            keep[long_rows] = torch.zeros_like(fp).scatter_(-1, fi, fp.masked_fill(fdrop, 0.0))
        probs = keep
    probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-30)
    ids = torch.multinomial(probs, 1, generator=generator)[:, 0]
    return ids, probs.gather(-1, ids[:, None])[:, 0]


def _mod_dict(model: EgoM2P, inputs: Mapping[str, torch.Tensor],
              decoded: Mapping[str, tuple[torch.Tensor, torch.Tensor]], target: str,
              query: torch.Tensor, drop: Sequence[str] = ()) -> dict[str, dict[str, torch.Tensor]]:
    """A mod_dict: ``inputs`` fully visible (except the ``drop`` ones), the tokens decoded
    so far visible, and ``query`` ``(B, N)`` bool (True = queried) of ``target``."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for m, t in inputs.items():
        if m in drop or m in decoded:
            continue
        none = torch.zeros_like(t, dtype=torch.bool)
        out[m] = {"tensor": t, "input_mask": none, "target_mask": ~none}
    for m, (t, done) in decoded.items():
        q = query if m == target else torch.zeros_like(done)
        out[m] = {"tensor": t, "input_mask": ~done, "target_mask": ~q}
    del model
    return out


@torch.no_grad()
def decode(model: EgoM2P, inputs: Mapping[str, torch.Tensor],
           schedule: Sequence[DecodeStep | Mapping[str, Any]],
           generator: torch.Generator | None = None, chunk_rows: int = 256
           ) -> dict[str, torch.Tensor]:
    """Run a schedule.

    Args:
        model: the model (put in eval mode by the caller or not: it has no dropout).
        inputs: modality -> ``(B, N)`` int64 ids of the conditioning modalities.
        schedule: steps (:class:`DecodeStep` or dicts).
        generator: the randomness (positions' order and sampling); None: seed 0.
        chunk_rows: rows of logits sampled at once (bounds memory at ``chunk_rows x V``).

    Returns:
        target modality -> ``(B, N)`` int64 ids in ``[0, vocab)``.
    """
    return decode_with_probs(model, inputs, schedule, generator, chunk_rows,
                             keep_probs=False)[0]


@torch.no_grad()
def decode_with_probs(model: EgoM2P, inputs: Mapping[str, torch.Tensor],
                      schedule: Sequence[DecodeStep | Mapping[str, Any]],
                      generator: torch.Generator | None = None, chunk_rows: int = 256,
                      keep_probs: bool = True, guided_probs: bool = True
                      ) -> tuple[dict[str, torch.Tensor], dict[str, list[torch.Tensor]]]:
    """:func:`decode`, and each decoded position's predictive distribution.

    The distribution of a position is the softmax, at temperature 1 and without nucleus
    truncation, of the logits of the step that decoded it (conditioned on the inputs and
    on every token decoded before that step): the guided logits, or with ``guided_probs``
    False the conditional ones (the model's own distribution, before guidance mixes in
    the unconditional one); one ``(B, N, L_k)`` float32 tensor per factor of the head
    (:meth:`EgoM2P.factor_logits`: the 6 FSQ digits of a factorized video head, else one
    ``(B, N, vocab)``). A tokenizer's ``decode_expected`` turns them into the
    posterior-mean output. The drawn ids are the same either way.

    Args:
        keep_probs: False: return no distributions (``probs`` empty; :func:`decode`).
        guided_probs: whether the distributions are the guided (True) or the conditional
            logits' (False).
        model, inputs, schedule, generator, chunk_rows: as :func:`decode`.

    Returns:
        ``(ids, probs)``: target -> ``(B, N)`` int64 ids as :func:`decode` (the same draws),
        and target -> the list of per-factor distributions.
    """
    steps = as_schedule(schedule)
    if not steps:
        raise ValueError("empty decoding schedule")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    dev = next(model.parameters()).device
    inputs = {m: t.to(dev).long() for m, t in inputs.items()}
    if not inputs:
        raise ValueError("decode needs at least one input modality")
    b = next(iter(inputs.values())).shape[0]
    for m in {s.target for s in steps} | set(inputs):
        if m not in model.num_tokens:
            raise KeyError(f"modality {m!r} is not one of the model's "
                           f"{', '.join(model.num_tokens)}")
    gs = g if dev.type == "cpu" else torch.Generator(device=dev).manual_seed(
        int(torch.randint(0, 2**62, (1,), generator=g)))
    decoded: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    priority: dict[str, torch.Tensor] = {}
    dists: dict[str, list[torch.Tensor]] = {}
    for s in steps:
        if s.target in inputs:
            raise ValueError(f"decode target {s.target!r} is also an input")
        if s.target not in decoded:
            n = model.num_tokens[s.target]
            decoded[s.target] = (torch.zeros(b, n, dtype=torch.long, device=dev),
                                 torch.zeros(b, n, dtype=torch.bool, device=dev))
            priority[s.target] = torch.rand(b, n, generator=g).to(dev)
            if keep_probs:
                dists[s.target] = [torch.zeros(b, n, v, device=dev)
                                   for v in model.factor_sizes(s.target)]
    # fill what the schedule leaves undecoded with one more step
    left = {m: model.num_tokens[m] - sum(s.tokens for s in steps if s.target == m)
            for m in decoded}
    last = {s.target: s for s in steps}
    steps = steps + [replace(last[m], tokens=k) for m, k in left.items() if k > 0]
    for s in steps:
        tokens, done = decoded[s.target]
        remaining = int((~done[0]).sum())
        k = min(s.tokens, remaining)
        if k <= 0:
            continue
        pri = priority[s.target].masked_fill(done, float("inf"))
        if s.scheme == "roar":
            chosen = pri.topk(k, dim=1, largest=False).indices
            query = torch.zeros_like(done).scatter_(1, chosen, True)
        else:
            query = ~done
        cond_md = _mod_dict(model, inputs, decoded, s.target, query)
        hidden, idx, _ = model(cond_md)[s.target]
        uncond_hidden = None
        if s.cfg_scale != 1.0:
            drop = tuple(s.cond) if s.cond is not None else tuple(inputs)
            unc_md = _mod_dict(model, inputs, decoded, s.target, query, drop)
            uncond_hidden = model(unc_md)[s.target][0]
        flat = hidden.reshape(-1, hidden.shape[-1])
        uflat = uncond_hidden.reshape(-1, hidden.shape[-1]) if uncond_hidden is not None \
            else None
        ids_all, conf_all = [], []
        probs_all: list[list[torch.Tensor]] = []
        vocab = model.vocab[s.target]
        for r in range(0, flat.shape[0], chunk_rows):
            parts = cond_parts = model.factor_logits(s.target, flat[r:r + chunk_rows])
            if uflat is not None:
                uparts = model.factor_logits(s.target, uflat[r:r + chunk_rows])
                parts = [lu + s.cfg_scale * (lc - lu) for lc, lu in zip(parts, uparts,
                                                                        strict=True)]
            if keep_probs:
                probs_all.append([torch.softmax(lc, -1)
                                  for lc in (parts if guided_probs else cond_parts)])
            picks, conf = [], None
            for lc in parts:
                ids, p = sample_logits(lc, s.temperature, s.top_p, gs)
                picks.append(ids)
                conf = p if conf is None else conf * p
            ids_all.append(model.ids_from_factors(s.target, picks).clamp(0, vocab - 1))
            conf_all.append(conf)
        ids = torch.cat(ids_all).reshape(idx.shape)
        conf = torch.cat(conf_all).reshape(idx.shape)
        step_probs = [torch.cat([p[f] for p in probs_all]).reshape(*idx.shape, -1)
                      for f in range(len(probs_all[0]))] if keep_probs else []
        if s.scheme == "maskgit" and k < idx.shape[1]:
            keep = conf.topk(k, dim=1).indices
            idx = torch.gather(idx, 1, keep)
            ids = torch.gather(ids, 1, keep)
            step_probs = [torch.gather(p, 1, keep[..., None].expand(-1, -1, p.shape[-1]))
                          for p in step_probs]
        tokens = tokens.scatter(1, idx, ids)
        done = done.scatter(1, idx, True)
        decoded[s.target] = (tokens, done)
        for full, p in zip(dists.get(s.target, []), step_probs, strict=True):
            full.scatter_(1, idx[..., None].expand(-1, -1, p.shape[-1]), p)
    return {m: t for m, (t, _) in decoded.items()}, dists
