"""The evaluation's outputs: the paper-style Markdown table, the bar-chart PNG, strict JSON.

:func:`format_markdown` writes one table per task: a row per method, the metric columns of
the held-out apartments, then the same metrics on the unseen scenes (``<metric>@unseen``),
then seconds per clip; the best value of each metric column is bold (lower is better,
except delta1, PSNR and SSIM; scale-free methods are not ranked on the scale-dependent
camera metrics, marked †). Skipped methods get a row of dashes and their reason below the
table, with the task's notes. :func:`plot_results` draws one bar panel per task metric,
a bar per method and group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HIGHER_IS_BETTER", "LABELS", "METRICS", "PRIMARY_GROUP", "SCALE_METRICS",
           "TASK_TITLES", "UNSEEN_GROUP", "format_markdown", "jsonable", "metric_key",
           "plot_results"]

#: Metric keys per task, in table order (every method also gets ``seconds_per_clip`` and
#: ``clips``, the number of clips its figures average).
METRICS: dict[str, tuple[str, ...]] = {
    "camera": ("ate", "ate_sim3", "rte", "rre"),
    "depth": ("abs_rel", "delta1"),
    "gaze": ("l2",),
    "rgb": ("psnr", "ssim"),
}
#: Metrics where higher is better (lower for the others).
HIGHER_IS_BETTER: frozenset[str] = frozenset({"delta1", "psnr", "ssim"})
#: Camera metrics that depend on the trajectory's scale (meaningless without metric scale).
SCALE_METRICS: frozenset[str] = frozenset({"ate", "rte"})
#: The group whose metrics carry plain names; other groups' are ``<metric>@<group>``.
PRIMARY_GROUP = "apartments"
#: The group of the unseen scenes.
UNSEEN_GROUP = "unseen"


def metric_key(metric: str, group: str) -> str:
    """The result key of ``metric`` in ``group``: the plain name in :data:`PRIMARY_GROUP`,
    ``<metric>@<group>`` elsewhere (``ate@unseen``)."""
    return metric if group == PRIMARY_GROUP else f"{metric}@{group}"

#: Column labels of the metrics.
LABELS: dict[str, str] = {
    "ate": "ATE (m)", "ate_sim3": "Sim(3) ATE (m)", "rte": "RTE (m)", "rre": "RRE (°)",
    "abs_rel": "AbsRel", "delta1": "δ1.25", "l2": "gaze L2", "psnr": "PSNR (dB)",
    "ssim": "SSIM", "seconds_per_clip": "s / clip",
}
#: Section titles of the tasks.
TASK_TITLES: dict[str, str] = {
    "camera": "Camera tracking (RGB video -> 60 camera poses)",
    "depth": "Video depth (RGB video -> 16 depth maps; per-clip scale and shift)",
    "gaze": "Gaze (RGB video -> 60 gaze points, [-1, 1] image units)",
    "rgb": "Depth -> RGB video synthesis",
}
_DIGITS = {"rre": 2, "psnr": 2}
Results = Mapping[str, Mapping[str, Mapping[str, float]]]


def jsonable(x: Any) -> Any:
    """``x`` with non-finite floats as None and numpy scalars as Python numbers (strict
    JSON), recursively through dicts, lists and tuples."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _fmt(metric: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if metric == "seconds_per_clip":
        return f"{value:.3g}"
    return f"{value:.{_DIGITS.get(metric, 3)}f}"


def _best(rows: Mapping[str, Mapping[str, float]], key: str, metric: str,
          exclude: set[str]) -> float | None:
    vals = [r[key] for name, r in rows.items()
            if name not in exclude and key in r and math.isfinite(r[key])]
    if not vals:
        return None
    return max(vals) if metric in HIGHER_IS_BETTER else min(vals)


