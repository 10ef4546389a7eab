"""Motion model (model half): C-VAE, regressor, body layer, prior, training, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egosim.config import ConfigError, load_config
from egosim.envs.motion.body_layer import BodyLayer
from egosim.envs.motion.canonical_markers import MarkerJoints, to_canonical, to_world
from egosim.envs.motion.config import TrainPriorConfig
from egosim.envs.motion.cvae import CVAEConfig, MarkerCVAE, constant_velocity, cvae_loss
from egosim.envs.motion.metrics import apd, foot_stats, reconstruction_errors
from egosim.envs.motion.regressor import (
    MarkerRegressor,
    RegressorConfig,
    pose_bodies,
    regressor_loss,
    sample_bodies,
)
from egosim.envs.motion.rotations_torch import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from egosim.envs.motion.training_data import clip_sequences, synthetic_primitives


@pytest.fixture(scope="module")
def body():
    return BodyLayer(with_vertices=True)


@pytest.fixture(scope="module")
def walks():
    """Synthetic walking primitives: 8 clips of 3 s (train 6, held-out 2)."""
    data = synthetic_primitives(num_clips=8, frames=120, seed=3)
    return data.split(0.25, seed=0)


def _small_cvae(mean=None, std=None):
    return MarkerCVAE(CVAEConfig(hidden=64, mlp=(128, 64), latent=16), mean, std)


# -- rotations and body layer ---------------------------------------------------------------
def test_rotation_round_trips():
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(500, 3, generator=g) * 1.5
    rot = axis_angle_to_matrix(aa)
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(500, 3, 3), atol=1e-5)
    back = axis_angle_to_matrix(matrix_to_axis_angle(rot))
    assert (back - rot).abs().max() < 1e-5
    assert (rot6d_to_matrix(matrix_to_rot6d(rot)) - rot).abs().max() < 1e-5
    # near pi the log map must still be right
    near_pi = torch.tensor([[0.0, 0.0, np.pi - 1e-4], [np.pi - 1e-5, 0.0, 0.0]])
    assert (axis_angle_to_matrix(matrix_to_axis_angle(axis_angle_to_matrix(near_pi)))
            - axis_angle_to_matrix(near_pi)).abs().max() < 1e-4


def test_body_layer_matches_smplx(body):
    from egosim.envs.humans import BodyModel
    from egosim.envs.humans.model_files import GENDERS

    g = torch.Generator().manual_seed(1)
    aa = torch.randn(3, 22, 3, generator=g) * 0.4
    betas = torch.randn(3, 10, generator=g)
    tr = torch.randn(3, 3, generator=g)
    gender = torch.tensor([0, 1, 2])
    rot = axis_angle_to_matrix(aa)
    m, j = body.markers(rot, betas, gender, tr)
    v = body.vertices(rot, betas, gender, tr)
    for i in range(3):
        ref = BodyModel(GENDERS[i])(betas=betas[i:i + 1], global_orient=aa[i:i + 1, 0],
                                    body_pose=aa[i:i + 1, 1:].reshape(1, 63),
                                    transl=tr[i:i + 1])
        from egosim.envs.humans import markers as markers_of

        assert (markers_of(ref)[0] - m[i]).abs().max() < 1e-5
        assert (ref.vertices[0] - v[i]).abs().max() < 1e-5
        assert (ref.joints[0, :55] - j[i]).abs().max() < 1e-5
    with pytest.raises(ValueError, match="rot must have shape"):
        body.markers(rot[:, :5], betas, gender, tr)


def test_marker_joints_fit_is_affine_and_equivariant():
    g = torch.Generator().manual_seed(2)
    m = torch.randn(200, 67, 3, generator=g)
    w_true = torch.softmax(torch.randn(3, 67, generator=g), -1)
    j = torch.einsum("jk,nkc->njc", w_true, m)
    mj = MarkerJoints.fit(m, j, ridge=1e-9)
    assert torch.allclose(mj.weights.sum(1), torch.ones(3), atol=1e-5)
    assert (mj(m) - j).abs().max() < 1e-3
    # canonical frame: rotating/translating the body leaves canonical coordinates unchanged
    c, s = np.cos(0.7), np.sin(0.7)
    rz = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float32)
    moved = m[:4] @ rz.T + torch.tensor([1.0, -2.0, 0.3])
    o1, r1 = mj.frame(m[:4])
    o2, r2 = mj.frame(moved)
    a = to_canonical(m[:4], o1, r1)
    b = to_canonical(moved, o2, r2)
    assert (a - b).abs().max() < 1e-4
    assert (to_world(a, o1, r1) - m[:4]).abs().max() < 1e-5


# -- C-VAE ----------------------------------------------------------------------------------
def test_cvae_shapes_and_errors():
    model = MarkerCVAE()  # EgoGen sizes
    assert model.config.dim == 201 and model.config.latent == 128
    hist, fut = torch.zeros(4, 2, 67, 3), torch.zeros(4, 18, 67, 3)
    mu, logvar = model.encode(hist, fut)
    assert mu.shape == logvar.shape == (4, 128)
    assert model.decode(hist, torch.zeros(4, 128)).shape == (4, 18, 67, 3)
    with pytest.raises(ValueError, match=r"z must have shape \(4, 128\)"):
        model.decode(hist, torch.zeros(4, 64))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(hist, torch.full((4, 128), float("nan")))
    with pytest.raises(ValueError, match="history must have shape"):
        model.decode(torch.zeros(4, 3, 67, 3), torch.zeros(4, 128))


def test_cvae_loss_terms():
    d = 201
    target = torch.randn(2, 18, d)
    hist = torch.randn(2, 2, d)
    zeros = torch.zeros(2, 128)
    out = {"pred_n": target.clone(), "target_n": target, "history_n": hist, "mu": zeros,
           "logvar": zeros}
    loss = cvae_loss(out)
    assert float(loss["total"]) == pytest.approx(0.0, abs=1e-7)
    # a constant offset costs rec only at the first frame difference
    out["pred_n"] = target + 0.5
    loss = cvae_loss(out, diff_weight=3.0, kl_weight=0.0)
    assert float(loss["rec"]) == pytest.approx(0.5, rel=1e-5)
    assert float(loss["diff"]) == pytest.approx(0.5 / 18, rel=1e-4)
    assert float(loss["total"]) == pytest.approx(0.5 + 3 * 0.5 / 18, rel=1e-4)
    # KL of N(1, 1) per dim is 0.5 -> 64 over 128 dims; robust form sqrt(1 + 64^2) - 1
    out["mu"] = torch.ones(2, 128)
    loss = cvae_loss(out, kl_weight=2.0)
    assert float(loss["kl"]) == pytest.approx(64.0, rel=1e-5)
    assert float(loss["robust_kl"]) == pytest.approx(np.sqrt(1 + 64.0**2) - 1, rel=1e-5)


@pytest.mark.slow
def test_cvae_beats_constant_velocity_on_held_out(walks):
    train, held = walks
    x = torch.from_numpy(train.markers).reshape(-1, 201)
    with torch.random.fork_rng(devices=[]):  # seeded init; the global RNG is restored
        torch.manual_seed(0)
        model = _small_cvae(x.mean(0), x.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(250):
        b = torch.from_numpy(train.markers[rng.integers(0, len(train), 32)])
        loss = cvae_loss(model(b[:, :2], b[:, 2:], generator=gen), kl_weight=0.01)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    model.eval()
    errs = reconstruction_errors(model, held.markers)
    print("held-out reconstruction (m):", errs)
    assert errs["cvae_posterior"] < 0.5 * errs["constant_velocity"]
    assert errs["cvae_prior_mean"] < errs["constant_velocity"]


def test_constant_velocity_is_exact_for_linear_motion():
    h = torch.zeros(1, 2, 67, 3)
    h[:, 1] += 0.01
    cv = constant_velocity(h, 18)
    assert torch.allclose(cv[0, -1], torch.full((67, 3), 0.19))


# -- regressor ------------------------------------------------------------------------------
@pytest.mark.slow
def test_regressor_learns_body_model_samples(body, walks):
    train, held = walks
    poses = np.concatenate([train.global_orient[..., None, :],
                            train.body_pose.reshape(*train.body_pose.shape[:2], 21, 3)],
                           2).reshape(-1, 22, 3)
    held_poses = np.concatenate([held.global_orient[..., None, :],
                                 held.body_pose.reshape(*held.body_pose.shape[:2], 21, 3)],
                                2).reshape(-1, 22, 3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reg = MarkerRegressor(RegressorConfig(blocks=4), body=body)
    opt = torch.optim.Adam(reg.parameters(), lr=2e-3)
    test = pose_bodies(body, sample_bodies(held_poses, np.random.default_rng(99), 256, 0.1, 1.0))
    with torch.no_grad():
        before = (reg(test["markers"], test["betas"], test["gender"]).markers
                  - test["markers"]).norm(dim=-1).mean()
    for step in range(200):
        gt = pose_bodies(body, sample_bodies(poses, np.random.default_rng([1, step]), 128,
                                             0.1, 1.0))
        out = reg(gt["markers"], gt["betas"], gt["gender"])
        loss = regressor_loss(out, gt["rot"], gt["transl"], gt["pelvis_rest"])
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    with torch.no_grad():
        out = reg(test["markers"], test["betas"], test["gender"])
    err = (out.markers - test["markers"]).norm(dim=-1).mean()
    print(f"regressor held-out marker error: {float(before):.4f} -> {float(err):.4f} m")
    assert err < 0.04 and err < before / 4
    # the returned parameters reproduce the returned markers through the body model
    m2, _ = body.markers(out.rot, test["betas"], test["gender"], out.transl)
    assert (m2 - out.markers).abs().max() < 1e-4
    with pytest.raises(ValueError, match="betas must have shape"):
        reg(test["markers"], test["betas"][:, :5], test["gender"])


# -- metrics --------------------------------------------------------------------------------
def test_foot_metrics_on_known_motion():
    from egosim.envs.humans.marker_set import FOOT_MARKER_INDICES

    m = torch.ones(1, 41, 67, 3)
    m[..., 2] = 0.5
    feet = torch.as_tensor(FOOT_MARKER_INDICES)
    m[:, :, feet, 2] = 0.01
    m[:, :, feet, 0] = torch.arange(41.0)[None, :, None] * 0.01  # 0.4 m/s at 40 fps
    s = foot_stats(m)
    assert s["foot_height_contact"] == pytest.approx(0.01, abs=1e-6)
    assert s["skating"] == pytest.approx(0.4, rel=1e-4)
    assert s["contact_fraction"] == pytest.approx(1.0)
    x = torch.zeros(3, 5, 67, 3)
    x[1] += 1.0
    assert apd(x) == pytest.approx((1.0 + 1.0 + 0.0) / 3 * np.sqrt(3), rel=1e-5)


def test_clip_sequences_rebuild_timeline(walks):
    train, _ = walks
    seqs = clip_sequences(train)
    from dataclasses import replace

    no_start = clip_sequences(replace(train, start=None))
    assert [s.shape for s in seqs] == [s.shape for s in no_start]
    assert all(s.shape[0] == 120 for s in seqs)


# -- config, training, resume, prior -------------------------------------------------------
def _fmt4(v):
    return f"{v:.4f}"


def _tiny_cfg(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"),
        checkpoint_every=4, progress=False, tensorboard=True, log_every=2, num_seeds=8,
        eval_primitives=3, eval_batch=2,
        cvae=dict(hidden=32, mlp=[64, 32], latent=8),
        stage1=dict(steps=6, batch_size=8), stage2=dict(steps=3, batch_size=2,
                                                        num_primitives=2, lr=1e-4),
        regressor=dict(steps=3, batch_size=16, blocks=2),
        data=dict(source="synthetic", synthetic_clips=4, synthetic_frames=80))
    base.update(kw)
    return TrainPriorConfig(**base)


def test_shipped_config_validates_and_rejects_bad_keys():
    cfg = load_config("train_prior", schema=TrainPriorConfig)
    assert cfg.cvae.latent == 128 and cfg.regressor.blocks == 10 and cfg.blend == 0.5
    with pytest.raises(ConfigError, match="stage1.stepz"):
        load_config("train_prior", ["stage1.stepz=3"], schema=TrainPriorConfig)
    with pytest.raises(ConfigError, match="blend"):
        load_config("train_prior", ["blend=1.5"], schema=TrainPriorConfig)
    with pytest.raises(ConfigError, match="data.path"):
        load_config("train_prior", ["data.source=npz"], schema=TrainPriorConfig)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """An uninterrupted tiny run, and one interrupted at step 5 then resumed."""
    from egosim.envs.motion import train_prior

    data = synthetic_primitives(4, 80, seed=0)
    root = tmp_path_factory.mktemp("prior")
    full = train_prior.run(_tiny_cfg(root / "a"), data=data)
    cfg_b = _tiny_cfg(root / "b")
    original = train_prior.Trainer.train_step

    def interrupted(self):
        if self.step == 5:
            raise KeyboardInterrupt
        return original(self)

    train_prior.Trainer.train_step = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            train_prior.run(cfg_b, data=data)
    finally:
        train_prior.Trainer.train_step = original
    resumed = train_prior.run(cfg_b, data=data)
    return full, resumed, root


def test_resume_equals_uninterrupted_run(tiny_run):
    full, resumed, root = tiny_run
    assert (root / "b" / "run" / "checkpoints" / "step_0000005.pt").is_file()  # saved on exit
    a = torch.load(full["checkpoint"], weights_only=False)
    b = torch.load(resumed["checkpoint"], weights_only=False)
    assert a["step"] == b["step"] == 12
    for key in ("cvae", "regressor"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name} differs after resume"
    for phase, st in a["opts"].items():
        for pid, s in st["state"].items():
            for k, v in s.items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(
                    b["opts"][phase]["state"][pid][k])), f"{phase} optimiser state differs"
    assert full["last_losses"] == resumed["last_losses"]
    assert any((root / "a" / "run" / "tensorboard").iterdir())
    # exported next to the models: metrics and model cards with the measured figures
    export = root / "b" / "export"
    card = (export / "cvae.md").read_text()
    assert "egosim train-prior" in card
    assert _fmt4(resumed["metrics"]["recon_cvae_posterior"]) in card
    assert "regressor_mean" in resumed["metrics"]
    assert (export / "regressor.md").is_file() and (export / "metrics.json").is_file()
    assert (export / "cvae.pt").stat().st_size < 10e6


def test_rollout_shapes_world_frame_and_errors(tiny_run):
    from egosim.envs.motion.prior import MotionPrior

    _, resumed, _ = tiny_run
    prior = MotionPrior.load(resumed["export_dir"])
    out = prior.rollout(3, batch_size=2, seed=0)
    t = 2 + 18 * 3
    assert out.markers.shape == (2, t, 67, 3)
    assert out.global_orient.shape == (2, t, 3) and out.body_pose.shape == (2, t, 63)
    assert out.transl.shape == (2, t, 3) and out.z.shape == (2, 3, 8)
    assert torch.isfinite(out.markers).all()
    # world frame: z up, the seed motion stands on the floor at z = 0
    pelvis = prior.marker_joints(out.markers[:, :2])[..., 0, :]
    assert ((pelvis[..., 2] > 0.6) & (pelvis[..., 2] < 1.3)).all()
    assert out.markers[:, :2, :, 2].min() > -0.05
    # same seed, same bytes; explicit z equals sampled z
    again = prior.rollout(3, batch_size=2, seed=0, z=out.z)
    assert torch.equal(again.markers, out.markers)
    # step API: one primitive
    state, _ = prior.reset(2, seed=0)
    state2, step = prior.step(state, out.z[:, 0])
    assert step.markers.shape == (2, 18, 67, 3)
    assert torch.equal(step.markers, out.markers[:, 2:20])
    with pytest.raises(ValueError, match="z must have shape"):
        prior.rollout(3, batch_size=2, z=torch.zeros(2, 3, 7))
    with pytest.raises(ValueError, match="NaN"):
        prior.step(state, torch.full((2, 8), float("nan")))
    with pytest.raises(ValueError, match="num_primitives"):
        prior.rollout(0)
    v = prior.vertices(prior.rollout(1, batch_size=1))
    assert v.shape == (1, 20, 10475, 3) and torch.isfinite(v).all()


def test_load_missing_checkpoint_is_clear(tmp_path):
    from egosim.envs.motion.prior import MotionPrior

    with pytest.raises(FileNotFoundError, match="cvae.pt"):
        MotionPrior.load(tmp_path)
