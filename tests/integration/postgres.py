"""A throw-away PostgreSQL server for tests: initdb + pg_ctl in a temporary directory.

Listens only on a Unix socket inside that directory (no TCP at all), trusts local
connections, and is stopped and deleted afterwards. The binaries are found on ``PATH`` or
under ``/usr/lib/postgresql/<version>/bin`` (Debian's layout). As root (the tests' network
namespace), the server runs as the ``postgres`` system user, since PostgreSQL refuses root.

Not a conftest (that file is the lead's): tests import :func:`postgres_server` and skip with
:func:`require_postgres` where PostgreSQL is not installed.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "PostgresServer",
    "find_pg_bin",
    "pg_server",
    "pg_url",
    "postgres_server",
    "require_postgres",
]

_counter = itertools.count(1)


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (newest version), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def require_postgres() -> Path:
    """The binaries' directory, or skip the test (scripts/ensure-system-deps installs them)."""
    path = find_pg_bin()
    if path is None:
        pytest.skip("PostgreSQL is not installed (scripts/ensure-system-deps installs it)")
    return path


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its socket directory and a ``dsn`` for psycopg."""

    socket_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        """libpq connection string (Unix socket; trust authentication)."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname=postgres"

    @property
    def url(self) -> str:
        """The same as a ``postgresql://`` URL (for HubSettings.database_url)."""
        return f"postgresql://postgres@/postgres?host={self.socket_dir}&port={self.port}"


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], user.pw_uid, user.pw_gid


@contextlib.contextmanager
def postgres_server(port: int = 5432) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL; stop it and delete its files when the block ends."""
    bin_dir = require_postgres()
    prefix, uid, gid = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="ks-pg-", dir="/tmp"))
    data = root / "data"
    log = root / "server.log"
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
    os.chmod(root, 0o700)
    try:
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = (
            f"-k {root} -c listen_addresses='' -p {port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        subprocess.run(
            [
                *prefix,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
        try:
            yield PostgresServer(root, port)
        finally:
            subprocess.run(
                [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throw-away server for the whole test session (skips without PostgreSQL)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the session's server; its ``postgresql://`` URL."""
    import psycopg

    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@/{name}?host={pg_server.socket_dir}&port={pg_server.port}"
    finally:
        with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
