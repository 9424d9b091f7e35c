"""Crash safety: a writer killed with SIGKILL at random points never loses an acknowledged write.

The parent forks a child (already imported, so a round costs milliseconds, not a Python
start-up) that opens the store and the audit log and writes records in a loop: consultations,
wrapped keys, queue entries with sealed fields, field updates, reorders, deletions, notes,
audit entries, and now and then documents a consultation and purges it. For every write the
child prints an *intent* line before calling the method and an *ack* line after it returned;
the parent kills it after a random number of acks plus a random fraction of a millisecond, so
kills land inside writes, commits, fsyncs and WAL checkpoints, and some during open.

After 200+ kills the files must pass ``PRAGMA integrity_check``, the audit chain must verify,
and every acknowledged write must be there, with its sealed content intact, unless a later
intent (a deletion, documenting then purging) may have removed it.
"""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import sqlite3
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pytest

from station.core.clock import SystemClock
from station.keys.crypto import FieldRef, open_field, seal_field
from station.storage.audit import AUDIT_DB_FILENAME, AuditLog
from station.storage.store import DB_FILENAME, BlindStore, Clinic, StoreNotFound, new_id

pytestmark = pytest.mark.slow

ROUNDS = 300
VAULT = hashlib.sha256(b"crash-test vault key").digest()
FIELDS = ("display_name", "birth_date", "room", "cpr", "reason")


def data_key(cid: str) -> bytes:
    """Each consultation's data key, derived so the checker can recompute it."""
    return hashlib.sha256(b"crash-test data key:" + cid.encode()).digest()


def field_text(eid: str, name: str, version: int) -> bytes:
    return f"{eid}:{name}:{version}".encode()


#: Lines that acknowledge a write (the lower-case ones announce an intent).
_ACKS = frozenset("CKEURXNADP")

# --------------------------------------------------------------------------- the child


def _child(data_dir: Path, out_fd: int, seed: int) -> NoReturn:
    """Write forever, reporting each write; only ever ends by SIGKILL (or an error)."""
    os.dup2(out_fd, 1)
    rng = random.Random(seed)

    def say(line: str) -> None:
        # One write() per line: atomic on a pipe, so a kill never leaves half a line.
        os.write(1, (line + "\n").encode())

    try:
        clock = SystemClock()
        store = BlindStore.open(data_dir, clock=clock)
        audit = AuditLog.open(data_dir, clock=clock)
        say("OPEN")
        store.put_clinic(Clinic("clinic-1", "Lægehuset", "123456", "room-1"))
        # Consultations of earlier rounds that are still open for writing.
        live = [c.id for c in store.list_consultations(statuses=["booked"])]
        entries: dict[str, list[str]] = {c: [e.id for e in store.list_entries(c)] for c in live}
        while True:
            op = rng.random()
            if op < 0.12 or not live:
                cid = new_id()
                now = clock.now()
                store.create_consultation(
                    consultation_id=cid,
                    clinic_id="clinic-1",
                    starts_at=now,
                    ends_at=now + timedelta(minutes=15),
                    consultation_type="video_consultation",
                )
                say(f"C {cid}")
                wrapped = seal_field(
                    VAULT, data_key(cid), FieldRef("consultation_keys", cid, "key")
                )
                store.put_consultation_key(cid, wrapped)
                say(f"K {cid}")
                live.append(cid)
                entries[cid] = []
            elif op < 0.40:
                cid = rng.choice(live)
                if len(entries[cid]) >= 30:
                    continue
                eid = new_id()
                sealed = {
                    name: seal_field(
                        data_key(cid),
                        field_text(eid, name, 0),
                        FieldRef("queue_entries", eid, name),
                    )
                    for name in FIELDS
                }
                store.add_entry(entry_id=eid, consultation_id=cid, sealed=sealed)
                say(f"E {cid} {eid}")
                entries[cid].append(eid)
            elif op < 0.52:
                cid = rng.choice(live)
                if not entries[cid]:
                    continue
                eid = rng.choice(entries[cid])
                name = rng.choice(FIELDS)
                version = time.time_ns()  # grows across rounds: newer always wins
                blob = seal_field(
                    data_key(cid),
                    field_text(eid, name, version),
                    FieldRef("queue_entries", eid, name),
                )
                store.update_entry(eid, sealed={name: blob})
                say(f"U {eid} {name} {version}")
            elif op < 0.58:
                cid = rng.choice(live)
                order = entries[cid][:]
                rng.shuffle(order)
                store.reorder_entries(cid, order)
                entries[cid] = order
                say(f"R {cid}")
            elif op < 0.62:
                cid = rng.choice(live)
                if not entries[cid]:
                    continue
                eid = rng.choice(entries[cid])
                say(f"x {eid}")
                store.delete_entry(eid)
                entries[cid].remove(eid)
                say(f"X {eid}")
            elif op < 0.75:
                cid = rng.choice(live)
                nid = new_id()
                body = seal_field(
                    data_key(cid), f"note {nid}".encode(), FieldRef("notes", nid, "body")
                )
                store.add_note(note_id=nid, consultation_id=cid, body=body)
                say(f"N {cid} {nid}")
            elif op < 0.95:
                entry = audit.append(
                    rng.choice(["record_opened", "unlock", "lock", "call_started"]),
                    staff="staff-7",
                    resident=new_id(),
                    outcome="ok",
                )
                say(f"A {entry.seq} {entry.hash}")
            else:
                cid = rng.choice(live)
                say(f"d {cid}")
                store.mark_documented(cid, clock.now() - timedelta(days=2))
                live.remove(cid)
                say(f"D {cid}")
                purged = store.purge_documented(clock.now())
                say(f"P {purged}")
    except BaseException as error:
        say(f"ERR {type(error).__name__}: {error}")
        os._exit(3)


