"""The ``egosim`` command line: one entry point with subcommands.

Every subcommand that runs a job takes ``--config`` (a shipped config name or a YAML
path) and ``key=value`` overrides (dotted keys into the config), e.g.::

    egosim demo num_bodies=4 scene.seed=7
    egosim scene scene.spec=pybullet:samurai
    egosim config demo            # print the resolved config as YAML
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import yaml

from egosim.config import ConfigError, load_config

__all__ = ["main"]


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


# name -> (default config, help, runner)
_JOBS: dict[str, tuple[str, str, Callable[[Any], None]]] = {
    "demo": ("demo", "build an apartment, place posed bodies, write pictures", _run_demo),
    "scene": ("scene", "load a scene, print its statistics, write a top-down map", _run_scene),
    "train-prior": ("train_prior", "train the motion prior (C-VAE + SMPL-X regressor)",
                    _run_train_prior),
    "prior-video": ("prior_video", "MP4 of random motion-prior rollouts on a floor grid",
                    _run_prior_video),
    "train-agent": ("train_agent", "train the ego-sensing PPO agent (two stages, resume)",
                    _run_train_agent),
    "eval-agent": ("eval_agent", "evaluate a policy: success, penetration, skating; JSON/PNG",
                   _run_eval_agent),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egosim",
        description="egosim: egocentric virtual humans in 3D indoor scenes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (default_cfg, help_text, _) in _JOBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--config",
            default=default_cfg,
            help=f"shipped config name or YAML path (default: {default_cfg})",
        )
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p = sub.add_parser("config", help="print a resolved config as YAML",
                       description="print a resolved config as YAML")
    p.add_argument("name", help="shipped config name or YAML path")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for a bad config)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "config":
            cfg = load_config(args.name, args.overrides)
            print(yaml.safe_dump(cfg.model_dump(), sort_keys=False), end="")
            return 0
        _, _, runner = _JOBS[args.command]
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"egosim {args.command}: {exc}", file=sys.stderr)
        return 2
    runner(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
