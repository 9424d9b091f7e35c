"""The session state machine: every transition in every state, idleness, and the lock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.core.clock import Clock, FakeClock
from station.core.cpr import is_cpr_shaped, looks_like_cpr
from station.core.ids import new_id
from station.core.model import InvalidValue, QueueEntryStatus
from station.core.ports import AuditAction, AuditSink
from station.core.session import (
    BookedSlot,
    CallNotAllowed,
    CallOutcome,
    IllegalTransition,
    LockReason,
    Session,
    SessionState,
    Transition,
)


@dataclass(frozen=True)
class RecordedEntry:
    """One entry a :class:`RecordingAuditSink` kept."""

    action: str
    staff: str | None
    resident: str | None
    outcome: str
    at: datetime | None = None


class RecordingAuditSink:
    """An ``AuditSink`` that keeps entries in a list.

    Stricter than the real log on purpose: it refuses anything shaped like a CPR number in
    any field, so a test catches personal data on its way into the audit trail.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self.entries: list[RecordedEntry] = []

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        """Keep the entry (timestamped when a clock was given)."""
        # Ids are random hex, which can hold ten digits in a row by chance: for them only
        # the whole value is checked. Action and outcome are words: any CPR-like run is wrong.
        ids_bad = any(v is not None and is_cpr_shaped(v) for v in (staff, resident))
        words_bad = any(looks_like_cpr(v) for v in (action, outcome))
        if ids_bad or words_bad:
            raise ValueError("audit entry refused: a field looks like a CPR number")
        at = self._clock.now() if self._clock is not None else None
        self.entries.append(RecordedEntry(str(action), staff, resident, outcome, at))

    def actions(self) -> list[str]:
        """The recorded action names, in order."""
        return [entry.action for entry in self.entries]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self.entries.clear()


S = SessionState
STAFF_ID = "staff-1"
OTHER_STAFF_ID = "staff-2"


class Station:
    """A session with its fake clock, recording audit sink and a listener's log."""

    def __init__(self, idle_timeout: timedelta = timedelta(minutes=5)) -> None:
        self.clock = FakeClock()
        self.audit = RecordingAuditSink(self.clock)
        self.session = Session(self.clock, self.audit, idle_timeout)
        self.published: list[Transition] = []
        self.session.subscribe(self.published.append)
        self.appointment = make_appointment(self.clock)


def make_appointment(
    clock: FakeClock, *, residents: int = 2, offset_minutes: int = 5
) -> BookedSlot:
    starts_at = clock.now() + timedelta(minutes=offset_minutes)
    return BookedSlot(
        new_id(),
        starts_at,
        starts_at + timedelta(minutes=20),
        (QueueEntryStatus.WAITING,) * residents,
    )


# -- getting a session into each state (through legal transitions only) -------------------------

Setup = Callable[[Station], None]


def _staff(st_: Station) -> None:
    st_.session.unlock(STAFF_ID)


def _staff_pending(st_: Station) -> None:
    _private_admitted(st_)
    st_.session.call_ended(CallOutcome.HUNG_UP_GP)
    st_.session.unlock(STAFF_ID)


def _pre(st_: Station) -> None:
    _staff(st_)
    st_.session.begin_check(st_.appointment)


def _waiting(st_: Station) -> None:
    _pre(st_)
    st_.session.check_passed()


def _attended(st_: Station) -> None:
    _waiting(st_)
    st_.session.gp_admitted()


def _private_admitted(st_: Station) -> None:
    _attended(st_)
    st_.session.lock(LockReason.BUTTON)


def _private_waiting(st_: Station) -> None:
    _waiting(st_)
    st_.session.lock(LockReason.BUTTON)


def _wrap_up(st_: Station) -> None:
    _attended(st_)
    st_.session.call_ended(CallOutcome.HUNG_UP_STATION)


