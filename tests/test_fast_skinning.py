"""All-vertex fast path (speed): SparseSkinning equals smplx.SMPLX, correctives kept."""

from __future__ import annotations

import pytest
import torch

from egosim.envs.humans import BodyModel
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.motion.body_layer import BodyLayer
from egosim.envs.motion.rotations_torch import axis_angle_to_matrix

TOL = 1e-5  # m


@pytest.fixture(scope="module")
def models():
    """The procedural SMPL-X bodies, one ``BodyModel`` per gender."""
    return [BodyModel(g) for g in GENDERS]


@pytest.fixture(scope="module")
def body(models):
    return BodyLayer(models=[m.smplx for m in models])


def _motion(h: int, t: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    aa = torch.randn(h, t, 22, 3, generator=g) * 0.5
    return {"aa": aa, "rot": axis_angle_to_matrix(aa), "betas": torch.randn(h, 10, generator=g),
            "transl": torch.randn(h, t, 3, generator=g)}


def _smplx(model: BodyModel, aa: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor
           ) -> torch.Tensor:
    """``smplx.SMPLX.forward`` vertices ``(T, V, 3)`` of one human (``aa (T, 22, 3)``)."""
    t = aa.shape[0]
    with torch.no_grad():
        return model(betas=betas[None].expand(t, -1), global_orient=aa[:, 0],
                     body_pose=aa[:, 1:].reshape(t, 63), transl=transl).vertices


def test_sequence_matches_smplx_every_gender(models, body):
    assert not body.has_posedirs  # the procedural body has no pose correctives
    x = _motion(4, 3, seed=0)
    gender = torch.tensor([0, 1, 0, 2])  # neutral humans 0 and 2 share a product
    v = body.vertices_sequence(x["rot"], x["betas"], gender, x["transl"])
    assert v.shape == (4, 3, 10475, 3) and v.dtype == torch.float32 and v.is_contiguous()
    for i in range(4):
        ref = _smplx(models[int(gender[i])], x["aa"][i], x["betas"][i], x["transl"][i])
        assert (ref - v[i]).abs().max() < TOL
    # other splits into sparse products (frame chunks, humans per product) agree
    chunk = body.skinning.chunk
    try:
        for c in (2, 6):  # 2 frames per product; 3 frames x 2 humans per product
            body.skinning.chunk = c
            again = body.vertices_sequence(x["rot"], x["betas"], gender, x["transl"])
            assert (again - v).abs().max() < 1e-6
    finally:
        body.skinning.chunk = chunk


def test_flat_bodies_grouped_by_shape(body):
    """``vertices`` on independent bodies: equal shapes grouped, in or out of order."""
    x = _motion(2, 3, seed=1)
    seq = body.vertices_sequence(x["rot"], x["betas"], torch.tensor([2, 0]), x["transl"])
    # interleave the two humans' frames: each human's bodies are no consecutive run
    order = torch.tensor([0, 3, 1, 4, 2, 5])
    rot = x["rot"].reshape(6, 22, 3, 3)[order]
    betas = x["betas"].repeat_interleave(3, 0)[order]
    gender = torch.tensor([2, 2, 2, 0, 0, 0])[order]
    v = body.vertices(rot, betas, gender, x["transl"].reshape(6, 3)[order])
    assert (v - seq.reshape(6, 10475, 3)[order]).abs().max() < 1e-6


def test_prior_rollout_vertices_match_smplx(models, body):
    from egosim.envs.motion.prior import MotionPrior

    prior = MotionPrior.load(body=body)
    out = prior.rollout(1, batch_size=1, seed=3)
    v = prior.vertices(out)
    t = out.transl.shape[1]
    assert v.shape == (1, t, 10475, 3)
    for i in range(1):
        with torch.no_grad():
            ref = models[int(out.gender[i])](
                betas=out.betas[i:i + 1].expand(t, -1), global_orient=out.global_orient[i],
                body_pose=out.body_pose[i], transl=out.transl[i]).vertices
        assert (ref - v[i]).abs().max() < TOL
    # a reused output buffer is filled in place with the same vertices
    buffer = torch.full_like(v, float("nan"))
    again = prior.vertices(out, buffer=buffer)
    assert again.data_ptr() == buffer.data_ptr() and torch.equal(again, v)
    with pytest.raises(ValueError, match="out must be a contiguous"):
        prior.vertices(out, buffer=buffer[:, :1])


def test_pose_correctives_applied_when_present(models):
    """A model with non-zero posedirs: the fast path adds the same correctives as smplx."""
    neutral = BodyModel("neutral")  # a private copy: its posedirs are perturbed below
    g = torch.Generator().manual_seed(7)
    posedirs = neutral.smplx.posedirs
    posedirs.copy_(torch.randn(posedirs.shape, generator=g) * 2e-3)
    body = BodyLayer(models=[neutral.smplx, models[1].smplx, models[2].smplx])
    assert body.has_posedirs and body.skinning.has_posedirs
    x = _motion(2, 3, seed=2)
    gender = torch.tensor([0, 1])
    v = body.vertices_sequence(x["rot"], x["betas"], gender, x["transl"])
    ref = _smplx(neutral, x["aa"][0], x["betas"][0], x["transl"][0])
    plain = _smplx(models[0], x["aa"][0], x["betas"][0], x["transl"][0])
    assert (ref - plain).abs().max() > 5e-3  # the correctives move vertices by millimetres+
    assert (ref - v[0]).abs().max() < TOL
    # the gender whose posedirs are zero still matches
    assert (_smplx(models[1], x["aa"][1], x["betas"][1], x["transl"][1]) - v[1]
            ).abs().max() < TOL
    # chunked per-frame products and the flat API agree
    body.skinning.chunk = 2
    flat = body.vertices(x["rot"][0], x["betas"][:1].expand(3, -1), torch.zeros(3, dtype=int),
                         x["transl"][0])
    assert (flat - ref).abs().max() < TOL


def test_kinematic_tree_equals_smplx_chain(models):
    from smplx.lbs import batch_rigid_transform

    from egosim.envs.humans.sequence_skinning import KinematicTree

    parents = models[0].smplx.parents
    g = torch.Generator().manual_seed(5)
    rot = axis_angle_to_matrix(torch.randn(7, 55, 3, generator=g))
    joints = torch.randn(7, 55, 3, generator=g)
    posed, rel = KinematicTree(parents)(rot, joints)
    ref_posed, ref_rel = batch_rigid_transform(rot, joints, parents, dtype=torch.float32)
    assert (posed - ref_posed).abs().max() < 1e-6 and (rel - ref_rel).abs().max() < 1e-6
    with pytest.raises(ValueError, match="parents"):
        KinematicTree(torch.tensor([-1, 2, 0]))


def test_markers_use_the_tree_with_smplx_values_and_gradients(body):
    """BodyLayer.markers (tree-level kinematics, per-gender weight products, reused rest
    shapes) equals the smplx chain in value and gradient, for mixed genders."""
    from smplx.lbs import batch_rigid_transform

    g = torch.Generator().manual_seed(9)
    n = 5
    aa = (0.4 * torch.randn(n, 22, 3, generator=g)).requires_grad_(True)
    betas = torch.randn(n, 10, generator=g)
    gender = torch.tensor([0, 1, 2, 1, 0])
    transl = torch.randn(n, 3, generator=g)

    def reference(a: torch.Tensor) -> torch.Tensor:
        rot = axis_angle_to_matrix(a)
        full = torch.cat([rot, body.const_rot[gender]], 1)
        joints = body.rest_joints(betas, gender)
        _, rel = batch_rigid_transform(full, joints, body.parents, dtype=rot.dtype)
        tf = torch.einsum("bkj,bjmn->bkmn", body.m_weights[gender], rel)
        v = body.rest_markers(betas, gender)
        return torch.einsum("bkmn,bkn->bkm", tf[..., :3, :3], v) + tf[..., :3, 3] \
            + transl[:, None]

    ref = reference(aa)
    (grad_ref,) = torch.autograd.grad(ref.square().sum(), aa)
    out, _ = body.markers(axis_angle_to_matrix(aa), betas, gender, transl,
                          rest=body.rest(betas, gender))
    (grad,) = torch.autograd.grad(out.square().sum(), aa)
    assert (out - ref).abs().max() < 1e-5
    assert (grad - grad_ref).abs().max() < 1e-3 * grad_ref.abs().max()
    # the default (rest computed inside) is the same
    again, _ = body.markers(axis_angle_to_matrix(aa.detach()), betas, gender, transl)
    assert (again - out.detach()).abs().max() < 1e-6


def test_bad_inputs_are_clear(models, body):
    x = _motion(1, 2, seed=4)
    gender = torch.tensor([0])
    with pytest.raises(ValueError, match="transl must have shape"):
        body.vertices_sequence(x["rot"], x["betas"], gender, x["transl"][:, :1])
    with pytest.raises(ValueError, match="rot must have shape"):
        body.vertices_sequence(x["rot"][0], x["betas"], gender, x["transl"])
    with pytest.raises(ValueError, match="one smplx model per gender"):
        BodyLayer(models=[models[0].smplx])
    markers_only = BodyLayer(models=[m.smplx for m in models], with_vertices=False)
    with pytest.raises(RuntimeError, match="with_vertices=False"):
        markers_only.vertices_sequence(x["rot"], x["betas"], gender, x["transl"])
