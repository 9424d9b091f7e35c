"""The station's domain: GP clinics, residents, appointments and the round's queue.

Value objects (``GpClinic``, ``Resident`` and its identities, ``QueueEntry``) are frozen and
validate themselves; the one deliberately mutable thing is an appointment's ``Queue``, which
changes through named operations that check every status change.

Personal fields (names, birth dates, rooms, notes, reasons, CPR numbers) never appear in a
``repr()`` or an error's ``str()``: both end up in logs. Ids are random and opaque; a CPR
number is never one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

from station.core import ids
from station.core.cpr import Cpr
from station.core.errors import CoreError

__all__ = [
    "DEFAULT_EARLY_START",
    "MAX_APPOINTMENT_DURATION",
    "MAX_QUEUE_LENGTH",
    "Appointment",
    "AppointmentError",
    "ConsultationType",
    "DomainError",
    "GpClinic",
    "IllegalStatusChange",
    "InvalidValue",
    "Queue",
    "QueueEntry",
    "QueueEntryStatus",
    "QueueError",
    "Resident",
    "ResidentIdentity",
    "WithCpr",
    "WithoutCpr",
    "check_opaque_id",
    "new_id",
]

#: A call may start this long before the booked time (staff set up, the GP may be early).
DEFAULT_EARLY_START: Final = timedelta(minutes=15)
#: Longer than any booked GP slot, a long nursing-home round included; longer is a typo.
MAX_APPOINTMENT_DURATION: Final = timedelta(hours=4)
#: More residents than fit in one GP slot is a mistake, not a round.
MAX_QUEUE_LENGTH: Final = 30
#: No one living is older; an earlier birth date is a typo.
MAX_AGE_YEARS: Final = 130
MAX_NAME_LENGTH: Final = 200
MAX_ROOM_LENGTH: Final = 50
MAX_NOTE_LENGTH: Final = 2000
MAX_REASON_LENGTH: Final = 500

_ROOM_REF_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class DomainError(CoreError):
    """Base of the domain's errors: bad values and illegal operations."""

    default_user_message = "Handlingen kunne ikke udføres."


class InvalidValue(DomainError, ValueError):
    """A value given to the domain is not acceptable (the Danish message says which and why)."""


class AppointmentError(DomainError):
    """An appointment is not bookable as given, or not callable now."""


class QueueError(DomainError):
    """A queue operation is not possible in the queue's current state."""


class IllegalStatusChange(QueueError):
    """A queue entry's status cannot change that way (e.g. DONE back to WAITING)."""


def new_id() -> str:
    """A fresh random opaque id. Never derive an id from personal data."""
    return ids.new_id()


def check_opaque_id(value: object, what: str) -> str:
    """Return ``value`` if it is a usable opaque id, else raise ``InvalidValue``.

    Ids appear in logs and the audit trail, so they are short ASCII tokens and never shaped
    like a CPR number.
    """
    if not isinstance(value, str) or not ids.is_opaque_id(value):
        raise InvalidValue(
            f"{what} id rejected: must be an opaque ASCII token, 1-64 characters, not all "
            "digits and never a CPR number",
            "Der opstod en intern fejl (ugyldigt id). Kontakt IT, hvis det sker igen.",
        )
    return value


def _clean_text(
    value: object, *, field_en: str, field_da: str, max_length: int, multiline: bool = False
) -> str:
    """Normalise (NFC, stripped) and validate a free-text field; the error never quotes it."""
    if not isinstance(value, str):
        raise InvalidValue(f"{field_en} rejected: not text", f"{field_da} skal være tekst.")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidValue(f"{field_en} rejected: empty", f"{field_da} skal udfyldes.")
    if len(text) > max_length:
        raise InvalidValue(
            f"{field_en} rejected: longer than {max_length} characters",
            f"{field_da} må højst være {max_length} tegn.",
        )
    allowed = {"\n", "\t"} if multiline else set()
    # Category C: control, format (e.g. bidi overrides that make names read differently),
    # surrogates, private use and unassigned code points.
    if any(unicodedata.category(ch).startswith("C") and ch not in allowed for ch in text):
        raise InvalidValue(
            f"{field_en} rejected: contains control characters",
            f"{field_da} indeholder tegn, der ikke kan bruges.",
        )
    return text


