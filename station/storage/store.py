"""The blind store: stationd's storage, which never holds plaintext personal data.

stationd owns this store but cannot read what matters in it. The staff UI (the only process
that holds the vault key) seals every personal field with :func:`station.keys.crypto.seal_field`
and hands the store sealed blobs plus clear, non-personal metadata: ids, times, statuses,
positions, GP clinic ids. The store orders, lists and purges by that metadata alone and
works with no key at all.

One SQLite file, ``station.db`` in the data directory:

- ``journal_mode=WAL`` and ``synchronous=FULL``: every public write method commits before it
  returns, and a commit is on disk (fsync of the WAL) when it returns, so an acknowledged
  write survives a crash or power cut.
- ``secure_delete=ON``: deleted content is overwritten with zeros in the file, and purging
  ends with ``wal_checkpoint(TRUNCATE)`` so no old page survives in the WAL either.
- ``foreign_keys=ON``, ``temp_store=MEMORY`` (no temporary files with our pages in /tmp).
- A ``meta`` table holds ``schema_version``; :data:`MIGRATIONS` upgrades older files forward,
  and a file from a newer version is refused (:class:`StoreSchemaTooNew`), never touched.
- Opening checks integrity first, on a read-only connection: a damaged file raises
  :class:`StoreCorrupt` and is left exactly as it was for IT.

Retention is crypto-erasure plus overwrite: :meth:`BlindStore.purge_documented` deletes a
consultation's wrapped data key (the only key that opens its fields) and every row of it.

Threads: a :class:`BlindStore` owns one SQLite connection, used by one process. Every method
takes an internal lock, so the instance may be called from any thread (stationd calls it via
``asyncio.to_thread``); calls are serialised, never concurrent. Do not share one instance
across ``fork()``; open a new one in the child. Several processes may open the same file
(SQLite's locking serialises writers), though stationd is meant to be its only writer.

Errors never quote the rejected value: an id typed wrongly may be a CPR number.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar

from station.core.clock import Clock, SystemClock
from station.core.ids import is_opaque_id, new_id
from station.core.model import ConsultationType, QueueEntryStatus
from station.errors import StationError
from station.storage.datadir import DataDir
from station.storage.sqlite import SqliteFile, check_sqlite_integrity

__all__ = [
    "DB_FILENAME",
    "DEFAULT_RETENTION",
    "ENTRY_FIELDS",
    "MAX_ENTRIES_PER_CONSULTATION",
    "MAX_SEALED_BYTES",
    "MIGRATIONS",
    "SEALED_EVENT_KINDS",
    "STORE_SCHEMA_VERSION",
    "BlindStore",
    "Clinic",
    "Consultation",
    "ConsultationStatus",
    "ConsultationType",
    "Note",
    "QueueEntry",
    "SealedEvent",
    "StoreConflict",
    "StoreCorrupt",
    "StoreError",
    "StoreInvalid",
    "StoreNotFound",
    "StoreSchemaTooNew",
    "StoreScrubIncomplete",
    "UpcomingConsultation",
    "is_opaque_id",
    "new_id",
]

DB_FILENAME: Final = DataDir.STORE
#: How long a documented consultation's data stays on the station (DESIGN.md: default 24 h).
DEFAULT_RETENTION: Final = timedelta(hours=24)
#: Largest sealed value accepted: a note of a few pages, far below SQLite's limits.
MAX_SEALED_BYTES: Final = 64 * 1024
#: A nursing-home round is a few dozen residents; a bound keeps a bug from filling the disk.
MAX_ENTRIES_PER_CONSULTATION: Final = 200
#: seal_field's output is a format byte, a 12-byte nonce and a 16-byte tag around the text.
_SEALED_FIELD_MIN_BYTES: Final = 1 + 12 + 16
#: Wrapped keys: AES key wrap of 32 bytes is 40 bytes, seal_field of 32 bytes is 61.
_WRAPPED_KEY_MIN_BYTES: Final = 40
_WRAPPED_KEY_MAX_BYTES: Final = 1024

#: The sealed fields a queue entry may carry. Field names are clear metadata, so they come
#: from this fixed set: a free-form name could itself leak something ("note_for_Jensen").
ENTRY_FIELDS: Final = frozenset({"display_name", "birth_date", "room", "cpr", "note", "reason"})

#: Kinds of what stationd seals to the vault's public key while locked. The kind is clear
#: metadata, so it comes from a fixed set; extend it here when stationd records more.
SEALED_EVENT_KINDS: Final = frozenset(
    {
        "call_started",
        "call_ended",
        "call_failed",
        "call_reconnected",
        "gp_message",
        "staff_called",
        "resident_in_view",
    }
)


class ConsultationStatus(StrEnum):
    """Where a booked consultation is in its life."""

    BOOKED = "booked"
    IN_CALL = "in_call"
    ENDED = "ended"
    #: Set only by :meth:`BlindStore.mark_documented`; starts the retention clock.
    DOCUMENTED = "documented"
    CANCELLED = "cancelled"


# --------------------------------------------------------------------------------- errors


class StoreError(StationError):
    """Base of the blind store's errors."""

    default_user_message = "Stationens data kunne ikke gemmes eller læses. Kontakt IT."


