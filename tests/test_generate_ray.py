"""The Ray backend on a local Ray instance (2 CPUs): ``egosim generate backend=ray`` writes
the same bytes as the local backend, and :class:`RaySource` yields the clips of the stream
workers' builders in the DataLoader's round-robin order."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from test_generate import TINY, TINY_CLIP, _cfg, _files  # noqa: E402

FOUR = ["clips=4", "shard_size=2", *TINY]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray instance for the module (short session path, no dashboard)."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20,
             _temp_dir=temp, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_backend_writes_the_bytes_of_the_local_backend(local_ray: None, tmp_path: Path
                                                          ) -> None:
    from egosim.egom2p.datasets.generate import generate

    on_ray = generate(_cfg(tmp_path / "ray", "backend=ray", "workers=2", *FOUR))
    assert on_ray["made"] == 2 and ray.is_initialized()  # the running instance is kept
    generate(_cfg(tmp_path / "local", "workers=1", *FOUR))
    got, want = _files(tmp_path / "ray"), _files(tmp_path / "local")
    assert sorted(got) == sorted(want) and "shard-000001.tar" in got
    assert got == want


@pytest.mark.slow
def test_ray_source_yields_the_builders_clips_round_robin(local_ray: None) -> None:
    from egosim.egom2p.clips import ClipBuilder
    from egosim.egom2p.datasets.ray_backend import RaySource

    src = RaySource(num_actors=2, seed=4, overrides=TINY_CLIP, prefetch=1)
    it = iter(src)
    got = [next(it) for _ in range(4)]
    it.close()
    builders = [ClipBuilder(overrides=TINY_CLIP, seed=4, worker=w) for w in range(2)]
    want = [builders[w].next_clip() for _ in range(2) for w in range(2)]
    assert [(c["meta"]["worker"], c["meta"]["index"]) for c in got] == [
        (0, 0), (1, 0), (0, 1), (1, 1)]
    for a, b in zip(got, want, strict=True):
        assert sorted(a) == sorted(b)
        for key in b:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key])