def _optional_text(
    value: object, *, field_en: str, field_da: str, max_length: int, multiline: bool = False
) -> str | None:
    """Like ``_clean_text``, but ``None`` or blank text means "not given"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _clean_text(
        value, field_en=field_en, field_da=field_da, max_length=max_length, multiline=multiline
    )


def _check_birth_date(value: object, *, today: date | None = None) -> date:
    """A plausible birth date for a living resident: not in the future, not over 130 years ago."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidValue(
            "birth date rejected: not a date", "Fødselsdatoen skal være en dato (DD-MM-ÅÅÅÅ)."
        )
    # UTC plus a day: Danish local time is ahead of UTC, so "today" in Denmark can be
    # tomorrow in UTC; a station clock a little off must not refuse a newborn.
    today = today or (datetime.now(UTC).date() + timedelta(days=1))
    if value > today:
        raise InvalidValue(
            "birth date rejected: in the future", "Fødselsdatoen kan ikke ligge i fremtiden."
        )
    if value.year < today.year - MAX_AGE_YEARS:
        raise InvalidValue(
            "birth date rejected: implausibly old",
            f"Fødselsdatoen ligger mere end {MAX_AGE_YEARS} år tilbage. Kontrollér årstallet.",
        )
    return value


class ConsultationType(StrEnum):
    """The kind of call, as MedCom distinguishes them (recorded with the consultation)."""

    #: Staff set the call up and may leave; GP and resident talk.
    VIDEO_CONSULTATION = "video_consultation"
    #: Staff take part and help the resident.
    ASSISTED_CONSULTATION = "assisted_consultation"
    #: GP, staff and resident (at least three parties) discuss the case.
    VIDEO_CONFERENCE = "video_conference"

    @property
    def label_da(self) -> str:
        """The Danish name shown to staff."""
        return _CONSULTATION_LABELS_DA[self]


_CONSULTATION_LABELS_DA: Final = {
    ConsultationType.VIDEO_CONSULTATION: "Videokonsultation",
    ConsultationType.ASSISTED_CONSULTATION: "Assisteret videokonsultation",
    ConsultationType.VIDEO_CONFERENCE: "Videokonference",
}


@dataclass(frozen=True)
class GpClinic:
    """A GP clinic the station may call, as IT's signed configuration lists it.

    ``provider_number`` is the clinic's "ydernummer" from the national provider register
    (Yderregisteret). It is six digits, written with leading zeros (MedCom's FHIR profiles
    carry it as a string such as "057584" under OID 1.2.208.176.1.4); older systems store
    it as an integer and lose the zeros. So 1-6 digits are accepted and normalised to six;
    seven or more digits is not a provider number.

    ``video_room`` is where the GP joins: a room reference on the hub (a short token) or an
    https URL. Plain http is refused: the link leads to a consultation.
    """

    id: str
    name: str = field(repr=False)
    provider_number: str
    video_room: str = field(repr=False)

    def __post_init__(self) -> None:
        check_opaque_id(self.id, "clinic")
        name = _clean_text(
            self.name, field_en="clinic name", field_da="Klinikkens navn", max_length=200
        )
        object.__setattr__(self, "name", name)
        number = self.provider_number.strip() if isinstance(self.provider_number, str) else ""
        if not (number.isascii() and number.isdigit() and 1 <= len(number) <= 6):
            raise InvalidValue(
                "provider number rejected: must be 1-6 digits",
                "Ydernummeret skal være 6 cifre.",
            )
        object.__setattr__(self, "provider_number", number.zfill(6))
        object.__setattr__(self, "video_room", _check_video_room(self.video_room))


def _check_video_room(value: object) -> str:
    room = value.strip() if isinstance(value, str) else ""
    if not room:
        raise InvalidValue("video room rejected: empty", "Klinikkens videorum mangler.")
    if "://" in room:
        parts = urlsplit(room)
        if parts.scheme != "https" or not parts.hostname or any(ch.isspace() for ch in room):
            raise InvalidValue(
                "video room rejected: a URL must be https with a host",
                "Klinikkens videorum skal være en sikker adresse (https://).",
            )
    elif _ROOM_REF_RE.fullmatch(room) is None:
        raise InvalidValue(
            "video room rejected: not a room reference or https URL",
            "Klinikkens videorum er ikke en gyldig rumreference eller https-adresse.",
        )
    return room


