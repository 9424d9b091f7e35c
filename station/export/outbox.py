"""The outbox: exports waiting for the care record, in their own durable SQLite file.

``outbox.db`` in the data directory, opened like the store (``journal_mode=WAL``,
``synchronous=FULL``, ``secure_delete=ON``; integrity checked read-only before any write; a
damaged file is left for IT): an export acknowledged by :meth:`Outbox.enqueue` is on disk.

A row holds clear metadata (ids, times, attempt count, the last outcome code) and the export
*sealed* to the outbox key (:mod:`station.export.keys`). The moment the EOJ confirms a
delivery the sealed payload is deleted (``secure_delete`` zeroes it in the file, and the WAL
is checkpointed and truncated), and the row stays as a receipt until its consultation is
purged: :meth:`Outbox.blocking_consultations` names the consultations with an export not yet
delivered, and the purge leaves those alone.

Retries: a failed attempt schedules the next one with :func:`backoff_delay` (5 s, 30 s,
2 min, 10 min, 30 min, then hourly, each with +/-20 % jitter so stations that lost the same
EOJ do not return in step). There is no give-up: an export stays until delivered. The limit
is the disk: each waiting export takes its sealed size (a note of a few KiB) in outbox.db.

Threads: one connection per instance, calls serialised by an internal lock.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from station.core.clock import Clock
from station.core.ids import is_opaque_id
from station.export.errors import OutboxCorrupt, OutboxError, OutboxSchemaTooNew
from station.export.limits import MAX_SEALED_EXPORT_BYTES
from station.storage.datadir import DataDir
from station.storage.sqlite import SqliteFile

__all__ = [
    "BACKOFF_SCHEDULE",
    "JITTER",
    "OUTBOX_DB_FILENAME",
    "Outbox",
    "OutboxEntry",
    "OutboxState",
    "backoff_delay",
]

OUTBOX_DB_FILENAME: Final = DataDir.OUTBOX
#: Delay before retry number n (1-based), the last repeated for ever.
BACKOFF_SCHEDULE: Final = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
#: Each delay is stretched or shrunk by up to this fraction, at random.
JITTER: Final = 0.2

_OUTCOME_MAX: Final = 32

_SCHEMA: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE exports (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL,
            entry_id TEXT,
            sealed BLOB,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            last_attempt_at TEXT,
            last_outcome TEXT,
            delivered_at TEXT,
            CHECK ((state = 'pending') = (sealed IS NOT NULL))
        ) STRICT""",
        "CREATE INDEX exports_due ON exports (state, next_attempt_at)",
        "CREATE INDEX exports_by_consultation ON exports (consultation_id)",
    ),
)


class OutboxState(StrEnum):
    """Where an export is."""

    #: Waiting for (another) delivery attempt; the sealed payload is kept.
    PENDING = "pending"
    #: The EOJ confirmed it; the sealed payload is gone, the row is a receipt.
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One export in the outbox: clear metadata and (while pending) the sealed payload."""

    id: str
    consultation_id: str
    entry_id: str | None
    state: OutboxState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_outcome: str | None
    delivered_at: datetime | None
    sealed: bytes | None = field(default=None, repr=False)


def backoff_delay(failures: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``failures``-th failed attempt in a row (1-based)."""
    if failures < 1:
        return timedelta(0)
    base = BACKOFF_SCHEDULE[min(failures, len(BACKOFF_SCHEDULE)) - 1]
    # Not for security: spreading retries only needs an unpredictable-enough spread.
    factor = 1.0 + (rng or random).uniform(-JITTER, JITTER)
    return base * factor


