"""Warm start for PPO: imitate the privileged sampling planner (behaviour cloning or DAgger).

PPO from a random policy over a 128-D latent action learns slowly on 2 CPU cores (the
shipped 121k-step run of session 1 reached 6 % success). :func:`dagger` first teaches the
policy what the motion prior can do, from a teacher that sees what the policy does not:
:class:`egosim.agents.scripted.SamplingController` (decodes ``candidates`` latents per
step and keeps the one that best follows the planned route while keeping the pelvis on the
walkable map). The teacher draws its candidates once (``fixed=True``: a codebook of 33
latents shared by every step): with fresh random candidates per step its choice is mostly
noise in the 120-odd latent directions that do not matter for the route, and a student
fitted to such labels learns little more than their mean (measured: the actor MSE stayed at
0.341 over two iterations, 12k samples; with the codebook it fell to 0.229 after the first).
The student only sees its observation (markers, goal vectors, ego-sensing, distance, time),
so it must learn to steer from egocentric input, as EgoGen's agent does.

DAgger (Ross et al. 2011): in iteration ``k`` the teacher acts with probability
``beta_k = 1 - k / iterations`` per step and env (the student's mean action otherwise), every
visited state is labelled with the teacher's action, the data set aggregates over
iterations, and after each iteration the student is fitted to all of it:

==============  ==============================================================================
loss            value
==============  ==============================================================================
actor           mean squared error between the policy's mean action and the teacher's
                (action units, ``[-1, 1]^128``; latent ``z = action.scale * action``)
critic          mean squared error between the value head and the discounted return
                (``ppo.gamma``) of the visited trajectories (episodes cut at the iteration's
                end bootstrap with the current value estimate)
==============  ==============================================================================

``iterations = 1`` is plain behaviour cloning (the teacher acts at every step), which the
shipped config uses: on the validation scenes (seeds 200-300, 32 episodes) students fitted to
pure teacher data reached 0.94-0.97 success (``benchmarks/bench_imitation.py``: 6,144
samples, 10 and 30 epochs; the shipped 12,288-sample fit: 0.94), while four DAgger runs
(``egosim train-agent imitation.iterations=4`` or ``6``, with and without ego-sensing)
reached 0.75-0.78. A likely cause: states the student drives into (against walls, circling)
carry teacher labels that its mean action cannot fit without losing the common case.

Crowds (:func:`collect_crowd`, ``imitation.crowd_steps``): the single-human env never shows
another human in the rays, so a student trained there has no reason to avoid one. Teacher
samples from EgoCrowd worlds, where the planner also pays for frames within 0.6 m of another
human (extrapolated at its current velocity), are added to every fit; their returns are
NaN and train the actor only. Measured with the planner alone (``egosim eval-agent
crowd=true episodes=16 num_envs=8 "baselines=[scripted]" scripted_human_weight=10``, 4 humans
per apartment): 3.50 human-human collisions per episode, 5.88 without that cost. A student
cloned from 12,288 single-human plus 12,288 crowd samples did not learn it: 5.81 collisions
per episode with the others in its rays, 5.94 without (the single-human student: 4.38 and
4.56), and 0.875 single-human held-out success (0.938). So ``crowd_steps`` is 0 in the
shipped config.

PPO (:mod:`egosim.agents.train`) then continues from these weights with EgoGen's two stages.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO

__all__ = ["DaggerData", "collect_crowd", "dagger", "fit_student"]


@dataclass
class DaggerData:
    """Aggregated DAgger samples.

    Attributes:
        obs: observation key -> list of ``(E, ...)`` arrays, one per step.
        actions: list of ``(E, A)`` teacher actions in ``[-1, 1]``.
        returns: list of ``(E,)`` discounted returns of the behaviour policy.
    """

    obs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    actions: list[np.ndarray] = field(default_factory=list)
    returns: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(a) for a in self.actions)

    def arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Everything stacked: ``obs[key] (M, ...)``, ``actions (M, A)``, ``returns (M,)``."""
        return ({k: np.concatenate(v) for k, v in self.obs.items()},
                np.concatenate(self.actions), np.concatenate(self.returns))


def _discounted(rewards: np.ndarray, dones: np.ndarray, last_value: np.ndarray,
                gamma: float) -> np.ndarray:
    """Returns ``(T, E)`` of rewards ``(T, E)`` with episode ends ``dones (T, E)``,
    bootstrapped with ``last_value (E,)`` after the last step."""
    out = np.zeros_like(rewards)
    running = last_value.astype(np.float64)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running * (1.0 - dones[t])
        out[t] = running
    return out


