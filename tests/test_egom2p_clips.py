"""EgoM2P clips from the simulation: config errors, the 9-D camera encoding, clip layout and
conventions, one clock, gaze on what is attended, warped-depth consistency, goal renewal,
the stream's determinism across DataLoader workers, its counters, and the CLI command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sensors_support import room_with_boxes

from egosim.config import ConfigError, load_config
from egosim.egom2p.camera_9d import (
    Camera9DStats,
    camera_9d,
    canonical,
    decode_9d,
    encode_9d,
    fit_stats,
    gram_schmidt,
    load_stats,
)
from egosim.egom2p.config import ClipConfig

SMALL = {"video_size": 32, "worlds": 1, "humans": [2, 2], "scene.pool_size": 1,
         "clips_per_episode": 2}


def _random_poses(rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    p = np.tile(np.eye(4), (n, t, 1, 1))
    p[..., :3, :3] = Rotation.random(n * t, random_state=rng.integers(1 << 31)).as_matrix(
    ).reshape(n, t, 3, 3)
    p[..., :3, 3] = rng.normal(0.0, 2.0, (n, t, 3))
    return p


# -- config -----------------------------------------------------------------------------


@pytest.mark.parametrize("override, key, words", [
    ("modalities=[rgb, audio]", "modalities", ["audio", "rgb, depth, camera, gaze"]),
    ("video_size=60", "video_size", ["multiple of 8"]),
    ("video_fps=0", "video_fps", ["greater than 0"]),
    ("pose_fps=-30", "pose_fps", ["greater than 0"]),
    ("video_fps=7", "video_fps", ["divide"]),
    ("pose_samples=61", "pose_samples", ["do not fit"]),
    ("controller=not-a-path", "controller", ["module:attribute"]),
    ("humans=[3, 2]", "humans", ["min <= max"]),
])
def test_bad_clip_specs_name_the_field(override: str, key: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("egom2p_clips", [override], schema=ClipConfig)
    text = str(err.value)
    assert repr(key) in text, text
    for w in words:
        assert w in text, text


def test_shipped_config_is_the_schema_default_and_sizes_work() -> None:
    cfg = load_config("egom2p_clips", schema=ClipConfig)
    assert cfg == ClipConfig()
    assert (cfg.motion_frames, cfg.video_step) == (80, 5)
    assert cfg.modalities == ["rgb", "depth", "camera", "gaze"]
    for size in (64, 128, 256):
        assert ClipConfig(video_size=size).video_size == size


# -- 9-D camera -------------------------------------------------------------------------


def test_camera_9d_layout_round_trip_and_gram_schmidt() -> None:
    rng = np.random.default_rng(0)
    poses = _random_poses(rng, 3, 60)
    can = canonical(poses)
    np.testing.assert_allclose(can[:, 0], np.broadcast_to(np.eye(4), (3, 4, 4)), atol=1e-12)
    raw = encode_9d(can)
    np.testing.assert_array_equal(raw[..., 0:3], can[..., :3, 0])  # EgoM2P's layout
    np.testing.assert_array_equal(raw[..., 3:6], can[..., :3, 1])
    np.testing.assert_array_equal(raw[..., 6:9], can[..., :3, 3])
    stats = load_stats()
    z = camera_9d(poses)
    assert z.shape == (3, 60, 9) and z.dtype == np.float32
    np.testing.assert_allclose(decode_9d(z, stats), can, atol=1e-6)  # float32 round trip
    np.testing.assert_allclose(decode_9d(camera_9d(poses, stats).astype(np.float64), stats),
                               can, atol=1e-6)
    # Gram-Schmidt turns noisy columns into a rotation close to the clean one.
    r = can[0, 5, :3, :3]
    noisy = gram_schmidt(r[:, 0] * 1.3 + 0.01, r[:, 1] + 0.01)
    np.testing.assert_allclose(noisy.T @ noisy, np.eye(3), atol=1e-12)
    assert np.linalg.det(noisy) == pytest.approx(1.0)
    assert np.abs(noisy - r).max() < 0.05


def test_shipped_camera_stats_were_fitted_on_stream_clips() -> None:
    stats = load_stats()
    assert stats.clips >= 200 and stats.mean.shape == stats.std.shape == (9,)
    assert np.all(stats.std > 0)
    assert 0.5 < stats.mean[0] <= 1.0 and 0.5 < stats.mean[4] <= 1.0  # rotations near I
    assert stats.mean[8] > 0.3  # the wearer walks forward (+z of the first camera)
    fitted = fit_stats(_random_poses(np.random.default_rng(1), 4, 60))
    assert fitted.clips == 4 and isinstance(fitted, Camera9DStats)


# -- gaze on a constructed case -----------------------------------------------------------


@pytest.mark.parametrize("looking_at", ["object", "person"])
def test_gaze_lands_on_the_attended_object_or_person(looking_at: str) -> None:
    from egosim.egom2p.clips import ATTENTION_KINDS, Scenery, attend
    from egosim.egom2p.config import AttentionSection
    from egosim.sensors import (
        CameraSpec,
        DynamicMesh,
        EyeModel,
        HeadRecorder,
        RayCaster,
        Renderer,
        capsule_triangles,
    )

    scene = room_with_boxes()  # table: instance 4 at (0.5, 3, 0.4); chair: 5
    spec = CameraSpec(uuid="inst", modality="instance", resolution=(64, 64), hfov_deg=90.0)
    t = 30
    mid = np.stack([np.linspace(0.0, 0.3, t), np.linspace(0.0, 0.6, t), np.full(t, 1.6)], 1)
    eyes = np.stack([mid - [0.032, 0, 0], mid + [0.032, 0, 0]], axis=1)  # (T, 2, 3)
    poses = HeadRecorder.camera_poses(eyes, look_at=np.array([0.4, 3.0, 0.8]))
    person_base = np.array([1.2, 2.6, 0.0])
    head = np.broadcast_to(person_base + [0, 0, 1.6], (t, 3))
    scenery = Scenery(path=np.zeros((t, 0, 3)), goal=np.broadcast_to([0.0, -5.0, 0.0], (t, 3)),
                      people=head[None], people_ids=np.array([1000], np.int32),
                      objects=np.array([[0.5, 3.0, 0.4], [-1.5, 2.0, 0.45]]),
                      object_ids=np.array([4, 5], np.int32))
    weights = ({"object_weight": 1.0, "person_weight": 0.0} if looking_at == "object" else
               {"object_weight": 0.0, "person_weight": 1.0})
    cfg = AttentionSection(path_weight=0.0, goal_weight=0.0, **weights)
    att = attend(poses, spec, scenery, RayCaster(scene.triangles), scene.face_instance, cfg,
                 30.0, np.random.default_rng(0))
    assert {ATTENTION_KINDS[k] for k in att.kind} == {looking_at}
    want = {4, 5} if looking_at == "object" else {1000}
    assert set(att.instance.tolist()) <= want
    renderer = Renderer(scene)
    capsule = DynamicMesh(capsule_triangles(person_base, 1.75, 0.22), 14, 1000)
    recorder = HeadRecorder(renderer, spec, fps=30.0, eye_model=EyeModel())
    points, tracks = recorder.gaze(eyes, att.target, rng=1)
    xy, valid = recorder.project_gaze(points, poses)
    ok = valid["inst"] & (tracks[0].state != 1)  # in the image, not mid-saccade
    assert ok.mean() >= 0.8
    views = np.stack([renderer_view(recorder, p, capsule) for p in poses])  # (T, 64, 64)
    u, v = np.floor((xy["inst"][ok] + 1) / 2 * 64).astype(int).T
    seen = views[np.nonzero(ok)[0], v, u]
    assert (seen == att.instance[ok]).mean() >= 0.9, (seen, att.instance)


def renderer_view(recorder, pose: np.ndarray, mesh) -> np.ndarray:
    """The instance image at ``pose`` with ``mesh`` as the only dynamic mesh."""
    return recorder.render(pose, meshes=[mesh])["inst"]


# -- clips from the simulation ----------------------------------------------------------


@pytest.fixture(scope="module")
def clips() -> list[dict]:
    """Four clips (2 segments x 2 humans, one world) at 32 x 32 with instance views."""
    from egosim.egom2p.clips import ClipBuilder

    b = ClipBuilder(overrides=SMALL, seed=0, extra_views=("instance",))
    out = [b.next_clip() for _ in range(4)]
    b.close()
    return out


@pytest.mark.slow
def test_clip_shapes_dtypes_and_meta(clips: list[dict]) -> None:
    for i, c in enumerate(clips):
        assert c["rgb"].shape == (16, 32, 32, 3) and c["rgb"].dtype == np.uint8
        assert c["depth"].shape == (16, 32, 32) and c["depth"].dtype == np.float32
        assert c["camera"].shape == (60, 4, 4) and c["camera"].dtype == np.float64
        assert c["camera_9d"].shape == (60, 9) and c["camera_9d"].dtype == np.float32
        assert c["video_camera"].shape == (16, 4, 4)
        assert c["gaze"].shape == (60, 2) and c["gaze"].dtype == np.float32
        assert c["gaze_valid"].shape == (60,) and c["gaze_valid"].dtype == bool
        assert c["intrinsics"].shape == (3, 3)
        m = c["meta"]
        assert (m["index"], m["worker"], m["seed"]) == (i, 0, 0)
        assert m["humans"] == 2 and m["human"] in (0, 1)
        if i:  # ordered segment by segment, human by human (a wearer off the floor skipped)
            prev = clips[i - 1]["meta"]
            assert (m["episode"], m["segment"], m["human"]) > (
                prev["episode"], prev["segment"], prev["human"])
        assert m["scene_spec"] == "procedural:apartment" and 0 <= m["scene_seed"] < 200
        assert m["start_s"] == pytest.approx(2.0 * m["segment"])
        assert c["rgb"].std() > 5 and (c["depth"] > 0).mean() > 0.9
        assert c["depth"].max() < 20.0
    k = clips[0]["intrinsics"]
    assert k[0, 0] == pytest.approx(16.0) and k[0, 2] == pytest.approx(15.5)  # 90 deg, 32 px
    # the two humans of a segment see different things
    assert not np.array_equal(clips[0]["rgb"], clips[1]["rgb"])


@pytest.mark.slow
def test_camera_is_canonical_turns_with_the_head_and_matches_its_9d(clips: list[dict]
                                                                     ) -> None:
    for c in clips:
        cam = c["camera"]
        np.testing.assert_array_equal(cam[0], np.eye(4))
        np.testing.assert_array_equal(c["video_camera"][0], np.eye(4))
        r = cam[:, :3, :3]
        np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape),
                                   atol=1e-9)
        np.testing.assert_allclose(decode_9d(c["camera_9d"]), cam, atol=1e-6)
        assert np.linalg.norm(cam[-1, :3, 3]) > 0.3  # it walks
        # the head turns and pitches: the optical axis changes over the clip
        assert np.degrees(np.arccos(np.clip(r[:, 2, 2], -1, 1))).max() > 1.0
    # a human's consecutive clips are consecutive: its pose at the end of segment 0
    # continues into segment 1 (not a reset)
    assert clips[2]["meta"]["episode"] == clips[0]["meta"]["episode"]


@pytest.mark.slow
def test_video_and_pose_times_are_on_one_clock(clips: list[dict]) -> None:
    from scipy.spatial.transform import Rotation, Slerp

    for c in clips:
        np.testing.assert_allclose(c["video_times"], np.arange(16) / 8.0)
        np.testing.assert_allclose(c["pose_times"], np.arange(60) / 30.0)
        vt, pt, cam, vc = c["video_times"], c["pose_times"], c["camera"], c["video_camera"]
        # shared instants every 0.5 s: video frame 4m is pose sample 15m, the same pose
        for k, j in ((4, 15), (8, 30), (12, 45)):
            assert vt[k] == pytest.approx(pt[j])
            np.testing.assert_allclose(vc[k], cam[j], atol=1e-9)
        # in between, the video frames' poses lie on the interpolated trajectory (up to
        # the head's frame-to-frame jitter, which 30 fps samples cannot follow)
        rot = Slerp(pt, Rotation.from_matrix(cam[:, :3, :3]))(vt[:15])
        np.testing.assert_allclose(rot.as_matrix(), vc[:15, :3, :3], atol=1e-2)
        pos = np.stack([np.interp(vt[:15], pt, cam[:, a, 3]) for a in range(3)], axis=1)
        np.testing.assert_allclose(pos, vc[:15, :3, 3], atol=3e-3)
        late = np.stack([np.interp(vt[:15] + 1 / 16, pt, cam[:, a, 3]) for a in range(3)], 1)
        assert np.abs(late - vc[:15, :3, 3]).max() > 3 * np.abs(pos - vc[:15, :3, 3]).max()


@pytest.mark.slow
def test_gaze_is_normalised_moves_and_falls_on_the_attended_thing(clips: list[dict]) -> None:
    from egosim.egom2p.clips import ATTENTION_KINDS

    hits = total = 0
    spread = []
    for c in clips:
        g, ok = c["gaze"], c["gaze_valid"]
        assert ok.mean() > 0.8
        assert np.all(np.abs(g[ok]) <= 1.0) and np.all(g[~ok] == 0.0)
        spread.append(np.abs(g[ok] - g[ok].mean(0)).max())
        att = c["meta"]["attention"]
        assert set(att["kind"].tolist()) <= set(range(len(ATTENTION_KINDS)))
        inst = c["instance"]
        for k in range(0, 16, 4):  # video frames at pose instants
            j = k * 30 // 8
            if not ok[j] or att["eye_state"][j] == 1 or att["instance"][j] < 0:
                continue
            u, v = (np.floor((g[j] + 1) / 2 * 32).astype(int)).clip(0, 31)
            around = inst[k, max(v - 1, 0):v + 2, max(u - 1, 0):u + 2]
            hits += bool((around == att["instance"][j]).any())
            total += 1
    assert max(spread) > 0.1  # the gaze moves over the image
    assert total >= 6 and hits / total >= 0.75, (hits, total)


@pytest.mark.slow
def test_warped_depth_agrees_with_the_next_frame(clips: list[dict]) -> None:
    """Frame k's depth, unprojected and moved by the clip's own poses into frame k + 1,
    matches frame k + 1's depth on static pixels: clocks, conventions and poses agree."""
    from egosim.egom2p.consistency import warped_depth_error

    medians = [warped_depth_error(c) for c in clips]
    assert max(medians) <= 0.01, medians
    # the check has teeth: the pose of the next frame but one does not agree
    lagged = [warped_depth_error(c, pose_lag=1) for c in clips]
    assert np.median(lagged) > 2 * np.median(medians)


