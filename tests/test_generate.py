"""``egosim generate``: config rules, HMR geometry on constructed bodies, mixing by weight,
and on tiny real datasets (32 px, 2-clip shards): kill -9 then resume gives the bytes of an
uninterrupted run, truncated or altered shards are rewritten, another config is refused by
key, 1 and 2 workers give the same bytes, WebDataset and a DataLoader read the shards back,
the egom2p layout keeps keys aligned, HMR joints land in their masks and the camera-frame
SMPL-X parameters rebuild the joints, a local run never imports Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from egosim.config import ConfigError, load_config
from egosim.egom2p.generate_config import GenerateConfig

#: A tiny clip config: 32 px, one world of two humans driven by random prior latents.
TINY_CLIP = {"video_size": 32, "worlds": 1, "scene.pool_size": 1, "clips_per_episode": 2,
             "humans": [2, 2], "controller": "egosim.agents.controllers:prior_walker"}
TINY = [*(f"clip_overrides.{k}={v}" for k, v in TINY_CLIP.items()), "previews=0",
        "progress=false"]
SIX = ["clips=6", "shard_size=2", *TINY]
SHARDS = [f"shard-{k:06d}.tar" for k in range(3)]


def _cfg(out: Path, *extra: str) -> GenerateConfig:
    return load_config("generate", [f"output_dir={out}", *extra], schema=GenerateConfig)


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a dataset folder but the lock, preview and temporaries: name -> bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and not rel.endswith(".lock") and p.name != "preview.mp4":
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 6-clip, 3-shard dataset made in this process (one worker)."""
    from egosim.egom2p.datasets.generate import generate

    out = tmp_path_factory.mktemp("gen") / "ref"
    res = generate(_cfg(out, "workers=1", *SIX))
    assert res["made"] == 3 and res["clips_made"] == 6
    return out


# -- config, no simulation ------------------------------------------------------------------


@pytest.mark.parametrize("overrides, keys", [
    (["layout=egom2p"], ["layout", "tokens"]),
    (["task=hmr", "layout=egom2p", "tokens=true"], ["task", "layout"]),
    (["ray_address=auto"], ["ray_address", "backend"]),
    (["dataset_name=a/b"], ["dataset_name"]),
    (["backend=slurm"], ["backend"]),
])
def test_bad_generate_configs_name_the_keys(overrides: list[str], keys: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("generate", overrides, schema=GenerateConfig)
    for k in keys:
        assert repr(k) in str(err.value), str(err.value)


def test_other_config_in_the_same_folder_is_refused_naming_the_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from egosim.atomic_io import write_json
    from egosim.cli import main
    from egosim.egom2p.datasets.generate import dataset_identity, resolve_clips

    cfg = _cfg(tmp_path / "d", *SIX)
    (tmp_path / "d").mkdir()
    write_json(tmp_path / "d" / "dataset.json", {"status": "incomplete", "identity":
                                                 dataset_identity(cfg, resolve_clips(cfg))})
    rc = main(["generate", f"output_dir={tmp_path / 'd'}", *SIX, "seed=3",
               "clip_overrides.video_size=64"])
    err = capsys.readouterr().err
    assert rc == 2 and "seed (folder: 0, asked: 3)" in err and "clip.video_size" in err, err
    assert not list((tmp_path / "d").glob("shard-*.tar"))  # refused before making anything
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["generate", f"output_dir={tmp_path / 'other'}", *SIX]) == 2
    assert "not empty" in capsys.readouterr().err


# -- HMR geometry on constructed bodies --------------------------------------------------------