class StoreInvalid(StoreError):
    """A write was refused because a value broke a rule; nothing was written."""

    default_user_message = "Oplysningerne kunne ikke gemmes, fordi noget var udfyldt forkert."


class StoreNotFound(StoreError):
    """The record asked for does not exist (or has been purged)."""

    default_user_message = "Oplysningerne findes ikke længere på stationen."


class StoreConflict(StoreError):
    """A write clashes with what is stored: a duplicate id, an unknown parent, a wrong state."""

    default_user_message = "Ændringen kunne ikke gemmes, fordi data er ændret imens. Prøv igen."


class StoreCorrupt(StoreError):
    """The database file is damaged. It is left untouched for IT to recover."""

    default_user_message = "Stationens data er beskadiget. Stationen skal efterses af IT."


class StoreSchemaTooNew(StoreError):
    """The database was written by a newer version of the station software."""

    default_user_message = (
        "Stationens data er fra en nyere version af programmet. Kontakt IT for en opdatering."
    )


class StoreScrubIncomplete(StoreError):
    """Rows were deleted and committed, but old pages could not yet be cleared from the WAL."""

    def __init__(self, log_message: str, purged: int) -> None:
        super().__init__(log_message)
        #: How many consultations were purged before the WAL checkpoint was blocked.
        self.purged = purged


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class Clinic:
    """A GP clinic the station may call: business data, kept in clear."""

    id: str
    name: str
    #: The clinic's provider number ("ydernummer").
    provider_number: str
    #: The clinic's video room at the rendezvous (an id or URL given by the configuration).
    video_room: str


@dataclass(frozen=True, slots=True)
class Consultation:
    """A booked appointment with a GP clinic: clear metadata only, no personal data."""

    id: str
    clinic_id: str
    starts_at: datetime
    ends_at: datetime
    consultation_type: ConsultationType
    status: ConsultationStatus
    created_at: datetime
    documented_at: datetime | None


@dataclass(frozen=True, slots=True)
class UpcomingConsultation:
    """What the lock screen may show of a coming consultation: its times and its clinic."""

    starts_at: datetime
    ends_at: datetime
    clinic_id: str
    clinic_name: str


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One resident in a consultation's queue: clear position and status, sealed fields."""

    id: str
    consultation_id: str
    position: int
    status: QueueEntryStatus
    #: Field name (from :data:`ENTRY_FIELDS`) to sealed blob; kept out of repr.
    sealed: Mapping[str, bytes] = field(repr=False, hash=False)


@dataclass(frozen=True, slots=True)
class Note:
    """A wrap-up note for the care record (EOJ); the body is sealed."""

    id: str
    consultation_id: str
    entry_id: str | None
    created_at: datetime
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """Something stationd recorded while locked, sealed to the vault's public key."""

    id: str
    consultation_id: str
    created_at: datetime
    kind: str
    blob: bytes = field(repr=False)


# --------------------------------------------------------------------------- validation

_E = TypeVar("_E", bound=StrEnum)


_PROVIDER_RE: Final = re.compile(r"[A-Za-z0-9-]{1,16}", re.ASCII)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_opaque_id(value):
        # Never quote the value: a mistyped id may be a CPR number.
        raise StoreInvalid(
            f"{what} must be an opaque id of 1-64 ASCII letters, digits, '-' or '_', "
            "and never a CPR number"
        )
    return value


