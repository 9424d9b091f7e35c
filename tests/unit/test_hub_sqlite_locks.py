"""The hub's SQLite file keeps its WAL while the hub runs, whatever else opens it.

Found through the release test (issue 15): the hub's database object re-opened the file with
``os.open``/``os.close`` to make sure of its mode, and closing *any* descriptor of a file
drops every POSIX lock the process holds on it. With two database objects on one file in one
process (the hub and an admin service beside it, as the demo and the tests run them), the
first connection was left unlocked; the next ``kontaktstation admin`` to close then took
itself for the last connection and deleted the WAL the hub was still writing to: what the
hub committed afterwards was invisible to every other process and lost at the hub's restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hub.db import SqliteDatabase
from hub.errors import HubError


def _other_process_reads(path: Path) -> list[tuple[int]]:
    """What another process (IT's admin command) sees, opening and closing the file."""
    code = (
        "import json, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "print(json.dumps(c.execute('SELECT n FROM t ORDER BY n').fetchall())); c.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    return [tuple(row) for row in json.loads(done.stdout)]


async def test_a_second_database_object_in_the_process_leaves_the_first_one_locked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "provisioning.sqlite3"
    hub = SqliteDatabase(path, error=HubError)
    await hub.run(lambda tx: tx.execute("CREATE TABLE t (n INTEGER)"))
    beside = SqliteDatabase(path, error=HubError)  # the admin service in the same process
    try:
        assert _other_process_reads(path) == []
        assert path.with_name(path.name + "-wal").exists(), "the hub's WAL was deleted"
        await hub.run(lambda tx: tx.execute("INSERT INTO t VALUES (1)"))
        assert _other_process_reads(path) == [(1,)]
    finally:
        await beside.close()
        await hub.close()
    assert path.stat().st_mode & 0o777 == 0o600