# -------------------------------------------------------------------------- the parent


@dataclass
class Ledger:
    """What the children acknowledged (ack) and what they set out to do (intent)."""

    consultations: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    entries: dict[str, str] = field(default_factory=dict)  # entry -> consultation
    updates: dict[tuple[str, str], int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # note -> consultation
    audit: dict[int, str] = field(default_factory=dict)  # seq -> hash
    may_be_deleted: set[str] = field(default_factory=set)  # entries with a deletion intent
    may_be_purged: set[str] = field(default_factory=set)  # consultations with a document intent
    purged_for_sure: set[str] = field(default_factory=set)  # documented, then a purge acked
    acks: int = 0
    kills_before_open: int = 0

    def take(self, lines: list[str]) -> None:
        documented_this_run: list[str] = []
        if "OPEN" not in lines:
            self.kills_before_open += 1
        for line in lines:
            kind, *rest = line.split(" ")
            if kind == "ERR":
                pytest.fail(f"the writer failed on its own: {line}")
            if kind in _ACKS:
                self.acks += 1
            if kind == "C":
                self.consultations.add(rest[0])
            elif kind == "K":
                self.keys.add(rest[0])
            elif kind == "E":
                self.entries[rest[1]] = rest[0]
            elif kind == "U":
                key = (rest[0], rest[1])
                self.updates[key] = max(self.updates.get(key, 0), int(rest[2]))
            elif kind == "x":
                self.may_be_deleted.add(rest[0])
            elif kind == "N":
                self.notes[rest[1]] = rest[0]
            elif kind == "A":
                self.audit[int(rest[0])] = rest[1]
            elif kind == "d":
                self.may_be_purged.add(rest[0])
            elif kind == "D":
                documented_this_run.append(rest[0])
            elif kind == "P":
                # Every consultation documented (acked) before this purge is gone for sure.
                self.purged_for_sure.update(documented_this_run)


def _read_available(fd: int, buffer: bytearray, timeout: float) -> bool:
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return False
    chunk = os.read(fd, 65536)
    buffer.extend(chunk)
    return bool(chunk)


def _one_round(
    data_dir: Path, rng: random.Random, seed: int, *, early_kill: float = 0.1
) -> list[str]:
    """Fork a writer, kill it at a random point, return the lines it managed to print."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; the child only writes
        # SQLite files it opens itself and leaves with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(data_dir, write_fd, seed)
    os.close(write_fd)
    buffer = bytearray()
    reaped = False
    try:
        if rng.random() < early_kill:
            # Kill during start-up or open: somewhere in the first few milliseconds.
            time.sleep(rng.uniform(0, 0.012 if early_kill == 1 else 0.004))
        else:
            want = rng.randint(0, 25)  # acks to wait for, then die inside the next write
            deadline = time.monotonic() + 20
            while buffer.count(b"\n") - buffer.count(b"OPEN\n") < want:
                if b"ERR " in buffer or time.monotonic() > deadline:
                    break
                if not _read_available(read_fd, buffer, 0.5) and _child_gone(pid):
                    reaped = True
                    break
            time.sleep(rng.uniform(0, 0.0015))
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        while _read_available(read_fd, buffer, 0):
            pass
    finally:
        os.close(read_fd)
    text = buffer.decode()
    # Only complete lines count: a write reported half-way was not acknowledged.
    return text.split("\n")[:-1]


def _child_gone(pid: int) -> bool:
    done, _ = os.waitpid(pid, os.WNOHANG)
    return done != 0


def _check(data_dir: Path, ledger: Ledger) -> None:
    for name in (DB_FILENAME, AUDIT_DB_FILENAME):
        raw = sqlite3.connect(data_dir / name)
        try:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name
        finally:
            raw.close()
    clock = SystemClock()
    with AuditLog.open(data_dir, clock=clock) as audit:
        report = audit.verify()
        assert report.ok, report.problem
        chain = {e.seq: e.hash for e in audit.entries()}
        for seq, digest in ledger.audit.items():
            assert chain.get(seq) == digest, f"acknowledged audit entry {seq} lost or changed"
    with BlindStore.open(data_dir, clock=clock) as store:
        gone_ok = ledger.may_be_purged
        for cid in ledger.purged_for_sure:
            with pytest.raises(StoreNotFound):
                store.get_consultation(cid)
        for cid in ledger.consultations - gone_ok:
            store.get_consultation(cid)
            positions = [e.position for e in store.list_entries(cid)]
            assert positions == list(range(len(positions)))
        for cid in ledger.keys - gone_ok:
            wrapped = store.get_consultation_key(cid)
            ref = FieldRef("consultation_keys", cid, "key")
            assert open_field(VAULT, wrapped, ref) == data_key(cid)
        latest: dict[str, dict[str, int]] = defaultdict(dict)
        for (eid, name), version in ledger.updates.items():
            latest[eid][name] = version
        for eid, cid in ledger.entries.items():
            if cid in gone_ok or eid in ledger.may_be_deleted:
                continue
            entry = store.get_entry(eid)
            assert set(entry.sealed) == set(FIELDS)
            for name, blob in entry.sealed.items():
                text = open_field(data_key(cid), blob, FieldRef("queue_entries", eid, name))
                stored_eid, stored_name, stored_version = text.decode().split(":")
                assert (stored_eid, stored_name) == (eid, name)
                # The acked update or a newer one that committed just before the kill.
                assert int(stored_version) >= latest[eid].get(name, 0)
        notes_by_consultation: dict[str, set[str]] = defaultdict(set)
        for nid, cid in ledger.notes.items():
            if cid not in gone_ok:
                notes_by_consultation[cid].add(nid)
        for cid, expected in notes_by_consultation.items():
            stored = {n.id: n for n in store.list_notes(cid)}
            assert expected <= stored.keys()
            for nid in expected:
                body = open_field(data_key(cid), stored[nid].body, FieldRef("notes", nid, "body"))
                assert body == f"note {nid}".encode()


def test_acknowledged_writes_survive_sigkill_at_random_points(data_dir: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    ledger = Ledger()
    for round_no in range(ROUNDS):
        ledger.take(_one_round(data_dir, rng, rng.getrandbits(32)))
        if round_no in (30, 120):
            _check(data_dir, ledger)  # the state mid-way must be sound too
    _check(data_dir, ledger)
    # Report what was exercised (pytest -rA / -s shows it); not a pass condition on speed.
    print(
        f"seed={seed} rounds={ROUNDS} acks={ledger.acks} "
        f"kills_before_open={ledger.kills_before_open} consultations={len(ledger.consultations)} "
        f"entries={len(ledger.entries)} notes={len(ledger.notes)} audit={len(ledger.audit)} "
        f"purged={len(ledger.purged_for_sure)}"
    )
    assert ledger.acks > ROUNDS  # the children did write, many times over
    assert ledger.purged_for_sure  # and purging was among the kill points


def test_a_store_killed_while_being_created_opens_afterwards(tmp_path: Path) -> None:
    """The first open writes the schema and switches to WAL: a kill there must be harmless."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    opened_in_child = 0
    for n in range(80):
        data_dir = tmp_path / f"d{n}"
        data_dir.mkdir()
        lines = _one_round(data_dir, rng, rng.getrandbits(32), early_kill=1.0)
        assert not any(line.startswith("ERR") for line in lines), lines
        opened_in_child += "OPEN" in lines
        with BlindStore.open(data_dir) as store, AuditLog.open(data_dir, clock=SystemClock()):
            store.check_integrity()
            store.list_consultations()
    print(f"killed 80 stores during creation; {opened_in_child} had finished opening")


def test_the_checker_notices_a_lost_acknowledged_write(data_dir: Path) -> None:
    """The check above can fail: remove one acknowledged entry behind the store's back."""
    rng = random.Random(7)
    ledger = Ledger()

    def kept(eid: str) -> bool:
        # An entry the check must find: neither maybe deleted nor maybe purged with its
        # consultation (the check skips those, so removing one would go unnoticed).
        return eid not in ledger.may_be_deleted and (
            ledger.entries[eid] not in ledger.may_be_purged
        )

    while not any(kept(eid) for eid in ledger.entries):
        ledger.take(_one_round(data_dir, rng, rng.getrandbits(32)))
    _check(data_dir, ledger)
    eid = next(e for e in ledger.entries if kept(e))
    raw = sqlite3.connect(data_dir / DB_FILENAME)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("DELETE FROM notes WHERE entry_id = ?", (eid,))
    raw.execute("DELETE FROM queue_entries WHERE id = ?", (eid,))
    raw.commit()
    raw.close()
    with pytest.raises((StoreNotFound, AssertionError)):
        _check(data_dir, ledger)