def test_camera_frame_smplx_parameters_pose_the_world_mesh_in_the_camera() -> None:
    import torch
    from scipy.spatial.transform import Rotation

    from egosim.egom2p.datasets.hmr import params_to_camera, world_to_camera
    from egosim.envs.humans import BodyModel

    rng = np.random.default_rng(0)
    body = BodyModel("neutral")
    b = 3
    betas = rng.normal(0, 1, (b, 10)).astype(np.float32)
    go_w = Rotation.random(b, random_state=1).as_rotvec()
    pose = rng.normal(0, 0.3, (b, 63))
    tr_w = rng.normal(0, 2.0, (b, 3))
    cam = np.tile(np.eye(4), (b, 1, 1))
    cam[:, :3, :3] = Rotation.random(b, random_state=2).as_matrix()
    cam[:, :3, 3] = rng.normal(0, 3.0, (b, 3))
    with torch.no_grad():
        rest = body(betas=betas).joints[:, 0].numpy()  # the shaped rest pelvis J0
        world = body(betas=betas, global_orient=go_w, body_pose=pose, transl=tr_w)
        go_c, tr_c = params_to_camera(go_w, tr_w, rest, cam)
        in_cam = body(betas=betas, global_orient=go_c, body_pose=pose, transl=tr_c)
    want = world_to_camera(world.vertices.numpy(), cam)
    np.testing.assert_allclose(in_cam.vertices.numpy(), want, atol=2e-5)
    np.testing.assert_allclose(in_cam.joints.numpy(), world_to_camera(world.joints.numpy(), cam),
                               atol=2e-5)
    # the pelvis term matters: the rest pelvis J0 moves with the shape
    assert np.abs(rest).max() > 1e-3


def test_joint_visibility_and_boxes_on_a_constructed_image() -> None:
    from egosim.egom2p.datasets.hmr import joint_visibility, mask_bbox, project_points

    inst = np.full((8, 8), 3, np.int32)  # a wall (instance 3) at 5 m
    depth = np.full((8, 8), 5.0, np.float32)
    inst[2:6, 1:4], depth[2:6, 1:4] = 1000, 2.0  # the human, 2 m
    inst[2:6, 6], depth[2:6, 6] = 7, 1.0  # a post in front of its arm, 1 m
    k = np.array([[4.0, 0, 3.5], [0, 4.0, 3.5], [0, 0, 1]])
    pts = np.array([[-0.75, 0.0, 2.1],   # on the human's mask: visible
                    [1.3, 0.0, 2.1],     # behind the post: hidden
                    [0.25, 0.0, 2.1],    # off the coarse mask, the wall behind: visible
                    [0.0, 0.0, -1.0],    # behind the camera
                    [10.0, 0.0, 2.0]])   # outside the image
    uv, front = project_points(pts, k)
    vis = joint_visibility(uv, pts[:, 2], front, inst, depth, 1000)
    assert vis.tolist() == [True, False, True, False, False]
    box, n = mask_bbox(inst, [1000, 1001])
    assert box.tolist() == [[1, 2, 3, 5], [-1, -1, -1, -1]] and n.tolist() == [12, 0]


# -- mixing, no simulation ---------------------------------------------------------------------


def test_mixed_stream_draws_by_weight_deterministically_and_tags_modalities() -> None:
    from egosim.egom2p.datasets.mix import MixedStream

    full = [{"rgb": 0, "depth": 0, "camera_9d": 0, "gaze": 0, "i": i} for i in range(3000)]
    tokens = [{"tokens_camera": 0, "tokens_gaze": 0, "i": i} for i in range(3000)]
    draws = list(zip(range(2000), MixedStream([(full, 3.0), (tokens, 1.0)], seed=5),
                     strict=False))
    got = [(s["source"], s["i"]) for _, s in draws]
    again = [(s["source"], s["i"]) for _, s in zip(range(2000), MixedStream(
        [(full, 3.0), (tokens, 1.0)], seed=5), strict=False)]
    assert got == again
    other = [s["source"] for _, s in zip(range(2000), MixedStream(
        [(full, 3.0), (tokens, 1.0)], seed=6), strict=False)]
    assert other != [g[0] for g in got]
    frac = np.mean([g[0] == 0 for g in got])
    assert abs(frac - 0.75) < 0.04, frac
    assert [g[1] for g in got if g[0] == 0] == list(range(sum(g[0] == 0 for g in got)))
    by = {s["source"]: s["available"] for _, s in draws}
    assert by == {0: ("rgb", "depth", "camera", "gaze"), 1: ("camera", "gaze")}
    # a finite source that runs out leaves the mix; the mix ends with the last one
    short = list(MixedStream([(full[:5], 1.0), (tokens[:7], 1.0)], seed=0))
    assert sorted((s["source"], s["i"]) for s in short) == \
        [(0, i) for i in range(5)] + [(1, i) for i in range(7)]
    with pytest.raises(ValueError, match="weights"):
        MixedStream([(full, 0.0)])


