"""egosim: egocentric virtual humans in 3D indoor scenes, as Gymnasium environments.

Importing ``egosim`` is cheap: heavy assets (scenes, bodies, models) are built lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

__import__("egosim.envs.registration", fromlist=["register_envs"]).register_envs()
