"""Blind store costs: bytes on disk per resident, insert and read time, purge time.

A resident record is one queue entry with six sealed fields (name, birth date, room, CPR,
reason, a short note) plus one sealed wrap-up note, sealed with ``station.keys.crypto.seal_field``
as the staff UI does. Records go into consultations of ``--per-consultation`` residents (a
nursing-home round), each consultation with its wrapped data key.

- ``bytes_per_record``: ``station.db`` after the inserts and a WAL checkpoint (TRUNCATE),
  divided by the number of records; the plaintext and sealed payload sizes for comparison.
- ``insert_us``: one ``add_entry`` plus one ``add_note`` (two durable commits, each an fsync
  of the WAL: this is mostly the disk's fsync time).
- ``read_us``: ``get_entry`` plus ``list_notes`` (what opening one resident costs the store).
- ``purge_one_ms``: ``purge_documented`` when one consultation is due (the usual case:
  delete, secure-delete overwrite, WAL checkpoint and truncate); ``purge_batch``: the other
  half in one call, per consultation.

Prints one JSON object per line. Run: ``.venv/bin/python bench/store.py [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from station.core.clock import FakeClock
from station.keys.crypto import FieldRef, seal_field
from station.storage.store import DB_FILENAME, BlindStore, Clinic, new_id

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
RESIDENT = {
    "display_name": "Søren Ærbødig Østergaard".encode(),
    "birth_date": b"1930-01-01",
    "room": "Stue 12B, Åbakken".encode(),
    "cpr": b"010130-1237",
    "reason": "Opfølgning på blodtryk og ny medicin".encode(),
    "note": ("Hører dårligt på venstre øre. Datteren deltager gerne. " * 3).encode(),
}
WRAP_UP = ("Konsultation gennemført; lægen justerer medicinen. Ny tid om to uger. " * 4).encode()


def _stats(samples: list[float], unit: str, scale: float) -> dict[str, float | int | str]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "unit": unit,
        "n": len(samples),
        "median": round(statistics.median(ordered) * scale, 3),
        "p95": round(p95 * scale, 3),
        "min": round(ordered[0] * scale, 3),
    }


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _checkpoint(path: Path) -> None:
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--per-consultation", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = parser.parse_args()
    emit(
        bench="store",
        metric="environment",
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        machine=platform.machine(),
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data_dir = Path(tmp)
        clock = FakeClock(T0)
        store = BlindStore.open(data_dir, clock=clock)
        store.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room-1"))
        vault = os.urandom(32)
        consultations: list[tuple[str, bytes]] = []
        entries: list[str] = []
        inserts: list[float] = []
        sealed_bytes = 0
        for i in range(args.records):
            if i % args.per_consultation == 0:
                cid = new_id()
                start = T0 + timedelta(minutes=30 * len(consultations))
                store.create_consultation(
                    consultation_id=cid,
                    clinic_id="clinic-1",
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                    consultation_type="video_consultation",
                )
                key = os.urandom(32)
                ref = FieldRef("consultation_keys", cid, "key")
                store.put_consultation_key(cid, seal_field(vault, key, ref))
                consultations.append((cid, key))
            cid, key = consultations[-1]
            eid, nid = new_id(), new_id()
            # Sealing is the staff UI's work, not the store's: done before the clock starts.
            sealed = {
                name: seal_field(key, value, FieldRef("queue_entries", eid, name))
                for name, value in RESIDENT.items()
            }
            body = seal_field(key, WRAP_UP, FieldRef("notes", nid, "body"))
            sealed_bytes += sum(map(len, sealed.values())) + len(body)
            started = time.perf_counter()
            store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed)
            store.add_note(note_id=nid, consultation_id=cid, entry_id=eid, body=body)
            inserts.append(time.perf_counter() - started)
            entries.append(eid)

        path = data_dir / DB_FILENAME
        _checkpoint(path)
        size = path.stat().st_size
        plaintext = sum(map(len, RESIDENT.values())) + len(WRAP_UP)
        emit(
            bench="store",
            metric="bytes_per_record",
            records=args.records,
            db_bytes=size,
            per_record=round(size / args.records, 1),
            plaintext_per_record=plaintext,
            sealed_per_record=round(sealed_bytes / args.records, 1),
        )
        emit(bench="store", metric="insert_us", **_stats(inserts, "us", 1e6))

        cid_of = {}
        for cid, _ in consultations:
            for entry in store.list_entries(cid):
                cid_of[entry.id] = cid
        reads = []
        for eid in entries:
            started = time.perf_counter()
            store.get_entry(eid)
            store.list_notes(cid_of[eid])
            reads.append(time.perf_counter() - started)
        emit(bench="store", metric="read_us", **_stats(reads, "us", 1e6))

        # Consultation k is documented at T0 + k minutes, so "now" can make exactly one due.
        for k, (cid, _) in enumerate(consultations):
            store.mark_documented(cid, T0 + timedelta(minutes=k))
        half = len(consultations) // 2
        singles = []
        for k in range(half):
            started = time.perf_counter()
            purged = store.purge_documented(T0 + timedelta(hours=24, minutes=k))
            singles.append(time.perf_counter() - started)
            assert purged == 1
        emit(
            bench="store",
            metric="purge_one_ms",
            records_per_consultation=args.per_consultation,
            **_stats(singles, "ms", 1e3),
        )
        started = time.perf_counter()
        count = store.purge_documented(T0 + timedelta(days=2))
        elapsed = time.perf_counter() - started
        emit(
            bench="store",
            metric="purge_batch_ms_per_consultation",
            consultations=count,
            total_ms=round(elapsed * 1e3, 3),
            per_consultation_ms=round(elapsed * 1e3 / max(count, 1), 3),
            db_bytes_after=path.stat().st_size,
            wal_bytes_after=(data_dir / f"{DB_FILENAME}-wal").stat().st_size,
        )
        store.close()


if __name__ == "__main__":
    main()
