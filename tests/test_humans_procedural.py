"""The procedural SMPL-X files: format, surface, proportions, anatomy, skinning, shape space."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest
import torch

smplx = pytest.importorskip("smplx")
trimesh = pytest.importorskip("trimesh")

from egosim.envs.humans.model_files import GENDERS  # noqa: E402
from egosim.envs.humans.procedural import generator as procedural  # noqa: E402
from egosim.envs.humans.skeleton import JOINT_NAMES, PARENTS, joint_index  # noqa: E402


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Generate all three genders once into a fresh cache (no pre-existing cache used)."""
    cache = tmp_path_factory.mktemp("egosim_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOSIM_CACHE_DIR", str(cache))
        mp.delenv("EGOSIM_SMPLX_DIR", raising=False)
        paths = {g: procedural.procedural_model_path(g) for g in GENDERS}
        yield paths


def _load(path, **kw):
    return smplx.SMPLX(model_path=str(path), **kw)


@pytest.fixture(scope="module")
def neutral(model_files):
    model = _load(model_files["neutral"], flat_hand_mean=True)
    with torch.no_grad():
        out = model()
    data = dict(np.load(model_files["neutral"]))
    return {"model": model, "v": out.vertices[0].numpy(), "joints": out.joints[0].numpy(),
            "data": data}


def _markers():
    text = resources.files("egosim.envs.humans").joinpath("data/ssm2_67_markers.json")
    return json.loads(text.read_text())["markers"]


def _extra():
    from smplx.vertex_ids import vertex_ids

    return vertex_ids["smplx"]


def test_files_in_cache_and_keyed_by_version(model_files):
    for g, p in model_files.items():
        assert p.name == f"SMPLX_{g.upper()}.npz"
        assert procedural.GENERATOR_VERSION in str(p.parent)
        assert p.is_file()


@pytest.mark.parametrize("gender", ["neutral", "male", "female"])
def test_smplx_loads_files_unchanged(model_files, gender):
    model = _load(model_files[gender], use_face_contour=True, use_pca=True, num_pca_comps=12)
    with torch.no_grad():
        out = model(left_hand_pose=torch.randn(1, 12) * 0.3)
    assert out.vertices.shape == (1, 10475, 3)
    assert out.joints.shape == (1, 55 + 21 + 51 + 17, 3)
    assert torch.isfinite(out.vertices).all() and torch.isfinite(out.joints).all()
    data = np.load(model_files[gender])
    for key, shape in {
        "v_template": (10475, 3), "J_regressor": (55, 10475), "weights": (10475, 55),
        "kintree_table": (2, 55), "shapedirs": (10475, 3, 20), "posedirs": (10475, 3, 486),
        "hands_componentsl": (45, 45), "hands_componentsr": (45, 45), "hands_meanl": (45,),
        "hands_meanr": (45,), "lmk_faces_idx": (51,), "lmk_bary_coords": (51, 3),
        "dynamic_lmk_faces_idx": (79, 17), "dynamic_lmk_bary_coords": (79, 17, 3),
    }.items():
        assert data[key].shape == shape, key
    assert list(model.parents.numpy()) == list(PARENTS)
    assert data["kintree_table"][1].tolist() == list(range(55))
    assert list(data["joint_names"]) == list(JOINT_NAMES)


def test_surface_closed_and_genus_zero(neutral):
    mesh = trimesh.Trimesh(neutral["v"], neutral["data"]["f"], process=False)
    assert len(mesh.vertices) == 10475
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == 2
    assert mesh.volume > 0.04  # outward normals, a human-sized volume (m^3)
    assert len(mesh.split(only_watertight=False)) == 1


def test_proportions(neutral):
    v, j = neutral["v"], neutral["joints"]
    height = np.ptp(v[:, 1])
    assert 1.5 < height < 1.95
    span = np.ptp(v[:, 0])
    assert abs(span / height - 1.0) < 0.08
    assert np.linalg.norm(j[0]) < 0.05  # pelvis near the origin
    # head: from the chin (lowest head-labelled vertex on the front) to the top
    from egosim.envs.humans.body_parts import BODY_PART_NAMES, body_part_labels

    labels = body_part_labels(neutral["data"]["weights"])
    head = v[labels == BODY_PART_NAMES.index("head")]
    ratio = np.ptp(head[:, 1]) / height
    assert 1 / 9 < ratio < 1 / 6
    # feet at the bottom, head at the top
    for name in ("left_ankle", "right_ankle", "left_foot", "right_foot"):
        assert j[joint_index(name), 1] < v[:, 1].min() + 0.12
    assert j[joint_index("head"), 1] > v[:, 1].max() - 0.25
    # canonical frame: face toward +z, left hand toward +x
    assert j[joint_index("left_wrist"), 0] > 0.5 > -0.5 > j[joint_index("right_wrist"), 0]


