"""Fault injection: nothing written to disk can break a later run.

Trainers killed (``SIGKILL``) half way through writing a checkpoint resume from the newest
good one; caches (procedural bodies, motion primitives, scene walk maps and SDFs) that are
truncated, zeroed, garbage or bit-flipped are reported, deleted and rebuilt; two processes
building one cache both succeed with the same data; damaged or odd mesh files, oversized
walk grids and bad user SMPL-X files give errors that name the file and the problem.
Every test works in a fresh ``EGOSIM_CACHE_DIR`` (the user's cache is never touched).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trimesh

from egosim.atomic_io import is_temp_file
from egosim.cache_entry import CorruptCacheWarning, array_checksum, stamp
from egosim.envs.humans.model_files import GENDERS
from egosim.envs.humans.procedural import generator
from egosim.envs.motion.primitive_dataset import DatasetConfig, PrimitiveDataset, default_dataset

TESTS = Path(__file__).resolve().parent
CORRUPTIONS = ("truncated", "zeros", "garbage", "bitflip")
#: A motion-primitive dataset that builds in about a second.
TINY_DATA = DatasetConfig(clips={"walk": 1}, num_augmented=0, num_shapes=1)


def _payload_middle(data: bytes, path: Path) -> int:
    """Offset of the middle byte of the largest member's stored data in a zip archive (a
    flip there changes content; one in unused header bytes would not)."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:
                                                      info.header_offset + 30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


def corrupt(path: Path, how: str) -> None:
    """Damage ``path`` in place: cut in half, all zeros, random bytes or one flipped bit of
    the stored data."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "zeros":
        data = bytearray(len(data))
    elif how == "garbage":
        data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), np.uint8))
    elif how == "bitflip":
        data[_payload_middle(bytes(data), path)] ^= 0x10
    else:
        raise ValueError(how)
    path.write_bytes(bytes(data))


@contextlib.contextmanager
def no_corrupt_warning() -> Iterator[None]:
    """Fail on any :class:`CorruptCacheWarning` in the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        yield


def _temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temp_file(p)]


def _child_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ, EGOSIM_CACHE_DIR=str(cache), PYTHONPATH=str(TESTS))
    env.pop("EGOSIM_SMPLX_DIR", None)
    return env


@pytest.fixture(scope="module")
def seed_cache(tmp_path_factory):
    """A cache with the procedural body files and the tiny motion dataset, built once."""
    root = tmp_path_factory.mktemp("seed_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOSIM_CACHE_DIR", str(root))
        mp.delenv("EGOSIM_SMPLX_DIR", raising=False)
        for g in GENDERS:
            generator.procedural_model_path(g)
        default_dataset(TINY_DATA, progress=False)
    return root


@pytest.fixture(scope="module")
def body_arrays(seed_cache):
    """The generated arrays of the three genders (what the generator returns)."""
    folder = seed_cache / "bodies" / generator.GENERATOR_VERSION
    out = {}
    for g in GENDERS:
        with np.load(folder / f"SMPLX_{g.upper()}.npz") as d:
            out[g] = {k: d[k] for k in d.files if k not in ("cache_key", "checksum")}
    return out


@pytest.fixture
def cache(tmp_path, monkeypatch, seed_cache):
    """A private copy of the seed cache as ``EGOSIM_CACHE_DIR``."""
    root = tmp_path / "cache"
    shutil.copytree(seed_cache, root, ignore=shutil.ignore_patterns("*.lock"))
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(root))
    monkeypatch.delenv("EGOSIM_SMPLX_DIR", raising=False)
    return root


# -- trainers: a kill -9 while a checkpoint is written -----------------------------------------
AGENT_CHILD = textwrap.dedent("""
    import json, os, signal, sys
    from stable_baselines3 import PPO
    from egosim.agents.config import TrainAgentConfig
    from egosim.agents.train import run_train

    original = PPO.save

    def save(self, path, *args, **kwargs):
        original(self, path, *args, **kwargs)
        if "ppo_8_steps" in str(path):  # killed half way through writing this checkpoint
            with open(path, "r+b") as fh:
                fh.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    PPO.save = save
    run_train(TrainAgentConfig(**json.loads(sys.argv[1])))
""")


