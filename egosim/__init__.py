"""egosim: egocentric virtual humans in 3D indoor scenes, as Gymnasium environments.

Importing ``egosim`` is cheap: heavy assets (scenes, bodies, models) are built lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

from egosim.envs.registration import register_envs as _register_envs  # noqa: E402

_register_envs()  # egosim/EgoLocomotion-v0, egosim/EgoCrowd-v0 (string entry points)
