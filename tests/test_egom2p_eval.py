"""``egosim egom2p eval``: pose interpolation to the pose clock, config errors naming the key,
the user-model protocol, the result layout, the training means, the classical odometries on
real clips against zero motion, and the whole command with a user model plugged in."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from egosim.config import ConfigError, load_config
from egosim.egom2p.eval_config import EvalConfig
from egosim.egom2p.evaluation.baselines import (
    MeanDepth,
    TrainStats,
    ZeroMotion,
    chordal_mean,
    compute_train_stats,
    load_train_stats,
    save_train_stats,
)
from egosim.egom2p.evaluation.harness import (
    METRICS,
    Method,
    builtin_methods,
    egom2p_methods,
    evaluate_methods,
    load_callable,
    make_clip_groups,
    resolve_train_stats,
    user_methods,
)
from egosim.egom2p.evaluation.odometry import interpolate_poses, upscaled_intrinsics
from egosim.egom2p.evaluation.table import format_markdown, jsonable

BASELINES = {"camera": {"opencv_rgbd", "mono_vo", "zero_motion", "mean_trajectory"},
             "depth": {"mean_depth"}, "gaze": {"center", "mean_gaze"}, "rgb": {"mean_frame"}}


def _screw(times: np.ndarray, omega: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Poses of a constant-rate motion: ``R(t) = exp(t [omega])``, ``p(t) = t v``."""
    p = np.tile(np.eye(4), (len(times), 1, 1))
    p[:, :3, :3] = Rotation.from_rotvec(times[:, None] * omega).as_matrix()
    p[:, :3, 3] = times[:, None] * velocity
    return p


def _constructed_clip(rng: np.random.Generator, size: int = 16) -> dict:
    """A clip of the layout with random frames and a constant-rate trajectory."""
    pose_times, video_times = np.arange(60) / 30.0, np.arange(16) / 8.0
    omega, vel = rng.normal(0, 0.3, 3), np.array([0.1, 0.0, 1.2]) + rng.normal(0, 0.1, 3)
    depth = rng.uniform(0.5, 6.0, (16, size, size)).astype(np.float32)
    depth[:, 0, :3] = 0.0
    return {"rgb": rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8),
            "depth": depth, "camera": _screw(pose_times, omega, vel),
            "video_camera": _screw(video_times, omega, vel),
            "gaze": rng.uniform(-0.5, 0.5, (60, 2)).astype(np.float32),
            "gaze_valid": rng.uniform(size=60) > 0.2,
            "intrinsics": np.array([[size / 2, 0, (size - 1) / 2], [0, size / 2, (size - 1) / 2],
                                    [0, 0, 1.0]]),
            "video_times": video_times, "pose_times": pose_times}


# -- interpolation ----------------------------------------------------------------------


def test_interpolation_16_to_60_matches_the_pose_times_of_a_constant_rate_motion() -> None:
    rng = np.random.default_rng(0)
    clip = _constructed_clip(rng)
    out = interpolate_poses(clip["video_camera"], clip["video_times"], clip["pose_times"])
    assert out.shape == (60, 4, 4)
    # slerp and linear translation are exact for a constant-rate motion, also past the
    # last video frame (1.875 s; the pose clock runs to 59 / 30 s) by extrapolation
    np.testing.assert_allclose(out, clip["camera"], atol=1e-9)
    # shared instants (k = 4 m, j = 15 m) are the given poses exactly
    np.testing.assert_array_equal(out[::15], clip["video_camera"][::4])
    held = interpolate_poses(clip["video_camera"], clip["video_times"], clip["pose_times"],
                             extrapolate=False)
    late = clip["pose_times"] > clip["video_times"][-1]
    assert late.sum() == 3
    np.testing.assert_array_equal(held[late], np.broadcast_to(clip["video_camera"][-1],
                                                              (3, 4, 4)))
    with pytest.raises(ValueError, match="increasing"):
        interpolate_poses(clip["video_camera"], clip["video_times"][::-1], clip["pose_times"])


