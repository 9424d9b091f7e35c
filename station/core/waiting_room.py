"""The GP's waiting room as the station and the GP page share it: who is waiting, who is on
camera now.

The staff UI sends the residents to stationd in the call's start request
(``stationapi.models``); the station seals :class:`WaitingInfo` and :class:`CurrentResident`
for the GP page with the key in the GP link (:mod:`station.keys.room_seal`) and sends the
current resident on the data channel; the GP's page opens and shows them
(``hub/static/gp.js``; a test holds the page's field names to these models). The hub only
relays the sealed boxes and never imports this module (an import contract). It sits in the
domain's core, the bottom layer: pydantic only, nothing else.

Personal data (a resident's name, birth date, room, reason) appears only in
:class:`WaitingResident` and :class:`CurrentResident`: their fields are kept out of ``repr()``
and their inputs out of validation errors, so a stray log never prints them. Control
characters are refused (they could rewrite the GP page's layout or a terminal); newlines only
in the free-text reason.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from station.core.text import SingleLine, Text

__all__ = [
    "MAX_RESIDENTS",
    "CurrentResident",
    "WaitingInfo",
    "WaitingResident",
]

#: The most residents one call (a round) shows the GP.
MAX_RESIDENTS: Final = 20

_PERSONAL = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class WaitingResident(BaseModel):
    """One resident waiting for the GP: exactly what the waiting room shows, nothing more."""

    model_config = _PERSONAL

    display_name: SingleLine = Field(min_length=1, max_length=120, repr=False)
    birth_date: date | None = Field(default=None, repr=False)
    room: SingleLine | None = Field(default=None, max_length=40, repr=False)
    reason: Text | None = Field(default=None, max_length=500, repr=False)

    def for_hub(self) -> dict[str, Any]:
        """The JSON the station sends (fields it does not know are left out)."""
        return self.model_dump(mode="json", exclude_none=True)


class WaitingInfo(BaseModel):
    """The residents waiting for this call: one, or several in order for a round."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    residents: list[WaitingResident] = Field(min_length=1, max_length=MAX_RESIDENTS)


class CurrentResident(BaseModel):
    """Which resident of a round is in front of the camera now."""

    model_config = _PERSONAL

    display_name: SingleLine = Field(min_length=1, max_length=120, repr=False)
    position: int = Field(ge=1, le=MAX_RESIDENTS)
    of: int = Field(ge=1, le=MAX_RESIDENTS)
