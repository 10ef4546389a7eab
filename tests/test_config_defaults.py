"""One source of defaults: the schemas. Every shipped YAML lists every key with the schema's
default, except the keys its header names in ``# deliberate overrides: a, b.c`` (or
``none``); and every shipped YAML validates against the schema the CLI's table gives it."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from egosim.apps.config import DemoConfig
from egosim.cli import JOBS, main, schema_for, shipped_schemas
from egosim.config import dump_config, load_config
from egosim.paths import configs_dir

SHIPPED = sorted(p.stem for p in configs_dir().glob("*.yaml"))
OVERRIDES_LINE = re.compile(r"^# deliberate overrides: *(.*)$", re.MULTILINE)
# Sections a YAML may list only in part: the env of the agent configs (every env key is
# documented in configs/env_locomotion.yaml and env_crowd.yaml).
PARTIAL = {"train_agent": ("env",), "eval_agent": ("env",)}


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (lists and empty sections are leaves)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _listed(text: str) -> set[str]:
    """The keys of the header's ``# deliberate overrides:`` line (exactly one such line)."""
    lines = OVERRIDES_LINE.findall(text)
    assert len(lines) == 1, "need one '# deliberate overrides: KEYS|none' line in the header"
    listed = lines[0].strip()
    return set() if listed == "none" else {k.strip() for k in listed.split(",") if k.strip()}


def drift(text: str, schema: type[BaseModel], partial: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    """What is wrong with a YAML ``text`` as documentation of ``schema``'s defaults."""
    raw = yaml.safe_load(text) or {}
    given = _leaves(raw)
    defaults = _leaves(dump_config(schema(), mode="json", by_alias=True))
    in_partial = [k for k in given if k in partial and given[k] == {}]
    for k in in_partial:
        given.pop(k)
    differ = {k for k in given if k in defaults and given[k] != defaults[k]}
    listed = _listed(text)
    return {
        "unknown": sorted(set(given) - set(defaults)),
        "missing": sorted(k for k in set(defaults) - set(given)
                          if not any(k.startswith(f"{p}.") for p in partial)),
        "differ_unlisted": sorted(differ - listed),
        "listed_not_differing": sorted(listed - differ),
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_yaml_equals_schema_defaults_but_the_listed_overrides(name: str) -> None:
    text = (configs_dir() / f"{name}.yaml").read_text()
    found = drift(text, shipped_schemas()[name], PARTIAL.get(name, ()))
    assert found == {"unknown": [], "missing": [], "differ_unlisted": [],
                     "listed_not_differing": []}, found


def test_the_check_catches_unlisted_and_stale_overrides() -> None:
    text = (configs_dir() / "demo.yaml").read_text()
    changed = text.replace("num_bodies: 3 ", "num_bodies: 4 ")
    assert drift(changed, DemoConfig)["differ_unlisted"] == ["num_bodies"]
    listed = changed.replace("# deliberate overrides: none", "# deliberate overrides: "
                             "num_bodies, video_fps")
    found = drift(listed, DemoConfig)
    assert found["differ_unlisted"] == [] and found["listed_not_differing"] == ["video_fps"]
    shortened = "\n".join(line for line in text.splitlines() if not line.startswith("video:"))
    assert drift(shortened, DemoConfig)["missing"] == ["video"]
    with pytest.raises(AssertionError, match="deliberate overrides"):
        drift(text.replace("# deliberate overrides: none\n", ""), DemoConfig)


def test_the_only_overrides_are_scene_cache_gpu_model_cpu_task_masks_and_depth_specialist(
) -> None:
    listed = {name: _listed((configs_dir() / f"{name}.yaml").read_text()) for name in SHIPPED}
    assert {k: v for k, v in listed.items() if v} == {
        "train_agent": {"env.scene.cache_size"},
        "egom2p_model_base": {"size", "video_size", "video_head", "input_budget",
                              "target_budget", "batch_size", "bf16", "device", "threads",
                              "stream.num_workers", "optim.lr", "optim.warmup_steps"},
        "egom2p_model": {"task_fraction"},
        "egom2p_depth_specialist": {"modalities", "roles.rgb", "roles.depth", "task_fraction",
                                    "output_dir"}}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_yaml_validates_through_the_cli_table(name: str) -> None:
    schema = schema_for(name)
    assert isinstance(load_config(name, schema=schema), schema)
    assert main(["config", name]) == 0


def test_every_subcommand_has_a_shipped_config_and_schema() -> None:
    for command, job in JOBS.items():
        assert job.config in SHIPPED and schema_for(command) is schema_for(job.config)
        assert isinstance(load_config(job.config, schema=job.schema), job.schema)
    assert set(shipped_schemas()) == set(SHIPPED)
