"""The rendezvous API's request and response bodies (pydantic; FastAPI derives OpenAPI from them).

Personal data (a resident's name, birth date, room, reason) appears only in
:class:`Resident` and :class:`CurrentResident`; their fields are kept out of ``repr()`` so a
stray log of a model never prints them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "FINAL_STATES",
    "MAX_GENERATION",
    "MAX_VERSION",
    "AdmitResponse",
    "AnswerBody",
    "CandidateBody",
    "CreatedRoom",
    "CurrentResident",
    "ErrorBody",
    "GpLanguage",
    "GpRoomView",
    "Notice",
    "OfferBody",
    "OfferView",
    "PostedOffer",
    "Resident",
    "RoomCreate",
    "RoomState",
    "SessionDescriptionView",
    "StationRoomView",
    "WaitingInfo",
]

# Control characters would let a name rewrite the page's layout or a terminal; newlines are
# allowed only in the free-text reason.
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


SingleLine = Annotated[str, AfterValidator(_single_line)]
Text = Annotated[str, AfterValidator(_text)]


class RoomState(StrEnum):
    """Where a room is in its life; ``ended``, ``revoked`` and ``expired`` are final."""

    BOOKED = "booked"  # created for a booked appointment; the station has not called in yet
    WAITING = "waiting"  # the station posted its offer and waits for the GP to admit it
    ADMITTED = "admitted"  # the GP admitted the station; the call is set up or running
    ENDED = "ended"
    REVOKED = "revoked"
    EXPIRED = "expired"


#: Offer generations and versions stay far inside SQLite's 64-bit integers.
MAX_GENERATION = 2**31
MAX_VERSION = 2**62

FINAL_STATES = frozenset({RoomState.ENDED, RoomState.REVOKED, RoomState.EXPIRED})


class GpLanguage(StrEnum):
    """The GP page's language."""

    DA = "da"
    EN = "en"


class Resident(BaseModel):
    """Who is waiting: exactly what the station sends for this call, and nothing more."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: SingleLine = Field(min_length=1, max_length=120, repr=False)
    birth_date: date | None = Field(default=None, repr=False)
    room: SingleLine | None = Field(default=None, max_length=40, repr=False)
    reason: Text | None = Field(default=None, max_length=500, repr=False)


class WaitingInfo(BaseModel):
    """The residents waiting for this call: one, or several in order for a round."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    residents: list[Resident] = Field(min_length=1, max_length=20)


class CurrentResident(BaseModel):
    """Which resident of a round is in front of the camera now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    display_name: SingleLine = Field(min_length=1, max_length=120, repr=False)
    position: int = Field(ge=1, le=20)
    of: int = Field(ge=1, le=20)


class RoomCreate(BaseModel):
    """The station's request for a room: only for a booked appointment or round."""

    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    language: GpLanguage = GpLanguage.DA


class CreatedRoom(BaseModel):
    """The new room and the GP's link (the link is shown once; the hub keeps only its hash)."""

    room_id: str
    gp_url: str
    starts_at: datetime
    ends_at: datetime
    valid_from: datetime
    valid_until: datetime


class OfferBody(BaseModel):
    """The station's complete offer (ICE gathered), with who is waiting for this call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["offer"]
    sdp: str
    waiting: WaitingInfo | None = None


class PostedOffer(BaseModel):
    """The generation the offer got: the station waits for the answer to exactly this one."""

    generation: int
    version: int


class AnswerBody(BaseModel):
    """The GP page's answer to one offer generation (ICE gathered, or bounded wait)."""

    model_config = ConfigDict(extra="forbid")

    generation: int = Field(ge=1, le=MAX_GENERATION)
    type: Literal["answer"]
    sdp: str


class CandidateBody(BaseModel):
    """One trickled ICE candidate from the GP page (``candidate`` empty: end of candidates)."""

    model_config = ConfigDict(extra="forbid")

    generation: int = Field(ge=1, le=MAX_GENERATION)
    candidate: str = Field(max_length=512)
    sdpMid: str | None = Field(default=None, max_length=32)  # the WebRTC name
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=64)  # the WebRTC name


class PrivateNotice(BaseModel):
    """Staff have left the room: the call is private now."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["private"]


class StaffPresentNotice(BaseModel):
    """Staff are back in the room."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["staff_present"]


class CurrentResidentNotice(CurrentResident):
    """A round moved on to the next resident (same shape as the data-channel message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["current_resident"]


Notice = Annotated[
    PrivateNotice | StaffPresentNotice | CurrentResidentNotice, Field(discriminator="type")
]


class SessionDescriptionView(BaseModel):
    """An SDP with the offer generation it belongs to."""

    generation: int
    type: Literal["offer", "answer"]
    sdp: str


class OfferView(SessionDescriptionView):
    """The station's offer as the admitted GP page receives it."""


class StationRoomView(BaseModel):
    """The room as the station sees it (no waiting info: the station sent that itself)."""

    room_id: str
    state: RoomState
    version: int
    offer_generation: int
    answer: SessionDescriptionView | None
    gp_candidate_count: int
    gp_admitted: bool
    end_reason: str | None
    #: The admitted GP page said it was being closed and has not been seen since.
    gp_left: bool = False
    #: Seconds since the admitted GP page last reached the hub (its long-polls repeat every
    #: few seconds during a call); None before admission. The station asks for it when it
    #: hears nothing from the GP, to tell "the GP's network is gone" from its own trouble.
    gp_seen_seconds_ago: float | None = None


class GpRoomView(BaseModel):
    """The room as the GP page sees it."""

    state: RoomState
    version: int
    starts_at: datetime
    ends_at: datetime
    valid_until: datetime
    language: GpLanguage
    waiting: WaitingInfo | None
    current_resident: CurrentResident | None
    private: bool
    admitted_by_you: bool
    admitted_elsewhere: bool
    offer: OfferView | None
    ice_servers: list[dict[str, object]]
    media_watchdog_seconds: float


class AdmitResponse(BaseModel):
    """The admitted browser's session (sent back as ``X-GP-Session``) and the room."""

    session: str
    room: GpRoomView


class ErrorBody(BaseModel):
    """Every API error: English ``error``, stable ``code``."""

    error: str
    code: str