@torch.no_grad()
def _collect(model: PPO, venv, teacher, steps: int, beta: float, rng: np.random.Generator,
             gamma: float, data: DaggerData, bar: Any) -> dict[str, float]:
    obs = venv.reset()
    e_num = venv.num_envs
    rew, don = [], []
    successes: list[float] = []
    for _ in range(max(1, steps // e_num)):
        label = teacher(obs)
        student, _ = model.predict(obs, deterministic=True)
        use_teacher = rng.random(e_num) < beta
        act = np.where(use_teacher[:, None], label, student).astype(np.float32)
        for k, v in obs.items():
            data.obs.setdefault(k, []).append(np.array(v, copy=True))
        data.actions.append(label.astype(np.float32))
        obs, r, d, infos = venv.step(act)
        rew.append(np.asarray(r, np.float64))
        don.append(np.asarray(d, np.float64))
        successes += [float(i.get("is_success", False)) for i, dd in zip(infos, d,
                                                                         strict=True) if dd]
        if bar is not None:
            bar.update(e_num)
    obs_t = model.policy.obs_to_tensor(obs)[0]
    last_v = model.policy.predict_values(obs_t).squeeze(-1).double().numpy()
    data.returns.extend(_discounted(np.stack(rew), np.stack(don), last_v, gamma))
    return {"episodes": len(successes),
            "success_rate": float(np.mean(successes)) if successes else float("nan")}


@torch.no_grad()
def collect_crowd(venv, teacher, steps: int, data: DaggerData, bar: Any = None
                  ) -> dict[str, float]:
    """Teacher-driven samples from a crowd env, one row per active human.

    Args:
        venv: an SB3 ``VecEnv`` over an :class:`egosim.envs.vector.EgoVectorEnv` with
            ``N`` humans per world (EgoCrowd): observations ``(E, N * d)``.
        teacher: ``obs -> actions (E, N * A)`` (a ``SamplingController`` on ``venv``, with
            ``human_weight > 0`` so that it steers around the others).
        steps: human steps to collect (about; whole env steps of ``E * N`` humans).
        data: appended to: per-human observations ``(d,)``, teacher actions ``(A,)`` and a
            NaN return (the crowd reward is per world; the critic is not fitted to these).

    Returns:
        ``samples`` added and the teacher's per-human success rate over finished episodes.
    """
    from egosim.agents.scripted import simulation_of

    sim = simulation_of(venv)
    n = sim.N
    obs = venv.reset()
    added, successes = 0, []
    while added < steps:
        label = teacher(obs)
        active = np.concatenate([w.active for w in sim.worlds])  # (E * N,)
        for k, v in obs.items():
            data.obs.setdefault(k, []).append(v.reshape(v.shape[0] * n, -1)[active].copy())
        data.actions.append(label.reshape(-1, label.shape[1] // n)[active].astype(np.float32))
        data.returns.append(np.full(int(active.sum()), np.nan))
        added += int(active.sum())
        obs, _, dones, infos = venv.step(label)
        for info, d in zip(infos, dones, strict=True):
            if d:
                successes.extend(np.asarray(info["successes"], float).tolist())
        if bar is not None:
            bar.update(int(active.sum()))
    return {"samples": added,
            "success_rate": float(np.mean(successes)) if successes else float("nan")}


def _heads(policy, ob: dict[str, torch.Tensor], critic_to_encoder: bool = False
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean action ``(B, A)`` and value ``(B,)``; a shared encoder gets no critic gradient
    unless ``critic_to_encoder``."""
    if policy.share_features_extractor:
        pi_features = policy.extract_features(ob)
        vf_features = pi_features if critic_to_encoder else pi_features.detach()
    else:
        pi_features, vf_features = policy.extract_features(ob)
    mean = policy.action_net(policy.mlp_extractor.forward_actor(pi_features))
    value = policy.value_net(policy.mlp_extractor.forward_critic(vf_features)).squeeze(-1)
    return mean, value


def fit_student(model: PPO, data: DaggerData, epochs: int, batch_size: int, lr: float,
                rng: np.random.Generator, critic_to_encoder: bool = False
                ) -> dict[str, float]:
    """Fit the policy's mean action and value head to ``data`` (module table).

    Only the actor loss reaches the actor's encoder: the critic has its own
    (``policy.share_features_extractor=False``) or, when shared, sees it detached. The
    critic's squared error on returns of order 10-100 otherwise dominates the clipped
    gradient (``benchmarks/bench_imitation.py`` measures it; ``critic_to_encoder=True``
    restores that behaviour of a shared encoder, for such comparisons).

    Samples whose return is NaN (:func:`collect_crowd`) train the actor only.

    Returns:
        The last epoch's mean ``actor_mse`` and ``critic_mse``.
    """
    obs, act, ret = data.arrays()
    policy = model.policy
    params = [p for n, p in policy.named_parameters() if n != "log_std"]
    opt = torch.optim.Adam(params, lr=lr)
    m = len(act)
    act_t = torch.as_tensor(act)
    ret_t = torch.as_tensor(ret, dtype=torch.float32)
    policy.set_training_mode(True)
    stats = {"actor_mse": float("nan"), "critic_mse": float("nan")}
    for _ in range(epochs):
        order = rng.permutation(m)
        a_sum = c_sum = 0.0
        c_num = 0
        for s in range(0, m, batch_size):
            idx = order[s:s + batch_size]
            ob = policy.obs_to_tensor({k: v[idx] for k, v in obs.items()})[0]
            mean, value = _heads(policy, ob, critic_to_encoder)
            a_loss = torch.mean((mean - act_t[idx]) ** 2)
            r = ret_t[idx]
            known = torch.isfinite(r)  # crowd samples carry no return (NaN)
            c_loss = (torch.mean((value[known] - r[known]) ** 2) if bool(known.any())
                      else value.sum() * 0.0)
            opt.zero_grad()
            (a_loss + 0.5 * c_loss).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            a_sum += float(a_loss.detach()) * len(idx)
            c_sum += float(c_loss.detach()) * int(known.sum())
            c_num += int(known.sum())
        stats = {"actor_mse": a_sum / m, "critic_mse": c_sum / max(c_num, 1)}
    policy.set_training_mode(False)
    return stats


def dagger(model: PPO, venv, teacher, steps: int, iterations: int, epochs: int,
           batch_size: int, lr: float, gamma: float, seed: int = 0,
           progress: bool = True, log: Any = None, extra: DaggerData | None = None
           ) -> dict[str, Any]:
    """Run DAgger (module docstring) on ``model`` in place.

    Args:
        model: the PPO model whose policy is trained.
        venv: an SB3 ``VecEnv`` over :class:`egosim.envs.vector.EgoVectorEnv` (seeded).
        teacher: ``obs -> actions (E, A)``, e.g. a ``SamplingController`` on ``venv``.
        steps: env steps collected per iteration (all envs together).
        iterations: DAgger iterations (the first one is pure teacher).
        epochs, batch_size, lr: :func:`fit_student` settings per iteration.
        gamma: discount of the critic's return targets.
        log: optional ``callable(name: str, value: float, step: int)`` (TensorBoard).
        extra: samples collected beforehand (e.g. :func:`collect_crowd`), part of every fit.

    Returns:
        Per-iteration ``beta``, behaviour success rate, samples and losses.
    """
    if steps < 1 or iterations < 1:
        raise ValueError(f"steps and iterations must be >= 1; got {steps}, {iterations}")
    rng = np.random.default_rng(seed)
    data = DaggerData()
    if extra is not None:
        data.obs = {k: list(v) for k, v in extra.obs.items()}
        data.actions, data.returns = list(extra.actions), list(extra.returns)
    bar = None
    if progress:
        from tqdm import tqdm

        desc = "imitation (DAgger)" if iterations > 1 else "imitation (behaviour cloning)"
        bar = tqdm(total=steps * iterations, desc=desc, unit="step",
                   file=sys.stderr, dynamic_ncols=True)
    history = []
    for k in range(iterations):
        beta = 1.0 - k / iterations
        rollout = _collect(model, venv, teacher, steps, beta, rng, gamma, data, bar)
        fit = fit_student(model, data, epochs, batch_size, lr, rng)
        row = {"iteration": k, "beta": beta, "samples": len(data), **rollout, **fit}
        history.append(row)
        if log is not None:
            for key in ("success_rate", "actor_mse", "critic_mse"):
                log(f"imitation/{key}", row[key], k)
    if bar is not None:
        bar.close()
    return {"iterations": history, "samples": len(data)}
