"""The ``egosim`` command line: one entry point with subcommands.

Every subcommand that runs a job takes ``--config`` (a shipped config name or a YAML path,
validated against that subcommand's schema whatever the file is called) and ``key=value``
overrides (dotted keys into the config), e.g.::

    egosim demo num_bodies=4 scene.seed=7
    egosim scene --config my.yaml scene.spec=pybullet:samurai
    egosim config train-agent env.scene.seed=3      # print the resolved config as YAML
    egosim config my.yaml --schema scene            # a user file: name its schema
    egosim egom2p train-tokenizer modality=depth    # a command of the egom2p group

:data:`JOBS` is the one table of subcommand -> (shipped config, schema, runner);
:data:`EGOM2P_JOBS` the same for the commands of the ``egom2p`` group;
:data:`ENV_CONFIGS` adds the shipped env configs (no subcommand; ``gymnasium.make``'s).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from egosim.agents.config import EvalAgentConfig, TrainAgentConfig
from egosim.apps.config import DemoConfig, PriorVideoConfig, SceneJobConfig
from egosim.config import ConfigError, dump_config, load_config
from egosim.egom2p.config import ClipConfig
from egosim.egom2p.eval_config import EvalConfig
from egosim.egom2p.generate_config import GenerateConfig
from egosim.egom2p.model_config import TrainModelConfig
from egosim.egom2p.tokenizer_config import TrainTokenizerConfig
from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig
from egosim.envs.motion.config import TrainPriorConfig

__all__ = ["EGOM2P_JOBS", "ENV_CONFIGS", "JOBS", "Job", "main", "schema_for",
           "shipped_schemas"]


def _run_demo(cfg: Any) -> None:
    from egosim.apps.demo import run_demo

    run_demo(cfg)


def _run_scene(cfg: Any) -> None:
    from egosim.apps.demo import describe_scene

    describe_scene(cfg)


def _run_train_prior(cfg: Any) -> None:
    from egosim.envs.motion.train_prior import run

    summary = run(cfg)
    print(f"train-prior: done ({len(summary)} summary entries in {cfg.output_dir}/summary.json)")


def _run_prior_video(cfg: Any) -> None:
    from egosim.apps.prior_video import render_prior_video

    render_prior_video(cfg)


def _run_train_agent(cfg: Any) -> None:
    import json

    from egosim.agents.train import run_train

    print(json.dumps(run_train(cfg), indent=2, default=str))


def _run_eval_agent(cfg: Any) -> None:
    from egosim.agents.evaluate import run_eval

    run_eval(cfg)


def _run_egom2p_stream(cfg: Any) -> None:
    from egosim.egom2p.stream import run_stream

    run_stream(cfg)


def _run_egom2p_eval(cfg: Any) -> None:
    from egosim.egom2p.evaluation.harness import run

    run(cfg)


def _run_train_model(cfg: Any) -> None:
    import json

    from egosim.egom2p.model.train import run

    print(json.dumps(run(cfg), indent=2, default=str))


def _run_generate(cfg: Any) -> None:
    from egosim.egom2p.datasets.generate import run_generate

    run_generate(cfg)


def _run_train_tokenizer(cfg: Any) -> None:
    import json

    from egosim.egom2p.tokenizers.train import run

    print(json.dumps(run(cfg), indent=2, default=str))


@dataclass(frozen=True)
class Job:
    """One subcommand: its shipped config (``configs/<config>.yaml``), the schema every
    config it runs is validated against, a one-line help and the runner."""

    config: str
    schema: type[BaseModel]
    help: str
    run: Callable[[Any], None]


JOBS: dict[str, Job] = {
    "demo": Job("demo", DemoConfig, "build an apartment, place posed bodies, write pictures "
                "and videos (walk, EgoM2P clips, crowd)", _run_demo),
    "scene": Job("scene", SceneJobConfig, "load a scene, print its statistics, write a "
                 "top-down map", _run_scene),
    "train-prior": Job("train_prior", TrainPriorConfig, "train the motion prior (C-VAE + "
                       "SMPL-X regressor)", _run_train_prior),
    "prior-video": Job("prior_video", PriorVideoConfig, "MP4 of random motion-prior rollouts "
                       "on a floor grid", _run_prior_video),
    "train-agent": Job("train_agent", TrainAgentConfig, "train the ego-sensing PPO agent "
                       "(imitation, two stages, resume)", _run_train_agent),
    "eval-agent": Job("eval_agent", EvalAgentConfig, "evaluate a policy: success, "
                      "penetration, skating; JSON/PNG", _run_eval_agent),
    "generate": Job("generate", GenerateConfig, "write a dataset of simulated clips or HMR "
                    "frames as WebDataset shards (resumable; local or Ray)", _run_generate),
}

#: The commands of ``egosim egom2p COMMAND`` (same fields as :data:`JOBS`).
EGOM2P_JOBS: dict[str, Job] = {
    "stream": Job("egom2p_clips", ClipConfig, "stream EgoM2P clips from the simulation: "
                  "clips/s, seconds per stage, preview MP4", _run_egom2p_stream),
    "train-tokenizer": Job("egom2p_tokenizer", TrainTokenizerConfig, "train an EgoM2P "
                           "tokenizer (modality=rgb|depth|camera|gaze) on stream clips",
                           _run_train_tokenizer),
    "eval": Job("egom2p_eval", EvalConfig, "EgoM2P beside classical methods and baselines "
                "on held-out clips: Markdown table, PNG, JSON", _run_egom2p_eval),
    "train": Job("egom2p_model", TrainModelConfig, "train the EgoM2P masked model on "
                 "tokenized clips (stream, cache or synthetic; resume, DDP via torchrun)",
                 _run_train_model),
}

#: Shipped configs without a subcommand: the envs' (``gymnasium.make(id, config=...)``).
ENV_CONFIGS: dict[str, type[BaseModel]] = {
    "env_locomotion": LocomotionEnvConfig,
    "env_crowd": CrowdEnvConfig,
}

#: Other shipped configs of a command (``--config NAME``): name -> schema.
VARIANT_CONFIGS: dict[str, type[BaseModel]] = {
    "egom2p_model_base": TrainModelConfig,   # egosim egom2p train --config egom2p_model_base
    # egosim egom2p train --config egom2p_depth_specialist (rgb in, depth out)
    "egom2p_depth_specialist": TrainModelConfig,
}


def shipped_schemas() -> dict[str, type[BaseModel]]:
    """Shipped config name (a file of ``configs/``) -> its schema."""
    return {**{job.config: job.schema for job in JOBS.values()},
            **{job.config: job.schema for job in EGOM2P_JOBS.values()}, **ENV_CONFIGS,
            **VARIANT_CONFIGS}


def _kinds() -> list[str]:
    return sorted({*JOBS, *shipped_schemas()})


def schema_for(kind: str) -> type[BaseModel]:
    """The schema of a subcommand (``"train-agent"``) or of a shipped config
    (``"train_agent"``, ``"env_crowd"``).

    Raises:
        ConfigError: neither (the message lists both kinds of names).
    """
    if kind in JOBS:
        return JOBS[kind].schema
    schemas = shipped_schemas()
    if kind in schemas:
        return schemas[kind]
    raise ConfigError(f"unknown schema {kind!r}; give a subcommand or a shipped config name: "
                      f"{', '.join(_kinds())}")


def _config_target(name: str, schema: str | None) -> tuple[str, type[BaseModel]]:
    """(file to load, schema) of ``egosim config NAME [--schema KIND]``."""
    is_path = Path(name).suffix in (".yaml", ".yml")
    if schema is not None:
        return (JOBS[name].config if name in JOBS else name), schema_for(schema)
    if is_path:
        raise ConfigError(f"{name!r} is a YAML path: name its schema with --schema KIND, one "
                          f"of {', '.join(_kinds())}")
    return (JOBS[name].config if name in JOBS else name), schema_for(name)


_CONFIG_HELP = """\
NAME is a subcommand (train-agent: its shipped config), a shipped config name (train_agent,
env_locomotion, ...) or a YAML path. The config is validated against the schema of --schema
KIND (a subcommand or a shipped config name) when given, else NAME's; a YAML path needs
--schema (its file name does not choose a schema). Overrides beat the file's values.
Examples:
  egosim config train-agent env.scene.seed=3
  egosim config env_crowd crowd.num_humans=8
  egosim config my.yaml --schema scene