SETUPS: dict[str, tuple[Setup, SessionState]] = {
    "locked": (lambda st_: None, S.LOCKED),
    "staff": (_staff, S.STAFF),
    "staff_with_pending_wrap_up": (_staff_pending, S.STAFF),
    "pre_call_check": (_pre, S.PRE_CALL_CHECK),
    "waiting_for_gp": (_waiting, S.WAITING_FOR_GP),
    "in_call_attended": (_attended, S.IN_CALL_ATTENDED),
    "in_call_private_admitted": (_private_admitted, S.IN_CALL_PRIVATE),
    "in_call_private_waiting": (_private_waiting, S.IN_CALL_PRIVATE),
    "wrap_up": (_wrap_up, S.WRAP_UP),
}

Action = Callable[[Station], "Transition | None"]

ACTIONS: dict[str, Action] = {
    "unlock": lambda st_: st_.session.unlock(OTHER_STAFF_ID),
    "lock": lambda st_: st_.session.lock(LockReason.BUTTON),
    "go_private": lambda st_: st_.session.go_private(),
    "begin_check": lambda st_: st_.session.begin_check(st_.appointment),
    "cancel": lambda st_: st_.session.cancel("gp_unavailable"),
    "check_passed": lambda st_: st_.session.check_passed(),
    "gp_admitted": lambda st_: st_.session.gp_admitted(),
    "call_ended": lambda st_: st_.session.call_ended(CallOutcome.HUNG_UP_GP),
    "resume_wrap_up": lambda st_: st_.session.resume_wrap_up(),
    "finish_wrap_up": lambda st_: st_.session.finish_wrap_up(),
}

NOOP = "no-op"

# The whole table, written out by hand: (setup, action) -> target state, or NOOP.
# Anything missing must raise IllegalTransition.
LEGAL: dict[tuple[str, str], SessionState | str] = {
    ("locked", "unlock"): S.STAFF,
    ("locked", "lock"): NOOP,
    ("staff", "lock"): S.LOCKED,
    ("staff", "begin_check"): S.PRE_CALL_CHECK,
    ("staff_with_pending_wrap_up", "lock"): S.LOCKED,
    ("staff_with_pending_wrap_up", "begin_check"): S.PRE_CALL_CHECK,
    ("staff_with_pending_wrap_up", "resume_wrap_up"): S.WRAP_UP,
    ("pre_call_check", "lock"): S.LOCKED,
    ("pre_call_check", "cancel"): S.STAFF,
    ("pre_call_check", "check_passed"): S.WAITING_FOR_GP,
    ("waiting_for_gp", "lock"): S.IN_CALL_PRIVATE,
    ("waiting_for_gp", "go_private"): S.IN_CALL_PRIVATE,
    ("waiting_for_gp", "cancel"): S.STAFF,
    ("waiting_for_gp", "gp_admitted"): S.IN_CALL_ATTENDED,
    ("in_call_attended", "lock"): S.IN_CALL_PRIVATE,
    ("in_call_attended", "go_private"): S.IN_CALL_PRIVATE,
    ("in_call_attended", "call_ended"): S.WRAP_UP,
    ("in_call_private_admitted", "unlock"): S.IN_CALL_ATTENDED,
    ("in_call_private_admitted", "lock"): NOOP,
    ("in_call_private_admitted", "go_private"): NOOP,
    ("in_call_private_admitted", "call_ended"): S.LOCKED,
    ("in_call_private_waiting", "unlock"): S.WAITING_FOR_GP,
    ("in_call_private_waiting", "lock"): NOOP,
    ("in_call_private_waiting", "go_private"): NOOP,
    ("in_call_private_waiting", "call_ended"): S.LOCKED,
    ("in_call_private_waiting", "gp_admitted"): S.IN_CALL_PRIVATE,
    ("wrap_up", "lock"): S.LOCKED,
    ("wrap_up", "finish_wrap_up"): S.STAFF,
}

# Which audit action each legal transition writes (exactly one entry each).
AUDIT_OF: dict[str, AuditAction] = {
    "unlock": AuditAction.UNLOCK,
    "lock": AuditAction.LOCK,
    "go_private": AuditAction.LOCK,
    "begin_check": AuditAction.CHECK_STARTED,
    "cancel": AuditAction.CHECK_CANCELLED,
    "check_passed": AuditAction.CHECK_PASSED,
    "gp_admitted": AuditAction.CALL_STARTED,
    "call_ended": AuditAction.CALL_ENDED,
    "resume_wrap_up": AuditAction.WRAP_UP_STARTED,
    "finish_wrap_up": AuditAction.WRAP_UP_FINISHED,
}