def test_warped_depth_error_needs_the_poses_and_is_zero_for_a_static_camera() -> None:
    from egosim.egom2p.consistency import warped_depth_error

    k_mat = np.array([[32.0, 0, 15.5], [0, 32.0, 15.5], [0, 0, 1]])
    wall = {"depth": np.full((4, 32, 32), 2.0, np.float32), "intrinsics": k_mat,
            "video_camera": np.repeat(np.eye(4)[None], 4, 0)}
    assert warped_depth_error(wall) == 0.0
    moved = dict(wall, video_camera=wall["video_camera"].copy())
    moved["video_camera"][:, 2, 3] = 0.5 * np.arange(4)  # 0.5 m a frame towards the wall
    assert abs(warped_depth_error(moved) - 0.5 / 1.5) < 1e-6  # z = 1.5 m, the depth says 2
    with pytest.raises(KeyError, match="video_camera"):
        warped_depth_error({"depth": wall["depth"], "intrinsics": k_mat})


@pytest.mark.slow
def test_humans_get_new_goals_and_keep_walking() -> None:
    from egosim.egom2p.clips import ClipBuilder

    b = ClipBuilder(overrides={**SMALL, "humans": [1, 1], "clips_per_episode": 6,
                               "modalities": ["camera"],
                               "env_overrides": {"goal.min_dist": 1.0, "goal.max_dist": 2.0,
                                                 "goal.metric": "euclidean"}}, seed=3)
    goals, walked = set(), []
    renew = b._renew_goals

    def watched() -> None:
        renew()
        goals.add(tuple(b._sim.worlds[0].routes[0].goal))

    b._renew_goals = watched
    for _ in range(6):
        c = b.next_clip()
        steps = np.diff(c["camera"][:, :3, 3], axis=0)
        walked.append(float(np.linalg.norm(steps[:, [0, 2]], axis=1).sum()))
        assert "rgb" not in c and "gaze" not in c and "camera_9d" in c
    assert len(goals) >= 2  # a goal reached and renewed within the episode
    assert min(walked) > 1.0, walked  # never standing at a reached goal (~1 m/s)
    assert b._sim.worlds[0].active.all()
    # a scripted walker (the sampling planner) drives them too
    s = ClipBuilder(overrides={**SMALL, "humans": [1, 1], "modalities": ["camera"],
                               "controller": "egosim.agents.controllers:scripted_walker",
                               "controller_options": {"candidates": 8}}, seed=3)
    assert np.linalg.norm(s.next_clip()["camera"][-1, :3, 3]) > 0.3


