"""Where rooms live: one room store on the hub's SQL seam, in SQLite's or PostgreSQL's dialect.

:class:`RoomStore` runs the same statements on SQLite (one hub instance, the default) and on
PostgreSQL (several instances, :mod:`hub.pg`), through :class:`hub.db.Database`: every change of a
room is a compare-and-set on its ``version``, so two instances (or two requests) can never
both admit a GP or both answer one offer. The two dialects differ only where the engines do:

- column types (``BLOB``/``BYTEA``, ``INTEGER``/``BIGINT``: :func:`hub.db.ddl`);
- bringing an older table up to date (PostgreSQL adds a column ``IF NOT EXISTS``; SQLite
  has no such clause, so the store looks at ``PRAGMA table_info`` first);
- serialising schema creation and a room's candidate count: PostgreSQL takes an advisory
  lock and the room's row lock (``FOR UPDATE``); SQLite's ``BEGIN IMMEDIATE`` (every
  transaction of :class:`hub.db.SqliteDatabase`) already holds the file's write lock.

A room row never holds personal data: who is waiting and who is on camera arrive sealed for
the GP page (:class:`hub.models.SealedBox`), and even those boxes are kept only while the room
lives: the rendezvous clears them when the room ends, is revoked or expires, and
:meth:`RoomStore.delete_finished` removes the skeleton later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from hub.db import Database, Row, SqliteDatabase, Tx, ddl, dt, ts
from hub.errors import RoomStoreError
from hub.models import GpLanguage, RoomState, SealedBox

__all__ = ["RoomRecord", "RoomStore"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """One room, as stored. Secrets and personal data are kept out of ``repr()``."""

    room_id: str
    token_hash: bytes = field(repr=False)
    starts_at: datetime
    ends_at: datetime
    valid_from: datetime
    valid_until: datetime
    created_at: datetime
    language: GpLanguage
    state: RoomState
    version: int = 0
    waiting: SealedBox | None = field(default=None, repr=False)
    current_resident: SealedBox | None = field(default=None, repr=False)
    private: bool = False
    offer_generation: int = 0
    offer_sdp: str | None = field(default=None, repr=False)
    answer_generation: int = 0
    answer_sdp: str | None = field(default=None, repr=False)
    gp_session_hash: bytes | None = field(default=None, repr=False)
    gp_seen_at: datetime | None = None
    finished_at: datetime | None = None
    end_reason: str | None = None
    #: When the admitted page said it was being closed (``pagehide``); cleared when it is
    #: seen again. Presence only: it says nothing about anyone in the call.
    gp_left_at: datetime | None = None
    #: The station that created the room (its id, or ``shared-token`` for the legacy token);
    #: only that station reaches the room through the station API. None: made before.
    station_id: str | None = None


_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS rooms (
        room_id TEXT PRIMARY KEY,
        token_hash {blob} NOT NULL UNIQUE,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT NOT NULL,
        created_at TEXT NOT NULL,
        language TEXT NOT NULL,
        state TEXT NOT NULL,
        version {bigint} NOT NULL,
        waiting_json TEXT,              -- sealed for the GP page: NULL once final
        current_resident_json TEXT,     -- sealed for the GP page: NULL once final
        private INTEGER NOT NULL,
        offer_generation {bigint} NOT NULL,
        offer_sdp TEXT,
        answer_generation {bigint} NOT NULL,
        answer_sdp TEXT,
        gp_session_hash {blob},
        gp_seen_at TEXT,
        finished_at TEXT,
        end_reason TEXT,
        gp_left_at TEXT,
        station_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS rooms_valid_until ON rooms (state, valid_until)",
    """CREATE TABLE IF NOT EXISTS gp_candidates (
        room_id TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
        generation {bigint} NOT NULL,
        seq INTEGER NOT NULL,
        candidate_json TEXT NOT NULL,
        PRIMARY KEY (room_id, generation, seq)
    )""",
)
#: SQLite's ``user_version`` of this schema.
_SCHEMA_VERSION: Final = 3
#: Columns added after version 1, for databases made before them: (name, SQL type).
_ADDED_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("gp_left_at", "TEXT"),
    ("station_id", "TEXT"),
)
#: Serialises schema creation across PostgreSQL instances starting together.
_SCHEMA_LOCK: Final = 7_402_119

_NAMES: Final = (
    "room_id",
    "token_hash",
    "starts_at",
    "ends_at",
    "valid_from",
    "valid_until",
    "created_at",
    "language",
    "state",
    "version",
    "waiting_json",
    "current_resident_json",
    "private",
    "offer_generation",
    "offer_sdp",
    "answer_generation",
    "answer_sdp",
    "gp_session_hash",
    "gp_seen_at",
    "finished_at",
    "end_reason",
    "gp_left_at",
    "station_id",
)
_COLUMNS: Final = ", ".join(_NAMES)
_FINAL: Final = ("ended", "revoked", "expired")
# Built from the fixed column list above, never from input: the S608 warnings are moot.
_INSERT: Final = f"INSERT INTO rooms ({_COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))})"  # noqa: S608
_SELECT_BY_ID: Final = f"SELECT {_COLUMNS} FROM rooms WHERE room_id = ?"  # noqa: S608
_SELECT_BY_TOKEN: Final = f"SELECT {_COLUMNS} FROM rooms WHERE token_hash = ?"  # noqa: S608
_UPDATE: Final = (
    "UPDATE rooms SET "  # noqa: S608
    + ", ".join(f"{name} = ?" for name in _NAMES[1:])
    + " WHERE room_id = ? AND version = ?"
)
#: Locks the room while its candidates are counted (see the module docs).
_LOCK_ROOM: Final = {
    "sqlite": "SELECT 1 FROM rooms WHERE room_id = ?",
    "postgres": "SELECT 1 FROM rooms WHERE room_id = ? FOR UPDATE",
}


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else ts(value)


def _bytes_or_none(value: object) -> bytes | None:
    # PostgreSQL gives BYTEA as memoryview, SQLite as bytes.
    return None if value is None else bytes(value)  # type: ignore[call-overload]


def _row(room: RoomRecord) -> tuple[object, ...]:
    return (
        room.room_id,
        room.token_hash,
        ts(room.starts_at),
        ts(room.ends_at),
        ts(room.valid_from),
        ts(room.valid_until),
        ts(room.created_at),
        room.language.value,
        room.state.value,
        room.version,
        None if room.waiting is None else room.waiting.model_dump_json(),
        None if room.current_resident is None else room.current_resident.model_dump_json(),
        int(room.private),
        room.offer_generation,
        room.offer_sdp,
        room.answer_generation,
        room.answer_sdp,
        room.gp_session_hash,
        _ts_or_none(room.gp_seen_at),
        _ts_or_none(room.finished_at),
        room.end_reason,
        _ts_or_none(room.gp_left_at),
        room.station_id,
    )


def _sealed_or_none(stored: str | None) -> SealedBox | None:
    # A row written before the round was sealed (plain JSON) is not shown to anyone.
    if stored is None:
        return None
    try:
        return SealedBox.model_validate_json(stored)
    except ValueError:
        return None


def _record(values: Row) -> RoomRecord:
    row = dict(zip(_NAMES, values, strict=True))
    waiting, current = row["waiting_json"], row["current_resident_json"]
    return RoomRecord(
        room_id=row["room_id"],
        token_hash=bytes(row["token_hash"]),
        starts_at=datetime.fromisoformat(row["starts_at"]),
        ends_at=datetime.fromisoformat(row["ends_at"]),
        valid_from=datetime.fromisoformat(row["valid_from"]),
        valid_until=datetime.fromisoformat(row["valid_until"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        language=GpLanguage(row["language"]),
        state=RoomState(row["state"]),
        version=int(row["version"]),
        waiting=_sealed_or_none(waiting),
        current_resident=_sealed_or_none(current),
        private=bool(row["private"]),
        offer_generation=int(row["offer_generation"]),
        offer_sdp=row["offer_sdp"],
        answer_generation=int(row["answer_generation"]),
        answer_sdp=row["answer_sdp"],
        gp_session_hash=_bytes_or_none(row["gp_session_hash"]),
        gp_seen_at=dt(row["gp_seen_at"]),
        finished_at=dt(row["finished_at"]),
        end_reason=row["end_reason"],
        gp_left_at=dt(row["gp_left_at"]),
        station_id=row["station_id"],
    )


class RoomStore:
    """The rooms' storage on one :class:`hub.db.Database`, in its dialect (see the module docs).

    The schema is created (or brought up to date) on first use, so building a store does no
    I/O on the event loop; a SQLite file is opened (and made owner-only) at once.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ready = False
        self._ready_lock = asyncio.Lock()

    @classmethod
    def sqlite(cls, path: Path) -> RoomStore:
        """The store on one SQLite file (WAL), for a single hub instance.

        The file holds personal data while rooms live: it is owner-only from the first byte,
        and deleted content is overwritten (``secure_delete``).
        """
        return cls(SqliteDatabase(path, error=RoomStoreError))

    async def _run(self, work: Callable[[Tx], _T]) -> _T:
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    await self._db.run(self._create_schema)
                    self._ready = True
        return await self._db.run(work)

    def _create_schema(self, tx: Tx) -> None:
        dialect = self._db.dialect
        if dialect == "postgres":
            tx.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        for statement in _SCHEMA:
            tx.execute(ddl(statement, dialect))
        if dialect == "postgres":
            for name, sql_type in _ADDED_COLUMNS:
                # Names and types come from the fixed tuple above, never from input.
                tx.execute(f"ALTER TABLE rooms ADD COLUMN IF NOT EXISTS {name} {sql_type}")
        else:
            present = {row[1] for row in tx.all("PRAGMA table_info(rooms)")}
            for name, sql_type in _ADDED_COLUMNS:
                if name not in present:
                    tx.execute(f"ALTER TABLE rooms ADD COLUMN {name} {sql_type}")
            tx.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    async def insert(self, room: RoomRecord) -> None:
        """Store a new room."""
        row = _row(room)
        await self._run(lambda tx: tx.execute(_INSERT, row))

    async def get(self, room_id: str) -> RoomRecord | None:
        """The room with this id, if any."""
        row = await self._run(lambda tx: tx.one(_SELECT_BY_ID, (room_id,)))
        return None if row is None else _record(row)

    async def find_by_token_hash(self, token_hash: bytes) -> RoomRecord | None:
        """The room whose GP token hashes to ``token_hash``, if any."""
        row = await self._run(lambda tx: tx.one(_SELECT_BY_TOKEN, (token_hash,)))
        return None if row is None else _record(row)

    async def replace(self, room: RoomRecord, *, expected_version: int) -> bool:
        """Write ``room`` if the stored version is still ``expected_version``; False if not."""
        row = _row(room)
        changed = await self._run(
            lambda tx: tx.execute(_UPDATE, (*row[1:], room.room_id, expected_version))
        )
        return changed == 1

    async def touch_gp_session(self, room_id: str, seen_at: datetime) -> None:
        """Record that the admitted browser was just seen (does not change the version)."""
        await self._run(
            lambda tx: tx.execute(
                "UPDATE rooms SET gp_seen_at = ? WHERE room_id = ?", (ts(seen_at), room_id)
            )
        )

    async def add_gp_candidate(
        self, room_id: str, generation: int, candidate_json: str, *, limit: int
    ) -> bool:
        """Keep one trickled GP candidate; False when ``limit`` are already kept."""
        lock_room = _LOCK_ROOM[self._db.dialect]

        def work(tx: Tx) -> bool:
            if tx.one(lock_room, (room_id,)) is None:
                return False
            row = tx.one(
                "SELECT count(*) FROM gp_candidates WHERE room_id = ? AND generation = ?",
                (room_id, generation),
            )
            count = 0 if row is None else int(row[0])
            if count >= limit:
                return False
            tx.execute(
                "INSERT INTO gp_candidates (room_id, generation, seq, candidate_json) "
                "VALUES (?, ?, ?, ?)",
                (room_id, generation, count, candidate_json),
            )
            return True

        return await self._run(work)

    async def gp_candidates(self, room_id: str, generation: int) -> list[str]:
        """The GP's trickled candidates (JSON texts) for one offer generation, in order."""
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT candidate_json FROM gp_candidates WHERE room_id = ? AND generation = ? "
                "ORDER BY seq",
                (room_id, generation),
            )
        )
        return [str(r[0]) for r in rows]

    async def count_gp_candidates(self, room_id: str, generation: int) -> int:
        """How many candidates :meth:`gp_candidates` would return."""
        row = await self._run(
            lambda tx: tx.one(
                "SELECT count(*) FROM gp_candidates WHERE room_id = ? AND generation = ?",
                (room_id, generation),
            )
        )
        return 0 if row is None else int(row[0])

    async def delete_gp_candidates(self, room_id: str) -> None:
        """Forget every trickled candidate of a room."""
        await self._run(
            lambda tx: tx.execute("DELETE FROM gp_candidates WHERE room_id = ?", (room_id,))
        )

    async def active_room_ids_past(self, now: datetime) -> list[str]:
        """Rooms not yet final whose link closed before ``now`` (to be expired)."""
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT room_id FROM rooms WHERE state NOT IN (?, ?, ?) AND valid_until < ?",
                (*_FINAL, ts(now)),
            )
        )
        return [str(r[0]) for r in rows]

    async def delete_finished(self, before: datetime) -> int:
        """Delete final rooms finished before ``before``; return how many."""
        return await self._run(
            lambda tx: tx.execute(
                "DELETE FROM rooms WHERE state IN (?, ?, ?) AND finished_at < ?",
                (*_FINAL, ts(before)),
            )
        )

    async def close(self) -> None:
        """Release the database."""
        await self._db.close()

    def __repr__(self) -> str:
        return f"RoomStore({self._db!r})"