ALL_CASES = [(setup, action) for setup in SETUPS for action in ACTIONS]


def prepared(setup: str) -> Station:
    station = Station()
    build, expected_state = SETUPS[setup]
    build(station)
    assert station.session.state is expected_state
    station.clock.advance(timedelta(seconds=7))  # so the transition's time is distinguishable
    return station


@pytest.mark.parametrize(("setup", "action"), ALL_CASES)
def test_every_state_and_transition(setup: str, action: str) -> None:
    station = prepared(setup)
    session = station.session
    before_state = session.state
    before_since = session.since
    audit_before = len(station.audit.entries)
    published_before = len(station.published)
    expected = LEGAL.get((setup, action))

    if expected is None:
        with pytest.raises(IllegalTransition) as caught:
            ACTIONS[action](station)
        assert caught.value.user_message
        assert session.state is before_state
        assert session.since == before_since
        assert len(station.audit.entries) == audit_before
        assert len(station.published) == published_before
        return

    result = ACTIONS[action](station)
    if expected == NOOP:
        assert result is None
        assert session.state is before_state
        assert session.since == before_since
        assert len(station.audit.entries) == audit_before  # no-ops are not audited
        assert len(station.published) == published_before
        return

    assert isinstance(result, Transition)
    assert session.state is expected
    assert result.from_state is before_state
    assert result.to_state is expected
    assert result.at == station.clock.now() == session.since
    assert station.published[published_before:] == [result]
    new_entries = station.audit.entries[audit_before:]
    assert [e.action for e in new_entries] == [AUDIT_OF[action].value]
    assert new_entries[0].staff in (STAFF_ID, OTHER_STAFF_ID, None)
    assert new_entries[0].resident is None
    assert session.is_locked is (expected in (S.LOCKED, S.IN_CALL_PRIVATE))


def test_the_table_covers_every_state() -> None:
    reached = {SETUPS[setup][1] for setup, _ in LEGAL}
    assert reached == set(SessionState)


# -- boot, lock, unlock --------------------------------------------------------------------------


def test_the_station_boots_locked() -> None:
    station = Station()
    assert station.session.state is S.LOCKED
    assert station.session.is_locked
    assert station.session.staff is None
    assert station.session.appointment_id is None
    assert station.session.since == station.clock.now()
    assert station.audit.entries == []


def test_lock_is_idempotent_and_audited_once() -> None:
    station = prepared("staff")
    first = station.session.lock(LockReason.STAFF_ACTION)
    assert first is not None
    assert first.reason == "staff_action"
    assert first.staff == STAFF_ID  # who was signed in when it locked
    assert station.session.staff is None
    for reason in LockReason:
        assert station.session.lock(reason) is None
    assert station.audit.actions().count("lock") == 1


@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_thousand_rapid_presses_never_raise_and_never_unlock(setup: str) -> None:
    station = prepared(setup)
    locks_before = station.audit.actions().count("lock")
    results = [station.session.lock(LockReason.BUTTON) for _ in range(1000)]
    assert station.session.is_locked
    assert station.session.staff is None
    changed = [r for r in results if r is not None]
    assert len(changed) <= 1
    assert all(r is None for r in results[1:])
    assert station.audit.actions().count("lock") == locks_before + len(changed)


def test_unlock_needs_a_pseudonymous_staff_id() -> None:
    station = Station()
    for bad in ("", "0101901234", "010190-1234", "Karen Hansen", "x" * 65):
        with pytest.raises(InvalidValue):
            station.session.unlock(bad)
    assert station.session.state is S.LOCKED
    assert station.audit.entries == []


def test_an_unknown_lock_reason_still_locks(caplog: pytest.LogCaptureFixture) -> None:
    station = prepared("staff")
    with caplog.at_level(logging.WARNING):
        result = station.session.lock("bogus")  # type: ignore[arg-type]
    assert result is not None and result.reason == "unknown"
    assert station.session.state is S.LOCKED


