"""`egosim prior-video`: shipped motion prior rolled out and rendered on a floor grid."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from egosim.apps.config import PriorVideoConfig
from egosim.apps.prior_video import floor_grid, render_prior_video
from egosim.cli import main
from egosim.config import load_config


def test_floor_grid_is_a_checkerboard() -> None:
    scene = floor_grid(2)
    assert scene.triangles.shape == (32, 3, 3)  # 16 tiles x 2 triangles
    assert np.allclose(scene.triangles[..., 2], 0.0)
    assert len(np.unique(scene.face_albedo, axis=0)) == 2


def test_prior_video_writes_moving_humans(tmp_path: Path) -> None:
    out = tmp_path / "prior.mp4"
    cfg = load_config("prior_video", [f"output={out}", "num_primitives=2", "num_bodies=2",
                                      "width=96", "height=64", "progress=false"],
                      schema=PriorVideoConfig)
    summary = render_prior_video(cfg)
    frames = np.stack([f for f in imageio.get_reader(str(out))])
    # 2 history frames + 2 x 18 new frames at 40 fps, sampled at 20 fps.
    assert frames.shape == (summary["frames"], 64, 96, 3) and summary["frames"] == 19
    assert summary["finite"]
    assert -0.05 < summary["lowest_foot_m"] < 0.10  # feet stay near the floor
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0  # motion


def test_prior_video_cli_rejects_bad_values(capsys) -> None:
    assert main(["prior-video", "num_bodies=0"]) == 2
    assert "num_bodies" in capsys.readouterr().err