"""


def _yaml_value(value: Any) -> str:
    """A default as YAML writes it on one line (``null``, ``true``, ``[0, 200]``, ...)."""
    if isinstance(value, BaseModel):
        return "{...}"
    if isinstance(value, (list, tuple)):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    except yaml.YAMLError:
        return repr(value)
    return text[:-4].strip() if text.endswith("\n...") else text.removesuffix("...").strip()


def _keys_epilog(schema: type[BaseModel], config_name: str, file_name: str) -> str:
    """``--help`` epilog of a job: the schema's top-level keys with their defaults and
    descriptions, and where to see the rest (``egosim config NAME``)."""
    import textwrap

    lines = [f"config keys (top level, schema {schema.__name__}, with their defaults;",
             "a section {...} holds nested keys, overridden as section.key=value):"]
    for key, field in schema.model_fields.items():
        name = field.alias or key
        value = field.get_default(call_default_factory=True)
        head = f"  {name}: {_yaml_value(value)}"
        desc = " ".join((field.description or "").split())
        if desc:
            head = f"{head}  # {desc}"
        lines += textwrap.wrap(head, width=100, subsequent_indent="      ",
                               break_on_hyphens=False) or [head]
    lines += ["", f"every key with its value: egosim config {config_name} [key=value ...]",
              f"(the shipped file: configs/{file_name}.yaml)"]
    return "\n".join(lines)


def _add_jobs(sub: Any, jobs: dict[str, Job], group: str = "") -> None:
    """One subparser per job of ``jobs`` (``--config`` and ``key=value`` overrides; the
    epilog lists the schema's top-level keys)."""
    for name, job in jobs.items():
        shown = name if not group and name in JOBS else job.config
        p = sub.add_parser(name, help=job.help, description=job.help,
                           epilog=_keys_epilog(job.schema, shown, job.config),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument(
            "--config",
            default=job.config,
            help=f"shipped config name or YAML path, validated against {name}'s schema "
                 f"({job.schema.__name__}) whatever its file name (default: {job.config})",
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides "
                       "(dotted keys, values as YAML; they beat the file's values)")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egosim",
        description="egosim: egocentric virtual humans in 3D indoor scenes.",
        epilog="Every COMMAND takes --config NAME_OR_PATH and key=value overrides; "
               "`egosim COMMAND --help` lists its top-level config keys with their defaults "
               "and `egosim config COMMAND` prints the whole resolved config.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_jobs(sub, JOBS)
    group = sub.add_parser("egom2p", help="EgoM2P: clips, tokenizers, the masked model",
                           description="EgoM2P commands.")
    group_sub = group.add_subparsers(dest="egom2p_command", metavar="COMMAND")
    group_sub.required = True
    _add_jobs(group_sub, EGOM2P_JOBS, group="egom2p")
    p = sub.add_parser("config", help="print a resolved config as YAML",
                       description="Print a resolved config as YAML.", epilog=_CONFIG_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", metavar="NAME", help="subcommand, shipped config name or YAML path")
    p.add_argument("--schema", metavar="KIND", default=None,
                   help="validate against this subcommand's or shipped config's schema "
                        "(needed for a YAML path)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for a bad config)."""
    parser = _build_parser()
    # overrides may come before or after the options (argparse stops a positional list at
    # the first option): the key=value words it left over are overrides too
    args, rest = parser.parse_known_args(argv)
    stray = [w for w in rest if w.startswith("-") or "=" not in w]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = [*args.overrides, *rest]
    try:
        if args.command == "config":
            source, schema = _config_target(args.name, args.schema)
            cfg = load_config(source, args.overrides, schema=schema)
            data = dump_config(cfg, mode="json", by_alias=True)
            print(yaml.safe_dump(data, sort_keys=False), end="")
            return 0
        job = (EGOM2P_JOBS[args.egom2p_command] if args.command == "egom2p"
               else JOBS[args.command])
        cfg = load_config(args.config, args.overrides, schema=job.schema)
    except ConfigError as exc:
        print(f"egosim {args.command}: {exc}", file=sys.stderr)
        return 2
    return _run_job(args.command, job.run, cfg)


#: Set this environment variable to see the traceback of an input error instead of one line.
TRACEBACK_ENV = "EGOSIM_TRACEBACK"


def _run_job(command: str, run: Callable[[Any], None], cfg: Any) -> int:
    """Run a job; an input error found at run time (a missing or unreadable file, a mesh or
    model file that fails its checks: ``OSError`` or ``ValueError``) exits 2 with one line
    naming it, like a config error; ``EGOSIM_TRACEBACK=1`` re-raises it instead."""
    try:
        run(cfg)
    except (OSError, ValueError) as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"egosim {command}: error: {text} (set {TRACEBACK_ENV}=1 for the traceback)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
