"""Benchmark: one motion-prior transition for a batch of humans, on the CPU.

A transition = C-VAE decoding of one primitive (18 new frames) + regressing an SMPL-X body for
every new frame (3 refinement iterations) + the 50/50 blend; then all 10,475 vertices of every
new body. The vertices are computed three ways, side by side in one run:

* ``smplx``: ``smplx.SMPLX.forward`` per human (dense skinning, pose correctives, the reference);
* ``previous``: the block-sparse ``BodyLayer.vertices`` that this repository used before
  the earlier markers-only speed-up (reproduced below; it left pose correctives out);
* ``new``: :class:`egosim.envs.humans.sequence_skinning.SparseSkinning` through
  ``MotionPrior.vertices`` (shaped rest mesh once per human, sparse skinning, correctives
  when the model has them).

Prints ms, primitives/s and body frames/s per part and per total (step + vertices), the
speed-up of the new path, and the largest vertex difference to smplx, for batch 64 and batch 1.
The new path is timed three ways: round-robin with the others (a fresh 145 MB output per call
at batch 64, which follows the multi-GB smplx path and so pays fresh page faults), back to
back (as a rollout loop calls it), and round-robin into one reused output buffer
(``MotionPrior.vertices(out, buffer=...)``).
Uses the shipped checkpoints when present, else randomly initialised models of the same size
(same cost).

    python benchmarks/bench_motion_prior.py [--threads 2] [--repeats 5] [--smplx-repeats 1]
        [--clock wall|cpu]

``--clock cpu`` times with the process's CPU time (all threads, user + system) instead of the
wall clock: on a shared, busy machine that, with ``--threads 1``, still estimates what one
core of a quiet machine does.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch


def _prior():
    from egosim.envs.motion.body_layer import BodyLayer
    from egosim.envs.motion.canonical_markers import MarkerJoints
    from egosim.envs.motion.cvae import MarkerCVAE
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


class PreviousVertices:
    """The block-sparse ``BodyLayer.vertices`` used before the fix (baseline only).

    Vertices are grouped by the joint with their largest weight; each group's blended
    transforms are ``weights (n_g, |U_g|) @ transforms (|U_g|, 12 n)``; the shaped rest
    vertices are recomputed for every body; no pose correctives.
    """

    def __init__(self, body, models) -> None:
        self.body = body
        self.blocks, self.template, self.dirs, self.inverse = [], [], [], []
        for m in models:
            w = m.lbs_weights
            main = w.argmax(1)
            order = torch.argsort(main, stable=True)
            inverse = torch.empty_like(order)
            inverse[order] = torch.arange(order.numel())
            sorted_main = main[order]
            groups = []
            for j in torch.unique(sorted_main).tolist():
                idx = torch.nonzero(sorted_main == j).squeeze(1)
                start, stop = int(idx[0]), int(idx[-1]) + 1
                wg = w[order[start:stop]]
                used = torch.nonzero((wg != 0).any(0)).squeeze(1)
                groups.append((start, stop, used, wg[:, used].contiguous()))
            v = w.shape[0]
            self.blocks.append(groups)
            self.template.append(m.v_template[order])
            self.dirs.append(m.shapedirs[order][..., :body.num_betas].reshape(v * 3, -1))
            self.inverse.append(inverse)

    @torch.no_grad()
    def __call__(self, out, chunk: int = 64) -> torch.Tensor:
        from smplx.lbs import batch_rigid_transform

        from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

        b, t = out.transl.shape[:2]
        pose = torch.cat([out.global_orient[:, :, None], out.body_pose.reshape(b, t, 21, 3)], 2)
        rot = axis_angle_to_matrix(pose.reshape(b * t, 22, 3))
        betas = out.betas.repeat_interleave(t, 0)
        gender = out.gender.repeat_interleave(t, 0)
        transl = out.transl.reshape(b * t, 3)
        # the smplx chain, one product per joint, as before the fix
        full = torch.cat([rot, self.body.const_rot[gender]], 1)
        _, rel = batch_rigid_transform(full, self.body.rest_joints(betas, gender),
                                       self.body.parents, dtype=rot.dtype)
        nv = self.template[0].shape[0]
        res = torch.empty(b * t, nv, 3)
        s = betas.shape[1]
        for gi in torch.unique(gender).tolist():
            sel_all = torch.nonzero(gender == gi).squeeze(1)
            for c in range(0, sel_all.numel(), chunk):
                sel = sel_all[c:c + chunk]
                n = sel.numel()
                a = rel[sel, :, :3, :].permute(1, 2, 3, 0).reshape(rel.shape[1], 12 * n)
                tf = torch.empty(nv, 12 * n)
                for start, stop, used, w in self.blocks[gi]:
                    torch.mm(w, a[used], out=tf[start:stop])
                tf = tf.view(nv, 3, 4, n)
                v = (self.dirs[gi][:, :s] @ betas[sel].T).view(nv, 3, n)
                v = v + self.template[gi][:, :, None]
                posed = (tf[:, :, 3] + tf[:, :, 0] * v[:, 0:1] + tf[:, :, 1] * v[:, 1:2]
                         + tf[:, :, 2] * v[:, 2:3])
                posed = posed.permute(2, 0, 1)[:, self.inverse[gi]]
                res[sel] = posed + transl[sel, None]
        return res.reshape(b, t, nv, 3)


class SmplxVertices:
    """Vertices by ``smplx.SMPLX.forward``, one call per human (all its frames)."""

    def __init__(self, models) -> None:
        self.models = models  # BodyModel per gender index

    @torch.no_grad()
    def __call__(self, out) -> torch.Tensor:
        b, t = out.transl.shape[:2]
        res = []
        for i in range(b):
            m = self.models[int(out.gender[i])]
            res.append(m(betas=out.betas[i:i + 1].expand(t, -1),
                         global_orient=out.global_orient[i], body_pose=out.body_pose[i],
                         transl=out.transl[i]).vertices)
        return torch.stack(res)


def _time_interleaved(fns: dict[str, Callable[[], object]], repeats: dict[str, int],
                      clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """Median seconds per call of each function, timed round-robin.

    Round ``i`` calls every function with more than ``i`` repeats once, so that all paths see
    the same machine load (this benchmark is meant for a shared 2-core machine, where load
    drifts over seconds); the ratios within one run are what count.
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(max(repeats.values())):
        for k, fn in fns.items():
            if i < repeats[k]:
                t = clock()
                fn()
                times[k].append(clock() - t)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


