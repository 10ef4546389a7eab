"""Agent configs: shipped files validate, bad values and unknown keys are named errors."""

from __future__ import annotations

import pytest

from egosim.agents.config import EvalAgentConfig, TrainAgentConfig, env_config
from egosim.config import ConfigError, load_config


def test_shipped_configs_validate_with_egogen_defaults():
    cfg = load_config("train_agent", schema=TrainAgentConfig)
    p = cfg.ppo
    assert (p.clip_range, p.gamma, p.gae_lambda, p.vf_coef, p.ent_coef, p.max_grad_norm,
            p.target_kl) == (0.1, 0.99, 0.95, 1.0, 0.01, 0.1, 0.02)
    assert [s.penetration_mode for s in cfg.stages] == ["soft", "strict"]
    ev = load_config("eval_agent", schema=EvalAgentConfig)
    train_seeds = env_config(cfg.env).scene.seed_range
    assert ev.scene_seeds[0] >= train_seeds[1], "evaluation seeds must be held out"


def test_eval_overrides_use_cli_keys():
    cfg = load_config("eval_agent", ["episodes=5", "seed=7", "scene=procedural:room",
                                     "json=true"], schema=EvalAgentConfig)
    assert (cfg.episodes, cfg.seed, cfg.scene, cfg.print_json) == (5, 7, "procedural:room",
                                                                    True)


@pytest.mark.parametrize("override, words", [
    ("ppo.clip_rnge=0.2", ["clip_rnge", "clip_range"]),
    ("ppo.clip_range=-1", ["ppo.clip_range", "-1"]),
    ("ppo.batch_size=100000", ["batch_size", "num_envs * ppo.n_steps"]),
    ("stages=[]", ["stages"]),
    ("stages=[{name: a, timesteps: 5, penetration_mode: hard, penetration_weight: 1}]",
     ["penetration_mode", "hard"]),
    ("env.reward.penetration_mode=maybe", ["env", "penetration_mode", "maybe"]),
    ("env.scene.colour=red", ["env", "colour"]),
    ("policy.net_arch_pi=[]", ["net_arch"]),
])
def test_bad_train_config_names_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("train_agent", [override], schema=TrainAgentConfig)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize("override, words", [
    ("episodes=0", ["episodes"]),
    ("scene=kitchen", ["scene", "kitchen"]),
    ("scene_seeds=[5, 2]", ["scene_seeds"]),
    ("baselines=[random]", ["baselines", "random"]),
    ("jsn=true", ["jsn"]),
    ("scripted_human_weight=-1", ["scripted_human_weight"]),
])
def test_bad_eval_config_names_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("eval_agent", [override], schema=EvalAgentConfig)
    for w in words:
        assert w in str(err.value)


def test_env_overrides_nested_and_dotted_agree():
    a = env_config({"scene": {"seed": 4}, "goal.max_dist": 5.0})
    b = env_config({"scene.seed": 4, "goal": {"max_dist": 5.0}})
    assert a == b and a.scene.seed == 4 and a.goal.max_dist == 5.0
    assert a.scene.spec == "procedural:apartment"  # untouched siblings keep their defaults
