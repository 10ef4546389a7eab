"""Config loading, overrides, one value per setting and validation errors (egosim.config), and
the CLI front (which schema a file is validated against)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from pydantic import Field, ValidationError, model_validator

from egosim.apps.config import DemoConfig, SceneJobConfig
from egosim.cli import JOBS, main
from egosim.config import (
    ConfigError,
    ConfigValueError,
    StrictModel,
    apply_overrides,
    dump_config,
    format_validation_error,
    load_config,
    parse_overrides,
    with_overrides,
)
from egosim.paths import configs_dir


def test_shipped_yaml_matches_schema_defaults() -> None:
    # The YAML documents the defaults: nothing in it may drift from the schema.
    raw = yaml.safe_load((configs_dir() / "demo.yaml").read_text())
    assert DemoConfig.model_validate(raw) == DemoConfig()


def test_overrides_are_typed_and_nested() -> None:
    cfg = load_config("demo", ["num_bodies=5", "scene.seed=11", "scene.spec=procedural:room"],
                      schema=DemoConfig)
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
        load_config("demo", [override], schema=DemoConfig)
    for needle in needles:
        assert needle in str(info.value)


def test_bad_files_and_override_syntax(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config("demo", ["num_bodies"], schema=DemoConfig)
    with pytest.raises(ConfigError, match="unknown config"):
        load_config("no_such_config", schema=DemoConfig)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml", schema=DemoConfig)
    bad = tmp_path / "demo.yaml"
    bad.write_text("num_bodies: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, schema=DemoConfig)
    user = tmp_path / "mine.yaml"
    user.write_text("num_bodies: 2\n")
    assert load_config(user, schema=DemoConfig).num_bodies == 2
    # the caller's schema decides, not the file name: a demo file read as a scene job
    with pytest.raises(ConfigError, match="unknown key 'num_bodies'"):
        load_config(user, schema=SceneJobConfig)


def test_dotted_key_inside_a_yaml_section_gets_a_hint(tmp_path: Path) -> None:
    user = tmp_path / "old.yaml"
    user.write_text("scene:\n  seed: 1\nscene.seed: 2\n")
    with pytest.raises(ConfigError, match=r"nest it, scene: \{seed: \.\.\.\}"):
        load_config(user, schema=DemoConfig)


def test_cli_config_prints_resolved_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "demo", "num_bodies=2"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["num_bodies"] == 2 and printed["scene"]["spec"] == "procedural:apartment"


def test_cli_bad_override_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "num_bodies=0"]) == 2
    assert "num_bodies" in capsys.readouterr().err


def test_cli_help_for_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    for sub in (*JOBS, "config"):
        with pytest.raises(SystemExit) as info:
            main([sub, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: egosim" in out
        assert "--schema" in out if sub == "config" else "--config" in out


def test_cli_config_takes_subcommand_or_shipped_name(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    printed = {}
    for name in ("train-agent", "train_agent"):
        assert main(["config", name, "env.scene.seed=3"]) == 0
        printed[name] = yaml.safe_load(capsys.readouterr().out)
    assert printed["train-agent"] == printed["train_agent"]
    assert printed["train_agent"]["env"]["scene"]["seed"] == 3
    assert main(["config", "env_crowd", "crowd.num_humans=8"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["crowd"]["num_humans"] == 8
    assert main(["config", "no-such-thing"]) == 2
    err = capsys.readouterr().err
    assert "train-agent" in err and "env_locomotion" in err


def test_cli_config_prints_a_file_that_loads_back(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "eval-agent", "env.scene.spec=procedural:room"]) == 0
    printed = tmp_path / "printed.yaml"
    printed.write_text(capsys.readouterr().out)
    assert main(["config", str(printed), "--schema", "eval-agent", "episodes=3"]) == 0
    again = yaml.safe_load(capsys.readouterr().out)
    assert again["scene"] == "procedural:room" and again["episodes"] == 3 and "json" in again


def test_cli_yaml_path_is_validated_against_the_subcommand_schema(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # a user's copy of scene.yaml, named like another shipped config
    copy = tmp_path / "demo.yaml"
    copy.write_text((configs_dir() / "scene.yaml").read_text())
    ran = []
    monkeypatch.setitem(JOBS, "scene", dataclasses.replace(JOBS["scene"], run=ran.append))
    assert main(["scene", "--config", str(copy), "scene.seed=4"]) == 0
    assert isinstance(ran[0], SceneJobConfig) and ran[0].scene.seed == 4
    assert main(["scene", "--config", str(copy), "num_bodies=2"]) == 2  # a demo key
    assert "unknown key 'num_bodies'" in capsys.readouterr().err
    # egosim config: a path needs --schema (its name does not choose one)
    assert main(["config", str(copy)]) == 2
    assert "--schema" in capsys.readouterr().err
    assert main(["config", str(copy), "--schema", "scene"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["pixels_per_m"] == 20


class _Inner(StrictModel):
    """A section with one key."""

    spec: str = "a"
    other: int = 0


class _Outer(StrictModel):
    """``spec`` is a shorthand of ``inner.spec``."""

    same_setting: ClassVar[tuple[tuple[str, str], ...]] = (("spec", "inner.spec"),)

    spec: str = "a"
    inner: _Inner = Field(default_factory=_Inner)
    count: int = 0


def test_same_setting_one_key_takes_effect_both_are_an_error() -> None:
    assert (_Outer().spec, _Outer().inner.spec) == ("a", "a")
    short = _Outer(spec="b")
    assert (short.spec, short.inner.spec) == ("b", "b")
    given = _Inner(spec="c")
    long = _Outer(inner=given)
    assert (long.spec, long.inner.spec) == ("c", "c")
    assert given.spec == "c" and _Outer(spec="d", inner={"other": 1}).inner.spec == "d"
    with pytest.raises(ValidationError) as info:
        _Outer(spec="b", inner={"spec": "c"})
    message = format_validation_error("<test>", info.value, _Outer)
    assert "'spec'" in message and "'inner.spec'" in message
    short.count = 3  # a later assignment re-validates without a spurious conflict
    assert (short.spec, short.inner.spec, short.count) == ("b", "b", 3)
    assert _Outer.model_validate(dump_config(short)) == short
    assert with_overrides(short, {"inner.spec": "e"}).spec == "e"


def test_same_setting_override_beats_the_file(tmp_path: Path) -> None:
    user = tmp_path / "outer.yaml"
    user.write_text("spec: b\ncount: 1\n")
    cfg = load_config(user, ["inner.spec=c"], schema=_Outer)
    assert (cfg.spec, cfg.inner.spec, cfg.count) == ("c", "c", 1)
    with pytest.raises(ConfigError, match="'spec', 'inner.spec'"):
        load_config(user, ["spec=d", "inner.spec=c"], schema=_Outer)
    user.write_text("spec: b\ninner: {spec: c}\n")
    with pytest.raises(ConfigError, match="set the same value"):
        load_config(user, schema=_Outer)


def test_rules_over_several_keys_name_them() -> None:
    class _Range(StrictModel):
        low: int = 0
        high: int = 1

        @model_validator(mode="after")
        def _order(self) -> _Range:
            if self.high <= self.low:
                raise ConfigValueError(("high", "low"), "high must exceed low")
            return self

    class _Job(StrictModel):
        range: _Range = Field(default_factory=_Range)

    with pytest.raises(ValidationError) as info:
        _Job(range={"low": 3})
    message = format_validation_error("<test>", info.value, _Job)
    assert "keys 'range.high', 'range.low': high must exceed low" in message
    assert "''" not in message


@pytest.mark.parametrize("value", ["[0, 10000000000000000000000]", "[5, 5]", "[-1, 3]"])
def test_seed_ranges_must_fit_int64_and_be_half_open(value: str) -> None:
    from egosim.envs.config import LocomotionEnvConfig

    with pytest.raises(ConfigError) as info:
        load_config("env_locomotion", [f"scene.seed_range={value}"], schema=LocomotionEnvConfig)
    assert "scene.seed_range" in str(info.value) and "2**63 - 1" in str(info.value)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_inf_floats_are_refused_naming_the_key(value: str) -> None:
    from egosim.envs.config import LocomotionEnvConfig

    with pytest.raises(ConfigError) as info:
        load_config("env_locomotion", [f"reward.weights.progress={value}"],
                    schema=LocomotionEnvConfig)
    assert "reward.weights.progress" in str(info.value)
    assert "finite" in str(info.value)


def test_a_single_override_string_is_accepted_and_other_types_refused() -> None:
    from egosim.envs.config import LocomotionEnvConfig
    from egosim.envs.env_base import resolve_config

    cfg = resolve_config(None, "scene.seed=3", LocomotionEnvConfig)
    assert cfg.scene.seed == 3
    with pytest.raises(ConfigError, match="overrides must be"):
        resolve_config(None, 3, LocomotionEnvConfig)
    with pytest.raises(ConfigError, match="key=value"):
        resolve_config(None, ["scene.seed=3", 4], LocomotionEnvConfig)


def test_binary_yaml_is_a_config_error(tmp_path: Path) -> None:
    from egosim.envs.config import LocomotionEnvConfig

    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="binary.yaml"):
        load_config(path, schema=LocomotionEnvConfig)


def test_cli_missing_or_corrupt_mesh_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    for spec, needle in ((tmp_path / "missing.obj", "not found"), (bad, "bad.obj")):
        assert main(["scene", f"scene.spec={spec}", f"output_dir={tmp_path}"]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
