"""Config loading, overrides and validation errors (egosim.config) and the CLI front."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from egosim.cli import main
from egosim.config import (
    SCHEMAS,
    ConfigError,
    DemoConfig,
    apply_overrides,
    load_config,
    parse_overrides,
)
from egosim.paths import configs_dir


def test_every_shipped_config_validates() -> None:
    names = sorted(p.stem for p in configs_dir().glob("*.yaml"))
    assert set(SCHEMAS) <= set(names)
    for name in names:
        cfg = load_config(name)
        assert isinstance(cfg, SCHEMAS[name])


def test_shipped_yaml_matches_schema_defaults() -> None:
    # The YAML documents the defaults: nothing in it may drift from the schema.
    raw = yaml.safe_load((configs_dir() / "demo.yaml").read_text())
    assert DemoConfig.model_validate(raw) == DemoConfig()


def test_overrides_are_typed_and_nested() -> None:
    cfg = load_config("demo", ["num_bodies=5", "scene.seed=11", "scene.spec=procedural:room"])
    assert cfg.num_bodies == 5 and cfg.scene.seed == 11 and cfg.scene.spec == "procedural:room"
    assert parse_overrides(["a.b=1.5", "c=[1, 2]", "d="]) == {"a.b": 1.5, "c": [1, 2], "d": ""}
    assert apply_overrides({"a": {"x": 1}}, {"a.y": 2, "b": 3}) == {"a": {"x": 1, "y": 2}, "b": 3}


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("num_bodies=99", ["num_bodies", "99", "less than or equal to 8"]),
        ("scene.spec=nowhere:thing", ["scene.spec", "nowhere:thing", "procedural:apartment"]),
        ("scene.grid_resolution=0.5", ["scene.grid_resolution", "0.5"]),
        ("scene.up_axis=x", ["scene.up_axis", "'x'", "'z'"]),
        ("colour=red", ["unknown key 'colour'", "num_bodies"]),
        ("scene.colour=red", ["unknown key 'scene.colour'", "grid_resolution"]),
    ],
)
def test_bad_values_name_key_value_and_rule(override: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("demo", [override])
    for needle in needles:
        assert needle in str(info.value)


def test_bad_files_and_override_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config("demo", ["num_bodies"])
    with pytest.raises(ConfigError, match="unknown config"):
        load_config("no_such_config")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "demo.yaml"
    bad.write_text("num_bodies: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    user = tmp_path / "mine.yaml"
    user.write_text("num_bodies: 2\n")
    assert load_config(user, schema=DemoConfig).num_bodies == 2
    with pytest.raises(ConfigError, match="no schema"):
        load_config(user)


def test_cli_config_prints_resolved_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "demo", "num_bodies=2"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["num_bodies"] == 2 and printed["scene"]["spec"] == "procedural:apartment"


def test_cli_bad_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "num_bodies=0"]) == 2
    assert "num_bodies" in capsys.readouterr().err


def test_cli_help_for_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in ("demo", "scene", "config"):
        with pytest.raises(SystemExit) as info:
            main([sub, "--help"])
        assert info.value.code == 0
        assert "usage: egosim" in capsys.readouterr().out
