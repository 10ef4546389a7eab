"""PPO (stable-baselines3) on the batched EgoLocomotion env, EgoGen's two-stage schedule.

Read top to bottom: the config (:class:`egosim.agents.config.TrainAgentConfig`) holds every
hyper-parameter; :func:`run_train` builds the batched env (``num_envs`` humans stepped in
one process, :class:`egosim.agents.sb3_vec_env.SB3VecEnv`), a ``PPO("MultiInputPolicy")`` with
:class:`egosim.agents.policy.EgoGenExtractor`, and trains stage after stage (default:
``pretrain`` with soft penetration and weight 1, then ``finetune`` with strict penetration,
ending an episode at >= 40 penetrating vertices in a frame, and weight 0.1). With
``imitation.steps > 0`` a fresh run first imitates the privileged sampling planner (behaviour
cloning or DAgger, :mod:`egosim.agents.imitation`) and PPO starts from those weights; with
``selection.episodes > 0`` the exported policy is the imitation or stage-end checkpoint with
the best success on validation scenes (:func:`select_checkpoint`). Checkpoints are
``output_dir/checkpoints/ppo_<steps>_steps.zip``; with ``resume: true`` the latest one is
loaded, its step count decides the stage, and training continues to the stage budgets.
Every file is written atomically (:mod:`egosim.atomic_io`); a resumed run checks that the
latest checkpoint loads and, when it does not, says so in one line, moves it aside
(``<name>.bad``) and falls back to the newest good one (:func:`resume_checkpoint`).

    egosim train-agent output_dir=outputs/ppo num_envs=64
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from egosim.agents.config import StageSection, TrainAgentConfig
from egosim.agents.policy import policy_kwargs
from egosim.atomic_io import atomic_path, copy_file, move_aside, remove_temp_files, write_json
from egosim.config import with_overrides
from egosim.envs.config import crowd_config

__all__ = ["make_train_env", "build_model", "warm_start", "select_checkpoint",
           "latest_checkpoint", "resume_checkpoint", "checkpoint_problem", "save_model",
           "run_train"]

_CKPT = re.compile(r"^ppo_(\d+)_steps\.zip$")


def make_train_env(cfg: TrainAgentConfig, stage: StageSection, seed: int) -> VecEnv:
    """The batched env of one stage: ``cfg.env`` with the stage's penetration rule and
    weight, wrapped in ``VecMonitor`` (episode returns and ``is_success``)."""
    from egosim.agents.sb3_vec_env import SB3VecEnv

    env_cfg = with_overrides(cfg.env, {"reward.penetration_mode": stage.penetration_mode,
                                       "reward.weights.penetration": stage.penetration_weight})
    venv = SB3VecEnv(num_envs=cfg.num_envs, config=env_cfg)
    venv.seed(seed)
    return VecMonitor(venv)


def build_model(cfg: TrainAgentConfig, env: VecEnv, tensorboard_log: str | None) -> PPO:
    """A fresh ``PPO`` with the config's hyper-parameters and the EgoGen-shaped policy."""
    p = cfg.policy
    return PPO("MultiInputPolicy", env, seed=cfg.seed, device="cpu", verbose=0,
               tensorboard_log=tensorboard_log,
               policy_kwargs=policy_kwargs(p.marker_hidden, p.sensing_hidden,
                                           p.pe_frequencies, p.use_ego_sensing,
                                           p.net_arch_pi, p.net_arch_vf, p.log_std_init,
                                           p.share_features_extractor),
               **cfg.ppo.model_dump())


def warm_start(cfg: TrainAgentConfig, model: PPO, env: VecEnv, ckpt_dir: Path
               ) -> dict[str, Any]:
    """Imitation of the sampling planner (:mod:`egosim.agents.imitation`), then
    ``ppo_0_steps.zip`` so that a resumed run goes straight on to PPO."""
    from egosim.agents.imitation import dagger
    from egosim.agents.scripted import SamplingController

    im = cfg.imitation
    teacher = SamplingController(env, candidates=im.candidates, sigma=im.sigma,
                                 rng=np.random.default_rng(cfg.seed),
                                 fixed=im.fixed_candidates)
    writer = None
    if cfg.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(Path(cfg.output_dir) / "tensorboard" / "imitation"))
    extra, crowd = None, None
    if im.crowd_steps > 0:
        extra, crowd = _crowd_data(cfg, env)
    result = dagger(model, env, teacher, im.steps, im.iterations, im.epochs, im.batch_size,
                    im.learning_rate, cfg.ppo.gamma, seed=cfg.seed, progress=cfg.progress,
                    log=writer.add_scalar if writer is not None else None, extra=extra)
    if crowd is not None:
        result["crowd"] = crowd
    if writer is not None:
        writer.close()
    save_model(model, ckpt_dir / "ppo_0_steps.zip")
    write_json(Path(cfg.output_dir) / "imitation.json", result, indent=2)
    return result


