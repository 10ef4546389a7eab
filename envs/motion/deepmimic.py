"""DeepMimic ``humanoid3d_*.txt`` motion files shipped with ``pybullet_data``.

File format (JSON): ``{"Loop": "wrap" | "none", "Frames": [[44 numbers], ...]}``. One row:

====== ===== =============================================================
index  size  meaning
====== ===== =============================================================
0      1     duration of this key frame (s); the row's time is the sum of the
             durations of the rows before it
1-3    3     root position (m, humanoid world frame, y up)
4-7    4     root rotation, quaternion ``(w, x, y, z)`` (world)
8-11   4     chest (relative to root)
12-15  4     neck (relative to chest)
16-19  4     right hip (relative to root)
20     1     right knee angle (rad, about the local ``+z`` axis; flexion < 0)
21-24  4     right ankle
25-28  4     right shoulder (relative to chest)
29     1     right elbow angle (rad, about ``+z``; flexion > 0)
30-33  4     left hip
34     1     left knee
35-38  4     left ankle
39-42  4     left shoulder
43     1     left elbow
====== ===== =============================================================

Humanoid frame (found from the data and the URDF): ``+x`` forward (the root travels along
``+x`` in ``walk``), ``+y`` up, ``+z`` the body's RIGHT (the right hip sits at ``+z``). Every
link frame is aligned with its parent at rest, and the rest pose stands upright with the
arms hanging DOWN. Units are metres: pybullet's DeepMimic code loads
``humanoid/humanoid.urdf`` at scale 0.25, so the URDF offsets are multiplied by 0.25
(:func:`urdf_skeleton`), giving a hip-to-ankle leg of 0.83 m and a standing root height of
0.88 m, which the root heights in the files match.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from egosim.envs.motion.rotations_numpy import (
    quat_normalize,
    quat_to_rotvec,
    rotvec_to_matrix,
    wxyz_to_xyzw,
)

__all__ = [
    "URDF_SCALE",
    "SPHERICAL_JOINTS",
    "REVOLUTE_JOINTS",
    "DeepMimicMotion",
    "UrdfJoint",
    "motions_dir",
    "list_motions",
    "load_motion",
    "parse_motion",
    "urdf_skeleton",
    "forward_kinematics",
]

#: Scale at which pybullet's DeepMimic code loads ``humanoid/humanoid.urdf``.
URDF_SCALE: float = 0.25
#: Spherical (quaternion) joints after the root, in file order.
SPHERICAL_JOINTS: tuple[str, ...] = (
    "chest", "neck", "right_hip", "right_ankle", "right_shoulder",
    "left_hip", "left_ankle", "left_shoulder",
)
#: Revolute (one angle about local ``+z``) joints, in file order.
REVOLUTE_JOINTS: tuple[str, ...] = ("right_knee", "right_elbow", "left_knee", "left_elbow")

# (name, kind, width) of the 44 columns after the duration, in file order
_LAYOUT: tuple[tuple[str, str], ...] = (
    ("root_pos", "pos"), ("root_rot", "quat"), ("chest", "quat"), ("neck", "quat"),
    ("right_hip", "quat"), ("right_knee", "angle"), ("right_ankle", "quat"),
    ("right_shoulder", "quat"), ("right_elbow", "angle"), ("left_hip", "quat"),
    ("left_knee", "angle"), ("left_ankle", "quat"), ("left_shoulder", "quat"),
    ("left_elbow", "angle"),
)
_WIDTH = {"pos": 3, "quat": 4, "angle": 1}
_ROW = 1 + sum(_WIDTH[k] for _, k in _LAYOUT)  # 44


@dataclass(frozen=True)
class DeepMimicMotion:
    """A parsed DeepMimic clip (humanoid frame: x forward, y up, z right; metres, seconds).

    Attributes:
        name: clip name (``"walk"`` for ``humanoid3d_walk.txt``).
        loop: ``"wrap"`` (cyclic) or ``"none"``.
        times: ``(T,)`` key-frame times (s), starting at 0.
        root_pos: ``(T, 3)`` root (hip centre) position (m).
        root_rot: ``(T, 4)`` root rotation quaternions, xyzw, humanoid world frame.
        rotations: joint name -> ``(T, 4)`` xyzw quaternion relative to the parent link.
        angles: revolute joint name -> ``(T,)`` angle (rad) about the local ``+z`` axis.
    """

    name: str
    loop: str
    times: np.ndarray
    root_pos: np.ndarray
    root_rot: np.ndarray
    rotations: dict[str, np.ndarray] = field(default_factory=dict)
    angles: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        """Number of key frames ``T``."""
        return int(self.times.shape[0])

    @property
    def duration(self) -> float:
        """Clip length (s): time of the last key frame."""
        return float(self.times[-1])

    def root_rotvec(self) -> np.ndarray:
        """Root rotation as axis-angle ``(T, 3)`` (rad)."""
        return quat_to_rotvec(self.root_rot)

    def looped(self, cycles: int) -> DeepMimicMotion:
        """Repeat a cyclic clip ``cycles`` times, continuing its travel.

        As in pybullet's DeepMimic code, each repetition is shifted by the horizontal root
        offset (x, z) between the last and the first key frame (no extra rotation); the last
        key frame of a cycle (a copy of the first) is dropped.

        Raises:
            ValueError: ``cycles < 1``.
        """
        if int(cycles) < 1:
            raise ValueError(f"cycles must be >= 1; got {cycles!r}")
        if cycles == 1 or self.num_frames < 2:
            return self
        step = self.root_pos[-1] - self.root_pos[0]
        step[1] = 0.0
        period = self.times[-1]
        n = self.num_frames - 1
        times, pos, rot = [], [], []
        for c in range(cycles):
            sl = slice(0, n + 1 if c == cycles - 1 else n)
            times.append(self.times[sl] + c * period)
            pos.append(self.root_pos[sl] + c * step)
            rot.append(self.root_rot[sl])
        return replace(
            self,
            name=f"{self.name}_x{cycles}",
            times=np.concatenate(times),
            root_pos=np.concatenate(pos),
            root_rot=np.concatenate(rot),
            rotations={k: np.concatenate([v[:n]] * (cycles - 1) + [v]) for k, v in
                       self.rotations.items()},
            angles={k: np.concatenate([v[:n]] * (cycles - 1) + [v]) for k, v in
                    self.angles.items()},
        )


def motions_dir() -> Path:
    """Folder ``pybullet_data/data/motions`` of the installed ``pybullet`` package."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def list_motions() -> list[str]:
    """Names of the shipped humanoid clips (``humanoid3d_<name>.txt``), sorted."""
    return sorted(p.stem[len("humanoid3d_"):] for p in motions_dir().glob("humanoid3d_*.txt"))


