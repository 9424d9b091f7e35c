"""The station's domain: residents and their identities, consultation types, queue statuses.

Value objects (``Resident`` and its identities) are frozen and validate themselves: the staff
UI builds them from what staff type (and from opened records), so a bad value gets a message
for staff (the catalogue's, Danish by default) before anything is sealed.

Personal fields (names, birth dates, rooms, notes, CPR numbers) never appear in a ``repr()``
or an error's ``str()``: both end up in logs. Ids are random and opaque; a CPR number is never
one.

The round's order and its statuses live in the blind store (``station.storage.store``): stationd
orders and changes them by clear metadata alone, and the session (``station.core.session``)
decides when a call may start from a booked slot's times and statuses.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final

from station.core import ids
from station.core.cpr import Cpr
from station.core.errors import CoreError
from station.i18n import N_, LazyText, translate

__all__ = [
    "DEFAULT_EARLY_START",
    "ConsultationType",
    "DomainError",
    "InvalidValue",
    "QueueEntryStatus",
    "Resident",
    "ResidentIdentity",
    "WithCpr",
    "WithoutCpr",
    "check_opaque_id",
]

#: A call may start this long before the booked time (staff set up, the GP may be early).
DEFAULT_EARLY_START: Final = timedelta(minutes=15)
#: No one living is older; an earlier birth date is a typo.
MAX_AGE_YEARS: Final = 130
MAX_NAME_LENGTH: Final = 200
MAX_ROOM_LENGTH: Final = 50
MAX_NOTE_LENGTH: Final = 2000


class DomainError(CoreError):
    """Base of the domain's errors: bad values and illegal operations."""

    default_user_message = N_("The action could not be carried out.")


class InvalidValue(DomainError, ValueError):
    """A value given to the domain is not acceptable (the message for staff says which and why)."""


def check_opaque_id(value: object, what: str) -> str:
    """Return ``value`` if it is a usable opaque id, else raise ``InvalidValue``.

    Ids appear in logs and the audit trail, so they are short ASCII tokens and never shaped
    like a CPR number.
    """
    if not isinstance(value, str) or not ids.is_opaque_id(value):
        raise InvalidValue(
            f"{what} id rejected: must be an opaque ASCII token, 1-64 characters, not all "
            "digits and never a CPR number",
            N_("An internal error occurred (invalid id). Contact IT if it happens again."),
        )
    return value


def _clean_text(
    value: object, *, field_en: str, field: LazyText, max_length: int, multiline: bool = False
) -> str:
    """Normalise (NFC, stripped) and validate a free-text field; the error never quotes it."""
    if not isinstance(value, str):
        raise InvalidValue(
            f"{field_en} rejected: not text", LazyText("{field} must be text.", field=field)
        )
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidValue(
            f"{field_en} rejected: empty", LazyText("{field} must be filled in.", field=field)
        )
    if len(text) > max_length:
        raise InvalidValue(
            f"{field_en} rejected: longer than {max_length} characters",
            LazyText(
                "{field} may be at most {max_length} characters.",
                field=field,
                max_length=max_length,
            ),
        )
    allowed = {"\n", "\t"} if multiline else set()
    # Category C: control, format (e.g. bidi overrides that make names read differently),
    # surrogates, private use and unassigned code points.
    if any(unicodedata.category(ch).startswith("C") and ch not in allowed for ch in text):
        raise InvalidValue(
            f"{field_en} rejected: contains control characters",
            LazyText("{field} contains characters that cannot be used.", field=field),
        )
    return text


def _optional_text(
    value: object, *, field_en: str, field: LazyText, max_length: int, multiline: bool = False
) -> str | None:
    """Like ``_clean_text``, but ``None`` or blank text means "not given"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _clean_text(
        value, field_en=field_en, field=field, max_length=max_length, multiline=multiline
    )


def _name(value: object) -> str:
    return _clean_text(
        value, field_en="name", field=LazyText("The name"), max_length=MAX_NAME_LENGTH
    )


def _room(value: object) -> str:
    return _clean_text(
        value, field_en="room", field=LazyText("The room"), max_length=MAX_ROOM_LENGTH
    )


def _optional_room(value: object) -> str | None:
    return _optional_text(
        value, field_en="room", field=LazyText("The room"), max_length=MAX_ROOM_LENGTH
    )


def _note(value: object) -> str | None:
    return _optional_text(
        value,
        field_en="note",
        field=LazyText("The note"),
        max_length=MAX_NOTE_LENGTH,
        multiline=True,
    )


def _check_birth_date(value: object, *, today: date | None = None) -> date:
    """A plausible birth date for a living resident: not in the future, not over 130 years ago."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidValue(
            "birth date rejected: not a date",
            N_("The birth date must be a date (DD-MM-YYYY)."),
        )
    # UTC plus a day: Danish local time is ahead of UTC, so "today" in Denmark can be
    # tomorrow in UTC; a station clock a little off must not refuse a newborn.
    today = today or (datetime.now(UTC).date() + timedelta(days=1))
    if value > today:
        raise InvalidValue(
            "birth date rejected: in the future",
            N_("The birth date cannot be in the future."),
        )
    if value.year < today.year - MAX_AGE_YEARS:
        raise InvalidValue(
            "birth date rejected: implausibly old",
            LazyText(
                "The birth date is more than {years} years ago. Check the year.",
                years=MAX_AGE_YEARS,
            ),
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
        """The Danish name (as the care record writes it, whatever the UI's language)."""
        return translate(_CONSULTATION_LABELS[self], "da")


_CONSULTATION_LABELS: Final = {
    ConsultationType.VIDEO_CONSULTATION: N_("Video consultation"),
    ConsultationType.ASSISTED_CONSULTATION: N_("Assisted video consultation"),
    ConsultationType.VIDEO_CONFERENCE: N_("Video conference"),
}


@dataclass(frozen=True, repr=False)
class WithoutCpr:
    """A resident queued without CPR login: name, birth date and room identify them."""

    display_name: str
    birth_date: date
    room: str
    note: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "display_name", _name(self.display_name))
        _check_birth_date(self.birth_date)
        object.__setattr__(self, "room", _room(self.room))
        object.__setattr__(self, "note", _note(self.note))

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
                "resident rejected: cpr must be a parsed Cpr", N_("The CPR number is not valid.")
            )
        # A CPR number can be well-formed and still absurd for a living resident
        # (an 1800s birth date, or one in the future).
        _check_birth_date(self.cpr.birth_date)
        object.__setattr__(self, "display_name", _name(self.display_name))
        object.__setattr__(self, "room", _optional_room(self.room))
        object.__setattr__(self, "note", _note(self.note))

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
                N_(
                    "An internal error occurred (invalid resident "
                    "id). Contact IT if it happens again."
                ),
            )
        if not isinstance(self.identity, WithoutCpr | WithCpr):
            raise InvalidValue(
                "resident rejected: identity must be WithoutCpr or WithCpr",
                N_("The resident's details are missing."),
            )

    @classmethod
    def new(cls, identity: ResidentIdentity) -> Resident:
        """A resident with a fresh random id."""
        return cls(ids.new_id(), identity)

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
