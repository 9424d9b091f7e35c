"""Staff UI figures: key press to screen update on Today (50 residents), and unlock.

    .venv/bin/python bench/staff_ui.py [--runs 30]

A real stationd (fake hardware, real store and keyring with the tests' cheap Argon2
parameters: the PIN check itself is stationd's, measured in bench/vault.py) in this process,
the staff app headless at 100x30 (Textual's ``run_test``). One JSON object per line:

- ``today_cursor``: Down in the queue → the cursor row redrawn (no stationd round trip);
- ``today_switch_appointment``: Down in the day's list → the next appointment's queue drawn;
- ``today_skip``: S on a resident → stationd updates the status, the day (50 residents, every
  sealed field opened again) is re-read and redrawn with "Sprunget over";
- ``unlock``: Enter in the PIN field → Today drawn with the day's appointments.

"Drawn" is: the app's message queue is idle after the change (``Pilot.pause``), which is
after Textual's refresh of the changed widgets. ``pilot_noop_key`` (a key bound to nothing)
is what Pilot's own press-and-wait costs; subtract it for the app's share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import DataTable, Input

from tests.integration.daemon_harness import STAFF_NUMBER, short_socket_dir
from tests.tui.test_staff_support import (
    ROUND,
    SIZE,
    seed,
    staff_station,
    unlock,
    wait_for,
)
from tui.staff.screens.today import TodayScreen


def summary(name: str, samples_ms: list[float], **extra: Any) -> dict[str, Any]:
    """Median and p99 (nearest rank) of ``samples_ms``."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, max(0, round(0.99 * len(ordered)) - 1))]
    return {
        "bench": "staff_ui",
        "metric": name,
        "runs": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(ordered[-1], 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **extra,
    }


def today_drawn(app: Any) -> bool:
    """Today is on screen with the day's appointments."""
    return isinstance(app.screen, TodayScreen) and bool(app.screen.appointments)


async def timed(pilot: Any, key: str, done: Callable[[], bool]) -> float:
    """Press ``key``; the time until ``done()`` holds and the app is idle (redrawn)."""
    start = time.perf_counter()
    await pilot.press(key)
    deadline = start + 30
    while not done():  # finer than wait_for's 50 ms steps
        assert time.perf_counter() < deadline, f"{key!r} had no effect"
        await asyncio.sleep(0.001)
    await pilot.pause()
    return (time.perf_counter() - start) * 1000


async def run(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, short_socket_dir() as socket_dir:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        async with staff_station(data_dir, socket_dir) as station:
            # 4 in the round + 1 with CPR + 45 in five more appointments = 50 residents.
            await seed(
                station,
                residents=(*ROUND, ("Ruth Olsen", date(1935, 5, 5), "8")),
                extra_appointments=5,
                per_appointment=9,
            )
            app = station.app(live_interval=0)
            async with app.run_test(size=SIZE) as pilot:
                await unlock(pilot)
                today = app.screen
                assert isinstance(today, TodayScreen)
                total = sum(len(a.residents) for a in today.appointments)
                queue = today.query_one("#queue", DataTable)
                appointments = today.query_one("#appointments", DataTable)

                # Pilot's own cost: a key nothing is bound to, then idle.
                noop: list[float] = []
                for _ in range(runs):
                    noop.append(await timed(pilot, "f12", lambda: True))
                print(json.dumps(summary("pilot_noop_key", noop)), flush=True)

                cursor: list[float] = []
                for i in range(runs):
                    queue.focus()
                    key = "down" if i % 6 < 3 else "up"
                    before = queue.cursor_row
                    cursor.append(
                        await timed(pilot, key, lambda b=before: queue.cursor_row != b)  # type: ignore[misc]
                    )
                print(json.dumps(summary("today_cursor", cursor, residents=total)), flush=True)

                switch: list[float] = []
                for i in range(runs):
                    appointments.focus()
                    key = "down" if (i // 6) % 2 == 0 else "up"
                    before = today._selected
                    last = appointments.row_count - 1
                    if (key == "down" and appointments.cursor_row == last) or (
                        key == "up" and appointments.cursor_row == 0
                    ):
                        key = "up" if key == "down" else "down"
                    switch.append(
                        await timed(pilot, key, lambda b=before: today._selected != b)  # type: ignore[misc]
                    )
                print(
                    json.dumps(summary("today_switch_appointment", switch, residents=total)),
                    flush=True,
                )

                skip: list[float] = []
                appointments.move_cursor(row=0)
                await pilot.pause()
                queue.focus()
                for _ in range(runs):
                    resident = today.selected_resident
                    assert resident is not None
                    want = "waiting" if resident.status == "skipped" else "skipped"

                    def changed(eid: str = resident.entry_id, want: str = want) -> bool:
                        s = today.selected
                        return s is not None and any(
                            r.entry_id == eid and r.status == want for r in s.residents
                        )

                    skip.append(await timed(pilot, "s", changed))
                print(json.dumps(summary("today_skip", skip, residents=total)), flush=True)

            unlocks: list[float] = []
            for _ in range(max(5, runs // 3)):
                await station.running.http.post("/v1/lock", json={})
                app = station.app(live_interval=0)
                async with app.run_test(size=SIZE) as pilot:
                    app.screen.query_one("#staff-number", Input).value = STAFF_NUMBER
                    app.screen.query_one("#pin", Input).focus()
                    await pilot.press(*"4711")
                    await pilot.pause()
                    start = time.perf_counter()
                    await pilot.press("enter")
                    await wait_for(pilot, lambda a=app: today_drawn(a), 30)  # type: ignore[misc]
                    await pilot.pause()
                    unlocks.append((time.perf_counter() - start) * 1000)
            print(
                json.dumps(
                    summary("unlock", unlocks, residents=total, kdf="tests' cheap Argon2id")
                ),
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.runs))


if __name__ == "__main__":
    main()
