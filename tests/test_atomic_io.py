"""Atomic writes, temporary-file clean-up, file locks and self-checking cache entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from egosim import atomic_io
from egosim.cache_entry import (
    ArraySpec,
    CorruptCacheWarning,
    array_checksum,
    entry_problem,
    load_entry,
    save_entry,
    stamp,
)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_writers_replace_atomically_and_leave_no_temp_files(tmp_path):
    atomic_io.write_bytes(tmp_path / "a.bin", b"one")
    atomic_io.write_bytes(tmp_path / "a.bin", b"two")
    atomic_io.write_text(tmp_path / "sub" / "b.txt", "caf\u00e9")
    atomic_io.write_json(tmp_path / "c.json", {"x": [1, 2]}, indent=2)
    atomic_io.save_npz(tmp_path / "d.npz", {"v": np.arange(3)}, compress=True)
    atomic_io.save_npz(tmp_path / "e", {"v": np.arange(3)})  # no suffix is added
    atomic_io.torch_save({"k": 1}, tmp_path / "f.pt")
    atomic_io.copy_file(tmp_path / "a.bin", tmp_path / "g.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"two" == (tmp_path / "g.bin").read_bytes()
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "caf\u00e9"
    assert json.loads((tmp_path / "c.json").read_text()) == {"x": [1, 2]}
    with np.load(tmp_path / "d.npz") as d, np.load(tmp_path / "e") as e:
        assert d["v"].tolist() == e["v"].tolist() == [0, 1, 2]
    assert _listing(tmp_path) == ["a.bin", "c.json", "d.npz", "e", "f.pt", "g.bin", "sub"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.zip"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="mid-write"), atomic_io.atomic_open(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("mid-write")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["model.zip"]
    with pytest.raises(FileNotFoundError, match="did not create"):
        with atomic_io.atomic_path(target):
            pass  # a writer that wrote nothing
    assert target.read_bytes() == b"old"


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_io.atomic_path(tmp_path / "ppo_8_steps.zip") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".zip"
        assert tmp.name.startswith(".ppo_8_steps.zip.tmp-") and atomic_io.is_temp_file(tmp)
        tmp.write_bytes(b"zip")
    assert (tmp_path / "ppo_8_steps.zip").read_bytes() == b"zip"


def test_remove_temp_files_only_of_dead_writers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".x.npz.tmp-{pid}-0123abcd.npz"
    mine = tmp_path / f".y.npz.tmp-{os.getpid()}-0123abcd.npz"
    other = tmp_path / ".hidden"
    for p in (stale, mine, other):
        p.write_bytes(b"")
    assert atomic_io.remove_temp_files(tmp_path) == [stale]
    assert _listing(tmp_path) == sorted([mine.name, other.name])
    old = time.time() - 2 * 86400
    os.utime(mine, (old, old))
    assert atomic_io.remove_temp_files(tmp_path) == [mine]


def test_move_aside(tmp_path):
    bad = tmp_path / "ppo_32_steps.zip"
    bad.write_bytes(b"")
    assert atomic_io.move_aside(bad).name == "ppo_32_steps.zip.bad"
    assert _listing(tmp_path) == ["ppo_32_steps.zip.bad"]


def test_file_lock_excludes(tmp_path):
    order: list[str] = []
    inside = threading.Event()

    def holder():
        with atomic_io.file_lock(tmp_path / "entry"):
            order.append("a-in")
            inside.set()
            time.sleep(0.3)
            order.append("a-out")

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(5)
    with atomic_io.file_lock(tmp_path / "entry"):
        order.append("b-in")
    t.join()
    assert order == ["a-in", "a-out", "b-in"]
    assert (tmp_path / "entry.lock").is_file()


SPEC = {"x": ArraySpec("float32", ("N", 3), finite=True), "n": ArraySpec("U", ("N",)),
        "r": ArraySpec("float64", (), positive=True)}


def _arrays():
    return {"x": np.ones((2, 3), np.float32), "n": np.array(["a", "b"]), "r": np.float64(0.5)}


def test_checksum_is_order_free_and_content_sensitive():
    a = _arrays()
    assert array_checksum(a) == array_checksum(dict(reversed(list(a.items()))))
    b = _arrays()
    b["x"][0, 0] = 2
    assert array_checksum(a) != array_checksum(b)
    c = _arrays()
    c["x"] = c["x"].astype(np.float64)
    assert array_checksum(a) != array_checksum(c)
    with pytest.raises(TypeError, match="object"):
        array_checksum({"o": np.array([{}], dtype=object)})


@pytest.mark.parametrize("change, problem", [
    (lambda a: a.pop("x"), "'x' is missing"),
    (lambda a: a.update(x=np.ones((2, 4), np.float32)), "shape"),
    (lambda a: a.update(x=np.ones((2, 3))), "dtype float64"),
    (lambda a: a.update(n=np.array(["a", "b", "c"])), "N is 2"),
    (lambda a: a.update(x=np.full((2, 3), np.nan, np.float32)), "NaN"),
    (lambda a: a.update(r=np.float64(0.0)), "<= 0"),
])
def test_entry_problems(change, problem):
    good = stamp(_arrays(), "k1")
    assert entry_problem(good, "k1", SPEC) is None
    assert "k2" in entry_problem(good, "k2", SPEC)
    assert "no cache_key" in entry_problem(_arrays(), "k1", SPEC)
    tampered = dict(good)
    tampered["r"] = np.float64(0.75)
    assert "checksum" in entry_problem(tampered, "k1", SPEC)
    bad = _arrays()
    change(bad)
    assert problem in entry_problem(stamp(bad, "k1"), "k1", SPEC)


def test_load_entry_reports_and_deletes_a_bad_file(tmp_path):
    path = save_entry(tmp_path / "e.npz", "k1", _arrays(), compress=True)
    back = load_entry(path, "k1", SPEC)
    assert back is not None and set(back) == set(SPEC)
    path.write_bytes(path.read_bytes()[:100])
    assert load_entry(path, "k1", SPEC, discard=False) is None and path.is_file()
    with pytest.warns(CorruptCacheWarning, match="e.npz is bad: unreadable"):
        assert load_entry(path, "k1", SPEC) is None
    assert not path.exists()
    assert load_entry(path, "k1", SPEC) is None  # absent: silent


def test_primitive_set_save_keeps_np_savez_naming(tmp_path):
    from egosim.envs.motion.training_data import load_primitives, synthetic_primitives

    data = synthetic_primitives(2, 40, seed=0)
    data.save(tmp_path / "prims")  # np.savez appended ".npz"; so does the atomic writer
    assert _listing(tmp_path) == ["prims.npz"]
    back = load_primitives(tmp_path / "prims.npz")
    assert np.array_equal(back.markers, data.markers)
