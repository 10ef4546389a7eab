"""Figures of merit of the motion prior, from markers and from body vertices.

Definitions (world frame, z up, floor at z = 0, 40 fps):

* lowest foot marker: per frame, the one of the six foot markers (heels, toes, ...) with the
  smallest height; its height ``h_t``;
* contact: frames with ``h_t < contact_height`` (0.05 m);
* foot height at contact: mean ``h_t`` over contact frames (m);
* foot skating: mean horizontal speed (m/s) of the lowest foot marker of frame ``t`` between
  ``t`` and ``t + 1``, over contact frames;
* pelvis height: the pelvis estimated from markers (:class:`~.marker_frame.MarkerJoints`), so
  training data and rollouts are measured the same way;
* diversity: average pairwise distance (APD) of samples from one seed motion: mean over pairs
  of the mean per-marker Euclidean distance over all frames (m);
* reconstruction: mean per-marker Euclidean distance (m) over the 18 future frames;
* primitive floor: median over primitives of the lowest foot-marker height in the primitive
  (the rollout's floor-contact target, see :mod:`.prior`).

The SSM2 foot markers sit on the skin 2-5 cm above the sole, so the marker figures above say
little about whether a foot touches the floor. The *sole* figures measure the SMPL-X body
surface instead (:func:`sole_track`, :func:`sole_stats`):

* lowest foot vertex: per frame, the vertex with the smallest height among the vertices of
  the ``left_foot`` and ``right_foot`` parts (:func:`egosim.envs.humans.body_part_labels` of
  the body layer's skinning weights; :func:`foot_vertex_ids`) of the posed body; in contact
  this is a sole vertex. Its height ``s_t`` (m);
* sole contact: frames with ``s_t < contact_height`` (0.05 m);
* sole height at contact: mean ``s_t`` over sole-contact frames (m; 0 = sole on the floor,
  < 0 = foot through the floor);
* sole skating: mean horizontal speed (m/s) of the lowest foot vertex of frame ``t`` between
  ``t`` and ``t + 1``, over sole-contact frames.

Rollouts are measured on the prior's regressed bodies (:meth:`.prior.MotionPrior.vertices`),
data on its own SMPL-X parameters (:func:`data_sole_stats`), both with
:meth:`.body_layer.BodyLayer.vertices_sequence`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from egosim.envs.humans.marker_set import FOOT_MARKER_INDICES
from egosim.envs.motion.canonical_markers import MarkerJoints
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

from .cvae import MarkerCVAE, constant_velocity

__all__ = ["foot_stats", "pelvis_heights", "data_reference", "apd", "reconstruction_errors",
           "evaluate_all", "foot_vertex_ids", "sole_track", "sole_stats",
           "rollout_sole_stats", "data_sole_stats",
           "regressor_error", "rollout_metrics", "FPS", "CONTACT_HEIGHT"]

FPS = 40.0
CONTACT_HEIGHT = 0.05


def _lowest_point(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Height ``(B, T)`` of the lowest of ``points (B, T, K, 3)`` per frame, and the
    horizontal displacement ``(B, T - 1)`` (m) of that point (same index) from ``t`` to
    ``t + 1``."""
    h, idx = points[..., 2].min(-1)  # (B, T)
    low = torch.gather(points, 2, idx[..., None, None].expand(*idx.shape, 1, 3)).squeeze(2)
    nxt = torch.gather(points[:, 1:], 2, idx[:, :-1, None, None].expand(
        *idx[:, :-1].shape, 1, 3)).squeeze(2)
    return h, (nxt - low[:, :-1])[..., :2].norm(dim=-1)


