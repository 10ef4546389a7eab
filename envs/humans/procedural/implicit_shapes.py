"""Implicit primitives (round cones and ellipsoids) that sculpt the procedural body.

Every primitive is owned by one SMPL-X joint (the bone it rides on) and belongs to a blend
group. Inside a group the signed distances are combined by a log-sum-exp smooth union with
the group's blend radius ``k`` (large on the trunk, tiny between the fingers); groups are
then combined with a smaller blend. Coordinates are *floor coordinates* of the canonical
SMPL-X frame (metres, ``+y`` up, ``+x`` left, ``+z`` forward, soles at ``y = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egosim.envs.humans.skeleton import FINGER_NAMES, design_point, joint_index

__all__ = ["Primitive", "GROUP_BLEND", "COMBINE_BLEND", "body_primitives", "signed_distance"]

#: Smooth-union blend radius (m) inside each group.
GROUP_BLEND: dict[str, float] = {"body": 0.018, "left_hand": 0.0022, "right_hand": 0.0022}
#: Blend radius (m) used to join the groups (forearm to palm).
COMBINE_BLEND: float = 0.006


@dataclass(frozen=True)
class Primitive:
    """One implicit primitive.

    Attributes:
        kind: ``"cone"`` (segment ``a -> b`` with radii ``ra -> rb``, a capsule when equal)
            or ``"ellipsoid"`` (axis-aligned, centre ``a``, radii ``radii``).
        a: ``(3,)`` first end point or centre (m, floor coordinates).
        b: ``(3,)`` second end point (cones; equals ``a`` for ellipsoids).
        ra: radius at ``a`` (m, cones).
        rb: radius at ``b`` (m, cones).
        radii: ``(3,)`` semi-axes along x, y, z (m, ellipsoids).
        owner: index of the SMPL-X joint whose bone moves this piece of the body.
        group: blend group name (a key of :data:`GROUP_BLEND`).
    """

    kind: str
    a: np.ndarray
    b: np.ndarray
    ra: float
    rb: float
    radii: np.ndarray
    owner: int
    group: str

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds ``(lo, hi)``, each ``(3,)`` (m), of the primitive's solid."""
        if self.kind == "cone":
            r = max(self.ra, self.rb)
            return np.minimum(self.a, self.b) - r, np.maximum(self.a, self.b) + r
        return self.a - self.radii, self.a + self.radii

    def distance(self, p: np.ndarray) -> np.ndarray:
        """Approximate signed distance (m, negative inside) at points ``p`` of shape ``(..., 3)``.

        Returns an array of shape ``p.shape[:-1]``.
        """
        if self.kind == "cone":
            ab = self.b - self.a
            ap = p - self.a
            t = np.clip((ap @ ab) / float(ab @ ab), 0.0, 1.0)
            closest = self.a + t[..., None] * ab
            return np.linalg.norm(p - closest, axis=-1) - (self.ra + t * (self.rb - self.ra))
        q = (p - self.a) / self.radii
        k0 = np.linalg.norm(q, axis=-1)
        k1 = np.linalg.norm(q / self.radii, axis=-1)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)

    def axis_point(self, p: np.ndarray) -> np.ndarray:
        """Closest point on the primitive's axis (segment or centre) for ``p`` ``(..., 3)``."""
        if self.kind == "cone":
            ab = self.b - self.a
            t = np.clip(((p - self.a) @ ab) / float(ab @ ab), 0.0, 1.0)
            return self.a + t[..., None] * ab
        return np.broadcast_to(self.a, p.shape).copy()

    def mirrored(self) -> Primitive:
        """The same primitive reflected to the other side (``x -> -x``), owner swapped."""
        from egosim.envs.humans.skeleton import JOINT_NAMES

        name = JOINT_NAMES[self.owner]
        if name.startswith("left_"):
            owner = joint_index("right_" + name[5:])
        elif name.startswith("right_"):
            owner = joint_index("left_" + name[6:])
        else:
            owner = self.owner
        m = np.array([-1.0, 1.0, 1.0])
        group = self.group.replace("left", "right") if "left" in self.group else self.group
        return Primitive(self.kind, self.a * m, self.b * m, self.ra, self.rb, self.radii,
                         owner, group)


def _cone(a, b, ra, rb, owner: str, group: str = "body") -> Primitive:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return Primitive("cone", a, b, float(ra), float(rb), np.zeros(3), joint_index(owner), group)


def _ell(c, radii, owner: str, group: str = "body") -> Primitive:
    c = np.asarray(c, dtype=np.float64)
    return Primitive("ellipsoid", c, c.copy(), 0.0, 0.0, np.asarray(radii, dtype=np.float64),
                     joint_index(owner), group)


def _fp(name: str) -> np.ndarray:
    return design_point(name, floor=True)


_FINGER_RADIUS = {"index": 0.0086, "middle": 0.0088, "ring": 0.0083, "pinky": 0.0074}