def _check_text(value: object, what: str, max_len: int) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_len
        or not value.isprintable()
    ):
        raise StoreInvalid(f"{what} must be printable text of 1-{max_len} characters")
    return value


def _looks_like_text(blob: bytes) -> bool:
    """True when ``blob`` is printable UTF-8: plaintext handed over by mistake.

    seal_field's output starts with the format byte 0x01 (not printable), so a real sealed
    field is never taken for text; for random bytes (a sealed box) the chance is below 1e-10.
    """
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)


def _check_sealed(
    value: object, what: str, *, min_len: int = _SEALED_FIELD_MIN_BYTES, max_len: int
) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise StoreInvalid(f"{what} must be bytes (a sealed value)")
    blob = bytes(value)
    if not min_len <= len(blob) <= max_len:
        raise StoreInvalid(
            f"{what} must be a sealed value of {min_len}-{max_len} bytes, got {len(blob)}"
        )
    if _looks_like_text(blob):
        raise StoreInvalid(f"{what} is readable text, not a sealed value: seal it first")
    return blob


def _check_fields(sealed: object) -> dict[str, bytes]:
    if not isinstance(sealed, Mapping):
        raise StoreInvalid("sealed fields must be a mapping of field name to sealed bytes")
    checked: dict[str, bytes] = {}
    for name, blob in sealed.items():
        if name not in ENTRY_FIELDS:
            raise StoreInvalid(
                f"unknown sealed field name; allowed: {', '.join(sorted(ENTRY_FIELDS))}"
            )
        checked[name] = _check_sealed(blob, f"sealed field {name}", max_len=MAX_SEALED_BYTES)
    return checked


def _enum(cls: type[_E], value: object, what: str) -> _E:
    try:
        if not isinstance(value, str):
            raise ValueError(what)
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise StoreInvalid(f"{what} must be one of: {allowed}") from None


def _ts(value: object, what: str) -> str:
    """A timezone-aware time as fixed-width UTC text, so text order is time order in SQL."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StoreInvalid(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# ------------------------------------------------------------------------------- schema

#: ``MIGRATIONS[i]`` upgrades schema version ``i`` to ``i + 1``. Personal data lives only in
#: the BLOB columns ``entry_fields.sealed``, ``notes.body``, ``sealed_events.blob`` (and
#: the wrapped key); every other column is clear, non-personal metadata. Enumerations are
#: checked in Python, not in CHECK constraints, so adding a value needs no table rebuild.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE clinics (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            provider_number TEXT NOT NULL,
            video_room TEXT NOT NULL
        ) STRICT""",
        """CREATE TABLE consultations (
            id TEXT PRIMARY KEY,
            clinic_id TEXT NOT NULL REFERENCES clinics (id),
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            consultation_type TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at TEXT NOT NULL,
            documented_at TEXT,
            CHECK (ends_at > starts_at)
        ) STRICT""",
        "CREATE INDEX consultations_by_start ON consultations (starts_at)",
        "CREATE INDEX consultations_by_clinic ON consultations (clinic_id)",
        "CREATE INDEX consultations_by_documented ON consultations (documented_at) "
        "WHERE documented_at IS NOT NULL",
        """CREATE TABLE consultation_keys (
            consultation_id TEXT PRIMARY KEY
                REFERENCES consultations (id) ON DELETE CASCADE,
            wrapped_key BLOB NOT NULL
        ) STRICT""",
        """CREATE TABLE queue_entries (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            status TEXT NOT NULL,
            UNIQUE (consultation_id, position)
        ) STRICT""",
        """CREATE TABLE entry_fields (
            entry_id TEXT NOT NULL REFERENCES queue_entries (id) ON DELETE CASCADE,
            field TEXT NOT NULL,
            sealed BLOB NOT NULL,
            PRIMARY KEY (entry_id, field)
        ) STRICT""",
        """CREATE TABLE notes (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            entry_id TEXT REFERENCES queue_entries (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            body BLOB NOT NULL
        ) STRICT""",
        "CREATE INDEX notes_by_consultation ON notes (consultation_id, created_at)",
        "CREATE INDEX notes_by_entry ON notes (entry_id)",
        """CREATE TABLE sealed_events (
            id TEXT PRIMARY KEY,
            consultation_id TEXT NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            blob BLOB NOT NULL
        ) STRICT""",
        "CREATE INDEX sealed_events_by_consultation ON sealed_events (consultation_id, created_at)",
    ),
)
STORE_SCHEMA_VERSION: Final = len(MIGRATIONS)

