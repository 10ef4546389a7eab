"""Sensors: ray casting, camera specs, head rigs, renderers, gaze and noise models.

Knows triangles and poses, nothing about humans or tasks (never imports ``egosim.envs``).
"""

from egosim.sensors.camera import (
    check_poses,
    intrinsics_matrix,
    pixel_rays,
    project,
    sensor_extrinsic,
    unproject,
)
from egosim.sensors.gaze import EyeModel, GazeTrack, gaze_points_2d, simulate_gaze
from egosim.sensors.head_recorder import HeadRecorder, HeadRecording
from egosim.sensors.lighting import Lighting
from egosim.sensors.raycast import RayCaster, RayHits
from egosim.sensors.renderer import BACKENDS, Renderer
from egosim.sensors.rig import (
    HeadRig,
    aria_fisheye_spec,
    default_rgbd_specs,
    egogen_depth_spec,
    egogen_rgb_spec,
    head_frame,
)
from egosim.sensors.scene_contract import DynamicMesh, SceneArrays, SceneLike
from egosim.sensors.shapes import SimpleScene, box_triangles, capsule_triangles
from egosim.sensors.spec import (
    MODALITIES,
    PROJECTIONS,
    CameraSpec,
    DepthNoise,
    IntrinsicsJitter,
    MotionBlur,
)
from egosim.sensors.trajectory import canonicalize, pose_velocity, resample_poses

__all__ = [
    "BACKENDS",
    "MODALITIES",
    "PROJECTIONS",
    "CameraSpec",
    "DepthNoise",
    "DynamicMesh",
    "EyeModel",
    "GazeTrack",
    "HeadRecorder",
    "HeadRecording",
    "HeadRig",
    "IntrinsicsJitter",
    "Lighting",
    "MotionBlur",
    "RayCaster",
    "RayHits",
    "Renderer",
    "SceneArrays",
    "SceneLike",
    "SimpleScene",
    "aria_fisheye_spec",
    "box_triangles",
    "canonicalize",
    "capsule_triangles",
    "check_poses",
    "default_rgbd_specs",
    "egogen_depth_spec",
    "egogen_rgb_spec",
    "gaze_points_2d",
    "head_frame",
    "intrinsics_matrix",
    "pixel_rays",
    "pose_velocity",
    "project",
    "resample_poses",
    "sensor_extrinsic",
    "simulate_gaze",
    "unproject",
]
