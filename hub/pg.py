"""PostgreSQL for several hub instances: the SQL seam, the room store and LISTEN/NOTIFY.

* :class:`PostgresDatabase`: :class:`hub.db.Database` on psycopg 3 (a small pool
  of blocking connections used from worker threads, like SQLite's), so provisioning runs the
  very same SQL on both engines.
* :class:`PostgresRoomStore`: :class:`hub.store.RoomStore` with the same rows and semantics as
  the SQLite store (every change a compare-and-set on ``version``; a row lock serialises the
  candidate limit), so two instances can never both admit a GP or answer one offer.
* :class:`PostgresNotifier`: :class:`hub.notifier.RoomNotifier` across instances. ``publish``
  sends ``NOTIFY`` (delivered after the writer's commit, to every instance, itself included)
  and wakes local waiters at once; one ``LISTEN`` connection per instance turns notifications
  into local wake-ups. A station long-polling instance A is woken by a GP's answer posted to
  instance B. If the listening connection drops, every local waiter is woken (they re-read
  the room: a spurious wake-up is harmless, a lost one is not) and it reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import psycopg

from hub.db import Dialect, Row, Tx
from hub.errors import RoomStoreError
from hub.notifier import InProcessNotifier, RoomWaiter
from hub.provisioning.errors import ProvisioningStoreError
from hub.store import (  # the row mapping is shared with the SQLite store on purpose
    _COLUMNS,
    _FINAL,
    _INSERT,
    _SELECT_BY_ID,
    _SELECT_BY_TOKEN,
    _UPDATE,
    RoomRecord,
    _record,
    _row,
    _ts,
)

__all__ = [
    "CHANNEL",
    "PostgresDatabase",
    "PostgresNotifier",
    "PostgresRoomStore",
    "postgres_rendezvous",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The NOTIFY channel for room changes (payload: the room id).
CHANNEL: Final = "kontaktstation_rooms"
_PLACEHOLDER = re.compile(r"\?")
_NAMES: Final = [name.strip() for name in _COLUMNS.split(",")]


def _pg(sql: str) -> str:
    # The shared SQL uses "?"; psycopg wants "%s" (no literal "%" or "?" occurs in it).
    return _PLACEHOLDER.sub("%s", sql)


class _PgTx:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cur = cursor

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.rowcount

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        self._cur.execute(_pg(sql), tuple(params))
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self._cur.execute(_pg(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]


class PostgresDatabase:
    """:class:`hub.db.Database` on PostgreSQL; up to ``pool_size`` connections."""

    dialect: Dialect = "postgres"

    def __init__(self, dsn: str, *, pool_size: int = 8, error: type[Exception] | None = None):
        self._dsn = dsn
        self._pool: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._error = error or ProvisioningStoreError
        self._closed = False

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)

    def run_blocking(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction on a pooled connection (on this thread)."""
        with self._slots:
            try:
                conn = self._pool.get_nowait()
            except queue.Empty:
                conn = None
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                with conn.transaction(), conn.cursor() as cursor:
                    return work(_PgTx(cursor))
            except psycopg.Error as exc:
                # The type only: server messages can quote values.
                raise self._error(f"PostgreSQL failed: {type(exc).__name__}") from exc
            finally:
                if conn is not None:
                    self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and not self._closed:
            self._pool.put(conn)
        else:
            conn.close()

    async def run(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction on a worker thread."""
        return await asyncio.to_thread(self.run_blocking, work)

    async def close(self) -> None:
        """Close the idle connections (busy ones close when they come back)."""
        self._closed = True

        def drain() -> None:
            while True:
                try:
                    conn = self._pool.get_nowait()
                except queue.Empty:
                    return
                conn.close()

        await asyncio.to_thread(drain)

    def __repr__(self) -> str:
        return "PostgresDatabase(<dsn hidden>)"


_ROOM_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS rooms (
        room_id TEXT PRIMARY KEY,
        token_hash BYTEA NOT NULL UNIQUE,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        valid_from TEXT NOT NULL,
        valid_until TEXT NOT NULL,
        created_at TEXT NOT NULL,
        language TEXT NOT NULL,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        waiting_json TEXT,
        current_resident_json TEXT,
        private INTEGER NOT NULL,
        offer_generation BIGINT NOT NULL,
        offer_sdp TEXT,
        answer_generation BIGINT NOT NULL,
        answer_sdp TEXT,
        gp_session_hash BYTEA,
        gp_seen_at TEXT,
        finished_at TEXT,
        end_reason TEXT,
        gp_left_at TEXT
    )""",
    # A database made by an older hub gets the columns added since (all nullable).
    "ALTER TABLE rooms ADD COLUMN IF NOT EXISTS gp_left_at TEXT",
    "CREATE INDEX IF NOT EXISTS rooms_valid_until ON rooms (state, valid_until)",
    """CREATE TABLE IF NOT EXISTS gp_candidates (
        room_id TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
        generation BIGINT NOT NULL,
        seq INTEGER NOT NULL,
        candidate_json TEXT NOT NULL,
        PRIMARY KEY (room_id, generation, seq)
    )""",
)
#: Serialises schema creation across instances starting together.
_SCHEMA_LOCK: Final = 7_402_119


def _room(row: Row) -> RoomRecord:
    mapping = dict(zip(_NAMES, row, strict=True))
    for name in ("token_hash", "gp_session_hash"):
        if mapping[name] is not None:
            mapping[name] = bytes(mapping[name])
    return _record(mapping)  # type: ignore[arg-type]


