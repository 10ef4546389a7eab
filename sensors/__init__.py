"""Sensors: ray casting, camera specs, head rigs, renderers, gaze and noise models.

Knows triangles and poses, nothing about humans or tasks (never imports ``egosim.envs``).
"""

from egosim.sensors.raycast import RayCaster, RayHits

__all__ = ["RayCaster", "RayHits"]