# -- the stream -------------------------------------------------------------------------


def _stream_clips(num_workers: int, n: int, seed: int = 5) -> list[dict]:
    from torch.utils.data import DataLoader

    from egosim.egom2p.stream import SimStream

    stream = SimStream(overrides={**SMALL, "humans": [1, 1], "clips_per_episode": 1,
                                  "controller": "egosim.agents.controllers:prior_walker"},
                       seed=seed)
    loader = DataLoader(stream, batch_size=None, num_workers=num_workers)
    it = iter(loader)
    out = [next(it) for _ in range(n)]
    del it
    return out


def _same(a: dict, b: dict) -> bool:
    keys = [k for k in a if k != "meta"]
    return keys == [k for k in b if k != "meta"] and all(
        np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in keys)


@pytest.mark.slow
def test_stream_is_deterministic_per_worker_and_workers_differ() -> None:
    zero_a, zero_b = _stream_clips(0, 3), _stream_clips(0, 3)
    assert all(_same(a, b) for a, b in zip(zero_a, zero_b, strict=True))
    assert [int(c["meta"]["worker"]) for c in zero_a] == [0, 0, 0]
    two_a, two_b = _stream_clips(2, 4), _stream_clips(2, 4)
    assert all(_same(a, b) for a, b in zip(two_a, two_b, strict=True))
    assert [int(c["meta"]["worker"]) for c in two_a] == [0, 1, 0, 1]
    assert [int(c["meta"]["index"]) for c in two_a] == [0, 0, 1, 1]
    # worker 0's clips are the same with 0 or 2 workers; worker 1 makes other clips
    assert _same(two_a[0], zero_a[0]) and _same(two_a[2], zero_a[1])
    assert not any(_same(two_a[1], c) or _same(two_a[3], c) for c in zero_a)
    assert not _same(_stream_clips(0, 1, seed=6)[0], zero_a[0])  # the seed matters