@dataclass(frozen=True, repr=False)
class WithoutCpr:
    """A resident queued without CPR login: name, birth date and room identify them."""

    display_name: str
    birth_date: date
    room: str
    note: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "display_name",
            _clean_text(
                self.display_name, field_en="name", field_da="Navnet", max_length=MAX_NAME_LENGTH
            ),
        )
        _check_birth_date(self.birth_date)
        object.__setattr__(
            self,
            "room",
            _clean_text(
                self.room, field_en="room", field_da="Værelset", max_length=MAX_ROOM_LENGTH
            ),
        )
        object.__setattr__(
            self,
            "note",
            _optional_text(
                self.note,
                field_en="note",
                field_da="Noten",
                max_length=MAX_NOTE_LENGTH,
                multiline=True,
            ),
        )

    def __repr__(self) -> str:
        return "WithoutCpr(<skjult>)"


@dataclass(frozen=True, repr=False)
class WithCpr:
    """A resident queued with CPR login: the validated CPR number identifies them."""

    cpr: Cpr
    display_name: str
    room: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cpr, Cpr):
            raise InvalidValue(
                "resident rejected: cpr must be a parsed Cpr", "CPR-nummeret er ikke gyldigt."
            )
        # A CPR number can be well-formed and still absurd for a living resident
        # (an 1800s birth date, or one in the future).
        _check_birth_date(self.cpr.birth_date)
        object.__setattr__(
            self,
            "display_name",
            _clean_text(
                self.display_name, field_en="name", field_da="Navnet", max_length=MAX_NAME_LENGTH
            ),
        )
        object.__setattr__(
            self,
            "room",
            _optional_text(
                self.room, field_en="room", field_da="Værelset", max_length=MAX_ROOM_LENGTH
            ),
        )
        object.__setattr__(
            self,
            "note",
            _optional_text(
                self.note,
                field_en="note",
                field_da="Noten",
                max_length=MAX_NOTE_LENGTH,
                multiline=True,
            ),
        )

    @property
    def birth_date(self) -> date:
        """The birth date the CPR number encodes."""
        return self.cpr.birth_date

    def __repr__(self) -> str:
        return "WithCpr(<skjult>)"


#: How a resident is identified to the GP: with or without CPR login.
ResidentIdentity = WithoutCpr | WithCpr


@dataclass(frozen=True)
class Resident:
    """A resident of the care home, known to the station by a random id.

    The id is random (use ``Resident.new``); it is what the audit trail and the
    store use, so it is random and never derived from the CPR number or any other field.
    """

    id: str
    identity: ResidentIdentity

    def __post_init__(self) -> None:
        if not ids.is_opaque_id(self.id):
            raise InvalidValue(
                "resident id rejected: must be an opaque id (station.core.ids)",
                "Der opstod en intern fejl (ugyldigt beboer-id). Kontakt IT, hvis det sker igen.",
            )
        if not isinstance(self.identity, WithoutCpr | WithCpr):
            raise InvalidValue(
                "resident rejected: identity must be WithoutCpr or WithCpr",
                "Beboerens oplysninger mangler.",
            )

    @classmethod
    def new(cls, identity: ResidentIdentity) -> Resident:
        """A resident with a fresh random id."""
        return cls(new_id(), identity)

    @property
    def display_name(self) -> str:
        """The name shown to staff and to the GP."""
        return self.identity.display_name

    @property
    def birth_date(self) -> date:
        """The birth date (from the CPR number when logged in with CPR)."""
        return self.identity.birth_date

    @property
    def room(self) -> str | None:
        """The resident's room, if known."""
        return self.identity.room

    @property
    def has_cpr(self) -> bool:
        """Whether the resident was queued with CPR login."""
        return isinstance(self.identity, WithCpr)


class QueueEntryStatus(StrEnum):
    """Where one resident in a consultation's queue is (clear metadata in the blind store)."""

    WAITING = "waiting"
    IN_CALL = "in_call"
    DONE = "done"
    SKIPPED = "skipped"

    @property
    def label_da(self) -> str:
        """The Danish word shown to staff."""
        return _STATUS_LABELS_DA[self]


_STATUS_LABELS_DA: Final = {
    QueueEntryStatus.WAITING: "Venter",
    QueueEntryStatus.IN_CALL: "Hos lægen",
    QueueEntryStatus.DONE: "Færdig",
    QueueEntryStatus.SKIPPED: "Sprunget over",
}