class PostgresRoomStore:
    """:class:`hub.store.RoomStore` on PostgreSQL (shared by every hub instance)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._ready = False
        self._ready_lock = asyncio.Lock()

    async def _run(self, work: Callable[[Tx], _T]) -> _T:
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    await self._db.run(self._create_schema)
                    self._ready = True
        return await self._db.run(work)

    @staticmethod
    def _create_schema(tx: Tx) -> None:
        tx.execute(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
        for statement in _ROOM_SCHEMA:
            tx.execute(statement)

    async def insert(self, room: RoomRecord) -> None:
        """Store a new room."""
        row = _row(room)
        await self._run(lambda tx: tx.execute(_INSERT, row))

    async def get(self, room_id: str) -> RoomRecord | None:
        """The room with this id, if any."""
        row = await self._run(lambda tx: tx.one(_SELECT_BY_ID, (room_id,)))
        return None if row is None else _room(row)

    async def find_by_token_hash(self, token_hash: bytes) -> RoomRecord | None:
        """The room whose GP token hashes to ``token_hash``, if any."""
        row = await self._run(lambda tx: tx.one(_SELECT_BY_TOKEN, (token_hash,)))
        return None if row is None else _room(row)

    async def replace(self, room: RoomRecord, *, expected_version: int) -> bool:
        """Write ``room`` if the stored version is still ``expected_version``."""
        row = _row(room)
        changed = await self._run(
            lambda tx: tx.execute(_UPDATE, (*row[1:], room.room_id, expected_version))
        )
        return changed == 1

    async def touch_gp_session(self, room_id: str, seen_at: datetime) -> None:
        """Record that the admitted browser was just seen."""
        await self._run(
            lambda tx: tx.execute(
                "UPDATE rooms SET gp_seen_at = ? WHERE room_id = ?", (_ts(seen_at), room_id)
            )
        )

    async def add_gp_candidate(
        self, room_id: str, generation: int, candidate_json: str, *, limit: int
    ) -> bool:
        """Keep one trickled GP candidate; False when ``limit`` are already kept."""

        def work(tx: Tx) -> bool:
            # The room's row lock serialises candidates of one room across instances.
            if tx.one("SELECT 1 FROM rooms WHERE room_id = ? FOR UPDATE", (room_id,)) is None:
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
        """The GP's trickled candidates for one offer generation, in order."""
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
        """Rooms not yet final whose link closed before ``now``."""
        rows = await self._run(
            lambda tx: tx.all(
                "SELECT room_id FROM rooms WHERE state NOT IN (?, ?, ?) AND valid_until < ?",
                (*_FINAL, _ts(now)),
            )
        )
        return [str(r[0]) for r in rows]

    async def delete_finished(self, before: datetime) -> int:
        """Delete final rooms finished before ``before``."""
        return await self._run(
            lambda tx: tx.execute(
                "DELETE FROM rooms WHERE state IN (?, ?, ?) AND finished_at < ?",
                (*_FINAL, _ts(before)),
            )
        )

    async def close(self) -> None:
        """Release the connections."""
        await self._db.close()

    def __repr__(self) -> str:
        return "PostgresRoomStore(<dsn hidden>)"


class PostgresNotifier:
    """:class:`hub.notifier.RoomNotifier` across hub instances (LISTEN/NOTIFY)."""

    def __init__(self, dsn: str, db: PostgresDatabase) -> None:
        self._dsn = dsn
        self._db = db
        self._local = InProcessNotifier()
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting_rooms: set[str] = set()

    async def start(self) -> None:
        """Start listening; returns once ``LISTEN`` is in force (or after 10 s)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 10)

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.5
                    # Anything published while we were not listening: wake and re-read.
                    await self._wake_all()
                    async for notification in conn.notifies():
                        await self._local.publish(notification.payload)
                finally:
                    self._listening.clear()
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("room notifications lost (%s); reconnecting", type(exc).__name__)
            await self._wake_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _wake_all(self) -> None:
        for room_id in list(self._waiting_rooms):
            await self._local.publish(room_id)

    def listen(self, room_id: str) -> RoomWaiter:
        """A waiter for the next change of ``room_id`` (from any instance)."""
        self._waiting_rooms.add(room_id)
        if len(self._waiting_rooms) > 10_000:
            self._waiting_rooms.clear()  # only used for reconnect wake-ups; bounded
            self._waiting_rooms.add(room_id)
        return self._local.listen(room_id)

    async def publish(self, room_id: str) -> None:
        """Wake local waiters now and every instance's after the change is committed."""
        await self._local.publish(room_id)
        try:
            await self._db.run(lambda tx: tx.execute("SELECT pg_notify(?, ?)", (CHANNEL, room_id)))
        except RoomStoreError as exc:
            _log.warning("room change not announced to other instances: %s", exc)

    async def aclose(self) -> None:
        """Stop listening and release the connections (shared with the room store)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._db.close()


def postgres_rendezvous(dsn: str) -> tuple[PostgresRoomStore, PostgresNotifier]:
    """The room store and notifier on one PostgreSQL (``postgresql://...`` or a libpq DSN)."""
    db = PostgresDatabase(dsn, error=RoomStoreError)
    return PostgresRoomStore(db), PostgresNotifier(dsn, db)
