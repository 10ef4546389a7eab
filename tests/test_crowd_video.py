"""``crowd.mp4`` of `egosim demo`: humans driven by the shipped PPO policy, ego views + map."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import pytest

SIZE = 48
FPS = 20.0
SECONDS = 2.5


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One short `egosim demo` run with the crowd video (small views, 2.5 s)."""
    from egosim.apps.config import DemoConfig
    from egosim.apps.demo import run_demo
    from egosim.config import load_config

    root = tmp_path_factory.mktemp("crowd_demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOSIM_CACHE_DIR", str(root / "cache"))
        mp.delenv("EGOSIM_SMPLX_DIR", raising=False)
        cfg = load_config("demo", [f"output_dir={root / 'demo'}", "turntable_views=1",
                                   "turntable_size=32", "num_bodies=2", "video_size=32",
                                   "video_max_seconds=0.5", f"crowd_size={SIZE}",
                                   f"crowd_fps={FPS}", f"crowd_max_seconds={SECONDS}"],
                          schema=DemoConfig)
        summary = run_demo(cfg)
        yield {"cfg": cfg, "summary": summary, "root": root}


def _read(path: Path) -> np.ndarray:
    return np.stack([f for f in imageio.get_reader(str(path))])


@pytest.mark.slow
def test_demo_writes_crowd_video_of_humans_walking(demo_run: dict[str, Any]) -> None:
    summary = demo_run["summary"]
    crowd = summary["crowd_video"]
    path = summary["written"]["crowd_video"]
    assert path == demo_run["root"] / "demo" / "crowd.mp4" and path.is_file()
    assert sorted(summary["written"]) == ["clips_video", "crowd_video", "topdown", "turntable",
                                          "video"]
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "clips.mp4", "crowd.mp4", "topdown.png", "turntable.png", "walk.mp4"]
    frames = _read(path)
    n_max = int(round(SECONDS * FPS))
    assert frames.shape[0] == crowd["frames"] and 10 <= crowd["frames"] <= n_max
    # Three square ego views side by side, then the map at the same height, its width
    # following the scene's aspect ratio (even, for the encoder).
    lo, hi = np.asarray(summary["scene"].bounds, dtype=np.float64)
    map_w = max(2, int(round(SIZE * (hi[0] - lo[0]) / (hi[1] - lo[1]))) // 2 * 2)
    assert frames.shape[1:] == (SIZE, 3 * SIZE + map_w, 3) == crowd["frame_shape"]
    ego = frames[:, :, :3 * SIZE]
    assert ego.mean() > 20  # the ego views are lit, not black
    for i in range(3):
        view = frames[:, :, i * SIZE:(i + 1) * SIZE]
        assert not np.array_equal(view[0], view[-1]), f"ego view {i} does not move"
    top = frames[:, :, 3 * SIZE:]
    assert not np.array_equal(top[0], top[-1])  # bodies and trails move on the map
    # The humans walk: each gets more than 0.5 m from its start (pelvis, on the floor).
    paths = crowd["paths"]
    assert paths.shape == (3, crowd["frames"], 3)
    away = np.linalg.norm(paths[:, :, :2] - paths[:, :1, :2], axis=-1).max(axis=1)
    assert (away > 0.5).all(), away
    assert (crowd["walked_m"] > 0.5).all()
    # Head cameras sit at eye height; starts and goals are where the env put them.
    eye_z = crowd["eyes"][..., 2]
    assert 1.2 < eye_z.min() and eye_z.max() < 2.0, (eye_z.min(), eye_z.max())
    assert crowd["goals"].shape == (3, 3) and len(crowd["routes"]) == 3
    assert summary["scene"].is_walkable(crowd["goals"]).all()
    assert crowd["steps"] >= 5  # 2.5 s of motion: 0.45 s per policy step


def test_crowd_video_is_deterministic(demo_run: dict[str, Any], tmp_path: Path) -> None:
    from egosim.apps.crowd_video import render_crowd_video

    cfg = demo_run["cfg"]
    first = demo_run["summary"]["crowd_video"]
    options = {"grid_resolution": cfg.scene.grid_resolution,
               "body_radius": cfg.scene.body_radius, "body_height": cfg.scene.body_height}
    again = render_crowd_video(tmp_path / "again.mp4", scene_spec=cfg.scene.spec,
                               scene_seed=cfg.scene.seed, scene_options=options,
                               num_humans=3, seed=cfg.body_seed, size=SIZE, fps=FPS,
                               max_seconds=SECONDS, progress=False)
    assert again["frames"] == first["frames"]
    np.testing.assert_array_equal(again["paths"], first["paths"])
    np.testing.assert_array_equal(again["goals"], first["goals"])
    a, b = _read(tmp_path / "again.mp4"), _read(first["video"])
    assert a.shape == b.shape
    assert a[0].tobytes() == b[0].tobytes() and a[-1].tobytes() == b[-1].tobytes()


def test_bad_arguments_name_the_config_key(tmp_path: Path) -> None:
    from egosim.apps.config import DemoConfig
    from egosim.apps.crowd_video import render_crowd_video
    from egosim.config import ConfigError, load_config

    for override, key in (("crowd_humans=1", "crowd_humans"), ("crowd_fps=60", "crowd_fps"),
                          ("crowd_max_seconds=0", "crowd_max_seconds")):
        with pytest.raises(ConfigError, match=key):
            load_config("demo", [override], schema=DemoConfig)
    with pytest.raises(ValueError, match="crowd_humans"):
        render_crowd_video(tmp_path / "x.mp4", num_humans=1)
    with pytest.raises(FileNotFoundError, match="missing.zip"):
        render_crowd_video(tmp_path / "x.mp4", policy=tmp_path / "missing.zip")
    assert not (tmp_path / "x.mp4").exists()