_CONSULTATION_COLUMNS: Final = (
    "id, clinic_id, starts_at, ends_at, consultation_type, status, created_at, documented_at"
)


def _consultation(row: tuple[str, str, str, str, str, str, str, str | None]) -> Consultation:
    return Consultation(
        id=row[0],
        clinic_id=row[1],
        starts_at=_dt(row[2]),
        ends_at=_dt(row[3]),
        consultation_type=ConsultationType(row[4]),
        status=ConsultationStatus(row[5]),
        created_at=_dt(row[6]),
        documented_at=_dt(row[7]) if row[7] is not None else None,
    )


# -------------------------------------------------------------------------------- store


class BlindStore(SqliteFile):
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

    # ------------------------------------------------------------------- maintenance

    def check_integrity(self) -> None:
        """Run ``PRAGMA integrity_check``; raise :class:`StoreCorrupt` unless it is ok."""
        with self._lock:
            if self._conn is None:
                raise StoreError("the station store is closed")
            check_sqlite_integrity(
                self._conn, what=f"station store {self._path}", corrupt=StoreCorrupt
            )

    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------------ clinics

    def put_clinic(self, clinic: Clinic) -> Clinic:
        """Insert or replace a GP clinic (from the signed configuration)."""
        _check_id(clinic.id, "clinic id")
        _check_text(clinic.name, "clinic name", 200)
        if not isinstance(clinic.provider_number, str) or not _PROVIDER_RE.fullmatch(
            clinic.provider_number
        ):
            raise StoreInvalid("provider number must be 1-16 ASCII letters, digits or '-'")
        _check_text(clinic.video_room, "video room", 512)
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
        _check_id(clinic_id, "clinic id")
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
        _check_id(consultation_id, "consultation id")
        _check_id(clinic_id, "clinic id")
        start, end = _ts(starts_at, "starts_at"), _ts(ends_at, "ends_at")
        if end <= start:
            raise StoreInvalid("a consultation must end after it starts")
        kind = _enum(ConsultationType, consultation_type, "consultation type")
        state = _enum(ConsultationStatus, status, "consultation status")
        if state is ConsultationStatus.DOCUMENTED:
            raise StoreInvalid("a consultation becomes documented only through mark_documented")
        created = _ts(self._clock.now(), "clock time")
        with self._write() as conn:
            conn.execute(
                # Only our own column-list constant is interpolated; values are bound.
                f"INSERT INTO consultations ({_CONSULTATION_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (consultation_id, clinic_id, start, end, kind.value, state.value, created),
            )
        return Consultation(
            id=consultation_id,
            clinic_id=clinic_id,
            starts_at=_dt(start),
            ends_at=_dt(end),
            consultation_type=kind,
            status=state,
            created_at=_dt(created),
            documented_at=None,
        )

    def get_consultation(self, consultation_id: str) -> Consultation:
        """The consultation with this id; :class:`StoreNotFound` if none (or purged)."""
        _check_id(consultation_id, "consultation id")
        with self._read() as conn:
            return self._get_consultation(conn, consultation_id)

    @staticmethod
    def _get_consultation(conn: sqlite3.Connection, consultation_id: str) -> Consultation:
        row = conn.execute(
            f"SELECT {_CONSULTATION_COLUMNS} FROM consultations WHERE id = ?",  # noqa: S608
            (consultation_id,),
        ).fetchone()
        if row is None:
            raise StoreNotFound("no consultation with that id")
        return _consultation(row)

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
            params.append(_ts(starts_from, "starts_from"))
        if starts_before is not None:
            where.append("starts_at < ?")
            params.append(_ts(starts_before, "starts_before"))
        if statuses is not None:
            values = [_enum(ConsultationStatus, s, "consultation status").value for s in statuses]
            if not values:
                return []
            where.append(f"status IN ({', '.join('?' * len(values))})")
            params.extend(values)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_CONSULTATION_COLUMNS} FROM consultations {clause} "  # noqa: S608 (only our placeholders)
                "ORDER BY starts_at, id",
                params,
            ).fetchall()
        return [_consultation(row) for row in rows]

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
        _check_id(consultation_id, "consultation id")
        if clinic_id is not None:
            _check_id(clinic_id, "clinic id")
        start = _ts(starts_at, "starts_at") if starts_at is not None else None
        end = _ts(ends_at, "ends_at") if ends_at is not None else None
        kind = (
            _enum(ConsultationType, consultation_type, "consultation type")
            if consultation_type is not None
            else None
        )
        with self._write() as conn:
            current = self._get_consultation(conn, consultation_id)
            if current.status is ConsultationStatus.DOCUMENTED:
                raise StoreConflict("a documented consultation cannot be changed")
            new_start = start or _ts(current.starts_at, "starts_at")
            new_end = end or _ts(current.ends_at, "ends_at")
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
        _check_id(consultation_id, "consultation id")
        state = _enum(ConsultationStatus, status, "consultation status")
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
        _check_id(consultation_id, "consultation id")
        when = _ts(at, "documented time")
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
        cutoff = _ts(now, "now")
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
        return [UpcomingConsultation(_dt(r[0]), _dt(r[1]), r[2], r[3]) for r in rows]

    # ---------------------------------------------------------------- consultation keys

    def put_consultation_key(self, consultation_id: str, wrapped_key: bytes) -> None:
        """Store (or replace, on re-wrapping) the consultation's wrapped data key."""
        _check_id(consultation_id, "consultation id")
        blob = _check_sealed(
            wrapped_key,
            "wrapped consultation key",
            min_len=_WRAPPED_KEY_MIN_BYTES,
            max_len=_WRAPPED_KEY_MAX_BYTES,
        )
        with self._write() as conn:
            conn.execute(
                "INSERT INTO consultation_keys (consultation_id, wrapped_key) VALUES (?, ?) "
                "ON CONFLICT (consultation_id) DO UPDATE SET wrapped_key = excluded.wrapped_key",
                (consultation_id, blob),
            )

    def get_consultation_key(self, consultation_id: str) -> bytes:
        """The wrapped data key; :class:`StoreNotFound` if none (never set, or purged)."""
        _check_id(consultation_id, "consultation id")
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
        _check_id(entry_id, "entry id")
        _check_id(consultation_id, "consultation id")
        fields = _check_fields(sealed)
        state = _enum(QueueEntryStatus, status, "entry status")
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
        _check_id(entry_id, "entry id")
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
        _check_id(consultation_id, "consultation id")
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
        _check_id(entry_id, "entry id")
        fields = _check_fields(sealed or {})
        removing = set(remove_fields)
        if not removing <= ENTRY_FIELDS:
            raise StoreInvalid("unknown field name to remove")
        if removing & fields.keys():
            raise StoreInvalid("a field cannot be both set and removed")
        state = _enum(QueueEntryStatus, status, "entry status") if status is not None else None
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
        _check_id(consultation_id, "consultation id")
        for entry_id in entry_ids:
            _check_id(entry_id, "entry id")
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
        _check_id(entry_id, "entry id")
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
        _check_id(note_id, "note id")
        _check_id(consultation_id, "consultation id")
        if entry_id is not None:
            _check_id(entry_id, "entry id")
        blob = _check_sealed(body, "note body", max_len=MAX_SEALED_BYTES)
        created = _ts(self._clock.now(), "clock time")
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
        return Note(note_id, consultation_id, entry_id, _dt(created), blob)

    def list_notes(self, consultation_id: str) -> list[Note]:
        """The consultation's notes, oldest first."""
        _check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, consultation_id, entry_id, created_at, body FROM notes "
                "WHERE consultation_id = ? ORDER BY created_at, id",
                (consultation_id,),
            ).fetchall()
        return [Note(r[0], r[1], r[2], _dt(r[3]), bytes(r[4])) for r in rows]

    # ------------------------------------------------------------------ sealed events

    def add_sealed_event(
        self, *, consultation_id: str, kind: str, blob: bytes, event_id: str | None = None
    ) -> SealedEvent:
        """Store a blob stationd sealed to the vault's public key while locked."""
        event_id = new_id() if event_id is None else _check_id(event_id, "event id")
        _check_id(consultation_id, "consultation id")
        if kind not in SEALED_EVENT_KINDS:
            raise StoreInvalid(
                f"sealed event kind must be one of: {', '.join(sorted(SEALED_EVENT_KINDS))}"
            )
        sealed = _check_sealed(blob, "sealed event", max_len=MAX_SEALED_BYTES)
        created = _ts(self._clock.now(), "clock time")
        with self._write() as conn:
            self._get_consultation(conn, consultation_id)
            conn.execute(
                "INSERT INTO sealed_events (id, consultation_id, created_at, kind, blob) "
                "VALUES (?, ?, ?, ?, ?)",
                (event_id, consultation_id, created, kind, sealed),
            )
        return SealedEvent(event_id, consultation_id, _dt(created), kind, sealed)

    def list_sealed_events(self, consultation_id: str) -> list[SealedEvent]:
        """The consultation's sealed events, oldest first."""
        _check_id(consultation_id, "consultation id")
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, consultation_id, created_at, kind, blob FROM sealed_events "
                "WHERE consultation_id = ? ORDER BY created_at, id",
                (consultation_id,),
            ).fetchall()
        return [SealedEvent(r[0], r[1], _dt(r[2]), r[3], bytes(r[4])) for r in rows]

    # ---------------------------------------------------------------------- retention

    def due_for_purge(
        self,
        now: datetime,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        keep: Collection[str] = (),
    ) -> list[str]:
        """The consultations :meth:`purge_documented` would remove now (ids; reads only)."""
        cutoff = self._purge_cutoff(now, retention)
        with self._read() as conn:
            return self._due_ids(conn, cutoff, frozenset(keep))

    @staticmethod
    def _purge_cutoff(now: datetime, retention: timedelta) -> str:
        if not isinstance(retention, timedelta) or retention < timedelta(0):
            raise StoreInvalid("retention must be a non-negative timedelta")
        _ts(now, "now")
        return _ts(now - retention, "purge cutoff")

    @staticmethod
    def _due_ids(conn: sqlite3.Connection, cutoff: str, kept: frozenset[str]) -> list[str]:
        # The retention rule, in one place: documented ``retention`` ago, or cancelled and
        # its slot over ``retention`` ago; never one in ``kept``.
        rows = conn.execute(
            "SELECT id FROM consultations "
            "WHERE (documented_at IS NOT NULL AND documented_at <= ?) "
            "OR (status = ? AND ends_at <= ?)",
            (cutoff, ConsultationStatus.CANCELLED.value, cutoff),
        )
        return [row[0] for row in rows if row[0] not in kept]

    def purge_documented(
        self,
        now: datetime,
        retention: timedelta = DEFAULT_RETENTION,
        *,
        keep: Collection[str] = (),
    ) -> int:
        """Remove, unrecoverably, every consultation documented at least ``retention`` ago.

        A cancelled consultation goes by the same rule, counted from the end of its slot:
        it will never be documented, and the station is not where its data lives on.

        ``keep`` names consultations to leave alone however old (the export outbox passes
        those whose note has not reached the care record yet).

        The wrapped data key goes first (crypto-erasure: without it no sealed field of the
        consultation can be opened, wherever a copy might linger), then every row of the
        consultation, in one transaction. ``secure_delete`` zeroes the freed content in the
        file, and a ``wal_checkpoint(TRUNCATE)`` leaves no old page in the WAL. Returns how
        many consultations were purged; raises :class:`StoreScrubIncomplete` if another
        connection's open read kept the WAL from being truncated (the rows are gone; the
        next purge finishes the scrub).
        """
        cutoff = self._purge_cutoff(now, retention)
        with self._write() as conn:
            ids = self._due_ids(conn, cutoff, frozenset(keep))
            for consultation_id in ids:
                params = (consultation_id,)
                conn.execute("DELETE FROM consultation_keys WHERE consultation_id = ?", params)
                conn.execute(
                    "DELETE FROM entry_fields WHERE entry_id IN "
                    "(SELECT id FROM queue_entries WHERE consultation_id = ?)",
                    params,
                )
                conn.execute("DELETE FROM notes WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM sealed_events WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM queue_entries WHERE consultation_id = ?", params)
                conn.execute("DELETE FROM consultations WHERE id = ?", params)
        if ids and not self._scrub_wal():
            raise StoreScrubIncomplete(
                f"purged {len(ids)} consultation(s), but another connection's open read kept "
                "the WAL from being truncated; old pages stay there until the next purge",
                purged=len(ids),
            )
        return len(ids)
