"""The kiosk's lock, end to end: cold start of the lock screen, privacy button → locked screen.

Real parts throughout: stationd in this process (fake hardware; the button's gpiozero
MockFactory pin is driven from a worker thread), the UI supervisor with a private tmux
server, the real locked UI (``python -m tui.locked``) and the real staff UI
(``python -m tui.staff``; ``--staff stand-in`` uses a process that only prints a marker).

Measured:

- ``cold_start``: ``Supervisor.start()`` → the lock screen's text is in the kiosk's pane
  (tmux ``capture-pane`` polled every ~5 ms: that is the resolution);
- per lock, with the staff UI started through the log-in request and drawn, and the station
  unlocked through the API: ``perf_counter`` before the button's ``drive_low()`` →
  ``shown``: the kiosk pane shows the lock screen (and no longer the staff screen), and
  ``staff_exit``: the staff UI's process is gone (SIGTERM from the supervisor, or its own
  exit on the lock). ``switch`` is the supervisor's own edge-seen → select-window time.

Prints one JSON object per line. Run: ``.venv/bin/python bench/lock_ui.py [--locks N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.daemon_harness import enrol, running_daemon, short_socket_dir, ui_hosts
from tui.locked.link import SupervisorSocket
from tui.supervisor import STAFF_COMMAND, Supervisor, SupervisorConfig

LOCK_TEXT = "Stationen er låst"
STAND_IN = [
    sys.executable,
    "-c",
    "import time; print('STAFF SCREEN', flush=True); time.sleep(600)",
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(name: str, values_s: list[float], **extra: Any) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {
        "bench": "lock_ui",
        "metric": name,
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        **extra,
    }


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


async def until(check: Any, within: float = 30.0, step: float = 0.0) -> float:
    """Poll ``check`` (sync or async) until true; the ``perf_counter`` when it was."""
    deadline = time.perf_counter() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(step)


def interval(values: list[float], rounds: int = 2000) -> list[float]:
    """A 95 % bootstrap interval of the median, in ms."""
    rng = random.Random(7)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) * 1000 for _ in range(rounds)
    )
    return [round(medians[int(0.025 * rounds)], 1), round(medians[int(0.975 * rounds)], 1)]


async def one_round(
    station: Any, hosts: tuple[Path, Path] | None, locks: int, staff_command: list[str]
) -> dict[str, list[float]]:
    """Cold start, then ``locks`` log-ins and button presses, with one supervisor."""
    env = {"KONTAKTSTATION_LANG": "da", "KONTAKTSTATION_STATION_NAME": "Bench"}
    sup = Supervisor(
        SupervisorConfig(
            station.socket_path,
            attach=False,
            environ=env,
            staff_command=staff_command,
            grace_seconds=1.0,
            locked_host=hosts[0] if hosts else None,
            staff_host=hosts[1] if hosts else None,
        )
    )
    out: dict[str, list[float]] = {"cold": [], "shown": [], "gone": [], "switch": [], "killed": []}
    t0 = time.perf_counter()
    await sup.start()
    out["cold"].append(await until(lambda: _shows(sup, LOCK_TEXT)) - t0)
    pin = station.daemon.hardware.hw.button.pin
    try:
        for _ in range(locks):
            assert await SupervisorSocket(sup.control_socket).request_login()
            staff_pid = sup.staff_pid
            assert staff_pid is not None
            await station.unlock()
            await until(lambda: sup.state == "staff")
            await asyncio.sleep(0.3)  # let the staff UI settle (idle, drawn)
            t0 = time.perf_counter()
            await asyncio.to_thread(pin.drive_low)
            t_shown = await until(lambda: _locked_in_view(sup))
            t_gone = await until(lambda p=staff_pid: not alive(p), step=0.002)
            await asyncio.to_thread(pin.drive_high)
            out["shown"].append(t_shown - t0)
            out["gone"].append(t_gone - t0)
            timing = sup.timings[-1]
            if timing.shown is not None:
                out["switch"].append(timing.shown - timing.seen)
            out["killed"].append(float(timing.killed))
            await until(lambda: sup.staff_pid is None)
            await asyncio.sleep(0.25)  # the button's duplicate gap
    finally:
        await sup.stop()
    return out


async def bench(locks: int, rounds: int, staff: str, modes: list[str]) -> list[dict[str, Any]]:
    """``rounds`` rounds, each mode once per round in turn (interleaved), one stopwatch."""
    staff_command = list(STAFF_COMMAND) if staff == "real" else STAND_IN
    data_dir = Path(tempfile.mkdtemp(prefix="ks-bench-lockui-"))
    results: list[dict[str, Any]] = []
    totals: dict[str, dict[str, list[float]]] = {
        mode: {"cold": [], "shown": [], "gone": [], "switch": [], "killed": []} for mode in modes
    }
    try:
        enrol(data_dir)
        with short_socket_dir() as socket_dir:
            async with running_daemon(data_dir, socket_dir) as station:
                with ui_hosts(socket_dir / "ui") as hosts:
                    for _ in range(rounds):
                        for mode in modes:
                            got = await one_round(
                                station, hosts if mode == "own-servers" else None, locks,
                                staff_command,
                            )  # fmt: skip
                            for key, values in got.items():
                                totals[mode][key].extend(values)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    for mode, got in totals.items():
        extra = {
            "mode": mode,
            "staff_ui": staff,
            "staff_killed_after_grace": int(sum(got["killed"])),
        }
        for metric, key in (
            ("cold_start_to_lock_screen", "cold"),
            ("button_to_lock_screen_shown", "shown"),
            ("button_to_staff_process_gone", "gone"),
            ("supervisor_event_to_window_switched", "switch"),
        ):
            results.append(summary(metric, got[key], median_95_ms=interval(got[key]), **extra))
    return results


async def _shows(sup: Supervisor, text: str) -> bool:
    return text in await sup.capture()


async def _locked_in_view(sup: Supervisor) -> bool:
    text = await sup.capture()
    return LOCK_TEXT in text and "STAFF SCREEN" not in text and "PIN" not in text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locks", type=int, default=6, help="locks per round and mode")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each mode once a round")
    parser.add_argument("--staff", choices=("real", "stand-in"), default="real")
    parser.add_argument(
        "--modes",
        default="one-tmux,own-servers",
        help="one-tmux (the UIs in the supervisor's tmux), own-servers (issue 14 item 7)",
    )
    args = parser.parse_args()
    host = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load": round(os.getloadavg()[0], 2),
    }
    modes = args.modes.split(",")
    for row in asyncio.run(bench(args.locks, args.rounds, args.staff, modes)):
        print(json.dumps({**row, **host}), flush=True)


if __name__ == "__main__":
    main()
