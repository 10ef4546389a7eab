"""The embree backend's fast path against a plain reference renderer, and its invariances.

The reference below casts every pixel ray on its own terms: from the near plane, with
:meth:`RayCaster.cast`, per pose, and shades hits with the formulas documented in
``egosim.sensors.lighting`` and ``egosim.sensors.scene_contract`` (flat, two-sided Lambert;
nearest texel, repeating). The renderer instead casts from the camera centre, recasts
near-plane hits, and shades from packed per-face tables over a thread pool; both must
give the same images up to float32 rounding (a few pixels on triangle or texel edges).
"""

from __future__ import annotations

import numpy as np
import pytest
from sensors_support import centered_box, room_with_boxes

from egosim.sensors import (
    CameraSpec,
    DynamicMesh,
    Lighting,
    RayCaster,
    Renderer,
    SimpleScene,
    capsule_triangles,
    head_frame,
    pixel_rays,
)
from egosim.sensors.scene_contract import SceneArrays

PERSON = 12
MODALITIES = ("rgb", "depth", "semantic", "instance", "normal")


def textured_scene(seed: int = 0) -> SimpleScene:
    """Floor, walls, boxes; two textures (non-power-of-two and power-of-two) on some faces,
    and a thin panel 0.2 m in front of the first camera (clipped by its near plane)."""
    sc = room_with_boxes()
    sc.add(centered_box([0.0, 0.2, 1.5], [0.3, 0.02, 0.3]), 8, 6, (0.9, 0.1, 0.1))
    rng = np.random.default_rng(seed)
    n = len(sc.triangles)
    sc.textures = [rng.integers(0, 256, (24, 40, 3)).astype(np.uint8),
                   rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)]
    tex = np.full(n, -1, np.int32)
    tex[:12] = 1  # the floor box
    tex[12:24] = 0  # the first wall
    tex[36:48] = rng.integers(0, 2, 12)  # half of a box's faces
    sc.face_texture = tex
    sc.face_uv = rng.uniform(-2.0, 3.0, (n, 3, 2)).astype(np.float32)
    return sc


