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
left_scene       the pelvis is outside the scene at the end of the primitive: over no
                 floor (``Scene.has_floor`` False) and not over a wall or furniture inside
                 the building (``Scene.in_footprint`` False): it walked out through a wall
                 (the motion prior does not collide with walls), off the grid, or off the
                 walkable level (``floor_level``)
truncation       ``max_steps`` primitives taken without any of the above
===============  ==========================================================================

The first three end a human's episode (terminated); truncation ends the world's. Each ending
has a name (:data:`END_REASONS`), in that order of precedence within one step: ``success``,
``penetration``, ``left_scene``, ``time_limit`` (:func:`end_reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Route", "sample_episode", "episode_end", "episode_outcome", "end_reasons",
           "world_end_reason", "Outcome", "END_REASONS", "yaw_towards"]

#: Why a human's (or a world's) episode ended, as ``info["end_reason"]`` names it.
END_REASONS: tuple[str, ...] = ("success", "left_scene", "penetration", "time_limit")


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


@dataclass
class Outcome:
    """How one step ended for each of ``N`` humans (see the module table).

    Attributes:
        success: ``(N,)`` bool, reached the goal.
        penetration: ``(N,)`` bool, strict-mode penetration (never with success).
        left_scene: ``(N,)`` bool, pelvis outside the scene (never with the two above).
        truncated: the step limit was reached.
    """

    success: np.ndarray
    penetration: np.ndarray
    left_scene: np.ndarray
    truncated: bool

    @property
    def failed(self) -> np.ndarray:
        """``(N,)`` bool: penetration or left the scene."""
        return self.penetration | self.left_scene


def episode_outcome(goal_dist: np.ndarray, max_pen_per_frame: np.ndarray, steps: int,
                    success_radius: float, strict: bool, limit: int, max_steps: int,
                    on_floor: np.ndarray | None = None) -> Outcome:
    """Per-human episode end of one step (see the module table).

    Args:
        goal_dist: ``(N,)`` smallest floor-plane pelvis -> final goal distance over the
            primitive's frames (m).
        max_pen_per_frame: ``(N,)`` largest estimated penetrating-vertex count of a frame.
        steps: primitives taken in this episode so far (after this step).
        on_floor: ``(N,)`` bool, the pelvis is inside the scene at the end of the step
            (``Scene.in_footprint``); None: everyone is.
    """
    success = np.asarray(goal_dist) < success_radius
    pen = (np.asarray(max_pen_per_frame) >= limit) & ~success if strict \
        else np.zeros_like(success)
    left = np.zeros_like(success) if on_floor is None \
        else ~np.asarray(on_floor, bool) & ~success & ~pen
    return Outcome(success, pen, left, bool(steps >= max_steps))


def episode_end(goal_dist: np.ndarray, max_pen_per_frame: np.ndarray, steps: int,
                success_radius: float, strict: bool, limit: int, max_steps: int,
                on_floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """:func:`episode_outcome` as ``(success (N,) bool, failed (N,) bool, truncated)``;
    ``failed`` is penetration or leaving the scene."""
    out = episode_outcome(goal_dist, max_pen_per_frame, steps, success_radius, strict, limit,
                          max_steps, on_floor)
    return out.success, out.failed, out.truncated


def end_reasons(outcome: Outcome, active: np.ndarray) -> list[str | None]:
    """``(N,)`` reason each human *active before the step* stopped in it (None: it goes
    on; stopped humans get None too): ``success``, ``penetration``, ``left_scene``, then
    ``time_limit`` when the step limit was reached."""
    out: list[str | None] = []
    for i, a in enumerate(np.asarray(active, bool)):
        if not a:
            out.append(None)
        elif outcome.success[i]:
            out.append("success")
        elif outcome.penetration[i]:
            out.append("penetration")
        elif outcome.left_scene[i]:
            out.append("left_scene")
        else:
            out.append("time_limit" if outcome.truncated else None)
    return out


def world_end_reason(reasons: list[str | None], terminated: bool, truncated: bool
                     ) -> str | None:
    """The reason a world's episode ended, from its humans' ``reasons`` (over the whole
    episode): ``time_limit`` on truncation; when every human has stopped, ``success`` if
    they all succeeded, else the failure of the first human (by index) that failed; None
    while it runs."""
    if truncated:
        return "time_limit"
    if not terminated:
        return None
    return next((r for r in reasons if r not in (None, "success")), "success")
