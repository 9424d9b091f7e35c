"""One small SQL seam for the hub's stores: SQLite (default) and PostgreSQL, same SQL.

The provisioning store and the room store write plain SQL with ``?`` placeholders and call
:meth:`Database.run` with a function that gets a :class:`Tx` and runs inside **one
transaction** on a worker thread (both drivers block). The PostgreSQL adapter (:mod:`hub.pg`)
rewrites ``?`` to ``%s``; :func:`ddl` maps the few type names that differ. Everything else
(``ON CONFLICT``, ``RETURNING``, compare-and-set ``UPDATE ... WHERE``) is SQL both engines
speak. Times are stored as text in one fixed UTC format (:func:`ts`), so they compare like
times in both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from hub.provisioning.errors import ProvisioningStoreError

__all__ = ["Database", "Dialect", "Row", "SqliteDatabase", "Tx", "ddl", "dt", "ts"]

_T = TypeVar("_T")
Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgres"]

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"blob": "BLOB", "bigint": "INTEGER", "serial": "INTEGER PRIMARY KEY AUTOINCREMENT"},
    "postgres": {"blob": "BYTEA", "bigint": "BIGINT", "serial": "BIGSERIAL PRIMARY KEY"},
}


def ddl(template: str, dialect: Dialect) -> str:
    """``template`` with ``{blob}``, ``{bigint}`` and ``{serial}`` filled in for ``dialect``."""
    return template.format(**_TYPES[dialect])


def ts(value: datetime) -> str:
    """One fixed UTC format, so text columns compare like times in both engines."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    """Inverse of :func:`ts`."""
    return None if value is None else datetime.fromisoformat(value)


class Tx(Protocol):
    """One open transaction."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """The first row of a query, or None."""
        ...

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Every row of a query."""
        ...


class Database(Protocol):
    """Where the provisioning tables live."""

    dialect: Dialect

    async def run(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction on a worker thread; commit, or roll back on error."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        row = self._conn.execute(sql, tuple(params)).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return [tuple(row) for row in self._conn.execute(sql, tuple(params)).fetchall()]


class SqliteDatabase:
    """:class:`Database` on one SQLite file (WAL), one connection serialised by a lock.

    ``error`` is the owner's error class (the provisioning store's by default, the room
    store's for rooms); SQLite's own errors are reported by type only (their messages can
    quote values).
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, error: type[Exception] | None = None) -> None:
        self._error = error or ProvisioningStoreError
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Staff names (provisioning) and who is waiting (rooms) live here for a while:
        # owner-only from the first byte, and deleted content overwritten in the file.
        # Only when it is new: closing any descriptor of a file drops every POSIX lock this
        # process holds on it, so re-opening the file of a live connection (a second service
        # in one process) would leave that connection unlocked, and the next connection to
        # close anywhere (`kontaktstation admin`) would take itself for the last one and
        # delete the WAL the hub still writes to.
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # made by another process just now
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA secure_delete=ON")
        except sqlite3.Error as exc:
            raise self._error(f"cannot open the database: {type(exc).__name__}") from exc

    def _run(self, work: Callable[[Tx], _T]) -> _T:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(_SqliteTx(self._conn))
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise self._error(f"database failed: {type(exc).__name__}") from exc

    async def run(self, work: Callable[[Tx], _T]) -> _T:
        """Run ``work`` in one transaction (``BEGIN IMMEDIATE``) on a worker thread."""
        return await asyncio.to_thread(self._run, work)

    async def close(self) -> None:
        """Close the connection."""

        def close() -> None:
            with self._lock:
                self._conn.close()

        await asyncio.to_thread(close)

    def __repr__(self) -> str:
        return f"SqliteDatabase({str(self.path)!r})"
