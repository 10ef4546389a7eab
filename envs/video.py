"""``RecordVideo``: Gymnasium's video recorder, writing MP4 with egosim's own dependencies.

``gymnasium.wrappers.RecordVideo`` writes through moviepy, which egosim does not depend on
(moviepy 2 pins ``pillow < 12``), and with ``render_mode="rgb_array_list"`` it keeps only the
last frame of each ``render()`` list. :class:`RecordVideo` takes the same arguments and
triggers, but keeps *every* frame of a list and writes the file with imageio-ffmpeg
(H.264, written atomically). Under the envs' ``rgb_array_list`` mode a step renders all 18
frames of its motion primitive, so the video plays the motion at 40 fps::

    import gymnasium as gym
    from egosim.envs.video import RecordVideo

    env = RecordVideo(gym.make("egosim/EgoLocomotion-v0", render_mode="rgb_array_list"),
                      video_folder="videos", episode_trigger=lambda ep: True)

Video files: ``<video_folder>/<name_prefix>-episode-<k>.mp4`` (or ``-step-<k>``), at the
env's ``metadata["render_fps"]`` (40 in ``rgb_array_list`` mode, 1 / 0.45 s in
``rgb_array`` mode) unless ``fps`` is given.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RecordVideo as _GymRecordVideo

__all__ = ["RecordVideo"]


class RecordVideo(_GymRecordVideo):
    """``gymnasium.wrappers.RecordVideo`` without moviepy, keeping every listed frame.

    Args: as ``gymnasium.wrappers.RecordVideo`` (``video_folder``, ``episode_trigger``,
    ``step_trigger``, ``video_length`` in frames, ``name_prefix``, ``fps``,
    ``disable_logger`` (unused: nothing is logged), ``gc_trigger``).

    Raises:
        ValueError: the env's render mode returns no images (None, ``human``, ``ansi``).
    """

    def __init__(self, env: gym.Env, video_folder: str,
                 episode_trigger: Callable[[int], bool] | None = None,
                 step_trigger: Callable[[int], bool] | None = None, video_length: int = 0,
                 name_prefix: str = "rl-video", fps: int | None = None,
                 disable_logger: bool = True,
                 gc_trigger: Callable[[int], bool] | None = lambda episode: True) -> None:
        # Gymnasium's __init__ refuses to run without moviepy; this one sets the same state.
        gym.utils.RecordConstructorArgs.__init__(
            self, video_folder=video_folder, episode_trigger=episode_trigger,
            step_trigger=step_trigger, video_length=video_length, name_prefix=name_prefix,
            fps=fps, disable_logger=disable_logger, gc_trigger=gc_trigger)
        gym.Wrapper.__init__(self, env)
        if env.render_mode in {None, "human", "ansi"}:
            raise ValueError(f"render mode is {env.render_mode!r}, which returns no images; "
                             "make the env with render_mode='rgb_array_list' (every 40-fps "
                             "frame) or 'rgb_array' (one frame per step)")
        if episode_trigger is None and step_trigger is None:
            from gymnasium.utils.save_video import capped_cubic_video_schedule

            episode_trigger = capped_cubic_video_schedule
        self.episode_trigger = episode_trigger
        self.step_trigger = step_trigger
        self.disable_logger = disable_logger
        self.gc_trigger = gc_trigger
        self.video_folder = os.path.abspath(video_folder)
        os.makedirs(self.video_folder, exist_ok=True)
        self.frames_per_sec = fps if fps is not None else self.metadata.get("render_fps", 30)
        self.name_prefix = name_prefix
        self._video_name = None
        self.video_length = video_length if video_length != 0 else float("inf")
        self.recording = False
        self.recorded_frames = []
        self.render_history = []
        self.step_id = -1
        self.episode_id = -1

    def _capture_frame(self) -> None:
        """Append the env's frame, or every frame of its ``rgb_array_list``, to the video."""
        assert self.recording, "cannot capture a frame: no recording was started"
        frame = self.env.render()
        frames = frame if isinstance(frame, list) else [frame]
        if isinstance(frame, list):
            self.render_history += frame
        for f in frames:
            if not isinstance(f, np.ndarray):
                self.stop_recording()
                gym.logger.warn(f"recording stopped: render() returned {type(f).__name__}, "
                                "not an image")
                return
            self.recorded_frames.append(f)

    def stop_recording(self) -> None:
        """Write the recorded frames to ``<video_folder>/<name>.mp4`` (atomically)."""
        assert self.recording, "stop_recording was called, but no recording was started"
        if not self.recorded_frames:
            gym.logger.warn("ignored saving a video: no frames were recorded")
        else:
            import imageio.v2 as imageio

            from egosim.atomic_io import atomic_path

            path = os.path.join(self.video_folder, f"{self._video_name}.mp4")
            with atomic_path(path) as tmp:
                writer = imageio.get_writer(tmp, fps=float(self.frames_per_sec),
                                            macro_block_size=1)
                try:
                    for f in self.recorded_frames:
                        writer.append_data(np.asarray(f, np.uint8))
                finally:
                    writer.close()
        self.recorded_frames = []
        self.recording = False
        self._video_name = None
        if self.gc_trigger and self.gc_trigger(self.episode_id):
            gc.collect()