def test_coming_back_to_a_private_call() -> None:
    station = prepared("in_call_attended")
    session = station.session
    appointment_id = station.appointment.id
    private = session.go_private()
    assert private is not None
    assert private.reason == LockReason.PRIVATE_CALL.value
    assert session.state is S.IN_CALL_PRIVATE
    assert session.appointment_id == appointment_id  # the call goes on
    assert session.staff is None
    back = session.unlock(OTHER_STAFF_ID)
    assert back.to_state is S.IN_CALL_ATTENDED
    assert session.staff == OTHER_STAFF_ID
    assert session.appointment_id == appointment_id


def test_admission_while_private_stays_private() -> None:
    station = prepared("in_call_private_waiting")
    session = station.session
    assert not session.call_admitted
    admitted = session.gp_admitted()
    assert admitted.from_state is admitted.to_state is S.IN_CALL_PRIVATE
    assert session.call_admitted
    assert session.is_locked
    with pytest.raises(IllegalTransition):
        session.gp_admitted()
    assert session.unlock(STAFF_ID).to_state is S.IN_CALL_ATTENDED
    assert station.audit.entries[-2].outcome == "private"


# -- wrap-up -------------------------------------------------------------------------------------


def test_a_private_call_leaves_its_wrap_up_for_the_next_unlock() -> None:
    station = prepared("in_call_private_admitted")
    session = station.session
    appointment_id = station.appointment.id
    ended = session.call_ended(CallOutcome.HUNG_UP_GP)
    assert ended.to_state is S.LOCKED
    assert ended.appointment == appointment_id
    assert ended.reason == "hung_up_gp"
    assert session.appointment_id is None
    assert session.pending_wrap_up == appointment_id
    session.unlock(STAFF_ID)
    assert session.state is S.STAFF
    assert session.pending_wrap_up == appointment_id  # the UI offers it
    resumed = session.resume_wrap_up()
    assert resumed.to_state is S.WRAP_UP
    assert session.appointment_id == appointment_id
    session.finish_wrap_up()
    assert session.pending_wrap_up is None
    assert session.appointment_id is None
    with pytest.raises(IllegalTransition):
        session.resume_wrap_up()


def test_a_wrap_up_interrupted_by_a_lock_stays_pending() -> None:
    station = prepared("wrap_up")
    session = station.session
    session.lock(LockReason.BUTTON)
    assert session.pending_wrap_up == station.appointment.id
    session.unlock(STAFF_ID)
    with pytest.raises(IllegalTransition):
        session.resume_wrap_up("no-such-appointment")
    assert session.resume_wrap_up(station.appointment.id).appointment == station.appointment.id


# -- calling only a booked appointment, in its window -------------------------------------------


def test_begin_check_refuses_outside_the_window() -> None:
    station = prepared("staff")
    early = make_appointment(station.clock, offset_minutes=16)
    with pytest.raises(CallNotAllowed) as caught:
        station.session.begin_check(early)
    assert "15 minutter" in caught.value.user_message
    past = make_appointment(station.clock, offset_minutes=-20)
    with pytest.raises(CallNotAllowed) as caught:
        station.session.begin_check(past)
    assert "overstået" in caught.value.user_message
    empty = make_appointment(station.clock, residents=0)
    with pytest.raises(CallNotAllowed) as caught:
        station.session.begin_check(empty)
    assert "beboere" in caught.value.user_message
    assert station.session.state is S.STAFF
    assert station.audit.actions() == ["unlock"]
    # At exactly 15 minutes before, it may start.
    exact = make_appointment(station.clock, offset_minutes=15)
    assert station.session.begin_check(exact).appointment == exact.id


def test_a_round_with_only_finished_or_skipped_residents_has_nobody_waiting() -> None:
    station = prepared("staff")
    done = make_appointment(station.clock)
    done = BookedSlot(
        done.id, done.starts_at, done.ends_at, (QueueEntryStatus.DONE, QueueEntryStatus.SKIPPED)
    )
    with pytest.raises(CallNotAllowed):
        station.session.begin_check(done)
    back = BookedSlot(done.id, done.starts_at, done.ends_at, (QueueEntryStatus.IN_CALL,))
    assert station.session.begin_check(back).appointment == done.id


