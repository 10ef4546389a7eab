"""agents subpackage (see DESIGN.md): what acts in the EgoGen worlds.

Modules (imported on demand; importing ``egosim.agents`` stays light):

* :mod:`egosim.agents.policy` -- ``EgoGenExtractor``: features for stable-baselines3's
  actor-critic (marker-history GRU, ego-sensing MLP, sinusoidal distance/time codes).
* :mod:`egosim.agents.train` -- ``run_train(TrainAgentConfig)``: PPO with EgoGen's settings,
  two stages (soft, then strict penetration), TensorBoard, checkpoints and resume.
* :mod:`egosim.agents.evaluate` -- ``run_eval(EvalAgentConfig)``: success, time to goal,
  penetration, foot skating, floor contact, human collisions; table, PNG, JSON.
* :mod:`egosim.agents.scripted` -- ``SamplingController``: a sampling baseline.

The shipped policy is ``agents/checkpoints/ppo_locomotion.zip`` (model card beside it).
"""
