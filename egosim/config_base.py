"""The base of every config schema: unknown keys are errors, assignments are validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """A pydantic model that forbids unknown keys and validates on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