def test_upscaled_intrinsics_keep_pixel_centres() -> None:
    k = np.array([[32.0, 0, 31.5], [0, 32.0, 31.5], [0, 0, 1]])
    ku = upscaled_intrinsics(k, 2)
    # the image centre stays the centre, the focal length doubles
    np.testing.assert_allclose(ku, [[64.0, 0, 63.5], [0, 64.0, 63.5], [0, 0, 1]])


# -- config -----------------------------------------------------------------------------


@pytest.mark.parametrize("override, key, words", [
    ("scene_seeds=[100, 1100]", "scene_seeds", ["disjoint", "[0, 200)"]),
    ("clips=0", "clips", ["greater than or equal to 1"]),
    ("tasks=[camera, pose]", "tasks", ["'camera', 'depth', 'gaze' or 'rgb'"]),
    ("tasks=[]", "tasks", ["at least one"]),
    ("video_size=60", "video_size", ["multiple of 8"]),
    ("clip_overrides={video_size: 32}", "clip_overrides", ["video_size"]),
    ("model=' '", "model", ["module:callable"]),
    ("specialist=my_pkg.mod:fn", "specialist", ["checkpoint path"]),
    ("rgbd_odometry.max_rotation_deg=0", "rgbd_odometry.max_rotation_deg", ["greater than"]),
    ("scenes=[pybullet:nowhere]", "scenes", ["pybullet:nowhere"]),
])
def test_bad_eval_configs_name_the_key(override: str, key: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("egom2p_eval", [override], schema=EvalConfig)
    text = str(err.value)
    assert repr(key) in text or f"'{key}." in text, text
    for w in words:
        assert w in text, text


def test_shipped_eval_config_is_the_schema_default_and_model_takes_a_callable() -> None:
    cfg = load_config("egom2p_eval", schema=EvalConfig)
    assert cfg == EvalConfig()
    assert cfg.tasks == ["camera", "depth", "gaze", "rgb"] and cfg.model is None
    assert load_config("egom2p_eval", ["model=my_pkg.depth:predict", "json=true"],
                       schema=EvalConfig).model == "my_pkg.depth:predict"
    assert EvalConfig(tasks=["rgb", "camera"]).tasks == ["camera", "rgb"]  # table order


# -- the user-model protocol ------------------------------------------------------------


def test_user_model_protocol_probes_declares_and_names() -> None:
    clip = _constructed_clip(np.random.default_rng(1))

    def depth_only(c: dict) -> np.ndarray:  # one argument, no tasks: probed
        return c["rgb"].mean(axis=-1).astype(np.float32)

    methods, skipped = user_methods(depth_only, clip, ["camera", "depth", "gaze", "rgb"])
    assert [(m.name, m.task) for m in methods] == [("user", "depth")]
    assert "returns shape" in skipped["camera"]["user"]
    assert "KeyError" in skipped["rgb"]["user"]  # the rgb task gets depth, not rgb

    calls = []

    def by_task(c: dict, task: str) -> np.ndarray:  # two arguments: called with the task
        calls.append((task, sorted(c)))
        if task == "gaze":
            return np.zeros((60, 2), np.float32)
        raise NotImplementedError(task)

    by_task.name = "mine"
    methods, skipped = user_methods(by_task, clip, ["camera", "gaze"])
    assert [(m.name, m.task) for m in methods] == [("mine", "gaze")]
    assert "NotImplementedError" in skipped["camera"]["mine"]
    # the method sees the task's inputs only, never the targets
    assert calls[-1] == ("gaze", ["intrinsics", "pose_times", "rgb", "video_times"])

    def declared(c: dict) -> np.ndarray:
        raise AssertionError("a declared method is not probed")

    declared.tasks = ("rgb",)
    methods, skipped = user_methods(declared, clip, ["depth", "rgb"])
    assert [m.task for m in methods] == ["rgb"] and "tasks attribute" in skipped["depth"]["user"]

    with pytest.raises(ValueError, match="none of the tasks.*config key model"):
        user_methods(by_task, clip, ["camera"])
    with pytest.raises(ValueError, match="built-in method's"):
        user_methods(depth_only, clip, ["depth"], taken=["user"])
    declared.tasks = ("pose",)
    with pytest.raises(ValueError, match="tasks attribute"):
        user_methods(declared, clip, ["depth"])


def test_load_callable_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "eval_user_mod.py").write_text("VALUE = 3\ndef f(clip):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_callable("eval_user_mod:f").__name__ == "f"
    for path, words in [("eval_user_mod:VALUE", "not callable"),
                        ("eval_user_mod:g", "cannot be loaded"),
                        ("no_such_module_xyz:f", "cannot be loaded"),
                        ("not a path", "module:callable")]:
        with pytest.raises(ValueError, match=words) as err:
            load_callable(path)
        assert "config key model" in str(err.value)


def test_model_rows_skip_with_reasons_and_a_missing_checkpoint_names_the_key(
        tmp_path: Path) -> None:
    methods, skipped = egom2p_methods(EvalConfig(model="my_pkg.mod:fn"), user_model=True)
    assert methods == []
    assert set(skipped) == {"camera", "depth", "gaze", "rgb"}
    assert set(skipped["camera"]) == {"egom2p", "egom2p_rgbd"}
    assert "user method" in skipped["gaze"]["egom2p"]
    assert "config key specialist" in skipped["depth"]["specialist"]
    for key in ("model", "specialist"):
        cfg = EvalConfig(**{key: str(tmp_path / "missing.pt")},
                         **({"model": "my_pkg.mod:fn"} if key == "specialist" else {}))
        with pytest.raises(ValueError, match=f"config key {key}"):
            egom2p_methods(cfg, user_model=key == "specialist")


# -- harness and table on constructed clips ---------------------------------------------


def test_results_layout_an_oracle_scores_perfectly_and_zero_motion_does_not() -> None:
    rng = np.random.default_rng(2)
    groups = {"apartments": [_constructed_clip(rng) for _ in range(2)],
              "unseen": [_constructed_clip(rng)]}

    # an oracle is given its task's target as an input (Method.inputs) and returns it
    methods = [Method("oracle", t, lambda c, k=t: np.array(c[k]), inputs=(t,))
               for t in METRICS]
    methods.append(Method("zero_motion", "camera", ZeroMotion(), ()))
    res = evaluate_methods(groups, methods)
    assert list(res.results) == ["camera", "depth", "gaze", "rgb"]
    expected = {"camera": ["ate", "ate_sim3", "rte", "rre"], "depth": ["abs_rel", "delta1"],
                "gaze": ["l2"], "rgb": ["psnr", "ssim"]}
    for task, names in expected.items():
        keys = set(names) | {"seconds_per_clip", "clips"}
        assert set(res.results[task]["oracle"]) == keys | {f"{k}@unseen" for k in keys}
        assert res.results[task]["oracle"]["clips"] == 2
        assert res.results[task]["oracle"]["clips@unseen"] == 1
    cam = res.results["camera"]
    assert cam["oracle"]["ate"] < 1e-9 and cam["oracle"]["rre"] < 1e-6
    assert cam["zero_motion"]["ate"] > 0.5 and cam["zero_motion"]["ate@unseen"] > 0.5
    assert res.results["depth"]["oracle"]["abs_rel"] < 1e-6
    assert res.results["depth"]["oracle"]["delta1"] == 1.0
    assert res.results["gaze"]["oracle"]["l2"] == 0.0
    assert res.results["rgb"]["oracle"]["psnr"] == math.inf
    assert jsonable(res.results)["rgb"]["oracle"]["psnr"] is None  # strict JSON
    assert len(res.per_clip["camera"]["oracle"]["apartments"]["ate"]) == 2
    table = format_markdown(res.results, {"apartments": 2, "unseen": 1},
                            {"depth": {"specialist": "no checkpoint"}}, {}, set())
    assert "| zero_motion |" in table and "| specialist | —" in table
    assert "specialist: skipped: no checkpoint" in table


def test_a_method_with_a_wrong_output_is_named() -> None:
    clip = _constructed_clip(np.random.default_rng(3))
    bad = Method("flat", "depth", lambda c: np.zeros((16, 8, 8), np.float32))
    with pytest.raises(ValueError, match="'flat' \\(depth\\).*shape"):
        evaluate_methods({"apartments": [clip]}, [bad])


def test_training_means_and_their_file() -> None:
    rng = np.random.default_rng(4)
    clips = [_constructed_clip(rng) for _ in range(3)]
    stats = compute_train_stats(clips, "constructed")
    np.testing.assert_array_equal(stats.camera[0], np.eye(4))
    np.testing.assert_allclose(stats.camera[:, :3, 3],
                               np.mean([c["camera"][:, :3, 3] for c in clips], axis=0))
    r = stats.camera[:, :3, :3]
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-12)
    # the corner pixels have no depth in any clip: they get the overall mean depth
    valid = np.concatenate([c["depth"] for c in clips])
    assert stats.depth[0, 0] == pytest.approx(valid[valid > 0].mean(), rel=1e-5)
    assert stats.depth[5, 5] == pytest.approx(valid[:, 5, 5].mean(), rel=1e-5)
    assert MeanDepth(stats)(clips[0]).shape == (16, 16, 16)
    # the chordal mean of a rotation and its inverse about one axis is the identity
    rz = Rotation.from_rotvec([[0, 0, 0.4], [0, 0, -0.4]]).as_matrix()
    np.testing.assert_allclose(chordal_mean(rz), np.eye(3), atol=1e-12)