@torch.no_grad()
def bench(batch: int, repeats: int, smplx_repeats: int, prior, previous: PreviousVertices,
          reference: SmplxVertices, clock: Callable[[], float] = time.perf_counter
          ) -> dict[str, float]:
    from egosim.envs.motion.canonical_markers import to_canonical

    state, _ = prior.reset(batch, seed=0)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, prior.latent_dim, generator=g)
    origin, rot = prior.marker_joints.frame(state.history[:, 0])
    hist = to_canonical(state.history, origin, rot)
    fut = prior.decode(hist, z)
    _, out = prior.step(state, z)
    f = out.transl.shape[1]
    betas = out.betas.repeat_interleave(f, 0)
    gender = out.gender.repeat_interleave(f, 0)

    # correctness (and warm-up of every path): the same vertices as smplx
    ref_v = reference(out)
    r = {"frames": batch * f,
         "err_new": float((prior.vertices(out) - ref_v).abs().max()),
         "err_previous": float((previous(out) - ref_v).abs().max())}
    del ref_v
    buffer = torch.empty(batch, f, prior.body.skinning.num_vertices, 3)  # reused output
    fns = {"decode": lambda: prior.decode(hist, z),
           "regress": lambda: prior.regress(fut.reshape(-1, 67, 3), betas, gender),
           "step": lambda: prior.step(state, z),
           "v_smplx": lambda: reference(out),
           "v_previous": lambda: previous(out),
           "v_new": lambda: prior.vertices(out),
           "t_smplx": lambda: reference(prior.step(state, z)[1]),
           "t_previous": lambda: previous(prior.step(state, z)[1]),
           "t_new": lambda: prior.vertices(prior.step(state, z)[1]),
           "t_new_buffer": lambda: prior.vertices(prior.step(state, z)[1], buffer=buffer)}
    for k in ("decode", "regress", "step"):
        fns[k]()
    reps = {k: smplx_repeats if "smplx" in k else repeats for k in fns}
    r.update(_time_interleaved(fns, reps, clock))
    # steady state, as in a simulation loop: the new path alone, back to back (interleaving
    # with the multi-GB smplx path makes every following call pay fresh page faults)
    steady = []
    for _ in range(repeats + 1):
        t = clock()
        fns["t_new"]()
        steady.append(clock() - t)
    r["t_new_steady"] = sorted(steady[1:])[len(steady[1:]) // 2]
    return r


def main() -> None:
    from egosim.envs.humans import BodyModel
    from egosim.envs.humans.model_files import GENDERS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smplx-repeats", type=int, default=1,
                    help="timed repeats of the (slow) smplx reference path")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 1])
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall clock, or the process's CPU time (see the module docstring)")
    args = ap.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    prior, source = _prior()
    models = [BodyModel(g) for g in GENDERS]
    previous = PreviousVertices(prior.body, [m.smplx for m in models])
    reference = SmplxVertices(models)
    print(f"motion prior transition on {args.threads} CPU thread(s), {source}; "
          f"pose correctives {'present' if prior.body.has_posedirs else 'all zero'}; "
          f"{args.clock} clock")
    print(f"{'batch':>5} {'part':<44} {'ms':>9} {'primitives/s':>13} {'body frames/s':>14}")
    results = {}
    for b in args.batches:
        r = results[b] = bench(b, args.repeats, args.smplx_repeats, prior, previous, reference,
                               clock)
        rows = [("decode (C-VAE)", r["decode"]), ("regress (3 iterations)", r["regress"]),
                ("step (decode+regress+blend)", r["step"]),
                ("vertices: smplx.SMPLX forward", r["v_smplx"]),
                ("vertices: previous BodyLayer (block-sparse)", r["v_previous"]),
                ("vertices: new SparseSkinning", r["v_new"]),
                ("total: step + smplx vertices", r["t_smplx"]),
                ("total: step + previous vertices", r["t_previous"]),
                ("total: step + new vertices", r["t_new"]),
                ("total: step + new vertices, back to back", r["t_new_steady"]),
                ("total: step + new vertices, reused buffer", r["t_new_buffer"])]
        for name, t in rows:
            print(f"{b:>5} {name:<44} {1e3 * t:>9.1f} {b / t:>13.1f} {r['frames'] / t:>14.0f}")
    print("\nside by side (total = step + all vertices of the 18 new frames):")
    print(f"{'batch':>5} {'smplx prim/s':>13} {'previous prim/s':>16} {'new prim/s':>11} "
          f"{'new frames/s':>13} {'new/smplx':>10} {'new/prev':>9} {'vertices new/prev':>18} "
          f"{'max|new-smplx| m':>17} {'new back to back prim/s':>24} "
          f"{'new reused buffer prim/s':>25}")
    for b, r in results.items():
        print(f"{b:>5} {b / r['t_smplx']:>13.1f} {b / r['t_previous']:>16.1f} "
              f"{b / r['t_new']:>11.1f} {r['frames'] / r['t_new']:>13.0f} "
              f"{r['t_smplx'] / r['t_new']:>9.1f}x {r['t_previous'] / r['t_new']:>8.1f}x "
              f"{r['v_previous'] / r['v_new']:>17.1f}x {r['err_new']:>17.1e} "
              f"{b / r['t_new_steady']:>24.1f} {b / r['t_new_buffer']:>25.1f}")
    errs = ", ".join(f"batch {b}: {r['err_previous']:.1e} m" for b, r in results.items())
    print(f"previous path vs smplx, largest vertex difference: {errs}")
    print("body frames = 18 new frames per primitive; target: >= 200 primitives/s "
          "(4,000 body frames/s) at batch 64, step + vertices")


if __name__ == "__main__":
    main()
