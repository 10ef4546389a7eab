"""Human-human collisions of one world in one env step (pure NumPy, vectorised).

Every human is a vertical cylinder of radius ``r`` (m) around its pelvis axis, so two
humans collide when their pelvis positions, projected onto the floor plane, are *strictly*
closer than ``2 r``. The rule, as the envs report it (``info["human_collisions"]``,
``info["human_collisions_total"]``):

* **Once per step.** A step is one motion primitive of ``F`` frames; a pair counts at most
  once per step, if it is closer than ``2 r`` in *any* of those frames. A pair that stays
  in contact for ``k`` steps counts ``k`` times (the total is a count of pair-steps in
  contact, not of distinct encounters).
* **Touching is not colliding.** A floor distance of exactly ``2 r`` does not count.
* **Pairs, unordered.** Humans ``i < j`` make one pair; a human never collides with itself.
* **Finished humans stand still.** An inactive human (its episode over: at its goal, or
  failed) does not move; its frames of the step are replaced by its resting position
  ``rest``, so it remains an obstacle the others can walk into. Without ``rest`` an
  inactive human is left out of the count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["colliding_pairs", "count_collisions"]


def _floor(x: np.ndarray, name: str, ndim: int) -> np.ndarray:
    """``x[..., :2]`` of a ``(..., 2)`` or ``(..., 3)`` array with ``ndim`` axes (m)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim or a.shape[-1] not in (2, 3):
        want = "(N, F, 2) or (N, F, 3)" if ndim == 3 else "(N, 2) or (N, 3)"
        raise ValueError(f"{name} must have shape {want}; got {a.shape}")
    return a[..., :2]


def colliding_pairs(positions: np.ndarray, active: np.ndarray | None, radius: float,
                    rest: np.ndarray | None = None) -> np.ndarray:
    """Which pairs of humans collide in one step (see the module docstring for the rule).

    Args:
        positions: ``(N, F, 2)`` floor-plane or ``(N, F, 3)`` world pelvis positions of
            ``N`` humans over the step's ``F`` frames (m; only x and y are used).
        active: ``(N,)`` bool, humans still moving; None: all of them.
        radius: cylinder radius ``r`` (m); a pair collides below ``2 r``.
        rest: ``(N, 2)`` or ``(N, 3)`` resting pelvis position of each human (m), used for
            the inactive ones; None: inactive humans are ignored.

    Returns:
        ``(N, N)`` bool, symmetric, False on the diagonal: ``[i, j]`` is True when humans
        ``i`` and ``j`` come strictly closer than ``2 r`` in some frame.

    Raises:
        ValueError: a shape does not match or ``radius`` is negative.
    """
    p = _floor(positions, "positions", 3)
    n = p.shape[0]
    if p.shape[1] < 1:
        raise ValueError("positions must have at least one frame; got shape "
                         f"{np.shape(positions)}")
    act = np.ones(n, bool) if active is None else np.asarray(active, bool)
    if act.shape != (n,):
        raise ValueError(f"active must have shape ({n},); got {act.shape}")
    if not radius >= 0.0:
        raise ValueError(f"radius must be >= 0; got {radius}")
    keep = np.ones(n, bool)
    if rest is None:
        keep = act
    else:
        still = _floor(rest, "rest", 2)
        if still.shape[0] != n:
            raise ValueError(f"rest must have {n} rows; got {still.shape[0]}")
        p = np.where(act[:, None, None], p, still[:, None])
    d = np.linalg.norm(p[:, None] - p[None], axis=-1).min(-1)  # (N, N) closest over frames
    close = d < 2.0 * radius
    close &= keep[:, None] & keep[None]
    np.fill_diagonal(close, False)
    return close


def count_collisions(positions: np.ndarray, active: np.ndarray | None, radius: float,
                     rest: np.ndarray | None = None) -> int:
    """Number of colliding pairs of humans in one step: the unordered pairs ``i < j`` of
    :func:`colliding_pairs` (same arguments; 0 for fewer than two humans)."""
    close = colliding_pairs(positions, active, radius, rest)
    return int(np.triu(close, 1).sum())
