"""The ports the domain needs from the outside, and the words stationd and the hardware share.

``AuditSink`` is implemented by ``station.storage.audit`` (a hash-chained append-only log);
the session's tests record into a list instead. The clock port lives in ``station.core.clock``.

:class:`LedPattern` and :class:`HealthResult` are what stationd and ``hardware/`` say to each
other about the lamp and the checks: ``hardware.led`` draws the patterns, ``hardware.health``
returns the results, and stationd's API reports them as they are. They live here, in the
layer both depend on, so neither needs the other's imports (gpiozero, PyAV) to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["AuditAction", "AuditSink", "HealthResult", "LedPattern"]


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


class LedPattern(StrEnum):
    """What the status lamp beside the privacy button shows (``hardware.led`` has the timings)."""

    OFF = "off"
    #: Locked or idle: a dim glow (PWM) or off.
    IDLE = "idle"
    #: The camera is sending: solid on.
    CAMERA_LIVE = "camera_live"
    #: A private call (staff have left): a slow pulse or blink.
    PRIVATE_CALL = "private_call"
    #: Something is broken: fast blink.
    FAULT = "fault"
    #: The resident called staff back: double flash, then a pause.
    STAFF_CALLED_BACK = "staff_called_back"
    #: A booked consultation is due (15 minutes before, and at its start) and nobody has
    #: logged in: three quick flashes, then a pause, until someone does or the slot passes.
    DUE = "due"


@dataclass(frozen=True, slots=True)
class HealthResult:
    """The outcome of one hardware check, as stationd's API and heartbeat report it."""

    #: The part: ``camera``, ``microphone``, ``loudspeaker``, ``button``, ``led`` (or
    #: ``hardware``/``health`` for stationd's own rows).
    name: str
    ok: bool
    #: What was seen, in English (for IT, logs and heartbeats; never personal data).
    detail: str
    #: What to do, in Danish, for the person at the station (empty when ``ok``).
    hint: str = ""
    #: The part is not there at all (not ``ok``); otherwise a failure is of a present part.
    missing: bool = False
