"""What the blind store holds: clear metadata, and sealed blobs it cannot read.

Field names and event kinds are clear metadata, so they come from fixed sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from station.core.model import ConsultationType, QueueEntryStatus

__all__ = [
    "ENTRY_FIELDS",
    "SEALED_EVENT_KINDS",
    "Clinic",
    "Consultation",
    "ConsultationStatus",
    "Note",
    "QueueEntry",
    "SealedEvent",
    "UpcomingConsultation",
]

#: The sealed fields a queue entry may carry. Field names are clear metadata, so they come
#: from this fixed set: a free-form name could itself leak something ("note_for_Jensen").
ENTRY_FIELDS: Final = frozenset({"display_name", "birth_date", "room", "cpr", "note", "reason"})

#: Kinds of what stationd seals to the vault's public key while locked. The kind is clear
#: metadata, so it comes from a fixed set; extend it here when stationd records more.
SEALED_EVENT_KINDS: Final = frozenset(
    {
        "call_started",
        "call_ended",
        "call_failed",
        "call_reconnected",
        "gp_message",
        "staff_called",
        "resident_in_view",
    }
)


class ConsultationStatus(StrEnum):
    """Where a booked consultation is in its life."""

    BOOKED = "booked"
    IN_CALL = "in_call"
    ENDED = "ended"
    #: Set only by :meth:`BlindStore.mark_documented`; starts the retention clock.
    DOCUMENTED = "documented"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Clinic:
    """A GP clinic the station may call: business data, kept in clear."""

    id: str
    name: str
    #: The clinic's provider number ("ydernummer").
    provider_number: str
    #: The clinic's video room at the rendezvous (an id or URL given by the configuration).
    video_room: str


@dataclass(frozen=True, slots=True)
class Consultation:
    """A booked appointment with a GP clinic: clear metadata only, no personal data."""

    id: str
    clinic_id: str
    starts_at: datetime
    ends_at: datetime
    consultation_type: ConsultationType
    status: ConsultationStatus
    created_at: datetime
    documented_at: datetime | None


@dataclass(frozen=True, slots=True)
class UpcomingConsultation:
    """What the lock screen may show of a coming consultation: its times and its clinic."""

    starts_at: datetime
    ends_at: datetime
    clinic_id: str
    clinic_name: str


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One resident in a consultation's queue: clear position and status, sealed fields."""

    id: str
    consultation_id: str
    position: int
    status: QueueEntryStatus
    #: Field name (from :data:`ENTRY_FIELDS`) to sealed blob; kept out of repr.
    sealed: Mapping[str, bytes] = field(repr=False, hash=False)


@dataclass(frozen=True, slots=True)
class Note:
    """A wrap-up note for the care record (EOJ); the body is sealed."""

    id: str
    consultation_id: str
    entry_id: str | None
    created_at: datetime
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """Something stationd recorded while locked, sealed to the vault's public key."""

    id: str
    consultation_id: str
    created_at: datetime
    kind: str
    blob: bytes = field(repr=False)