def test_train_stats_file_round_trip_and_size_check(tmp_path: Path) -> None:
    clips = [_constructed_clip(np.random.default_rng(5))]
    stats = compute_train_stats(clips, "constructed")
    path = save_train_stats(tmp_path / "train_stats.npz", stats)
    back = load_train_stats(path)
    for k in ("camera", "depth", "rgb", "gaze"):
        np.testing.assert_array_equal(getattr(back, k), getattr(stats, k))
    assert (back.clips, back.source) == (1, "constructed")
    cfg = EvalConfig(train_stats=str(path))  # 16-pixel means, video_size 64
    with pytest.raises(ValueError, match="video_size is 64.*train_stats"):
        resolve_train_stats(cfg)
    with pytest.raises(FileNotFoundError, match="train_stats"):
        load_train_stats(tmp_path / "missing.npz")


# -- real clips -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_clips() -> dict[str, list[dict]]:
    import torch

    torch.set_num_threads(1)
    cfg = EvalConfig(clips=4, scenes=[], video_size=64, progress=False)
    return make_clip_groups(cfg)


@pytest.mark.slow
def test_real_clips_are_held_out_and_interpolation_matches_their_pose_clock(
        real_clips: dict[str, list[dict]]) -> None:
    clips = real_clips["apartments"]
    assert len(clips) == 4 and list(real_clips) == ["apartments"]
    for c in clips:
        assert c["meta"]["scene_spec"] == "procedural:apartment"
        assert 1000 <= c["meta"]["scene_seed"] < 1200
        out = interpolate_poses(c["video_camera"], c["video_times"], c["pose_times"])
        np.testing.assert_allclose(out[::15], c["camera"][::15], atol=1e-9)
        # between video frames the head's motion is smooth: within a few centimetres
        err = np.linalg.norm(out[:, :3, 3] - c["camera"][:, :3, 3], axis=1)
        assert err.max() < 0.05, err.max()
    # the clips are a function of the config: a fresh run makes the same first clip
    again = make_clip_groups(EvalConfig(clips=1, scenes=[], progress=False))["apartments"][0]
    for k in ("rgb", "depth", "camera", "gaze"):
        np.testing.assert_array_equal(again[k], clips[0][k])


