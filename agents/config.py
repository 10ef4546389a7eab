"""Schemas of ``configs/train_agent.yaml`` and ``configs/eval_agent.yaml``.

Every hyper-parameter of the PPO agent lives here (CleanRL style: one visible config):
EgoGen's published PPO settings, the policy's encoder sizes, the imitation warm start, the
two training stages (soft penetration, then strict), checkpoint selection and the evaluation
protocol. The defaults are the shipped run's (``agents/checkpoints/ppo_locomotion.md``), the
values ``configs/train_agent.yaml`` documents. The environment is a typed section: ``env`` is
an :class:`egosim.envs.config.LocomotionEnvConfig` (training) or a
:class:`egosim.envs.config.CrowdEnvConfig` (evaluation), nested in YAML
(``env: {scene: {cache_size: 256}}``) and overridden with dotted keys
(``env.scene.seed=3``). Unknown keys and bad values are errors that name the key; so are
two keys that set one value.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from egosim.config import ConfigValueError, SeedRange, StrictModel, is_set
from egosim.envs.config import CrowdEnvConfig, LocomotionEnvConfig, SceneSpec

__all__ = ["PPOSection", "PolicySection", "StageSection", "ImitationSection",
           "SelectionSection", "TrainAgentConfig", "EvalAgentConfig"]


class PPOSection(StrictModel):
    """stable-baselines3 ``PPO`` arguments (EgoGen's values where it has them)."""

    learning_rate: float = Field(3e-4, gt=0.0, le=1.0)
    n_steps: int = Field(32, ge=2, description="steps per env per rollout")
    batch_size: int = Field(512, ge=2, description="minibatch (transitions)")
    n_epochs: int = Field(10, ge=1, le=100, description="passes over each rollout")
    gamma: float = Field(0.99, gt=0.0, le=1.0, description="EgoGen: 0.99")
    gae_lambda: float = Field(0.95, ge=0.0, le=1.0, description="EgoGen: 0.95")
    clip_range: float = Field(0.1, gt=0.0, le=1.0, description="EgoGen: 0.1")
    ent_coef: float = Field(0.01, ge=0.0, description="EgoGen: 0.01")
    vf_coef: float = Field(1.0, ge=0.0, description="EgoGen: 1")
    max_grad_norm: float = Field(0.1, gt=0.0, description="EgoGen: 0.1")
    target_kl: float | None = Field(0.02, gt=0.0, description="EgoGen: early stop at 0.02")


class PolicySection(StrictModel):
    """:class:`egosim.agents.policy.EgoGenExtractor` and the actor-critic heads."""

    use_ego_sensing: bool = Field(True, description="false: the ablation without rays")
    marker_hidden: int = Field(128, ge=8, le=1024, description="marker-history GRU width")
    sensing_hidden: int = Field(64, ge=4, le=1024, description="ego-sensing MLP width")
    pe_frequencies: int = Field(6, ge=1, le=16, description="positional-encoding frequencies")
    net_arch_pi: list[int] = Field([256, 256], description="actor MLP widths")
    net_arch_vf: list[int] = Field([256, 256], description="critic MLP widths")
    log_std_init: float = Field(-1.6, ge=-5.0, le=1.0, description="initial log std of the "
                                "action (action = z / 3: -1.6 gives std ~ 0.6 in z; PPO "
                                "starts from the imitation fit)")
    share_features_extractor: bool = Field(
        False, description="true: actor and critic share one encoder (SB3's default); false: "
        "each has its own, so value-loss gradients (returns ~ 10-100) cannot swamp the actor's")

    @field_validator("net_arch_pi", "net_arch_vf")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if not value or any(w < 1 for w in value):
            raise ValueError(f"net_arch widths must be a non-empty list of positive ints; "
                             f"got {value}")
        return value


class StageSection(StrictModel):
    """One training stage (EgoGen: pre-train soft, then fine-tune strict)."""

    name: str = Field(..., min_length=1)
    timesteps: int = Field(..., ge=1, description="env steps (primitives) in this stage")
    penetration_mode: Literal["soft", "strict"] = Field(..., description="soft: penalty "
                                                        "only; strict: end at >= 40 vertices")
    penetration_weight: float = Field(..., ge=0.0, description="reward.weights.penetration "
                                      "(EgoGen: 1 pre-training, 0.1 fine-tuning)")


class ImitationSection(StrictModel):
    """Warm start from the privileged sampling planner before PPO
    (:mod:`egosim.agents.imitation`): behaviour cloning (``iterations: 1``) or DAgger;
    ``steps: 0`` trains with PPO alone."""

    steps: int = Field(12_288, ge=0, description="env steps collected per DAgger iteration "
                       "(0: no warm start)")
    iterations: int = Field(1, ge=1, le=100, description="1: behaviour cloning; more: DAgger "
                            "iterations (the first is pure teacher; beta_k = 1 - k / iterations)")
    candidates: int = Field(32, ge=1, le=1024, description="latents the teacher decodes "
                            "per step")
    sigma: float = Field(2.0, gt=0.0, le=10.0, description="teacher's latent sampling std")
    fixed_candidates: bool = Field(True, description="one codebook of latents for every "
                                   "step (a learnable, deterministic teacher) instead of "
                                   "fresh samples")
    crowd_steps: int = Field(0, ge=0, description="extra human steps of teacher data from "
                             "EgoCrowd worlds, where the teacher steers around the others "
                             "(0: none)")
    crowd_humans: int = Field(4, ge=2, le=64, description="humans per crowd world")
    crowd_envs: int = Field(16, ge=1, le=1024, description="crowd worlds stepped together")
    human_weight: float = Field(10.0, ge=0.0, description="teacher's cost (m) per unit "
                                "fraction of frames near another human (crowd data)")
    epochs: int = Field(30, ge=1, le=1000, description="passes over the data per iteration")
    batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)