def _contact_stats(heights: torch.Tensor, steps: torch.Tensor, fps: float,
                   contact_height: float) -> dict[str, float]:
    """Height at contact (m), skating (m/s), contact fraction and minimum height (m).

    Args:
        heights: ``(B, T)`` height of the lowest point per frame (m).
        steps: ``(B, T - 1)`` horizontal displacement of that point from ``t`` to ``t + 1``.
        fps: frame rate (Hz).
        contact_height: contact when ``heights < contact_height`` (m); frame ``T - 1`` (no
            successor) is left out.
    """
    h = heights.double()
    speed = steps.double() * fps
    contact = h[:, :-1] < contact_height
    n = int(contact.sum())
    return {
        "height_contact": float(h[:, :-1][contact].mean()) if n else float("nan"),
        "skating": float(speed[contact].mean()) if n else float("nan"),
        "contact_fraction": float(contact.double().mean()),
        "min_height": float(h.min()),
    }


def foot_stats(markers: np.ndarray | torch.Tensor, fps: float = FPS,
               contact_height: float = CONTACT_HEIGHT) -> dict[str, float]:
    """Foot height at contact, skating and contact fraction of ``(B, T, 67, 3)`` world markers."""
    m = torch.as_tensor(markers, dtype=torch.float64)
    h, steps = _lowest_point(m[:, :, torch.as_tensor(FOOT_MARKER_INDICES)])  # 6 foot markers
    s = _contact_stats(h, steps, fps, contact_height)
    return {"foot_height_contact": s["height_contact"], "skating": s["skating"],
            "contact_fraction": s["contact_fraction"], "min_foot_height": s["min_height"]}


def foot_vertex_ids(body: Any) -> np.ndarray:
    """Ids ``(F,)`` of the SMPL-X vertices of the ``left_foot`` and ``right_foot`` parts.

    Parts come from :func:`egosim.envs.humans.body_part_labels` applied to the skinning
    weights of ``body`` (a :class:`~.body_layer.BodyLayer` built with vertices), first
    gender's model, as :class:`egosim.envs.rewards.PenetrationProbe` does (SMPL-X genders
    share the topology). The feet include the ankle region; the lowest of them in a frame is
    a sole vertex whenever a foot is near the floor.
    """
    from egosim.envs.humans import BODY_PART_NAMES, body_part_labels

    if body.skinning is None:
        raise RuntimeError("foot_vertex_ids needs a BodyLayer built with with_vertices=True")
    skin = body.skinning.genders[0]
    weights = torch.zeros(skin.num_vertices, skin.num_joints, dtype=torch.float64)
    joint = skin.col.view(-1, 4)[:, 0].long() // 4  # Phi has 4 columns per non-zero weight
    weights[skin.rows, joint] = skin.w.double()
    labels = body_part_labels(weights.numpy())
    feet = [BODY_PART_NAMES.index("left_foot"), BODY_PART_NAMES.index("right_foot")]
    return np.nonzero(np.isin(labels, feet))[0]


