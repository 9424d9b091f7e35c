"""Privacy button edge → "locked" event at an API client, through a running stationd.

The daemon runs in this process on its own loop with the shipped fake hardware; the button's
gpiozero MockFactory pin is driven from a worker thread (as gpiozero's own threads call back
on a Pi). An SSE client, with its own thread and event loop, listens on the daemon's Unix
socket with httpx and timestamps each ``locked`` event. Before every press the station is
unlocked through the API (``POST /v1/unlock`` with a PIN; the keyring uses cheap Argon2 here
so 1,000 unlocks take seconds, and the unlock is not part of the measured interval).

Measured per press: ``perf_counter`` just before ``pin.drive_low()`` → the SSE client has
parsed the ``locked`` event. The button's duplicate-suppression gap (0.25 s in the product,
which suppresses *repeats* and never delays the first edge) is set to 0 so 1,000 presses do
not need 250 s; pass ``--event-gap 0.25`` to run with the product value.

Prints one JSON object per line. Run: ``.venv/bin/python bench/button_lock.py [--presses N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stationapi.locked import LockedClient
from tests.integration.daemon_harness import (
    STAFF_ID,
    STAFF_PIN,
    enrol,
    fake_hardware,
    running_daemon,
    short_socket_dir,
)


def listen(socket_path: Path, arrivals: queue.Queue[float], ready: threading.Event) -> None:
    """The SSE client: its own thread and loop, like a separate UI process."""

    async def run() -> None:
        async with LockedClient(socket_path) as client:
            async for event in client.events(read_timeout=None):
                if event.kind == "snapshot":
                    ready.set()
                elif event.kind == "locked":
                    arrivals.put(time.perf_counter())
                elif event.kind == "shutdown":
                    return

    asyncio.run(run())


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def bench(presses: int, event_gap: float) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="ks-bench-"))
    try:
        return await _bench(data_dir, presses, event_gap)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _bench(data_dir: Path, presses: int, event_gap: float) -> dict[str, object]:
    enrol(data_dir)
    hardware = await fake_hardware(event_gap=event_gap)
    pin = hardware.hw.button.pin
    latencies: list[float] = []
    with short_socket_dir() as socket_dir:
        async with running_daemon(data_dir, socket_dir, hardware=hardware) as station:
            arrivals: queue.Queue[float] = queue.Queue()
            ready = threading.Event()
            thread = threading.Thread(
                target=listen, args=(station.socket_path, arrivals, ready), daemon=True
            )
            thread.start()
            await asyncio.to_thread(ready.wait, 10)
            last_press = 0.0
            for _ in range(presses):
                response = await station.http.post(
                    "/v1/unlock", json={"staff_id": STAFF_ID, "pin": STAFF_PIN}
                )
                response.raise_for_status()
                # Past the button's repeat gap (with a margin), or the press is a "repeat".
                wait = (event_gap + 0.02 if event_gap else 0.0) - (time.monotonic() - last_press)
                if wait > 0:
                    await asyncio.sleep(wait)

                def edge() -> float:
                    started = time.perf_counter()
                    pin.drive_low()
                    pin.drive_high()
                    return started

                last_press = time.monotonic()
                started = await asyncio.to_thread(edge)
                arrived = await asyncio.to_thread(arrivals.get, True, 5.0)
                latencies.append((arrived - started) * 1000)
            await station.daemon.stop()
            thread.join(10)
    latencies.sort()
    return {
        "bench": "button_lock",
        "metric": "button edge to locked SSE event",
        "presses": presses,
        "event_gap_s": event_gap,
        "median_ms": round(statistics.median(latencies), 3),
        "p90_ms": round(percentile(latencies, 90), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(latencies[-1], 3),
        "target_p99_ms": 50,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=1000)
    parser.add_argument("--event-gap", type=float, default=0.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.presses, args.event_gap))), flush=True)


if __name__ == "__main__":
    main()