def test_begin_check_honours_a_wider_early_window() -> None:
    station = prepared("staff")
    appointment = make_appointment(station.clock, offset_minutes=25)
    station.session.begin_check(appointment, early=timedelta(minutes=30))
    assert station.session.appointment_id == appointment.id


def test_cancel_reasons_are_machine_words() -> None:
    station = prepared("pre_call_check")
    with pytest.raises(ValueError, match="machine word"):
        station.session.cancel("Karen fik det dårligt")
    assert station.session.cancel().reason is None
    assert station.audit.entries[-1].outcome == "cancelled"


# -- idleness ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "after"),
    [
        ("staff", S.LOCKED),
        ("pre_call_check", S.LOCKED),
        ("waiting_for_gp", S.IN_CALL_PRIVATE),
        ("wrap_up", S.LOCKED),
    ],
)
def test_idle_timeout_locks(setup: str, after: SessionState) -> None:
    station = prepared(setup)
    session = station.session
    session.touch()
    station.clock.advance(timedelta(minutes=4, seconds=59))
    assert session.tick() is None
    assert session.idle_remaining() == timedelta(seconds=1)
    station.clock.advance(timedelta(seconds=1))
    locked = session.tick()
    assert locked is not None
    assert locked.reason == LockReason.IDLE.value
    assert session.state is after
    assert station.audit.entries[-1].outcome == "idle"


def test_touch_postpones_the_idle_lock() -> None:
    station = prepared("staff")
    for _ in range(10):
        station.clock.advance(timedelta(minutes=4))
        station.session.touch()
        assert station.session.tick() is None
    assert station.session.state is S.STAFF


def test_transitions_count_as_activity() -> None:
    station = prepared("staff")
    station.clock.advance(timedelta(minutes=4))
    station.session.begin_check(make_appointment(station.clock))
    station.clock.advance(timedelta(minutes=4))
    assert station.session.tick() is None


@pytest.mark.parametrize("setup", ["in_call_attended", "locked", "in_call_private_admitted"])
def test_idleness_never_locks_a_conversation_or_a_locked_station(setup: str) -> None:
    station = prepared(setup)
    before = station.session.state
    station.clock.advance(timedelta(hours=3))
    assert station.session.tick() is None
    assert station.session.state is before
    assert station.session.idle_remaining() is None


def test_idle_counts_again_after_the_call_ends() -> None:
    station = prepared("in_call_attended")
    station.clock.advance(timedelta(hours=1))
    station.session.call_ended(CallOutcome.HUNG_UP_STATION)
    assert station.session.tick() is None
    station.clock.advance(timedelta(minutes=5))
    assert station.session.tick() is not None
    assert station.session.state is S.LOCKED


def test_a_clock_jumping_backwards_does_not_extend_the_idle_time() -> None:
    station = prepared("staff")
    station.clock.set(station.clock.now() - timedelta(hours=2))
    assert station.session.tick() is None
    station.clock.advance(timedelta(minutes=5))
    assert station.session.tick() is not None


def test_idle_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Session(FakeClock(), RecordingAuditSink(), timedelta(0))


# -- audit and listeners ------------------------------------------------------------------------


def test_a_whole_round_audits_pseudonymous_ids_only() -> None:
    station = Station()
    session = station.session
    session.unlock(STAFF_ID)
    session.begin_check(station.appointment)
    session.check_passed()
    session.gp_admitted()
    session.go_private()
    session.unlock(OTHER_STAFF_ID)
    session.call_ended(CallOutcome.CONNECTION_LOST)
    session.finish_wrap_up()
    session.lock(LockReason.STAFF_ACTION)
    assert station.audit.actions() == [
        "unlock",
        "check_started",
        "check_passed",
        "call_started",
        "lock",
        "unlock",
        "call_ended",
        "wrap_up_finished",
        "lock",
    ]
    for entry in station.audit.entries:
        assert entry.staff in (STAFF_ID, OTHER_STAFF_ID, None)
        assert entry.resident is None
        assert entry.at is not None
        text = f"{entry.action} {entry.staff} {entry.outcome}"
        assert "Beboer" not in text and "Stue" not in text and "Fortrolig" not in text
    assert [entry.staff for entry in station.audit.entries] == [
        STAFF_ID,
        STAFF_ID,
        STAFF_ID,
        STAFF_ID,
        STAFF_ID,  # the lock names who was signed in
        OTHER_STAFF_ID,
        OTHER_STAFF_ID,
        OTHER_STAFF_ID,
        OTHER_STAFF_ID,
    ]