def poses_around(n: int, seed: int) -> np.ndarray:
    """``n`` head poses at 1.5 m looking roughly along +y; the first one at the origin."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        mid = np.array([0.0, 0.0, 1.5]) if k == 0 else (
            np.array([0.0, 0.0, 1.5]) + rng.uniform(-0.5, 0.5, 3) * [1, 1, 0.3])
        yaw = 0.0 if k == 0 else rng.uniform(-0.8, 0.8)
        right = np.array([np.cos(yaw), -np.sin(yaw), 0.0])
        eyes = np.stack([mid - 0.03 * right, mid + 0.03 * right])
        gaze = np.cross([0.0, 0.0, 1.0], right) + [0, 0, 0.0 if k == 0 else rng.uniform(-0.5, 0.1)]
        out.append(head_frame(eyes, gaze=gaze))
    return np.stack(out)


def bodies() -> list[DynamicMesh]:
    out = []
    for k in range(2):
        tris = capsule_triangles(np.array([0.4 * k - 0.6, 1.4 + 0.6 * k, 0.0]), 1.7, 0.25)
        vis = np.zeros(len(tris), bool)
        vis[: len(tris) // 4] = True
        out.append(DynamicMesh(tris, PERSON, 20 + k, (0.8, 0.55, 0.4), vis))
    return out


def reference(scene, spec: CameraSpec, poses: np.ndarray, lighting: Lighting,
              meshes: list[DynamicMesh], wearer: np.ndarray) -> dict[str, np.ndarray]:
    """Plain per-pose rendering with :meth:`RayCaster.cast` (see the module docstring)."""
    s = SceneArrays.from_scene(scene)
    h, w = spec.resolution
    dirs, valid = pixel_rays(spec)
    dirs, dz = dirs[valid].astype(np.float64), dirs[valid, 2].astype(np.float64)
    static = RayCaster(s.triangles)
    out = {k: [] for k in ("rgb", "depth", "semantic", "instance", "normal", "face")}
    for pose, wear in zip(poses, wearer, strict=True):
        rot, centre = pose[:3, :3], pose[:3, 3]
        d = dirs @ rot.T
        org = centre + d * (spec.near / dz)[:, None]
        tmax = (spec.far - spec.near) / dz
        hits = static.cast(org, d, tmax)
        t, face, uv = hits.t.astype(np.float64), hits.face.copy(), hits.uv.astype(np.float64)
        tris, sem, ins, alb = s.triangles, s.semantic, s.instance, s.albedo
        texture = s.texture if s.texture is not None else np.full(len(tris), -1, np.int32)
        for k, m in enumerate(meshes):  # dynamic meshes: nearest hit wins
            keep = np.ones(len(m.triangles), bool)
            if k == wear and m.self_visible is not None:
                keep = m.self_visible
            idx = np.nonzero(keep)[0]
            dyn = RayCaster(m.triangles[idx]).cast(org, d, tmax)
            nearer = dyn.hit & (dyn.t < t)
            t[nearer], uv[nearer] = dyn.t[nearer], dyn.uv[nearer]
            face[nearer] = len(tris) + idx[dyn.face[nearer]]
            tris = np.concatenate([tris, m.triangles])
            sem = np.concatenate([sem, np.full(len(m.triangles), m.semantic, np.int32)])
            ins = np.concatenate([ins, np.full(len(m.triangles), m.instance, np.int32)])
            alb = np.concatenate([alb, np.broadcast_to(m.albedo, (len(m.triangles), 3))])
            texture = np.concatenate([texture, np.full(len(m.triangles), -1, np.int32)])
        hit = face >= 0
        f = np.where(hit, face, 0)
        n = np.cross(tris[f, 1] - tris[f, 0], tris[f, 2] - tris[f, 0]).astype(np.float64)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        n = np.where((np.sum(n * d, axis=1) > 0)[:, None], -n, n)  # facing the camera
        light = (lighting.ambient * np.asarray(lighting.ambient_color)
                 + lighting.diffuse * np.maximum(n @ -np.asarray(lighting.direction), 0.0)[:, None]
                 * np.asarray(lighting.light_color))
        colour = alb[f].astype(np.float64)
        tx = hit & (texture[f] >= 0)
        if tx.any():
            corner = s.uv[f[tx]].astype(np.float64)
            bary = uv[tx]
            point_uv = ((1 - bary[:, :1] - bary[:, 1:]) * corner[:, 0]
                        + bary[:, :1] * corner[:, 1] + bary[:, 1:] * corner[:, 2])
            colour[tx] = s.atlas.sample(texture[f][tx], point_uv)
        colour = np.where(hit[:, None], colour * light, np.asarray(lighting.background))
        imgs = {
            "rgb": np.round(np.clip(colour, 0, 1) * 255).astype(np.uint8),
            "depth": np.where(hit, spec.near + t * dz, 0.0),
            "semantic": np.where(hit, sem[f], -1),
            "instance": np.where(hit, ins[f], -1),
            "normal": np.where(hit[:, None], n @ rot, 0.0),
            "face": face,
        }
        for k, v in imgs.items():
            full = np.zeros((h * w,) + v.shape[1:], v.dtype)
            if k in ("semantic", "instance", "face"):
                full[:] = -1
            full[valid] = v
            out[k].append(full.reshape((h, w) + v.shape[1:]))
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("projection", ["pinhole", "fisheye"])
def test_matches_reference_renderer(projection):
    scene = textured_scene()
    light = Lighting.sample(7)
    meshes = bodies()
    poses = poses_around(7, 3)
    wearer = np.array([-1, 0, 1, -1, 0, 1, -1])
    kw = {"hfov_deg": 200.0} if projection == "fisheye" else {}
    specs = [CameraSpec(uuid=m, modality=m, resolution=(36, 52), projection=projection,
                        near=0.3, far=7.0, **kw) for m in MODALITIES]
    r = Renderer(scene, lighting=light)
    r.set_dynamic_meshes(meshes)
    got = r.render(specs, poses, wearer=wearer)
    ref = reference(scene, specs[0], poses, light, meshes, wearer)

    n_px = ref["face"].size
    same = (got["semantic"] == ref["semantic"]) & (got["instance"] == ref["instance"])
    assert (~same).sum() <= 0.002 * n_px  # at most a few triangle-edge pixels
    assert (got["depth_valid"] == (ref["face"] >= 0)).mean() >= 0.998
    both = same & got["depth_valid"]
    np.testing.assert_allclose(got["depth"][both], ref["depth"][both], rtol=1e-5, atol=1e-5)
    assert (got["depth"][~got["depth_valid"]] == 0).all()
    normal_ok = np.abs(got["normal"] - ref["normal"]).max(axis=-1) <= 1e-5
    assert normal_ok.mean() >= 0.998  # a ray through an edge may report either face
    close = np.abs(got["rgb"].astype(int) - ref["rgb"]).max(axis=-1) <= 1  # pre-lit texels
    assert close.mean() >= 0.99  # texel-edge pixels may pick the neighbouring texel
    # Everything the reference renderer sees shows up: textures, both bodies, the
    # wearer's hidden parts stay hidden, and the panel in front of the near plane is gone.
    assert {1, 2, 4, 5, 20, 21} <= set(np.unique(got["instance"]))
    assert 6 not in np.unique(got["instance"][0])
    assert len(np.unique(got["rgb"][got["semantic"] == 1].reshape(-1, 3), axis=0)) > 50


def test_near_plane_hits_are_recast():
    """A panel straddling the near plane: the part in front of it is clipped like OpenGL's,
    the part behind it is seen, at its own depth."""
    sc = SimpleScene()
    sc.add(centered_box([0, 3.0, 0], [4, 0.02, 4]), 2, 1)  # far wall
    tilt = np.array([[[-0.3, 0.05, -0.3], [0.3, 0.05, -0.3], [0.3, 0.65, 0.3]],
                     [[-0.3, 0.05, -0.3], [0.3, 0.65, 0.3], [-0.3, 0.65, 0.3]]], np.float32)
    sc.add(tilt, 3, 2)  # from y = 0.05 (below) to y = 0.65 (above), in front of the camera
    pose = head_frame(np.array([[-0.03, 0, 0], [0.03, 0, 0]]), gaze=[0, 1.0, 0])
    spec = CameraSpec(uuid="d", modality="depth", resolution=(32, 32), near=0.35, far=5.0)
    r = Renderer(sc)
    got = r.render([spec, spec.model_copy(update={"uuid": "s", "modality": "semantic"})],
                   pose)
    ref = reference(sc, spec, pose[None], Lighting(), [], np.array([-1]))
    np.testing.assert_array_equal(got["s"], ref["semantic"][0])
    np.testing.assert_allclose(got["d"], ref["depth"][0], rtol=1e-5, atol=1e-5)
    seen = got["s"] == 3
    assert seen.any() and (got["s"] == 2).any()  # the panel's far part, the wall behind
    assert got["d"][seen].min() >= spec.near


def test_batches_threads_and_pixel_splits_give_the_same_bytes():
    """One call for many poses equals one call per pose, whatever the thread count, and
    big images (cast in pixel ranges) equal their reference."""
    scene = textured_scene(1)
    poses = poses_around(9, 5)
    specs = [CameraSpec(uuid=m, modality=m, resolution=(40, 48)) for m in MODALITIES]
    one = Renderer(scene, num_threads=1)
    many = Renderer(scene, num_threads=3)
    for r in (one, many):
        r.set_dynamic_meshes(bodies())
    a = one.render(specs, poses, wearer=0)
    b = many.render(specs, poses, wearer=0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        for i in (0, 4, 8):
            np.testing.assert_array_equal(many.render(specs, poses[i], wearer=0)[k], a[k][i])
    big = [CameraSpec(uuid=m, modality=m, resolution=(270, 260)) for m in ("rgb", "semantic")]
    got = many.render(big, poses[:2], wearer=-1)
    ref = reference(scene, big[0], poses[:2], many.lighting, bodies(), np.array([-1, -1]))
    assert (got["semantic"] == ref["semantic"]).mean() >= 0.998
    close = np.abs(got["rgb"].astype(int) - ref["rgb"]).max(axis=-1) <= 1
    assert close.mean() >= 0.99
