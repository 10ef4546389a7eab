"""``egosim COMMAND --help``: every subcommand lists its top-level config keys with their
defaults and points to ``egosim config``; the demo's help names its videos."""

from __future__ import annotations

import pytest

from egosim.cli import EGOM2P_JOBS, JOBS, main

COMMANDS = [([name], job) for name, job in JOBS.items()] + \
    [(["egom2p", name], job) for name, job in EGOM2P_JOBS.items()]


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv, job", COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
def test_help_lists_every_top_level_key_and_points_to_egosim_config(argv, job, capsys):
    text = _help(argv, capsys)
    for key, field in job.schema.model_fields.items():
        assert f"\n  {field.alias or key}: " in text, key
    name = argv[-1] if len(argv) == 1 else job.config
    assert f"egosim config {name}" in text
    assert main(["config", name]) == 0  # the pointer works
    capsys.readouterr()


def test_help_shows_defaults_and_the_demo_says_it_writes_videos(capsys):
    text = _help(["train-agent"], capsys)
    assert "\n  num_envs: 64  # humans stepped together" in text
    assert "\n  export_path: null" in text and "\n  env: {...}" in text
    demo = _help(["demo"], capsys)
    assert "videos" in demo.split("positional arguments")[0]