@torch.no_grad()
def sole_track(body: Any, rot: torch.Tensor, betas: torch.Tensor, gender: torch.Tensor,
               transl: torch.Tensor, frame_rot: torch.Tensor | None = None,
               frame_origin: torch.Tensor | None = None, foot_ids: np.ndarray | None = None,
               max_bodies: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest foot vertex of ``H`` bodies over ``T`` frames (see the module docstring).

    Vertices come from :meth:`~.body_layer.BodyLayer.vertices_sequence` (equal to
    ``smplx.SMPLX``), at most ``max_bodies`` bodies at a time (one frame of overlap between
    time chunks for the displacement), so memory stays at ``max_bodies x 10475 x 3`` floats.

    Args:
        body: a :class:`~.body_layer.BodyLayer` built with vertices.
        rot: ``(H, T, 22, 3, 3)`` global orientation and 21 body-joint rotations.
        betas: ``(H, S)`` shape coefficients; gender: ``(H,)`` gender index.
        transl: ``(H, T, 3)`` smplx translation (m), in the parameters' frame.
        frame_rot, frame_origin: optional ``(H, 3, 3)`` / ``(H, 3)`` rigid map
            ``p_world = R p + o`` from the parameters' frame to the world frame (z up,
            floor at z = 0), e.g. a primitive's canonical -> world transform; default
            identity (parameters already in the world frame).
        foot_ids: foot vertex ids (default :func:`foot_vertex_ids` of ``body``).
        max_bodies: bodies (humans x frames) posed per call.

    Returns:
        ``heights (H, T)``: height (m, world) of the lowest foot vertex per frame;
        ``steps (H, T - 1)``: horizontal displacement (m) of the lowest foot vertex of frame
        ``t`` (the same vertex) from ``t`` to ``t + 1``.
    """
    h_n, t_n = rot.shape[:2]
    ids = torch.as_tensor(foot_vertex_ids(body) if foot_ids is None else foot_ids)
    tc = max(1, min(t_n, max_bodies - 1))  # frames per chunk (+1 overlap frame)
    hc = max(1, max_bodies // (tc + 1))  # humans per chunk
    heights = rot.new_empty(h_n, t_n)
    steps = rot.new_empty(h_n, max(t_n - 1, 0))
    for a in range(0, h_n, hc):
        b = min(a + hc, h_n)
        for s in range(0, t_n, tc):
            e = min(s + tc, t_n)
            e1 = min(e + 1, t_n)
            v = body.vertices_sequence(rot[a:b, s:e1], betas[a:b], gender[a:b],
                                       transl[a:b, s:e1])
            feet = v[:, :, ids]  # (h, e1 - s, F, 3)
            if frame_rot is not None:
                feet = torch.einsum("hij,htfj->htfi", frame_rot[a:b].to(feet.dtype), feet)
            if frame_origin is not None:
                feet = feet + frame_origin[a:b, None, None].to(feet.dtype)
            h, st = _lowest_point(feet)
            heights[a:b, s:e] = h[:, :e - s]
            steps[a:b, s:e1 - 1] = st[:, :e1 - 1 - s]
    return heights, steps


def sole_stats(heights: torch.Tensor, steps: torch.Tensor, fps: float = FPS,
               contact_height: float = CONTACT_HEIGHT) -> dict[str, float]:
    """Sole figures of a :func:`sole_track` result (see the module docstring).

    Returns ``sole_height_contact`` (m), ``sole_skating`` (m/s), ``sole_contact_fraction``
    and ``sole_min_height`` (m); contact: ``heights < contact_height`` on frames
    ``0 .. T - 2``.
    """
    return {f"sole_{k}": v for k, v in _contact_stats(heights, steps, fps,
                                                       contact_height).items()}


@torch.no_grad()
def rollout_sole_stats(prior: Any, out: Any, **kwargs: Any) -> dict[str, float]:
    """:func:`sole_stats` of a rollout's regressed bodies (the vertices of
    :meth:`.prior.MotionPrior.vertices`, posed in chunks); ``kwargs`` go to
    :func:`sole_stats`."""
    b, t = out.transl.shape[:2]
    pose = torch.cat([out.global_orient[:, :, None], out.body_pose.reshape(b, t, 21, 3)], 2)
    heights, steps = sole_track(prior.body, axis_angle_to_matrix(pose), out.betas,
                                out.gender, out.transl)
    return sole_stats(heights, steps, **kwargs)


@torch.no_grad()
def data_sole_stats(data: Any, body: Any, **kwargs: Any) -> dict[str, float]:
    """:func:`sole_stats` of primitives' own SMPL-X bodies, in the world frame.

    Args:
        data: a :class:`~.model_data.PrimitiveSet` with per-frame parameters (canonical
            frame; each primitive's ``rot``/``origin`` map it to the world frame).
        body: a :class:`~.body_layer.BodyLayer` built with vertices.
        kwargs: passed to :func:`sole_stats`.
    """
    if not data.has_params or data.transl is None:
        raise ValueError("data_sole_stats needs per-frame SMPL-X parameters in the data")
    n, t = data.global_orient.shape[:2]
    pose = np.concatenate([data.global_orient[:, :, None],
                           data.body_pose.reshape(n, t, 21, 3)], 2)
    rot = axis_angle_to_matrix(torch.from_numpy(pose).float())
    heights, steps = sole_track(
        body, rot, torch.from_numpy(data.betas).float(), torch.from_numpy(data.gender).long(),
        torch.from_numpy(data.transl).float(), frame_rot=torch.from_numpy(data.rot).float(),
        frame_origin=torch.from_numpy(data.origin).float())
    return sole_stats(heights, steps, **kwargs)


def pelvis_heights(markers: np.ndarray | torch.Tensor, joints: MarkerJoints) -> torch.Tensor:
    """Pelvis height (m) ``(B, T)`` of ``(B, T, 67, 3)`` world markers."""
    m = torch.as_tensor(markers, dtype=torch.float32)
    return joints(m)[..., 0, 2]


def data_reference(world_markers: np.ndarray, joints: MarkerJoints) -> dict[str, float]:
    """Reference figures of training primitives ``(N, 20, 67, 3)`` (world frame)."""
    stats = foot_stats(world_markers)
    ph = pelvis_heights(world_markers, joints)
    feet = torch.as_tensor(world_markers)[:, :, torch.as_tensor(FOOT_MARKER_INDICES), 2]
    stats["primitive_floor"] = float(feet.amin(dim=(1, 2)).median())
    return {**{f"data_{k}": v for k, v in stats.items()},
            "data_pelvis_min": float(ph.min()), "data_pelvis_max": float(ph.max()),
            "data_pelvis_mean": float(ph.mean())}


def apd(samples: torch.Tensor) -> float:
    """Average pairwise distance (m) of ``(S, T, 67, 3)`` samples (see module docstring)."""
    s = samples.shape[0]
    if s < 2:
        raise ValueError("apd needs at least two samples")
    d = [(samples[i] - samples[j]).norm(dim=-1).mean() for i in range(s) for j in range(i + 1, s)]
    return float(torch.stack(d).mean())


@torch.no_grad()
def reconstruction_errors(cvae: MarkerCVAE, markers: np.ndarray | torch.Tensor,
                          batch: int = 512) -> dict[str, float]:
    """C-VAE vs constant velocity on canonical primitives ``(N, 20, 67, 3)``.

    Returns mean per-marker errors (m): ``cvae_posterior`` (z = posterior mean),
    ``cvae_prior_mean`` (z = 0, no access to the future) and ``constant_velocity``.
    """
    x = torch.as_tensor(markers, dtype=torch.float32)
    h_n = cvae.config.history
    sums = {"cvae_posterior": 0.0, "cvae_prior_mean": 0.0, "constant_velocity": 0.0}
    for s in range(0, x.shape[0], batch):
        hist, fut = x[s:s + batch, :h_n], x[s:s + batch, h_n:]
        mu, _ = cvae.encode(hist, fut)
        preds = {"cvae_posterior": cvae.decode(hist, mu),
                 "cvae_prior_mean": cvae.decode(hist, torch.zeros_like(mu)),
                 "constant_velocity": constant_velocity(hist, fut.shape[1])}
        for k, p in preds.items():
            sums[k] += float((p - fut).norm(dim=-1).mean(dim=(1, 2)).sum())
    return {k: v / x.shape[0] for k, v in sums.items()}


@torch.no_grad()
def regressor_error(regressor: Any, markers: torch.Tensor, betas: torch.Tensor,
                    gender: torch.Tensor, batch: int = 2048) -> dict[str, float]:
    """Mean and 95th-percentile marker re-projection error (m) of ``(N, 67, 3)`` markers."""
    errs = []
    for s in range(0, markers.shape[0], batch):
        out = regressor(markers[s:s + batch], betas[s:s + batch], gender[s:s + batch])
        errs.append((out.markers - markers[s:s + batch]).norm(dim=-1).mean(-1))
    e = torch.cat(errs)
    return {"regressor_mean": float(e.mean()), "regressor_p95": float(e.quantile(0.95))}


@torch.no_grad()
def rollout_metrics(prior: Any, num_primitives: int = 100, batch_size: int = 8, seed: int = 1,
                    diversity_samples: int = 10) -> dict[str, float]:
    """Long rollouts from ``z ~ N(0, I)`` and diversity, against ``prior.data_stats``."""
    out = prior.rollout(num_primitives, batch_size=batch_size, seed=seed)
    m = out.markers
    res: dict[str, float] = {"rollout_nan": float(bool(torch.isnan(m).any())),
                             "rollout_frames": float(m.shape[1])}
    res.update({f"rollout_{k}": v for k, v in foot_stats(m).items()})
    if prior.body.skinning is not None:  # body surface: the regressed bodies' lowest foot vertex
        res.update({f"rollout_{k}": v for k, v in rollout_sole_stats(prior, out).items()})
    ph = pelvis_heights(m, prior.marker_joints)
    res["rollout_pelvis_min"] = float(ph.min())
    res["rollout_pelvis_max"] = float(ph.max())
    ref = prior.data_stats
    if "data_pelvis_min" in ref:
        inside = (ph >= ref["data_pelvis_min"]) & (ph <= ref["data_pelvis_max"])
        res["rollout_pelvis_in_range"] = float(inside.double().mean())
    if ref.get("data_skating"):
        res["skating_ratio"] = res["rollout_skating"] / ref["data_skating"]
    # diversity: the same seed motion, different z
    init_state, _ = prior.reset(1, seed)
    init = {"history": init_state.history.expand(diversity_samples, -1, -1, -1),
            "betas": init_state.betas.expand(diversity_samples, -1),
            "gender": init_state.gender.expand(diversity_samples)}
    for p in (1, 10):
        d = prior.rollout(p, batch_size=diversity_samples, seed=seed + 1, init=init)
        res[f"diversity_apd_{p}"] = apd(d.markers[:, 2:])
    return res


@torch.no_grad()
def evaluate_all(prior: Any, held: Any, num_primitives: int = 100, batch_size: int = 8,
                 seed: int = 1, max_frames: int = 4000) -> dict[str, float]:
    """Every model-card figure on held-out primitives ``held`` (a ``PrimitiveSet``).

    Regressor: re-projection error on up to ``max_frames`` held-out frames (canonical
    markers with their bodies' betas and gender); C-VAE: :func:`reconstruction_errors`;
    rollouts: :func:`rollout_metrics`. Held-out data (``heldout_*``): the marker figures of
    :func:`foot_stats` and, with per-frame SMPL-X parameters, the sole figures of
    :func:`data_sole_stats` (the ``data_*`` figures are the training data's, stored in the
    checkpoint).
    """
    n, t = held.markers.shape[:2]
    rng = np.random.default_rng(seed)
    pick = rng.choice(n * t, min(max_frames, n * t), replace=False)
    i, f = pick // t, pick % t
    res = regressor_error(prior.regressor, torch.from_numpy(held.markers[i, f]),
                          torch.from_numpy(held.betas[i].astype(np.float32)),
                          torch.from_numpy(held.gender[i].astype(np.int64)))
    res.update({f"recon_{k}": v for k, v in
                reconstruction_errors(prior.cvae, held.markers).items()})
    res.update(rollout_metrics(prior, num_primitives, batch_size, seed))
    if prior.floor_contact:  # the raw model, without the floor-contact shift
        prior.floor_contact = False
        try:
            raw = rollout_metrics(prior, num_primitives, batch_size, seed)
        finally:
            prior.floor_contact = True
        res.update({f"raw_{k}": v for k, v in raw.items() if not k.startswith("diversity")})
    res.update({f"heldout_{k}": v for k, v in foot_stats(held.world_markers()).items()})
    if held.has_params and held.transl is not None and prior.body.skinning is not None:
        res.update({f"heldout_{k}": v for k, v in data_sole_stats(held, prior.body).items()})
    res.update(prior.data_stats)
    return res