#: The status changes a queue entry allows. DONE is final: a finished consultation is
#: documented as such; if the GP needs the resident again, queue a new entry.
_ALLOWED_STATUS_CHANGES: Final[dict[QueueEntryStatus, frozenset[QueueEntryStatus]]] = {
    QueueEntryStatus.WAITING: frozenset({QueueEntryStatus.IN_CALL, QueueEntryStatus.SKIPPED}),
    # Back to WAITING: "not now, later in the round" (e.g. the resident needs a moment).
    QueueEntryStatus.IN_CALL: frozenset(
        {QueueEntryStatus.DONE, QueueEntryStatus.SKIPPED, QueueEntryStatus.WAITING}
    ),
    QueueEntryStatus.DONE: frozenset(),
    # A skipped resident can be taken straight into the call, or put back in line.
    QueueEntryStatus.SKIPPED: frozenset({QueueEntryStatus.WAITING, QueueEntryStatus.IN_CALL}),
}


@dataclass(frozen=True)
class QueueEntry:
    """One resident's place in a round, with the reason for this consultation."""

    id: str
    resident: Resident
    status: QueueEntryStatus = QueueEntryStatus.WAITING
    reason: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_opaque_id(self.id, "queue entry")
        if not isinstance(self.resident, Resident):
            raise InvalidValue("queue entry rejected: resident missing", "Beboeren mangler.")
        if not isinstance(self.status, QueueEntryStatus):
            raise InvalidValue("queue entry rejected: unknown status")
        object.__setattr__(
            self,
            "reason",
            _optional_text(
                self.reason,
                field_en="reason",
                field_da="Årsagen",
                max_length=MAX_REASON_LENGTH,
                multiline=True,
            ),
        )

    def with_status(self, status: QueueEntryStatus) -> QueueEntry:
        """This entry with a new status, if that change is allowed; else ``IllegalStatusChange``."""
        if status not in _ALLOWED_STATUS_CHANGES[self.status]:
            raise IllegalStatusChange(
                f"queue entry {self.id}: {self.status.value} -> {status.value} is not allowed",
                f"En beboer med status «{self.status.label_da}» kan ikke få status "
                f"«{status.label_da}».",
            )
        return replace(self, status=status)