class SelectionSection(StrictModel):
    """Which checkpoint to export: the one with the highest success on validation scenes
    (seeds disjoint from training and from evaluation's [1000, 2000)), among the end of
    imitation and the end of every stage; ``episodes: 0`` exports the last one."""

    episodes: int = Field(32, ge=0, le=100_000, description="validation episodes per "
                          "candidate (0: no selection)")
    scene_seeds: SeedRange = Field((200, 300), description="[low, high) validation "
                                         "scene seeds")
    seed: int = Field(50_000, ge=0, description="sub-env i's generator seed is seed + i")
    num_envs: int = Field(16, ge=1, le=4096, description="worlds stepped together (at most "
                          "one per episode)")
    budget_fraction: float = Field(0.5, gt=0.0, le=100.0, description="selection runs at most "
                                   "this fraction of the training's env steps (imitation + "
                                   "PPO): episodes per candidate are cut to fit, each counted "
                                   "at env.episode.max_steps steps")
    min_episodes: int = Field(4, ge=1, le=100_000, description="episodes per candidate the "
                              "budget cut keeps at least (never more than episodes)")



def _default_stages() -> list[StageSection]:
    """EgoGen's two stages at the shipped run's budgets (10,000 + 5,000 env steps)."""
    return [StageSection(name="pretrain", timesteps=10_000, penetration_mode="soft",
                         penetration_weight=1.0),
            StageSection(name="finetune", timesteps=5_000, penetration_mode="strict",
                         penetration_weight=0.1)]


