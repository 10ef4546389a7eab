"""Model cards (``cvae.md``, ``regressor.md``) for exported motion-prior checkpoints.

Each card states the data, the config, the command that retrains it and the figures measured
by :func:`~.metrics.evaluate_all` on held-out clips (written next to ``metrics.json``): marker
figures and the body-surface (lowest foot vertex) sole figures. Figures missing from
``metrics`` (e.g. sole figures of data without SMPL-X parameters) read ``None``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from egosim.atomic_io import write_json, write_text

__all__ = ["write_model_cards"]

_RETRAIN = "egosim train-prior export_dir=envs/motion/checkpoints"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def write_model_cards(folder: str | Path, cfg: Any, metrics: dict[str, float],
                      summary: dict[str, Any], data_note: str) -> list[Path]:
    """Write ``metrics.json``, ``cvae.md`` and ``regressor.md`` into ``folder``."""
    folder = Path(folder)
    write_json(folder / "metrics.json", metrics, indent=2, sort_keys=True)
    c = cfg.model_dump()
    m = {k: _fmt(v) for k, v in metrics.items()}
    common = (f"## Data\n{data_note}\n\nTraining primitives: {summary.get('train_primitives')}, "
              f"held-out primitives: {summary.get('held_out_primitives')} (whole clips held "
              f"out, fraction {c['data']['holdout']}, seed {c['seed']}).\n\n"
              f"## Retrain\n```\n{_RETRAIN}\n```\n(config `configs/train_prior.yaml`; "
              f"`egosim.envs.motion.train_prior.run(cfg)`)\n\n")
    stages = {k: c[k] for k in ("cvae", "stage1", "stage2")}
    cvae = (
        "# Motion-primitive C-VAE (EgoGen)\n\n"
        "`cvae.pt`: GRU encoders (201 -> 256) for 2 history and 18 future frames of the 67 "
        "SSM2 markers (canonical frame, 40 fps), MLP [512, 256], latent 128, residual "
        "autoregressive GRUCell decoder. Also holds the normalisation statistics, the "
        "markers -> pelvis/hip weights used for re-canonicalisation, the seed motions and "
        "the training data's reference figures.\n\n" + common +
        f"## Config\n```json\n{json.dumps(stages, indent=1)}\n```\n\n"
        "## Metrics (held-out clips; `egosim.envs.motion.metrics.evaluate_all`)\n"
        "| figure | value |\n| --- | --- |\n"
        f"| reconstruction, posterior mean z (m/marker) | {m['recon_cvae_posterior']} |\n"
        f"| prediction, z = 0 (m/marker) | {m['recon_cvae_prior_mean']} |\n"
        f"| constant-velocity extrapolation (m/marker) | {m['recon_constant_velocity']} |\n"
        f"| rollout NaN (100 primitives x {c.get('eval_batch', 8)}) | {m['rollout_nan']} |\n"
        f"| rollout pelvis height min / max (m) | {m['rollout_pelvis_min']} / "
        f"{m['rollout_pelvis_max']} |\n"
        f"| data pelvis height min / max (m) | {m['data_pelvis_min']} / {m['data_pelvis_max']} |\n"
        f"| rollout frames with pelvis in data range | {m.get('rollout_pelvis_in_range')} |\n"
        f"| foot height at contact, rollout / data (m) | {m['rollout_foot_height_contact']} / "
        f"{m['data_foot_height_contact']} |\n"
        f"| foot skating, rollout / data (m/s) | {m['rollout_skating']} / {m['data_skating']} |\n"
        f"| skating ratio (target <= 1.5) | {m.get('skating_ratio')} |\n"
        f"| held-out data: foot height at contact (m) / foot skating (m/s) | "
        f"{m.get('heldout_foot_height_contact')} / {m.get('heldout_skating')} |\n"
        f"| foot sole height at contact (lowest foot vertex), rollout / held-out data (m) | "
        f"{m.get('rollout_sole_height_contact')} / {m.get('heldout_sole_height_contact')} |\n"
        f"| foot sole skating (lowest foot vertex), rollout / held-out data (m/s) | "
        f"{m.get('rollout_sole_skating')} / {m.get('heldout_sole_skating')} |\n"
        f"| frames with a foot sole below 5 cm, rollout / held-out data | "
        f"{m.get('rollout_sole_contact_fraction')} / "
        f"{m.get('heldout_sole_contact_fraction')} |\n"
        f"| lowest foot vertex, minimum over frames, rollout / held-out data (m) | "
        f"{m.get('rollout_sole_min_height')} / {m.get('heldout_sole_min_height')} |\n"
        f"| diversity APD, 10 samples, 1 / 10 primitives (m) | {m['diversity_apd_1']} / "
        f"{m['diversity_apd_10']} |\n"
        f"| without floor contact: foot height at contact / skating ratio / pelvis in range | "
        f"{m.get('raw_rollout_foot_height_contact')} / {m.get('raw_skating_ratio')} / "
        f"{m.get('raw_rollout_pelvis_in_range')} |\n"
        f"| without floor contact: foot sole height at contact (lowest foot vertex, m) | "
        f"{m.get('raw_rollout_sole_height_contact')} |\n\n"
        "Rollouts: z ~ N(0, I), seed motions from the training data, 50/50 blend with the "
        "regressed body, floor contact on (see `egosim.envs.motion.prior`). `data` figures: "
        "the training primitives (stored in `cvae.pt`); `held-out data`: the held-out clips. "
        "Foot height: the lowest of the six foot markers, which sit on the skin 2-5 cm above "
        "the sole; foot sole: the lowest vertex of the SMPL-X foot parts (the regressed "
        "bodies for rollouts, the data's own SMPL-X parameters for data); contact: below "
        "5 cm. Definitions in `egosim.envs.motion.metrics`.\n")
    reg = (
        "# Markers -> SMPL-X regressor (EgoGen)\n\n"
        "`regressor.pt`: ResNet-style MLP (width 128, 10 blocks) applied 3 times; input "
        "markers in a waist-marker frame, betas, gender, current parameters and marker "
        "re-projection error; output translation, global orientation and 21 body joints (6D "
        "rotations); hands at the relaxed mean pose.\n\n" + common +
        f"## Config\n```json\n{json.dumps(c['regressor'], indent=1)}\n```\n\n"
        "## Metrics (held-out clips)\n| figure | value |\n| --- | --- |\n"
        f"| mean marker re-projection error (m, target <= 0.02) | {m['regressor_mean']} |\n"
        f"| 95th percentile (m) | {m['regressor_p95']} |\n")
    paths = [folder / "cvae.md", folder / "regressor.md"]
    write_text(paths[0], cvae)
    write_text(paths[1], reg)
    return paths