class Queue:
    """The ordered residents of one booked GP slot: a round when there are several.

    Order is the order staff want the GP to see residents in; ``move`` changes it. At most
    one entry is IN_CALL. "Next resident" is ``advance()``: the resident in front of the
    camera is finished (DONE, or SKIPPED if staff say so) and the first WAITING one in order
    starts. Skipped residents stay in the list and come back with ``unskip``. Entries that
    are IN_CALL or DONE belong to the consultation's history: they cannot be removed.

    Not thread-safe: it lives on stationd's one asyncio loop.
    """

    def __init__(self, entries: tuple[QueueEntry, ...] | list[QueueEntry] = ()) -> None:
        self._entries: list[QueueEntry] = []
        #: Entry ids in the order they left IN_CALL (as DONE or SKIPPED), for ``previous()``.
        self._finished: list[str] = []
        for entry in entries:
            self._append(entry)

    # -- queries ---------------------------------------------------------------------------

    @property
    def entries(self) -> tuple[QueueEntry, ...]:
        """All entries, in queue order."""
        return tuple(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[QueueEntry]:
        return iter(tuple(self._entries))

    def __repr__(self) -> str:
        counts = {s: 0 for s in QueueEntryStatus}
        for entry in self._entries:
            counts[entry.status] += 1
        summary = ", ".join(f"{s.value}={n}" for s, n in counts.items() if n)
        return f"Queue({len(self._entries)} entries{': ' + summary if summary else ''})"

    @property
    def is_round(self) -> bool:
        """True when the slot serves more than one resident (a nursing-home round)."""
        return len(self._entries) > 1

    @property
    def is_finished(self) -> bool:
        """True when nobody is waiting or in the call (skipped residents may remain)."""
        return not any(
            e.status in (QueueEntryStatus.WAITING, QueueEntryStatus.IN_CALL) for e in self._entries
        )

    def get(self, entry_id: str) -> QueueEntry:
        """The entry with ``entry_id``; ``QueueError`` if there is none."""
        return self._entries[self.index_of(entry_id)]

    def index_of(self, entry_id: str) -> int:
        """The position of ``entry_id`` in the queue; ``QueueError`` if it is not there."""
        for index, entry in enumerate(self._entries):
            if entry.id == entry_id:
                return index
        raise QueueError(
            f"queue entry {entry_id!r} not found",
            "Beboeren står ikke længere i køen. Opdatér skærmen.",
        )

    def current(self) -> QueueEntry | None:
        """The resident in the call now, if any."""
        return next((e for e in self._entries if e.status is QueueEntryStatus.IN_CALL), None)

    def next_waiting(self) -> QueueEntry | None:
        """The first WAITING resident in queue order: who comes next."""
        return next((e for e in self._entries if e.status is QueueEntryStatus.WAITING), None)

    def previous(self) -> QueueEntry | None:
        """The resident who most recently left the call (DONE or SKIPPED), if any."""
        return self.get(self._finished[-1]) if self._finished else None

    # -- operations ------------------------------------------------------------------------

    def add(self, resident: Resident, reason: str | None = None) -> QueueEntry:
        """Queue ``resident`` at the end, WAITING. A resident is in a queue at most once."""
        entry = QueueEntry(new_id(), resident, QueueEntryStatus.WAITING, reason)
        self._append(entry)
        return entry

    def _append(self, entry: QueueEntry) -> None:
        if not isinstance(entry, QueueEntry):
            raise InvalidValue("queue rejected: not a QueueEntry")
        if len(self._entries) >= MAX_QUEUE_LENGTH:
            raise QueueError(
                f"queue full ({MAX_QUEUE_LENGTH} entries)",
                f"Der kan højst stå {MAX_QUEUE_LENGTH} beboere i køen til én aftale.",
            )
        if any(e.resident.id == entry.resident.id for e in self._entries):
            raise QueueError("resident already queued", "Beboeren står allerede i køen.")
        if any(e.id == entry.id for e in self._entries):
            raise QueueError("duplicate queue entry id")
        if entry.status is QueueEntryStatus.IN_CALL and self.current() is not None:
            raise QueueError(
                "two entries IN_CALL", "Der kan kun være én beboer hos lægen ad gangen."
            )
        self._entries.append(entry)

    def remove(self, entry_id: str) -> QueueEntry:
        """Take a WAITING or SKIPPED resident out of the queue and return the entry."""
        index = self.index_of(entry_id)
        entry = self._entries[index]
        if entry.status not in (QueueEntryStatus.WAITING, QueueEntryStatus.SKIPPED):
            raise QueueError(
                f"queue entry {entry_id}: cannot remove while {entry.status.value}",
                "En beboer, der er hos lægen eller er færdig, kan ikke fjernes fra køen.",
            )
        del self._entries[index]
        return entry

    def move(self, entry_id: str, new_index: int) -> None:
        """Move a WAITING or SKIPPED resident to ``new_index`` (0 is first); others shift."""
        index = self.index_of(entry_id)
        entry = self._entries[index]
        if entry.status not in (QueueEntryStatus.WAITING, QueueEntryStatus.SKIPPED):
            raise QueueError(
                f"queue entry {entry_id}: cannot move while {entry.status.value}",
                "Kun ventende beboere kan flyttes i køen.",
            )
        if isinstance(new_index, bool) or not 0 <= new_index < len(self._entries):
            raise QueueError(
                f"move to index {new_index} outside 0..{len(self._entries) - 1}",
                "Beboeren kan ikke flyttes dertil.",
            )
        del self._entries[index]
        self._entries.insert(new_index, entry)

    def start(self, entry_id: str) -> QueueEntry:
        """Put a WAITING (or SKIPPED) resident in the call; only one is in the call at a time."""
        current = self.current()
        if current is not None and current.id != entry_id:
            raise QueueError(
                "another entry is already IN_CALL",
                "Der er allerede en beboer hos lægen. Afslut eller spring over først.",
            )
        return self._set_status(entry_id, QueueEntryStatus.IN_CALL)

    def finish_current(self) -> QueueEntry:
        """The resident in the call is done; returns the DONE entry."""
        current = self._require_current()
        return self._set_status(current.id, QueueEntryStatus.DONE)

    def skip(self, entry_id: str) -> QueueEntry:
        """Skip a WAITING resident, or the one in the call; they stay listed as SKIPPED."""
        return self._set_status(entry_id, QueueEntryStatus.SKIPPED)

    def unskip(self, entry_id: str) -> QueueEntry:
        """Bring a SKIPPED resident back to WAITING, at their place in the queue."""
        return self._set_status(entry_id, QueueEntryStatus.WAITING)

    def return_current(self) -> QueueEntry:
        """Send the resident in the call back to WAITING ("later in the round")."""
        current = self._require_current()
        return self._set_status(current.id, QueueEntryStatus.WAITING)

    def advance(self, outcome: QueueEntryStatus = QueueEntryStatus.DONE) -> QueueEntry | None:
        """Next resident: finish the current one as ``outcome`` and start the next waiting.

        ``outcome`` is DONE (default) or SKIPPED. With nobody in the call, this just starts
        the first waiting resident. Returns the new current entry, or ``None`` when nobody
        is waiting (the round is over, apart from skipped residents).
        """
        if outcome not in (QueueEntryStatus.DONE, QueueEntryStatus.SKIPPED):
            raise QueueError(f"advance outcome must be DONE or SKIPPED, not {outcome.value}")
        current = self.current()
        if current is not None:
            self._set_status(current.id, outcome)
        following = self.next_waiting()
        return self.start(following.id) if following is not None else None

    def _require_current(self) -> QueueEntry:
        current = self.current()
        if current is None:
            raise QueueError("no entry is IN_CALL", "Der er ingen beboer hos lægen lige nu.")
        return current

    def _set_status(self, entry_id: str, status: QueueEntryStatus) -> QueueEntry:
        index = self.index_of(entry_id)
        before = self._entries[index]
        after = before.with_status(status)
        self._entries[index] = after
        if before.status is QueueEntryStatus.IN_CALL and status in (
            QueueEntryStatus.DONE,
            QueueEntryStatus.SKIPPED,
        ):
            self._finished.append(entry_id)
        return after


@dataclass(frozen=True, eq=False)
class Appointment:
    """A booked GP slot: date, time and length agreed with the GP, and who is to be seen.

    There is no ad-hoc calling of a GP, so ``starts_at`` must be a timezone-aware moment.
    The booking fields are frozen (a new time is a new booking); the ``queue`` is the round
    and changes as it runs. Equality is identity: two bookings are never "the same".
    """

    id: str
    clinic_id: str
    starts_at: datetime
    duration: timedelta
    consultation_type: ConsultationType
    reason: str | None = field(default=None, repr=False)
    queue: Queue = field(default_factory=Queue)

    def __post_init__(self) -> None:
        check_opaque_id(self.id, "appointment")
        check_opaque_id(self.clinic_id, "clinic")
        if (
            not isinstance(self.starts_at, datetime)
            or self.starts_at.tzinfo is None
            or self.starts_at.utcoffset() is None
        ):
            raise AppointmentError(
                "appointment rejected: starts_at must be a timezone-aware datetime",
                "Et opkald kræver en aftale med lægen med dato og klokkeslæt. "
                "Angiv aftalens tidspunkt.",
            )
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            raise AppointmentError(
                "appointment rejected: duration must be positive",
                "Aftalens varighed skal være mere end 0 minutter.",
            )
        if self.duration > MAX_APPOINTMENT_DURATION:
            hours = int(MAX_APPOINTMENT_DURATION.total_seconds() // 3600)
            raise AppointmentError(
                f"appointment rejected: duration over {hours} h",
                f"En aftale kan højst vare {hours} timer. Kontrollér varigheden.",
            )
        if not isinstance(self.consultation_type, ConsultationType):
            raise AppointmentError(
                "appointment rejected: unknown consultation type", "Vælg konsultationstype."
            )
        if not isinstance(self.queue, Queue):
            raise AppointmentError("appointment rejected: queue must be a Queue")
        object.__setattr__(
            self,
            "reason",
            _optional_text(
                self.reason,
                field_en="reason",
                field_da="Årsagen",
                max_length=MAX_REASON_LENGTH,
                multiline=True,
            ),
        )

    @property
    def ends_at(self) -> datetime:
        """The end of the booked slot."""
        return self.starts_at + self.duration

    @property
    def is_round(self) -> bool:
        """True when several residents are queued for this slot."""
        return self.queue.is_round

    def window(self, early: timedelta = DEFAULT_EARLY_START) -> tuple[datetime, datetime]:
        """When a call may run: from ``early`` before the start to the end of the slot."""
        if early < timedelta(0):
            raise AppointmentError("early start must not be negative")
        return self.starts_at - early, self.ends_at

    def has_someone_waiting(self) -> bool:
        """True while a resident is waiting or in front of the camera."""
        return self.queue.next_waiting() is not None or self.queue.current() is not None

    def is_callable_at(self, now: datetime, early: timedelta = DEFAULT_EARLY_START) -> bool:
        """Whether a call may start at ``now`` (timezone-aware): inside ``window(early)``."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise AppointmentError("is_callable_at needs a timezone-aware time")
        opens, closes = self.window(early)
        return opens <= now < closes
