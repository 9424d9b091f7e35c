"""Where rooms live: a :class:`RoomStore` port and its SQLite adapter.

The port is async and small so a PostgreSQL adapter (several hub instances) can follow with
the same semantics: every change of a room is a compare-and-set on its ``version``, so two
instances (or two requests) can never both admit a GP or both answer one offer.

A room row holds personal data (who is waiting) only while the room lives: the rendezvous
clears it when the room ends, is revoked or expires, and :meth:`RoomStore.delete_finished`
removes the skeleton later.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from hub.errors import RoomStoreError
from hub.models import GpLanguage, RoomState
from provisioning.waiting_room import CurrentResident, WaitingInfo

__all__ = ["RoomRecord", "RoomStore", "SqliteRoomStore"]

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
    waiting: WaitingInfo | None = field(default=None, repr=False)
    current_resident: CurrentResident | None = field(default=None, repr=False)
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


class RoomStore(Protocol):
    """The rooms' storage port."""

    async def insert(self, room: RoomRecord) -> None:
        """Store a new room."""

    async def get(self, room_id: str) -> RoomRecord | None:
        """The room with this id, if any."""

    async def find_by_token_hash(self, token_hash: bytes) -> RoomRecord | None:
        """The room whose GP token hashes to ``token_hash``, if any."""

    async def replace(self, room: RoomRecord, *, expected_version: int) -> bool:
        """Write ``room`` if the stored version is still ``expected_version``; False if not."""

    async def touch_gp_session(self, room_id: str, seen_at: datetime) -> None:
        """Record that the admitted browser was just seen (does not change the version)."""

    async def add_gp_candidate(
        self, room_id: str, generation: int, candidate_json: str, *, limit: int
    ) -> bool:
        """Keep one trickled GP candidate; False when ``limit`` are already kept."""

    async def gp_candidates(self, room_id: str, generation: int) -> list[str]:
        """The GP's trickled candidates (JSON texts) for one offer generation, in order."""

    async def count_gp_candidates(self, room_id: str, generation: int) -> int:
        """How many candidates :meth:`gp_candidates` would return."""

    async def delete_gp_candidates(self, room_id: str) -> None:
        """Forget every trickled candidate of a room."""

    async def active_room_ids_past(self, now: datetime) -> list[str]:
        """Rooms not yet final whose link closed before ``now`` (to be expired)."""

    async def delete_finished(self, before: datetime) -> int:
        """Delete final rooms finished before ``before``; return how many."""

    async def close(self) -> None:
        """Release the database."""


