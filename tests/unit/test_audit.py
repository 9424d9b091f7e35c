"""The audit log: the chain, what it refuses, and how tampering is found, on real SQLite files."""

from __future__ import annotations

import inspect
import os
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.core.clock import FakeClock
from station.core.ports import AuditAction
from station.storage.audit import (
    AUDIT_ACTIONS,
    AUDIT_DB_FILENAME,
    GENESIS_HASH,
    AuditCorrupt,
    AuditError,
    AuditLog,
    AuditRejected,
    entry_hash,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def log(data_dir: Path, clock: FakeClock) -> Iterator[AuditLog]:
    audit = AuditLog.open(data_dir, clock=clock)
    yield audit
    audit.close()


def fill(log: AuditLog, clock: FakeClock, n: int) -> None:
    for i in range(n):
        log.record("record_opened", staff="staff-7", resident=f"res-{i:03d}", outcome="ok")
        clock.advance(1)


def tamper(data_dir: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Edit the file as someone with the SD card would: drop the guards, then write."""
    raw = sqlite3.connect(data_dir / AUDIT_DB_FILENAME)
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    for sql, params in statements:
        raw.execute(sql, params)
    raw.commit()
    raw.close()


# ---------------------------------------------------------------------------- writing


def test_entries_are_chained_with_clock_time(log: AuditLog, clock: FakeClock) -> None:
    assert log.head() == (0, GENESIS_HASH)
    first = log.append("unlock", staff="staff-7", resident=None, outcome="ok")
    clock.advance(timedelta(minutes=3))
    second = log.append("record_opened", staff="staff-7", resident="res-42", outcome="ok")
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert first.time == "2026-11-25T09:00:00.000000+00:00"
    assert second.time == "2026-11-25T09:03:00.000000+00:00"
    assert second.prev_hash == first.hash
    assert second.hash == entry_hash(
        2, second.time, "staff-7", "record_opened", "res-42", "ok", first.hash
    )
    assert log.head() == (2, second.hash)
    assert log.entries() == [first, second]
    assert log.entries(after_seq=1) == [second]


def test_record_matches_the_audit_sink_port(log: AuditLog) -> None:
    signature = inspect.signature(log.record)
    params = signature.parameters
    assert list(params) == ["action", "staff", "resident", "outcome"]
    assert params["action"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for name in ("staff", "resident", "outcome"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[name].default is inspect.Parameter.empty
    log.record("lock", staff=None, resident=None, outcome="ok")
    assert log.head()[0] == 1


def test_the_clock_time_is_converted_to_utc(data_dir: Path) -> None:
    from zoneinfo import ZoneInfo

    clock = FakeClock(datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Copenhagen")))
    with AuditLog.open(data_dir, clock=clock) as audit:
        entry = audit.append("lock", staff=None, resident=None, outcome="ok")
    assert entry.time == "2026-07-01T10:00:00.000000+00:00"


def test_every_entry_is_on_disk_when_record_returns(log: AuditLog, data_dir: Path) -> None:
    log.record("unlock", staff="staff-1", resident=None, outcome="ok")
    raw = sqlite3.connect(data_dir / AUDIT_DB_FILENAME)
    assert raw.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
    raw.close()
    assert log.verify().ok


def test_the_chain_continues_after_reopening(data_dir: Path, clock: FakeClock) -> None:
    with AuditLog.open(data_dir, clock=clock) as audit:
        fill(audit, clock, 3)
    with AuditLog.open(data_dir, clock=clock) as audit:
        entry = audit.append("lock", staff="staff-7", resident=None, outcome="ok")
        assert entry.seq == 4
        assert audit.verify().ok


def test_ordinary_sql_cannot_update_or_delete(
    log: AuditLog, clock: FakeClock, data_dir: Path
) -> None:
    fill(log, clock, 2)
    raw = sqlite3.connect(data_dir / AUDIT_DB_FILENAME)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("UPDATE audit_log SET outcome = 'denied' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("DELETE FROM audit_log WHERE seq = 2")
    raw.close()
    assert log.verify().ok


# -------------------------------------------------------------------------- refusing


@pytest.mark.parametrize(
    ("kwargs", "secret"),
    [
        ({"staff": "0101701234"}, "0101701234"),
        ({"staff": "010170-1234"}, "010170-1234"),
        ({"resident": "res-0101701234"}, "0101701234"),
        ({"resident": "Anna Hansen"}, "Anna"),
        ({"resident": "anna hansen"}, "anna"),
        ({"resident": "Åse"}, "Åse"),
        ({"staff": ""}, None),
        ({"staff": "-leading-dash"}, None),
        ({"staff": "s" * 65}, None),
        ({"outcome": "ok 0101701234"}, "0101701234"),
        ({"outcome": "wrong pin"}, None),
        ({"outcome": "OK"}, None),
        ({"outcome": ""}, None),
        ({"action": "looked at Anna's journal"}, "Anna"),
        ({"action": "delete_everything"}, None),
    ],
)
def test_anything_that_might_be_personal_is_refused_unquoted(
    log: AuditLog, kwargs: dict[str, str], secret: str | None
) -> None:
    args = {"action": "record_opened", "staff": "staff-7", "resident": "res-1", "outcome": "ok"}
    args.update(kwargs)
    action = args.pop("action")
    with pytest.raises(AuditRejected) as caught:
        log.record(action, **args)
    if secret:
        assert secret not in str(caught.value)
    assert caught.value.user_message.startswith("Handlingen")
    assert log.head() == (0, GENESIS_HASH)  # nothing written


def test_random_uuid_ids_are_pseudonyms_even_with_a_digit_run(log: AuditLog) -> None:
    # uuid4().hex (the domain's resident ids) holds ten digits in a row about 1 in 12 times.
    lucky = "0123456789ab4cde8f0123456789abcd"
    assert uuid.UUID(lucky).version == 4
    log.record("record_opened", staff="Staff.7", resident=lucky, outcome="ok")
    for _ in range(500):
        log.record("record_opened", staff="staff-7", resident=uuid.uuid4().hex, outcome="ok")
    # The same run in something that is not a random UUID is refused.
    with pytest.raises(AuditRejected):
        log.record("record_opened", staff=None, resident="0101701234abcdef", outcome="ok")
    assert log.verify().ok


def test_domain_action_members_are_stored_as_plain_text(log: AuditLog) -> None:
    for action in AuditAction:
        entry = log.append(action, staff="staff-7", resident=None, outcome="ok")
        assert type(entry.action) is str and entry.action == action.value
    assert log.verify().ok
    assert {a.value for a in AuditAction} <= AUDIT_ACTIONS


def test_no_staff_or_resident_is_allowed(log: AuditLog) -> None:
    entry = log.append("remote_lock", staff=None, resident=None, outcome="ok")
    assert (entry.staff, entry.resident) == (None, None)
    # null and the text "null" hash differently.
    assert entry_hash(1, entry.time, None, "lock", None, "ok", GENESIS_HASH) != entry_hash(
        1, entry.time, "null", "lock", None, "ok", GENESIS_HASH
    )


def test_a_clock_without_timezone_is_an_error(data_dir: Path) -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2026, 11, 25, 9, 0)

    with AuditLog.open(data_dir, clock=NaiveClock()) as audit:
        with pytest.raises(AuditError, match="timezone"):
            audit.record("lock", staff=None, resident=None, outcome="ok")
        assert audit.head()[0] == 0


def test_known_actions_cover_the_design() -> None:
    for action in ("unlock", "lock", "record_opened", "call_started", "call_ended", "export"):
        assert action in AUDIT_ACTIONS
    assert any(a.startswith("remote_") for a in AUDIT_ACTIONS)


# -------------------------------------------------------------------------- verifying


def test_an_intact_log_verifies(log: AuditLog, clock: FakeClock) -> None:
    empty = log.verify()
    assert (empty.ok, empty.checked, empty.head) == (True, 0, (0, GENESIS_HASH))
    fill(log, clock, 50)
    report = log.verify(expected_head=log.head())
    assert (report.ok, report.checked, report.first_bad_seq, report.problem) == (
        True,
        50,
        None,
        None,
    )


def test_an_edited_entry_is_found(log: AuditLog, clock: FakeClock, data_dir: Path) -> None:
    fill(log, clock, 10)
    tamper(data_dir, ("UPDATE audit_log SET resident = 'res-999' WHERE seq = 6", ()))
    report = log.verify()
    assert not report.ok
    assert report.first_bad_seq == 6
    assert "edited" in (report.problem or "")


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(
    log: AuditLog, clock: FakeClock, data_dir: Path
) -> None:
    fill(log, clock, 10)
    e = log.entries()[3]  # seq 4
    forged = entry_hash(e.seq, e.time, e.staff, "lock", e.resident, e.outcome, e.prev_hash)
    tamper(data_dir, ("UPDATE audit_log SET action = 'lock', hash = ? WHERE seq = 4", (forged,)))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 5)


def test_a_deleted_entry_is_found(log: AuditLog, clock: FakeClock, data_dir: Path) -> None:
    fill(log, clock, 10)
    tamper(data_dir, ("DELETE FROM audit_log WHERE seq = 4", ()))
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "missing" in (report.problem or "")


def test_a_deleted_first_entry_is_found(log: AuditLog, clock: FakeClock, data_dir: Path) -> None:
    fill(log, clock, 5)
    tamper(data_dir, ("DELETE FROM audit_log WHERE seq = 1", ()))
    assert log.verify().first_bad_seq == 1


def test_a_deletion_hidden_by_renumbering_is_found(
    log: AuditLog, clock: FakeClock, data_dir: Path
) -> None:
    fill(log, clock, 8)
    tamper(
        data_dir,
        ("DELETE FROM audit_log WHERE seq = 3", ()),
        ("UPDATE audit_log SET seq = seq - 1 WHERE seq > 3", ()),
    )
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 3)


def test_reordered_entries_are_found(log: AuditLog, clock: FakeClock, data_dir: Path) -> None:
    fill(log, clock, 8)
    tamper(
        data_dir,
        ("UPDATE audit_log SET seq = -5 WHERE seq = 5", ()),
        ("UPDATE audit_log SET seq = 5 WHERE seq = 6", ()),
        ("UPDATE audit_log SET seq = 6 WHERE seq = -5", ()),
    )
    report = log.verify()
    assert (report.ok, report.first_bad_seq) == (False, 5)


def test_a_cut_off_tail_is_found_only_against_an_anchor(
    log: AuditLog, clock: FakeClock, data_dir: Path
) -> None:
    fill(log, clock, 10)
    anchor = log.head()
    tamper(data_dir, ("DELETE FROM audit_log WHERE seq > 7", ()))
    assert log.verify().ok  # a shorter chain is still a valid chain...
    report = log.verify(expected_head=anchor)
    assert (report.ok, report.first_bad_seq) == (False, 8)  # ...but not the anchored one
    assert "removed from the end" in (report.problem or "")
    assert report.head[0] == 7


def test_a_rewritten_history_differs_from_the_anchor(
    data_dir: Path, clock: FakeClock, tmp_path: Path
) -> None:
    with AuditLog.open(data_dir, clock=clock) as audit:
        fill(audit, clock, 5)
        anchor = audit.head()
    # Someone replaces the whole file with a consistent forgery of the same length.
    (data_dir / AUDIT_DB_FILENAME).unlink()
    for suffix in ("-wal", "-shm"):
        (data_dir / f"{AUDIT_DB_FILENAME}{suffix}").unlink(missing_ok=True)
    with AuditLog.open(data_dir, clock=clock) as forged:
        for _ in range(6):
            forged.record("lock", staff="staff-1", resident=None, outcome="ok")
        assert forged.verify().ok
        report = forged.verify(expected_head=anchor)
        assert (report.ok, report.first_bad_seq) == (False, 5)
        assert "rewritten" in (report.problem or "")


def test_an_anchor_at_the_empty_log(log: AuditLog) -> None:
    assert log.verify(expected_head=(0, GENESIS_HASH)).ok
    assert not log.verify(expected_head=(0, "f" * 64)).ok


# ------------------------------------------------------------------------ damaged file


def test_a_damaged_audit_file_is_refused_and_left_alone(data_dir: Path, clock: FakeClock) -> None:
    path = data_dir / AUDIT_DB_FILENAME
    path.write_bytes(os.urandom(4096))
    before = path.read_bytes()
    with pytest.raises(AuditCorrupt, match="left untouched"):
        AuditLog.open(data_dir, clock=clock)
    assert path.read_bytes() == before


def test_a_truncated_audit_file_is_refused(data_dir: Path, clock: FakeClock) -> None:
    with AuditLog.open(data_dir, clock=clock) as audit:
        for _ in range(400):
            audit.record("lock", staff="staff-1", resident=None, outcome="ok")
    path = data_dir / AUDIT_DB_FILENAME
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AuditCorrupt):
        AuditLog.open(data_dir, clock=clock)
    assert path.read_bytes() == data[: len(data) // 2]


def test_a_closed_log_refuses_calls(data_dir: Path, clock: FakeClock) -> None:
    audit = AuditLog.open(data_dir, clock=clock)
    audit.close()
    with pytest.raises(AuditError, match="closed"):
        audit.record("lock", staff=None, resident=None, outcome="ok")


def test_chain_hash_at_is_recomputed_and_shows_a_rechained_rewrite(tmp_path: Path) -> None:
    """Issue 14, item 6: the proof of an anchored head is recomputed from the content."""
    clock = FakeClock()
    log = AuditLog.open(tmp_path, clock=clock)
    try:
        for _ in range(5):
            clock.advance(timedelta(seconds=1))
            log.record("unlock", staff="s-1", resident=None, outcome="ok")
        stored = {e.seq: e.hash for e in log.entries()}
        assert all(log.chain_hash_at(seq) == stored[seq] for seq in stored)
        assert log.chain_hash_at(9) == GENESIS_HASH
    finally:
        log.close()
    # Entry 2 deleted, the rest renumbered and re-chained: verify() passes, the proof at 4
    # (an anchored seq) no longer matches.
    db = sqlite3.connect(tmp_path / "audit.db")
    rows = db.execute(
        "SELECT seq, time, staff, action, resident, outcome FROM audit_log ORDER BY seq"
    ).fetchall()
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log")
    prev = GENESIS_HASH
    for n, (_seq, time, staff, action, resident, outcome) in enumerate(
        [r for r in rows if r[0] != 2], start=1
    ):
        digest = entry_hash(n, time, staff, action, resident, outcome, prev)
        db.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (n, time, staff, action, resident, outcome, prev, digest),
        )
        prev = digest
    db.commit()
    db.close()
    log = AuditLog.open(tmp_path, clock=FakeClock())
    try:
        assert log.verify().ok
        assert log.chain_hash_at(4) != stored[4]
    finally:
        log.close()
