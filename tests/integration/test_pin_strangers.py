"""Issue 14, item 8: strangers typing made-up staff ids cannot lock enrolled staff out.

A real stationd on its Unix socket, a keyring with one enrolled member, and the attacker at
the lock screen: 25 wrong PINs under made-up ids (one of them a CPR number typed into the id
field). Before the fix the station-wide cap then refused every id, enrolled ones included,
for up to an hour; now an enrolled member waits at most the station-wide spacing (a few
seconds) and unlocks. Then a byte search of ``pin_attempts.db`` (and its WAL) for every id
typed finds nothing, and old rows are pruned.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from station.core.clock import FakeClock
from station.keys.pin_guard import PinPolicy
from station.storage.datadir import DataDir, sqlite_family
from tests.integration.daemon_harness import (
    STAFF_ID,
    STAFF_PIN,
    enrol,
    running_daemon,
    short_socket_dir,
)

#: What a stranger types as staff ids: made-up ids and a CPR number.
TYPED = ["0101301237", *(f"nurse-{n:02d}" for n in range(24))]


def bytes_of_attempt_log(data_dir: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in sqlite_family(DataDir(data_dir).pin_attempts) if p.exists()
    )


@pytest.mark.slow
async def test_made_up_ids_do_not_lock_out_an_enrolled_member(data_dir: Path) -> None:
    enrol(data_dir)
    spacing = PinPolicy().station_spacing_seconds
    with short_socket_dir() as sock_dir:
        async with running_daemon(data_dir, sock_dir) as running:
            for n, typed in enumerate(TYPED):
                if n >= PinPolicy().station_failures_per_window:
                    await asyncio.sleep(spacing)  # the attacker waits out the spacing too
                refused = await running.http.post(
                    "/v1/unlock", json={"staff_id": typed, "pin": "000000"}
                )
                assert refused.status_code in (401, 403, 429), refused.text
                assert refused.json().get("code") != "slot_disabled"
            # Right after the last stranger, an enrolled member is held back a few seconds
            # at most, never the hour.
            first = await running.http.post(
                "/v1/unlock", json={"staff_id": STAFF_ID, "pin": STAFF_PIN}
            )
            if first.status_code != 200:
                assert first.status_code == 429, first.text
                assert int(first.headers["Retry-After"]) <= spacing
                await asyncio.sleep(float(first.headers["Retry-After"]))
                first = await running.http.post(
                    "/v1/unlock", json={"staff_id": STAFF_ID, "pin": STAFF_PIN}
                )
            assert first.status_code == 200, first.text

    # Nothing typed is in the attempt log, in any of its files.
    data = bytes_of_attempt_log(data_dir)
    assert data, "the attempt log exists"
    for typed in [*TYPED, STAFF_ID]:
        assert typed.encode() not in data, f"{typed!r} is stored in pin_attempts.db"


async def test_old_attempt_rows_are_pruned(data_dir: Path) -> None:
    """A month later the strangers' rows are gone (stationd with an injected clock)."""
    enrol(data_dir)
    clock = FakeClock()
    with short_socket_dir() as sock_dir:
        async with running_daemon(data_dir, sock_dir, clock=clock) as running:
            for typed in TYPED[:5]:
                await running.http.post("/v1/unlock", json={"staff_id": typed, "pin": "000000"})
            path = DataDir(data_dir).pin_attempts
            with sqlite3.connect(path) as db:
                assert db.execute("SELECT count(*) FROM pin_counters").fetchone()[0] == 5
            clock.advance(timedelta(days=31))
            assert (await running.unlock()) != ""
            with sqlite3.connect(path) as db:
                assert db.execute("SELECT count(*) FROM pin_counters").fetchone()[0] == 0
                assert db.execute("SELECT count(*) FROM pin_failures").fetchone()[0] == 0
