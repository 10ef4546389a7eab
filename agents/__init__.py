"""What acts in the EgoGen worlds.

Modules (imported on demand; importing ``egosim.agents`` stays light):

* :mod:`egosim.agents.policy` -- ``EgoGenExtractor``: features for stable-baselines3's
  actor-critic (marker-history GRU, ego-sensing MLP, sinusoidal distance/time codes).
* :mod:`egosim.agents.train` -- ``run_train(TrainAgentConfig)``: imitation warm start, PPO
  with EgoGen's settings in two stages (soft, then strict penetration), validation-based
  checkpoint selection, TensorBoard, checkpoints and resume.
* :mod:`egosim.agents.imitation` -- ``dagger``: behaviour cloning (one iteration) or DAgger
  from the privileged sampling planner (the student sees only its observation).
* :mod:`egosim.agents.evaluate` -- ``run_eval(EvalAgentConfig)``: success, time to goal,
  penetration, foot skating, floor contact, human collisions; table, PNG, JSON.
* :mod:`egosim.agents.scripted` -- ``SamplingController``: a privileged sampling planner
  (baseline and imitation teacher).

The shipped policy is ``agents/checkpoints/ppo_locomotion.zip`` (model card beside it).
"""
