"""Renderer: embree vs the pybullet reference, bodies, noise, lighting, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sensors_support import centered_box, room_with_boxes

from egosim.envs import scenes
from egosim.envs.scenes import class_id
from egosim.sensors import (
    CameraSpec,
    DepthNoise,
    DynamicMesh,
    Lighting,
    MotionBlur,
    Renderer,
    SimpleScene,
    capsule_triangles,
    head_frame,
    pixel_rays,
)

PERSON = class_id("person")


def boxes_scene() -> SimpleScene:
    """A floor, walls and a few boxes (classes: floor 1, wall 2, table 6, chair 7)."""
    sc = room_with_boxes()
    sc.add(centered_box([2.0, 4.5, 1.0], [0.6, 0.6, 2.0]), 7, 6, (0.2, 0.7, 0.2))
    return sc


def look_poses(n: int, seed: int, centre=(0.0, 0.0, 1.5)) -> np.ndarray:
    """``n`` head poses near ``centre`` looking roughly towards +y, randomised."""
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        mid = np.asarray(centre) + rng.uniform(-0.5, 0.5, 3) * [1, 1, 0.3]
        yaw = rng.uniform(-0.8, 0.8)
        right = np.array([np.cos(yaw), -np.sin(yaw), 0.0])
        eyes = np.stack([mid - 0.03 * right, mid + 0.03 * right])
        gaze = np.cross([0.0, 0.0, 1.0], right) + [0, 0, rng.uniform(-0.5, 0.1)]
        poses.append(head_frame(eyes, gaze=gaze))
    return np.stack(poses)


def compare_backends(scene, poses, size=(72, 96), hfov=85.0):
    specs = [CameraSpec(uuid="d", modality="depth", resolution=size, hfov_deg=hfov),
             CameraSpec(uuid="s", modality="semantic", resolution=size, hfov_deg=hfov),
             CameraSpec(uuid="i", modality="instance", resolution=size, hfov_deg=hfov)]
    emb = Renderer(scene).render(specs, poses)
    ref = Renderer(scene, backend="pybullet")
    pyb = ref.render(specs, poses)
    ref.close()
    both = emb["d_valid"] & pyb["d_valid"]
    assert both.mean() > 0.5
    rel = np.abs(emb["d"] - pyb["d"])[both] / pyb["d"][both]
    return emb, pyb, both, rel


def test_embree_matches_pybullet_on_boxes():
    emb, pyb, both, rel = compare_backends(boxes_scene(), look_poses(6, 0))
    assert np.median(rel) <= 0.02
    assert (emb["d_valid"] == pyb["d_valid"]).mean() > 0.99
    same_class = both & (emb["s"] == pyb["s"])
    # Where both see the same class, pixels agree; overall the masks agree on >= 98 %.
    assert (emb["s"] == pyb["s"])[both].mean() >= 0.98
    assert (emb["i"] == pyb["i"])[same_class].mean() >= 0.98
    assert set(np.unique(emb["s"][both])) >= {1, 2, 6, 7}


def test_embree_matches_pybullet_on_procedural_apartment():
    scene = scenes.load("procedural:apartment", seed=3)
    a, b = scene.sample_start_goal(3, min_dist=2.0)
    path = scene.plan_path(a, b)
    poses = []
    for k in np.linspace(0, len(path) - 2, 5).astype(int):
        fwd = path[k + 1] - path[k]
        fwd[2] = 0.0
        fwd /= np.linalg.norm(fwd)
        right = np.array([fwd[1], -fwd[0], 0.0])
        mid = path[k] + [0.0, 0.0, 1.6]
        poses.append(head_frame(np.stack([mid - 0.03 * right, mid + 0.03 * right]),
                                gaze=fwd + [0.0, 0.0, -0.3]))
    emb, pyb, both, rel = compare_backends(scene, np.stack(poses))
    assert np.median(rel) <= 0.02
    assert (emb["s"] == pyb["s"])[both].mean() >= 0.98


def test_outputs_dtypes_shapes_and_single_pose():
    specs = [CameraSpec(uuid=m, modality=m, resolution=(20, 30)) for m in
             ("rgb", "depth", "semantic", "instance", "normal")]
    r = Renderer(boxes_scene())
    poses = look_poses(3, 1)
    out = r.render(specs, poses)
    assert out["rgb"].shape == (3, 20, 30, 3) and out["rgb"].dtype == np.uint8
    assert out["depth"].shape == (3, 20, 30) and out["depth"].dtype == np.float32
    assert out["depth_valid"].dtype == bool
    assert out["semantic"].dtype == np.int32 and out["instance"].dtype == np.int32
    assert out["normal"].shape == (3, 20, 30, 3) and out["normal"].dtype == np.float32
    one = r.render(specs, poses[1])
    for k in out:
        np.testing.assert_array_equal(one[k], out[k][1])
    # Normals are unit, in the camera frame and face the camera: n . ray < 0.
    rays = pixel_rays(specs[0])[0].reshape(20, 30, 3)
    valid = out["depth_valid"]
    n = out["normal"][valid]
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    assert (np.einsum("ij,ij->i", n, np.broadcast_to(rays, valid.shape + (3,))[valid]) < 0).all()
    # The floor's normal is world +z in every view.
    floor = out["semantic"] == 1
    world_n = np.einsum("nij,nhwj->nhwi", poses[:, :3, :3], out["normal"])[floor]
    np.testing.assert_allclose(world_n, np.broadcast_to([0, 0, 1.0], world_n.shape), atol=1e-5)
    # Looking straight up out of the roofless scene: every ray misses.
    up = head_frame(np.array([[-0.03, 0, 1.5], [0.03, 0, 1.5]]), gaze=[0, 0.01, 1.0])
    narrow = [s.model_copy(update={"hfov_deg": 60.0}) for s in specs]
    sky = Renderer(boxes_scene(), lighting=Lighting(background=(0.2, 0.4, 0.6))).render(narrow, up)
    assert not sky["depth_valid"].any() and (sky["depth"] == 0).all()
    assert (sky["semantic"] == -1).all() and (sky["instance"] == -1).all()
    assert (sky["rgb"] == [51, 102, 153]).all() and (sky["normal"] == 0).all()


def test_near_far_clip_like_gl_planes():
    sc = SimpleScene().add(centered_box([0, 2.0, 0], [4, 0.02, 4]), 2, 1)
    pose = head_frame(np.array([[-0.03, 0, 0], [0.03, 0, 0]]), gaze=[0, 1.0, 0])
    spec = CameraSpec(uuid="d", modality="depth", resolution=(8, 8), near=0.1, far=1.9)
    assert not Renderer(sc).render(spec, pose)["d_valid"].any()
    far = spec.model_copy(update={"far": 2.5})
    d = Renderer(sc).render(far, pose)["d"]
    np.testing.assert_allclose(d, 1.99, atol=1e-5)


def test_textured_faces_show_their_texture():
    tex = np.zeros((2, 2, 3), np.uint8)
    tex[0, 0] = tex[1, 1] = 255  # checker: white top-left and bottom-right

    class Tex(SimpleScene):
        pass

    sc = Tex().add(np.array([[[-1, 2, -1], [1, 2, -1], [1, 2, 1]],
                             [[-1, 2, -1], [1, 2, 1], [-1, 2, 1]]], np.float32), 2, 1)
    sc.textures = [tex]
    sc.face_texture = np.zeros(2, np.int32)
    # uv: u along +x, v along +z (v up), one texture over the square.
    sc.face_uv = np.array([[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 1], [0, 1]]], np.float32)
    light = Lighting(direction=(0, 1, 0), ambient=0.0, diffuse=1.0)
    pose = head_frame(np.array([[-0.03, 0, 0], [0.03, 0, 0]]), gaze=[0, 1.0, 0])
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(16, 16), hfov_deg=40.0)
    img = Renderer(sc, lighting=light).render(spec, pose)["rgb"]
    # Image top-left sees x < 0, z > 0: u < 0.5, v > 0.5: texel row 0, column 0 (white).
    assert (img[2, 2] == 255).all() and (img[13, 13] == 255).all()
    assert (img[2, 13] == 0).all() and (img[13, 2] == 0).all()


def test_dynamic_body_appears_in_semantic_and_instance():
    scene = boxes_scene()
    r = Renderer(scene)
    spec = [CameraSpec(uuid="s", modality="semantic", resolution=(48, 64)),
            CameraSpec(uuid="i", modality="instance", resolution=(48, 64)),
            CameraSpec(uuid="d", modality="depth", resolution=(48, 64))]
    pose = head_frame(np.array([[-0.03, -1, 1.5], [0.03, -1, 1.5]]), gaze=[0, 1.0, -0.2])
    before = r.render(spec, pose)
    assert (before["s"] != PERSON).all()
    walker = capsule_triangles([0.0, 1.0, 0.0], 1.7, 0.25)
    scene_tris_before = r.backend.caster.num_faces
    for step, y in enumerate((1.0, 1.5)):  # the body walks; the static BVH is kept
        r.set_dynamic_meshes([DynamicMesh(walker + [0, y - 1.0, 0], PERSON, 100 + step,
                                          (0.9, 0.7, 0.6))])
        out = r.render(spec, pose)
        body = out["s"] == PERSON
        assert 0.02 < body.mean() < 0.5
        assert (out["i"][body] == 100 + step).all()
        assert (out["d"][body] < before["d"][body]).all()  # it occludes the scene
    assert r.backend.caster.num_faces == scene_tris_before
    r.set_dynamic_meshes([])
    np.testing.assert_array_equal(r.render(spec, pose)["s"], before["s"])


def test_wearer_sees_only_own_hands_and_feet():
    r = Renderer(boxes_scene())
    me = capsule_triangles([0.0, 0.0, 0.0], 1.75, 0.2)
    hands = me.mean(axis=1)[:, 2] < 0.3  # stand-in "feet" faces: the bottom of the capsule
    other = capsule_triangles([0.3, 1.5, 0.0], 1.7, 0.25)
    r.set_dynamic_meshes([DynamicMesh(me, PERSON, 101, self_visible=hands),
                          (other, PERSON, 102, (0.2, 0.2, 0.9))])
    eyes = np.array([[-0.03, 0.25, 1.6], [0.03, 0.25, 1.6]])  # just in front of the body
    pose = head_frame(eyes, gaze=[0.0, 0.5, -1.0])  # looking down and ahead
    spec = CameraSpec(uuid="i", modality="instance", resolution=(64, 64), hfov_deg=100.0)
    worn = r.render(spec, np.stack([pose, pose]), wearer=[0, -1])["i"]
    assert (worn[1] == 101).mean() > 0.05  # not worn: the body fills much of the view
    assert 0 < (worn[0] == 101).sum() < (worn[1] == 101).sum() / 3  # worn: only the feet remain
    assert (worn[0] == 102).any()  # the other body stays visible to the wearer
    with pytest.raises(ValueError, match=r"wearer values must be -1 or in \[0, 1\]"):
        r.render(spec, pose, wearer=5)


def test_real_body_model_shows_up_as_person():
    from egosim.envs.humans import BodyModel, body_to_world

    model = BodyModel()
    verts = model().vertices.detach().numpy()[0]
    world = body_to_world(verts, yaw=-np.pi / 2, position=(0.0, 2.5, 0.0), on_floor=True)
    tris = np.asarray(world, np.float32)[np.asarray(model.faces)]
    r = Renderer(boxes_scene())
    r.set_dynamic_meshes([DynamicMesh(tris, PERSON, 7)])
    pose = head_frame(np.array([[-0.03, 1, 1.2], [0.03, 1, 1.2]]), gaze=[0, 1.0, -0.1])
    spec = [CameraSpec(uuid="s", modality="semantic", resolution=(64, 64)),
            CameraSpec(uuid="i", modality="instance", resolution=(64, 64))]
    out = r.render(spec, pose)
    body = out["s"] == PERSON
    assert body.mean() > 0.03 and (out["i"][body] == 7).all()


def test_same_seed_same_bytes_for_noise_lighting_and_jitter():
    scene = boxes_scene()
    poses = look_poses(4, 2)
    specs = [CameraSpec(uuid="d", modality="depth", resolution=(40, 50),
                        depth_noise=DepthNoise(random_dropout=0.05)),
             CameraSpec(uuid="rgb", modality="rgb", resolution=(40, 50),
                        motion_blur=MotionBlur(probability=0.5, samples=3),
                        intrinsics_jitter={"focal_rel_sigma": 0.05})]
    vel = np.tile([0.5, 0.2, 0.0, 0.0, 0.0, 2.0], (4, 1))

    def run(seed):
        r = Renderer(scene, lighting=Lighting.sample(seed), seed=seed)
        return r.render(specs, poses, velocity=vel)

    a, b, c = run(11), run(11), run(12)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
    assert a["d"].tobytes() != c["d"].tobytes()
    assert a["rgb"].tobytes() != c["rgb"].tobytes()
    assert Lighting.sample(5) == Lighting.sample(5) != Lighting.sample(6)


def test_depth_noise_model():
    scene = SimpleScene().add(centered_box([0, 3.0, 0], [30, 0.02, 30]), 2, 1)
    pose = head_frame(np.array([[-0.03, 0, 0], [0.03, 0, 0]]), gaze=[0, 1.0, 0])
    spec = CameraSpec(uuid="d", modality="depth", resolution=(64, 64), hfov_deg=40.0)
    clean = Renderer(scene).render(spec, pose)["d"]
    noisy_spec = spec.model_copy(update={"depth_noise": DepthNoise(subpixel=0.0)})
    out = Renderer(scene, seed=0).render(noisy_spec, pose)
    err = (out["d"] - clean)[out["d_valid"]]
    sigma = 0.0012 + 0.0019 * (clean.mean() - 0.4) ** 2  # the documented axial model
    assert abs(err.std() / sigma - 1.0) < 0.15 and abs(err.mean()) < sigma / 5
    quant = spec.model_copy(update={"depth_noise": DepthNoise(sigma_base=0, sigma_quad=0)})
    z = Renderer(scene, seed=0).render(quant, pose)["d"]
    disp = 580.0 * 0.075 / z[z > 0]
    np.testing.assert_allclose(disp * 8, np.round(disp * 8), atol=1e-3)  # 1/8 px steps
    # Dropouts concentrate at depth edges (the wall's silhouette against a near box).
    edge_scene = SimpleScene().add(centered_box([0, 3.0, 0], [30, 0.02, 30]), 2, 1)
    edge_scene.add(centered_box([0, 1.5, 0], [0.3, 0.3, 0.3]), 6, 2)
    drop = spec.model_copy(update={"depth_noise": DepthNoise(edge_dropout=1.0)})
    c2 = Renderer(edge_scene).render(spec, pose)
    d2 = Renderer(edge_scene, seed=1).render(drop, pose)
    lost = c2["d_valid"] & ~d2["d_valid"]
    assert 0 < lost.sum() < 0.1 * lost.size
    jump = np.abs(np.diff(c2["d"], axis=1)) > 0.5
    near_edge = np.zeros_like(lost)
    near_edge[:, 1:] |= jump
    near_edge[:, :-1] |= jump
    assert near_edge[lost].mean() > 0.4


def test_motion_blur_uses_sub_poses():
    scene = boxes_scene()
    pose = look_poses(1, 3)
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(32, 32),
                      motion_blur=MotionBlur(probability=1.0, samples=4))
    sharp = Renderer(scene).render(spec.model_copy(update={"motion_blur": None}), pose)["rgb"]
    r = Renderer(scene, seed=0)
    still = r.render(spec, pose, sub_poses=np.repeat(pose[:, None], 4, axis=1))["rgb"]
    np.testing.assert_array_equal(still, sharp)
    turn = Rotation.from_euler("z", np.linspace(-0.1, 0.1, 4)[:, None]).as_matrix()
    subs = np.repeat(pose[:, None], 4, axis=1)
    subs[0, :, :3, :3] = turn @ pose[0, :3, :3]
    blurred = r.render(spec, pose, sub_poses=subs)["rgb"]
    assert np.abs(blurred.astype(int) - sharp).mean() > 1.0
    with pytest.raises(ValueError, match="pass velocity= or sub_poses="):
        r.render(spec, pose)


def test_bad_inputs_raise_clear_errors():
    scene = boxes_scene()
    r = Renderer(scene)
    spec = CameraSpec(uuid="d", modality="depth", resolution=(8, 8))
    with pytest.raises(ValueError, match=r"shape \(4, 4\) or \(N, 4, 4\)"):
        r.render(spec, np.eye(4)[:3])
    with pytest.raises(ValueError, match="not rigid"):
        r.render(spec, np.diag([1.0, 2.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="backend must be one of"):
        Renderer(scene, backend="optix")
    with pytest.raises(ValueError, match="produced twice"):
        r.render([spec, spec], np.eye(4))
    pb = Renderer(scene, backend="pybullet")
    with pytest.raises(ValueError, match="cannot render modality 'normal'"):
        pb.render(CameraSpec(uuid="n", modality="normal"), np.eye(4))
    with pytest.raises(ValueError, match="projection 'pinhole' only"):
        pb.render(CameraSpec(uuid="f", modality="depth", projection="fisheye"), np.eye(4))
    pb.close()
    bad = SimpleScene().add(centered_box([0, 0, 0], 1), 1, 1)
    bad.face_albedo = bad.face_albedo[:3]
    with pytest.raises(ValueError, match=r"face_albedo must have shape"):
        Renderer(bad)
    with pytest.raises(TypeError, match="no attribute 'triangles'"):
        Renderer(object())
    with pytest.raises(ValueError, match=r"meshes\[0\].triangles must be \(T, 3, 3\)"):
        r.set_dynamic_meshes([(np.zeros((4, 3)), PERSON, 1)])


@pytest.mark.parametrize("texture_size", [2, 1024])
def test_textured_lighting_matches_flat_colour(texture_size):
    """Pre-lit texels (small atlas) and per-pixel lighting (large atlas) both equal the
    albedo shading of an untextured box of the texture's uniform colour."""
    colour = np.array([200, 120, 40], np.uint8)
    box = centered_box([0.0, 2.0, 0.0], 0.8)
    flat = SimpleScene().add(box, 6, 1, colour / 255.0)
    tex = SimpleScene().add(box, 6, 1, (0.5, 0.5, 0.5))
    tex.textures = [np.broadcast_to(colour, (texture_size, texture_size, 3)).copy()]
    tex.face_texture = np.zeros(len(box), np.int32)
    tex.face_uv = np.random.default_rng(0).uniform(-3, 3, (len(box), 3, 2)).astype(np.float32)
    light = Lighting.sample(3)
    spec = CameraSpec(uuid="rgb", modality="rgb", resolution=(40, 40))
    poses = look_poses(3, 4, centre=(0.3, 0.0, 0.6))
    a = Renderer(flat, lighting=light).render(spec, poses)["rgb"].astype(int)
    b = Renderer(tex, lighting=light).render(spec, poses)["rgb"].astype(int)
    assert np.abs(a - b).max() <= 1
    assert len(np.unique(a.reshape(-1, 3), axis=0)) >= 3  # several lit sides are seen
