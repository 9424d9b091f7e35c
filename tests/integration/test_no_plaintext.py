"""No personal data in clear anywhere in the station's data directory, byte for byte.

Residents with Danish names, CPR numbers, birth dates, rooms, reasons and notes go through
the real path: sealed with ``station.keys.crypto.seal_field`` under per-consultation keys that are
themselves wrapped under a random vault key, stored in the blind store, with audit entries
written alongside. Then every file in the data directory (``station.db``, its ``-wal`` and
``-shm``, ``audit.db`` and its companions, anything else) is searched for every value in
UTF-8, UTF-16-LE and UTF-16-BE, decomposed (NFD) as well as composed, and each CPR number
also without its hyphen: while the connections are open with the WAL not yet checkpointed,
and again after closing.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station.core.clock import FakeClock
from station.keys.crypto import FieldRef, open_field, seal_field
from station.storage.audit import AuditLog
from station.storage.store import BlindStore, Clinic, new_id

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CLINIC_NAME = "Lægehuset på Ærø"

RESIDENTS = [
    {
        "display_name": "Søren Ærbødig Østergaard",
        "cpr": "010130-1237",
        "birth_date": "1930-01-01",
        "room": "Stue 12B, Åbakken",
        "reason": "Hoste og åndenød",
        "note": "Beboeren har haft feber i tre dage; lægen ordinerer penicillin.",
    },
    {
        "display_name": "Åse Kjærgaard Bøgh",
        "cpr": "240241-2468",
        "birth_date": "24.02.1941",
        "room": "Værelse 7",
        "reason": "Kontrol af blodtryk",
        "note": "Blodtryk 150/95. Ny tid om to uger. Pårørende orienteret.",
    },
    {
        "display_name": "Bjørn Ålund",
        "cpr": "311227-3579",
        "birth_date": "31-12-1927",
        "room": "Fløj Ø, nr. 3",
        "reason": "Sår på læggen",
        "note": "Såret heler fint; hjemmesygeplejen skifter forbinding.",
    },
]
WRAP_UP = "Konsultation gennemført med Søren Østergaard; opfølgning i uge 49."


def needles() -> dict[str, bytes]:
    """Every personal value, and the parts a search could find it by, in several encodings."""
    texts: set[str] = {WRAP_UP}
    for resident in RESIDENTS:
        for value in resident.values():
            texts.add(value)
        texts.update(part for part in resident["display_name"].split() if len(part) >= 4)
        texts.add(resident["cpr"].replace("-", ""))
    out: dict[str, bytes] = {}
    for text in texts:
        for form in {text, unicodedata.normalize("NFD", text)}:
            for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                out[f"{text!r} as {encoding}{' NFD' if form != text else ''}"] = form.encode(
                    encoding
                )
    return out


def all_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path


def hits(directory: Path, needle_map: dict[str, bytes]) -> list[str]:
    found = []
    for path in all_files(directory):
        data = path.read_bytes()
        found += [
            f"{label} in {path.name}" for label, needle in needle_map.items() if needle in data
        ]
    return found


@pytest.fixture
def seeded(data_dir: Path) -> Iterator[tuple[BlindStore, AuditLog, dict[str, bytes]]]:
    """The store and audit log, full of sealed residents; yields the per-consultation keys."""
    clock = FakeClock(T0)
    store = BlindStore.open(data_dir, clock=clock)
    audit = AuditLog.open(data_dir, clock=clock)
    vault = os.urandom(32)
    store.put_clinic(Clinic("clinic-1", CLINIC_NAME, "123456", "room-1"))
    keys: dict[str, bytes] = {}
    for n, group in enumerate((RESIDENTS[:2], RESIDENTS[2:])):
        cid = new_id()
        store.create_consultation(
            consultation_id=cid,
            clinic_id="clinic-1",
            starts_at=T0 + timedelta(hours=n),
            ends_at=T0 + timedelta(hours=n, minutes=30),
            consultation_type="video_consultation",
        )
        key = keys[cid] = os.urandom(32)
        store.put_consultation_key(
            cid, seal_field(vault, key, FieldRef("consultation_keys", cid, "key"))
        )
        for resident in group:
            eid = new_id()
            sealed = {
                name: seal_field(key, value.encode(), FieldRef("queue_entries", eid, name))
                for name, value in resident.items()
            }
            store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed)
            resident_pseudonym = new_id()
            audit.record(
                "record_created", staff="staff-7", resident=resident_pseudonym, outcome="ok"
            )
            audit.record(
                "record_opened", staff="staff-7", resident=resident_pseudonym, outcome="ok"
            )
            # A correction: the old value must not linger either.
            room = seal_field(
                key, resident["room"].encode(), FieldRef("queue_entries", eid, "room")
            )
            store.update_entry(eid, sealed={"room": room})
            nid = new_id()
            store.add_note(
                note_id=nid,
                consultation_id=cid,
                entry_id=eid,
                body=seal_field(key, WRAP_UP.encode(), FieldRef("notes", nid, "body")),
            )
        store.add_sealed_event(
            consultation_id=cid,
            kind="gp_message",
            blob=seal_field(vault, RESIDENTS[0]["note"].encode(), FieldRef("events", cid, "blob")),
        )
        audit.record("call_started", staff=None, resident=None, outcome="ok")
    yield store, audit, keys
    store.close()
    audit.close()


def test_no_personal_value_is_in_any_file_open_or_closed(
    data_dir: Path, seeded: tuple[BlindStore, AuditLog, dict[str, bytes]]
) -> None:
    store, audit, keys = seeded
    needle_map = needles()
    assert len(needle_map) > 100

    # The state a crash would leave: connections open, recent pages only in the WAL.
    assert (data_dir / "station.db-wal").stat().st_size > 0
    # Control: the search does see clear data, Danish letters included, wherever it sits.
    assert hits(data_dir, {"clinic": CLINIC_NAME.encode()})
    # Control: the values really are stored (sealed), and open with the right key.
    opened = set()
    for cid, key in keys.items():
        for entry in store.list_entries(cid):
            for name, blob in entry.sealed.items():
                opened.add(
                    open_field(key, blob, FieldRef("queue_entries", entry.id, name)).decode()
                )
    assert {r["display_name"] for r in RESIDENTS} <= opened
    assert {r["cpr"] for r in RESIDENTS} <= opened

    assert hits(data_dir, needle_map) == []

    store.close()
    audit.close()
    assert hits(data_dir, {"clinic": CLINIC_NAME.encode()})
    assert hits(data_dir, needle_map) == []


def test_the_search_would_find_a_value_stored_in_clear(data_dir: Path) -> None:
    """The search itself can fail: a value written in clear is found in every encoding."""
    needle_map = needles()
    leak = RESIDENTS[1]["display_name"]
    (data_dir / "leak.txt").write_bytes(leak.encode("utf-16-le") + b"\n" + leak.encode())
    found = hits(data_dir, needle_map)
    assert any("utf-16-le" in f for f in found)
    assert any("utf-8" in f for f in found)
