"""Every ```python block of README.md runs as written: in order, in one namespace (a block may
use what an earlier one defined, as a reader would), in a temporary working folder."""

from __future__ import annotations

import re
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python blocks of a Markdown text, in order."""
    return BLOCK.findall(text)


def test_the_block_finder_sees_every_python_block():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n\nz = 3\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n\nz = 3\n"]
    assert len(python_blocks(README.read_text())) >= 10


@pytest.mark.slow
def test_every_readme_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "__readme__"}
    for i, code in enumerate(python_blocks(README.read_text())):
        try:
            exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # name the block that failed
            raise AssertionError(f"README python block {i + 1} failed: {exc!r}\n{code}") from exc
    frames = iio.imread(tmp_path / "videos" / "rl-video-episode-0.mp4", index=None)
    assert len(frames) == 1 + 4 * 18  # the RecordVideo example: every 40-fps frame
    assert (tmp_path / "my_room.obj").is_file() and (tmp_path / "ppo_tiny.zip").is_file()
