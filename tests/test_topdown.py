"""The one top-down map drawer and palette (``egosim.envs.topdown``) and the env's rgb_array."""

from __future__ import annotations

import numpy as np
import pytest

from egosim.envs.topdown import (
    BACKGROUND,
    GAZE_COLOR,
    HUMAN_COLORS,
    PATH_COLOR,
    TopdownMap,
    human_color,
    route_color,
    topdown_map,
)


@pytest.fixture(scope="module")
def scene():
    from egosim.envs import scenes

    return scenes.load("procedural:room", seed=2)


def _count(img: np.ndarray, colour: np.ndarray) -> int:
    return int((img == colour).all(-1).sum())


def test_map_pixels_follow_the_world(scene) -> None:
    m = TopdownMap(scene, 40)
    lo, hi = scene.bounds
    h, w = m.shape
    assert (h, w) == (int(np.ceil((hi[1] - lo[1]) * 40)), int(np.ceil((hi[0] - lo[0]) * 40)))
    # North-west corner at the top left; pixel (r, c) covers x from lo_x + c / 40 and y
    # down from hi_y - r / 40.
    rows, cols = np.array([0, 10, h - 1]), np.array([0, 30, w - 1])
    centres = np.stack([lo[0] + (cols + 0.5) / 40, hi[1] - (rows + 0.5) / 40], -1)
    r, c = m.px(centres)
    assert r.tolist() == rows.tolist() and c.tolist() == cols.tolist()
    assert m.base.std() > 10 and not m.base.flags.writeable
    # Walkable floor is tinted green.
    cc, rr = np.meshgrid(np.arange(w), np.arange(h))
    pts = np.stack([lo[0] + (cc + 0.5) / 40, hi[1] - (rr + 0.5) / 40], -1).reshape(-1, 2)
    walk = scene.is_walkable(pts).reshape(h, w)
    green = m.base[..., 1].astype(int) - m.base[..., 0]
    assert walk.any() and green[walk].mean() > green[~walk].mean() + 20


def test_overlays_use_the_palette(scene) -> None:
    m = TopdownMap(scene, 40)
    route = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    m.route(route, 1)
    img = m.frame()
    m.goal(np.array([-1.0, 1.0, 0.0]), 2, img)
    m.gaze(np.array([0.0, 0.0, 1.6]), np.array([1.0, 0.0, 0.0]), 1.0, img)
    m.footprint(np.random.default_rng(0).uniform(-0.2, 0.2, (500, 3)), 3, img)
    assert _count(m.image, route_color(1)) > 100  # the route persists in the canvas
    assert _count(img, human_color(2)) > 10 and _count(img, GAZE_COLOR) >= 39
    assert _count(img, human_color(3)) > 20
    assert _count(m.image, human_color(2)) == 0  # per-frame overlays stay off the canvas
    # The goal dot is centred where the goal is.
    r, c = m.px(np.array([-1.0, 1.0]))
    np.testing.assert_array_equal(img[r, c], human_color(2))
    np.testing.assert_array_equal(human_color(8 + 5), HUMAN_COLORS[5])


def test_crop_and_fit(scene) -> None:
    m = TopdownMap(scene, 40)
    img = m.frame()
    m.goal(np.array([0.5, 0.5, 0.0]), 0, img)
    crop = m.crop(img, np.array([0.5, 0.5]), 64)
    assert crop.shape == (64, 64, 3)
    np.testing.assert_array_equal(crop[32, 32], human_color(0))
    far = m.crop(img, np.array([50.0, 50.0]), 16)  # off the map: background
    assert (far == BACKGROUND).all()
    fit = TopdownMap.fit(scene, 64)
    lo, hi = scene.bounds
    assert fit.shape[0] == 64 and fit.shape[1] % 2 == 0
    assert fit.shape[1] == max(2, int(round(64 * (hi[0] - lo[0]) / (hi[1] - lo[1]))) // 2 * 2)
    small = TopdownMap.resized(m.base, 32)
    assert small.shape[0] == 32 and small.shape[1] % 2 == 0


def test_topdown_map_draws_bodies_paths_and_spots(scene) -> None:
    bodies = [np.random.default_rng(i).uniform(-0.2, 0.2, (300, 3)) + [i - 1.0, 0.0, 0.0]
              for i in range(3)]
    path = np.array([[-1.5, -1.2, 0.0], [1.5, -1.2, 0.0]])
    img = topdown_map(scene, 40, bodies=bodies, paths=[path], markers=[path[0]])
    for i in range(3):
        assert _count(img, HUMAN_COLORS[i]) > 50
    assert _count(img, PATH_COLOR) > 100
    again = topdown_map(scene, 40, bodies=bodies, paths=[path], markers=[path[0]])
    np.testing.assert_array_equal(img, again)


def test_env_rgb_array_draws_through_the_map() -> None:
    from envs_support import overrides

    from egosim.envs.crowd import EgoCrowdEnv

    env = EgoCrowdEnv(overrides=overrides(**{"crowd.num_humans": 2}), render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    size = env.cfg.render.size
    assert img.shape == (size, 2 * size, 3) and img.dtype == np.uint8
    left = img[:, :size]
    for i in range(2):
        assert _count(left, human_color(i)) > 20  # markers and goal in the human's colour
    assert _count(left, route_color(0)) + _count(left, route_color(1)) > 20
    env.close()
