"""Benchmark of the EgoM2P model: training steps per second of each size on synthetic tokens.

Plain script; for ``tiny`` and ``small`` at the CPU config's budgets (``--budgets``, default
128 input + 128 target tokens, batch ``--batch``) it times full optimiser steps (masks,
forward, backward, clip, AdamW) on random token ids of the 64 x 64 layout and prints steps/s
and clips/s. For ``base`` (EgoM2P's 12 + 12 x 768, 256 x 256 video, budgets 2048 + 2048) it
times one forward + backward of a batch of 1, if the machine has the memory
(``--no-base`` skips it). Runs on ``--device`` (cpu, cuda), ``--threads`` torch threads.

    python benchmarks/bench_model.py [--threads 1] [--steps 10] [--batch 16]
"""

from __future__ import annotations

import argparse
import time

import torch


def _batch(model, b: int, inp: int, tgt: int, seed: int, device: torch.device):
    from egosim.egom2p.model.masking import make_mod_dict

    g = torch.Generator().manual_seed(seed)
    tokens = {m: torch.randint(0, model.vocab[m], (b, n), generator=g)
              for m, n in model.num_tokens.items()}
    avail = {m: torch.ones(b, dtype=torch.bool) for m in tokens}
    md = make_mod_dict(tokens, avail, inp, tgt, generator=g)
    return {m: {k: v.to(device) for k, v in e.items()} for m, e in md.items()}


def _bench_train(size: str, steps: int, b: int, inp: int, tgt: int, head: str,
                 device: torch.device) -> tuple[int, float]:
    from egosim.egom2p.model.transformer import SIZES, Architecture, EgoM2P

    torch.manual_seed(0)
    model = EgoM2P(Architecture(**SIZES[size], video_head=head)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = [_batch(model, b, inp, tgt, s, device) for s in range(min(steps, 4))]

    def step(i: int) -> None:
        loss, _ = model.loss(batches[i % len(batches)])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step(0)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model.num_parameters(), (time.perf_counter() - t0) / steps


def _bench_base(device: torch.device, head: str) -> tuple[int, float]:
    from egosim.egom2p.model.transformer import SIZES, Architecture, EgoM2P

    model = EgoM2P(Architecture(**SIZES["base"], video_size=(256, 256),
                                video_head=head)).to(device)
    md = _batch(model, 1, 2048, 2048, 0, device)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with amp:
        loss, _ = model.loss(md)
    loss.backward()  # warm-up
    model.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with amp:
        loss, _ = model.loss(md)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model.num_parameters(), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--budgets", type=int, nargs=2, default=(128, 128),
                    metavar=("INPUT", "TARGET"))
    ap.add_argument("--head", choices=("factorized", "full"), default="factorized")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-base", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    inp, tgt = args.budgets
    print(f"EgoM2P training steps on {device} ({args.threads} threads), synthetic tokens, "
          f"batch {args.batch}, budgets {inp} + {tgt}, video head {args.head}")
    print(f"{'size':>6} {'params':>12} {'s/step':>8} {'steps/s':>8} {'clips/s':>8}")
    for size in ("tiny", "small"):
        n, sec = _bench_train(size, args.steps, args.batch, inp, tgt, args.head, device)
        print(f"{size:>6} {n:>12,} {sec:>8.3f} {1 / sec:>8.2f} {args.batch / sec:>8.1f}")
    if not args.no_base:
        try:
            n, sec = _bench_base(device, "full")
            print(f"{'base':>6} {n:>12,} forward + backward of 1 clip (256 px, budgets "
                  f"2048 + 2048, full head): {sec:.2f} s")
        except (RuntimeError, MemoryError) as exc:  # out of memory
            print(f"  base: skipped ({type(exc).__name__}: {str(exc)[:80]})")


if __name__ == "__main__":
    main()
