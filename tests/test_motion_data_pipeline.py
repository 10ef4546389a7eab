"""Motion data pipeline: AMASS/SAMP loaders, canonical primitives, the primitive dataset."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from egosim.envs.motion.body_sequences import evaluate, rest_joints
from egosim.envs.motion.canonical_joints import canonicalize, canonicalize_params, uncanonicalize
from egosim.envs.motion.loaders import load_amass, load_folder, load_samp
from egosim.envs.motion.primitive_dataset import (
    DatasetConfig,
    PrimitiveDataset,
    build_primitive_dataset,
)
from egosim.envs.motion.primitive_windows import cut_windows, window_starts


def _fake_motion(t: int, fps: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    poses = 0.1 * rng.standard_normal((t, 165))
    poses[:, 0] = np.pi / 2  # AMASS's upright orientation about x
    trans = np.stack([np.arange(t) / fps, np.zeros(t), np.full(t, 0.9)], -1)
    return poses, trans


def test_amass_and_samp_loaders_read_written_files(tmp_path):
    poses, trans = _fake_motion(121, 120.0, 0)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    np.savez(tmp_path / "sub" / "deeper" / "walk_stageii.npz", poses=poses, trans=trans,
             betas=np.arange(16) / 10.0, gender=np.array("female"),
             mocap_framerate=np.array(120.0))
    np.savez(tmp_path / "sub" / "shape.npz", betas=np.zeros(16), gender="male")
    clip = load_amass(tmp_path / "sub" / "deeper" / "walk_stageii.npz")
    assert clip.fps == 40.0 and clip.num_frames == 41  # 1 s at 40 fps
    assert clip.gender == "female" and np.allclose(clip.betas, np.arange(10) / 10.0)
    assert np.allclose(clip.global_orient[0], poses[0, :3])
    assert np.allclose(clip.body_pose[-1], poses[-1, 3:66], atol=1e-9)
    assert np.allclose(clip.transl[:, 0], np.arange(41) / 40.0)  # resampled in time

    p2, t2 = _fake_motion(61, 30.0, 1)
    samp = {"pose_est_fullposes": p2[:, :156], "pose_est_trans": t2,
            "shape_est_betas": np.ones(10), "mocap_framerate": 30.0}
    with open(tmp_path / "sit.pkl", "wb") as f:
        pickle.dump(samp, f)
    s = load_samp(tmp_path / "sit.pkl")
    assert s.num_frames == 81 and s.gender == "neutral"
    assert np.allclose(s.body_pose[0], p2[0, 3:66])

    clips = load_folder(tmp_path)
    assert sorted(c.name for c in clips) == ["sit", "sub/deeper/walk_stageii"]


def test_loaders_name_missing_fields(tmp_path):
    np.savez(tmp_path / "bad.npz", poses=np.zeros((10, 165)), betas=np.zeros(10),
             mocap_framerate=30.0)
    with pytest.raises(KeyError, match="trans"):
        load_amass(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", poses=np.zeros((10, 12)), trans=np.zeros((10, 3)),
             betas=np.zeros(10), mocap_framerate=30.0)
    with pytest.raises(ValueError, match="poses"):
        load_amass(tmp_path / "short.npz")
    with pytest.raises(FileNotFoundError):
        load_folder(tmp_path / "nowhere")


def test_windows():
    assert window_starts(19).size == 0
    assert list(window_starts(45, 20, 10)) == [0, 10, 20]
    x = np.arange(45)
    assert cut_windows(x, np.array([0, 10]))[1, 0] == 10


def test_canonical_frame_definition_and_round_trip():
    rng = np.random.default_rng(0)
    n = 16
    pelvis = rng.normal(size=(n, 3))
    yaw = rng.uniform(-np.pi, np.pi, n)
    across = np.stack([np.cos(yaw), np.sin(yaw), 0.05 * rng.normal(size=n)], -1) * 0.09
    lh, rh = pelvis - across, pelvis + across
    pts = rng.normal(size=(n, 20, 67, 3))
    pts[:, 0, 0] = pelvis  # a point at the first-frame pelvis
    canon, rot, origin = canonicalize(pts, pelvis, lh, rh)
    assert np.allclose(canon[:, 0, 0], 0.0, atol=1e-12)  # pelvis at the origin
    c_lh = np.einsum("nji,nj->ni", rot, lh - origin)
    c_rh = np.einsum("nji,nj->ni", rot, rh - origin)
    assert np.allclose((c_rh - c_lh)[:, 1], 0.0, atol=1e-12)  # hip axis along +x
    assert np.all((c_rh - c_lh)[:, 0] > 0)
    assert np.allclose(rot[:, :, 2], [0.0, 0.0, 1.0])  # z up
    assert np.allclose(rot @ np.swapaxes(rot, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.abs(uncanonicalize(canon, rot, origin) - pts).max() < 1e-5


@pytest.fixture(scope="module")
def small_config():
    return DatasetConfig(clips={"walk": 2, "run": 2}, num_augmented=3, num_shapes=2,
                         stride=15, seed=5)


@pytest.fixture(scope="module")
def small_dataset(small_config):
    return build_primitive_dataset(small_config, progress=False)


def test_dataset_interface(small_dataset):
    ds = small_dataset
    n = len(ds)
    assert n > 10
    assert ds.markers.shape == (n, 20, 67, 3) and ds.markers.dtype == np.float32
    assert ds.origin.shape == (n, 3) and ds.rot.shape == (n, 3, 3)
    assert ds.betas.shape == (n, 10) and ds.gender.dtype == np.int8
    assert set(np.unique(ds.gender)) <= {0, 1, 2}
    assert ds.smplx["global_orient"].shape == (n, 20, 3)
    assert ds.smplx["body_pose"].shape == (n, 20, 63)
    assert ds.smplx["transl"].shape == (n, 20, 3)
    assert ds.clip_id.dtype == np.int32 and ds.clip_id.max() < len(ds.clip_names)
    assert ds.fps == 40.0
    # markers are canonical: primitives face +y, hips along x, floor below at -origin_z
    world = ds.world_markers()
    assert world[..., 2].min() > -0.01
    assert np.all(ds.origin[:, 2] > 0.5)
    train, held = ds.split([0])
    assert len(train) + len(held) == n and len(held) > 0


def test_dataset_params_reproduce_canonical_markers(small_dataset):
    ds = small_dataset
    idx = np.arange(0, len(ds), max(1, len(ds) // 6))
    for i in idx:
        gender = ["neutral", "male", "female"][int(ds.gender[i])]
        m, _ = evaluate(ds.smplx["global_orient"][i], ds.smplx["body_pose"][i],
                        ds.smplx["transl"][i], ds.betas[i].astype(np.float64), gender)
        assert np.abs(m - ds.markers[i]).max() < 1e-4


def test_canonicalize_params_matches_point_transform():
    rng = np.random.default_rng(1)
    go = rng.normal(scale=0.5, size=(1, 4, 3))
    tr = rng.normal(size=(1, 4, 3))
    bp = 0.2 * rng.normal(size=(4, 63))
    betas = rng.normal(size=10)
    m_world, j_world = evaluate(go[0], bp, tr[0], betas)
    canon, rot, origin = canonicalize(m_world[None], j_world[None, 0, 0], j_world[None, 0, 1],
                                      j_world[None, 0, 2])
    j0 = rest_joints(betas)[0][None]
    go_c, tr_c = canonicalize_params(go, tr, j0, rot, origin)
    m_c, _ = evaluate(go_c[0], bp, tr_c[0], betas)
    assert np.abs(m_c - canon[0]).max() < 1e-5


@pytest.mark.slow
def test_dataset_build_is_deterministic_and_saves(small_config, small_dataset, tmp_path):
    again = build_primitive_dataset(small_config, progress=False)
    for key in ("markers", "origin", "rot", "betas", "gender", "clip_id"):
        assert np.array_equal(getattr(again, key), getattr(small_dataset, key)), key
    for key, value in small_dataset.smplx.items():
        assert np.array_equal(again.smplx[key], value), key
    assert again.clip_names == small_dataset.clip_names
    other = build_primitive_dataset(
        DatasetConfig(**{**small_config.__dict__, "seed": 6}), progress=False)
    assert not np.array_equal(other.betas, small_dataset.betas)
    path = small_dataset.save(tmp_path / "prims.npz")
    back = PrimitiveDataset.load(path)
    assert np.array_equal(back.markers, small_dataset.markers)
    assert np.array_equal(back.smplx["transl"], small_dataset.smplx["transl"])
    assert back.clip_names == small_dataset.clip_names
    assert back.card["num_primitives"] == len(small_dataset)
    assert small_config.key() != DatasetConfig().key()