def format_markdown(results: Results, counts: Mapping[str, int],
                    skipped: Mapping[str, Mapping[str, str]],
                    notes: Mapping[str, Sequence[str]], scale_free: set[str],
                    cfg: Any = None) -> str:
    """The Markdown tables (see the module docstring).

    Args:
        results: ``{task: {method: {metric: value}}}``.
        counts: group name -> clips (in column order; :data:`PRIMARY_GROUP` first).
        skipped: ``{task: {method: reason}}``.
        notes: ``{task: [text, ...]}`` printed under the task's table.
        scale_free: methods without metric scale.
        cfg: the :class:`~egosim.egom2p.eval_config.EvalConfig` (for the header), or None.
    """
    groups = list(counts)
    lines = ["# EgoM2P evaluation", ""]
    if cfg is not None:
        others = sum(v for g, v in counts.items() if g != PRIMARY_GROUP)
        unseen = (f" and {others} of unseen scenes ({', '.join(cfg.scenes)}; the columns "
                  "marked unseen)" if others else "")
        lines += [f"Held-out clips: {counts.get(PRIMARY_GROUP, 0)} of procedural apartments "
                  f"(scene seeds [{cfg.scene_seeds[0]}, {cfg.scene_seeds[1]}), disjoint from "
                  f"training){unseen}; {cfg.video_size} x {cfg.video_size} px, seed "
                  f"{cfg.seed}, {cfg.threads} CPU thread(s). Best per column in bold; lower "
                  "is better except δ1.25, PSNR and SSIM.", ""]
    for task in METRICS:
        rows = results.get(task, {})
        skip = skipped.get(task, {})
        if not rows and not skip:
            continue
        metrics = METRICS[task]
        cols = [(m, g) for g in groups for m in metrics] + [("seconds_per_clip", g)
                                                            for g in groups[:1]]
        head = ["method"] + [LABELS[m] + ("" if g == PRIMARY_GROUP else f" {g}")
                             for m, g in cols]
        lines += [f"## {TASK_TITLES[task]}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" + "---:|" * len(cols)]
        for name, row in rows.items():
            cells = [name]
            for m, g in cols:
                key = metric_key(m, g)
                v = row.get(key)
                text = _fmt(m, v)
                marked = name in scale_free and m in SCALE_METRICS
                if m != "seconds_per_clip" and not marked and v is not None:
                    best = _best(rows, key, m, {n for n in rows if n in scale_free}
                                 if m in SCALE_METRICS else set())
                    if best is not None and math.isfinite(v) and v == best:
                        text = f"**{text}**"
                cells.append(text + (" †" if marked else ""))
            lines.append("| " + " | ".join(cells) + " |")
        for name in skip:
            if name not in rows:
                lines.append("| " + " | ".join([name] + ["—"] * len(cols)) + " |")
        lines.append("")
        reasons: dict[str, list[str]] = {}
        for name, why in skip.items():
            reasons.setdefault(why, []).append(name)
        extra = [f"{', '.join(names)}: skipped: {why}" for why, names in reasons.items()]
        n_clips = ", ".join(f"{g}: {c} clips" for g, c in counts.items())
        for text in [n_clips, *extra, *notes.get(task, [])]:
            lines.append(f"- {text}")
        lines.append("")
    return "\n".join(lines)


def plot_results(results: Results, path: str | Path, counts: Mapping[str, int],
                 scale_free: set[str] = frozenset()) -> Path:
    """A PNG of bar charts: one panel per task metric, one bar per method and group
    (hatched: a scale-free method's scale-dependent metric). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from egosim.atomic_io import atomic_path

    panels = [(t, m) for t in METRICS if t in results for m in METRICS[t]]
    n = max(len(panels), 1)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.2 * nrow), squeeze=False)
    groups = list(counts)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (task, metric) in zip(axes.ravel(), panels, strict=False):
        names = list(results[task])
        x = np.arange(len(names))
        width = 0.8 / max(len(groups), 1)
        for j, g in enumerate(groups):
            vals = [results[task][nm].get(metric_key(metric, g), float("nan")) for nm in names]
            vals = [v if v is not None and math.isfinite(v) else 0.0 for v in vals]
            bars = ax.bar(x + (j - (len(groups) - 1) / 2) * width, vals, width,
                          color=colours[j % 4], label=g)
            for b, nm in zip(bars, names, strict=True):
                if nm in scale_free and metric in SCALE_METRICS:
                    b.set_hatch("//")
                    b.set_alpha(0.5)
        arrow = "higher" if metric in HIGHER_IS_BETTER else "lower"
        ax.set_title(f"{task}: {LABELS[metric]} ({arrow} is better)", fontsize=9)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
