"""BodyModel: files, input checks, markers, fast path, parts, appearance, world frame."""

from __future__ import annotations

import json
import shutil
from importlib import resources

import numpy as np
import pytest
import torch

pytest.importorskip("smplx")

from egosim.envs.humans import (  # noqa: E402
    BODY_PART_NAMES,
    FOOT_MARKER_INDICES,
    MARKER_NAMES,
    MARKER_VERTEX_IDS,
    Y_UP_TO_Z_UP,
    BodyModel,
    body_part_labels,
    body_to_world,
    eye_midpoint,
    markers,
    sample_appearance,
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A fresh cache for the procedural files and no licensed-file folder configured."""
    root = tmp_path_factory.mktemp("egosim_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOSIM_CACHE_DIR", str(root))
        mp.delenv("EGOSIM_SMPLX_DIR", raising=False)
        yield root


@pytest.fixture(scope="module")
def body(cache):
    return BodyModel()


def _random_params(b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "betas": torch.randn(b, 10, generator=g),
        "expression": torch.randn(b, 10, generator=g),
        "global_orient": 0.5 * torch.randn(b, 3, generator=g),
        "body_pose": 0.4 * torch.randn(b, 63, generator=g),
        "left_hand_pose": torch.randn(b, 6, generator=g),
        "right_hand_pose": torch.randn(b, 6, generator=g),
        "jaw_pose": 0.1 * torch.randn(b, 3, generator=g),
        "transl": torch.randn(b, 3, generator=g),
    }


def test_default_is_procedural_neutral(body, cache):
    assert body.source == "procedural" and body.gender == "neutral"
    assert str(body.model_path).startswith(str(cache))
    with torch.no_grad():
        out = body()
    assert out.vertices.shape == (1, 10475, 3)
    assert out.joints.shape == (1, 127, 3)
    assert body.faces.shape == (20946, 3)


def test_batched_call_and_genders(cache):
    params = _random_params(5)
    for gender in ("male", "female"):
        model = BodyModel(gender=gender, batch_size=5)
        with torch.no_grad():
            out = model(**params)
        assert out.vertices.shape == (5, 10475, 3)
        assert torch.isfinite(out.vertices).all()
    # a model built for batch 1 accepts any batch size
    model = BodyModel()
    with torch.no_grad():
        assert model(**_random_params(3)).vertices.shape[0] == 3
        assert model().vertices.shape[0] == 1


def test_bad_inputs(body):
    with pytest.raises(ValueError, match="gender"):
        BodyModel(gender="robot")
    with pytest.raises(ValueError, match="betas"):
        body(betas=torch.zeros(1, 7))
    with pytest.raises(ValueError, match="body_pose"):
        body(body_pose=torch.zeros(2, 60))
    with pytest.raises(ValueError, match="batch size"):
        body(betas=torch.zeros(2, 10), global_orient=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="unknown"):
        body.markers_only(pose=torch.zeros(1, 3))
    with torch.no_grad():  # (B, 21, 3) body pose and numpy inputs are accepted
        out = body(body_pose=np.zeros((2, 21, 3), dtype=np.float32))
    assert out.vertices.shape[0] == 2


def test_licensed_file_paths(body, tmp_path, monkeypatch):
    folder = tmp_path / "smplx_models"
    folder.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        BodyModel(model_dir=folder)
    msg = str(err.value)
    assert str(folder) in msg and "SMPLX_NEUTRAL.npz" in msg and "SMPLX_FEMALE.npz" in msg
    # a format-valid file (a copy of the procedural one) is used as it is
    shutil.copy(body.model_path, folder / "SMPLX_NEUTRAL.npz")
    m = BodyModel(model_dir=folder)
    assert m.source == "model_dir" and m.model_path == folder / "SMPLX_NEUTRAL.npz"
    monkeypatch.setenv("EGOSIM_SMPLX_DIR", str(folder))
    m_env = BodyModel()
    assert m_env.source == "env" and m_env.model_path == folder / "SMPLX_NEUTRAL.npz"
    with pytest.raises(FileNotFoundError, match="EGOSIM_SMPLX_DIR") as err:
        BodyModel(gender="male")
    assert "SMPLX_MALE.npz" in str(err.value) and str(folder) in str(err.value)
    with torch.no_grad():
        assert torch.allclose(m_env().vertices, body().vertices)


def test_markers_order_matches_json(body):
    text = resources.files("egosim.envs.humans").joinpath("data/ssm2_67_markers.json")
    data = json.loads(text.read_text())
    assert list(MARKER_NAMES) == list(data["markers"])
    assert MARKER_VERTEX_IDS.tolist() == list(data["markers"].values())
    assert [MARKER_NAMES[i] for i in FOOT_MARKER_INDICES] == data["foot_markers"]
    with torch.no_grad():
        out = body(**_random_params(2))
    mk = markers(out)
    assert mk.shape == (2, 67, 3)
    i = MARKER_NAMES.index("LHEE")
    assert torch.equal(mk[:, i], out.vertices[:, data["markers"]["LHEE"]])
    assert np.array_equal(markers(out.vertices[0].numpy())[0], out.vertices[0, MARKER_VERTEX_IDS]
                          .numpy())
    with pytest.raises(ValueError):
        markers(torch.zeros(1, 100, 3))


def test_markers_only_matches_smplx(body):
    params = _random_params(8, seed=3)
    with torch.no_grad():
        full = body(**params)
        fast = body.markers_only(**params)
        sub = body.vertices_subset([0, 5000, 10474], **params)
    assert torch.allclose(fast.vertices, markers(full), atol=1e-5)
    assert torch.allclose(fast.joints, full.joints[:, :55], atol=1e-5)
    assert torch.allclose(sub.vertices, full.vertices[:, [0, 5000, 10474]], atol=1e-5)


def test_eye_midpoint(body):
    with torch.no_grad():
        out = body()
    mid = eye_midpoint(out)
    assert mid.shape == (1, 3)
    j = out.joints[0]
    assert torch.allclose(mid[0], 0.5 * (j[23] + j[24]))
    assert mid[0, 2] > j[15, 2] + 0.04 and mid[0, 1] > j[12, 1]  # in front, above the neck


def test_body_part_labels(body):
    labels = body_part_labels(body.lbs_weights)
    assert labels.shape == (10475,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(len(BODY_PART_NAMES)))
    with torch.no_grad():
        v = body().vertices[0].numpy()
    lh = v[labels == BODY_PART_NAMES.index("left_hand")]
    rf = v[labels == BODY_PART_NAMES.index("right_foot")]
    head = v[labels == BODY_PART_NAMES.index("head")]
    assert lh[:, 0].min() > 0.55 and rf[:, 0].max() < 0 and rf[:, 1].max() < -0.7
    assert head[:, 1].min() > v[:, 1].max() - 0.3
    assert np.array_equal(body_part_labels(), labels)


def test_appearance_seeded(body):
    a = sample_appearance(7)
    b = sample_appearance(np.random.default_rng(7))
    c = sample_appearance(8)
    assert a.vertex_colors.shape == (10475, 3) and a.vertex_colors.dtype == np.float32
    assert a.vertex_colors.min() >= 0 and a.vertex_colors.max() <= 1
    assert a.vertex_colors.tobytes() == b.vertex_colors.tobytes()
    assert not np.array_equal(a.vertex_colors, c.vertex_colors)
    labels = body_part_labels(body.lbs_weights)
    feet = np.isin(labels, [BODY_PART_NAMES.index("left_foot"),
                            BODY_PART_NAMES.index("right_foot")])
    assert np.all(a.regions[feet] == 4)
    assert np.any(a.regions == 1) and np.any(a.regions == 0)
    hands = labels == BODY_PART_NAMES.index("left_hand")
    assert np.all(a.regions[hands] == 0)  # hands show skin
    with pytest.raises(TypeError):
        sample_appearance(None)


def test_world_frame(body):
    assert np.allclose(Y_UP_TO_Z_UP @ Y_UP_TO_Z_UP.T, np.eye(3))
    assert np.isclose(np.linalg.det(Y_UP_TO_Z_UP), 1.0)
    up, fwd, left = Y_UP_TO_Z_UP @ [0, 1, 0], Y_UP_TO_Z_UP @ [0, 0, 1], Y_UP_TO_Z_UP @ [1, 0, 0]
    assert np.allclose(up, [0, 0, 1]) and np.allclose(fwd, [1, 0, 0]) and np.allclose(left,
                                                                                      [0, 1, 0])
    with torch.no_grad():
        out = body(**{k: v[:1] for k, v in _random_params(1).items() if k == "betas"})
    v = out.vertices
    w = body_to_world(v, yaw=np.pi / 2, position=[1.0, 2.0, 0.0], on_floor=True)
    assert isinstance(w, torch.Tensor) and w.shape == v.shape
    assert torch.isclose(w[..., 2].min(), torch.tensor(0.0), atol=1e-5)
    j = body_to_world(out.joints[0].numpy(), yaw=np.pi / 2, position=[1.0, 2.0, 0.0])
    nose = body_to_world(out.joints[0, 55:56].numpy(), yaw=np.pi / 2, position=[1.0, 2.0, 0.0])
    assert nose[0, 1] > j[15, 1] + 0.05  # yaw 90 deg: facing +y
    assert np.allclose(j[0, :2], [1.0, 2.0], atol=0.05)