class TrainAgentConfig(StrictModel):
    """``egosim train-agent``: imitation, then PPO on the batched EgoLocomotion env."""

    seed: int = Field(0, ge=0, description="env seeds (s + i per sub-env) and initial weights")
    output_dir: str = Field("outputs/train_agent", description="checkpoints/, tensorboard/, "
                            "final.zip, summary.json")
    export_path: str | None = Field(None, description="copy of the final policy .zip "
                                    "(null: none)")
    num_envs: int = Field(64, ge=1, le=4096, description="humans stepped together")
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads")
    checkpoint_every: int = Field(10_000, ge=1, description="env steps between checkpoints")
    tensorboard: bool = True
    progress: bool = Field(True, description="tqdm progress bar")
    resume: bool = Field(True, description="continue from the latest checkpoint in "
                         "output_dir/checkpoints")
    env: LocomotionEnvConfig = Field(default_factory=LocomotionEnvConfig, description="the "
                                     "training env; reward.penetration_mode and "
                                     "reward.weights.penetration are set per stage")
    ppo: PPOSection = Field(default_factory=PPOSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    stages: list[StageSection] = Field(default_factory=_default_stages, min_length=1,
                                       description="trained in order; unique names")
    imitation: ImitationSection = Field(default_factory=ImitationSection)
    selection: SelectionSection = Field(default_factory=SelectionSection)

    @field_validator("stages")
    @classmethod
    def _unique_names(cls, value: list[StageSection]) -> list[StageSection]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique; got {names}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TrainAgentConfig:
        for key, field in (("env.reward.penetration_mode", "penetration_mode"),
                           ("env.reward.weights.penetration", "penetration_weight")):
            if is_set(self, key):
                raise ConfigValueError((key, "stages"), f"{key} is set per stage: give "
                                       f"stages[].{field} instead")
        train = self.env.scene.seed_range
        lo, hi = self.selection.scene_seeds
        if self.selection.episodes > 0 and lo < train[1] and train[0] < hi:
            raise ConfigValueError(("selection.scene_seeds", "env.scene.seed_range"),
                                   f"selection.scene_seeds {[lo, hi]} overlap the training "
                                   f"scene seeds {list(train)} (env.scene.seed_range)")
        rollout = self.num_envs * self.ppo.n_steps
        if self.ppo.batch_size > rollout:
            raise ConfigValueError(("ppo.batch_size", "num_envs", "ppo.n_steps"),
                                   f"ppo.batch_size ({self.ppo.batch_size}) must not exceed "
                                   f"num_envs * ppo.n_steps ({rollout})")
        return self


class EvalAgentConfig(StrictModel):
    """``egosim eval-agent``: metrics of a policy (and baselines) on held-out scenes.

    ``scene``, ``scene_seeds`` and ``num_humans`` are the protocol's keys; each is also
    ``env``'s key (``env.scene.spec``, ``env.scene.seed_range``, ``env.crowd.num_humans``):
    give one of the two, and both hold its value.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True,
                              allow_inf_nan=False)

    same_setting: ClassVar[tuple[tuple[str, str], ...]] = (
        ("scene", "env.scene.spec"),
        ("scene_seeds", "env.scene.seed_range"),
        ("num_humans", "env.crowd.num_humans"),
    )

    policy: str | None = Field(None, description="PPO .zip; null: the shipped policy")
    baselines: list[Literal["prior", "zero", "scripted"]] = Field(
        ["prior"], description="also run: prior (z ~ N(0, I), the motion prior's own "
        "rollouts), zero (z = 0, the prior's mean latent), scripted (sampling controller, "
        "egosim.agents.scripted)")
    scripted_human_weight: float = Field(0.0, ge=0.0, description="the scripted baseline's "
                                         "cost (m) for frames near other humans (crowds)")
    episodes: int = Field(64, ge=1, le=100_000, description="episodes per controller")
    seed: int = Field(100_000, ge=0, description="sub-env i's generator seed is seed + i")
    scene: SceneSpec = Field("procedural:apartment", description="scenes.load spec "
                       "(= env.scene.spec)")
    scene_seeds: SeedRange = Field((1000, 2000), description="[low, high) held-out "
                                         "scene seeds (= env.scene.seed_range; training "
                                         "uses [0, 200))")
    crowd: bool = Field(False, description="EgoCrowd: the policy drives every human")
    num_humans: int = Field(4, ge=2, le=64, description="humans per scene when crowd "
                            "(= env.crowd.num_humans)")
    num_envs: int = Field(16, ge=1, le=4096, description="worlds stepped together")
    deterministic: bool = Field(True, description="policy mean instead of samples")
    threads: int = Field(1, ge=1, le=256, description="torch CPU threads")
    print_json: bool = Field(False, alias="json", description="print the metrics as one "
                             "JSON object (override key: json)")
    output_dir: str = Field("outputs/eval_agent", description="metrics.json, metrics.png")
    plot: bool = True
    progress: bool = True
    env: CrowdEnvConfig = Field(default_factory=CrowdEnvConfig, description="the env; its "
                                "crowd section is used only when crowd is true")

