"""What the staff UI hands the call engine for one call: who is waiting (personal data).

stationd is blind: these values arrive in the call-start request, are forwarded to the hub
(the GP's waiting room) and the data channel (who is in front of the camera), live only in
the running call's memory, and are never stored or logged. Every personal field is kept out of
``repr()``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["WaitingResident"]

# The hub refuses control characters (they could rewrite the GP page's layout); refusing them
# here gives the staff UI the clear error instead of a failed call.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


def _text(value: str) -> str:
    if _CONTROL_BUT_NEWLINE.search(value):
        raise ValueError("control characters are not allowed")
    return value


class WaitingResident(BaseModel):
    """One resident waiting for the GP: exactly what the GP's waiting room shows."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    display_name: Annotated[str, AfterValidator(_single_line)] = Field(
        min_length=1, max_length=120, repr=False
    )
    birth_date: date | None = Field(default=None, repr=False)
    room: Annotated[str, AfterValidator(_single_line)] | None = Field(
        default=None, max_length=40, repr=False
    )
    reason: Annotated[str, AfterValidator(_text)] | None = Field(
        default=None, max_length=500, repr=False
    )

    def for_hub(self) -> dict[str, Any]:
        """The hub's ``Resident`` JSON (the waiting room)."""
        return self.model_dump(mode="json", exclude_none=True)
