"""Benchmark: one motion-prior transition for a batch of humans, on the CPU.

A transition = C-VAE decoding of one primitive (18 new frames) + regressing an SMPL-X body for
every new frame (3 refinement iterations) + the 50/50 blend + all 10,475 vertices of every new
body (block-sparse linear blend skinning, :meth:`BodyLayer.vertices`). Prints primitives/s and body
frames/s for each part and the total, for batch 64 and batch 1. Uses the shipped checkpoints
when present, else randomly initialised models of the same size (same cost).

    python benchmarks/bench_motion_prior.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch


def _prior():
    from egosim.envs.motion.body_layer import BodyLayer
    from egosim.envs.motion.cvae import MarkerCVAE
    from egosim.envs.motion.marker_frame import MarkerJoints
    from egosim.envs.motion.prior import MotionPrior
    from egosim.envs.motion.regressor import MarkerRegressor

    try:
        return MotionPrior.load(), "shipped checkpoints"
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        seeds = {"history": torch.randn(4, 2, 67, 3, generator=g) * 0.3,
                 "height": torch.full((4,), 0.9), "betas": torch.zeros(4, 10),
                 "gender": torch.zeros(4, dtype=torch.long)}
        w = torch.full((3, 67), 1.0 / 67)
        return MotionPrior(MarkerCVAE(), MarkerRegressor(body=BodyLayer()), MarkerJoints(w),
                           seeds), "random weights (no shipped checkpoints)"


def _time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def bench(batch: int, repeats: int, prior) -> dict[str, float]:
    from egosim.envs.motion.marker_frame import to_canonical
    from egosim.envs.motion.rotations import axis_angle_to_matrix

    state, _ = prior.reset(batch, seed=0)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, prior.latent_dim, generator=g)
    origin, rot = prior.marker_joints.frame(state.history[:, 0])
    hist = to_canonical(state.history, origin, rot)
    fut = prior.decode(hist, z)
    _, out = prior.step(state, z)
    f = out.transl.shape[1]
    pose = torch.cat([out.global_orient[:, :, None], out.body_pose.reshape(batch, f, 21, 3)], 2)
    rmat = axis_angle_to_matrix(pose.reshape(-1, 22, 3))
    betas = out.betas.repeat_interleave(f, 0)
    gender = out.gender.repeat_interleave(f, 0)
    transl = out.transl.reshape(-1, 3)

    t_dec = _time(lambda: prior.decode(hist, z), repeats)
    t_reg = _time(lambda: prior.regress(fut.reshape(-1, 67, 3), betas, gender), repeats)
    t_vert = _time(lambda: prior.body.vertices(rmat, betas, gender, transl), repeats)
    t_step = _time(lambda: prior.step(state, z), repeats)
    t_all = _time(lambda: prior.vertices(prior.step(state, z)[1]), repeats)
    frames = batch * f
    return {"decode": t_dec, "regress": t_reg, "vertices": t_vert, "step": t_step,
            "total": t_all, "frames": frames}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 1])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    prior, source = _prior()
    print(f"motion prior transition on {args.threads} CPU thread(s), {source}")
    print(f"{'batch':>5} {'part':<30} {'ms':>9} {'primitives/s':>13} {'body frames/s':>14}")
    for b in args.batches:
        r = bench(b, args.repeats, prior)
        rows = [("decode (C-VAE)", r["decode"]), ("regress (3 iterations)", r["regress"]),
                ("vertices (10,475 per body)", r["vertices"]),
                ("step (decode+regress+blend)", r["step"]),
                ("total (step + vertices)", r["total"])]
        for name, t in rows:
            print(f"{b:>5} {name:<30} {1e3 * t:>9.1f} {b / t:>13.1f} {r['frames'] / t:>14.0f}")
    print("body frames = 18 new frames per primitive; target (issue 4): >= 200 primitives/s "
          "at batch 64")


if __name__ == "__main__":
    main()