def _ts(value: datetime) -> str:
    # One fixed, UTC, microsecond format so the text columns also compare correctly in SQL.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else _ts(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _req_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    room_id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    created_at TEXT NOT NULL,
    language TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    waiting_json TEXT,              -- personal data: NULL once the room is final
    current_resident_json TEXT,     -- personal data: NULL once the room is final
    private INTEGER NOT NULL,
    offer_generation INTEGER NOT NULL,
    offer_sdp TEXT,
    answer_generation INTEGER NOT NULL,
    answer_sdp TEXT,
    gp_session_hash BLOB,
    gp_seen_at TEXT,
    finished_at TEXT,
    end_reason TEXT,
    gp_left_at TEXT
);
CREATE INDEX IF NOT EXISTS rooms_valid_until ON rooms (state, valid_until);
CREATE TABLE IF NOT EXISTS gp_candidates (
    room_id TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    candidate_json TEXT NOT NULL,
    PRIMARY KEY (room_id, generation, seq)
);
"""
_SCHEMA_VERSION = 2
#: Columns added after version 1, for databases made before them: (name, SQL type).
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("gp_left_at", "TEXT"),)

_COLUMNS = (
    "room_id, token_hash, starts_at, ends_at, valid_from, valid_until, created_at, language, "
    "state, version, waiting_json, current_resident_json, private, offer_generation, offer_sdp, "
    "answer_generation, answer_sdp, gp_session_hash, gp_seen_at, finished_at, end_reason, "
    "gp_left_at"
)
_FINAL = ("ended", "revoked", "expired")
# Built from the fixed column list above, never from input: the S608 warnings are moot.
_INSERT = f"INSERT INTO rooms ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"  # noqa: S608
_SELECT_BY_ID = f"SELECT {_COLUMNS} FROM rooms WHERE room_id = ?"  # noqa: S608
_SELECT_BY_TOKEN = f"SELECT {_COLUMNS} FROM rooms WHERE token_hash = ?"  # noqa: S608
_UPDATE = (
    "UPDATE rooms SET "  # noqa: S608
    + ", ".join(f"{name.strip()} = ?" for name in _COLUMNS.split(",")[1:])
    + " WHERE room_id = ? AND version = ?"
)


def _row(room: RoomRecord) -> tuple[object, ...]:
    return (
        room.room_id,
        room.token_hash,
        _ts(room.starts_at),
        _ts(room.ends_at),
        _ts(room.valid_from),
        _ts(room.valid_until),
        _ts(room.created_at),
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
    )


def _record(row: sqlite3.Row) -> RoomRecord:
    return RoomRecord(
        room_id=row["room_id"],
        token_hash=bytes(row["token_hash"]),
        starts_at=_req_dt(row["starts_at"]),
        ends_at=_req_dt(row["ends_at"]),
        valid_from=_req_dt(row["valid_from"]),
        valid_until=_req_dt(row["valid_until"]),
        created_at=_req_dt(row["created_at"]),
        language=GpLanguage(row["language"]),
        state=RoomState(row["state"]),
        version=row["version"],
        waiting=(
            None
            if row["waiting_json"] is None
            else WaitingInfo.model_validate_json(row["waiting_json"])
        ),
        current_resident=(
            None
            if row["current_resident_json"] is None
            else CurrentResident.model_validate_json(row["current_resident_json"])
        ),
        private=bool(row["private"]),
        offer_generation=row["offer_generation"],
        offer_sdp=row["offer_sdp"],
        answer_generation=row["answer_generation"],
        answer_sdp=row["answer_sdp"],
        gp_session_hash=None if row["gp_session_hash"] is None else bytes(row["gp_session_hash"]),
        gp_seen_at=_dt(row["gp_seen_at"]),
        finished_at=_dt(row["finished_at"]),
        end_reason=row["end_reason"],
        gp_left_at=_dt(row["gp_left_at"]),
    )


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a rooms table made by an older hub up to date (new columns are nullable)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(rooms)")}
    for name, sql_type in _ADDED_COLUMNS:
        if name not in present:
            # Names and types come from the fixed tuple above, never from input.
            conn.execute(f"ALTER TABLE rooms ADD COLUMN {name} {sql_type}")


class SqliteRoomStore:
    """:class:`RoomStore` on one SQLite file (WAL), for a single hub instance.

    sqlite3 blocks, so every call runs in a worker thread; one connection, serialised by a
    lock, is plenty for a rendezvous (a handful of small writes per call).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The file holds personal data while rooms live: owner-only from the first byte.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Deleted personal data must not linger in free pages of the file.
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.executescript(_SCHEMA)
            _add_missing_columns(self._conn)
            self._conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise RoomStoreError(f"cannot open the room database: {type(exc).__name__}") from exc

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return work(self._conn)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            # The type only: sqlite messages can quote values.
            raise RoomStoreError(f"room database error: {type(exc).__name__}") from exc

    async def insert(self, room: RoomRecord) -> None:
        """Store a new room."""
        row = _row(room)
        await self._run(lambda c: c.execute(_INSERT, row))

    async def get(self, room_id: str) -> RoomRecord | None:
        """The room with this id, if any."""

        def work(c: sqlite3.Connection) -> RoomRecord | None:
            row = c.execute(_SELECT_BY_ID, (room_id,)).fetchone()
            return None if row is None else _record(row)

        return await self._run(work)

    async def find_by_token_hash(self, token_hash: bytes) -> RoomRecord | None:
        """The room whose GP token hashes to ``token_hash``, if any."""

        def work(c: sqlite3.Connection) -> RoomRecord | None:
            row = c.execute(_SELECT_BY_TOKEN, (token_hash,)).fetchone()
            return None if row is None else _record(row)

        return await self._run(work)

    async def replace(self, room: RoomRecord, *, expected_version: int) -> bool:
        """Write ``room`` if the stored version is still ``expected_version``."""
        row = _row(room)

        def work(c: sqlite3.Connection) -> bool:
            return c.execute(_UPDATE, (*row[1:], room.room_id, expected_version)).rowcount == 1

        return await self._run(work)

    async def touch_gp_session(self, room_id: str, seen_at: datetime) -> None:
        """Record that the admitted browser was just seen."""
        await self._run(
            lambda c: c.execute(
                "UPDATE rooms SET gp_seen_at = ? WHERE room_id = ?", (_ts(seen_at), room_id)
            )
        )

    async def add_gp_candidate(
        self, room_id: str, generation: int, candidate_json: str, *, limit: int
    ) -> bool:
        """Keep one trickled GP candidate; False when ``limit`` are already kept."""

        def work(c: sqlite3.Connection) -> bool:
            c.execute("BEGIN IMMEDIATE")
            try:
                (count,) = c.execute(
                    "SELECT count(*) FROM gp_candidates WHERE room_id = ? AND generation = ?",
                    (room_id, generation),
                ).fetchone()
                if count >= limit:
                    c.execute("ROLLBACK")
                    return False
                c.execute(
                    "INSERT INTO gp_candidates (room_id, generation, seq, candidate_json) "
                    "VALUES (?, ?, ?, ?)",
                    (room_id, generation, count, candidate_json),
                )
                c.execute("COMMIT")
                return True
            except BaseException:
                c.execute("ROLLBACK")
                raise

        return await self._run(work)

    async def gp_candidates(self, room_id: str, generation: int) -> list[str]:
        """The GP's trickled candidates for one offer generation, in order."""

        def work(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT candidate_json FROM gp_candidates WHERE room_id = ? AND generation = ? "
                "ORDER BY seq",
                (room_id, generation),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(work)

    async def count_gp_candidates(self, room_id: str, generation: int) -> int:
        """How many candidates :meth:`gp_candidates` would return."""

        def work(c: sqlite3.Connection) -> int:
            (count,) = c.execute(
                "SELECT count(*) FROM gp_candidates WHERE room_id = ? AND generation = ?",
                (room_id, generation),
            ).fetchone()
            return int(count)

        return await self._run(work)

    async def delete_gp_candidates(self, room_id: str) -> None:
        """Forget every trickled candidate of a room."""
        await self._run(
            lambda c: c.execute("DELETE FROM gp_candidates WHERE room_id = ?", (room_id,))
        )

    async def active_room_ids_past(self, now: datetime) -> list[str]:
        """Rooms not yet final whose link closed before ``now``."""

        def work(c: sqlite3.Connection) -> list[str]:
            rows = c.execute(
                "SELECT room_id FROM rooms WHERE state NOT IN (?, ?, ?) AND valid_until < ?",
                (*_FINAL, _ts(now)),
            ).fetchall()
            return [row[0] for row in rows]

        return await self._run(work)

    async def delete_finished(self, before: datetime) -> int:
        """Delete final rooms finished before ``before``."""

        def work(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM rooms WHERE state IN (?, ?, ?) AND finished_at < ?",
                (*_FINAL, _ts(before)),
            ).rowcount

        return await self._run(work)

    async def close(self) -> None:
        """Release the database."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteRoomStore({str(self._path)!r})"
