"""The blind store itself: :class:`BlindStore`, stationd's ``station.db`` (see the package docs).

Close to 600 lines for one job: one method per transaction on the store's tables (clinics,
consultations and their keys, queue entries, notes, sealed events); the records, checks,
schema and retention are modules of their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Final

from station.core.clock import Clock, SystemClock
from station.core.ids import new_id
from station.core.model import ConsultationType, QueueEntryStatus
from station.errors import StationError
from station.storage.datadir import DataDir
from station.storage.store.attendance import Attendance
from station.storage.store.checks import (
    MAX_SEALED_BYTES,
    PROVIDER_RE,
    WRAPPED_KEY_MAX_BYTES,
    WRAPPED_KEY_MIN_BYTES,
    check_enum,
    check_fields,
    check_id,
    check_sealed,
    check_text,
    dt,
    ts,
)
from station.storage.store.errors import (
    StoreConflict,
    StoreCorrupt,
    StoreError,
    StoreInvalid,
    StoreNotFound,
    StoreSchemaTooNew,
)
from station.storage.store.records import (
    ENTRY_FIELDS,
    SEALED_EVENT_KINDS,
    Clinic,
    Consultation,
    ConsultationStatus,
    Note,
    QueueEntry,
    SealedEvent,
    UpcomingConsultation,
)
from station.storage.store.retention import Retention
from station.storage.store.schema import CONSULTATION_COLUMNS, MIGRATIONS, consultation_from_row

__all__ = ["DB_FILENAME", "MAX_ENTRIES_PER_CONSULTATION", "BlindStore"]

DB_FILENAME: Final = DataDir.STORE
#: A nursing-home round is a few dozen residents; a bound keeps a bug from filling the disk.
MAX_ENTRIES_PER_CONSULTATION: Final = 200


class BlindStore(Retention, Attendance):
    """stationd's storage of clear metadata and sealed personal fields (see module docs)."""

    kind = "station store"
    error = StoreError
    corrupt = StoreCorrupt

    def _refused(self, error: sqlite3.IntegrityError) -> StationError | None:
        # SQLite names the constraint and column, never the value.
        return StoreConflict(f"write refused by the database: {error}")

    @classmethod
    def open(cls, data_dir: Path, *, clock: Clock | None = None) -> BlindStore:
        """Open ``station.db`` in ``data_dir``, creating or migrating it as needed.

        Raises :class:`StoreCorrupt` for a damaged file (left untouched),
        :class:`StoreSchemaTooNew` for a file from newer software, :class:`StoreError` when
        ``data_dir`` does not exist (a missing mount must not silently get a fresh store).
        """
        return cls._open_in(
            data_dir,
            DB_FILENAME,
            migrations=MIGRATIONS,
            too_new=StoreSchemaTooNew,
            clock=clock or SystemClock(),
        )

    # ------------------------------------------------------------------------ clinics

    def put_clinic(self, clinic: Clinic) -> Clinic:
        """Insert or replace a GP clinic (from the signed configuration)."""
        check_id(clinic.id, "clinic id")
        check_text(clinic.name, "clinic name", 200)
        if not isinstance(clinic.provider_number, str) or not PROVIDER_RE.fullmatch(
            clinic.provider_number
        ):
            raise StoreInvalid("provider number must be 1-16 ASCII letters, digits or '-'")
        check_text(clinic.video_room, "video room", 512)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO clinics (id, name, provider_number, video_room) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                "provider_number = excluded.provider_number, video_room = excluded.video_room",
                (clinic.id, clinic.name, clinic.provider_number, clinic.video_room),
            )
        return clinic

    def get_clinic(self, clinic_id: str) -> Clinic:
        """The clinic with this id; :class:`StoreNotFound` if there is none."""
        check_id(clinic_id, "clinic id")
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, name, provider_number, video_room FROM clinics WHERE id = ?",
                (clinic_id,),
            ).fetchone()
        if row is None:
            raise StoreNotFound("no clinic with that id")
        return Clinic(*row)

    def list_clinics(self) -> list[Clinic]:
        """Every clinic, by name."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, name, provider_number, video_room FROM clinics ORDER BY name, id"
            ).fetchall()
        return [Clinic(*row) for row in rows]

    # ------------------------------------------------------------------ consultations

    def create_consultation(
        self,
        *,
        consultation_id: str,
        clinic_id: str,
        starts_at: datetime,
        ends_at: datetime,
        consultation_type: ConsultationType | str,
        status: ConsultationStatus | str = ConsultationStatus.BOOKED,
    ) -> Consultation:
        """Record a booked consultation; ``created_at`` comes from the store's clock."""
        check_id(consultation_id, "consultation id")
        check_id(clinic_id, "clinic id")
        start, end = ts(starts_at, "starts_at"), ts(ends_at, "ends_at")
        if end <= start:
            raise StoreInvalid("a consultation must end after it starts")
        kind = check_enum(ConsultationType, consultation_type, "consultation type")
        state = check_enum(ConsultationStatus, status, "consultation status")
        if state is ConsultationStatus.DOCUMENTED:
            raise StoreInvalid("a consultation becomes documented only through mark_documented")
        created = ts(self._clock.now(), "clock time")
        with self._write() as conn:
            conn.execute(
                # Only our own column-list constant is interpolated; values are bound.
                f"INSERT INTO consultations ({CONSULTATION_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (consultation_id, clinic_id, start, end, kind.value, state.value, created),
            )
        return Consultation(
            id=consultation_id,
            clinic_id=clinic_id,
            starts_at=dt(start),
            ends_at=dt(end),
            consultation_type=kind,
            status=state,
            created_at=dt(created),
            documented_at=None,
        )

    def get_consultation(self, consultation_id: str) -> Consultation:
        """The consultation with this id; :class:`StoreNotFound` if none (or purged)."""
        check_id(consultation_id, "consultation id")
        with self._read() as conn:
            return self._get_consultation(conn, consultation_id)

    @staticmethod
    def _get_consultation(conn: sqlite3.Connection, consultation_id: str) -> Consultation:
        row = conn.execute(
            f"SELECT {CONSULTATION_COLUMNS} FROM consultations WHERE id = ?",  # noqa: S608
            (consultation_id,),
        ).fetchone()
        if row is None:
            raise StoreNotFound("no consultation with that id")
        return consultation_from_row(row)

    def list_consultations(
        self,
        *,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        statuses: Collection[ConsultationStatus | str] | None = None,
    ) -> list[Consultation]:
        """Consultations by start time, optionally within ``[starts_from, starts_before)``."""
        where, params = [], []
        if starts_from is not None:
            where.append("starts_at >= ?")
            params.append(ts(starts_from, "starts_from"))
        if starts_before is not None:
            where.append("starts_at < ?")
            params.append(ts(starts_before, "starts_before"))
        if statuses is not None:
            values = [
                check_enum(ConsultationStatus, s, "consultation status").value for s in statuses
            ]
            if not values:
                return []
            where.append(f"status IN ({', '.join('?' * len(values))})")
            params.extend(values)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {CONSULTATION_COLUMNS} FROM consultations {clause} "  # noqa: S608 (only our placeholders)
                "ORDER BY starts_at, id",
                params,
            ).fetchall()
        return [consultation_from_row(row) for row in rows]

    def update_consultation(
        self,
        consultation_id: str,
        *,
        clinic_id: str | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        consultation_type: ConsultationType | str | None = None,
    ) -> Consultation:
        """Re-book: change the clinic, the times or the type. Not once documented."""
        check_id(consultation_id, "consultation id")
        if clinic_id is not None:
            check_id(clinic_id, "clinic id")
        start = ts(starts_at, "starts_at") if starts_at is not None else None
        end = ts(ends_at, "ends_at") if ends_at is not None else None
        kind = (
            check_enum(ConsultationType, consultation_type, "consultation type")
            if consultation_type is not None
            else None
        )
        with self._write() as conn:
            current = self._get_consultation(conn, consultation_id)
            if current.status is ConsultationStatus.DOCUMENTED:
                raise StoreConflict("a documented consultation cannot be changed")
            new_start = start or ts(current.starts_at, "starts_at")
            new_end = end or ts(current.ends_at, "ends_at")
            if new_end <= new_start:
                raise StoreInvalid("a consultation must end after it starts")
            conn.execute(
                "UPDATE consultations SET clinic_id = ?, starts_at = ?, ends_at = ?, "
                "consultation_type = ? WHERE id = ?",
                (
                    clinic_id or current.clinic_id,
                    new_start,
                    new_end,
                    (kind or current.consultation_type).value,
                    consultation_id,
                ),
            )
            return self._get_consultation(conn, consultation_id)

    def set_consultation_status(
        self, consultation_id: str, status: ConsultationStatus | str
    ) -> Consultation:
        """Move a consultation to ``status`` (documented only via :meth:`mark_documented`)."""
        check_id(consultation_id, "consultation id")
        state = check_enum(ConsultationStatus, status, "consultation status")
        if state is ConsultationStatus.DOCUMENTED:
            raise StoreInvalid("a consultation becomes documented only through mark_documented")
        with self._write() as conn:
            current = self._get_consultation(conn, consultation_id)
            if current.status is ConsultationStatus.DOCUMENTED:
                raise StoreConflict("a documented consultation cannot change status")
            conn.execute(
                "UPDATE consultations SET status = ? WHERE id = ?", (state.value, consultation_id)
            )
            return self._get_consultation(conn, consultation_id)

    def mark_documented(self, consultation_id: str, at: datetime) -> Consultation:
        """Record that the consultation is in the care record (EOJ); starts the retention clock.

        Idempotent: marking again keeps the first time, so retention is never extended.
        """
        check_id(consultation_id, "consultation id")
        when = ts(at, "documented time")
        with self._write() as conn:
            current = self._get_consultation(conn, consultation_id)
            if current.documented_at is None:
                conn.execute(
                    "UPDATE consultations SET status = ?, documented_at = ? WHERE id = ?",
                    (ConsultationStatus.DOCUMENTED.value, when, consultation_id),
                )
            return self._get_consultation(conn, consultation_id)

    def list_upcoming(self, now: datetime, *, limit: int = 20) -> list[UpcomingConsultation]:
        """Booked or running consultations not yet over, by start: times and clinic only.

        This is all the lock screen may show; it carries nothing about the residents.
        """
        if not 1 <= limit <= 1000:
            raise StoreInvalid("limit must be 1-1000")
        cutoff = ts(now, "now")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT c.starts_at, c.ends_at, c.clinic_id, k.name FROM consultations c "
                "JOIN clinics k ON k.id = c.clinic_id "
                "WHERE c.ends_at > ? AND c.status IN (?, ?) ORDER BY c.starts_at, c.id LIMIT ?",
                (
                    cutoff,
                    ConsultationStatus.BOOKED.value,
                    ConsultationStatus.IN_CALL.value,
                    limit,
                ),
            ).fetchall()
        return [UpcomingConsultation(dt(r[0]), dt(r[1]), r[2], r[3]) for r in rows]

    # ---------------------------------------------------------------- consultation keys

    def put_consultation_key(self, consultation_id: str, wrapped_key: bytes) -> None:
        """Store (or replace, on re-wrapping) the consultation's wrapped data key."""
        check_id(consultation_id, "consultation id")
        blob = check_sealed(
            wrapped_key,
            "wrapped consultation key",
            min_len=WRAPPED_KEY_MIN_BYTES,
            max_len=WRAPPED_KEY_MAX_BYTES,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO consultation_keys (consultation_id, wrapped_key) VALUES (?, ?) "
                "ON CONFLICT (consultation_id) DO UPDATE SET wrapped_key = excluded.wrapped_key",
                (consultation_id, blob),
            )

    def get_consultation_key(self, consultation_id: str) -> bytes:
        """The wrapped data key; :class:`StoreNotFound` if none (never set, or purged)."""
        check_id(consultation_id, "consultation id")
        with self._read() as conn:
            row = conn.execute(
                "SELECT wrapped_key FROM consultation_keys WHERE consultation_id = ?",
                (consultation_id,),
            ).fetchone()
        if row is None:
            raise StoreNotFound("no key for that consultation")
        return bytes(row[0])

    # ------------------------------------------------------------------ queue entries

    def add_entry(
        self,
        *,
        entry_id: str,
        consultation_id: str,
        sealed: Mapping[str, bytes],
        status: QueueEntryStatus | str = QueueEntryStatus.WAITING,
    ) -> QueueEntry:
        """Append a resident to the consultation's queue (last position).

        ``entry_id`` comes from the caller (:func:`new_id`), because the sealed fields' AAD
        names the row before the row exists.
        """
        check_id(entry_id, "entry id")
        check_id(consultation_id, "consultation id")
        fields = check_fields(sealed)
        state = check_enum(QueueEntryStatus, status, "entry status")
        with self._write() as conn:
            self._get_consultation(conn, consultation_id)
            count, top = conn.execute(
                "SELECT count(*), max(position) FROM queue_entries WHERE consultation_id = ?",
                (consultation_id,),
            ).fetchone()
            if count >= MAX_ENTRIES_PER_CONSULTATION:
                raise StoreConflict(
                    f"a consultation holds at most {MAX_ENTRIES_PER_CONSULTATION} queue entries"
                )
            position = 0 if top is None else top + 1
            conn.execute(
                "INSERT INTO queue_entries (id, consultation_id, position, status) "
                "VALUES (?, ?, ?, ?)",
                (entry_id, consultation_id, position, state.value),
            )
            conn.executemany(
                "INSERT INTO entry_fields (entry_id, field, sealed) VALUES (?, ?, ?)",
                [(entry_id, name, blob) for name, blob in fields.items()],
            )
        return QueueEntry(entry_id, consultation_id, position, state, fields)

    def get_entry(self, entry_id: str) -> QueueEntry:
        """The queue entry with its sealed fields; :class:`StoreNotFound` if none."""
        check_id(entry_id, "entry id")
        with self._read() as conn:
            return self._get_entry(conn, entry_id)

    @staticmethod
    def _get_entry(conn: sqlite3.Connection, entry_id: str) -> QueueEntry:
        row = conn.execute(
            "SELECT id, consultation_id, position, status FROM queue_entries WHERE id = ?",
            (entry_id,),
        ).fetchone()
        if row is None:
            raise StoreNotFound("no queue entry with that id")
        fields = {
            name: bytes(blob)
            for name, blob in conn.execute(
                "SELECT field, sealed FROM entry_fields WHERE entry_id = ? ORDER BY field",
                (entry_id,),
            )
        }
        return QueueEntry(row[0], row[1], row[2], QueueEntryStatus(row[3]), fields)

    def list_entries(self, consultation_id: str) -> list[QueueEntry]:
        """The consultation's queue in order, each entry with its sealed fields."""
        check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, consultation_id, position, status FROM queue_entries "
                "WHERE consultation_id = ? ORDER BY position",
                (consultation_id,),
            ).fetchall()
            fields: dict[str, dict[str, bytes]] = {row[0]: {} for row in rows}
            for entry_id, name, blob in conn.execute(
                "SELECT f.entry_id, f.field, f.sealed FROM entry_fields f "
                "JOIN queue_entries e ON e.id = f.entry_id WHERE e.consultation_id = ? "
                "ORDER BY f.entry_id, f.field",
                (consultation_id,),
            ):
                fields[entry_id][name] = bytes(blob)
        return [QueueEntry(r[0], r[1], r[2], QueueEntryStatus(r[3]), fields[r[0]]) for r in rows]

    def update_entry(
        self,
        entry_id: str,
        *,
        sealed: Mapping[str, bytes] | None = None,
        remove_fields: Collection[str] = (),
        status: QueueEntryStatus | str | None = None,
    ) -> QueueEntry:
        """Replace some sealed fields, remove others, and/or change the status.

        When a sealed value is replaced or removed the WAL is checkpointed and truncated,
        so a corrected value (a mistyped CPR may be someone else's) leaves no old copy.
        """
        check_id(entry_id, "entry id")
        fields = check_fields(sealed or {})
        removing = set(remove_fields)
        if not removing <= ENTRY_FIELDS:
            raise StoreInvalid("unknown field name to remove")
        if removing & fields.keys():
            raise StoreInvalid("a field cannot be both set and removed")
        state = check_enum(QueueEntryStatus, status, "entry status") if status is not None else None
        with self._write() as conn:
            before = self._get_entry(conn, entry_id)
            conn.executemany(
                "INSERT INTO entry_fields (entry_id, field, sealed) VALUES (?, ?, ?) "
                "ON CONFLICT (entry_id, field) DO UPDATE SET sealed = excluded.sealed",
                [(entry_id, name, blob) for name, blob in fields.items()],
            )
            conn.executemany(
                "DELETE FROM entry_fields WHERE entry_id = ? AND field = ?",
                [(entry_id, name) for name in removing],
            )
            if state is not None:
                conn.execute(
                    "UPDATE queue_entries SET status = ? WHERE id = ?", (state.value, entry_id)
                )
            after = self._get_entry(conn, entry_id)
        if (fields.keys() & before.sealed.keys()) or (removing & before.sealed.keys()):
            self._scrub_wal()
        return after

    def set_entry_status(self, entry_id: str, status: QueueEntryStatus | str) -> QueueEntry:
        """Change one queue entry's status."""
        return self.update_entry(entry_id, status=status)

    def reorder_entries(self, consultation_id: str, entry_ids: Sequence[str]) -> list[QueueEntry]:
        """Set the queue order: ``entry_ids`` must name every entry of the consultation once."""
        check_id(consultation_id, "consultation id")
        for entry_id in entry_ids:
            check_id(entry_id, "entry id")
        if len(set(entry_ids)) != len(entry_ids):
            raise StoreInvalid("the new order names an entry twice")
        with self._write() as conn:
            current = {
                row[0]
                for row in conn.execute(
                    "SELECT id FROM queue_entries WHERE consultation_id = ?", (consultation_id,)
                )
            }
            if current != set(entry_ids):
                raise StoreConflict("the new order must name exactly the consultation's entries")
            # Two passes, because UNIQUE (consultation_id, position) holds after every row:
            # first out of the way into negative positions, then into place.
            conn.executemany(
                "UPDATE queue_entries SET position = ? WHERE id = ?",
                [(-1 - i, entry_id) for i, entry_id in enumerate(entry_ids)],
            )
            conn.executemany(
                "UPDATE queue_entries SET position = ? WHERE id = ?",
                [(i, entry_id) for i, entry_id in enumerate(entry_ids)],
            )
        return self.list_entries(consultation_id)

    def delete_entry(self, entry_id: str) -> None:
        """Take a resident out of the queue, overwriting their sealed fields.

        Refused (:class:`StoreConflict`) once a note refers to the entry: a documented
        resident leaves with the whole consultation, by :meth:`purge_documented`.
        """
        check_id(entry_id, "entry id")
        with self._write() as conn:
            entry = self._get_entry(conn, entry_id)
            (notes,) = conn.execute(
                "SELECT count(*) FROM notes WHERE entry_id = ?", (entry_id,)
            ).fetchone()
            if notes:
                raise StoreConflict("a queue entry with notes cannot be deleted")
            conn.execute("DELETE FROM entry_fields WHERE entry_id = ?", (entry_id,))
            conn.execute("DELETE FROM queue_entries WHERE id = ?", (entry_id,))
            # Close the gap so positions stay 0..n-1. SQLite checks UNIQUE row by row in no
            # set order, so shift through negative positions (which clash with nothing).
            conn.execute(
                "UPDATE queue_entries SET position = -position "
                "WHERE consultation_id = ? AND position > ?",
                (entry.consultation_id, entry.position),
            )
            conn.execute(
                "UPDATE queue_entries SET position = -position - 1 "
                "WHERE consultation_id = ? AND position < 0",
                (entry.consultation_id,),
            )
        self._scrub_wal()

    # -------------------------------------------------------------------------- notes

    def add_note(
        self, *, note_id: str, consultation_id: str, body: bytes, entry_id: str | None = None
    ) -> Note:
        """Store a sealed wrap-up note, optionally about one queue entry."""
        check_id(note_id, "note id")
        check_id(consultation_id, "consultation id")
        if entry_id is not None:
            check_id(entry_id, "entry id")
        blob = check_sealed(body, "note body", max_len=MAX_SEALED_BYTES)
        created = ts(self._clock.now(), "clock time")
        with self._write() as conn:
            self._get_consultation(conn, consultation_id)
            if (
                entry_id is not None
                and self._get_entry(conn, entry_id).consultation_id != consultation_id
            ):
                raise StoreConflict("the queue entry belongs to another consultation")
            conn.execute(
                "INSERT INTO notes (id, consultation_id, entry_id, created_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (note_id, consultation_id, entry_id, created, blob),
            )
        return Note(note_id, consultation_id, entry_id, dt(created), blob)

    def list_notes(self, consultation_id: str) -> list[Note]:
        """The consultation's notes, oldest first."""
        check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, consultation_id, entry_id, created_at, body FROM notes "
                "WHERE consultation_id = ? ORDER BY created_at, id",
                (consultation_id,),
            ).fetchall()
        return [Note(r[0], r[1], r[2], dt(r[3]), bytes(r[4])) for r in rows]

    # ------------------------------------------------------------------ sealed events

    def add_sealed_event(
        self, *, consultation_id: str, kind: str, blob: bytes, event_id: str | None = None
    ) -> SealedEvent:
        """Store a blob stationd sealed to the vault's public key while locked."""
        event_id = new_id() if event_id is None else check_id(event_id, "event id")
        check_id(consultation_id, "consultation id")
        if kind not in SEALED_EVENT_KINDS:
            raise StoreInvalid(
                f"sealed event kind must be one of: {', '.join(sorted(SEALED_EVENT_KINDS))}"
            )
        sealed = check_sealed(blob, "sealed event", max_len=MAX_SEALED_BYTES)
        created = ts(self._clock.now(), "clock time")
        with self._write() as conn:
            self._get_consultation(conn, consultation_id)
            conn.execute(
                "INSERT INTO sealed_events (id, consultation_id, created_at, kind, blob) "
                "VALUES (?, ?, ?, ?, ?)",
                (event_id, consultation_id, created, kind, sealed),
            )
        return SealedEvent(event_id, consultation_id, dt(created), kind, sealed)

    def list_sealed_events(self, consultation_id: str) -> list[SealedEvent]:
        """The consultation's sealed events, oldest first."""
        check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, consultation_id, created_at, kind, blob FROM sealed_events "
                "WHERE consultation_id = ? ORDER BY created_at, id",
                (consultation_id,),
            ).fetchall()
        return [SealedEvent(r[0], r[1], dt(r[2]), r[3], bytes(r[4])) for r in rows]