@pytest.mark.slow
def test_stream_counters_and_the_tokenize_hook() -> None:
    from egosim.egom2p.stream import STAGES, SimStream

    def tokenize(clip: dict) -> dict:
        return {**clip, "tokens_camera": np.zeros(30, np.int64)}

    stream = SimStream(overrides={**SMALL, "humans": [1, 1], "modalities": ["camera", "gaze"],
                                  "controller": "egosim.agents.controllers:prior_walker"},
                       seed=1, tokenized=True, tokenize=tokenize)
    it = iter(stream)
    clips = [next(it) for _ in range(3)]
    assert all(c["tokens_camera"].shape == (30,) for c in clips)
    assert "rgb" not in clips[0] and "gaze" in clips[0]
    stats = stream.stats()
    assert set(stats) == {0} and stats[0]["clips"] == 3 and stats[0]["clips_per_s"] > 0
    assert set(STAGES) <= set(stats[0]) and stats[0]["motion"] > 0
    text = stream.format_stats()
    assert "clips/s" in text and "tokenize" in text


@pytest.mark.slow
def test_cli_streams_and_writes_a_preview(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import imageio.v2 as imageio

    from egosim.cli import main

    out = tmp_path / "preview.mp4"
    args = [f"{k}={v}" for k, v in SMALL.items()] + [
        "stream.clips=3", "stream.num_workers=0", "stream.preview_clips=2",
        f"stream.preview={out}", "stream.progress=false",
        "controller=egosim.agents.controllers:prior_walker"]
    assert main(["egom2p", "stream", *args]) == 0
    printed = capsys.readouterr().out
    assert "clips/s" in printed and "render" in printed and "wrote preview" in printed
    frames = np.stack([f for f in imageio.get_reader(str(out))])
    assert frames.shape[0] == 2 * 16 and frames.shape[2] == 4 * frames.shape[1]
    assert main(["egom2p", "stream", "video_size=30"]) == 2
    assert "video_size" in capsys.readouterr().err


@pytest.mark.slow
def test_a_wearer_over_no_floor_gives_no_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    from egosim.egom2p.clips import ClipBuilder
    from egosim.envs.scenes import Scene

    def floor_but_human_1(self: Scene, points: np.ndarray) -> np.ndarray:
        ok = np.ones(points.shape[:-1], bool)
        ok[1] = False  # rows are the world's humans: human 1 "walked out"
        return ok

    monkeypatch.setattr(Scene, "has_floor", floor_but_human_1)
    b = ClipBuilder(overrides={**SMALL, "clips_per_episode": 4}, seed=0)
    got = [b.next_clip() for _ in range(2)]
    b.close()
    assert [c["meta"]["human"] for c in got] == [0, 0]
    assert [c["meta"]["index"] for c in got] == [0, 1]
    assert b.clips_dropped >= 1


def test_has_floor_is_false_outside_the_building() -> None:
    from egosim.envs import scenes

    s = scenes.load("procedural:apartment", seed=3)
    lo, hi = s.bounds[0], s.bounds[1]
    walk = s.grid_to_world(np.argwhere(s.walkable)[:50])
    assert s.has_floor(walk).all()
    outside = np.array([[hi[0] + 1.0, 0.0, 0.0], [lo[0] - 5.0, lo[1] - 5.0, 0.0]])
    assert not s.has_floor(outside).any()
