"""``egosim egom2p eval``: EgoM2P beside classical methods and trivial baselines, same clips.

**Protocol.** Held-out clips come from :class:`egosim.egom2p.clips.ClipBuilder` with the clip
config (``clip_config``, ``clip_overrides``, ``video_size``) under base seed ``seed``: group
``apartments``, ``clips`` clips of procedural apartments with scene seeds in ``scene_seeds``
(default [1000, 1200), disjoint from the training seeds [0, 200)); group ``unseen``,
``clips`` clips split evenly over ``scenes`` (default ``pybullet:samurai``,
``pybullet:stadium``: scenes no training clip saw). The same clips go to every method.
Each method is a callable ``clip -> output`` and sees only its task's inputs (below) plus
``intrinsics``, ``video_times`` and ``pose_times``, never the targets; its call is timed
(``seconds_per_clip``, one clip at a time, ``threads`` CPU threads).

=======  ===============  ==================  ========================================
task     inputs           output              metrics (:mod:`egosim.egom2p.metrics`)
=======  ===============  ==================  ========================================
camera   rgb              ``(60, 4, 4)``      ``ate`` (EgoM2P's rotation-only ATE, m),
                          canonical cam-to-   ``ate_sim3`` (after Umeyama Sim(3), m),
                          world, OpenCV axes  ``rte`` (m), ``rre`` (deg), 1/30 s steps
depth    rgb              ``(16, S, S)``      ``abs_rel``, ``delta1`` (fraction) after
                          depth (any affine   the per-clip least-squares scale and shift,
                          unit)               over the valid pixels
gaze     rgb              ``(60, 2)`` in      ``l2``: mean distance over the valid
                          [-1, 1]             samples ([-1, 1] units)
rgb      depth            ``(16, S, S, 3)``   ``psnr`` (dB), ``ssim``
                          uint8
=======  ===============  ==================  ========================================

FVD and LPIPS are not reported: both need pretrained network weights (an I3D video
classifier; AlexNet/VGG features) that are not available here, and a stand-in network
would give numbers not comparable to the published ones.

**Methods.**

* camera: ``egom2p`` (``egosim.egom2p.predict(model, clip, "camera")``), ``egom2p_rgbd``
  (``"camera_rgbd"``, given RGB and depth), ``opencv_rgbd`` (OpenCV RGB-D odometry over the
  16 frames with the clip's depth and intrinsics, metric), ``mono_vo`` (ORB + essential
  matrix, unit-length steps: no scale, so its figure is ``ate_sim3``; its ``ate`` and
  ``rte`` are marked † and not ranked), ``zero_motion`` (identities), ``mean_trajectory``
  (the mean canonical training trajectory). The odometries' 16 poses are interpolated to
  the 60 pose times (slerp, linear translations, the last interval continued past the last
  frame: :func:`~.odometry.interpolate_poses`).
* depth: ``egom2p``, ``specialist`` (a same-size single-task RGB -> depth model from the
  checkpoint ``specialist``; skipped, with a note, when null), ``mean_depth``.
* gaze: ``egom2p``, ``center`` (always (0, 0)), ``mean_gaze`` (the mean training gaze point).
* rgb: ``egom2p``, ``mean_frame`` (the mean training frame).

``model: null`` loads the shipped EgoM2P model (``egosim.egom2p.load_model()``); when
the model API or its checkpoint is not there, the ``egom2p`` rows are skipped with the
reason in the table. A checkpoint path loads that checkpoint (failing names the key).
The training means come from ``train_clips`` clips of the training distribution
(:func:`~.harness.resolve_train_stats`).

**User models.** ``model=my_pkg.depth:predict`` (any importable ``module:callable``)
evaluates a callable in the EgoM2P rows' place, beside the baselines:

* it is called ``predict(clip)`` -- or ``predict(clip, task)`` when it takes two
  positional arguments -- with a dict of the task's inputs (read-only numpy arrays, the
  clip layout of :mod:`egosim.egom2p.clips`), and returns the task's output (table above);
* ``predict.tasks = ("depth",)`` (optional) declares the tasks it does; without it each
  task is tried once on the first clip and skipped when the call raises ``TypeError``,
  ``NotImplementedError`` or ``KeyError`` (an input it needs is not given to that task)
  or returns another shape;
* ``predict.name = "my_depth"`` (optional) is its key in the results (default ``user``).

From code, :func:`run` also takes injected :class:`~.harness.Method` objects.

**Results.** :func:`run` returns, writes to ``output_dir/results.json`` (with the
skipped methods, notes, per-clip values and the config) and, with ``json: true``, prints on
the last stdout line the object ``{task: {method: {metric: value}}}``: the metric names
above plus ``seconds_per_clip`` and ``clips`` are the mean over the ``apartments`` clips;
the same names with ``@unseen`` (``ate@unseen``, ``seconds_per_clip@unseen``, ...) are the
unseen scenes'. Skipped methods are absent (never a made-up number); non-finite values are
null. ``output_dir`` also gets ``table.md`` (the printed tables), ``table.png`` (bars) and
``train_stats.npz`` (the training means, reusable as ``train_stats=...``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "run": "harness",
    "Method": "harness",
    "evaluate_methods": "harness",
    "make_clip_groups": "harness",
    "score": "harness",
    "interpolate_poses": "odometry",
    "mono_vo": "odometry",
    "rgbd_odometry": "odometry",
    "TrainStats": "baselines",
    "compute_train_stats": "baselines",
    "format_markdown": "table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