def _crowd_data(cfg: TrainAgentConfig, env: VecEnv):
    """Teacher samples from EgoCrowd worlds (``imitation.crowd_*``) on the training scenes."""
    from egosim.agents.imitation import DaggerData, collect_crowd
    from egosim.agents.sb3_vec_env import SB3VecEnv
    from egosim.agents.scripted import SamplingController

    im = cfg.imitation
    stage = cfg.stages[0]
    crowd_cfg = with_overrides(crowd_config(cfg.env), {
        "crowd.num_humans": im.crowd_humans, "reward.penetration_mode": stage.penetration_mode,
        "reward.weights.penetration": stage.penetration_weight})
    venv = SB3VecEnv(num_envs=im.crowd_envs, config=crowd_cfg, crowd=True)
    venv.seed(cfg.seed + 104729)
    teacher = SamplingController(venv, candidates=im.candidates, sigma=im.sigma,
                                 rng=np.random.default_rng(cfg.seed),  # warm_start's codebook
                                 fixed=im.fixed_candidates, human_weight=im.human_weight)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=im.crowd_steps, desc="imitation (crowd teacher)", unit="human step",
                   file=sys.stderr, dynamic_ncols=True)
    data = DaggerData()
    stats = collect_crowd(venv, teacher, im.crowd_steps, data, bar)
    if bar is not None:
        bar.close()
    venv.close()
    return data, stats