def _agent_kwargs(out: Path) -> dict:
    """A one-stage, 16-step run of 2 envs with a checkpoint every 4 steps."""
    from agents_support import easy_env, small_run

    stage = {"name": "pretrain", "timesteps": 16, "penetration_mode": "soft",
             "penetration_weight": 1.0}
    policy = {"marker_hidden": 16, "sensing_hidden": 8, "net_arch_pi": [32],
              "net_arch_vf": [32]}
    return dict(output_dir=str(out), num_envs=2, progress=False, tensorboard=False,
                checkpoint_every=4, threads=1, env=easy_env(), stages=[stage],
                ppo={"n_steps": 4, "batch_size": 8, "n_epochs": 1}, **small_run(policy=policy))


@pytest.mark.slow
def test_train_agent_resumes_after_kill_during_checkpoint_save(cache, tmp_path, capsys):
    from egosim.agents.config import TrainAgentConfig
    from egosim.agents.train import checkpoint_problem, run_train

    kwargs = _agent_kwargs(tmp_path / "run")
    cfg = TrainAgentConfig(**kwargs)
    child = subprocess.run([sys.executable, "-c", AGENT_CHILD, json.dumps(kwargs)],
                           cwd=TESTS, env=_child_env(cache), capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    ckpts = tmp_path / "run" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    # the half-written file never got its name; the previous checkpoint is intact
    assert "ppo_4_steps.zip" in names and "ppo_8_steps.zip" not in names
    assert _temp_files(ckpts)
    # and a newest checkpoint left empty by an older crash must not stop the resume
    (ckpts / "ppo_12_steps.zip").write_bytes(b"")
    summary = run_train(cfg)
    err = capsys.readouterr().err
    bad = [line for line in err.splitlines() if "is bad" in line]
    assert len(bad) == 1 and "ppo_12_steps.zip" in bad[0], err
    assert summary["resumed_from"] == 4 and summary["timesteps"] >= 16
    assert (ckpts / "ppo_12_steps.zip.bad").is_file()
    assert not _temp_files(ckpts)
    for steps in (8, 12, 16):  # saved anew, not shadowed by the bad files
        assert checkpoint_problem(ckpts / f"ppo_{steps}_steps.zip") is None


PRIOR_CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    from egosim.envs.motion import train_prior
    from egosim.envs.motion.config import TrainPriorConfig
    from egosim.envs.motion.training_data import synthetic_primitives

    original = torch.save

    def save(obj, f, *args, **kwargs):
        original(obj, f, *args, **kwargs)
        if "step_0000004" in str(getattr(f, "name", f)):  # killed half way through
            f.flush()
            f.truncate(f.tell() // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save
    cfg = TrainPriorConfig(**json.loads(sys.argv[1]))
    train_prior.run(cfg, data=synthetic_primitives(3, 40, seed=0))
""")


def _prior_kwargs(out: Path) -> dict:
    """Six stage-1 steps of a small C-VAE with a checkpoint every 2 steps."""
    return dict(
        output_dir=str(out), checkpoint_every=2, progress=False, tensorboard=False,
        threads=1, num_seeds=4, cvae={"hidden": 32, "mlp": [64, 32], "latent": 8},
        stage1={"steps": 6, "batch_size": 8},
        stage2={"steps": 0, "batch_size": 2, "num_primitives": 2},
        regressor={"steps": 0, "batch_size": 16, "blocks": 2},
        data={"source": "synthetic", "synthetic_clips": 3, "synthetic_frames": 40})


@pytest.mark.slow
def test_train_prior_resumes_after_kill_during_checkpoint_save(cache, tmp_path, capsys,
                                                               monkeypatch):
    import torch

    from egosim.envs.motion import train_prior
    from egosim.envs.motion.config import TrainPriorConfig
    from egosim.envs.motion.training_data import synthetic_primitives

    kwargs = _prior_kwargs(tmp_path / "run")
    cfg = TrainPriorConfig(**kwargs)
    child = subprocess.run([sys.executable, "-c", PRIOR_CHILD, json.dumps(kwargs)],
                           cwd=TESTS, env=_child_env(cache), capture_output=True, text=True,
                           timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    ckpts = tmp_path / "run" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    assert "step_0000002.pt" in names and "step_0000004.pt" not in names
    assert _temp_files(ckpts)
    (ckpts / "step_0000005.pt").write_bytes(b"")  # an empty newest one from an older crash
    resumed = []
    real = train_prior.resume_state
    monkeypatch.setattr(train_prior, "resume_state",
                        lambda folder: resumed.append(real(folder)) or resumed[-1])
    summary = train_prior.run(cfg, data=synthetic_primitives(3, 40, seed=0))
    err = capsys.readouterr().err
    bad = [line for line in err.splitlines() if "is bad" in line]
    assert len(bad) == 1 and "step_0000005.pt" in bad[0], err
    assert resumed[0][0].name == "step_0000002.pt" and resumed[0][1]["step"] == 2
    assert summary["step"] == 6 and (ckpts / "step_0000005.pt.bad").is_file()
    assert not _temp_files(ckpts)
    for step in (4, 6):
        assert torch.load(ckpts / f"step_{step:07d}.pt", weights_only=False)["step"] == step


# -- caches: corrupted four ways, then used ---------------------------------------------------
def _body_file(gender: str = "neutral") -> Path:
    return generator.procedural_model_dir() / f"SMPLX_{gender.upper()}.npz"


@pytest.mark.parametrize("how", [pytest.param("truncated", marks=pytest.mark.slow),
                                 "zeros", "garbage", "bitflip"])
def test_procedural_body_cache_heals(cache, how, body_arrays, monkeypatch):
    from egosim.envs.humans import BodyModel

    path = _body_file()
    others = {g: _body_file(g).stat().st_mtime_ns for g in ("male", "female")}
    corrupt(path, how)
    calls = []
    if how != "truncated":  # one case regenerates for real; the others reuse its arrays
        monkeypatch.setattr(generator, "generate_body_arrays",
                            lambda: calls.append(1) or body_arrays)
    with pytest.warns(CorruptCacheWarning, match=r"SMPLX_NEUTRAL\.npz is bad") as record:
        body = BodyModel()
    assert sum(issubclass(w.category, CorruptCacheWarning) for w in record) == 1
    assert body.source == "procedural" and body.smplx.v_template.shape == (10475, 3)
    assert calls == ([] if how == "truncated" else [1])
    with np.load(path) as d:
        healed = {k: d[k] for k in d.files if k not in ("cache_key", "checksum")}
    assert array_checksum(healed) == array_checksum(body_arrays["neutral"])
    assert {g: _body_file(g).stat().st_mtime_ns for g in others} == others
    with no_corrupt_warning():
        BodyModel()  # healed for good: no second report


@pytest.mark.slow
def test_env_starts_with_zeroed_body_files(cache, body_arrays, monkeypatch):
    import gymnasium as gym

    import egosim.envs  # noqa: F401  (registers the envs)
    from egosim.envs import resources

    for g in GENDERS:
        corrupt(_body_file(g), "zeros")
    monkeypatch.setattr(generator, "generate_body_arrays", lambda: body_arrays)
    resources.clear()  # no body models of other tests' caches
    try:
        with pytest.warns(CorruptCacheWarning, match="procedural body file"):
            env = gym.make("egosim/EgoLocomotion-v0",
                           overrides={"scene.spec": "procedural:room", "scene.seed": 3,
                                      "episode.max_steps": 2})
            env.reset(seed=0)
        env.close()
    finally:
        resources.clear()
    for g in GENDERS:
        assert generator.body_file_problem(_body_file(g), g) is None


def _motion_file() -> Path:
    from egosim.paths import cache_dir

    return cache_dir("motion") / f"primitives-{TINY_DATA.key()}.npz"


@pytest.mark.parametrize("how", [*CORRUPTIONS, "unstamped", "nan"])
def test_motion_primitive_cache_heals(cache, how):
    path = _motion_file()
    with np.load(path) as d:
        before = {k: d[k] for k in d.files}
    if how == "unstamped":  # a well-formed dataset file that is no cache entry
        PrimitiveDataset.load(path).save(path)
    elif how == "nan":  # a consistent entry (checksum and key fine) holding NaN
        arrays = dict(before)
        arrays["markers"] = arrays["markers"].copy()
        arrays["markers"][0, 0, 0] = np.nan
        np.savez(path, **stamp(arrays, str(before["cache_key"])))
    else:
        corrupt(path, how)
    with pytest.warns(CorruptCacheWarning, match=path.name):
        ds = default_dataset(TINY_DATA, progress=False)
    rebuilt = ds.to_arrays()
    assert {k: array_checksum({k: rebuilt[k]}) for k in rebuilt if k != "card_json"} == {
        k: array_checksum({k: v}) for k, v in before.items()
        if k not in ("cache_key", "checksum", "card_json")}  # the card holds a build time
    with no_corrupt_warning():
        again = default_dataset(TINY_DATA, progress=False)
    assert np.array_equal(again.markers, ds.markers)


def _scene_file(folder: Path) -> Path:
    mesh = trimesh.util.concatenate([trimesh.creation.box(extents=[3, 3, 0.1]),
                                     trimesh.creation.box(extents=[0.6, 0.6, 2.5])])
    path = folder / "block.ply"
    mesh.export(path)
    return path


def _damage_entry(path: Path, kind: str, how: str) -> None:
    """Rewrite a scene cache entry as a well-formed, consistently stamped but wrong one."""
    with np.load(path) as d:
        a = {k: d[k] for k in d.files}
    key = str(a["cache_key"])
    if how == "missing_key":
        a.pop("floor" if kind == "walk" else "values")
    elif how == "wrong_shape":
        if kind == "walk":
            a["floor_height"] = a["floor_height"][:, :-1]
        else:
            a["values"] = a["values"][..., 0]
    elif how == "nan":
        a["origin"] = np.full_like(a["origin"], np.nan)
    elif how == "other_key":
        key = key[:-1] + ("0" if key[-1] != "0" else "1")
    np.savez(path, **stamp({k: v for k, v in a.items() if k not in ("cache_key", "checksum")},
                           key))


@pytest.mark.parametrize("how", [*CORRUPTIONS, "missing_key", "wrong_shape", "nan", "other_key"])
@pytest.mark.parametrize("kind", ["walk", "sdf"])
def test_scene_cache_heals(cache, tmp_path, kind, how):
    from egosim.envs.scenes import load
    from egosim.envs.scenes.cache import load_arrays

    mesh = _scene_file(tmp_path)

    def value(scene):
        return scene.walkable if kind == "walk" else scene.sdf_grid.values

    ref = value(load(mesh)).copy()
    (path,) = (cache / "scenes").glob(f"{kind}-*.npz")
    if how in CORRUPTIONS:
        corrupt(path, how)
    else:
        _damage_entry(path, kind, how)
    with pytest.warns(CorruptCacheWarning, match=path.name):
        got = value(load(mesh))
    assert np.array_equal(got, ref)
    with no_corrupt_warning():
        assert load_arrays(path.stem) is not None


# -- two processes building one cache at once -------------------------------------------------
BODY_CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    from egosim.envs.humans.procedural import generator

    def generate():
        print("GENERATED", flush=True)
        time.sleep(1.0)
        out = {}
        for g in ("neutral", "male", "female"):
            with np.load(f"{sys.argv[1]}/SMPLX_{g.upper()}.npz") as d:
                out[g] = {k: d[k] for k in d.files if k not in ("cache_key", "checksum")}
        return out

    generator.generate_body_arrays = generate
    from egosim.cache_entry import read_npz
    from egosim.envs.humans import BodyModel

    BodyModel()
    arrays, _ = read_npz(generator.procedural_model_path("neutral"))
    print("OK", arrays["checksum"], flush=True)
""")

MOTION_CHILD = textwrap.dedent("""
    import time
    import egosim.envs.motion.primitive_dataset as pd
    from egosim.cache_entry import array_checksum

    build = pd.build_primitive_dataset

    def slow_build(*args, **kwargs):
        print("BUILT", flush=True)
        time.sleep(1.0)
        return build(*args, **kwargs)

    pd.build_primitive_dataset = slow_build
    cfg = pd.DatasetConfig(clips={"walk": 1}, num_augmented=0, num_shapes=1)
    ds = pd.default_dataset(cfg, progress=False)
    print("OK", array_checksum(ds.to_arrays()), flush=True)
""")

SCENE_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from egosim.cache_entry import array_checksum
    from egosim.envs.scenes import load

    s = load(sys.argv[1])
    print("OK", array_checksum({"w": s.walkable, "d": s.sdf_grid.values}), flush=True)
""")


def _run_two(script: str, cache: Path, *args: str) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], cwd=TESTS,
                              env=_child_env(cache), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outs.append(out)
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("which", ["body", "motion", "scene"])
def test_two_processes_build_one_cache(which, tmp_path, seed_cache):
    cache = tmp_path / "cache"
    args: tuple[str, ...] = ()
    if which == "body":
        script, marker, args = BODY_CHILD, "GENERATED", (
            str(seed_cache / "bodies" / generator.GENERATOR_VERSION),)
    elif which == "motion":  # the bodies are there; the dataset is built
        shutil.copytree(seed_cache / "bodies", cache / "bodies")
        script, marker = MOTION_CHILD, "BUILT"
    else:
        script, marker, args = SCENE_CHILD, "", (str(_scene_file(tmp_path)),)
    outs = _run_two(script, cache, *args)
    results = [line for out in outs for line in out.splitlines() if line.startswith("OK")]
    assert len(results) == 2 and results[0] == results[1]  # the same data for both
    if marker:  # the lock: the work was done once
        assert sum(out.count(marker) for out in outs) == 1, outs
    assert not _temp_files(cache)


# -- mesh files -------------------------------------------------------------------------------
def _box_obj_lines(extents, offset=0) -> list[str]:
    box = trimesh.creation.box(extents=extents)
    return ([f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in box.vertices]
            + [f"f {a + 1 + offset} {b + 1 + offset} {c + 1 + offset}" for a, b, c in box.faces])


def test_obj_with_latin1_bytes_loads(tmp_path):
    from egosim.envs.scenes.meshfile import load_mesh_arrays

    (tmp_path / "room.mtl").write_bytes("# mat\u00e9riau\nnewmtl wood\nKd 0.5 0.3 0.1\n"
                                        .encode("latin-1"))
    text = "# caf\u00e9 cr\u00e8me\nmtllib room.mtl\no floor_slab\nusemtl wood\n"
    text += "\n".join(_box_obj_lines([4, 4, 0.1])) + "\n"
    path = tmp_path / "room.obj"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    a = load_mesh_arrays(path)
    assert len(a["triangles"]) == 12
    assert np.allclose(a["face_albedo"], [0.5, 0.3, 0.1], atol=0.01)  # the MTL was read


def test_truncated_obj_is_refused(tmp_path):
    from egosim.envs.scenes.meshfile import load_mesh_arrays

    lines = (_box_obj_lines([4, 4, 0.1]) + _box_obj_lines([1, 1, 2], offset=8))
    lines = [ln for ln in lines if ln[0] == "v"] + [ln for ln in lines if ln[0] == "f"]
    data = ("\n".join(lines) + "\n").encode()  # 16 vertices, 24 faces
    path = tmp_path / "two.obj"
    path.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(ValueError, match="two.obj.*truncated"):
        load_mesh_arrays(path)
    # cut exactly after a face line: the second box's vertices are left without faces
    cut = data[: data.rindex(b"\nf ", 0, int(len(data) * 0.8))]
    path.write_bytes(cut)
    with pytest.raises(ValueError, match="truncated: it ends inside a line"):
        load_mesh_arrays(path)
    path.write_bytes(data.replace(b"f 9 ", b"f 99 ", 1))
    with pytest.raises(ValueError, match="vertex '99' is not one of the file's 16 vertices"):
        load_mesh_arrays(path)
    path.write_bytes(data)
    assert len(load_mesh_arrays(path)["triangles"]) == 24


def test_truncated_ascii_ply_is_refused(tmp_path):
    from egosim.envs.scenes.meshfile import load_mesh_arrays

    path = tmp_path / "box.ply"
    trimesh.creation.box(extents=[4, 4, 0.1]).export(path, encoding="ascii")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(ValueError, match="box.ply.*truncated"):
        load_mesh_arrays(path)


def test_labels_never_come_from_the_file_name(tmp_path):
    from egosim.envs.scenes.classes import class_id
    from egosim.envs.scenes.meshfile import load_mesh_arrays

    wall = _box_obj_lines([4, 0.1, 2.5])
    unnamed = tmp_path / "nofloor_wall.obj"
    unnamed.write_text("\n".join(wall) + "\n")
    a = load_mesh_arrays(unnamed, align_floor=False)
    assert not np.any(a["face_semantic"] == class_id("floor"))
    assert not np.any(a["face_semantic"] == class_id("wall"))
    named = tmp_path / "floor_01.obj"  # an object name inside the file does label
    named.write_text("o north_wall\n" + "\n".join(wall) + "\n")
    b = load_mesh_arrays(named, align_floor=False)
    assert np.all(b["face_semantic"] == class_id("wall"))
    ply = tmp_path / "floor.ply"
    trimesh.creation.box(extents=[4, 0.1, 2.5]).export(ply)
    c = load_mesh_arrays(ply, align_floor=False)
    assert not np.any(c["face_semantic"] == class_id("floor"))


# -- walk-grid size guard ---------------------------------------------------------------------
def _floor(size_x: float, size_y: float, thick: float = 0.1) -> np.ndarray:
    box = trimesh.creation.box(extents=[size_x, size_y, thick])
    box.apply_translation([0, 0, -thick / 2])
    return np.asarray(box.triangles)


def test_huge_walk_grid_is_refused_with_a_units_hint(cache, tmp_path):
    from egosim.envs.scenes import Scene, load
    from egosim.envs.scenes.walkability import check_grid_size

    with pytest.raises(ValueError, match=r"40000 x 40000.*walk_max_cells.*scale=0\.01"):
        Scene(_floor(2000, 2000)).walkable  # noqa: B018
    # a 6 m x 4 m room in centimetres, read as metres: 600 m x 400 m
    path = tmp_path / "room_cm.ply"
    trimesh.creation.box(extents=[600, 400, 10]).export(path)
    with pytest.raises(ValueError, match=r"8000 x 12000.*centimetres.*scale=0\.01"):
        load(path, walk_max_cells=50_000_000).walkable  # noqa: B018
    with pytest.raises(ValueError, match=r"8000 x 12000.*centimetres.*scale=0\.01"):
        load(path).walkable  # noqa: B018  (the default limit refuses it too)
    scene = load(path)
    with pytest.warns(UserWarning, match="centimetres"):  # under a raised limit: a warning
        check_grid_size(scene.bounds, scene.grid_resolution, max_cells=150_000_000)
    with pytest.raises(ValueError, match="walk_max_cells=5e"):  # 6 m x 4 m: 9,600 cells
        load(path, scale=0.01, walk_max_cells=5000).walkable  # noqa: B018
    with no_corrupt_warning(), warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert load(path, scale=0.01, walk_max_cells=20_000).walkable.any()
    with pytest.raises(ValueError, match="walk_max_cells must be"):
        load(path, walk_max_cells=0)


def test_tiny_mesh_has_a_units_hint():
    from egosim.envs.scenes import Scene

    scene = Scene(_floor(0.06, 0.06, 0.001))
    with pytest.raises(ValueError, match=r"no walkable cell.*0\.06 m.*scale=100"):
        scene.sample_start_goal(0)


# -- a user's SMPL-X files --------------------------------------------------------------------
def _user_file(folder: Path, how: str, arrays: dict) -> Path:
    path = folder / ("SMPLX_NEUTRAL.pkl" if how == "garbage_pkl" else "SMPLX_NEUTRAL.npz")
    a = dict(arrays)
    if how in ("garbage", "garbage_pkl"):
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())
        return path
    if how == "no_shapedirs":
        a.pop("shapedirs")
    elif how == "smpl_sized":
        a["v_template"] = a["v_template"][:6890]
    elif how == "few_shapedirs":
        a["shapedirs"] = a["shapedirs"][..., :5]
    elif how == "nan_template":
        a["v_template"] = a["v_template"].copy()
        a["v_template"][10] = np.nan
    elif how == "bad_faces":
        a["f"] = a["f"] + 20000
    np.savez(path, **a)
    return path


@pytest.mark.parametrize("how, problem", [
    ("garbage", "not an .npz archive"),
    ("garbage_pkl", "not a readable pickle"),
    ("no_shapedirs", "lacks the array.*shapedirs"),
    ("smpl_sized", "6890 template vertices"),
    ("few_shapedirs", r"shapedirs has shape \(10475, 3, 5\)"),
    ("nan_template", "'v_template' contains NaN"),
    ("bad_faces", "faces f reference vertex"),
])
def test_bad_user_model_file_is_named_and_kept(cache, tmp_path, monkeypatch, body_arrays, how,
                                               problem):
    from egosim.envs.humans import BodyModel
    from egosim.envs.humans.body_model import ModelFileError

    folder = tmp_path / "smplx"
    folder.mkdir()
    path = _user_file(folder, how, body_arrays["neutral"])
    data = path.read_bytes()
    monkeypatch.setenv("EGOSIM_SMPLX_DIR", str(folder))
    with pytest.raises(ModelFileError, match=problem) as err:
        BodyModel()
    assert str(path) in str(err.value)
    assert path.read_bytes() == data  # never changed or deleted


def test_good_user_model_file_loads(cache, tmp_path, monkeypatch, body_arrays):
    from egosim.envs.humans import BodyModel

    folder = tmp_path / "smplx"
    folder.mkdir()
    np.savez(folder / "SMPLX_NEUTRAL.npz", **body_arrays["neutral"])
    monkeypatch.setenv("EGOSIM_SMPLX_DIR", str(folder))
    body = BodyModel()
    assert body.source == "env" and body.model_path == folder / "SMPLX_NEUTRAL.npz"
