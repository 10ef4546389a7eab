"""Evaluate a PPO policy (and baselines) on held-out scenes: metrics, a table, a PNG, JSON.

Episodes run in the batched env (:class:`egosim.agents.sb3_vec_env.SB3VecEnv`, ``num_envs``
worlds). Sub-env ``i`` runs ``episodes // num_envs`` episodes (plus one for the first
``episodes % num_envs``), so short episodes are not over-counted. Scene seeds come from
``scene_seeds`` (the same key as ``env.scene.seed_range``; held out: training draws from
its own ``env.scene.seed_range``, [0, 200) by default). Controllers:

==========  ==========================================================================
policy      the PPO policy (mean action when ``deterministic``); in a crowd it drives
            every human from that human's own observation
prior       the motion prior's own rollouts: ``z ~ N(0, I)`` (action ``z / scale``,
            clipped to [-1, 1])
zero        ``z = 0`` (the prior's mean latent) every step
scripted    :class:`egosim.agents.scripted.SamplingController` (33 sampled latents per
            step, decoded, the one ending nearest the route target kept; in crowds
            ``scripted_human_weight`` > 0 also steers around the other humans)
==========  ==========================================================================

Metrics (per controller; means over episodes unless said):

======================  ========================================================  =======
key                     definition                                                unit
======================  ========================================================  =======
success_rate            pelvis within ``goal.success_radius`` of the final goal   -
                        before the step limit (crowd: fraction of humans)
time_to_goal_s          steps x 0.45 s, successful episodes only                  s
penetration_per_frame   non-foot body vertices (env subsample) inside the scene   count
                        SDF per frame, mean over the episode's steps
foot_skating            mean over frames of max(min foot speed - 0.075, 0)        m/s
floor_contact           mean over frames of abs(min foot height - 0.02)           m
human_collisions        human-human collisions per episode (crowd)                count
episode_return          sum of rewards                                            -
steps_per_second        env steps (worlds) per wall second, policy included       1/s
primitives_per_second   human motion primitives per wall second                   1/s
======================  ========================================================  =======

``foot_skating`` and ``floor_contact`` are recovered exactly from the env's reward terms
(``raw = weighted / weight``, ``metric = -ln(raw)``), so they need non-zero weights.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.agents.config import EvalAgentConfig
from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig, locomotion_config
from egosim.envs.motion.primitive_windows import STEP_SECONDS

__all__ = ["SHIPPED_POLICY", "Controller", "load_policy",
           "policy_controller", "prior_controller", "zero_controller", "run_episodes",
           "evaluate", "format_table", "plot_metrics", "run_eval"]

SHIPPED_POLICY = Path(__file__).resolve().parent / "checkpoints" / "ppo_locomotion.zip"
METRIC_KEYS = ("success_rate", "time_to_goal_s", "penetration_per_frame", "foot_skating",
               "floor_contact", "human_collisions", "episode_return")

# obs dict of (E, N * d) arrays -> actions (E, N * 128) in [-1, 1]
Controller = Callable[[dict[str, np.ndarray]], np.ndarray]


def load_policy(path: str | Path | None):
    """``PPO.load`` of ``path`` (None: the shipped policy) on the CPU.

    Raises:
        FileNotFoundError: no such file (names the config key ``policy``).
    """
    from stable_baselines3 import PPO

    p = Path(path) if path else SHIPPED_POLICY
    if not p.is_file():
        raise FileNotFoundError(f"policy file {str(p)!r} does not exist (config key policy; "
                                f"train one with `egosim train-agent`)")
    return PPO.load(p, device="cpu")


def _split(obs: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """``(E, N * d)`` -> ``(E * N, d)`` per key (one row per human)."""
    return {k: v.reshape(v.shape[0] * n, -1) for k, v in obs.items()}


def policy_controller(model, num_humans: int, deterministic: bool) -> Controller:
    """A controller from an SB3 model whose spaces are the single-human env's."""
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        e = next(iter(obs.values())).shape[0]
        a, _ = model.policy.predict(_split(obs, num_humans), deterministic=deterministic)
        return np.clip(a, -1.0, 1.0).reshape(e, -1).astype(np.float32)
    return act


def prior_controller(latent: int, num_humans: int, scale: float,
                     rng: np.random.Generator) -> Controller:
    """``z ~ N(0, I)``: the motion prior's own rollouts."""
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        e = next(iter(obs.values())).shape[0]
        z = rng.standard_normal((e, num_humans * latent))
        return np.clip(z / scale, -1.0, 1.0).astype(np.float32)
    return act


