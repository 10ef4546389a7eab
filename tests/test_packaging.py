"""The built wheel installs into a fresh venv and carries every subpackage and data file."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib, pathlib, egosim
mods = ["egosim.envs", "egosim.envs.scenes", "egosim.envs.humans", "egosim.sensors",
        "egosim.agents", "egosim.egom2p", "egosim.configs", "egosim.cli", "egosim.config"]
for m in mods:
    mod = importlib.import_module(m)
    assert "site-packages" in mod.__file__, (m, mod.__file__)
from egosim.apps.config import DemoConfig
from egosim.config import load_config
from egosim.paths import configs_dir
assert load_config("demo", schema=DemoConfig).num_bodies >= 1
assert (configs_dir() / "demo.yaml").exists()
import egosim.envs.humans as h
data = pathlib.Path(h.__file__).parent / "data" / "ssm2_67_markers.json"
assert data.exists(), data
print("WHEEL-OK", egosim.__file__)
"""


@pytest.mark.slow
def test_wheel_installs_in_fresh_venv(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(wheel_dir), str(ROOT)],
        check=True,
    )
    wheels = list(wheel_dir.glob("egosim-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "egosim/configs/demo.yaml" in names
    assert "egosim/envs/humans/data/ssm2_67_markers.json" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheels[0])], check=True)
    # Third-party dependencies come from this environment's site-packages (no network);
    # egosim itself must come from the wheel (the editable finder is not active there).
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(vpy), "-c", CHECK], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True)
    assert "WHEEL-OK" in out.stdout and str(venv) in out.stdout