@pytest.mark.slow
def test_odometry_baselines_on_real_clips_beat_zero_motion(
        real_clips: dict[str, list[dict]]) -> None:
    clips = real_clips["apartments"]
    stats = compute_train_stats(clips, "the test clips")
    cfg = EvalConfig(tasks=["camera"])
    found = evaluate_methods({"apartments": clips}, builtin_methods(cfg, stats))
    cam = found.results["camera"]
    moved = [np.linalg.norm(c["camera"][-1, :3, 3]) for c in clips]
    assert min(moved) > 0.5, moved  # the wearers walk
    assert cam["opencv_rgbd"]["ate"] < 0.5 * cam["zero_motion"]["ate"], cam
    assert math.isfinite(cam["mono_vo"]["ate_sim3"])
    assert cam["mono_vo"]["ate_sim3"] < cam["zero_motion"]["ate_sim3"], cam
    assert cam["opencv_rgbd"]["seconds_per_clip"] > 0
    failed, total = found.steps["camera"]["opencv_rgbd"]["apartments"]
    assert total == 15 * len(clips) and 0 <= failed < total // 2


@pytest.mark.slow
def test_train_stats_from_a_clip_cache_folder(real_clips: dict[str, list[dict]],
                                              tmp_path: Path) -> None:
    from egosim.atomic_io import save_npz

    clips = real_clips["apartments"][:3]
    keys = ("camera", "depth", "rgb", "gaze", "gaze_valid")
    (tmp_path / "train").mkdir()
    for i, c in enumerate(clips):
        save_npz(tmp_path / "train" / f"clip_{i:06d}.npz", {k: c[k] for k in keys})
    got = resolve_train_stats(EvalConfig(train_stats=str(tmp_path), train_clips=3))
    want = compute_train_stats(clips, "x")
    np.testing.assert_array_equal(got.depth, want.depth)
    np.testing.assert_array_equal(got.camera, want.camera)
    with pytest.raises(ValueError, match="holds 3 clip files.*train_clips"):
        resolve_train_stats(EvalConfig(train_stats=str(tmp_path), train_clips=4))


