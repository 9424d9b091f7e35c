"""The domain model: validation, hidden personal fields, appointments and the round's queue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.core.cpr import parse_cpr
from station.core.ids import is_opaque_id
from station.core.model import (
    Appointment,
    AppointmentError,
    ConsultationType,
    DomainError,
    GpClinic,
    IllegalStatusChange,
    InvalidValue,
    Queue,
    QueueEntry,
    QueueEntryStatus,
    QueueError,
    Resident,
    WithCpr,
    WithoutCpr,
    check_opaque_id,
    new_id,
)
from station.errors import StationError

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
START = datetime(2026, 11, 25, 10, 0, tzinfo=COPENHAGEN)

NAME = "Karen Testesen"
ROOM = "Stue 14B"
NOTE = "Hører dårligt på venstre øre"
BORN = date(1931, 5, 17)


def resident_without_cpr(name: str = NAME) -> Resident:
    return Resident.new(WithoutCpr(name, BORN, ROOM, NOTE))


def resident_with_cpr() -> Resident:
    return Resident.new(WithCpr(parse_cpr("170531-1234"), "Poul Prøvesen", "Stue 3", None))


def appointment(queue: Queue | None = None, **overrides: object) -> Appointment:
    fields: dict[str, object] = {
        "id": new_id(),
        "clinic_id": "clinic-1",
        "starts_at": START,
        "duration": timedelta(minutes=20),
        "consultation_type": ConsultationType.ASSISTED_CONSULTATION,
        "reason": "Opfølgning på blodtryk",
    }
    fields.update(overrides)
    if queue is not None:
        fields["queue"] = queue
    return Appointment(**fields)  # type: ignore[arg-type]


def round_of(count: int) -> tuple[Queue, list[QueueEntry]]:
    queue = Queue()
    entries = [queue.add(resident_without_cpr(f"Beboer {i}")) for i in range(count)]
    return queue, entries


# -- consultation types and clinics ----------------------------------------------------------


def test_consultation_types_carry_medcoms_danish_labels() -> None:
    assert ConsultationType.VIDEO_CONSULTATION.label_da == "Videokonsultation"
    assert ConsultationType.ASSISTED_CONSULTATION.label_da == "Assisteret videokonsultation"
    assert ConsultationType.VIDEO_CONFERENCE.label_da == "Videokonference"
    assert len(ConsultationType) == 3


def test_clinic_normalises_the_provider_number_to_six_digits() -> None:
    clinic = GpClinic("clinic-1", " Lægerne i Byen ", "57584", "room-abc")
    assert clinic.provider_number == "057584"
    assert clinic.name == "Lægerne i Byen"
    assert GpClinic("c", "Klinik", "123456", "https://video.example.dk/r/1").provider_number == (
        "123456"
    )


@pytest.mark.parametrize("number", ["", "1234567", "12a456", "12 456", "-12345", "١٢٣٤٥٦"])
def test_clinic_rejects_bad_provider_numbers(number: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        GpClinic("clinic-1", "Klinik", number, "room")
    assert "Ydernummeret" in caught.value.user_message


@pytest.mark.parametrize(
    "room",
    ["", "   ", "http://video.example.dk/r/1", "https://", "ftp://x", "has space", "a/b"],
)
def test_clinic_rejects_bad_video_rooms(room: str) -> None:
    with pytest.raises(InvalidValue):
        GpClinic("clinic-1", "Klinik", "123456", room)


def test_clinic_is_frozen() -> None:
    clinic = GpClinic("clinic-1", "Klinik", "123456", "room")
    with pytest.raises(AttributeError):
        clinic.name = "Andet"  # type: ignore[misc]


# -- residents -------------------------------------------------------------------------------


def test_resident_ids_are_random_and_never_derived_from_cpr() -> None:
    cpr = parse_cpr("170531-1234")
    first = Resident.new(WithCpr(cpr, "Poul"))
    second = Resident.new(WithCpr(cpr, "Poul"))
    assert first.id != second.id
    assert is_opaque_id(first.id) and is_opaque_id(second.id)
    for resident in (first, second):
        assert cpr.digits not in resident.id
        assert cpr.digits[:6] not in resident.id


@pytest.mark.parametrize(
    "bad_id", ["1705311234", "170531-1234", "", "not an id", "x" * 65, "-lead", "123", 123]
)
def test_resident_rejects_ids_that_are_not_opaque(bad_id: object) -> None:
    with pytest.raises(InvalidValue):
        Resident(bad_id, WithoutCpr(NAME, BORN, ROOM))  # type: ignore[arg-type]


def test_reprs_never_show_personal_fields() -> None:
    without = resident_without_cpr()
    with_cpr = resident_with_cpr()
    queue = Queue()
    entry = queue.add(without, reason="Svimmelhed efter fald")
    queue.add(with_cpr)
    appt = appointment(queue)
    clinic = GpClinic("clinic-1", "Lægehuset Hansen", "123456", "https://v.example.dk/rum/7")
    secrets = [
        NAME,
        "Karen",
        ROOM,
        "14B",
        NOTE,
        "1931",
        "Poul",
        "Stue 3",
        "170531",
        "Svimmelhed",
        "blodtryk",
        "Hansen",
        "rum/7",
    ]
    shown = " ".join(
        [
            repr(without),
            str(without),
            repr(without.identity),
            repr(with_cpr),
            repr(with_cpr.identity),
            repr(entry),
            repr(queue),
            repr(appt),
            repr(clinic),
            repr(list(queue)),
        ]
    )
    for secret in secrets:
        assert secret not in shown, secret
    assert without.id in repr(without)  # the pseudonymous id is fine to show


def test_resident_fields_are_normalised_and_readable() -> None:
    resident = Resident.new(WithoutCpr("  Karen  ", BORN, " 14 ", "  "))
    assert resident.display_name == "Karen"
    assert resident.room == "14"
    assert resident.identity.note is None
    assert resident.birth_date == BORN
    assert not resident.has_cpr
    with_cpr = resident_with_cpr()
    assert with_cpr.has_cpr
    assert with_cpr.birth_date == date(1931, 5, 17)


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 201, "Karen\x00", "Karen\nHansen", "Kar\u202een", "Karen\x1b[31m"],
)
def test_resident_rejects_bad_names_with_a_danish_message(name: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        WithoutCpr(name, BORN, ROOM)
    assert "Navnet" in caught.value.user_message
    if name.strip():
        assert name.strip() not in str(caught.value)


def test_resident_rejects_implausible_birth_dates() -> None:
    tomorrow_plus = datetime.now(UTC).date() + timedelta(days=3)
    for born in (tomorrow_plus, date(1850, 1, 1)):
        with pytest.raises(InvalidValue) as caught:
            WithoutCpr(NAME, born, ROOM)
        assert "Fødselsdatoen" in caught.value.user_message
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, datetime(1931, 5, 17), ROOM)  # a datetime is not a date
    # A well-formed CPR number from the 1800s is not a living resident.
    with pytest.raises(InvalidValue):
        WithCpr(parse_cpr("010160-5000"), "Gammel")


def test_resident_rejects_long_rooms_and_notes_and_allows_multiline_notes() -> None:
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, BORN, "x" * 51)
    with pytest.raises(InvalidValue):
        WithoutCpr(NAME, BORN, ROOM, "x" * 2001)
    assert WithoutCpr(NAME, BORN, ROOM, "linje 1\nlinje 2").note == "linje 1\nlinje 2"
    with pytest.raises(InvalidValue):
        WithCpr("170531-1234", "Poul")  # type: ignore[arg-type]


def test_errors_belong_to_the_hierarchy() -> None:
    assert issubclass(InvalidValue, DomainError)
    assert issubclass(DomainError, StationError)
    assert issubclass(IllegalStatusChange, QueueError)
    assert issubclass(AppointmentError, DomainError)


def test_opaque_ids() -> None:
    assert check_opaque_id("staff-7", "staff") == "staff-7"
    # A run of ten digits could be a CPR number inside an id ("a0101901234b" holds
    # 010190-1234): refused, except in a whole uuid4 hex, where it is chance.
    assert (
        check_opaque_id("8d0b1a2c3e4f4a5b9c7d1234567890ab", "x")
        == "8d0b1a2c3e4f4a5b9c7d1234567890ab"
    )
    for _ in range(200):
        fresh = new_id()
        assert check_opaque_id(fresh, "appointment") == fresh
    for bad in ("", "1705311234", "a0101901234b", "17053-11234x" * 10, "a b", "12345", "-x", None):
        with pytest.raises(InvalidValue):
            check_opaque_id(bad, "staff")


# -- appointments ----------------------------------------------------------------------------


def test_a_naive_start_time_is_refused() -> None:
    with pytest.raises(AppointmentError) as caught:
        appointment(starts_at=datetime(2026, 11, 25, 10, 0))
    assert "aftale" in caught.value.user_message


@pytest.mark.parametrize(
    "duration", [timedelta(0), timedelta(minutes=-5), timedelta(hours=4, seconds=1)]
)
def test_bad_durations_are_refused(duration: timedelta) -> None:
    with pytest.raises(AppointmentError):
        appointment(duration=duration)


def test_callable_window_opens_15_minutes_early_and_closes_at_the_end() -> None:
    appt = appointment()
    opens, closes = appt.window()
    assert opens == START - timedelta(minutes=15)
    assert closes == START + timedelta(minutes=20) == appt.ends_at
    assert not appt.is_callable_at(opens - timedelta(seconds=1))
    assert appt.is_callable_at(opens)
    assert appt.is_callable_at(START)
    assert appt.is_callable_at(closes - timedelta(seconds=1))
    assert not appt.is_callable_at(closes)
    # The same instant in another zone.
    assert appt.is_callable_at(START.astimezone(UTC))
    assert appt.is_callable_at(START - timedelta(minutes=30), early=timedelta(minutes=30))
    with pytest.raises(AppointmentError):
        appt.is_callable_at(datetime(2026, 11, 25, 10, 0))


@given(st.integers(-24 * 3600, 24 * 3600))
def test_callable_matches_the_window(offset_seconds: int) -> None:
    appt = appointment()
    now = START + timedelta(seconds=offset_seconds)
    expected = -15 * 60 <= offset_seconds < 20 * 60
    assert appt.is_callable_at(now) is expected


def test_appointment_booking_is_frozen_but_its_queue_runs() -> None:
    appt = appointment()
    with pytest.raises(AttributeError):
        appt.starts_at = START + timedelta(hours=1)  # type: ignore[misc]
    appt.queue.add(resident_without_cpr())
    assert len(appt.queue) == 1
    assert not appt.is_round
    appt.queue.add(resident_with_cpr())
    assert appt.is_round
    assert appointment() != appointment()  # identity, never "the same booking"


# -- the queue -------------------------------------------------------------------------------


def test_a_round_runs_in_order_with_advance() -> None:
    queue, entries = round_of(3)
    assert queue.is_round
    assert queue.current() is None
    assert queue.next_waiting() == entries[0]
    first = queue.advance()
    assert first is not None and first.id == entries[0].id
    assert queue.current() == first
    assert first.status is QueueEntryStatus.IN_CALL
    second = queue.advance()
    assert second is not None and second.id == entries[1].id
    assert queue.get(entries[0].id).status is QueueEntryStatus.DONE
    assert queue.previous() is not None and queue.previous().id == entries[0].id  # type: ignore[union-attr]
    third = queue.advance(QueueEntryStatus.SKIPPED)
    assert third is not None and third.id == entries[2].id
    assert queue.get(entries[1].id).status is QueueEntryStatus.SKIPPED
    assert queue.advance() is None
    assert queue.is_finished
    assert [e.status for e in queue] == [
        QueueEntryStatus.DONE,
        QueueEntryStatus.SKIPPED,
        QueueEntryStatus.DONE,
    ]
    # The skipped resident comes back and can be seen at the end of the round.
    queue.unskip(entries[1].id)
    assert not queue.is_finished
    back = queue.advance()
    assert back is not None and back.id == entries[1].id


def test_only_one_resident_in_the_call_at_a_time() -> None:
    queue, entries = round_of(2)
    queue.start(entries[1].id)
    with pytest.raises(QueueError) as caught:
        queue.start(entries[0].id)
    assert "allerede" in caught.value.user_message
    with pytest.raises(IllegalStatusChange):
        queue.start(entries[1].id)  # already in the call
    queue.finish_current()
    queue.start(entries[0].id)
    assert queue.current() is not None


def test_status_changes_follow_the_table() -> None:
    allowed = {
        (QueueEntryStatus.WAITING, QueueEntryStatus.IN_CALL),
        (QueueEntryStatus.WAITING, QueueEntryStatus.SKIPPED),
        (QueueEntryStatus.IN_CALL, QueueEntryStatus.DONE),
        (QueueEntryStatus.IN_CALL, QueueEntryStatus.SKIPPED),
        (QueueEntryStatus.IN_CALL, QueueEntryStatus.WAITING),
        (QueueEntryStatus.SKIPPED, QueueEntryStatus.WAITING),
        (QueueEntryStatus.SKIPPED, QueueEntryStatus.IN_CALL),
    }
    resident = resident_without_cpr()
    for before in QueueEntryStatus:
        for after in QueueEntryStatus:
            entry = QueueEntry(new_id(), resident, before)
            if (before, after) in allowed:
                assert entry.with_status(after).status is after
                assert entry.status is before  # frozen: a new entry, not a change
            else:
                with pytest.raises(IllegalStatusChange) as caught:
                    entry.with_status(after)
                assert caught.value.user_message


def test_done_is_final() -> None:
    queue, entries = round_of(1)
    queue.start(entries[0].id)
    queue.finish_current()
    for operation in (queue.skip, queue.unskip, queue.start, queue.remove):
        with pytest.raises(QueueError):
            operation(entries[0].id)
    with pytest.raises(QueueError):
        queue.finish_current()


def test_remove_only_waiting_or_skipped() -> None:
    queue, entries = round_of(3)
    queue.skip(entries[1].id)
    queue.start(entries[0].id)
    with pytest.raises(QueueError) as caught:
        queue.remove(entries[0].id)
    assert "fjernes" in caught.value.user_message
    assert queue.remove(entries[1].id).id == entries[1].id
    assert queue.remove(entries[2].id).id == entries[2].id
    assert [e.id for e in queue] == [entries[0].id]
    with pytest.raises(QueueError):
        queue.remove(entries[2].id)  # gone already


def test_move_reorders_waiting_residents() -> None:
    queue, entries = round_of(4)
    queue.move(entries[3].id, 0)
    assert [e.id for e in queue] == [entries[i].id for i in (3, 0, 1, 2)]
    queue.move(entries[3].id, 3)
    assert [e.id for e in queue] == [entries[i].id for i in (0, 1, 2, 3)]
    assert queue.next_waiting() == queue.get(entries[0].id)
    queue.move(entries[2].id, 0)
    assert queue.advance() == queue.get(entries[2].id)
    with pytest.raises(QueueError):
        queue.move(entries[2].id, 1)  # in the call
    for bad_index in (-1, 4, 99):
        with pytest.raises(QueueError):
            queue.move(entries[0].id, bad_index)


@given(st.permutations(range(5)))
def test_moves_reach_any_order(order: list[int]) -> None:
    queue, entries = round_of(5)
    for target, source in enumerate(order):
        queue.move(entries[source].id, target)
    assert [e.id for e in queue] == [entries[i].id for i in order]


def test_a_resident_is_queued_once_and_queues_are_bounded() -> None:
    queue = Queue()
    resident = resident_without_cpr()
    queue.add(resident)
    with pytest.raises(QueueError) as caught:
        queue.add(resident)
    assert "allerede" in caught.value.user_message
    for i in range(29):
        queue.add(resident_without_cpr(f"Beboer {i}"))
    with pytest.raises(QueueError):
        queue.add(resident_without_cpr("En for mange"))


def test_return_current_puts_the_resident_back_in_line() -> None:
    queue, _ = round_of(2)
    queue.advance()
    back = queue.return_current()
    assert back.status is QueueEntryStatus.WAITING
    assert queue.current() is None
    assert queue.next_waiting() == back
    with pytest.raises(QueueError):
        queue.return_current()


def test_a_queue_restored_from_entries_keeps_the_invariants() -> None:
    first, second = resident_without_cpr(), resident_with_cpr()
    entries = [
        QueueEntry(new_id(), first, QueueEntryStatus.IN_CALL),
        QueueEntry(new_id(), second, QueueEntryStatus.IN_CALL),
    ]
    with pytest.raises(QueueError):
        Queue(entries)
    restored = Queue([entries[0], QueueEntry(new_id(), second)])
    assert restored.current() == entries[0]


def test_advance_refuses_odd_outcomes_and_previous_starts_empty() -> None:
    queue, _ = round_of(2)
    assert queue.previous() is None
    with pytest.raises(QueueError):
        queue.advance(QueueEntryStatus.WAITING)


@given(
    st.lists(
        st.sampled_from(["add", "remove", "move", "skip", "unskip", "start", "finish", "advance"]),
        max_size=40,
    ),
    st.data(),
)
def test_random_operations_never_break_the_invariants(
    operations: list[str], data: st.DataObject
) -> None:
    queue = Queue()
    for operation in operations:
        ids = [e.id for e in queue]
        try:
            if operation == "add":
                queue.add(resident_without_cpr(f"Beboer {len(ids)}"))
            elif operation == "finish":
                queue.finish_current()
            elif operation == "advance":
                queue.advance()
            elif ids:
                entry_id = data.draw(st.sampled_from(ids))
                if operation == "move":
                    queue.move(entry_id, data.draw(st.integers(0, len(ids) - 1)))
                else:
                    getattr(queue, operation)(entry_id)
        except QueueError as error:
            assert error.user_message
        in_call = [e for e in queue if e.status is QueueEntryStatus.IN_CALL]
        assert len(in_call) <= 1
        assert len({e.id for e in queue}) == len(queue)
        assert len({e.resident.id for e in queue}) == len(queue)
