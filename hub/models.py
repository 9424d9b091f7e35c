"""The rendezvous API's request and response bodies (pydantic; FastAPI derives OpenAPI from them).

No model here holds personal data. Who is waiting and who is on camera now reach the hub as
:class:`SealedBox` es the station sealed with a key only the GP link's fragment carries
(:mod:`station.keys.room_seal`); the hub stores and relays them and cannot open them. What is
inside is the waiting room's contract between the station and the GP page
(:mod:`station.core.waiting_room`), which the hub does not import.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "FINAL_STATES",
    "MAX_GENERATION",
    "MAX_VERSION",
    "AdmitResponse",
    "AnswerBody",
    "CandidateBody",
    "CreatedRoom",
    "CurrentResidentNotice",
    "ErrorBody",
    "GpLanguage",
    "GpRoomView",
    "Notice",
    "OfferBody",
    "OfferView",
    "PostedOffer",
    "PrivateNotice",
    "RoomCreate",
    "RoomState",
    "SealedBox",
    "SessionDescriptionView",
    "StaffPresentNotice",
    "StationRoomView",
    "StationSession",
]


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
    #: The short code for the GP to type at ``gp_code_url`` (read over the phone).
    gp_code: str | None = None
    gp_code_url: str | None = None
    starts_at: datetime
    ends_at: datetime
    valid_from: datetime
    valid_until: datetime
    #: This call's TURN servers with short-lived credentials (coturn REST scheme); empty when
    #: the hub has no TURN secret.
    ice_servers: list[dict[str, object]] = []


class StationSession(BaseModel):
    """A rendezvous session token, issued for a request signed with the station's identity."""

    token: str
    expires_at: datetime
    station_id: str


class SealedBox(BaseModel):
    """Something the station sealed for the GP page: ``v1.`` and base64url, opaque to the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The largest round the station accepts (20 residents, every field at its longest in
    #: 4-byte characters) seals to ~72 kB (tests/unit/test_room_seal.py); a usual one to 4 kB.
    sealed: str = Field(min_length=40, max_length=96_000, pattern=r"^v1\.[A-Za-z0-9_-]+$")


class PrivateNotice(BaseModel):
    """Staff have left the room: the call is private now."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["private"]


class StaffPresentNotice(BaseModel):
    """Staff are back in the room."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["staff_present"]


class CurrentResidentNotice(SealedBox):
    """A round moved on to the next resident (sealed: name and position)."""

    type: Literal["current_resident"]


#: What the station posts to the hub during a call (the data channel's copy, for the GP page).
Notice = Annotated[
    PrivateNotice | StaffPresentNotice | CurrentResidentNotice, Field(discriminator="type")
]


class OfferBody(BaseModel):
    """The station's complete offer (ICE gathered), with who is waiting for this call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["offer"]
    sdp: str
    waiting: SealedBox | None = None


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
    #: This call's TURN servers with short-lived credentials (empty once the room is over).
    ice_servers: list[dict[str, object]] = []


class GpRoomView(BaseModel):
    """The room as the GP page sees it."""

    state: RoomState
    version: int
    starts_at: datetime
    ends_at: datetime
    valid_until: datetime
    language: GpLanguage
    waiting: SealedBox | None
    current_resident: SealedBox | None
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


# stationapi.models has an ErrorBody too: stationd's errors also carry a Danish
# ``user_message`` for the person at the station (and a retry time), the hub's are read by
# programs (the station's clients, the GP page) and IT. Two APIs, two bodies.
class ErrorBody(BaseModel):
    """Every API error: English ``error``, stable ``code``."""

    error: str
    code: str
