"""The ports the domain needs from the outside, and the shipped fakes for them.

``AuditSink`` is implemented for real by ``station.storage.audit`` (a hash-chained append-only log)
and by ``RecordingAuditSink`` here, for tests and the demo. The clock port lives in
``station.core.clock``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from station.core.clock import Clock
from station.core.cpr import is_cpr_shaped, looks_like_cpr

__all__ = ["AuditAction", "AuditEntry", "AuditSink", "RecordingAuditSink"]


class AuditAction(StrEnum):
    """The audit trail's action names. Stored as their string values; never rename one."""

    # Access to personal data.
    UNLOCK = "unlock"
    UNLOCK_FAILED = "unlock_failed"
    LOCK = "lock"
    RECORD_OPENED = "record_opened"
    RECORD_CREATED = "record_created"
    RECORD_CHANGED = "record_changed"
    RECORD_DELETED = "record_deleted"
    RECORD_PURGED = "record_purged"
    EXPORT = "export"
    # The call.
    CHECK_STARTED = "check_started"
    CHECK_PASSED = "check_passed"
    CHECK_CANCELLED = "check_cancelled"
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    WRAP_UP_STARTED = "wrap_up_started"
    WRAP_UP_FINISHED = "wrap_up_finished"
    # Administration.
    REMOTE_COMMAND = "remote_command"
    STAFF_ENROLLED = "staff_enrolled"
    STAFF_REMOVED = "staff_removed"
    CONFIG_APPLIED = "config_applied"


@runtime_checkable
class AuditSink(Protocol):
    """Where the station writes who did what. Never blocks for long; never holds personal data.

    ``staff`` and ``resident`` are pseudonymous ids (the staff member's id, the resident's
    random id), never names or CPR numbers. ``action`` is an ``AuditAction`` value (a
    ``str``); ``outcome`` is a short machine word such as ``"ok"``, ``"button"``,
    ``"wrong_pin"``.
    """

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        """Append one entry to the audit trail."""
        ...


@dataclass(frozen=True)
class AuditEntry:
    """One entry a ``RecordingAuditSink`` kept."""

    action: str
    staff: str | None
    resident: str | None
    outcome: str
    at: datetime | None = None


class RecordingAuditSink:
    """An ``AuditSink`` that keeps entries in a list: the shipped fake for tests and the demo.

    Stricter than the real log on purpose: it refuses anything shaped like a CPR number in
    any field, so a test catches personal data on its way into the audit trail.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self.entries: list[AuditEntry] = []

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        """Keep the entry (timestamped when a clock was given)."""
        # Ids are random hex, which can hold ten digits in a row by chance: for them only
        # the whole value is checked. Action and outcome are words: any CPR-like run is wrong.
        ids_bad = any(v is not None and is_cpr_shaped(v) for v in (staff, resident))
        words_bad = any(looks_like_cpr(v) for v in (action, outcome))
        if ids_bad or words_bad:
            raise ValueError("audit entry refused: a field looks like a CPR number")
        at = self._clock.now() if self._clock is not None else None
        self.entries.append(AuditEntry(str(action), staff, resident, outcome, at))

    def actions(self) -> list[str]:
        """The recorded action names, in order."""
        return [entry.action for entry in self.entries]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self.entries.clear()