def test_joint_regressor_reproduces_design(neutral):
    from egosim.envs.humans.skeleton import rest_joints

    reg = neutral["data"]["J_regressor"]
    assert np.all(reg >= 0) and np.allclose(reg.sum(1), 1.0)
    assert np.abs(neutral["joints"][:55] - rest_joints()).max() < 1e-3
    head = neutral["joints"][joint_index("head")]
    for eye, sign in (("left_eye_smplhf", 1), ("right_eye_smplhf", -1)):
        e = neutral["joints"][joint_index(eye)]
        assert sign * e[0] > 0.01 and e[2] > head[2] + 0.04 and abs(e[1] - head[1]) < 0.08


def test_marker_anatomy(neutral):
    v, j = neutral["v"], neutral["joints"]
    mk = {n: v[i] for n, i in _markers().items()}
    J = {n: j[joint_index(n)] for n in JOINT_NAMES}
    floor = v[:, 1].min()
    for s, side in ((1, "left"), (-1, "right")):
        p = "L" if s > 0 else "R"
        ankle, knee, elbow, wrist = (J[f"{side}_ankle"], J[f"{side}_knee"], J[f"{side}_elbow"],
                                     J[f"{side}_wrist"])
        hee, toe = mk[f"{p}HEE"], mk[f"{p}TOE"]
        assert s * hee[0] > 0 and hee[2] < ankle[2] - 0.02 and hee[1] < ankle[1]
        assert toe[2] > ankle[2] + 0.12 and s * toe[0] > 0
        assert hee[1] - floor < 0.05 and toe[1] - floor < 0.06
        assert s * (mk[f"{p}ANK"][0] - ankle[0]) > 0.02  # outer ankle
        assert s * (mk[f"{p}KNE"][0] - knee[0]) > 0.03  # outer knee
        assert s * (mk[f"{p}KNI"][0] - knee[0]) < -0.03  # inner knee
        assert s * (mk[f"{p}MT5"][0] - mk[f"{p}MT1"][0]) > 0.04  # 5th metatarsal outside
        assert mk[f"{p}SHO"][1] > J[f"{side}_shoulder"][1] + 0.03  # top of shoulder
        assert abs(mk[f"{p}ELB"][0] - elbow[0]) < 0.04 and mk[f"{p}ELB"][2] < elbow[2] - 0.02
        if f"{p}IWR" in mk:  # the SSM2 set has LIWR but no RIWR
            assert mk[f"{p}IWR"][2] > wrist[2] + 0.015
        assert mk[f"{p}OWR"][2] < wrist[2] - 0.015
        assert s * mk[f"{p}FIN"][0] > s * wrist[0] + 0.05 and mk[f"{p}FIN"][1] > wrist[1]
        assert s * mk[f"{p}THMB"][0] > s * wrist[0] and mk[f"{p}THMB"][2] > wrist[2] + 0.03
        assert mk[f"{p}FWT"][2] > 0.05 and mk[f"{p}BWT"][2] < -0.05
        assert mk[f"{p}BUM"][2] < -0.05 and mk[f"{p}BUM"][1] < J["pelvis"][1]
        assert s * mk[f"{p}FHD"][0] > 0 and mk[f"{p}FHD"][2] > 0.03
        assert s * mk[f"{p}BHD"][0] > 0 and mk[f"{p}BHD"][2] < -0.02
        assert s * mk[f"{p}CHEECK"][0] > 0.02 and mk[f"{p}CHEECK"][2] > 0.05
        assert mk[f"{p}RSTBEEF"][1] > hee[1] + 0.03 and mk[f"{p}RSTBEEF"][2] > ankle[2]
    eye_y = J["left_eye_smplhf"][1]
    assert mk["RFHD"][1] > eye_y and mk["RFHD"][0] < 0 and mk["RFHD"][2] > 0.03
    assert mk["LBHD"][0] > 0 and mk["LBHD"][2] < 0
    assert mk["C7"][2] < J["neck"][2] - 0.03 and abs(mk["C7"][0]) < 0.02
    assert mk["CLAV"][2] > J["neck"][2] + 0.05 and abs(mk["CLAV"][0]) < 0.02
    assert mk["STRN"][2] > 0.08 and mk["T8"][2] < -0.08
    assert mk["STRN"][1] < mk["CLAV"][1] and mk["MBLLY"][1] < mk["STRN"][1]