def selection_episodes(cfg: TrainAgentConfig, candidates: int) -> int:
    """Validation episodes per candidate: ``selection.episodes``, cut so that the
    selection's env steps (each episode counted at ``env.episode.max_steps``) stay within
    ``selection.budget_fraction`` of the training's (imitation + PPO), but not below
    ``selection.min_episodes`` (nor above ``episodes``)."""
    sel = cfg.selection
    train_steps = sum(s.timesteps for s in cfg.stages) + cfg.imitation.steps * \
        cfg.imitation.iterations + cfg.imitation.crowd_steps
    per_episode = max(1, candidates) * cfg.env.episode.max_steps
    fit = int(sel.budget_fraction * train_steps // per_episode)
    return min(sel.episodes, max(sel.min_episodes, fit))


def _candidates(cfg: TrainAgentConfig, ckpt_dir: Path) -> list[Path]:
    """The end of imitation (``ppo_0_steps.zip``) and the first checkpoint at or after each
    stage's end, in order, without repeats."""
    saved = sorted((int(m.group(1)), f) for f in ckpt_dir.iterdir()
                   if (m := _CKPT.match(f.name)))
    paths: list[Path] = []
    for end in [0] + np.cumsum([s.timesteps for s in cfg.stages]).tolist():
        # a stage ends after the rollout that crosses its budget: first checkpoint >= end
        after = [f for n, f in saved if n >= end]
        if after and after[0] not in paths:
            paths.append(after[0])
    return paths


def select_checkpoint(cfg: TrainAgentConfig, ckpt_dir: Path,
                      record: Path | None = None) -> dict[str, Any]:
    """Validation success (deterministic policy, ``cfg.selection``) of the checkpoints at the
    end of imitation (``ppo_0_steps.zip``) and of every stage; the best one (ties: the later)
    is ``chosen``.

    Each candidate's result is added to ``record`` (a JSON file, written atomically after
    every candidate) with the selection's settings; a rerun with the same settings reuses
    the results recorded there for the same checkpoint files (path, steps, size), so an
    interrupted or finished selection is not redone. Progress: a tqdm bar over candidates
    and episodes when ``cfg.progress``, else one line per candidate on stderr.

    Returns:
        ``{"chosen": path, "episodes": per candidate, "candidates": [{"path", "steps",
        "success_rate", "penetration_per_frame", "wall_s"}, ...], "wall_s"}``.
    """
    from egosim.agents.evaluate import policy_controller, run_episodes
    from egosim.agents.sb3_vec_env import SB3VecEnv

    sel = cfg.selection
    paths = _candidates(cfg, ckpt_dir)
    episodes = selection_episodes(cfg, len(paths))
    settings = {**sel.model_dump(mode="json"), "episodes_per_candidate": episodes,
                "env": cfg.env.model_dump(mode="json")}
    done: dict[str, dict[str, Any]] = {}
    if record is not None and record.is_file():
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            old = {}
        if old.get("settings") == settings:
            done = {r["key"]: r for r in old.get("candidates", []) if "key" in r}
    env_cfg = with_overrides(cfg.env, {"scene.seed_range": list(sel.scene_seeds)})
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths) * episodes, desc="select checkpoint", unit="ep",
                   file=sys.stderr, dynamic_ncols=True)
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()

    def save(complete: bool) -> None:
        if record is not None:
            write_json(record, {"settings": settings, "complete": complete,
                                "candidates": rows}, indent=2)

    for k, p in enumerate(paths):
        key = f"{p.name}:{p.stat().st_size}"
        steps = int(_CKPT.match(p.name).group(1))
        if key in done:
            rows.append(done[key])
            if bar is not None:
                bar.update(episodes)
            else:
                print(f"train-agent: selection {k + 1}/{len(paths)}: {p.name}: success "
                      f"{done[key]['success_rate']:.3f} (recorded)", file=sys.stderr)
            continue
        problem = checkpoint_problem(p)
        if problem is not None:  # a damaged candidate is skipped, not fatal
            print(f"train-agent: skipping checkpoint {p} in the selection: it is bad "
                  f"({problem})", file=sys.stderr)
            if bar is not None:
                bar.update(episodes)
            continue
        t0 = time.perf_counter()
        venv = SB3VecEnv(num_envs=min(sel.num_envs, episodes), config=env_cfg)
        venv.seed(sel.seed)  # the same scenes, starts and goals for every candidate
        m = run_episodes(venv, policy_controller(PPO.load(p, device="cpu"), 1, True),
                         episodes, env_cfg.reward.weights.model_dump(), False, "",
                         on_episode=None if bar is None else (lambda: bar.update(1)))
        venv.close()
        row = {"key": key, "path": str(p), "steps": steps, "success_rate": m["success_rate"],
               "penetration_per_frame": m["penetration_per_frame"],
               "wall_s": time.perf_counter() - t0}
        rows.append(row)
        save(False)
        if bar is None:
            print(f"train-agent: selection {k + 1}/{len(paths)}: {p.name}: success "
                  f"{row['success_rate']:.3f} over {episodes} episodes ({row['wall_s']:.1f} s)",
                  file=sys.stderr)
    if bar is not None:
        bar.close()
    if not rows:
        raise FileNotFoundError(f"no stage-end checkpoints in {ckpt_dir} to select from")
    save(True)
    best = max(rows, key=lambda r: (r["success_rate"], r["steps"]))
    return {"chosen": best["path"], "episodes": episodes,
            "candidates": [{k: v for k, v in r.items() if k != "key"} for r in rows],
            "wall_s": time.perf_counter() - t_all}


def latest_checkpoint(folder: str | Path) -> tuple[Path, int] | None:
    """``(path, steps)`` of the ``ppo_<steps>_steps.zip`` with most steps, or None."""
    best: tuple[Path, int] | None = None
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for f in folder.iterdir():
        m = _CKPT.match(f.name)
        if m and (best is None or int(m.group(1)) > best[1]):
            best = (f, int(m.group(1)))
    return best


def save_model(model: PPO, path: str | Path) -> Path:
    """``model.save(path)`` atomically (a kill mid-save leaves no partial file)."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the SB3 checkpoint ``path`` cannot be resumed from (it is loaded), or None."""
    from stable_baselines3.common.save_util import load_from_zip_file

    try:
        data, params, _ = load_from_zip_file(path, device="cpu", print_system_info=False)
    except Exception as exc:  # truncated/garbage archives raise many types
        return f"unreadable ({type(exc).__name__}: {exc})"
    if not data or not params or "policy" not in params:
        return "not a stable-baselines3 model archive (no data or policy parameters)"
    return None