def parse_motion(data: dict, name: str = "motion") -> DeepMimicMotion:
    """Parse the JSON object of a DeepMimic humanoid file (see the module table).

    Raises:
        ValueError: missing ``Frames``, rows not of 44 numbers, or negative durations.
    """
    if "Frames" not in data:
        raise ValueError(f"DeepMimic motion {name!r} has no 'Frames' field")
    frames = np.asarray(data["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != _ROW or frames.shape[0] < 1:
        raise ValueError(f"DeepMimic motion {name!r}: 'Frames' must be rows of {_ROW} numbers; "
                         f"got shape {frames.shape}")
    dur = frames[:, 0]
    if np.any(dur < 0):
        raise ValueError(f"DeepMimic motion {name!r} has negative frame durations")
    times = np.concatenate([[0.0], np.cumsum(dur[:-1])])
    col = 1
    parts: dict[str, np.ndarray] = {}
    for key, kind in _LAYOUT:
        w = _WIDTH[kind]
        block = frames[:, col:col + w]
        col += w
        if kind == "quat":
            block = quat_normalize(wxyz_to_xyzw(block))
        elif kind == "angle":
            block = block[:, 0]
        parts[key] = block
    loop = str(data.get("Loop", "none"))
    return DeepMimicMotion(
        name=name, loop=loop, times=times, root_pos=parts["root_pos"],
        root_rot=parts["root_rot"],
        rotations={k: parts[k] for k in SPHERICAL_JOINTS},
        angles={k: parts[k] for k in REVOLUTE_JOINTS},
    )


def load_motion(name_or_path: str | Path) -> DeepMimicMotion:
    """Load a shipped clip by name (``"walk"``) or a DeepMimic humanoid file by path.

    Raises:
        FileNotFoundError: unknown name (the message lists the shipped names) or path.
    """
    p = Path(name_or_path)
    if p.suffix != ".txt":
        p = motions_dir() / f"humanoid3d_{name_or_path}.txt"
        if not p.is_file():
            raise FileNotFoundError(f"no shipped DeepMimic clip {name_or_path!r}; "
                                    f"available: {', '.join(list_motions())}")
    if not p.is_file():
        raise FileNotFoundError(f"DeepMimic motion file not found: {p}")
    name = p.stem[len("humanoid3d_"):] if p.stem.startswith("humanoid3d_") else p.stem
    with open(p) as f:
        return parse_motion(json.load(f), name=name)


@dataclass(frozen=True)
class UrdfJoint:
    """A joint of the DeepMimic humanoid URDF (offsets already scaled to metres).

    Attributes:
        name: joint (and child link) name.
        kind: ``"fixed"``, ``"spherical"`` or ``"revolute"``.
        parent: parent joint name (``None`` for the root).
        offset: ``(3,)`` position in the parent's frame at rest (m).
    """

    name: str
    kind: str
    parent: str | None
    offset: np.ndarray


@lru_cache(maxsize=1)
def urdf_skeleton() -> tuple[UrdfJoint, ...]:
    """Joints of ``pybullet_data/humanoid/humanoid.urdf`` at :data:`URDF_SCALE`, parents first."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"
    root = ET.fromstring(path.read_bytes().replace(b"\x00", b""))
    link_of: dict[str, str] = {}
    out: list[UrdfJoint] = []
    for j in root.iter("joint"):
        parent_link = j.find("parent").get("link")
        child_link = j.find("child").get("link")
        xyz = np.array([float(v) for v in j.find("origin").get("xyz").split()]) * URDF_SCALE
        parent = link_of.get(parent_link)
        name = j.get("name")
        out.append(UrdfJoint(name=name, kind=j.get("type"), parent=parent, offset=xyz))
        link_of[child_link] = name
    return tuple(out)


def forward_kinematics(motion: DeepMimicMotion) -> dict[str, np.ndarray]:
    """World positions of the humanoid's joints (m, humanoid frame, y up).

    Returns:
        joint name -> ``(T, 3)``, for every URDF joint (``root`` is the root position,
        ``right_wrist``/``left_wrist`` are the hands).
    """
    t = motion.num_frames
    glob_r: dict[str, np.ndarray] = {}
    glob_p: dict[str, np.ndarray] = {}
    for j in urdf_skeleton():
        if j.parent is None:
            glob_r[j.name] = rotvec_to_matrix(quat_to_rotvec(motion.root_rot))
            glob_p[j.name] = motion.root_pos.copy()
            continue
        pr, pp = glob_r[j.parent], glob_p[j.parent]
        glob_p[j.name] = pp + pr @ j.offset
        if j.kind == "spherical":
            local = rotvec_to_matrix(quat_to_rotvec(motion.rotations[j.name]))
        elif j.kind == "revolute":
            ang = motion.angles[j.name]
            local = rotvec_to_matrix(np.stack([np.zeros(t), np.zeros(t), ang], -1))
        else:
            local = np.broadcast_to(np.eye(3), (t, 3, 3))
        glob_r[j.name] = pr @ local
    return glob_p
