"""Agent configs: shipped files validate, the env is a typed section, bad values, unknown keys
and two keys for one setting are named errors."""

from __future__ import annotations

import pytest
from agents_support import easy_env, small_run, stages

from egosim.agents.config import EvalAgentConfig, TrainAgentConfig
from egosim.agents.evaluate import _env_config
from egosim.cli import main
from egosim.config import ConfigError, load_config
from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig


def test_shipped_configs_validate_with_egogen_defaults():
    cfg = load_config("train_agent", schema=TrainAgentConfig)
    p = cfg.ppo
    assert (p.clip_range, p.gamma, p.gae_lambda, p.vf_coef, p.ent_coef, p.max_grad_norm,
            p.target_kl) == (0.1, 0.99, 0.95, 1.0, 0.01, 0.1, 0.02)
    assert [s.penetration_mode for s in cfg.stages] == ["soft", "strict"]
    ev = load_config("eval_agent", schema=EvalAgentConfig)
    train_seeds = cfg.env.scene.seed_range
    assert ev.scene_seeds[0] >= train_seeds[1], "evaluation seeds must be held out"
    lo, hi = cfg.selection.scene_seeds
    assert train_seeds[1] <= lo and hi <= ev.scene_seeds[0], "validation seeds between both"


def test_schema_defaults_are_the_shipped_run():
    cfg = TrainAgentConfig()
    assert (cfg.ppo.n_epochs, cfg.policy.log_std_init, cfg.imitation.steps,
            cfg.selection.episodes, cfg.checkpoint_every) == (10, -1.6, 12_288, 32, 10_000)
    assert [(s.name, s.timesteps) for s in cfg.stages] == [("pretrain", 10_000),
                                                           ("finetune", 5_000)]
    assert load_config("train_agent", schema=TrainAgentConfig).model_copy(
        update={"env": LocomotionEnvConfig()}) == cfg  # the YAML's env cache is the only other
    assert EvalAgentConfig().threads == 1


def test_env_is_a_typed_nested_section():
    cfg = load_config("train_agent", ["env.scene.seed=4", "env.goal.max_dist=5.0"],
                      schema=TrainAgentConfig)
    assert isinstance(cfg.env, LocomotionEnvConfig)
    assert (cfg.env.scene.seed, cfg.env.goal.max_dist) == (4, 5.0)
    assert cfg.env.scene.cache_size == 256  # the file's other env keys stay
    assert cfg.env.scene.spec == "procedural:apartment"  # untouched keys: the schema's default
    direct = TrainAgentConfig(env=easy_env(), **small_run())
    assert direct.env.scene.spec == "procedural:room" and direct.env.episode.max_steps == 8
    ev = load_config("eval_agent", ["env.episode.max_steps=5"], schema=EvalAgentConfig)
    assert isinstance(ev.env, CrowdEnvConfig) and ev.env.episode.max_steps == 5


def test_eval_overrides_use_cli_keys():
    cfg = load_config("eval_agent", ["episodes=5", "seed=7", "scene=procedural:room",
                                     "json=true"], schema=EvalAgentConfig)
    assert (cfg.episodes, cfg.seed, cfg.scene, cfg.print_json) == (5, 7, "procedural:room",
                                                                    True)
    assert cfg.env.scene.spec == "procedural:room"


@pytest.mark.parametrize("override, value", [
    ("env.scene.spec=pybullet:samurai", "pybullet:samurai"),
    ("scene=pybullet:samurai", "pybullet:samurai"),
    ("env.scene.seed_range=[3000, 3100]", (3000, 3100)),
    ("scene_seeds=[3000, 3100]", (3000, 3100)),
    ("env.crowd.num_humans=7", 7),
    ("num_humans=7", 7),
])
def test_eval_either_key_of_a_setting_takes_effect(override, value):
    cfg = load_config("eval_agent", ["crowd=true", override], schema=EvalAgentConfig)
    env = _env_config(cfg)  # what eval-agent builds its envs from
    got = {"scene": (cfg.scene, env.scene.spec), "seeds": (cfg.scene_seeds,
                                                          env.scene.seed_range),
           "humans": (cfg.num_humans, env.crowd.num_humans)}
    assert (value, value) in got.values()
    solo = _env_config(load_config("eval_agent", [override], schema=EvalAgentConfig))
    assert type(solo) is LocomotionEnvConfig  # no crowd section without crowd=true