def zero_controller(latent: int, num_humans: int) -> Controller:
    """``z = 0`` every step."""
    def act(obs: dict[str, np.ndarray]) -> np.ndarray:
        e = next(iter(obs.values())).shape[0]
        return np.zeros((e, num_humans * latent), np.float32)
    return act


def _raw(info: dict[str, Any], key: str, weight: float) -> np.ndarray:
    """Physical value of a foot term for the humans active in this step."""
    terms = info.get("human_reward_terms", info["reward_terms"])
    w = np.atleast_1d(np.asarray(terms[key], np.float64))
    w = w[w > 0.0]  # a finished human's terms are 0
    return -np.log(np.clip(w / weight, 1e-300, 1.0))


def run_episodes(venv, controller: Controller, episodes: int, weights: dict[str, float],
                 progress: bool = False, desc: str = "",
                 on_episode: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run ``episodes`` episodes on an SB3 ``VecEnv`` (already seeded) with ``controller``;
    ``on_episode()`` is called after each counted episode (e.g. an outer progress bar).

    Returns:
        The metrics of the module table (NaN where undefined, e.g. no success).
    """
    for key in ("foot_skating", "floor_contact"):
        if weights[key] <= 0.0:
            raise ValueError(f"reward.weights.{key} must be > 0 to measure {key}")
    e_num = venv.num_envs
    quota = np.full(e_num, episodes // e_num) + (np.arange(e_num) < episodes % e_num)
    done_n = np.zeros(e_num, int)
    acc = [{"pen": [], "skate": [], "contact": [], "ret": 0.0} for _ in range(e_num)]
    eps: list[dict[str, float]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=desc or "eval", unit="ep", file=sys.stderr)
    obs = venv.reset()
    steps, t0 = 0, time.perf_counter()
    while (done_n < quota).any():
        obs, rew, dones, infos = venv.step(controller(obs))
        steps += 1
        for i in np.nonzero(done_n < quota)[0]:
            a, info = acc[i], infos[i]
            a["pen"].append(float(info["penetration_per_frame"]))
            a["skate"].extend(_raw(info, "foot_skating", weights["foot_skating"]).tolist())
            a["contact"].extend(_raw(info, "floor_contact", weights["floor_contact"]).tolist())
            a["ret"] += float(rew[i])
            if dones[i]:
                succ = info.get("successes")
                rate = float(np.mean(succ)) if succ is not None else float(info["is_success"])
                n_steps = int(info["steps"])
                eps.append({"success": rate, "steps": n_steps,
                            "time_to_goal_s": n_steps * STEP_SECONDS if rate >= 1.0 else np.nan,
                            "pen": float(np.mean(a["pen"])), "skate": float(np.mean(a["skate"])),
                            "contact": float(np.mean(a["contact"])),
                            "collisions": float(info.get("human_collisions_total", 0)),
                            "ret": a["ret"]})
                acc[i] = {"pen": [], "skate": [], "contact": [], "ret": 0.0}
                done_n[i] += 1
                if bar is not None:
                    bar.update(1)
                if on_episode is not None:
                    on_episode()
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    num_humans = int(venv.get_attr("num_humans")[0])

    def mean(key: str) -> float:
        vals = [e[key] for e in eps if not np.isnan(e[key])]
        return float(np.mean(vals)) if vals else float("nan")

    return {"episodes": len(eps), "success_rate": mean("success"),
            "time_to_goal_s": mean("time_to_goal_s"), "penetration_per_frame": mean("pen"),
            "foot_skating": mean("skate"), "floor_contact": mean("contact"),
            "human_collisions": mean("collisions"), "episode_return": mean("ret"),
            "mean_steps": mean("steps"), "steps_per_second": steps * e_num / wall,
            "primitives_per_second": steps * e_num * num_humans / wall}


def _env_config(cfg: EvalAgentConfig) -> LocomotionEnvConfig | CrowdEnvConfig:
    """The env of the evaluation: ``cfg.env`` (it holds ``scene``, ``scene_seeds`` and
    ``num_humans``: one value per setting), without its crowd section unless ``crowd``."""
    return cfg.env if cfg.crowd else locomotion_config(cfg.env)


def _make_venv(cfg: EvalAgentConfig, seed: int):
    from egosim.agents.sb3_vec_env import SB3VecEnv

    env_cfg = _env_config(cfg)
    venv = SB3VecEnv(num_envs=cfg.num_envs, config=env_cfg, crowd=cfg.crowd)
    venv.seed(seed)
    return venv, env_cfg


def evaluate(cfg: EvalAgentConfig) -> dict[str, Any]:
    """Metrics of the policy and of ``cfg.baselines`` (same seeds, same scenes)."""
    torch.set_num_threads(cfg.threads)
    model = load_policy(cfg.policy)
    results: dict[str, Any] = {}
    names = ["policy"] + list(cfg.baselines)
    for name in names:
        venv, env_cfg = _make_venv(cfg, cfg.seed)  # same seeds: same scenes, starts, goals
        n = int(venv.get_attr("num_humans")[0])
        latent = venv.action_space.shape[0] // n
        if name == "policy":
            want = model.observation_space["markers"].shape
            have = venv.observation_space["markers"].shape
            if have[0] != want[0] * n:
                raise ValueError(f"policy observation markers {want} do not match the env's "
                                 f"{have} for {n} humans")
            ctrl = policy_controller(model, n, cfg.deterministic)
        elif name == "prior":
            ctrl = prior_controller(latent, n, env_cfg.action.scale,
                                    np.random.default_rng(cfg.seed))
        elif name == "scripted":
            from egosim.agents.scripted import SamplingController

            ctrl = SamplingController(venv, rng=np.random.default_rng(cfg.seed),
                                      human_weight=cfg.scripted_human_weight)
        else:
            ctrl = zero_controller(latent, n)
        results[name] = run_episodes(venv, ctrl, cfg.episodes,
                                     env_cfg.reward.weights.model_dump(), cfg.progress, name)
        venv.close()
    out = dict(results["policy"])
    out.update({"controller": "policy", "policy": str(cfg.policy or SHIPPED_POLICY),
                "scene": cfg.scene, "scene_seeds": list(cfg.scene_seeds), "seed": cfg.seed,
                "crowd": cfg.crowd, "baselines": {k: results[k] for k in cfg.baselines}})
    return out


def format_table(metrics: dict[str, Any]) -> str:
    """A fixed-width text table: one row per metric, one column per controller."""
    cols = {"policy": metrics, **metrics.get("baselines", {})}
    keys = METRIC_KEYS + ("steps_per_second", "primitives_per_second")
    head = f"{'metric':<24}" + "".join(f"{c:>14}" for c in cols)
    rows = [head, "-" * len(head)]
    for k in keys:
        rows.append(f"{k:<24}" + "".join(f"{cols[c][k]:>14.4g}" for c in cols))
    return "\n".join(rows)


def plot_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    """PNG of bar charts (one panel per metric, one bar per controller); PIL + imageio."""
    import imageio.v3 as iio
    from PIL import Image, ImageDraw

    from egosim.atomic_io import atomic_path

    cols = {"policy": metrics, **metrics.get("baselines", {})}
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    pw, ph, pad = 220, 180, 30
    keys = METRIC_KEYS
    img = Image.new("RGB", (pw * 4, ph * ((len(keys) + 3) // 4) + 24), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((6, 4), "  ".join(f"{c}" for c in cols), fill=(0, 0, 0))
    for j in range(len(cols)):  # legend swatches
        d.rectangle([6 + j * 70 - 2, 16, 6 + j * 70 + 40, 20], fill=colours[j % 4])
    for p, k in enumerate(keys):
        x0, y0 = (p % 4) * pw, 24 + (p // 4) * ph
        vals = [float(cols[c][k]) for c in cols]
        finite = [abs(v) for v in vals if np.isfinite(v)]
        top = max(finite) if finite and max(finite) > 0 else 1.0
        d.text((x0 + 8, y0 + 4), k, fill=(0, 0, 0))
        base = y0 + ph - pad
        d.line([x0 + 10, base, x0 + pw - 10, base], fill=(0, 0, 0))
        bw = (pw - 40) // max(len(vals), 1)
        for j, v in enumerate(vals):
            bx = x0 + 20 + j * bw
            if np.isfinite(v):
                h = int((ph - 2 * pad - 10) * abs(v) / top)
                d.rectangle([bx, base - h, bx + bw - 8, base], fill=colours[j % 4])
            d.text((bx, base + 4), f"{v:.3g}", fill=(0, 0, 0))
    path = Path(path)
    with atomic_path(path) as tmp:  # keeps the .png suffix imageio picks the format from
        iio.imwrite(tmp, np.asarray(img))
    return path


def _jsonable(x: Any) -> Any:
    """NaN -> None (strict JSON), recursively."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def run_eval(cfg: EvalAgentConfig) -> dict[str, Any]:
    """Evaluate, write ``output_dir/metrics.json`` (and ``metrics.png``), print the table
    (or, with ``json: true``, the metrics as one JSON object on stdout)."""
    from egosim.atomic_io import write_json

    metrics = evaluate(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = _jsonable(metrics)
    write_json(out / "metrics.json", clean, indent=2)
    if cfg.plot:
        plot_metrics(metrics, out / "metrics.png")
    print(json.dumps(clean) if cfg.print_json else format_table(metrics))
    return metrics
