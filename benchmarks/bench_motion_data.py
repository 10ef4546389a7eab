"""Motion data benchmark: retargeting, foot clean-up figures and the default dataset build.

Prints, per shipped DeepMimic clip: retarget time and foot-contact statistics before/after the
clean-up (foot height at contact, skating of the lowest foot marker); then the build time and
size of the default primitive dataset (built afresh, not from the cache).

Usage: ``python benchmarks/bench_motion_data.py [--quick]`` (``--quick``: walk and run only,
no dataset build).
"""

from __future__ import annotations

import sys
import tempfile
import time


def main(argv: list[str]) -> int:
    from egosim.envs.motion.primitive_dataset import DEFAULT_CLIPS, build_primitive_dataset
    from egosim.envs.motion.retarget import retarget_named

    quick = "--quick" in argv
    names = ["walk", "run"] if quick else list(DEFAULT_CLIPS)
    retarget_named("walk")  # load the body model outside the timings
    print(f"{'clip':<10} {'frames':>6} {'ms':>7} {'h_contact before/after (cm)':>28} "
          f"{'skating before/after (m/s)':>27}")
    for name in names:
        t0 = time.perf_counter()
        clip, rep = retarget_named(name, cycles=DEFAULT_CLIPS.get(name, 1))
        ms = 1e3 * (time.perf_counter() - t0)
        b, a = rep.before, rep.after
        print(f"{name:<10} {clip.num_frames:>6} {ms:>7.0f} "
              f"{100 * b.foot_height_at_contact:>13.1f} / {100 * a.foot_height_at_contact:<12.1f} "
              f"{b.skating_speed:>12.3f} / {a.skating_speed:<12.3f}")
    if quick:
        return 0
    t0 = time.perf_counter()
    ds = build_primitive_dataset(progress=False)
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        import os

        path = ds.save(os.path.join(tmp, "prims.npz"))
        size = os.path.getsize(path) / 2**20
    fc = ds.card["foot_contact_stats"]
    print(f"\ndefault dataset: {len(ds)} primitives from {ds.card['num_sequences']} sequences x "
          f"{ds.card['config']['num_shapes']} bodies, built in {seconds:.1f} s, "
          f"{size:.1f} MiB compressed")
    print(f"  foot height at contact {100 * fc['foot_height_at_contact_mean']:.1f} cm, "
          f"skating {fc['skating_speed_mean']:.3f} m/s (median {fc['skating_speed_median']:.3f}),"
          f" pelvis height {fc['pelvis_height_min']:.2f}-{fc['pelvis_height_max']:.2f} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