@pytest.mark.parametrize("overrides, keys", [
    (["scene=procedural:room", "env.scene.spec=pybullet:samurai"],
     ["'scene'", "'env.scene.spec'"]),
    (["num_humans=3", "env.crowd.num_humans=5"], ["'num_humans'", "'env.crowd.num_humans'"]),
    (["scene_seeds=[3000, 3100]", "env.scene.seed_range=[3000, 3200]"],
     ["'scene_seeds'", "'env.scene.seed_range'"]),
    (["scene=procedural:room", "env={scene: {spec: procedural:room}}"],
     ["'scene'", "'env.scene.spec'"]),
])
def test_eval_two_keys_for_one_setting_are_an_error(overrides, keys, capsys):
    with pytest.raises(ConfigError) as err:
        load_config("eval_agent", overrides, schema=EvalAgentConfig)
    for k in keys + ["give only one"]:
        assert k in str(err.value)
    assert main(["eval-agent", *overrides]) == 2
    assert keys[1] in capsys.readouterr().err
    with pytest.raises(ValueError, match="give only one"):  # Python callers too
        EvalAgentConfig(scene="procedural:room", env={"scene": {"spec": "procedural:room"}})


def test_train_stage_keys_and_env_keys_for_one_setting_are_an_error():
    for key in ("env.reward.penetration_mode=strict", "env.reward.weights.penetration=0.5"):
        with pytest.raises(ConfigError) as err:
            load_config("train_agent", [key], schema=TrainAgentConfig)
        assert key.split("=")[0] in str(err.value) and "'stages'" in str(err.value)
    with pytest.raises(ValueError, match="set per stage"):
        TrainAgentConfig(env={"reward": {"penetration_mode": "soft"}}, stages=stages(5, 5),
                         **small_run())


@pytest.mark.parametrize("override, words", [
    ("ppo.clip_rnge=0.2", ["clip_rnge", "clip_range"]),
    ("ppo.clip_range=-1", ["ppo.clip_range", "-1"]),
    ("ppo.batch_size=100000", ["'ppo.batch_size'", "num_envs * ppo.n_steps"]),
    ("stages=[]", ["key 'stages'", "at least 1"]),
    ("stages=[{name: a, timesteps: 5, penetration_mode: soft, penetration_weight: 1}, "
     "{name: a, timesteps: 5, penetration_mode: soft, penetration_weight: 1}]",
     ["key 'stages'", "unique"]),
    ("stages=[{name: a, timesteps: 5, penetration_mode: hard, penetration_weight: 1}]",
     ["penetration_mode", "hard"]),
    ("env.reward.penetration_mode=maybe", ["env", "penetration_mode", "maybe"]),
    ("env.scene.colour=red", ["env", "colour"]),
    ("env.goal.max_dist=1.0", ["'env.goal.max_dist'", "'env.goal.min_dist'"]),
    ("selection.scene_seeds=[100, 250]", ["'selection.scene_seeds'", "'env.scene.seed_range'"]),
    ("policy.net_arch_pi=[]", ["net_arch"]),
])
def test_bad_train_config_names_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("train_agent", [override], schema=TrainAgentConfig)
    for w in words:
        assert w in str(err.value)
    assert "key ''" not in str(err.value)


@pytest.mark.parametrize("override, words", [
    ("episodes=0", ["episodes"]),
    ("scene=kitchen", ["scene", "kitchen"]),
    ("env.scene.spec=kitchen", ["env.scene.spec", "kitchen"]),
    ("scene_seeds=[5, 2]", ["scene_seeds"]),
    ("baselines=[random]", ["baselines", "random"]),
    ("jsn=true", ["jsn"]),
    ("scripted_human_weight=-1", ["scripted_human_weight"]),
    ("env.crowd.num_humans=1", ["env.crowd.num_humans"]),
])
def test_bad_eval_config_names_the_key(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("eval_agent", [override], schema=EvalAgentConfig)
    for w in words:
        assert w in str(err.value)
