"""The ports the domain needs from the outside.

``AuditSink`` is implemented by ``station.storage.audit`` (a hash-chained append-only log);
the session's tests record into a list instead. The clock port lives in ``station.core.clock``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["AuditAction", "AuditSink"]


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