USER_MODULE = '''
import numpy as np


def predict(clip):
    """Depth from brightness: darker is farther (a user's toy method)."""
    grey = clip["rgb"].astype(np.float32).mean(axis=-1)
    return 1.0 + (255.0 - grey) / 64.0


predict.tasks = ("depth",)
predict.name = "brightness_depth"
'''


@pytest.mark.slow
def test_eval_command_json_keys_and_a_user_model_in_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from egosim.cli import main

    (tmp_path / "my_eval_model.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_eval_model", None)
    out_dir = tmp_path / "out"
    code = main(["egom2p", "eval", "model=my_eval_model:predict", "clips=2",
                 "scenes=[pybullet:stadium]", "train_clips=2", "json=true", "progress=false",
                 f"output_dir={out_dir}"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    res = json.loads(lines[-1])
    assert list(res) == ["camera", "depth", "gaze", "rgb"]
    assert set(res["depth"]) == {"brightness_depth", "mean_depth"}
    for task, names in BASELINES.items():
        assert names <= set(res[task]), (task, set(res[task]))
        assert "egom2p" not in res[task]  # the user method stands in the model's place
        for row in res[task].values():
            keys = set(METRICS[task]) | {"seconds_per_clip", "clips"}
            assert set(row) == keys | {f"{k}@unseen" for k in keys}
            assert row["clips"] == 2 and row["clips@unseen"] == 2
    assert 0.0 < res["depth"]["brightness_depth"]["abs_rel"] < 10.0
    table = (out_dir / "table.md").read_text()
    assert "| brightness_depth |" in table and "| mean_depth |" in table
    assert table in "\n".join(lines)  # the printed table is the file's
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["results"] == res
    assert "user method" in saved["skipped"]["camera"]["egom2p"]
    assert "specialist" in saved["skipped"]["depth"]
    assert saved["clips"] == {"apartments": 2, "unseen": 2}
    assert (out_dir / "table.png").stat().st_size > 1000
    stats = load_train_stats(out_dir / "train_stats.npz")
    assert isinstance(stats, TrainStats) and stats.clips == 2 and stats.video_size == 64