def resume_checkpoint(folder: str | Path) -> tuple[Path, int] | None:
    """Like :func:`latest_checkpoint`, but the checkpoint must load: a bad one is reported
    in one line on stderr and moved aside to ``<name>.bad`` (so it cannot shadow later
    saves), and the next newest is tried. Temporary files of killed writers are removed."""
    remove_temp_files(folder)
    while (found := latest_checkpoint(folder)) is not None:
        problem = checkpoint_problem(found[0])
        if problem is None:
            return found
        aside = move_aside(found[0])
        print(f"train-agent: checkpoint {found[0]} is bad ({problem}); moved it to "
              f"{aside.name} and trying the previous one", file=sys.stderr)
    return None


TRAIN_CLOCK = "train_time.json"


class TrainClock:
    """Training wall time of a run across resumes: ``checkpoints/train_time.json`` maps each
    checkpoint's step count to the training seconds (imitation + PPO, every process of the
    run) spent when it was written; a resumed run continues from its checkpoint's entry.

    Args:
        ckpt_dir: the run's checkpoint folder.
        start_steps: steps of the checkpoint resumed from, or None for a fresh run (the
            clock starts at 0).
    """

    def __init__(self, ckpt_dir: Path, start_steps: int | None) -> None:
        self.path = Path(ckpt_dir) / TRAIN_CLOCK
        self.table: dict[str, float] = {}
        if start_steps is not None and self.path.is_file():
            try:
                self.table = {str(int(k)): float(v) for k, v in
                              json.loads(self.path.read_text()).items()}
            except (OSError, ValueError, AttributeError, TypeError):
                self.table = {}
        key = None if start_steps is None else str(int(start_steps))
        #: False when the resumed checkpoint has no entry (a run started before the clock).
        self.complete = key is None or key in self.table
        #: training seconds before this process (at the checkpoint resumed from).
        self.before = self.table.get(key, 0.0) if key is not None else 0.0
        self.table = {k: v for k, v in self.table.items()
                      if key is not None and int(k) <= int(key)}
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        """Training seconds of the run so far."""
        return self.before + time.perf_counter() - self.t0

    def mark(self, steps: int) -> None:
        """Record the time of the checkpoint at ``steps`` (written atomically)."""
        self.table[str(int(steps))] = self.seconds()
        write_json(self.path, self.table, indent=2)


class _Checkpoints(CheckpointCallback):
    """SB3's ``CheckpointCallback`` (``ppo_<steps>_steps.zip`` every ``save_freq`` calls),
    writing each file atomically and its time in the run's :class:`TrainClock`."""

    def __init__(self, save_freq: int, save_path: str, name_prefix: str,
                 clock: TrainClock) -> None:
        super().__init__(save_freq, save_path, name_prefix=name_prefix)
        self.clock = clock

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            save_model(self.model, self._checkpoint_path(extension="zip"))
            self.clock.mark(self.num_timesteps)
        return True


