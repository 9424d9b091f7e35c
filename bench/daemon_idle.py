"""stationd at rest: CPU (% of one core) and resident memory of the daemon process.

Starts ``python -m station.daemon.app --hardware fake`` as a subprocess with a notify socket
(as systemd would, with a 30 s watchdog), waits for READY=1 and for the start-up health check
to settle, then samples ``/proc/<pid>/stat`` (user + system ticks) over the window. Measured
twice: with no client, and with two UIs' event streams connected (as on a station: the
locked UI and the staff UI).

Prints one JSON object per line. Run: ``.venv/bin/python bench/daemon_idle.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def measure(pid: int, seconds: float) -> dict[str, float]:
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    return {
        "cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "rss_mib": round(rss_kib(pid) / 1024, 1),
        "threads": threads(pid),
        "window_s": round(t1 - t0, 1),
    }


async def hold_streams(socket_path: Path, count: int, stop: asyncio.Event) -> None:
    async def one() -> None:
        transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://stationd", timeout=None) as c,
            c.stream("GET", "/v1/events") as response,
        ):
            async for _ in response.aiter_lines():
                if stop.is_set():
                    return

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ks-idle-", dir="/tmp"))
    data_dir = work / "data"
    data_dir.mkdir(mode=0o700)
    socket_path = work / "stationd.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(work / "notify.sock"))
    env = dict(os.environ)
    env.update(
        NOTIFY_SOCKET=str(work / "notify.sock"),
        WATCHDOG_USEC="30000000",
        GPIOZERO_PIN_FACTORY="mock",
        PYTHONPATH=str(REPO),
    )
    with (work / "daemon.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "station.daemon.app", "--data-dir", str(data_dir),
             "--socket", str(socket_path), "--hardware", "fake", "--log-level", "WARNING"],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        notify.settimeout(60)
        started = time.monotonic()
        while b"READY=1" not in notify.recv(4096):
            pass
        ready_s = time.monotonic() - started
        time.sleep(3)  # the start-up health check (camera, microphone) settles
        base = {"bench": "daemon_idle", "machine": platform.machine(), "cpus": os.cpu_count()}
        print(json.dumps({**base, "metric": "start to READY=1", "seconds": round(ready_s, 2)}))
        print(
            json.dumps({**base, "metric": "idle, no clients", **measure(process.pid, args.seconds)})
        )

        async def with_streams() -> dict[str, float]:
            stop = asyncio.Event()
            holder = asyncio.create_task(hold_streams(socket_path, 2, stop))
            await asyncio.sleep(1)
            result = await asyncio.to_thread(measure, process.pid, args.seconds)
            stop.set()
            await holder
            return result

        figures = asyncio.run(with_streams())
        print(json.dumps({**base, "metric": "idle, 2 event streams", **figures}), flush=True)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        notify.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
