"""Log-in figure (issue 17): staff number + PIN → Today drawn, with the production Argon2id.

Run: ``.venv/bin/python bench/login.py [--runs 15]``. Prints one JSON object per line.

The path a care worker waits for at the station: the staff UI's log-in screen (Textual's
Pilot, the station's 100x30 test terminal) with the number typed and the PIN's last digit
pressed with Enter; the clock starts at Enter and stops when Today is drawn with the day's
appointments. In between: the staff UI's request over the Unix socket, stationd's PIN guard
(two fsynced commits), the keyslots file read and authenticated, **one** Argon2id evaluation
at the product's parameters (64 MiB, t=3, p=4; ``DEFAULT_KDF_PARAMS``), the key hand-over, the
staff UI opening the records and drawing Today. stationd runs in this process (as in the TUI
tests), so the bench also counts the Argon2id evaluations per log-in (the figure must be 1).
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.widgets import Input

import station.keys.keyring as keyring_module
from station.keys.keyslots import DEFAULT_KDF_PARAMS
from tests.integration.daemon_harness import STAFF_NUMBER, STAFF_PIN, short_socket_dir
from tests.tui.test_staff_support import SIZE, seed, staff_station, wait_for
from tui.staff.screens.today import TodayScreen


def nearest_rank(ordered: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank."""
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def run(runs: int) -> None:
    evaluations = 0
    real = keyring_module.hash_secret_raw

    def counting(**kwargs: Any) -> bytes:
        nonlocal evaluations
        evaluations += 1
        return real(**kwargs)

    keyring_module.hash_secret_raw = counting  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as tmp, short_socket_dir() as socket_dir:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir(mode=0o700)
        async with staff_station(data_dir, socket_dir, kdf=DEFAULT_KDF_PARAMS) as station:
            await seed(station)
            samples: list[float] = []
            per_login: list[int] = []
            for _ in range(runs):
                await station.running.http.post("/v1/lock", json={})
                app = station.app(live_interval=0)
                async with app.run_test(size=SIZE) as pilot:
                    app.screen.query_one("#staff-number", Input).value = STAFF_NUMBER
                    app.screen.query_one("#pin", Input).focus()
                    await pilot.press(*STAFF_PIN)
                    await pilot.pause()
                    evaluations = 0
                    start = time.perf_counter()
                    await pilot.press("enter")
                    await wait_for(
                        pilot,
                        lambda a=app: (
                            isinstance(a.screen, TodayScreen)  # type: ignore[misc]
                            and bool(a.screen.appointments)
                        ),
                        60,
                    )
                    await pilot.pause()
                    samples.append((time.perf_counter() - start) * 1000)
                    per_login.append(evaluations)
    ordered = sorted(samples)
    print(
        json.dumps(
            {
                "bench": "login",
                "metric": "number_pin_to_today_drawn",
                "runs": len(ordered),
                "median_ms": round(statistics.median(ordered), 1),
                "p95_ms": round(nearest_rank(ordered, 0.95), 1),
                "max_ms": round(ordered[-1], 1),
                "argon2id_per_login": sorted(set(per_login)),
                "kdf": {
                    "memory_kib": DEFAULT_KDF_PARAMS.memory_kib,
                    "time_cost": DEFAULT_KDF_PARAMS.time_cost,
                    "parallelism": DEFAULT_KDF_PARAMS.parallelism,
                },
                "python": platform.python_version(),
                "machine": platform.machine(),
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run(args.runs))


if __name__ == "__main__":
    main()
