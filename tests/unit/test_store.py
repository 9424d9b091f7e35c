"""The blind store: schema, validation, durability, retention and damage, on real SQLite files."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import station.storage.store as store_module
import station.storage.store.checks as store_checks
import station.storage.store.repository as store_repository
from station.core.clock import FakeClock
from station.core.model import QueueEntryStatus
from station.keys.crypto import FieldRef, SealError, open_field, seal_field
from station.storage.store import (
    DB_FILENAME,
    ENTRY_FIELDS,
    MAX_ENTRIES_PER_CONSULTATION,
    MAX_SEALED_BYTES,
    STORE_SCHEMA_VERSION,
    BlindStore,
    Clinic,
    ConsultationStatus,
    ConsultationType,
    StoreConflict,
    StoreCorrupt,
    StoreError,
    StoreInvalid,
    StoreNotFound,
    StoreSchemaTooNew,
    UpcomingConsultation,
    new_id,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CPR = "0101701234"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(data_dir: Path, clock: FakeClock) -> Iterator[BlindStore]:
    s = BlindStore.open(data_dir, clock=clock)
    s.put_clinic(Clinic("clinic-1", "Lægehuset Ærøskøbing", "123456", "room-abc"))
    yield s
    s.close()


def book(store: BlindStore, cid: str | None = None, *, start: datetime = T0) -> str:
    cid = cid or new_id()
    store.create_consultation(
        consultation_id=cid,
        clinic_id="clinic-1",
        starts_at=start,
        ends_at=start + timedelta(minutes=15),
        consultation_type=ConsultationType.VIDEO_CONSULTATION,
    )
    return cid


def sealed_fields(key: bytes, entry_id: str, **values: str) -> dict[str, bytes]:
    return {
        name: seal_field(key, text.encode(), FieldRef("queue_entries", entry_id, name))
        for name, text in values.items()
    }


def files_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def fragments(blob: bytes) -> list[bytes]:
    """24-byte pieces of a blob: big blobs span overflow pages, so they are never contiguous."""
    return [blob[i : i + 24] for i in range(0, len(blob) - 23, 200)]


# ----------------------------------------------------------------------- opening


def test_open_creates_a_private_wal_database_with_the_safe_settings(data_dir: Path) -> None:
    with BlindStore.open(data_dir) as s:
        assert s.path == data_dir / DB_FILENAME
        assert s.pragmas() == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "secure_delete": 1,
            "temp_store": 2,  # MEMORY
        }
        assert s.schema_version() == STORE_SCHEMA_VERSION
    assert stat.S_IMODE((data_dir / DB_FILENAME).stat().st_mode) == 0o600


def test_missing_data_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        BlindStore.open(tmp_path / "not-mounted")
    assert not (tmp_path / "not-mounted").exists()


def test_reopening_keeps_everything(data_dir: Path, clock: FakeClock) -> None:
    with BlindStore.open(data_dir, clock=clock) as s:
        s.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room"))
        cid = book(s)
    with BlindStore.open(data_dir, clock=clock) as s:
        assert s.get_consultation(cid).clinic_id == "clinic-1"
        assert s.schema_version() == STORE_SCHEMA_VERSION


def test_newer_schema_is_refused_and_the_file_left_alone(data_dir: Path) -> None:
    with BlindStore.open(data_dir):
        pass
    path = data_dir / DB_FILENAME
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(99),))
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreSchemaTooNew, match="schema version 99") as caught:
        BlindStore.open(data_dir)
    assert "nyere version" in caught.value.user_message
    assert path.read_bytes() == before


def test_migrations_run_forward_from_an_older_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BlindStore.open(data_dir) as s:
        s.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room"))
    step = ("CREATE TABLE future_things (id TEXT PRIMARY KEY) STRICT",)
    monkeypatch.setattr(store_repository, "MIGRATIONS", (*store_module.MIGRATIONS, step))
    with BlindStore.open(data_dir) as s:
        assert s.schema_version() == STORE_SCHEMA_VERSION + 1
        assert s.get_clinic("clinic-1").name == "Lægehuset"  # data kept across the step
    raw = sqlite3.connect(data_dir / DB_FILENAME)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert "future_things" in tables


def test_a_failing_migration_leaves_the_old_version(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with BlindStore.open(data_dir):
        pass
    bad_step = ("CREATE TABLE half_done (id TEXT) STRICT", "THIS IS NOT SQL")
    monkeypatch.setattr(store_repository, "MIGRATIONS", (*store_module.MIGRATIONS, bad_step))
    with pytest.raises(sqlite3.OperationalError):
        BlindStore.open(data_dir)
    monkeypatch.undo()
    with BlindStore.open(data_dir) as s:
        assert s.schema_version() == STORE_SCHEMA_VERSION
    raw = sqlite3.connect(data_dir / DB_FILENAME)
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert "half_done" not in tables


def test_a_closed_store_refuses_calls(data_dir: Path) -> None:
    s = BlindStore.open(data_dir)
    s.close()
    s.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        s.list_clinics()


# -------------------------------------------------------------------- damaged files


def _good_database(data_dir: Path) -> Path:
    with BlindStore.open(data_dir, clock=FakeClock(T0)) as s:
        s.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room"))
        key = os.urandom(32)
        for _ in range(40):
            cid = book(s)
            eid = new_id()
            s.add_entry(
                entry_id=eid,
                consultation_id=cid,
                sealed=sealed_fields(key, eid, display_name="x" * 400, note="y" * 2000),
            )
    return data_dir / DB_FILENAME


def _assert_corrupt_and_untouched(data_dir: Path, path: Path) -> StoreCorrupt:
    before = path.read_bytes()
    names_before = {p.name for p in data_dir.iterdir()}
    with pytest.raises(StoreCorrupt) as caught:
        BlindStore.open(data_dir)
    assert path.read_bytes() == before
    # SQLite's read-only check may leave empty -wal/-shm beside it; nothing else appears.
    for new in {p.name for p in data_dir.iterdir()} - names_before:
        assert new in (f"{DB_FILENAME}-wal", f"{DB_FILENAME}-shm")
        assert new.endswith("-shm") or (data_dir / new).stat().st_size == 0
    assert "left untouched" in str(caught.value)
    assert "IT" in caught.value.user_message
    return caught.value


def test_random_bytes_are_refused(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    path.write_bytes(os.urandom(8192))
    error = _assert_corrupt_and_untouched(data_dir, path)
    assert "not an SQLite database" in str(error)


def test_a_text_file_is_refused(data_dir: Path) -> None:
    path = data_dir / DB_FILENAME
    path.write_text("this is not a database\n" * 20)
    _assert_corrupt_and_untouched(data_dir, path)


def test_a_file_truncated_inside_the_header_is_refused(data_dir: Path) -> None:
    path = _good_database(data_dir)
    path.write_bytes(path.read_bytes()[:60])
    _assert_corrupt_and_untouched(data_dir, path)


def test_a_truncated_database_is_refused(data_dir: Path) -> None:
    path = _good_database(data_dir)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    error = _assert_corrupt_and_untouched(data_dir, path)
    assert "damaged" in str(error) or "integrity_check" in str(error)


def test_a_damaged_page_is_found_by_the_integrity_check(data_dir: Path) -> None:
    path = _good_database(data_dir)
    data = bytearray(path.read_bytes())
    page = 4096
    # Scribble over the middle of the third page (a b-tree page), keeping the header valid.
    data[2 * page + 8 : 2 * page + 600] = os.urandom(592)
    path.write_bytes(bytes(data))
    _assert_corrupt_and_untouched(data_dir, path)


def test_a_write_ahead_log_without_its_database_is_refused(data_dir: Path) -> None:
    with BlindStore.open(data_dir, clock=FakeClock(T0)) as s:
        s.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room"))
        wal = (data_dir / f"{DB_FILENAME}-wal").read_bytes()
    assert wal  # the WAL held the clinic when the store was open
    (data_dir / DB_FILENAME).unlink()
    (data_dir / f"{DB_FILENAME}-wal").write_bytes(wal)
    with pytest.raises(StoreCorrupt, match="write-ahead log"):
        BlindStore.open(data_dir)
    assert not (data_dir / DB_FILENAME).exists()
    assert (data_dir / f"{DB_FILENAME}-wal").read_bytes() == wal


def test_an_empty_file_left_by_a_crash_during_creation_becomes_a_new_store(
    data_dir: Path,
) -> None:
    (data_dir / DB_FILENAME).write_bytes(b"")
    with BlindStore.open(data_dir) as s:
        assert s.schema_version() == STORE_SCHEMA_VERSION


# -------------------------------------------------------------------------- clinics


def test_clinics_are_upserted_and_listed(store: BlindStore) -> None:
    store.put_clinic(Clinic("clinic-2", "Aalborg Lægecenter", "654321", "room-2"))
    store.put_clinic(Clinic("clinic-1", "Lægehuset Ærøskøbing", "123456", "room-new"))
    assert store.get_clinic("clinic-1").video_room == "room-new"
    assert [c.id for c in store.list_clinics()] == ["clinic-2", "clinic-1"]
    with pytest.raises(StoreNotFound):
        store.get_clinic("nope")


@pytest.mark.parametrize(
    "clinic",
    [
        Clinic("", "Name", "123456", "room"),
        Clinic("has space", "Name", "123456", "room"),
        Clinic("clinic-x", "", "123456", "room"),
        Clinic("clinic-x", "Name\x00", "123456", "room"),
        Clinic("clinic-x", "N" * 201, "123456", "room"),
        Clinic("clinic-x", "Name", "12 34", "room"),
        Clinic("clinic-x", "Name", "123456", ""),
    ],
)
def test_bad_clinics_are_refused(store: BlindStore, clinic: Clinic) -> None:
    with pytest.raises(StoreInvalid):
        store.put_clinic(clinic)
    assert [c.id for c in store.list_clinics()] == ["clinic-1"]


# -------------------------------------------------------------------- consultations


def test_consultation_lifecycle(store: BlindStore, clock: FakeClock) -> None:
    cid = book(store, "cons-1")
    c = store.get_consultation(cid)
    assert (c.status, c.created_at, c.documented_at) == (ConsultationStatus.BOOKED, T0, None)
    assert c.consultation_type is ConsultationType.VIDEO_CONSULTATION
    moved = store.update_consultation(
        cid,
        starts_at=T0 + timedelta(hours=1),
        ends_at=T0 + timedelta(hours=1, minutes=20),
        consultation_type="assisted_consultation",
    )
    assert moved.starts_at == T0 + timedelta(hours=1)
    assert moved.consultation_type is ConsultationType.ASSISTED_CONSULTATION
    assert store.set_consultation_status(cid, "in_call").status is ConsultationStatus.IN_CALL
    assert store.set_consultation_status(cid, "ended").status is ConsultationStatus.ENDED
    first = store.mark_documented(cid, T0 + timedelta(hours=2))
    assert first.status is ConsultationStatus.DOCUMENTED
    again = store.mark_documented(cid, T0 + timedelta(hours=5))
    assert again.documented_at == T0 + timedelta(hours=2)  # retention is never extended
    with pytest.raises(StoreConflict):
        store.set_consultation_status(cid, "booked")
    with pytest.raises(StoreConflict):
        store.update_consultation(cid, starts_at=T0)


def test_times_are_stored_in_utc_whatever_zone_they_came_in(store: BlindStore) -> None:
    copenhagen = datetime(2026, 11, 25, 11, 0, tzinfo=ZoneInfo("Europe/Copenhagen"))
    cid = book(store, start=copenhagen)
    assert store.get_consultation(cid).starts_at == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert store.get_consultation(cid).starts_at.tzinfo is UTC


def test_list_consultations_filters_by_time_and_status(store: BlindStore) -> None:
    early = book(store, "early", start=T0)
    late = book(store, "late", start=T0 + timedelta(hours=3))
    other_day = book(store, "other", start=T0 + timedelta(days=1))
    store.set_consultation_status(late, "cancelled")
    assert [c.id for c in store.list_consultations()] == [early, late, other_day]
    day = store.list_consultations(starts_from=T0, starts_before=T0 + timedelta(hours=12))
    assert [c.id for c in day] == [early, late]
    assert [c.id for c in store.list_consultations(statuses=["cancelled"])] == [late]
    assert store.list_consultations(statuses=[]) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"consultation_id": CPR}, StoreInvalid),
        ({"consultation_id": "010170-1234"}, StoreInvalid),
        ({"starts_at": datetime(2026, 11, 25, 9, 0)}, StoreInvalid),  # naive
        ({"ends_at": T0}, StoreInvalid),  # ends when it starts
        ({"consultation_type": "phone"}, StoreInvalid),
        ({"status": "documented"}, StoreInvalid),
        ({"clinic_id": "unknown-clinic"}, StoreConflict),
    ],
)
def test_bad_consultations_are_refused(
    store: BlindStore, kwargs: dict[str, object], error: type[Exception]
) -> None:
    args: dict[str, object] = {
        "consultation_id": "cons-1",
        "clinic_id": "clinic-1",
        "starts_at": T0,
        "ends_at": T0 + timedelta(minutes=15),
        "consultation_type": "video_consultation",
    }
    args.update(kwargs)
    with pytest.raises(error) as caught:
        store.create_consultation(**args)  # type: ignore[arg-type]
    assert CPR not in str(caught.value) and "1234" not in str(caught.value)
    assert store.list_consultations() == []


def test_a_duplicate_consultation_id_is_a_conflict(store: BlindStore) -> None:
    book(store, "cons-1")
    with pytest.raises(StoreConflict, match="UNIQUE"):
        book(store, "cons-1")


def test_upcoming_shows_only_times_and_clinic(store: BlindStore) -> None:
    past = book(store, "past", start=T0 - timedelta(hours=2))
    running = book(store, "running", start=T0 - timedelta(minutes=5))
    soon = book(store, "soon", start=T0 + timedelta(hours=1))
    cancelled = book(store, "cancelled", start=T0 + timedelta(hours=2))
    store.set_consultation_status(running, "in_call")
    store.set_consultation_status(cancelled, "cancelled")
    del past, soon
    upcoming = store.list_upcoming(T0)
    assert [u.starts_at for u in upcoming] == [T0 - timedelta(minutes=5), T0 + timedelta(hours=1)]
    assert upcoming[0].clinic_name == "Lægehuset Ærøskøbing"
    assert [f.name for f in fields(UpcomingConsultation)] == [
        "starts_at",
        "ends_at",
        "clinic_id",
        "clinic_name",
    ]
    assert len(store.list_upcoming(T0, limit=1)) == 1


# ------------------------------------------------------------------ consultation keys


def test_consultation_key_is_stored_replaced_and_validated(store: BlindStore) -> None:
    cid = book(store)
    vault = os.urandom(32)
    wrapped = seal_field(vault, os.urandom(32), FieldRef("consultation_keys", cid, "key"))
    with pytest.raises(StoreNotFound):
        store.get_consultation_key(cid)
    store.put_consultation_key(cid, wrapped)
    assert store.get_consultation_key(cid) == wrapped
    rewrapped = seal_field(
        os.urandom(32), os.urandom(32), FieldRef("consultation_keys", cid, "key")
    )
    store.put_consultation_key(cid, rewrapped)
    assert store.get_consultation_key(cid) == rewrapped
    with pytest.raises(StoreInvalid):
        store.put_consultation_key(cid, b"\x01" * 8)
    with pytest.raises(StoreConflict):
        store.put_consultation_key("no-such-consultation", wrapped)


# ---------------------------------------------------------------------- queue entries


def test_entries_keep_their_sealed_fields_and_open_again(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    ids = [new_id() for _ in range(3)]
    for i, eid in enumerate(ids):
        store.add_entry(
            entry_id=eid,
            consultation_id=cid,
            sealed=sealed_fields(
                key, eid, display_name=f"Beboer {i} Ærø", room=f"Stue {i}", cpr=CPR
            ),
        )
    entries = store.list_entries(cid)
    assert [(e.id, e.position, e.status) for e in entries] == [
        (eid, i, QueueEntryStatus.WAITING) for i, eid in enumerate(ids)
    ]
    one = store.get_entry(ids[1])
    assert set(one.sealed) == {"display_name", "room", "cpr"}
    name = open_field(
        key, one.sealed["display_name"], FieldRef("queue_entries", ids[1], "display_name")
    )
    assert name.decode() == "Beboer 1 Ærø"
    assert "sealed" not in repr(one)  # ciphertext kept out of logs


def test_update_entry_sets_removes_and_changes_status(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    eid = new_id()
    store.add_entry(
        entry_id=eid,
        consultation_id=cid,
        sealed=sealed_fields(key, eid, display_name="A", reason="Hoste", cpr=CPR),
    )
    new_cpr = sealed_fields(key, eid, cpr="0202802345")
    updated = store.update_entry(eid, sealed=new_cpr, remove_fields=["reason"], status="in_call")
    assert updated.sealed["cpr"] == new_cpr["cpr"]
    assert set(updated.sealed) == {"display_name", "cpr"}
    assert updated.status is QueueEntryStatus.IN_CALL
    assert store.set_entry_status(eid, QueueEntryStatus.DONE).status is QueueEntryStatus.DONE
    with pytest.raises(StoreInvalid):
        store.update_entry(eid, remove_fields=["favourite_colour"])
    with pytest.raises(StoreInvalid):
        store.update_entry(eid, sealed=new_cpr, remove_fields=["cpr"])
    with pytest.raises(StoreNotFound):
        store.update_entry("missing", status="done")


def test_a_replaced_sealed_value_leaves_no_copy_in_any_file(
    store: BlindStore, data_dir: Path
) -> None:
    cid = book(store)
    key = os.urandom(32)
    eid = new_id()
    wrong = sealed_fields(key, eid, cpr=CPR)
    store.add_entry(entry_id=eid, consultation_id=cid, sealed=wrong)
    assert wrong["cpr"] in files_bytes(data_dir)
    store.update_entry(eid, sealed=sealed_fields(key, eid, cpr="0202802345"))
    assert wrong["cpr"] not in files_bytes(data_dir)


def test_reorder_entries(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    ids = [new_id() for _ in range(4)]
    for eid in ids:
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    order = [ids[2], ids[0], ids[3], ids[1]]
    assert [e.id for e in store.reorder_entries(cid, order)] == order
    assert [e.position for e in store.list_entries(cid)] == [0, 1, 2, 3]
    with pytest.raises(StoreConflict):
        store.reorder_entries(cid, order[:3])
    with pytest.raises(StoreInvalid):
        store.reorder_entries(cid, [ids[0], ids[0], ids[1], ids[2]])
    assert [e.id for e in store.list_entries(cid)] == order  # refused orders change nothing


def test_delete_entry_closes_the_gap_and_is_refused_with_notes(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    ids = [new_id() for _ in range(3)]
    for eid in ids:
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    store.delete_entry(ids[0])
    assert [(e.id, e.position) for e in store.list_entries(cid)] == [(ids[1], 0), (ids[2], 1)]
    nid = new_id()
    store.add_note(
        note_id=nid,
        consultation_id=cid,
        entry_id=ids[1],
        body=seal_field(key, b"note", FieldRef("notes", nid, "body")),
    )
    with pytest.raises(StoreConflict, match="notes"):
        store.delete_entry(ids[1])
    with pytest.raises(StoreNotFound):
        store.delete_entry(ids[0])


def test_delete_from_the_middle_of_a_reordered_queue(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    ids = [new_id() for _ in range(12)]
    for eid in ids:
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    # Row order on disk now differs from queue order, as after any reorder in real use.
    order = ids[::-1]
    store.reorder_entries(cid, order)
    store.delete_entry(order[4])
    del order[4]
    assert [(e.id, e.position) for e in store.list_entries(cid)] == [
        (eid, i) for i, eid in enumerate(order)
    ]


def test_unknown_field_names_are_refused(store: BlindStore) -> None:
    cid = book(store)
    eid = new_id()
    blob = seal_field(os.urandom(32), b"Hansen", FieldRef("queue_entries", eid, "surname"))
    with pytest.raises(StoreInvalid, match="unknown sealed field"):
        store.add_entry(entry_id=eid, consultation_id=cid, sealed={"surname": blob})
    assert store.list_entries(cid) == []


def test_sealed_value_sizes(store: BlindStore) -> None:
    cid = book(store)
    eid = new_id()
    # seal_field adds 29 bytes: this note is exactly at the limit.
    biggest = seal_field(os.urandom(32), b"n" * (MAX_SEALED_BYTES - 29), FieldRef("q", eid, "note"))
    assert len(biggest) == MAX_SEALED_BYTES
    store.add_entry(entry_id=eid, consultation_id=cid, sealed={"note": biggest})
    too_big = biggest + b"\x00"
    with pytest.raises(StoreInvalid, match="65536"):
        store.add_entry(entry_id=new_id(), consultation_id=cid, sealed={"note": too_big})
    with pytest.raises(StoreInvalid):
        store.add_entry(entry_id=new_id(), consultation_id=cid, sealed={"room": b"\x01" * 28})
    with pytest.raises(StoreInvalid):
        store.add_entry(entry_id=new_id(), consultation_id=cid, sealed={"room": "12"})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "plaintext",
    [
        "Anna Sørensen, stue 12, født 01-01-1930, CPR 010130-1234".encode(),
        ("Noter: " + "Beboeren har hoste og feber.\n" * 100).encode(),
        "Åse Ærø".encode().ljust(40, b" "),
    ],
)
def test_plaintext_handed_over_by_mistake_is_refused(store: BlindStore, plaintext: bytes) -> None:
    cid = book(store)
    eid = new_id()
    with pytest.raises(StoreInvalid, match="seal it first") as caught:
        store.add_entry(entry_id=eid, consultation_id=cid, sealed={"note": plaintext})
    assert b"Anna" not in str(caught.value).encode()
    with pytest.raises(StoreInvalid):
        store.add_note(note_id=new_id(), consultation_id=cid, body=plaintext)
    assert store.list_entries(cid) == [] and store.list_notes(cid) == []


def test_real_sealed_values_are_never_taken_for_plaintext(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    # seal_field output starts with 0x01, which is not printable: no false alarms, ever.
    eid = new_id()
    for i in range(300):
        text = ("x" * (i % 7)).encode()
        blob = seal_field(key, text, FieldRef("queue_entries", eid, "room"))
        assert not store_checks.looks_like_text(blob)
    store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room=""))


def test_a_consultation_holds_a_bounded_queue(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    for _ in range(MAX_ENTRIES_PER_CONSULTATION):
        eid = new_id()
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    with pytest.raises(StoreConflict, match="at most"):
        store.add_entry(entry_id=new_id(), consultation_id=cid, sealed={})


def test_entry_for_an_unknown_consultation_is_not_found(store: BlindStore) -> None:
    with pytest.raises(StoreNotFound):
        store.add_entry(entry_id=new_id(), consultation_id="nope", sealed={})


@pytest.mark.parametrize("bad_id", [CPR, "010170-1234", "x0101701234", "Anna Hansen", "", "a" * 65])
def test_ids_that_are_not_opaque_are_refused_without_being_quoted(
    store: BlindStore, bad_id: str
) -> None:
    cid = book(store)
    with pytest.raises(StoreInvalid) as caught:
        store.add_entry(entry_id=bad_id, consultation_id=cid, sealed={})
    if bad_id:
        assert bad_id not in str(caught.value)
    assert "1234" not in str(caught.value)


def test_random_uuid_hex_ids_are_opaque_even_with_a_digit_run(store: BlindStore) -> None:
    cid = book(store, "0123456789ab4cde8f0123456789abcd")  # uuid4 hex, ten digits in a row
    assert store.get_consultation(cid).id == cid
    assert not store_module.is_opaque_id("0101701234abcdef")  # not a UUID: refused


def test_new_ids_are_valid_everywhere() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in ids:
        assert len(value) == 16
        store_checks.check_id(value, "id")
        assert value == value.lower()


# ------------------------------------------------------------------- notes and events


def test_notes_are_added_and_listed_in_order(store: BlindStore, clock: FakeClock) -> None:
    cid = book(store)
    other = book(store)
    key = os.urandom(32)
    eid = new_id()
    store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    n1, n2 = new_id(), new_id()
    store.add_note(
        note_id=n1,
        consultation_id=cid,
        entry_id=eid,
        body=seal_field(key, b"a", FieldRef("notes", n1, "body")),
    )
    clock.advance(60)
    store.add_note(
        note_id=n2, consultation_id=cid, body=seal_field(key, b"b", FieldRef("notes", n2, "body"))
    )
    notes = store.list_notes(cid)
    assert [(n.id, n.entry_id, n.created_at) for n in notes] == [
        (n1, eid, T0),
        (n2, None, T0 + timedelta(minutes=1)),
    ]
    with pytest.raises(StoreConflict, match="another consultation"):
        store.add_note(note_id=new_id(), consultation_id=other, entry_id=eid, body=notes[0].body)
    with pytest.raises(StoreNotFound):
        store.add_note(note_id=new_id(), consultation_id="nope", body=notes[0].body)


def test_sealed_events(store: BlindStore) -> None:
    cid = book(store)
    blob = os.urandom(80)
    event = store.add_sealed_event(consultation_id=cid, kind="call_ended", blob=blob)
    assert store.list_sealed_events(cid) == [event]
    assert event.blob == blob
    with pytest.raises(StoreInvalid, match="kind"):
        store.add_sealed_event(consultation_id=cid, kind="Anna called", blob=blob)
    with pytest.raises(StoreNotFound):
        store.add_sealed_event(consultation_id="nope", kind="call_ended", blob=blob)


# --------------------------------------------------------------------- durability


def test_every_write_is_committed_before_it_returns(store: BlindStore, data_dir: Path) -> None:
    cid = book(store)
    # A second, independent connection sees the row while the store is still open.
    raw = sqlite3.connect(data_dir / DB_FILENAME)
    try:
        assert raw.execute(
            "SELECT count(*) FROM consultations WHERE id = ?", (cid,)
        ).fetchone() == (1,)
    finally:
        raw.close()


def test_a_failed_write_rolls_back_all_of_it(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)
    eid = new_id()
    store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
    other = book(store)
    # Same entry id again: the entry insert fails, and no field row of it may remain.
    with pytest.raises(StoreConflict):
        store.add_entry(
            entry_id=eid, consultation_id=other, sealed=sealed_fields(key, eid, room="2")
        )
    assert store.list_entries(other) == []
    assert store.get_entry(eid).consultation_id == cid


def test_threads_may_share_one_store(store: BlindStore) -> None:
    cid = book(store)
    key = os.urandom(32)

    def add(_: int) -> str:
        eid = new_id()
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed_fields(key, eid, room="1"))
        return eid

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(add, range(40)))
    entries = store.list_entries(cid)
    assert {e.id for e in entries} == set(ids)
    assert sorted(e.position for e in entries) == list(range(40))


async def test_works_from_asyncio_to_thread(store: BlindStore) -> None:
    cid = await asyncio.to_thread(book, store)
    got = await asyncio.gather(*(asyncio.to_thread(store.get_consultation, cid) for _ in range(5)))
    assert {c.id for c in got} == {cid}


# ------------------------------------------------------------------ tampered blobs


def test_a_tampered_sealed_blob_fails_alone(store: BlindStore, data_dir: Path) -> None:
    cid = book(store)
    key = os.urandom(32)
    ids = [new_id() for _ in range(3)]
    for eid in ids:
        store.add_entry(
            entry_id=eid,
            consultation_id=cid,
            sealed=sealed_fields(key, eid, display_name="Åge Øster", cpr=CPR),
        )
    raw = sqlite3.connect(data_dir / DB_FILENAME)
    (blob,) = raw.execute(
        "SELECT sealed FROM entry_fields WHERE entry_id = ? AND field = 'cpr'", (ids[1],)
    ).fetchone()
    flipped = bytearray(blob)
    flipped[20] ^= 0x01
    raw.execute(
        "UPDATE entry_fields SET sealed = ? WHERE entry_id = ? AND field = 'cpr'",
        (bytes(flipped), ids[1]),
    )
    raw.commit()
    raw.close()
    for entry in store.list_entries(cid):
        for name, sealed in entry.sealed.items():
            ref = FieldRef("queue_entries", entry.id, name)
            if entry.id == ids[1] and name == "cpr":
                with pytest.raises(SealError, match="failed authentication"):
                    open_field(key, sealed, ref)
            else:
                assert open_field(key, sealed, ref) in ("Åge Øster".encode(), CPR.encode())


# --------------------------------------------------------------------------- retention


def _seed_consultation(store: BlindStore, vault: bytes) -> tuple[str, list[bytes]]:
    """A consultation with a key, two entries, notes and an event; returns all its blobs."""
    cid = book(store)
    key = os.urandom(32)
    wrapped = seal_field(vault, key, FieldRef("consultation_keys", cid, "key"))
    store.put_consultation_key(cid, wrapped)
    blobs = [wrapped]
    for _ in range(2):
        eid = new_id()
        f = sealed_fields(
            key, eid, display_name="Ærbødige Åse", cpr=CPR, room="Stue 4", note="n" * 3000
        )
        store.add_entry(entry_id=eid, consultation_id=cid, sealed=f)
        blobs += f.values()
        nid = new_id()
        body = seal_field(key, os.urandom(2500), FieldRef("notes", nid, "body"))
        store.add_note(note_id=nid, consultation_id=cid, entry_id=eid, body=body)
        blobs.append(body)
    event = store.add_sealed_event(consultation_id=cid, kind="call_ended", blob=os.urandom(120))
    blobs.append(event.blob)
    return cid, blobs


def test_purge_removes_documented_consultations_after_retention_unrecoverably(
    store: BlindStore, data_dir: Path, clock: FakeClock
) -> None:
    vault = os.urandom(32)
    old_cid, old_blobs = _seed_consultation(store, vault)
    young_cid, young_blobs = _seed_consultation(store, vault)
    open_cid, open_blobs = _seed_consultation(store, vault)
    store.mark_documented(old_cid, T0)
    store.mark_documented(young_cid, T0 + timedelta(hours=20))
    everything = files_bytes(data_dir)
    assert all(any(f in everything for f in fragments(b)) for b in old_blobs)  # control

    now = T0 + timedelta(hours=24)
    assert store.purge_documented(now) == 1
    assert store.purge_documented(now) == 0

    with pytest.raises(StoreNotFound):
        store.get_consultation(old_cid)
    with pytest.raises(StoreNotFound):
        store.get_consultation_key(old_cid)
    assert store.list_entries(old_cid) == []
    assert store.list_notes(old_cid) == []
    assert store.list_sealed_events(old_cid) == []
    assert store.get_consultation(young_cid).documented_at == T0 + timedelta(hours=20)
    assert len(store.list_entries(open_cid)) == 2

    assert (data_dir / f"{DB_FILENAME}-wal").stat().st_size == 0  # WAL truncated
    for when in ("open", "closed"):
        everything = files_bytes(data_dir)
        for blob in old_blobs:
            assert not any(f in everything for f in fragments(blob)), f"purged bytes left ({when})"
        for blob in young_blobs + open_blobs:
            assert any(f in everything for f in fragments(blob)), f"kept blob lost ({when})"
        store.close()

    raw = sqlite3.connect(data_dir / DB_FILENAME)
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()


def test_purge_removes_cancelled_consultations_a_retention_after_their_slot(
    store: BlindStore, data_dir: Path
) -> None:
    vault = os.urandom(32)
    cancelled, cancelled_blobs = _seed_consultation(store, vault)  # slot ends T0 + 15 min
    booked, _ = _seed_consultation(store, vault)
    ended, _ = _seed_consultation(store, vault)
    store.set_consultation_status(cancelled, ConsultationStatus.CANCELLED)
    store.set_consultation_status(ended, ConsultationStatus.ENDED)
    slot_end = T0 + timedelta(minutes=15)

    assert store.purge_documented(slot_end + timedelta(hours=24) - timedelta(seconds=1)) == 0
    assert store.due_for_purge(slot_end + timedelta(hours=24)) == [cancelled]
    assert store.due_for_purge(slot_end + timedelta(hours=24), keep={cancelled}) == []
    assert store.purge_documented(slot_end + timedelta(hours=24)) == 1
    with pytest.raises(StoreNotFound):
        store.get_consultation(cancelled)
    everything = files_bytes(data_dir)
    for blob in cancelled_blobs:
        assert not any(f in everything for f in fragments(blob)), "purged bytes left"
    # Booked and ended (not yet documented) consultations are not the retention's to take.
    later = slot_end + timedelta(days=30)
    assert store.purge_documented(later) == 0
    assert {store.get_consultation(c).status for c in (booked, ended)} == {
        ConsultationStatus.BOOKED,
        ConsultationStatus.ENDED,
    }
    # An outbox still holding something for a cancelled one keeps it, as for documented ones.
    store.set_consultation_status(booked, ConsultationStatus.CANCELLED)
    assert store.purge_documented(later, keep={booked}) == 0
    assert store.purge_documented(later) == 1


def test_purge_with_a_custom_retention_and_bad_arguments(store: BlindStore) -> None:
    cid = book(store)
    store.mark_documented(cid, T0)
    assert store.purge_documented(T0 + timedelta(minutes=59), retention=timedelta(hours=1)) == 0
    assert store.purge_documented(T0 + timedelta(hours=1), retention=timedelta(hours=1)) == 1
    with pytest.raises(StoreInvalid):
        store.purge_documented(T0, retention=timedelta(hours=-1))
    with pytest.raises(StoreInvalid):
        store.purge_documented(datetime(2026, 11, 25, 9, 0))


def test_entry_field_names_are_the_documented_set() -> None:
    assert {"display_name", "birth_date", "room", "cpr", "note", "reason"} == ENTRY_FIELDS


def test_the_status_words_the_ui_contract_names_are_the_stores() -> None:
    # stationapi spells the statuses as Literals for its wire models; they are the store's.
    from typing import get_args

    from stationapi import models as m

    assert set(get_args(m.EntryStatusValue)) == {s.value for s in QueueEntryStatus}
    assert set(get_args(m.ConsultationStatusValue)) == {s.value for s in ConsultationStatus}
