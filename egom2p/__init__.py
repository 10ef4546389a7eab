"""EgoM2P: multimodal masked pretraining on clips streamed from the envs (being built).

Imports ``egosim.envs`` and ``egosim.sensors``, never ``egosim.agents``.
"""
