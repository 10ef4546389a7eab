"""EgoM2P tokenizers: round-trip figures on held-out clips beside trivial baselines.

For each shipped tokenizer (or the checkpoints of ``--folder``) it measures the round trip
``decode(encode(clip))`` on the held-out clips of the clip cache (the ones the model cards
report: other stream seeds, unseen procedural scenes) and prints each figure beside its
baseline (:mod:`egosim.egom2p.tokenizers.evaluate`: the clip's mean frame for video, every
4th pose / gaze sample linearly interpolated for sequences) and the target. The cache is
built on first use (about 3 minutes for the default 64 held-out and training clips on two
CPU cores); ``--synthetic`` uses synthetic clips instead (shape check only, the figures then
mean little). Also prints encode and decode throughput (clips/s, one thread).

    python benchmarks/bench_tokenizers.py
    python benchmarks/bench_tokenizers.py --only rgb depth --clips 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from egosim.config import load_config
from egosim.egom2p import tokenizers
from egosim.egom2p.tokenizer_config import TrainTokenizerConfig
from egosim.egom2p.tokenizers.clip_data import KEYS, load_cache, synthetic_clips
from egosim.egom2p.tokenizers.evaluate import evaluate


def _speed(tok: tokenizers.Tokenizer, batch: dict, repeats: int = 3) -> tuple[float, float]:
    """(encode, decode) clips per second on ``batch``."""
    n = len(next(iter(batch.values())))
    ids = tok.encode(batch)
    t0 = time.perf_counter()
    for _ in range(repeats):
        ids = tok.encode(batch)
    t1 = time.perf_counter()
    for _ in range(repeats):
        tok.decode(ids)
    t2 = time.perf_counter()
    return n * repeats / (t1 - t0), n * repeats / (t2 - t1)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=list(tokenizers.TOKENIZERS),
                        help="tokenizers to measure")
    parser.add_argument("--folder", type=Path, default=None,
                        help="folder of <name>.pt checkpoints (default: the shipped ones)")
    parser.add_argument("--clips", type=int, default=None,
                        help="held-out clips to use (default: the config's)")
    parser.add_argument("--synthetic", action="store_true", help="synthetic clips")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides of configs/egom2p_tokenizer.yaml (data.*)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config("egom2p_tokenizer", args.overrides, schema=TrainTokenizerConfig)
    data = cfg.data
    if args.clips is not None:
        data = data.model_copy(update={"holdout_clips": min(args.clips, data.holdout_clips)})
    if not args.synthetic:
        from egosim.egom2p.tokenizers.clip_data import build_cache

        build_cache(data.model_copy(update={"holdout_clips": cfg.data.holdout_clips}))
    results: dict[str, dict] = {}
    print(f"{'tokenizer':<9} {'figure':<20} {'tokenizer':>10} {'baseline':>10}  target")
    for name in args.only:
        path = args.folder / f"{name}.pt" if args.folder else None
        tok = tokenizers.load(name, path)
        if args.synthetic:
            clips = synthetic_clips(data.holdout_clips, data.video_size, data.video_size,
                                    data.seed + 1, KEYS[name])
        else:
            clips = load_cache(data, "holdout", KEYS[name])
        m = evaluate(tok, clips, cfg.eval_batch)
        enc, dec = _speed(tok, clips.batch(range(min(8, len(clips)))))
        m["encode_clips_per_s"], m["decode_clips_per_s"] = enc, dec
        results[name] = m
        targets = {t["key"]: t for t in m["targets"]}
        for key, value in m["tokenizer"].items():
            base = m["baseline"].get(key)
            t = targets.get(key)
            goal = (f"{t['op']} {t['value']:g} ({'reached' if t['reached'] else 'missed'})"
                    if t else "")
            base_s = f"{base:10.4f}" if base is not None else f"{'-':>10}"
            print(f"{name:<9} {key:<20} {value:10.4f} {base_s}  {goal}")
        print(f"{name:<9} {'clips/s enc/dec':<20} {enc:10.1f} {dec:10.1f}  "
              f"({m['clips']} held-out clips)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
