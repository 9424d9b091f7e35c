"""What stationd *does*, apart from how it is started: the session, tokens, events and store.

Over 500 lines for one job, stationd's behaviour on its loop: the lock path, the session's
transitions and what follows them (tokens, events, LED, status line, sealed events) share the
service's state and must stay in the order described above.

:class:`StationService` is driven from the daemon's one event loop by three kinds of caller:
the local API (``station.daemon.api``), the hardware (the privacy button's callbacks, already
handed to the loop), and the call engine (``call_*`` methods, later). It never blocks the
loop: the store and the audit log run on their own worker threads, PIN checks (Argon2id, 64
MiB) on a thread of their own, one at a time.

The lock is the point of the station, so its path is short and synchronous: a lock request
revokes every staff token, then asks the session to lock; the session's transition reaches
:meth:`StationService._on_transition`, which revokes again (belt and braces: a lock from any
source, idle included, revokes), publishes ``locked`` then ``state``, and updates the LED and
systemd's status line. No ``await`` sits between the press and the revocation.

While locked, what stationd must keep (a call ended, and how long it took) is sealed to the
vault's public key (:func:`station.keys.boxes.seal_to_vault`) and stored as a sealed event: the
daemon can write it and cannot read it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from station.core import model as domain
from station.core.clock import Clock
from station.core.model import QueueEntryStatus
from station.core.ports import AuditSink, HealthResult, LedPattern
from station.core.session import (
    BookedSlot,
    CallOutcome,
    LockReason,
    Session,
    SessionState,
    Transition,
)
from station.daemon.errors import ApiError
from station.daemon.events import EventBroker, EventKind
from station.daemon.sdnotify import Notifier
from station.daemon.tokens import StaffToken, TokenRegistry
from station.daemon.workers import Worker
from station.i18n import N_, _
from station.keys.handover import KeyVerifier
from station.storage.store import BlindStore, Consultation, UpcomingConsultation

__all__ = [
    "DUE_SOON",
    "StationService",
]

_log = logging.getLogger(__name__)

#: The lock screen flags a consultation as due this long before it starts.
DUE_SOON: Final = timedelta(minutes=15)
#: The heartbeat counts the booked slots missed within this window.
MISSED_WINDOW: Final = timedelta(days=7)
#: How long one PIN check may take before the request gives up (the check finishes anyway).
_UNLOCK_TIMEOUT: Final = 30.0


#: What the lamp shows in each state: locked and staff alike glow dimly (nothing is live).
_LED_FOR_STATE: Final = {
    SessionState.LOCKED: LedPattern.IDLE,
    SessionState.STAFF: LedPattern.IDLE,
    SessionState.PRE_CALL_CHECK: LedPattern.CAMERA_LIVE,
    SessionState.WAITING_FOR_GP: LedPattern.CAMERA_LIVE,
    SessionState.IN_CALL_ATTENDED: LedPattern.CAMERA_LIVE,
    SessionState.IN_CALL_PRIVATE: LedPattern.PRIVATE_CALL,
    SessionState.WRAP_UP: LedPattern.IDLE,
}


# Audit outcomes for refused unlocks, by error class name (no import of the keyring needed).
_UNLOCK_FAILURES: Final = {
    "WrongPin": ("wrong_pin", 401),
    "InvalidPin": ("invalid_pin", 400),
    "InvalidStaffNumber": ("invalid_pin", 400),
    "Throttled": ("throttled", 429),
    "SlotDisabled": ("disabled", 403),
}


class StationService:
    """The daemon's behaviour; see the module docs. Everything runs on one event loop."""

    def __init__(
        self,
        *,
        clock: Clock,
        session: Session,
        store: BlindStore,
        store_worker: Worker,
        audit: AuditSink,
        broker: EventBroker,
        keys: KeyVerifier,
        notifier: Notifier | None = None,
        led: Callable[[LedPattern], None] | None = None,
        health: Callable[[], Awaitable[Sequence[HealthResult]]] | None = None,
        faults: Callable[[], Sequence[HealthResult]] | None = None,
    ) -> None:
        self.clock = clock
        self.session = session
        self.store = store
        self.store_worker = store_worker
        self.audit = audit
        self.broker = broker
        self.keys = keys
        self.tokens = TokenRegistry()
        self._notifier = notifier or Notifier(environ={})
        self._led = led
        self._health_source = health
        self._faults_source = faults
        self._health: list[HealthResult] = []
        self._health_checked_at: datetime | None = None
        #: The (name, ok) of the last ``health`` event, so only changes are published.
        self._published_health: list[tuple[str, bool]] = []
        self._unlock_gate = asyncio.Lock()
        #: Bumped by every lock request, even a no-op one: an unlock whose PIN check spans a
        #: press of the button is refused (the press wins).
        self._lock_epoch = 0
        self._call_started_at: datetime | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        #: The provisioning agent (``provisioning.agent.ProvisioningAgent``), None without a hub.
        self.provisioning: Any = None
        #: Which backend serves each port now (the composition root sets the source: the
        #: export's follows IT's configuration).
        self.ports_source: Callable[[], dict[str, str]] = dict
        #: The UIs' language (``da``/``en``), set by provisioning's signed configuration.
        self.language = "da"
        self.button_presses = 0
        self.long_presses = 0
        #: A booked consultation is due and nobody has logged in (``station.daemon.reminders``).
        self.reminder_active = False
        #: Missed slots recorded since stationd started (the store keeps them all).
        self.missed_since_start = 0
        #: A call that ended without a note this long ago counts as undocumented (heartbeat).
        self.undocumented_after = timedelta(days=1)
        session.subscribe(self._on_transition)
        self._show_led()

    # ------------------------------------------------------------------ locking

    def request_lock(self, reason: LockReason) -> Transition | None:
        """Lock now, from any source. Never raises, never unlocks; revokes every token first."""
        self._lock_epoch += 1
        self.tokens.revoke_all()
        return self.session.lock(reason)

    def begin_shutdown(self) -> None:
        """stationd is stopping: refuse unlocks and revoke every token (the next boot is
        locked anyway; a staff UI still connected sees its token die and exits)."""
        self._stopping = True
        self._lock_epoch += 1
        self.tokens.revoke_all()

    @property
    def stopping(self) -> bool:
        """True once shutdown began."""
        return self._stopping

    def leave(self) -> Transition | None:
        """Staff leave: in a call the resident goes private; otherwise the station locks."""
        self._lock_epoch += 1
        self.tokens.revoke_all()
        if self.session.state in (SessionState.WAITING_FOR_GP, SessionState.IN_CALL_ATTENDED):
            return self.session.go_private()
        return self.session.lock(LockReason.STAFF_ACTION)

    def on_button_press(self) -> None:
        """The privacy button's first edge (on the loop): lock, then tell every listener."""
        self.button_presses += 1
        try:
            self.request_lock(LockReason.BUTTON)
        finally:
            # Told even when it changed nothing (already locked): the UI may flash feedback.
            self.broker.publish(
                EventKind.LOCK_REQUESTED, {"source": "button", "state": self.session.state.value}
            )

    def on_button_long_press(self) -> None:
        """A long press: pause camera and microphone (the call engine listens)."""
        self.long_presses += 1
        self.broker.publish(EventKind.PAUSE_MEDIA, {"source": "button"})

    def tick(self) -> Transition | None:
        """Periodic: lets the idle timeout lock the station."""
        return self.session.tick()

    def _on_transition(self, transition: Transition) -> None:
        if self.session.is_locked:
            self.tokens.revoke_all()
        locked_now = transition.to_state in (SessionState.LOCKED, SessionState.IN_CALL_PRIVATE)
        locked_before = transition.from_state in (SessionState.LOCKED, SessionState.IN_CALL_PRIVATE)
        if locked_now and not locked_before:
            self.broker.publish(
                EventKind.LOCKED,
                {
                    "reason": transition.reason,
                    "state": transition.to_state.value,
                    "private": transition.to_state is SessionState.IN_CALL_PRIVATE,
                },
            )
        self.broker.publish(
            EventKind.STATE,
            {
                "transition": transition.name,
                "from_state": transition.from_state.value,
                "state": transition.to_state.value,
                "reason": transition.reason,
                "appointment_id": transition.appointment,
                "locked": self.session.is_locked,
                "private": transition.to_state is SessionState.IN_CALL_PRIVATE,
            },
        )
        self._show_led()
        self._notifier.status(self.status_line())
        if transition.name == "gp_admitted":
            self._call_started_at = transition.at
            self._consultation_status(transition.appointment, "in_call")
        elif transition.name == "check_passed":
            self._call_started_at = transition.at
        elif transition.name == "call_ended":
            self._record_call_ended(transition)
            self._consultation_status(transition.appointment, "ended")
        elif transition.to_state in (SessionState.LOCKED, SessionState.STAFF):
            self._call_started_at = None  # no call runs in these states

    def _show_led(self) -> None:
        if self._led is None:
            return
        pattern = _LED_FOR_STATE.get(self.session.state, LedPattern.IDLE)
        _at, health = self.health
        if health and not all(r.ok for r in health):
            # A fault shows only while nobody's data is on screen; a lock always wins.
            pattern = LedPattern.FAULT if self.session.state is SessionState.LOCKED else pattern
        if self.reminder_active and self.session.state is SessionState.LOCKED:
            # A consultation is due: for the next minutes that matters more than a fault.
            pattern = LedPattern.DUE
        try:
            self._led(pattern)
        except Exception:
            _log.exception("status LED update failed")

    def set_reminder(self, active: bool) -> None:
        """A due reminder starts or ends (``station.daemon.reminders``): the lamp follows."""
        if active == self.reminder_active:
            return
        self.reminder_active = active
        self._show_led()

    def missed_recorded(self, count: int) -> None:
        """Booked slots passed without a call; the provisioning agent tells the hub now."""
        self.missed_since_start += count
        agent = self.provisioning
        if agent is not None:
            with contextlib.suppress(Exception):
                agent.wake()

    def status_line(self) -> str:
        """systemd's one-line status (no personal data: a state name and a count)."""
        return f"{self.session.state.value}; {self.broker.subscriber_count} UI stream(s)"

    # ------------------------------------------------------------------ unlock and auth

    async def unlock(self, staff_number: str, pin: str) -> tuple[str, str, Transition, bytearray]:
        """Check the staff number and PIN (off the loop, one check at a time), unlock, issue a
        token.

        Returns the pseudonymous staff id the number belongs to (the session's, the token's
        and the audit's identity), the token (once), the transition and the vault key for the
        staff UI.

        The key hand-over: the staff UI is the only process that *holds* the vault key, but
        only stationd can *derive* the key-encryption key, because only stationd can read
        the device secret mixed into it (and so every PIN guess goes through stationd's
        PIN guard, whose back-off no client can skip). Handing the caller the KEK or the
        vault key it unwraps is therefore the same trust, and returning the vault key keeps
        the device secret and the keyslots inside stationd. The caller is a member of the
        socket's group (0660); the key travels once, in the unlock response. stationd keeps
        no copy: the API zeroes this bytearray as soon as the response body is encoded (the
        immutable base64 text of that one response is short-lived and never stored).

        Raises :class:`ApiError` for every refusal (then no key leaves stationd).
        """
        if self._stopping:
            raise ApiError.unavailable("shutting down", N_("The station is shutting down."))
        epoch = self._lock_epoch
        async with self._unlock_gate:
            try:
                staff_id, key = await asyncio.wait_for(
                    asyncio.to_thread(self.keys.verify, staff_number, pin), _UNLOCK_TIMEOUT
                )
            except TimeoutError:
                raise ApiError.unavailable("PIN check timed out") from None
            except Exception as exc:
                raise await self._unlock_refused(staff_number, exc) from None
        try:
            if self._lock_epoch != epoch or self._stopping:
                raise ApiError.conflict(
                    "a lock was requested while the PIN was being checked; unlock refused",
                    N_("The station was locked meanwhile. Unlock it again."),
                )
            try:
                transition = self.session.unlock(staff_id)
            except Exception as exc:
                raise _map_session_error(exc) from None
        except BaseException:
            _zero(key)
            raise
        token = self.tokens.issue(staff_id, self.clock.now())
        return staff_id, token, transition, key

    async def _unlock_refused(self, staff_number: str, exc: Exception) -> ApiError:
        name = type(exc).__name__
        outcome, status = _UNLOCK_FAILURES.get(name, ("error", 503))
        # The audit names the pseudonymous id whose slot has the number typed; a number
        # nobody has names nobody (the number itself never reaches the log).
        audit_staff = await asyncio.to_thread(self.keys.staff_for_number, staff_number)
        self.audit.record("unlock_failed", staff=audit_staff, resident=None, outcome=outcome)
        retry = getattr(exc, "retry_after_seconds", None)
        user = getattr(exc, "user_message", None)
        if name == "KeyringNotFound":
            return ApiError.unavailable("the station has no keyring yet", user)
        if status == 503:
            _log.warning("unlock failed: %s", exc)
            return ApiError.unavailable(f"unlock failed: {name}", user)
        return ApiError(
            status,
            outcome,
            f"unlock refused: {outcome}",
            user,
            retry_after_seconds=float(retry) if retry else None,
        )

    def authenticate(self, token: str | None, *, activity: bool = False) -> StaffToken:
        """The staff session behind a Bearer token; ``ApiError`` 401 if none.

        A request is *not* staff activity: the pre-call check polls its thumbnail twice a
        second and the wrap-up polls a pending export, and a station left on those screens
        must still lock. Only ``activity=True`` (``POST /v1/session/touch``, which the staff
        UI sends on a key press, click or touch of a person) postpones the idle lock.
        """
        if not token:
            raise ApiError.locked("no bearer token")
        if self._stopping:
            raise ApiError.locked("stationd is shutting down")
        entry = self.tokens.verify(token)
        if entry is None:
            raise ApiError.locked("unknown or revoked token")
        if self.session.is_locked or self.session.staff != entry.staff_id:
            # Cannot normally happen (every lock revokes); if it does, fail closed for good.
            self.tokens.revoke_all()
            raise ApiError.locked("session is locked; token revoked")
        if activity:
            self.session.touch()
        return entry

    # ------------------------------------------------------------------ session transitions

    async def begin_check(self, appointment_id: str) -> Transition:
        """STAFF → PRE_CALL_CHECK for a booked consultation in the store."""
        consultation = await self.db(self.store.get_consultation, appointment_id)
        entries = await self.db(self.store.list_entries, appointment_id)
        if consultation.status.value not in ("booked", "in_call"):
            raise ApiError.conflict(
                f"consultation is {consultation.status.value}, not callable",
                N_("The appointment cannot be called: it has ended or been cancelled."),
            )
        appointment = _blind_appointment(consultation, [(e.id, e.status) for e in entries])
        return self.transition(lambda: self.session.begin_check(appointment))

    def transition(self, action: Callable[[], Transition]) -> Transition:
        """Run a session transition, mapping its errors to API errors."""
        try:
            return action()
        except ApiError:
            raise
        except Exception as exc:
            raise _map_session_error(exc) from None

    # ------------------------------------------------------------------ the call engine's side

    def call_gp_admitted(self) -> Transition:
        """The GP admitted the station (from the call engine)."""
        return self.session.gp_admitted()

    def call_ended(self, outcome: CallOutcome) -> Transition:
        """The call is over (from the call engine); records a sealed ``call_ended`` event."""
        return self.session.call_ended(outcome)

    @property
    def ports(self) -> dict[str, str]:
        """Which backend serves each port (camera, audio, gpio, frame_sink, hub, export)."""
        return self.ports_source()

    def publish_call_status(self, status: str, **data: Any) -> None:
        """Pass call-engine status (connecting, reconnecting, ...) to the UIs."""
        self.broker.publish(EventKind.CALL, {"status": status, **data})

    def call_staff_back(self) -> None:
        """The resident asks for staff during a call: the lamp says so, the UIs hear it."""
        if self._led is not None:
            try:
                self._led(LedPattern.STAFF_CALLED_BACK)
            except Exception:
                _log.exception("status LED update failed")
        self.broker.publish(EventKind.CALL, {"status": "staff_called_back"})

    def _record_call_ended(self, transition: Transition) -> None:
        consultation_id = transition.appointment
        started = self._call_started_at
        self._call_started_at = None
        if consultation_id is None:
            return
        duration = (transition.at - started).total_seconds() if started else None
        plaintext = json.dumps(
            {
                "kind": "call_ended",
                "ended_at": transition.at.isoformat(),
                "started_at": started.isoformat() if started else None,
                "duration_seconds": round(duration) if duration is not None else None,
                "outcome": transition.reason,
            },
            sort_keys=True,
        ).encode()
        self._spawn(self._write_sealed_event(consultation_id, "call_ended", plaintext))

    async def _write_sealed_event(self, consultation_id: str, kind: str, plaintext: bytes) -> None:
        from station.keys.boxes import seal_to_vault, sealed_event_context

        try:
            public_key = await asyncio.to_thread(self.keys.vault_public_key)
            if public_key is None:
                _log.warning("no vault public key: %s event not recorded", kind)
                return
            blob = seal_to_vault(public_key, plaintext, sealed_event_context(consultation_id, kind))
            await self.db(
                self.store.add_sealed_event, consultation_id=consultation_id, kind=kind, blob=blob
            )
        except Exception as exc:
            _log.error("sealed %s event not recorded: %s", kind, exc)

    def _consultation_status(self, consultation_id: str | None, status: str) -> None:
        if consultation_id is None:
            return

        async def update() -> None:
            try:
                await self.db(self.store.set_consultation_status, consultation_id, status)
            except Exception as exc:
                _log.warning("consultation status not updated to %s: %s", status, exc)

        self._spawn(update())

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, within: float) -> None:
        """Wait (bounded) for background writes, e.g. a sealed event, before shutdown."""
        self._stopping = True
        if self._background:
            await asyncio.wait(tuple(self._background), timeout=within)

    # ------------------------------------------------------------------ storage

    async def db(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run a store call on the store's worker thread, bounded by its timeout."""
        try:
            return await self.store_worker.run(fn, *args, **kwargs)
        except TimeoutError:
            raise ApiError.unavailable("store call timed out") from None

    async def upcoming(
        self, limit: int
    ) -> tuple[datetime, list[tuple[UpcomingConsultation, bool]]]:
        """Coming consultations for the lock screen, each with its "due soon" flag."""
        now = self.clock.now()
        rows: list[UpcomingConsultation] = await self.db(self.store.list_upcoming, now, limit=limit)
        return now, [(row, row.starts_at - now <= DUE_SOON) for row in rows]

    async def attendance_counts(self) -> tuple[int, int]:
        """For the heartbeat: booked slots missed in the last 7 days, and calls that ended
        more than ``undocumented_after`` ago without a note. Numbers only."""
        now = self.clock.now()
        missed: int = await self.db(self.store.count_missed, now - MISSED_WINDOW)
        undocumented: int = await self.db(
            self.store.count_undocumented, now - self.undocumented_after
        )
        return missed, undocumented

    # ------------------------------------------------------------------ health

    @property
    def in_call(self) -> bool:
        """True from the pre-call check to the call's end (camera and microphone in use)."""
        return self.session.state in (
            SessionState.PRE_CALL_CHECK,
            SessionState.WAITING_FOR_GP,
            SessionState.IN_CALL_ATTENDED,
            SessionState.IN_CALL_PRIVATE,
        )

    @property
    def health(self) -> tuple[datetime | None, list[HealthResult]]:
        """The last health results and when they were taken, with the parts missing *now*
        in place of their last rows (a part that went missing or came back since the last
        check is reported at once, without opening a device)."""
        results = list(self._health)
        if self._faults_source is not None:
            faults = {r.name: r for r in self._faults_source()}
            merged = []
            for result in results:
                if result.name in faults:
                    merged.append(faults.pop(result.name))
                elif result.missing:
                    # Missing at the last check, found since: its own check comes with the
                    # next round (at once, unless a call or the pre-call check uses it).
                    merged.append(
                        HealthResult(result.name, True, "found again; not checked yet", "")
                    )
                else:
                    merged.append(result)
            results = merged + list(faults.values())
        return self._health_checked_at, results

    async def refresh_health(self, within: float = 10.0) -> list[HealthResult]:
        """Run the hardware checks (bounded); publish ``health`` when a result changed."""
        if self._health_source is None:
            return []
        if self.in_call and self._health_checked_at is not None:
            # The checks open the camera and microphone, which the call is using.
            return self.health[1]
        try:
            results = list(await asyncio.wait_for(self._health_source(), within))
        except TimeoutError:
            results = [
                HealthResult(
                    "health",
                    False,
                    f"hardware checks did not finish within {within:.0f} s",
                    _(
                        "The station's equipment does not answer. "
                        "Restart the station, and contact IT."
                    ),
                )
            ]
        except Exception as exc:
            results = [
                HealthResult(
                    "health",
                    False,
                    f"hardware checks failed: {type(exc).__name__}",
                    _("The station's equipment could not be checked. Contact IT."),
                )
            ]
        self._health = results
        self._health_checked_at = self.clock.now()
        self._publish_health()
        return self.health[1]

    def hardware_changed(self, changes: Sequence[Any]) -> None:
        """Parts went missing or came back (``hardware.bundle.PartChange``s, from the
        daemon's re-probe): tell the UIs (``hardware``, then ``health``) and the lamp.

        The events carry part names, backends and verdicts only; the English reason stays
        in the log and ``GET /v1/health``.
        """
        for change in changes:
            self.broker.publish(
                EventKind.HARDWARE,
                {"part": change.part, "present": change.present, "backend": change.backend},
            )
        self._publish_health()

    def _publish_health(self) -> None:
        _at, results = self.health
        verdicts = [(r.name, r.ok) for r in results]
        if verdicts == self._published_health:
            return
        self._published_health = verdicts
        self.broker.publish(
            EventKind.HEALTH,
            {
                "ok": all(r.ok for r in results),
                "checks": [{"name": r.name, "ok": r.ok, "missing": r.missing} for r in results],
            },
        )
        self._show_led()


def _zero(buffer: bytearray) -> None:
    """Overwrite key material in place."""
    for i in range(len(buffer)):
        buffer[i] = 0


def _map_session_error(exc: Exception) -> ApiError:
    from station.core.session import CallNotAllowed, IllegalTransition

    user = getattr(exc, "user_message", None)
    if isinstance(exc, CallNotAllowed):
        return ApiError(409, "call_not_allowed", str(exc), user)
    if isinstance(exc, IllegalTransition):
        return ApiError(409, "illegal_transition", str(exc), user)
    if isinstance(exc, domain.DomainError):
        return ApiError(409, "domain", str(exc), user)
    if isinstance(exc, ValueError):
        return ApiError.bad_request(f"rejected by the session: {type(exc).__name__}")
    _log.error("session transition failed: %s", exc)
    return ApiError.unavailable(f"session transition failed: {type(exc).__name__}", user)


def _blind_appointment(
    consultation: Consultation, entries: Sequence[tuple[str, QueueEntryStatus]]
) -> BookedSlot:
    """The bookable slot of a stored consultation, without any personal data."""
    return BookedSlot(
        id=consultation.id,
        starts_at=consultation.starts_at,
        ends_at=consultation.ends_at,
        statuses=tuple(status for _, status in entries),
    )
