"""The station session: who may see what right now, as an explicit state machine.

Over 600 lines for one job, the session state machine: every transition with the rule that
guards it and its audit entry, in one class, so the lock discipline is read and checked in one
place.

===================  ==================================  ===================================
transition           from                                to
===================  ==================================  ===================================
unlock(staff)        LOCKED                              STAFF
                     IN_CALL_PRIVATE                     IN_CALL_ATTENDED (WAITING_FOR_GP if
                                                         the GP has not admitted yet)
lock(reason)         STAFF, PRE_CALL_CHECK, WRAP_UP      LOCKED
                     WAITING_FOR_GP, IN_CALL_ATTENDED    IN_CALL_PRIVATE
                     LOCKED, IN_CALL_PRIVATE             no-op, returns None
go_private()         WAITING_FOR_GP, IN_CALL_ATTENDED    IN_CALL_PRIVATE (IN_CALL_PRIVATE: no-op)
begin_check(appt)    STAFF (appointment callable now)    PRE_CALL_CHECK
check_passed()       PRE_CALL_CHECK                      WAITING_FOR_GP
cancel(reason)       PRE_CALL_CHECK, WAITING_FOR_GP      STAFF
gp_admitted()        WAITING_FOR_GP                      IN_CALL_ATTENDED
                     IN_CALL_PRIVATE (not yet admitted)  IN_CALL_PRIVATE
call_ended(outcome)  IN_CALL_ATTENDED                    WRAP_UP
                     IN_CALL_PRIVATE                     LOCKED (wrap-up pending)
resume_wrap_up()     STAFF with a pending wrap-up        WRAP_UP
finish_wrap_up()     WRAP_UP                             STAFF
tick() when idle     STAFF, PRE_CALL_CHECK,              as lock(IDLE)
                     WAITING_FOR_GP, WRAP_UP
===================  ==================================  ===================================

The station boots LOCKED. Personal data is reachable only in STAFF, PRE_CALL_CHECK,
WAITING_FOR_GP, IN_CALL_ATTENDED and WRAP_UP; in IN_CALL_PRIVATE the call goes on and the
screen shows only the resident's call controls.

Rules the code keeps:

- Every transition is a named method. An illegal one raises ``IllegalTransition``; nothing
  is silently ignored, except ``lock`` (and ``go_private``) where the station is already
  locked: the privacy button bounces, and pressing it again must never fail or unlock.
- Every transition is timestamped by the injected ``Clock``, written to the ``AuditSink``
  with pseudonymous ids only, and published as a ``Transition`` to subscribers.
- Transitions that open access to personal data (``unlock``, ``begin_check``,
  ``resume_wrap_up``) are audited *before* they take effect and fail closed if the audit
  cannot be written. All others (locking, call events) take effect first and audit on a
  best-effort basis: a full disk must never keep the station unlocked or deny that a call
  ended. A listener that raises is logged and never undoes a transition.
- Not thread-safe by design: stationd drives a session from its one asyncio loop. Button
  callbacks from gpiozero's threads are handed to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from station.core.clock import Clock
from station.core.errors import CoreError
from station.core.model import DEFAULT_EARLY_START, QueueEntryStatus, check_opaque_id
from station.core.ports import AuditAction, AuditSink
from station.i18n import N_, LazyText


@dataclass(frozen=True, slots=True)
class BookedSlot:
    """What starting a call needs to know of a booking: its times and its queue's statuses.

    stationd, which is blind, builds one from the store's clear metadata (ids, times,
    statuses) without any resident data.
    """

    id: str
    starts_at: datetime
    ends_at: datetime
    statuses: tuple[QueueEntryStatus, ...]

    def window(self, early: timedelta = DEFAULT_EARLY_START) -> tuple[datetime, datetime]:
        """When a call may run: from ``early`` before the start to the end of the slot."""
        return self.starts_at - early, self.ends_at

    def has_someone_waiting(self) -> bool:
        """True while a resident is waiting or in front of the camera."""
        return any(s in (QueueEntryStatus.WAITING, QueueEntryStatus.IN_CALL) for s in self.statuses)


__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "IDLE_LOCKING_STATES",
    "CallNotAllowed",
    "CallOutcome",
    "IllegalTransition",
    "LockReason",
    "Session",
    "SessionError",
    "SessionState",
    "Transition",
    "TransitionListener",
]

_log = logging.getLogger(__name__)

DEFAULT_IDLE_TIMEOUT: Final = timedelta(minutes=5)
_REASON_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")


class SessionState(StrEnum):
    """Where the station is. The value is what the event stream and the audit trail carry."""

    LOCKED = "locked"
    STAFF = "staff"
    PRE_CALL_CHECK = "pre_call_check"
    WAITING_FOR_GP = "waiting_for_gp"
    IN_CALL_ATTENDED = "in_call_attended"
    IN_CALL_PRIVATE = "in_call_private"
    WRAP_UP = "wrap_up"


class LockReason(StrEnum):
    """Why the station locked."""

    BUTTON = "button"
    STAFF_ACTION = "staff_action"
    IDLE = "idle"
    REMOTE = "remote"
    PRIVATE_CALL = "private_call"


class CallOutcome(StrEnum):
    """How a call ended, as the call engine reports it."""

    HUNG_UP_STATION = "hung_up_station"
    HUNG_UP_GP = "hung_up_gp"
    CONNECTION_LOST = "connection_lost"
    FAILED = "failed"


#: States in which staff inactivity locks the station. Not IN_CALL_ATTENDED: a
#: conversation is not idleness. (LOCKED and IN_CALL_PRIVATE are locked already.)
IDLE_LOCKING_STATES: Final = frozenset(
    {
        SessionState.STAFF,
        SessionState.PRE_CALL_CHECK,
        SessionState.WAITING_FOR_GP,
        SessionState.WRAP_UP,
    }
)

_LOCKED_STATES: Final = frozenset({SessionState.LOCKED, SessionState.IN_CALL_PRIVATE})
_IN_CALL_STATES: Final = frozenset({SessionState.WAITING_FOR_GP, SessionState.IN_CALL_ATTENDED})


# Each error is its own class so callers and the API map them by type; alike by design.
class SessionError(CoreError):
    """Base of the session's errors."""

    default_user_message = N_("The action is not possible right now.")


