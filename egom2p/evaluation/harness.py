"""The evaluation harness: clips, methods, per-clip scores, aggregation and the runner.

See the package docstring (:mod:`egosim.egom2p.evaluation`) for the protocol, the method
table, the result layout and the user-model protocol. The pieces:

* :func:`make_clip_groups` -- the held-out clips, by :class:`~egosim.egom2p.clips.
  ClipBuilder`: group ``apartments`` and group ``unseen``.
* :func:`resolve_train_stats` -- the trivial baselines' training means.
* :class:`Method` and :func:`builtin_methods`, :func:`egom2p_methods`,
  :func:`user_methods` -- what is compared; any ``clip -> output`` callable fits.
* :func:`evaluate_methods` -- every method on every clip, timed; :func:`score` the metrics
  of one output.
* :func:`run` -- ``egosim egom2p eval``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egosim.egom2p.eval_config import EVAL_TASKS, EvalConfig, looks_like_callable
from egosim.egom2p.evaluation.baselines import (
    CenterGaze,
    MeanDepth,
    MeanFrame,
    MeanGaze,
    MeanTrajectory,
    MonoVO,
    OpenCVRgbd,
    TrainStats,
    ZeroMotion,
    compute_train_stats,
    load_train_stats,
    save_train_stats,
)
from egosim.egom2p.evaluation.table import (
    HIGHER_IS_BETTER,
    METRICS,
    PRIMARY_GROUP,
    SCALE_METRICS,
    UNSEEN_GROUP,
    format_markdown,
    jsonable,
    metric_key,
    plot_results,
)

__all__ = ["COMMON_INPUTS", "HIGHER_IS_BETTER", "METRICS", "PRIMARY_GROUP", "SCALE_METRICS",
           "TASK_INPUTS", "UNSEEN_GROUP", "EvalResult", "Method", "builtin_methods",
           "egom2p_methods", "evaluate_methods", "expected_shape", "load_callable",
           "make_clip_groups", "metric_key", "resolve_train_stats", "run", "score",
           "user_methods"]

Clip = Mapping[str, Any]

#: The clip keys a method of each task is given (besides :data:`COMMON_INPUTS`).
TASK_INPUTS: dict[str, tuple[str, ...]] = {
    "camera": ("rgb",), "depth": ("rgb",), "gaze": ("rgb",), "rgb": ("depth",)}
#: Clip keys every method is given.
COMMON_INPUTS: tuple[str, ...] = ("intrinsics", "video_times", "pose_times")
#: Exceptions that tell the probe a user callable does not do a task.
_NOT_THIS_TASK = (TypeError, NotImplementedError, KeyError)


@dataclass
class Method:
    """One compared method.

    Attributes:
        name: its key in the results (``egom2p``, ``opencv_rgbd``, ...).
        task: ``camera``, ``depth``, ``gaze`` or ``rgb``.
        fn: ``clip -> output`` (shapes: :func:`expected_shape`).
        inputs: clip keys it is given besides :data:`COMMON_INPUTS` (default: the task's
            :data:`TASK_INPUTS`).
        scale_free: its trajectories have no metric scale (its :data:`SCALE_METRICS` are
            marked, not ranked).
    """

    name: str
    task: str
    fn: Callable[[Clip], Any]
    inputs: tuple[str, ...] | None = None
    scale_free: bool = False

    def __post_init__(self) -> None:
        if self.task not in EVAL_TASKS:
            raise ValueError(f"method {self.name!r}: task must be one of "
                             f"{', '.join(EVAL_TASKS)}, got {self.task!r}")
        if self.inputs is None:
            self.inputs = TASK_INPUTS[self.task]


@dataclass
class EvalResult:
    """What :func:`evaluate_methods` found.

    Attributes:
        results: ``{task: {method: {metric: value}}}`` (see :func:`metric_key`); means over
            the clips where a figure is defined (not NaN).
        per_clip: ``{task: {method: {group: {metric: [value per clip]}}}}``.
        steps: ``{task: {method: {group: (failed, total)}}}`` frame-to-frame steps of the
            methods that count them (``failures`` and ``steps`` attributes and ``reset()``:
            the odometries).
    """

    results: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    per_clip: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = field(
        default_factory=dict)
    steps: dict[str, dict[str, dict[str, tuple[int, int]]]] = field(default_factory=dict)


def expected_shape(task: str, clip: Clip) -> tuple[int, ...]:
    """The output shape of ``task`` for ``clip``: camera ``(T, 4, 4)``, depth ``(K, S, S)``,
    gaze ``(T, 2)``, rgb ``(K, S, S, 3)`` (``T`` pose samples, ``K`` video frames)."""
    t = int(np.asarray(clip["pose_times"]).shape[0])
    k = int(np.asarray(clip["video_times"]).shape[0])
    if task == "camera":
        return (t, 4, 4)
    if task == "gaze":
        return (t, 2)
    size = tuple(np.asarray(clip["depth"] if "depth" in clip else clip["rgb"]).shape[1:3])
    return (k, *size) if task == "depth" else (k, *size, 3)


def _inputs(clip: Clip, keys: Sequence[str]) -> dict[str, Any]:
    """The clip restricted to ``keys`` and :data:`COMMON_INPUTS`, arrays read-only views."""
    out: dict[str, Any] = {}
    for k in (*keys, *COMMON_INPUTS):
        v = np.asarray(clip[k]).view()
        v.flags.writeable = False
        out[k] = v
    return out


def score(task: str, clip: Clip, output: Any) -> dict[str, float]:
    """The metrics of one output against the clip's ground truth.

    camera: EgoM2P's rotation-only ATE, the Sim(3) ATE (m), RTE (m) and RRE (deg) of the
    1-frame (1/30 s) relative poses, against ``clip["camera"]``; depth: AbsRel and
    delta1 (fraction) after the per-clip least-squares scale and shift over the valid
    pixels of ``clip["depth"]``; gaze: the mean L2 distance over ``clip["gaze_valid"]``
    samples ([-1, 1] units); rgb: PSNR (dB) and SSIM against ``clip["rgb"]``.
    (:mod:`egosim.egom2p.metrics` computes them.)

    Raises:
        ValueError: ``output`` does not have :func:`expected_shape` (or rgb is not uint8).
    """
    from egosim.egom2p import metrics as m

    out = np.asarray(output)
    want = expected_shape(task, clip)
    if out.shape != want:
        raise ValueError(f"a {task} output must have shape {want}, got {out.shape}")
    if task == "camera":
        gt = np.asarray(clip["camera"], np.float64)
        pred = out.astype(np.float64)
        rte, rre = m.relative_pose_errors(gt, pred)
        return {"ate": float(m.ate(gt, pred)), "ate_sim3": float(m.ate_sim3(gt, pred)),
                "rte": float(rte), "rre": float(rre)}
    if task == "depth":
        abs_rel, d1 = m.depth_errors(clip["depth"], out.astype(np.float64))
        return {"abs_rel": float(abs_rel), "delta1": float(d1)}
    if task == "gaze":
        return {"l2": float(m.gaze_l2(clip["gaze"], out, clip["gaze_valid"]))}
    if out.dtype != np.uint8:
        raise ValueError(f"an rgb output must be uint8, got {out.dtype}")
    return {"psnr": float(m.video_psnr(clip["rgb"], out)),
            "ssim": float(m.video_ssim(clip["rgb"], out))}


def evaluate_methods(groups: Mapping[str, Sequence[Clip]], methods: Sequence[Method],
                     progress: bool = False, warmup: bool = True) -> EvalResult:
    """Run every method on every clip of every group; time and score each output.

    ``seconds_per_clip`` is the wall time of the method's call alone (inputs prepared,
    metrics not counted), after one untimed warm-up call of each method on the first clip
    (``warmup``: lazy loading, such as a model's tokenizers, is not a per-clip cost; a
    method's ``reset()``, if it has one, is called after it). A figure's mean is over the
    clips where it is defined (not NaN, which a clip without valid pixels or gaze samples
    gets; a perfect clip's PSNR is inf); ``clips`` counts the clips where the task's first
    metric is.

    Args:
        groups: group name -> clips (:data:`PRIMARY_GROUP` gets plain metric names).
        methods: the methods (names unique per task).
        progress: a tqdm bar over (clip, method) calls, on stderr.
        warmup: make the untimed warm-up calls.

    Returns:
        an :class:`EvalResult`; tasks and methods in the order of ``methods``.

    Raises:
        ValueError: two methods of one task share a name, or a method's output is wrong
            (the message names the method).
    """
    from tqdm import tqdm

    seen: set[tuple[str, str]] = set()
    for meth in methods:
        if (meth.task, meth.name) in seen:
            raise ValueError(f"two {meth.task} methods are named {meth.name!r}")
        seen.add((meth.task, meth.name))
    res = EvalResult()
    for meth in methods:
        res.per_clip.setdefault(meth.task, {})[meth.name] = {}
    total = sum(len(c) for c in groups.values()) * len(methods)
    bar = tqdm(total=total, desc="egom2p eval", unit="call", disable=not progress,
               file=sys.stderr)
    try:
        first = next((c[0] for c in groups.values() if c), None)
        for meth in methods if warmup and first is not None else ():
            meth.fn(_inputs(first, meth.inputs or ()))  # one-time loading is not timed
            reset = getattr(meth.fn, "reset", None)
            if callable(reset):
                reset()
        for group, clips in groups.items():
            for meth in methods:
                rows: dict[str, list[float]] = {k: [] for k in METRICS[meth.task]}
                rows["seconds_per_clip"] = []
                counts = callable(getattr(meth.fn, "reset", None)) and hasattr(
                    meth.fn, "failures")
                if counts:
                    meth.fn.reset()  # type: ignore[attr-defined]
                for clip in clips:
                    given = _inputs(clip, meth.inputs or ())
                    t0 = time.perf_counter()
                    out = meth.fn(given)
                    rows["seconds_per_clip"].append(time.perf_counter() - t0)
                    try:
                        values = score(meth.task, clip, out)
                    except ValueError as exc:
                        raise ValueError(f"method {meth.name!r} ({meth.task}): {exc}") from None
                    for k, v in values.items():
                        rows[k].append(v)
                    bar.update(1)
                res.per_clip[meth.task][meth.name][group] = rows
                if counts:
                    res.steps.setdefault(meth.task, {}).setdefault(meth.name, {})[group] = (
                        int(meth.fn.failures), int(meth.fn.steps))  # type: ignore[attr-defined]
    finally:
        bar.close()
    for task, by_method in res.per_clip.items():
        table = res.results.setdefault(task, {})
        for name, by_group in by_method.items():
            row = table.setdefault(name, {})
            for group, rows in by_group.items():
                for k, vals in rows.items():
                    a = np.asarray(vals, np.float64)
                    ok = ~np.isnan(a)
                    row[metric_key(k, group)] = float(a[ok].mean()) if ok.any() else float("nan")
                first = np.asarray(rows[METRICS[task][0]], np.float64)
                row[metric_key("clips", group)] = int((~np.isnan(first)).sum())
    return res


# -- clips and training means -----------------------------------------------------------


def _clip_config(cfg: EvalConfig) -> Any:
    from egosim.egom2p.clips import resolve_clip_config

    clip_cfg = resolve_clip_config(cfg.clip_config, {**cfg.clip_overrides,
                                                     "video_size": cfg.video_size})
    lo, hi = clip_cfg.scene.seed_range
    if cfg.scene_seeds[0] < hi and lo < cfg.scene_seeds[1]:
        raise ValueError(f"scene_seeds {list(cfg.scene_seeds)} overlap the training seeds "
                         f"[{lo}, {hi}) of clip config {cfg.clip_config!r} (config key "
                         "scene_seeds)")
    return clip_cfg


def _take(builder: Any, count: int, bar: Any) -> list[dict[str, Any]]:
    out = []
    try:
        for _ in range(count):
            out.append(builder.next_clip())
            bar.update(1)
    finally:
        builder.close()
    return out


def make_clip_groups(cfg: EvalConfig, progress: bool = False) -> dict[str, list[dict]]:
    """The held-out clips: ``{"apartments": [...], "unseen": [...]}``.

    ``apartments``: ``cfg.clips`` clips of procedural apartments with seeds in
    ``scene_seeds`` (builder worker 1). ``unseen``: ``cfg.clips`` clips split evenly over
    ``cfg.scenes`` (the first scenes get the remainder; scene ``i`` from worker ``2 + i``),
    absent when ``scenes`` is empty. Every builder runs the clip config (``clip_config``,
    ``clip_overrides``, ``video_size``) under base seed ``cfg.seed``, so the clips are a pure
    function of the config.
    """
    from tqdm import tqdm

    from egosim.egom2p.clips import ClipBuilder

    clip_cfg = _clip_config(cfg)
    bar = tqdm(total=cfg.clips * (2 if cfg.scenes else 1), desc="held-out clips",
               unit="clip", disable=not progress, file=sys.stderr)
    try:
        groups: dict[str, list[dict]] = {}
        apt = ClipBuilder(clip_cfg, {"scene.specs": ["procedural:apartment"],
                                     "scene.seed_range": list(cfg.scene_seeds)},
                          seed=cfg.seed, worker=1, threads=cfg.threads)
        groups[PRIMARY_GROUP] = _take(apt, cfg.clips, bar)
        if cfg.scenes:
            n = len(cfg.scenes)
            counts = [cfg.clips // n + (i < cfg.clips % n) for i in range(n)]
            unseen: list[dict] = []
            for i, (spec, count) in enumerate(zip(cfg.scenes, counts, strict=True)):
                if count:
                    b = ClipBuilder(clip_cfg, {"scene.specs": [spec]}, seed=cfg.seed,
                                    worker=2 + i, threads=cfg.threads)
                    unseen.extend(_take(b, count, bar))
            groups[UNSEEN_GROUP] = unseen
    finally:
        bar.close()
    return groups


def _cache_clips(folder: Path, count: int) -> list[dict[str, np.ndarray]]:
    root = folder / "train" if (folder / "train").is_dir() else folder
    files = sorted(root.glob("clip_*.npz"))[:count]
    if len(files) < count:
        raise ValueError(f"train_stats folder {str(root)!r} holds {len(files)} clip files, "
                         f"train_clips asks for {count} (config keys train_stats, train_clips)")
    keys = ("camera", "depth", "rgb", "gaze", "gaze_valid")
    out = []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            out.append({k: z[k] for k in keys})
    return out


def resolve_train_stats(cfg: EvalConfig, progress: bool = False) -> TrainStats:
    """The trivial baselines' training means, as ``cfg.train_stats`` says.

    null: :func:`~.baselines.compute_train_stats` of ``train_clips`` clips made now by a
    :class:`~egosim.egom2p.clips.ClipBuilder` of the clip config as it is (its training
    scene seeds), base seed ``cfg.seed``, worker 0. A folder: its first ``train_clips``
    ``clip_*.npz`` files (of ``folder/train`` when there is one: the tokenizers' clip
    cache, ``runs/egom2p/clip_cache``). A file: an ``.npz`` of
    :func:`~.baselines.save_train_stats` (what this command writes to
    ``output_dir/train_stats.npz``).

    Raises:
        ValueError: the means' frame size is not ``video_size``, or the source is unusable
            (the message names the key).
    """
    from tqdm import tqdm

    from egosim.egom2p.clips import ClipBuilder

    if cfg.train_stats is None:
        clip_cfg = _clip_config(cfg)
        builder = ClipBuilder(clip_cfg, seed=cfg.seed, worker=0, threads=cfg.threads)
        bar = tqdm(total=cfg.train_clips, desc="training clips (means)", unit="clip",
                   disable=not progress, file=sys.stderr)
        try:
            clips = _take(builder, cfg.train_clips, bar)
        finally:
            bar.close()
        lo, hi = clip_cfg.scene.seed_range
        stats = compute_train_stats(clips, f"{cfg.train_clips} stream clips of clip config "
                                    f"{cfg.clip_config!r}, scene seeds [{lo}, {hi}), seed "
                                    f"{cfg.seed}")
    else:
        path = Path(cfg.train_stats)
        if path.is_dir():
            stats = compute_train_stats(_cache_clips(path, cfg.train_clips),
                                        f"{cfg.train_clips} clips of {str(path)!r}")
        else:
            stats = load_train_stats(path)
    if stats.video_size != cfg.video_size:
        raise ValueError(f"train_stats {cfg.train_stats!r} has {stats.video_size}-pixel "
                         f"means, video_size is {cfg.video_size} (config key train_stats)")
    return stats


# -- methods ----------------------------------------------------------------------------


def builtin_methods(cfg: EvalConfig, stats: TrainStats) -> list[Method]:
    """The classical methods and trivial baselines of ``cfg.tasks`` (the table of
    :mod:`egosim.egom2p.evaluation.baselines`)."""
    o, v = cfg.rgbd_odometry, cfg.mono_vo
    rows = [
        Method("opencv_rgbd", "camera", OpenCVRgbd(
            max_translation_m=o.max_translation_m, max_rotation_deg=o.max_rotation_deg,
            max_depth_diff_m=o.max_depth_diff_m), OpenCVRgbd.inputs),
        Method("mono_vo", "camera", MonoVO(
            upscale=v.upscale, features=v.features, min_inliers=v.min_inliers,
            ransac_threshold_px=v.ransac_threshold_px), MonoVO.inputs, scale_free=True),
        Method("zero_motion", "camera", ZeroMotion(), ()),
        Method("mean_trajectory", "camera", MeanTrajectory(stats), ()),
        Method("mean_depth", "depth", MeanDepth(stats), ()),
        Method("center", "gaze", CenterGaze(), ()),
        Method("mean_gaze", "gaze", MeanGaze(stats), ()),
        Method("mean_frame", "rgb", MeanFrame(stats), ()),
    ]
    return [m for m in rows if m.task in cfg.tasks]


def _egom2p_api() -> tuple[Callable[..., Any], Callable[..., Any]]:
    api = importlib.import_module("egosim.egom2p")
    return api.load_model, api.predict


def egom2p_methods(cfg: EvalConfig, user_model: bool = False
                   ) -> tuple[list[Method], dict[str, dict[str, str]]]:
    """EgoM2P's rows (``egosim.egom2p.load_model`` / ``predict``) and the specialist's.

    ``egom2p`` for each task (``predict(model, clip, task)``) and ``egom2p_rgbd`` for the
    camera (``predict(model, clip, "camera_rgbd")``, given RGB and depth); ``specialist``
    (depth) from ``cfg.specialist``. Rows that cannot run come back as skipped, with the
    reason: no model API or shipped checkpoint (``model: null``), ``model`` a user's
    callable (``user_model``: no EgoM2P rows, and no specialist unless a path is
    given), ``specialist: null``, or ``shipped`` when none is shipped.

    Returns:
        ``(methods, skipped)``; ``skipped`` is ``{task: {method: reason}}``.

    Raises:
        ValueError: a checkpoint named by ``model`` or ``specialist`` cannot be loaded
            (names the key).
    """
    skipped: dict[str, dict[str, str]] = {}
    out: list[Method] = []
    names = {"camera": ("egom2p", "egom2p_rgbd"), "depth": ("egom2p",), "gaze": ("egom2p",),
             "rgb": ("egom2p",)}
    reason = ""
    try:
        load_model, predict = _egom2p_api()
    except (ImportError, AttributeError) as exc:
        load_model = predict = None
        reason = f"the EgoM2P model API is not available ({type(exc).__name__}: {exc})"
    model = None
    if user_model:
        reason = f"model is the user method {cfg.model!r}"
    elif load_model is not None:
        try:
            model = load_model(cfg.model)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            if cfg.model is not None:
                raise ValueError(f"model {cfg.model!r} cannot be loaded (config key model): "
                                 f"{exc}") from None
            reason = f"the shipped EgoM2P model cannot be loaded ({type(exc).__name__}: {exc})"
    elif cfg.model is not None:
        raise ValueError(f"model {cfg.model!r}: {reason} (config key model)")
    for task in cfg.tasks:
        for name in names[task]:
            if model is None:
                skipped.setdefault(task, {})[name] = reason
                continue
            mode = "camera_rgbd" if name == "egom2p_rgbd" else task
            inputs = ("rgb", "depth") if mode == "camera_rgbd" else TASK_INPUTS[task]
            out.append(Method(name, task, _bound(predict, model, mode), inputs))
    if "depth" in cfg.tasks:
        shipped = cfg.specialist == "shipped"
        path = shipped_specialist() if shipped else cfg.specialist
        if cfg.specialist is None:
            skipped.setdefault("depth", {})["specialist"] = (
                "no specialist checkpoint given (config key specialist)")
        elif shipped and user_model:
            skipped.setdefault("depth", {})["specialist"] = (
                f"model is the user method {cfg.model!r}; name a specialist checkpoint to "
                "compare with (config key specialist)")
        elif shipped and not Path(path).is_file():
            skipped.setdefault("depth", {})["specialist"] = (
                f"no shipped specialist at {path} (config key specialist)")
        elif load_model is None:
            raise ValueError(f"specialist {cfg.specialist!r}: the EgoM2P model API is not "
                             "available (config key specialist)")
        else:
            try:
                spec = load_model(path)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise ValueError(f"specialist {cfg.specialist!r} cannot be loaded (config "
                                 f"key specialist): {exc}") from None
            out.append(Method("specialist", "depth", _bound(predict, spec, "depth")))
    return out, skipped


def shipped_specialist() -> Path:
    """Path of the shipped rgb -> depth specialist (``egom2p/model/checkpoints``)."""
    from egosim.egom2p.model.inference import checkpoint_dir

    return checkpoint_dir() / "depth_specialist.pt"


def _bound(predict: Callable[..., Any], model: Any, task: str) -> Callable[[Clip], Any]:
    def call(clip: Clip) -> Any:
        return predict(model, clip, task)

    call.__name__ = f"predict_{task}"
    return call


def load_callable(path: str, key: str = "model") -> Callable[..., Any]:
    """The callable at ``'package.module:attribute'`` (imported by name).

    Raises:
        ValueError: not such a path, the module or attribute does not exist, or it is not
            callable (names the config key).
    """
    from egosim.config import import_callable

    return import_callable(path, key)


def _takes_task(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` accepts ``(clip, task)`` positionally."""
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): one argument
        return False
    return True


def user_methods(fn: Callable[..., Any], probe: Clip, tasks: Sequence[str],
                 taken: Sequence[str] = ()) -> tuple[list[Method], dict[str, dict[str, str]]]:
    """Methods of a user's callable (the protocol of :mod:`egosim.egom2p.evaluation`).

    Its key is ``fn.name`` when set (a string), else ``"user"``. It is called ``fn(clip,
    task)`` when it takes two positional arguments, else ``fn(clip)``, with the task's
    inputs only. ``fn.tasks`` (if set) lists the tasks it does; else each of ``tasks`` is
    tried once on ``probe`` and skipped when the call raises TypeError,
    NotImplementedError or KeyError (an input it needs is not given for that task) or
    returns another shape than the task's.

    Args:
        fn: the callable.
        probe: a clip (with ground truth) to try tasks on.
        tasks: the tasks evaluated.
        taken: method names already used (the key must differ).

    Returns:
        ``(methods, skipped)``, ``skipped`` as ``{task: {name: reason}}``.

    Raises:
        ValueError: ``fn.tasks`` or ``fn.name`` is malformed, the name is taken, or the
            callable does none of ``tasks`` (all name config key ``model``).
    """
    name = getattr(fn, "name", None)
    name = "user" if name is None else name
    if not isinstance(name, str) or not name or any(c.isspace() or c in "|@`" for c in name):
        raise ValueError(f"the user model's name attribute must be a non-empty string "
                         f"without spaces, '|', '@' or '`'; got {name!r} (config key model)")
    if name in taken:
        raise ValueError(f"the user model's name {name!r} is a built-in method's; set "
                         f"its name attribute to another (config key model)")
    declared = getattr(fn, "tasks", None)
    if declared is not None:
        if isinstance(declared, str) or not all(t in EVAL_TASKS for t in declared):
            raise ValueError(f"the user model's tasks attribute must be a tuple of "
                             f"{', '.join(EVAL_TASKS)}; got {declared!r} (config key model)")
    two = _takes_task(fn)

    def bound(task: str) -> Callable[[Clip], Any]:
        def call(clip: Clip) -> Any:
            return fn(clip, task) if two else fn(clip)

        return call

    methods: list[Method] = []
    skipped: dict[str, dict[str, str]] = {}
    for task in tasks:
        if declared is not None:
            if task in declared:
                methods.append(Method(name, task, bound(task)))
            else:
                skipped.setdefault(task, {})[name] = "not in its tasks attribute"
            continue
        call = bound(task)
        try:
            out = call(_inputs(probe, TASK_INPUTS[task]))
        except _NOT_THIS_TASK as exc:
            skipped.setdefault(task, {})[name] = f"{type(exc).__name__}: {exc}"
            continue
        shape = np.shape(out)
        want = expected_shape(task, probe)
        if shape != want:
            skipped.setdefault(task, {})[name] = f"returns shape {shape}, not {want}"
            continue
        methods.append(Method(name, task, call))
    if not methods:
        raise ValueError(f"the user model does none of the tasks {', '.join(tasks)} "
                         f"({json.dumps(skipped)}) (config key model)")
    return methods, skipped


# -- the runner -------------------------------------------------------------------------


def _set_threads(n: int) -> None:
    import cv2
    import torch

    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def _notes(methods: Sequence[Method], found: EvalResult, stats: TrainStats,
           cfg: EvalConfig) -> dict[str, list[str]]:
    notes: dict[str, list[str]] = {}
    for m in methods:
        if m.scale_free:
            notes.setdefault(m.task, []).append(
                f"{m.name}: monocular, unit-length steps, no metric scale: its ate and rte "
                "(marked †) are not comparable; its figure is ate_sim3")
        by_group = found.steps.get(m.task, {}).get(m.name)
        if by_group:
            parts = ", ".join(f"{g} {f} of {n}" for g, (f, n) in by_group.items())
            notes.setdefault(m.task, []).append(
                f"{m.name}: failed frame-to-frame steps (counted as no motion): {parts}")
    means = ("training means (mean_trajectory, mean_depth, mean_gaze, mean_frame): "
             f"{stats.source}")
    for task in cfg.tasks:
        notes.setdefault(task, []).append(means)
    if "rgb" in cfg.tasks:
        notes["rgb"].append("FVD and LPIPS need pretrained network weights (I3D, AlexNet/VGG) "
                            "not available here; they are not reported")
    return notes


def run(cfg: EvalConfig, methods: Sequence[Method] = ()) -> dict[str, dict[str, dict[str,
                                                                                  float]]]:
    """``egosim egom2p eval``: evaluate, write ``output_dir/{table.md, table.png,
    results.json, train_stats.npz}`` (atomically), print the Markdown table and, with
    ``json``, the results as one JSON object on the last stdout line.

    Args:
        cfg: the config.
        methods: more methods to compare (injected; e.g. from code rather than ``model``).

    Returns:
        the results ``{task: {method: {metric: value}}}`` (layout: the package docstring).

    Raises:
        ValueError: a bad model, specialist or train_stats source (names the key), or a
            method whose output is wrong (names the method).
    """
    from egosim.atomic_io import write_json, write_text
    from egosim.config import dump_config

    _set_threads(cfg.threads)
    t_start = time.perf_counter()
    user_fn = None
    if cfg.model is not None and looks_like_callable(cfg.model) and not Path(cfg.model).exists():
        user_fn = load_callable(cfg.model)
    model_methods, skipped = egom2p_methods(cfg, user_model=user_fn is not None)
    groups = make_clip_groups(cfg, cfg.progress)
    stats = resolve_train_stats(cfg, cfg.progress)
    builtin = builtin_methods(cfg, stats)
    compared = [*model_methods, *builtin, *methods]
    if user_fn is not None:
        taken = [m.name for m in compared]
        found, user_skipped = user_methods(user_fn, groups[PRIMARY_GROUP][0], cfg.tasks, taken)
        compared = [*found, *compared]
        for task, rows in user_skipped.items():
            skipped.setdefault(task, {}).update(rows)
    order = {t: i for i, t in enumerate(EVAL_TASKS)}
    compared = sorted(compared, key=lambda m: order[m.task])  # stable: model rows first
    compared = [m for m in compared if m.task in cfg.tasks]
    found_res = evaluate_methods(groups, compared, cfg.progress)
    results = found_res.results
    notes = _notes(compared, found_res, stats, cfg)
    counts = {g: len(c) for g, c in groups.items()}
    scale_free = {m.name for m in compared if m.scale_free}
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = format_markdown(results, counts, skipped, notes, scale_free, cfg)
    write_text(out / "table.md", table)
    plot_results(results, out / "table.png", counts, scale_free)
    save_train_stats(out / "train_stats.npz", stats)
    write_json(out / "results.json", jsonable({
        "results": results, "skipped": skipped, "notes": notes, "clips": counts,
        "scenes": {g: sorted({c["meta"]["scene_spec"] + (
            f"#{c['meta']['scene_seed']}" if c["meta"]["scene_seed"] >= 0 else "")
            for c in clips}) for g, clips in groups.items()},
        "per_clip": found_res.per_clip, "steps": found_res.steps,
        "train_stats": stats.source,
        "seconds": time.perf_counter() - t_start,
        "config": dump_config(cfg, mode="json", by_alias=True)}), indent=1)
    print(table)
    if cfg.print_json:
        print(json.dumps(jsonable(results)))
    return results