def test_extra_joint_vertices_anatomy(neutral):
    v, j = neutral["v"], neutral["joints"]
    ids = _extra()
    J = {n: j[joint_index(n)] for n in JOINT_NAMES}
    head = J["head"]
    assert v[ids["nose"], 2] > head[2] + 0.1 and abs(v[ids["nose"], 0]) < 0.01
    assert v[ids["leye"], 0] > 0.01 > -0.01 > v[ids["reye"], 0]
    assert v[ids["lear"], 0] > head[0] + 0.06 and v[ids["rear"], 0] < head[0] - 0.06
    for side, c in (("left", "l"), ("right", "r")):
        s = 1 if side == "left" else -1
        wrist = J[f"{side}_wrist"]
        for f in ("thumb", "index", "middle", "ring", "pinky"):
            tip = v[ids[f"{c}{f}"]]
            j3 = J[f"{side}_{f}3"]
            assert s * tip[0] > s * j3[0] > s * wrist[0]  # beyond the last joint and the wrist
        big, small = v[ids[f"{side[0].upper()}BigToe"]], v[ids[f"{side[0].upper()}SmallToe"]]
        heel = v[ids[f"{side[0].upper()}Heel"]]
        assert s * (small[0] - big[0]) > 0.03  # big toe inside
        assert big[2] > J[f"{side}_foot"][2] and heel[2] < J[f"{side}_ankle"][2]
        assert heel[1] - v[:, 1].min() < 0.03


def test_skinning_locality(neutral):
    w = neutral["data"]["weights"]
    assert np.allclose(w.sum(1), 1.0) and np.all(w >= 0)
    assert (w > 0).sum(1).max() <= 4
    model = _load(procedural.procedural_model_path("neutral"), flat_hand_mean=True)
    body_pose = torch.zeros(1, 63)
    elbow = joint_index("left_elbow")
    body_pose[0, (elbow - 1) * 3 + 1] = -np.pi / 2
    with torch.no_grad():
        posed = model(body_pose=body_pose).vertices[0].numpy()
    v = neutral["v"]
    disp = np.linalg.norm(posed - v, axis=1)
    from egosim.envs.humans.body_parts import BODY_PART_NAMES, body_part_labels

    labels = body_part_labels(w)
    part = {n: labels == i for i, n in enumerate(BODY_PART_NAMES)}
    ex = neutral["joints"][elbow, 0]
    still = (part["torso"] | part["head"] | part["right_upper_arm"] | part["right_hand"]
             | part["left_thigh"] | (part["left_upper_arm"] & (v[:, 0] < ex - 0.06)))
    assert disp[still].max() <= 1e-3
    assert np.median(disp[part["left_hand"]]) > 0.2
    assert np.median(disp[part["left_forearm"]]) > 0.08


def test_shape_directions(neutral, model_files):
    model = _load(model_files["neutral"], flat_hand_mean=True)
    v0 = neutral["v"]
    heights = []
    for b in np.linspace(-2, 2, 5):
        betas = torch.zeros(1, 10)
        betas[0, 0] = float(b)
        with torch.no_grad():
            heights.append(np.ptp(model(betas=betas).vertices[0, :, 1].numpy()))
    assert np.all(np.diff(heights) > 0.05)
    assert 1.5 < heights[0] and heights[-1] < 1.95

    def shaped(k, value=1.0):
        betas = torch.zeros(1, 10)
        betas[0, k] = value
        with torch.no_grad():
            out = model(betas=betas)
        return out.vertices[0].numpy(), out.joints[0].numpy()

    def waist(v):  # horizontal perimeter proxy: extent of a thin slice at the navel
        sl = v[np.abs(v[:, 1] - 0.10) < 0.015]
        sl = sl[np.abs(sl[:, 0]) < 0.25]
        return np.ptp(sl[:, 0]) + np.ptp(sl[:, 2])

    for k in range(10):
        vk, _ = shaped(k)
        assert np.abs(vk - v0).max() > 0.005, f"shape direction {k} has no effect"
    assert waist(shaped(1)[0]) > waist(v0) + 0.02  # weight
    vl, jl = shaped(2)
    assert vl[:, 1].min() < v0[:, 1].min() - 0.04  # leg length: feet lower
    va, ja = shaped(3)
    lw = joint_index("left_wrist")
    assert ja[lw, 0] > neutral["joints"][lw, 0] + 0.03  # arm length
    _, js = shaped(4)
    ls = joint_index("left_shoulder")
    assert js[ls, 0] > neutral["joints"][ls, 0] + 0.02  # shoulder width
    _, jh = shaped(5)
    lh = joint_index("left_hip")
    assert jh[lh, 0] > neutral["joints"][lh, 0] + 0.015  # hip width
    _, jt = shaped(6)
    nk = joint_index("neck")
    assert jt[nk, 1] > neutral["joints"][nk, 1] + 0.03  # torso length
    vh, _ = shaped(7)
    top = v0[:, 1].argmax()
    assert vh[top, 1] > v0[top, 1] + 0.005  # head size
    vb, _ = shaped(8)
    assert vb[:, 2].max() >= v0[:, 2].max() - 1e-6 and waist(vb) > waist(v0) + 0.01  # belly