class IllegalTransition(SessionError):
    """A transition was asked for in a state that does not allow it."""

    default_user_message = N_(
        "The action is not possible right now. Refresh the screen and try again."
    )


class CallNotAllowed(SessionError):
    """A call cannot begin: the appointment is not callable now, or nobody is queued."""


@dataclass(frozen=True)
class Transition:
    """One change of the session, as published to listeners and the event stream.

    ``staff`` is the pseudonymous staff id involved (the one unlocking, or the one who was
    signed in when the station locked); ``reason`` is a short machine word (a
    ``LockReason``, a ``CallOutcome``, a cancel reason) or ``None``. ``appointment`` is the
    appointment id the session holds after the transition (for a call ending privately,
    the one now waiting for wrap-up).
    """

    name: str
    from_state: SessionState
    to_state: SessionState
    at: datetime
    staff: str | None
    reason: str | None = None
    appointment: str | None = None


#: A subscriber to transitions. Called synchronously, in order of subscription.
TransitionListener = Callable[[Transition], None]


class Session:
    """The station's session state machine. Starts LOCKED; see the module docstring."""

    def __init__(
        self, clock: Clock, audit: AuditSink, idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT
    ) -> None:
        if idle_timeout <= timedelta(0):
            raise ValueError("idle_timeout must be positive")
        self._clock = clock
        self._audit = audit
        self._idle_timeout = idle_timeout
        self._state = SessionState.LOCKED
        self._since = clock.now()
        self._last_activity = self._since
        self._staff: str | None = None
        self._appointment_id: str | None = None
        self._call_admitted = False
        self._pending_wrap_ups: list[str] = []
        self._listeners: list[TransitionListener] = []
        self._outbox: deque[Transition] = deque()
        self._publishing = False

    # -- what the session knows ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    @property
    def since(self) -> datetime:
        """When the current state began."""
        return self._since

    @property
    def staff(self) -> str | None:
        """The pseudonymous id of the staff member signed in, or ``None`` when locked."""
        return self._staff

    @property
    def appointment_id(self) -> str | None:
        """The appointment being checked, called or wrapped up, if any."""
        return self._appointment_id

    @property
    def call_admitted(self) -> bool:
        """Whether the GP has admitted the station in the current call."""
        return self._call_admitted

    @property
    def pending_wrap_up(self) -> str | None:
        """The oldest appointment whose call ended and whose wrap-up is not finished."""
        return self._pending_wrap_ups[0] if self._pending_wrap_ups else None

    @property
    def pending_wrap_ups(self) -> tuple[str, ...]:
        """All appointments waiting for wrap-up, oldest first."""
        return tuple(self._pending_wrap_ups)

    @property
    def is_locked(self) -> bool:
        """True when no personal data may be shown (LOCKED or IN_CALL_PRIVATE)."""
        return self._state in _LOCKED_STATES

    @property
    def idle_timeout(self) -> timedelta:
        """How long staff may be inactive before the station locks."""
        return self._idle_timeout

    def set_idle_timeout(self, idle_timeout: timedelta) -> None:
        """Change the idle timeout (IT's configuration); it counts from the last activity."""
        if idle_timeout <= timedelta(0):
            raise ValueError("idle_timeout must be positive")
        self._idle_timeout = idle_timeout

    def idle_remaining(self) -> timedelta | None:
        """Time until the idle lock, or ``None`` where idleness does not lock (for a countdown)."""
        if self._state not in IDLE_LOCKING_STATES:
            return None
        elapsed = self._clock.now() - self._last_activity
        return max(self._idle_timeout - max(elapsed, timedelta(0)), timedelta(0))

    def subscribe(self, listener: TransitionListener) -> Callable[[], None]:
        """Call ``listener`` with every transition from now on; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # -- transitions -----------------------------------------------------------------------

    def unlock(self, staff_id: str) -> Transition:
        """A verified staff member unlocked (the PIN was checked elsewhere).

        LOCKED → STAFF. IN_CALL_PRIVATE → IN_CALL_ATTENDED (staff came back), or
        → WAITING_FOR_GP when the GP has not admitted the station yet.
        """
        staff = check_opaque_id(staff_id, "staff")
        if self._state is SessionState.LOCKED:
            target, outcome = SessionState.STAFF, "ok"
        elif self._state is SessionState.IN_CALL_PRIVATE:
            target = (
                SessionState.IN_CALL_ATTENDED
                if self._call_admitted
                else SessionState.WAITING_FOR_GP
            )
            outcome = "returned_to_call"
        else:
            raise self._illegal("unlock")
        # Fail closed: an unlock that cannot be audited does not happen.
        self._audit.record(AuditAction.UNLOCK, staff=staff, resident=None, outcome=outcome)
        return self._commit(
            "unlock",
            target,
            staff=staff,
            appointment=self._appointment_id,
            acting_staff=staff,
            published_appointment=self._appointment_id,
        )

    def lock(self, reason: LockReason) -> Transition | None:
        """Lock: never raises for any state, never unlocks.

        STAFF, PRE_CALL_CHECK, WRAP_UP → LOCKED (an unfinished check is dropped; a pending
        wrap-up is kept). WAITING_FOR_GP, IN_CALL_ATTENDED → IN_CALL_PRIVATE: the call goes
        on and the resident's controls are shown. Already LOCKED or IN_CALL_PRIVATE: a no-op
        returning ``None``, not audited (the button bounces).
        """
        if self._state in _LOCKED_STATES:
            return None
        try:
            reason_text = LockReason(reason).value
        except ValueError:
            # Locking matters more than the label: lock anyway, and say so in the log.
            _log.warning("lock() called with an unknown reason; locking anyway")
            reason_text = "unknown"
        if self._state in _IN_CALL_STATES:
            target, appointment = SessionState.IN_CALL_PRIVATE, self._appointment_id
        else:
            target, appointment = SessionState.LOCKED, None
            self._call_admitted = False
        return self._commit(
            "lock",
            target,
            staff=None,
            appointment=appointment,
            reason=reason_text,
            acting_staff=self._staff,
            audit_after=(AuditAction.LOCK, reason_text),
            published_appointment=appointment,
        )

    def go_private(self) -> Transition | None:
        """The resident wants privacy: ``lock(PRIVATE_CALL)`` during a call.

        Legal in IN_CALL_ATTENDED and WAITING_FOR_GP (staff may leave before the GP
        admits); a no-op in IN_CALL_PRIVATE; illegal outside a call.
        """
        if self._state is SessionState.IN_CALL_PRIVATE:
            return None
        if self._state not in _IN_CALL_STATES:
            raise self._illegal("go_private")
        return self.lock(LockReason.PRIVATE_CALL)

    def begin_check(
        self, appointment: BookedSlot, *, early: timedelta = DEFAULT_EARLY_START
    ) -> Transition:
        """STAFF → PRE_CALL_CHECK for a booked appointment that is callable now.

        Refused (``CallNotAllowed``) earlier than ``early`` before the booked time, after
        the slot, or when nobody is waiting in its queue.
        """
        if self._state is not SessionState.STAFF:
            raise self._illegal("begin_check")
        if not callable(getattr(appointment, "window", None)):
            raise CallNotAllowed(
                "begin_check needs a booked appointment",
                N_("A call needs an appointment with the doctor with a date and time."),
            )
        now = self._clock.now()
        opens, closes = appointment.window(early)
        if now < opens:
            minutes = int(early.total_seconds() // 60)
            raise CallNotAllowed(
                "begin_check refused: before the appointment's window",
                LazyText(
                    "The call can start at the earliest {minutes} minutes before the appointment.",
                    minutes=minutes,
                ),
            )
        if now >= closes:
            raise CallNotAllowed(
                "begin_check refused: the appointment's slot is over",
                N_("The appointment's time is over. Book a new time with the doctor."),
            )
        if not appointment.has_someone_waiting():
            raise CallNotAllowed(
                "begin_check refused: nobody is waiting in the queue",
                N_("No residents are waiting in the queue for this appointment."),
            )
        self._audit.record(
            AuditAction.CHECK_STARTED, staff=self._staff, resident=None, outcome="ok"
        )
        return self._commit(
            "begin_check",
            SessionState.PRE_CALL_CHECK,
            staff=self._staff,
            appointment=appointment.id,
            acting_staff=self._staff,
            published_appointment=appointment.id,
        )

    def cancel(self, reason: str | None = None) -> Transition:
        """PRE_CALL_CHECK or WAITING_FOR_GP → STAFF: the check failed, or the call is called off.

        ``reason`` is a short machine word (``[a-z][a-z0-9_]*``, e.g. ``"camera_failed"``).
        """
        if reason is not None and _REASON_RE.fullmatch(reason) is None:
            raise ValueError("cancel reason must be a short lowercase machine word")
        if self._state not in (SessionState.PRE_CALL_CHECK, SessionState.WAITING_FOR_GP):
            raise self._illegal("cancel")
        self._call_admitted = False
        return self._commit(
            "cancel",
            SessionState.STAFF,
            staff=self._staff,
            appointment=None,
            reason=reason,
            acting_staff=self._staff,
            audit_after=(AuditAction.CHECK_CANCELLED, reason or "cancelled"),
            published_appointment=self._appointment_id,
        )

    def check_passed(self) -> Transition:
        """PRE_CALL_CHECK → WAITING_FOR_GP: camera, sound and network are fine; dialled."""
        if self._state is not SessionState.PRE_CALL_CHECK:
            raise self._illegal("check_passed")
        return self._commit(
            "check_passed",
            SessionState.WAITING_FOR_GP,
            staff=self._staff,
            appointment=self._appointment_id,
            acting_staff=self._staff,
            audit_after=(AuditAction.CHECK_PASSED, "ok"),
            published_appointment=self._appointment_id,
        )

    def gp_admitted(self) -> Transition:
        """The GP admitted the station: the consultation begins.

        WAITING_FOR_GP → IN_CALL_ATTENDED. In IN_CALL_PRIVATE (staff left while waiting) the
        state stays IN_CALL_PRIVATE and ``call_admitted`` becomes true: admission never
        shows personal data. A second admission in the same call is illegal.
        """
        if self._state is SessionState.WAITING_FOR_GP:
            target, outcome = SessionState.IN_CALL_ATTENDED, "attended"
        elif self._state is SessionState.IN_CALL_PRIVATE and not self._call_admitted:
            target, outcome = SessionState.IN_CALL_PRIVATE, "private"
        else:
            raise self._illegal("gp_admitted")
        self._call_admitted = True
        return self._commit(
            "gp_admitted",
            target,
            staff=self._staff,
            appointment=self._appointment_id,
            acting_staff=self._staff,
            audit_after=(AuditAction.CALL_STARTED, outcome),
            published_appointment=self._appointment_id,
        )

    def call_ended(self, outcome: CallOutcome) -> Transition:
        """The call is over. IN_CALL_ATTENDED → WRAP_UP; IN_CALL_PRIVATE → LOCKED.

        The appointment joins ``pending_wrap_ups`` until ``finish_wrap_up``. After a private
        call the wrap-up waits for the next unlock, when the staff UI offers it
        (``resume_wrap_up``).
        """
        outcome_text = CallOutcome(outcome).value
        if self._state is SessionState.IN_CALL_ATTENDED:
            target, appointment = SessionState.WRAP_UP, self._appointment_id
        elif self._state is SessionState.IN_CALL_PRIVATE:
            target, appointment = SessionState.LOCKED, None
        else:
            raise self._illegal("call_ended")
        ended = self._appointment_id
        if ended is not None and ended not in self._pending_wrap_ups:
            self._pending_wrap_ups.append(ended)
        self._call_admitted = False
        return self._commit(
            "call_ended",
            target,
            staff=self._staff,
            appointment=appointment,
            reason=outcome_text,
            acting_staff=self._staff,
            audit_after=(AuditAction.CALL_ENDED, outcome_text),
            published_appointment=ended,
        )

    def resume_wrap_up(self, appointment_id: str | None = None) -> Transition:
        """STAFF → WRAP_UP for a call whose wrap-up is pending (it ended while locked).

        ``appointment_id`` defaults to the oldest pending wrap-up.
        """
        if self._state is not SessionState.STAFF or not self._pending_wrap_ups:
            raise self._illegal("resume_wrap_up")
        chosen = appointment_id or self._pending_wrap_ups[0]
        if chosen not in self._pending_wrap_ups:
            raise IllegalTransition(
                "resume_wrap_up: that appointment has no pending wrap-up",
                N_("There is no wrap-up to write for that appointment."),
            )
        self._audit.record(
            AuditAction.WRAP_UP_STARTED, staff=self._staff, resident=None, outcome="ok"
        )
        return self._commit(
            "resume_wrap_up",
            SessionState.WRAP_UP,
            staff=self._staff,
            appointment=chosen,
            acting_staff=self._staff,
            published_appointment=chosen,
        )

    def finish_wrap_up(self) -> Transition:
        """WRAP_UP → STAFF: the note for the care record is written."""
        if self._state is not SessionState.WRAP_UP:
            raise self._illegal("finish_wrap_up")
        finished = self._appointment_id
        if finished in self._pending_wrap_ups:
            self._pending_wrap_ups.remove(finished)
        return self._commit(
            "finish_wrap_up",
            SessionState.STAFF,
            staff=self._staff,
            appointment=None,
            acting_staff=self._staff,
            audit_after=(AuditAction.WRAP_UP_FINISHED, "ok"),
            published_appointment=finished,
        )

    # -- idleness ---------------------------------------------------------------------------

    def touch(self) -> None:
        """Record staff activity (a key press, a click): it postpones the idle lock."""
        self._last_activity = self._clock.now()

    def tick(self) -> Transition | None:
        """Lock with IDLE if staff have been inactive for ``idle_timeout``; call periodically.

        Only in ``IDLE_LOCKING_STATES``. If the wall clock went backwards (NTP at boot on a
        Pi without a real-time clock), the idle time counts from the new time rather than
        waiting for the clock to catch up: never longer unlocked than the timeout.
        """
        now = self._clock.now()
        if now < self._last_activity:
            self._last_activity = now
        if self._state in IDLE_LOCKING_STATES and now - self._last_activity >= self._idle_timeout:
            return self.lock(LockReason.IDLE)
        return None

    # -- machinery ---------------------------------------------------------------------------

    def _illegal(self, name: str) -> IllegalTransition:
        return IllegalTransition(f"illegal transition {name!r} in state {self._state.value}")

    def _commit(
        self,
        name: str,
        target: SessionState,
        *,
        staff: str | None,
        appointment: str | None,
        reason: str | None = None,
        acting_staff: str | None = None,
        audit_after: tuple[AuditAction, str] | None = None,
        published_appointment: str | None = None,
    ) -> Transition:
        """Apply a validated transition, audit it if asked (best effort) and publish it.

        ``staff`` and ``appointment`` are the session's values afterwards; ``acting_staff``
        and ``published_appointment`` are what the transition reports.
        """
        now = self._clock.now()
        transition = Transition(
            name=name,
            from_state=self._state,
            to_state=target,
            at=now,
            staff=acting_staff,
            reason=reason,
            appointment=published_appointment,
        )
        self._state = target
        self._since = now
        self._last_activity = now
        self._staff = staff
        self._appointment_id = appointment
        if audit_after is not None:
            action, outcome = audit_after
            try:
                self._audit.record(action, staff=acting_staff, resident=None, outcome=outcome)
            except Exception:
                # The transition stands (see the module docstring); the failure is loud.
                _log.exception("audit write failed for transition %s", name)
        self._publish(transition)
        return transition

    def _publish(self, transition: Transition) -> None:
        """Hand ``transition`` to every listener, in order, even if a listener transitions.

        A listener that causes another transition (say, locks) must not make later
        listeners see the second transition before the first, so nested ones are queued.
        """
        self._outbox.append(transition)
        if self._publishing:
            return
        self._publishing = True
        try:
            while self._outbox:
                current = self._outbox.popleft()
                for listener in list(self._listeners):
                    try:
                        listener(current)
                    except Exception:
                        _log.exception("session listener failed on transition %s", current.name)
        finally:
            self._publishing = False