def _left_hand() -> list[Primitive]:
    g = "left_hand"
    prims = [
        _ell((0.705, 1.394, -0.024), (0.05, 0.0155, 0.041), "left_wrist", g),
        _cone((0.655, 1.397, -0.02), (0.695, 1.395, -0.022), 0.025, 0.022, "left_wrist", g),
    ]
    for f in FINGER_NAMES:
        if f == "thumb":
            continue
        r = _FINGER_RADIUS[f]
        j1, j2, j3, tip = (_fp(f"left_{f}1"), _fp(f"left_{f}2"), _fp(f"left_{f}3"),
                           _fp(f"left_{f}_tip"))
        d = (tip - j3) / np.linalg.norm(tip - j3)
        prims += [
            _cone(j1 - 0.006 * d, j2, r, 0.95 * r, f"left_{f}1", g),
            _cone(j2, j3, 0.95 * r, 0.9 * r, f"left_{f}2", g),
            _cone(j3, tip - 0.85 * r * d, 0.9 * r, 0.85 * r, f"left_{f}3", g),
        ]
    t1, t2, t3, tt = (_fp("left_thumb1"), _fp("left_thumb2"), _fp("left_thumb3"),
                      _fp("left_thumb_tip"))
    dt = (tt - t3) / np.linalg.norm(tt - t3)
    prims += [
        _cone(t1, t2, 0.0125, 0.0108, "left_thumb1", g),
        _cone(t2, t3, 0.0105, 0.0097, "left_thumb2", g),
        _cone(t3, tt - 0.009 * dt, 0.0097, 0.009, "left_thumb3", g),
    ]
    return prims


def _left_and_mid_body() -> tuple[list[Primitive], list[Primitive]]:
    """(midline primitives, left-side primitives) of the trunk, head and limbs."""
    mid = [
        _ell((0.0, 0.925, -0.01), (0.163, 0.115, 0.105), "pelvis"),
        _ell((0.0, 1.07, 0.0), (0.138, 0.13, 0.1), "spine1"),
        _ell((0.0, 1.19, -0.005), (0.148, 0.11, 0.105), "spine2"),
        _ell((0.0, 1.30, 0.0), (0.158, 0.12, 0.11), "spine3"),
        _cone((0.0, 1.42, -0.025), (0.0, 1.56, -0.012), 0.056, 0.05, "neck"),
        _ell((0.0, 1.615, -0.005), (0.075, 0.085, 0.097), "head"),
        _ell((0.0, 1.56, 0.03), (0.058, 0.07, 0.068), "jaw"),
        _ell((0.0, 1.508, 0.066), (0.03, 0.022, 0.026), "jaw"),
        _cone((0.0, 1.598, 0.09), (0.0, 1.566, 0.111), 0.009, 0.013, "head"),
    ]
    left = [
        _ell((0.07, 0.875, -0.055), (0.085, 0.095, 0.075), "pelvis"),
        _cone((0.0, 1.39, -0.018), (0.14, 1.405, -0.02), 0.065, 0.055, "left_collar"),
        _ell((0.165, 1.41, -0.018), (0.06, 0.055, 0.055), "left_shoulder"),
        _ell((0.076, 1.595, -0.008), (0.012, 0.03, 0.018), "head"),
        _cone(_fp("left_shoulder"), _fp("left_elbow"), 0.047, 0.037, "left_shoulder"),
        _cone(_fp("left_elbow"), _fp("left_wrist"), 0.037, 0.026, "left_elbow"),
        _ell((0.50, 1.40, -0.024), (0.075, 0.036, 0.041), "left_elbow"),
        _cone((0.085, 0.90, -0.005), _fp("left_knee"), 0.085, 0.052, "left_hip"),
        _cone(_fp("left_knee"), _fp("left_ankle"), 0.05, 0.033, "left_knee"),
        _ell((0.098, 0.37, -0.025), (0.046, 0.095, 0.05), "left_knee"),
        _ell((0.103, 0.035, 0.035), (0.042, 0.035, 0.11), "left_ankle"),
        _ell((0.10, 0.04, -0.035), (0.032, 0.04, 0.038), "left_ankle"),
        _ell((0.113, 0.022, 0.14), (0.045, 0.022, 0.047), "left_foot"),
    ]
    return mid, left


def body_primitives() -> list[Primitive]:
    """All primitives of the neutral body (floor coordinates), left side mirrored to right."""
    mid, left = _left_and_mid_body()
    left = left + _left_hand()
    return mid + left + [p.mirrored() for p in left]


def _lse(acc: np.ndarray, k: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return -k * np.log(acc)


def signed_distance(points: np.ndarray, prims: list[Primitive] | None = None) -> np.ndarray:
    """Smooth-union signed distance (m, negative inside) of the body at ``points`` ``(N, 3)``.

    Uses the same blend rule as the grid evaluation in :mod:`.meshing`. Returns ``(N,)``.
    """
    prims = body_primitives() if prims is None else prims
    total = np.zeros(len(points))
    for group, k in GROUP_BLEND.items():
        acc = np.zeros(len(points))
        for p in prims:
            if p.group == group:
                acc += np.exp(-np.minimum(p.distance(points), 50 * k) / k)
        total += np.exp(-np.minimum(_lse(acc, k), 50 * COMBINE_BLEND) / COMBINE_BLEND)
    return _lse(total, COMBINE_BLEND)