class FailingAudit:
    """An audit sink whose disk is full."""

    def record(self, action: str, *, staff: str | None, resident: str | None, outcome: str) -> None:
        raise OSError("disk full")


def test_unlock_fails_closed_when_the_audit_cannot_be_written() -> None:
    sink: AuditSink = FailingAudit()
    session = Session(FakeClock(), sink)
    with pytest.raises(OSError):
        session.unlock(STAFF_ID)
    assert session.state is S.LOCKED


def test_lock_happens_even_when_the_audit_cannot_be_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    station = prepared("staff")
    station.session._audit = FailingAudit()  # the disk fills up while unlocked
    with caplog.at_level(logging.ERROR):
        result = station.session.lock(LockReason.BUTTON)
    assert result is not None
    assert station.session.state is S.LOCKED
    assert "audit write failed" in caplog.text


def test_a_failing_listener_never_undoes_a_transition(caplog: pytest.LogCaptureFixture) -> None:
    station = Station()
    seen: list[str] = []

    def broken(transition: Transition) -> None:
        raise RuntimeError("listener bug")

    station.session.subscribe(broken)
    station.session.subscribe(lambda t: seen.append(t.name))
    with caplog.at_level(logging.ERROR):
        station.session.unlock(STAFF_ID)
    assert station.session.state is S.STAFF
    assert seen == ["unlock"]
    assert "listener failed" in caplog.text


def test_listeners_see_nested_transitions_in_order() -> None:
    station = Station()
    order: list[str] = []

    def lock_on_unlock(transition: Transition) -> None:
        if transition.name == "unlock":
            station.session.lock(LockReason.REMOTE)

    station.session.subscribe(lock_on_unlock)
    station.session.subscribe(lambda t: order.append(t.name))
    station.session.unlock(STAFF_ID)
    assert order == ["unlock", "lock"]
    assert [t.name for t in station.published] == ["unlock", "lock"]
    assert station.session.state is S.LOCKED


def test_unsubscribe() -> None:
    station = Station()
    seen: list[Transition] = []
    unsubscribe = station.session.subscribe(seen.append)
    station.session.unlock(STAFF_ID)
    unsubscribe()
    unsubscribe()  # twice is harmless
    station.session.lock(LockReason.BUTTON)
    assert [t.name for t in seen] == ["unlock"]


def test_recording_sink_refuses_cpr_numbers() -> None:
    sink = RecordingAuditSink()
    with pytest.raises(ValueError):
        sink.record("record_opened", staff="staff-1", resident="0101901234", outcome="ok")
    with pytest.raises(ValueError):
        sink.record("export", staff="staff-1", resident=None, outcome="sent 010190-1234")
    sink.record("record_opened", staff="staff-1", resident=new_id(), outcome="ok")
    assert sink.actions() == ["record_opened"]
    assert isinstance(sink, AuditSink)


# -- a property: nothing but unlock ever leaves the locked states ----------------------------------

NON_UNLOCK = [name for name in ACTIONS if name != "unlock"] + ["tick", "touch", "advance"]


@given(
    st.sampled_from(list(SETUPS)),
    st.lists(st.sampled_from(NON_UNLOCK), max_size=30),
)
def test_without_unlock_a_locked_station_stays_locked(setup: str, steps: list[str]) -> None:
    station = prepared(setup)
    station.session.lock(LockReason.BUTTON)
    for step in steps:
        try:
            if step == "tick":
                station.session.tick()
            elif step == "touch":
                station.session.touch()
            elif step == "advance":
                station.clock.advance(timedelta(minutes=3))
            else:
                ACTIONS[step](station)
        except IllegalTransition:
            pass
        assert station.session.is_locked
        assert station.session.staff is None