class _Progress(BaseCallback):
    """tqdm bar over env steps; at every rollout's end logs the mean penetrating vertices
    per frame and the weighted reward terms of the rollout's steps to TensorBoard."""

    def __init__(self, total: int, desc: str, show: bool) -> None:
        super().__init__()
        self.total, self.desc, self.show = total, desc, show
        self.bar: Any = None
        self._pen: list[float] = []
        self._terms: dict[str, list[float]] = {}

    def _on_training_start(self) -> None:
        if self.show:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=min(self.num_timesteps, self.total),
                            desc=self.desc, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            self._pen.append(float(info.get("penetration_per_frame", 0.0)))
            for k, v in info.get("reward_terms", {}).items():
                self._terms.setdefault(k, []).append(float(v))
        if self.bar is not None:
            self.bar.n = min(self.num_timesteps, self.total)
            self.bar.refresh()
        return True

    def _on_rollout_end(self) -> None:
        if self._pen:
            self.logger.record("egosim/penetration_per_frame", float(np.mean(self._pen)))
        for k, v in self._terms.items():
            self.logger.record(f"reward_terms/{k}", float(np.mean(v)))
        self._pen, self._terms = [], {}

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_train(cfg: TrainAgentConfig) -> dict[str, Any]:
    """Train (or resume) and write ``output_dir/final.zip`` and ``summary.json``.

    Returns:
        The summary: ``timesteps`` (PPO env steps of the whole run), ``resumed_from``,
        ``train_wall_s`` (training seconds of the whole run, imitation and PPO, across
        resumes: :class:`TrainClock`; ``train_wall_complete`` False when the checkpoint
        resumed from predates the clock), ``env_steps_per_s`` (``timesteps /
        train_wall_s``), ``wall_s`` (this call, selection included), per-stage
        ``ep_rew_mean`` and ``success_rate`` of the last episodes (SB3's 100-episode window)
        of the stages this call trained, and ``selection`` (:func:`select_checkpoint`,
        recorded in ``output_dir/selection.json`` and reused by a rerun).
    """
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.model_dump(), indent=2)
    tb = str(out / "tensorboard") if cfg.tensorboard else None

    ends = np.cumsum([s.timesteps for s in cfg.stages]).tolist()
    model: PPO | None = None
    found = resume_checkpoint(ckpt_dir) if cfg.resume else None
    start_steps = found[1] if found else 0
    t0, summary = time.perf_counter(), {"stages": {}}
    clock = TrainClock(ckpt_dir, found[1] if found else None)
    for i, stage in enumerate(cfg.stages):
        if start_steps >= ends[i] and (model is None or model.num_timesteps >= ends[i]):
            continue  # finished before the resume point
        env = make_train_env(cfg, stage, cfg.seed + 7919 * i + start_steps)
        if model is None and found is not None:
            model = PPO.load(found[0], env=env, device="cpu", tensorboard_log=tb)
            print(f"train-agent: resumed from {found[0]} at {model.num_timesteps} steps",
                  file=sys.stderr)
        elif model is None:
            model = build_model(cfg, env, tb)
            if cfg.imitation.steps > 0:
                summary["imitation"] = warm_start(cfg, model, env, ckpt_dir)
                clock.mark(0)
        else:
            model.set_env(env)
        remaining = ends[i] - model.num_timesteps
        if remaining > 0:
            callbacks = CallbackList([
                _Checkpoints(max(1, cfg.checkpoint_every // cfg.num_envs), str(ckpt_dir),
                             name_prefix="ppo", clock=clock),
                _Progress(ends[i], f"{stage.name} ({stage.penetration_mode})", cfg.progress),
            ])
            model.learn(remaining, callback=callbacks, tb_log_name=stage.name,
                        reset_num_timesteps=False)
            save_model(model, ckpt_dir / f"ppo_{model.num_timesteps}_steps.zip")
            clock.mark(model.num_timesteps)
        ep = list(model.ep_info_buffer)
        summary["stages"][stage.name] = {
            "end_steps": int(model.num_timesteps),
            "ep_rew_mean": float(np.mean([e["r"] for e in ep])) if ep else None,
            "success_rate": float(np.mean(model.ep_success_buffer))
            if model.ep_success_buffer else None,
        }
        env.close()
    if model is None:  # everything was done already: load the final checkpoint
        model = PPO.load(found[0], device="cpu") if found else None
    steps = int(model.num_timesteps) if model else 0
    trained = found is None or steps > start_steps
    train_wall = clock.seconds() if trained else clock.before
    summary.update({"timesteps": steps, "resumed_from": start_steps,
                    "train_wall_s": train_wall, "train_wall_complete": clock.complete,
                    "env_steps_per_s": steps / train_wall if train_wall > 0 else 0.0})
    if model is not None:
        save_model(model, out / "final.zip")
        chosen = out / "final.zip"
        if cfg.selection.episodes > 0:
            summary["selection"] = select_checkpoint(cfg, ckpt_dir, out / "selection.json")
            chosen = Path(summary["selection"]["chosen"])
            copy_file(chosen, out / "best.zip")
        if cfg.export_path:
            copy_file(chosen, cfg.export_path)
    summary["wall_s"] = time.perf_counter() - t0
    write_json(out / "summary.json", summary, indent=2)
    return summary