# -- tiny real datasets ----------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(reference: Path,
                                                                 tmp_path: Path) -> None:
    from egosim.cli import main

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "egosim", "generate", f"output_dir={out}",
                             "workers=1", *SIX], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not (out / SHARDS[0]).exists():
        assert proc.poll() is None and time.time() - t0 < 300, "no first shard"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((out / "dataset.json").read_text())["status"] == "incomplete"
    assert not (out / SHARDS[2]).exists()  # killed mid-run
    assert main(["generate", f"output_dir={out}", "workers=1", *SIX]) == 0
    assert _files(out) == _files(reference)  # shards, done records, dataset.json, card
    assert not [p for p in out.rglob(".*tmp-*")]  # the killed writer's temp file is gone


@pytest.mark.slow
def test_truncated_and_altered_shards_are_detected_and_rewritten(
        reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from egosim.cli import main

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    data = (out / SHARDS[1]).read_bytes()
    (out / SHARDS[1]).write_bytes(data[: len(data) // 2])  # truncated
    data = bytearray((out / SHARDS[2]).read_bytes())
    data[5000] ^= 0xFF  # one byte altered, same size
    (out / SHARDS[2]).write_bytes(bytes(data))
    assert main(["generate", f"output_dir={out}", "workers=1", *SIX]) == 0
    err = capsys.readouterr().err
    assert "shard 1:" in err and "bytes" in err and "shard 2:" in err and "sha256" in err, err
    assert "shard 0:" not in err
    assert _files(out) == _files(reference)
    assert main(["generate", f"output_dir={out}", "workers=1", *SIX]) == 0
    assert "nothing to make" in capsys.readouterr().out


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_bytes(reference: Path, tmp_path: Path) -> None:
    from egosim.egom2p.datasets.generate import generate

    res = generate(_cfg(tmp_path / "two", "workers=2", *SIX))
    assert res["made"] == 3
    assert _files(tmp_path / "two") == _files(reference)


@pytest.mark.slow
def test_shards_read_back_with_webdataset_and_a_dataloader(reference: Path) -> None:
    import webdataset as wds
    from torch.utils.data import DataLoader

    from egosim.egom2p.datasets.mix import ShardSource

    rec = json.loads((reference / "dataset.json").read_text())
    assert rec["status"] == "complete" and rec["counts"] == {
        "clips": 6, "samples": 6, "shards": 3, "clips_per_shard": 2,
        "bytes": sum((reference / s).stat().st_size for s in SHARDS)}
    for s in rec["shards"]:
        from egosim.egom2p.datasets.shards import sha256_file

        (rel, info), = s["files"].items()
        assert sha256_file(reference / rel) == info["sha256"] and s["samples"] == 2
    st = rec["statistics"]
    assert 0.5 < st["depth"]["valid_fraction"] <= 1 and st["depth"]["max_m"] <= 20.0
    assert all(v > 0 for v in st["camera"]["translation_std_m"])
    assert 0 <= st["gaze"]["valid_fraction"] <= 1
    urls = str(reference / rec["urls"]["all"])
    ds = list(wds.WebDataset(urls, shardshuffle=False).decode())
    mine = list(ShardSource(reference))
    assert [s["__key__"] for s in ds] == [s["__key__"] for s in mine] == [
        f"{k:06d}_{i:06d}" for k in range(3) for i in range(2)]
    for a, b in zip(ds, mine, strict=True):
        assert a["rgb.npy"].shape == (16, 32, 32, 3) and a["rgb.npy"].dtype == np.uint8
        for key in ("rgb", "depth", "camera", "camera_9d", "gaze", "gaze_valid"):
            np.testing.assert_array_equal(a[f"{key}.npy"], b[key])
        assert a["meta.json"] == b["meta"]
        k, i = map(int, a["__key__"].split("_"))
        assert (a["meta.json"]["worker"], a["meta.json"]["index"]) == (k, i)
    loader = DataLoader(wds.WebDataset(urls, shardshuffle=False).decode().to_tuple(
        "__key__", "rgb.npy", "camera_9d.npy"), batch_size=2, num_workers=2)
    keys = []
    for key, rgb, cam in loader:
        assert tuple(rgb.shape) == (2, 16, 32, 32, 3) and tuple(cam.shape) == (2, 60, 9)
        keys += list(key)
    assert sorted(keys) == [s["__key__"] for s in mine]
    plain = DataLoader(ShardSource(reference, keys=("depth",)), batch_size=None, num_workers=2)
    got = sorted((s["__key__"], tuple(s["depth"].shape)) for s in plain)
    assert got == [(s["__key__"], (16, 32, 32)) for s in mine]


@pytest.mark.slow
def test_mixed_stream_of_shards_and_the_live_stream(reference: Path) -> None:
    from egosim.egom2p.datasets.mix import MixedStream, ShardSource
    from egosim.egom2p.stream import SimStream

    def first(seed: int) -> list[tuple]:
        live = SimStream(overrides={**TINY_CLIP, "modalities": ["camera", "gaze"]}, seed=1,
                         threads=1)
        mixed = MixedStream([(ShardSource(reference, loop=True), 0.6), (live, 0.4)],
                            seed=seed)
        return [(s["source"], s["available"], int(s["meta"]["worker"]),
                 int(s["meta"]["index"]), s["camera"].tobytes())
                for _, s in zip(range(8), mixed, strict=False)]

    a, b = first(0), first(0)
    assert a == b
    assert {s[0] for s in a} == {0, 1}
    for src, avail, *_ in a:
        assert avail == (("rgb", "depth", "camera", "gaze") if src == 0 else ("camera", "gaze"))
    assert [s[2:4] for s in a if s[0] == 1] == [(0, i) for i in range(sum(s[0] for s in a))]


@pytest.mark.slow
def test_egom2p_layout_keys_align_across_modalities(tmp_path: Path) -> None:
    import tarfile

    from egosim.egom2p.datasets.generate import generate
    from egosim.egom2p.datasets.mix import ShardSource
    from egosim.egom2p.modalities import modality_info

    out = tmp_path / "e"
    generate(_cfg(out, "layout=egom2p", "tokens=true", "clips=4", "shard_size=2",
                  "dataset_name=sim", "workers=1", *TINY))
    for k in range(2):
        names = {}
        for m in ("rgb", "depth", "camera", "gaze", "meta"):
            with tarfile.open(out / m / "sim" / f"shard-{k:06d}.tar") as tar:
                names[m] = [n.name.split(".")[0] for n in tar.getmembers()]
        assert len({tuple(v) for v in names.values()}) == 1, names
        assert names["rgb"] == [f"{k:06d}_{i:06d}" for i in range(2)]
    samples = list(ShardSource(out))
    assert len(samples) == 4
    for s in samples:
        for m in ("rgb", "depth", "camera", "gaze"):
            tok = s[f"tokens_{m}"]
            info = modality_info(m, 32, 32)
            assert tok.shape == (info.num_tokens,) and tok.dtype == np.int64
            assert 0 <= tok.min() and tok.max() < info.vocab_size
    rec = json.loads((out / "dataset.json").read_text())
    assert rec["urls"]["rgb"] == "rgb/sim/shard-{000000..000001}.tar"
    assert set(rec["identity"]["tokenizers"]) == {"rgb", "depth", "camera", "gaze"}


@pytest.mark.slow
def test_hmr_joints_land_in_their_masks_and_the_parameters_rebuild_them(tmp_path: Path
                                                                         ) -> None:
    import torch

    from egosim.egom2p.clips import ClipBuilder
    from egosim.egom2p.datasets.generate import generate
    from egosim.egom2p.datasets.hmr import TORSO_JOINTS
    from egosim.egom2p.datasets.mix import ShardSource
    from egosim.envs.humans import GENDERS, BodyModel

    over = {**TINY_CLIP, "humans": [4, 4], "video_size": 64}
    out = tmp_path / "h"
    res = generate(_cfg(out, "task=hmr", "clips=4", "shard_size=32", "workers=1",
                        "previews=0", "progress=false",
                        *(f"clip_overrides.{k}={v}" for k, v in over.items())))
    rec = res["record"]
    assert rec["counts"]["samples"] == 4 * 16 and rec["counts"]["clips_per_shard"] == 2
    frames = list(ShardSource(out))
    assert [f["__key__"] for f in frames[:17]] == [f"000000_000000_{i:02d}" for i in
                                                  range(16)] + ["000000_000001_00"]
    inside = []
    rebuilt = 0
    bodies: dict[str, BodyModel] = {}
    for f in frames:
        inst, k = f["instance"], f["intrinsics"]
        assert inst.shape == (64, 64) and f["rgb"].shape == (64, 64, 3)
        for m, ident in enumerate(f["hmr_instance"]):
            mask = inst == ident
            vs, us = np.nonzero(mask)
            assert f["hmr_mask_pixels"][m] == mask.sum() > 0
            assert f["hmr_bbox"][m].tolist() == [us.min(), vs.min(), us.max(), vs.max()]
            j3, j2 = f["hmr_joints_3d"][m], f["hmr_joints_2d"][m]
            front = j3[:, 2] > 0.05
            np.testing.assert_allclose(j2[front], (j3[front] @ k.T)[:, :2] / j3[front, 2:],
                                       atol=1e-3)
            vis = f["hmr_joints_visible"][m]
            px = np.rint(j2).astype(int)
            torso = [q for q in TORSO_JOINTS if vis[q]]
            if len(torso) >= 3:
                inside.append(np.mean([mask[px[q, 1], px[q, 0]] for q in torso]))
            if rebuilt < 6:  # SMPL-X with the camera-frame parameters gives the joints
                g = GENDERS[int(f["hmr_gender"][m])]
                bodies.setdefault(g, BodyModel(g))
                with torch.no_grad():
                    j = bodies[g](betas=f["hmr_betas"][m][None],
                                  global_orient=f["hmr_global_orient"][m][None],
                                  body_pose=f["hmr_body_pose"][m][None],
                                  transl=f["hmr_transl"][m][None]).joints[0, :55].numpy()
                np.testing.assert_allclose(j, j3, atol=1e-3)
                rebuilt += 1
    assert rebuilt >= 3 and len(inside) >= 3, (rebuilt, len(inside))
    assert np.mean(inside) >= 0.8 and np.median(inside) >= 0.8, inside
    # the builder's other keys are the same bytes with or without the labels
    a = ClipBuilder(overrides=over, seed=0, worker=0, hmr=True).next_clip()
    b = ClipBuilder(overrides=over, seed=0, worker=0).next_clip()
    assert "hmr" in a and "hmr" not in b
    assert all(np.asarray(a[key]).tobytes() == np.asarray(b[key]).tobytes()
               for key in b if key != "meta")


@pytest.mark.slow
def test_a_local_generate_never_imports_ray(tmp_path: Path) -> None:
    code = ("import sys\nfrom egosim.cli import main\n"
            f"rc = main(['generate', 'output_dir={tmp_path / 'n'}', 'clips=2', "
            f"'shard_size=2', 'workers=1', {', '.join(map(repr, TINY))}])\n"
            "print('RC', rc, 'RAY', 'ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "RC 0 RAY False" in out.stdout, out.stdout + out.stderr
