"""`egosim demo` and `egosim scene` end to end on the embedded defaults (real files on disk)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest

from egosim.cli import main


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EGOSIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EGOSIM_SMPLX_DIR", raising=False)
    return tmp_path


@pytest.mark.slow
def test_demo_writes_pictures_of_bodies_in_walkable_spots(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from egosim.apps.config import DemoConfig
    from egosim.apps.demo import run_demo
    from egosim.config import load_config

    out_dir = cache / "demo"
    cfg = load_config("demo", [f"output_dir={out_dir}", "turntable_views=4",
                               "turntable_size=96", "num_bodies=3", "video_size=48",
                               "video_max_seconds=1.5", "video_fps=20", "crowd_video=false"],
                      schema=DemoConfig)
    summary = run_demo(cfg)
    scene = summary["scene"]
    top = iio.imread(out_dir / "topdown.png")
    table = iio.imread(out_dir / "turntable.png")
    assert top.ndim == 3 and top.shape[2] == 3 and top.std() > 10
    assert table.shape == (96, 4 * 96, 3)
    # The turntable shows a body: non-background pixels in every view.
    for k in range(4):
        view = table[:, k * 96:(k + 1) * 96]
        assert (np.abs(view.astype(int) - 235).sum(-1) > 30).mean() > 0.05
    bodies = summary["bodies"]
    assert len(bodies) == 3 and len({b["gender"] for b in bodies}) == 3
    heights = [b["height_m"] for b in bodies]
    assert len(set(np.round(heights, 3))) == 3, "bodies must differ in shape"
    for b in bodies:
        assert scene.is_walkable(b["position"][None])[0]
        assert abs(b["vertices"][:, 2].min() - b["position"][2]) < 1e-6  # feet on the floor
    assert scene.is_walkable(summary["path"]).all()
    printed = capsys.readouterr().out
    assert "wrote topdown" in printed and "body 2" in printed
    assert sorted(p.name for p in out_dir.iterdir()) == ["clips.mp4", "topdown.png",
                                                         "turntable.png", "walk.mp4"]
    # clips.mp4: 3 EgoM2P clips of 16 frames, RGB | depth | gaze | trajectory panels.
    clips = np.stack([f for f in imageio.get_reader(str(out_dir / "clips.mp4"))])
    assert clips.shape[0] == 3 * 16 and clips.shape[2] == 4 * clips.shape[1]
    # The map draws each body's footprint in its human's colour (one palette).
    from egosim.envs.topdown import HUMAN_COLORS

    for colour in HUMAN_COLORS[:3]:
        assert (top == colour).all(-1).sum() > 20
    # The MP4: 1.5 s at 20 fps of ego RGB | depth | semantic | map, the walker moving.
    video = summary["video"]
    frames = np.stack([f for f in imageio.get_reader(str(out_dir / "walk.mp4"))])
    assert frames.shape[0] == video["frames"] == 30
    assert frames.shape[1] == 48 and frames.shape[2] >= 4 * 48
    assert frames[:, :, :48].mean() > 20  # the ego RGB view is not black
    assert not np.array_equal(frames[0, :, :48], frames[-1, :, :48])  # the view moves
    assert video["walked_m"] > 1.0  # ~0.9 m/s for 1.5 s
    assert video["gaze_valid"].mean() > 0.9  # gaze lands in the image
    eye_height = video["eyes"][..., 2].mean()
    assert 1.4 < eye_height < 1.75, eye_height


@pytest.mark.slow
def test_demo_is_deterministic(cache: Path) -> None:
    from egosim.apps.config import DemoConfig
    from egosim.apps.demo import run_demo
    from egosim.config import load_config

    runs = []
    for name in ("a", "b"):
        cfg = load_config("demo", [f"output_dir={cache / name}", "turntable_views=1",
                                   "turntable_size=32", "num_bodies=2", "video=false"],
                          schema=DemoConfig)
        runs.append(run_demo(cfg))
    assert (cache / "a" / "topdown.png").read_bytes() == (cache / "b" / "topdown.png").read_bytes()
    np.testing.assert_array_equal(runs[0]["path"], runs[1]["path"])


def test_scene_subcommand_writes_map(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(cache)
    assert main(["scene", "scene.spec=procedural:room", "scene.seed=2"]) == 0
    printed = capsys.readouterr().out
    assert "walkable area" in printed
    assert (cache / "outputs" / "scene" / "procedural_room_topdown.png").exists()