def test_expression_moves_face_only(model_files, neutral):
    model = _load(model_files["neutral"], flat_hand_mean=True)
    from egosim.envs.humans.body_parts import BODY_PART_NAMES, body_part_labels

    labels = body_part_labels(neutral["data"]["weights"])
    for k in range(10):
        expr = torch.zeros(1, 10)
        expr[0, k] = 1.0
        with torch.no_grad():
            v = model(expression=expr).vertices[0].numpy()
        d = np.linalg.norm(v - neutral["v"], axis=1)
        assert d.max() > 0.002
        face_or_neck = np.isin(labels, [BODY_PART_NAMES.index("head"),
                                        BODY_PART_NAMES.index("neck")])
        assert d[~face_or_neck].max() < 1e-4
        assert d[labels == BODY_PART_NAMES.index("neck")].max() < 0.5 * d.max()


def test_genders_share_topology_and_differ(model_files):
    data = {g: np.load(p) for g, p in model_files.items()}
    for key in ("f", "weights", "J_regressor", "lmk_faces_idx", "kintree_table"):
        assert np.array_equal(data["neutral"][key], data["male"][key])
        assert np.array_equal(data["neutral"][key], data["female"][key])
    h = {g: np.ptp(d["v_template"][:, 1]) for g, d in data.items()}
    assert h["male"] > h["neutral"] > h["female"]
    width = {g: np.ptp(d["v_template"][np.abs(d["v_template"][:, 1] - 0.44) < 0.01, 0])
             for g, d in data.items()}
    assert width["male"] > width["female"]
    for g in ("male", "female"):
        mesh = trimesh.Trimesh(data[g]["v_template"], data[g]["f"], process=False)
        assert mesh.is_watertight


def test_hand_basis_and_landmarks(neutral):
    d = neutral["data"]
    for side in "lr":
        comps = d[f"hands_components{side}"]
        assert np.allclose(comps @ comps.T, np.eye(45), atol=1e-10)
    # component 0 curls the left fingers toward the palm (-y)
    model = _load(procedural.procedural_model_path("neutral"), flat_hand_mean=True,
                  num_pca_comps=6)
    with torch.no_grad():
        curled = model(left_hand_pose=torch.tensor([[1.5, 0, 0, 0, 0, 0]])).vertices[0].numpy()
    tip = _extra()["lmiddle"]
    assert curled[tip, 1] < neutral["v"][tip, 1] - 0.03
    assert curled[tip, 0] < neutral["v"][tip, 0] - 0.02
    lm = neutral["joints"][76:127]  # 51 static landmarks after 55 joints + 21 extra
    head = neutral["joints"][joint_index("head")]
    assert np.all(lm[:, 2] > head[2] + 0.06)  # on the face
    nose_tip = lm[13]
    assert nose_tip[2] == pytest.approx(lm[:, 2].max(), abs=0.01)
    assert lm[19:25, 0].mean() < 0 < lm[25:31, 0].mean()  # right eye at -x, left at +x


@pytest.mark.slow
def test_generation_deterministic(model_files):
    again = procedural.generate_body_arrays()
    for g, path in model_files.items():
        with np.load(path) as stored:
            for key, arr in again[g].items():
                assert np.array_equal(stored[key], arr), (g, key)
                assert stored[key].tobytes() == np.asarray(arr).tobytes(), (g, key)
