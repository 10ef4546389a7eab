"""SMPL-X model files: the genders they come in and their file names.

The one home of :data:`GENDERS`; the body model, the procedural generator, the motion data
and the demos all read it from here.
"""

from __future__ import annotations

__all__ = ["GENDERS", "model_filename"]

#: Genders of the SMPL-X model files, in file order (neutral, male, female).
GENDERS: tuple[str, ...] = ("neutral", "male", "female")


def model_filename(gender: str) -> str:
    """SMPL-X's file name for ``gender`` (``"SMPLX_NEUTRAL.npz"`` ...).

    Raises:
        ValueError: ``gender`` is not one of :data:`GENDERS`.
    """
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {', '.join(GENDERS)}; got {gender!r}")
    return f"SMPLX_{gender.upper()}.npz"
