"""The goal-reaching task: start/goal sampling, waypoint routes, termination and truncation.

A :class:`Route` is the walkable path ``Scene.plan_path(start, goal)`` (world frame, metres,
points at most 0.1 m apart). The policy is steered by the *current target*: the route point
``lookahead`` metres (along the route, default 1.5 m) past the route point nearest to the
pelvis; on the last ``lookahead`` metres it is the final goal. Long routes around furniture
and through doorways are thus given as a moving waypoint, as EgoGen does.

Episode end (:func:`episode_end`), per human:

===============  ==========================================================================
event            rule
===============  ==========================================================================
success          pelvis within ``success_radius`` (0.3 m) of the FINAL goal, floor plane,
                 in any of the primitive's 18 frames (40 fps: the walker does not have to
                 stop exactly on a primitive boundary)
penetration      ``penetration_mode: strict`` and >= ``penetration_limit`` (40) estimated
                 penetrating body vertices in one frame of the primitive
truncation       ``max_steps`` primitives taken without either of the above
===============  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Route", "sample_episode", "episode_end", "yaw_towards"]


@dataclass
class Route:
    """A walkable polyline from start to goal and the walker's place along it.

    Attributes:
        points: ``(N, 3)`` route points (m, world, z on the floor), ``points[-1]`` the goal.
        arclen: ``(N,)`` cumulative length along the route (m), ``arclen[0] = 0``.
        lookahead: target distance ahead of the walker along the route (m).
        index: route point nearest to the pelvis so far (never moves backwards by more than
            the search window, so the walker cannot skip a loop of the route).
    """

    points: np.ndarray
    arclen: np.ndarray
    lookahead: float
    index: int = 0

    @classmethod
    def from_points(cls, points: np.ndarray, lookahead: float) -> Route:
        """Route through ``points (N, 3)`` (N >= 1)."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        seg = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1)
        return cls(p, np.concatenate([[0.0], np.cumsum(seg)]), float(lookahead))

    @property
    def goal(self) -> np.ndarray:
        """``(3,)`` the final goal (m, world, on the floor)."""
        return self.points[-1]

    @property
    def length(self) -> float:
        """Total route length (m)."""
        return float(self.arclen[-1])

    def update(self, pelvis_xy: np.ndarray, window: float = 3.0) -> None:
        """Move :attr:`index` to the route point nearest ``pelvis_xy (2,)``, searched from
        ``window`` metres behind to ``window`` metres ahead of the current index."""
        s = self.arclen[self.index]
        lo = int(np.searchsorted(self.arclen, s - window, side="left"))
        hi = int(np.searchsorted(self.arclen, s + window, side="right"))
        d = np.linalg.norm(self.points[lo:hi, :2] - pelvis_xy[None], axis=1)
        self.index = lo + int(np.argmin(d))

    def target_index(self) -> int:
        """Index of the current target point (:attr:`lookahead` past :attr:`index`)."""
        s = self.arclen[self.index] + self.lookahead
        return min(int(np.searchsorted(self.arclen, s, side="left")), len(self.points) - 1)

    def target(self) -> np.ndarray:
        """``(3,)`` the current target point (m, world, on the floor)."""
        return self.points[self.target_index()]

    def remaining(self, pelvis_xy: np.ndarray) -> float:
        """Distance still to walk (m): pelvis -> current target (floor plane) plus the route
        from the target to the goal. Used by the progress reward; continuous when the target
        advances along a straight route."""
        j = self.target_index()
        return float(np.linalg.norm(self.points[j, :2] - pelvis_xy) + self.length
                     - self.arclen[j])


def yaw_towards(a: np.ndarray, b: np.ndarray) -> float:
    """Heading (rad, counter-clockwise from +x) of the floor-plane direction ``a -> b``."""
    d = np.asarray(b, np.float64)[:2] - np.asarray(a, np.float64)[:2]
    return float(np.arctan2(d[1], d[0]))


def sample_episode(scene, rng: np.random.Generator, num: int, min_dist: float,
                   max_dist: float, metric: str, lookahead: float,
                   min_separation: float = 0.0, tries: int = 64
                   ) -> list[Route]:
    """Sample ``num`` start/goal pairs on the walk map and plan their routes.

    Args:
        scene: an :class:`egosim.envs.scenes.Scene`.
        rng: the episode's generator.
        num: humans; starts (and goals) are at least ``min_separation`` apart (floor plane).
        min_dist, max_dist: start-goal distance (m) measured with ``metric``.
        metric: ``"geodesic"`` or ``"euclidean"`` (see ``Scene.sample_start_goal``).
        lookahead: see :class:`Route`.

    Raises:
        ValueError: no layout found in ``tries`` attempts (names the constraints).
    """
    routes: list[Route] = []
    for _ in range(tries * num):
        if len(routes) == num:
            break
        start, goal = scene.sample_start_goal(rng, min_dist, max_dist, metric=metric)
        if any(np.linalg.norm(r.points[0, :2] - start[:2]) < min_separation
               or np.linalg.norm(r.goal[:2] - goal[:2]) < min_separation for r in routes):
            continue
        routes.append(Route.from_points(scene.plan_path(start, goal), lookahead))
    if len(routes) < num:
        raise ValueError(f"could not place {num} humans with start-goal distance in "
                         f"[{min_dist}, {max_dist}] m and separation >= {min_separation} m in "
                         f"scene {scene.name!r}; lower crowd.num_humans or "
                         "crowd.min_separation, or use a larger scene")
    return routes


def episode_end(goal_dist: np.ndarray, max_pen_per_frame: np.ndarray, steps: int,
                success_radius: float, strict: bool, limit: int, max_steps: int
                ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-human episode end (see the module table).

    Args:
        goal_dist: ``(N,)`` smallest floor-plane pelvis -> final goal distance over the
            primitive's frames (m).
        max_pen_per_frame: ``(N,)`` largest estimated penetrating-vertex count of a frame.
        steps: primitives taken in this episode so far (after this step).

    Returns:
        ``(success (N,) bool, failed (N,) bool, truncated bool)``.
    """
    success = goal_dist < success_radius
    failed = (max_pen_per_frame >= limit) & ~success if strict else np.zeros_like(success)
    return success, failed, steps >= max_steps