def _ts(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise OutboxError("outbox times must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_opaque_id(value):
        raise OutboxError(f"{what} must be an opaque id (never a CPR number)")
    return value


_COLUMNS: Final = (
    "id, consultation_id, entry_id, state, attempts, created_at, next_attempt_at, "
    "last_attempt_at, last_outcome, delivered_at, sealed"
)


def _row(row: tuple[Any, ...]) -> OutboxEntry:
    created, due = _dt(str(row[5])), _dt(str(row[6]))
    assert created is not None and due is not None
    return OutboxEntry(
        id=str(row[0]),
        consultation_id=str(row[1]),
        entry_id=None if row[2] is None else str(row[2]),
        state=OutboxState(str(row[3])),
        attempts=int(str(row[4])),
        created_at=created,
        next_attempt_at=due,
        last_attempt_at=_dt(None if row[7] is None else str(row[7])),
        last_outcome=None if row[8] is None else str(row[8]),
        delivered_at=_dt(None if row[9] is None else str(row[9])),
        sealed=None if row[10] is None else bytes(row[10]),
    )


class Outbox(SqliteFile):
    """The outbox (see the module docs)."""

    kind = "export outbox"
    error = OutboxError
    corrupt = OutboxCorrupt

    @classmethod
    def open(cls, data_dir: Path, *, clock: Clock, filename: str = OUTBOX_DB_FILENAME) -> Outbox:
        """Open (or create) ``outbox.db`` in ``data_dir``."""
        return cls._open_in(
            data_dir, filename, migrations=_SCHEMA, too_new=OutboxSchemaTooNew, clock=clock
        )

    # ------------------------------------------------------------------------ writing

    def enqueue(
        self,
        *,
        export_id: str,
        consultation_id: str,
        sealed: bytes,
        entry_id: str | None = None,
    ) -> tuple[OutboxEntry, bool]:
        """Store a sealed export, due at once; ``(entry, created)``. On disk when it returns.

        Idempotent by ``export_id``: enqueuing an id again changes nothing and returns the
        stored entry with ``created=False`` (a staff UI retrying after a lost answer must not
        send a note twice). The same id for another consultation is refused.
        """
        _check_id(export_id, "export id")
        _check_id(consultation_id, "consultation id")
        if entry_id is not None:
            _check_id(entry_id, "entry id")
        if not isinstance(sealed, bytes) or not 0 < len(sealed) <= MAX_SEALED_EXPORT_BYTES:
            raise OutboxError(f"a sealed export must be 1-{MAX_SEALED_EXPORT_BYTES} bytes")
        now = _ts(self._clock.now())
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM exports WHERE id = ?",  # noqa: S608 (our constant)
                (export_id,),
            ).fetchone()
            if row is not None:
                existing = _row(row)
                if existing.consultation_id != consultation_id:
                    raise OutboxError("that export id belongs to another consultation")
                return existing, False
            conn.execute(
                "INSERT INTO exports (id, consultation_id, entry_id, sealed, state, attempts, "
                "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                (export_id, consultation_id, entry_id, sealed, OutboxState.PENDING, now, now),
            )
            created = conn.execute(
                f"SELECT {_COLUMNS} FROM exports WHERE id = ?",  # noqa: S608
                (export_id,),
            ).fetchone()
        return _row(created), True

    def record_failure(
        self, export_id: str, *, outcome: str, next_attempt_at: datetime
    ) -> OutboxEntry:
        """Count a failed attempt, keep its outcome code, schedule the next attempt."""
        _check_id(export_id, "export id")
        if not outcome.isascii() or not 0 < len(outcome) <= _OUTCOME_MAX:
            raise OutboxError("an outcome is a short ASCII code")
        now = _ts(self._clock.now())
        with self._write() as conn:
            conn.execute(
                "UPDATE exports SET attempts = attempts + 1, last_attempt_at = ?, "
                "last_outcome = ?, next_attempt_at = ? WHERE id = ? AND state = ?",
                (now, outcome, _ts(next_attempt_at), export_id, OutboxState.PENDING),
            )
            return self._get(conn, export_id)

    def mark_delivered(self, export_id: str) -> OutboxEntry:
        """The EOJ confirmed the export: delete its sealed payload, keep the receipt."""
        _check_id(export_id, "export id")
        now = _ts(self._clock.now())
        with self._write() as conn:
            conn.execute(
                "UPDATE exports SET state = ?, sealed = NULL, attempts = attempts + 1, "
                "last_attempt_at = ?, last_outcome = 'delivered', delivered_at = ? "
                "WHERE id = ? AND state = ?",
                (OutboxState.DELIVERED, now, now, export_id, OutboxState.PENDING),
            )
            entry = self._get(conn, export_id)
        self._scrub_wal()
        return entry

    def retry_now(self, export_id: str) -> OutboxEntry:
        """Make a pending export due at once (staff pressed "send now")."""
        _check_id(export_id, "export id")
        now = _ts(self._clock.now())
        with self._write() as conn:
            conn.execute(
                "UPDATE exports SET next_attempt_at = ? WHERE id = ? AND state = ?",
                (now, export_id, OutboxState.PENDING),
            )
            return self._get(conn, export_id)

    def forget_consultations(self, consultation_ids: Collection[str]) -> int:
        """Delete the receipts of purged consultations (only delivered rows); how many."""
        ids = [_check_id(c, "consultation id") for c in consultation_ids]
        if not ids:
            return 0
        with self._write() as conn:
            cursor = conn.executemany(
                "DELETE FROM exports WHERE consultation_id = ? AND state = ?",
                [(c, OutboxState.DELIVERED) for c in ids],
            )
            return int(cursor.rowcount)

    # ------------------------------------------------------------------------ reading

    @staticmethod
    def _get(conn: sqlite3.Connection, export_id: str) -> OutboxEntry:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM exports WHERE id = ?",  # noqa: S608
            (export_id,),
        ).fetchone()
        if row is None:
            raise OutboxError("no export with that id")
        return _row(row)

    def get(self, export_id: str) -> OutboxEntry:
        """One export; :class:`OutboxError` if there is none."""
        _check_id(export_id, "export id")
        with self._read() as conn:
            return self._get(conn, export_id)

    def due(self, now: datetime, *, limit: int = 20) -> list[OutboxEntry]:
        """Pending exports whose next attempt is due at ``now``, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM exports "  # noqa: S608
                "WHERE state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, created_at "
                "LIMIT ?",
                (OutboxState.PENDING, _ts(now), limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def next_due_at(self) -> datetime | None:
        """When the next pending export is due, or None if nothing is pending."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT min(next_attempt_at) FROM exports WHERE state = ?",
                (OutboxState.PENDING,),
            ).fetchone()
        return _dt(row[0]) if row and row[0] is not None else None

    def list_for_consultation(self, consultation_id: str) -> list[OutboxEntry]:
        """The consultation's exports (without their sealed payloads), oldest first."""
        _check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM exports WHERE consultation_id = ? "  # noqa: S608
                "ORDER BY created_at, id",
                (consultation_id,),
            ).fetchall()
        return [_without_payload(_row(r)) for r in rows]

    def blocking_consultations(self) -> set[str]:
        """Consultations with an export not yet delivered: they must not be purged."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT consultation_id FROM exports WHERE state = ?",
                (OutboxState.PENDING,),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def counts(self) -> dict[str, int]:
        """How many exports are in each state (for health and heartbeats: no ids)."""
        with self._read() as conn:
            rows = conn.execute("SELECT state, count(*) FROM exports GROUP BY state").fetchall()
        result = {state.value: 0 for state in OutboxState}
        result.update({str(state): int(n) for state, n in rows})
        return result


def _without_payload(entry: OutboxEntry) -> OutboxEntry:
    return OutboxEntry(
        entry.id,
        entry.consultation_id,
        entry.entry_id,
        entry.state,
        entry.attempts,
        entry.created_at,
        entry.next_attempt_at,
        entry.last_attempt_at,
        entry.last_outcome,
        entry.delivered_at,
        None,
    )
