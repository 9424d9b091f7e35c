"""Heartbeats one hub instance sustains (SQLite and PostgreSQL), and latency at 10,000 stations.

A real hub runs as its own process (uvicorn, as ``kontaktstation hub`` runs it) on 127.0.0.1;
this process is the fleet: ``--stations`` approved stations (inserted straight into the
database, a benchmark shortcut for 10,000 enrollments), each with its own Ed25519 key and
counter, sending real signed heartbeats over HTTP.

Two figures per backend:

- ``max``: closed loop, ``--concurrency`` requests in flight for ``--seconds``: heartbeats per
  second the hub answered (the load generator shares the machine's 2 cores; its CPU time is
  reported, so a client-bound figure shows as such);
- ``offered``: open loop at 10,000 stations / 60 s = 167 heartbeats per second, each from a
  station that has not beaten in this window, for ``--seconds``: p50/p99/max latency.

Run: ``.venv/bin/python bench/heartbeats.py [--backend sqlite|postgres|both]``. PostgreSQL
is a throw-away server (tests/integration/postgres.py), tuned like a test server (fsync off):
the PostgreSQL figures are an upper bound for a real, durable server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.db import ts
from hub.provisioning.api import open_provisioning
from hub.settings import HubSettings
from provisioning.identity import StationIdentity
from provisioning.schema import AuditHead, HealthCheck, HealthName, Heartbeat
from station.core.clock import SystemClock
from tests.integration.hub_server import it_key

ROOT = Path(__file__).resolve().parents[1]
PATH = "/api/provisioning/v1/heartbeat"


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body() -> bytes:
    beat = Heartbeat(
        sent_at=datetime.now(UTC),
        software_version="0.1.0",
        config_version=1,
        lock_state="locked",
        session_state="locked",
        health=tuple(HealthCheck(name=n, ok=True) for n in list(HealthName)[:9]),
        audit_head=AuditHead(seq=1234, hash="ab" * 32),
        queue_length=3,
    )
    return beat.model_dump_json().encode()


async def seed(settings: HubSettings, identities: list[StationIdentity]) -> None:
    service = open_provisioning(settings, SystemClock(), signer=it_key(settings))
    await service.start()
    now = ts(datetime.now(UTC))
    rows = [(i.station_id, i.public_key, now) for i in identities]

    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]

        def insert(tx: object, chunk: list[tuple[str, bytes, str]] = chunk) -> None:
            for row in chunk:
                tx.execute(  # type: ignore[attr-defined]
                    "INSERT INTO prov_stations (station_id, public_key, status, care_home_id, "
                    "name, created_at, approved_at) VALUES (?, ?, 'approved', 'bench', 'bench', "
                    "?, ?)",
                    (*row, row[2]),
                )

        await service.db.run(insert)
    await service.close()


class Fleet:
    def __init__(self, identities: list[StationIdentity], url: str) -> None:
        self.identities = identities
        self.counters = [0] * len(identities)
        self.url = url
        self.body = body()

    def headers(self, index: int) -> dict[str, str]:
        self.counters[index] += 1
        headers = self.identities[index].sign_request(
            "POST", PATH, self.counters[index], int(time.time()), self.body
        )
        headers["Content-Type"] = "application/json"
        return headers

    async def beat(self, client: httpx.AsyncClient, index: int) -> float:
        start = time.perf_counter()
        response = await client.post(PATH, content=self.body, headers=self.headers(index))
        if response.status_code != 200:
            raise RuntimeError(f"heartbeat failed: {response.status_code} {response.text[:200]}")
        return time.perf_counter() - start


async def closed_loop(fleet: Fleet, seconds: float, concurrency: int) -> dict[str, object]:
    done = 0
    deadline = time.perf_counter() + seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    order = iter(random.sample(range(len(fleet.identities)), len(fleet.identities)) * 100)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=fleet.url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await fleet.beat(client, next(order))
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "heartbeats_per_second": round(done / elapsed, 1),
        "heartbeats": done,
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "load_generator_cpu_share": round(client_cpu / elapsed, 2),
    }


async def open_loop(fleet: Fleet, seconds: float, rate: float) -> dict[str, object]:
    latencies: list[float] = []
    stations = random.sample(range(len(fleet.identities)), len(fleet.identities))
    total = min(int(seconds * rate), len(stations))
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=fleet.url, limits=limits, timeout=30) as client:
        tasks = []
        start = time.perf_counter()
        for n in range(total):
            # Uniform pacing: heartbeat n is due at n / rate seconds.
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fleet.beat(client, stations[n])))
        latencies = list(await asyncio.gather(*tasks))
        elapsed = time.perf_counter() - start
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "offered_per_second": round(rate, 1),
        "achieved_per_second": round(total / elapsed, 1),
        "heartbeats": total,
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 2),
        "max_ms": round(ms[-1], 2),
    }


def start_hub(settings_env: dict[str, str], data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    code = "import sys; from hub.server import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), **settings_env},
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=1).is_success:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("hub did not start")


async def run_backend(backend: str, args: argparse.Namespace, stack: ExitStack) -> None:
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    env: dict[str, str] = {}
    overrides: dict[str, object] = {"data_dir": tmp}
    if backend == "postgres":
        from tests.integration.postgres import postgres_server

        server = stack.enter_context(postgres_server())
        env["KONTAKTSTATION_HUB_DATABASE_URL"] = server.url
        overrides["database_url"] = server.url
    settings = HubSettings(**overrides)  # type: ignore[arg-type]
    identities = [StationIdentity(Ed25519PrivateKey.generate()) for _ in range(args.stations)]
    await seed(settings, identities)
    port = free_port()
    proc = start_hub(env, tmp, port)
    try:
        fleet = Fleet(identities, f"http://127.0.0.1:{port}")
        base = {"bench": "heartbeats", "backend": backend, "stations": args.stations}
        for mode, run in (
            ("max", lambda: closed_loop(fleet, args.seconds, args.concurrency)),
            ("offered", lambda: open_loop(fleet, args.seconds, args.stations / 60.0)),
        ):
            cpu = process_cpu_seconds(proc.pid)
            result = await run()
            used = process_cpu_seconds(proc.pid) - cpu
            # The hub's own CPU per heartbeat: the figure least disturbed by a shared machine.
            per_beat = used * 1000 / max(1, int(str(result["heartbeats"])))
            load = round(os.getloadavg()[0], 2)
            print(
                json.dumps(
                    {
                        **base,
                        "mode": mode,
                        **result,
                        "hub_cpu_ms_per_heartbeat": round(per_beat, 2),
                        "load_average": load,
                    }
                ),
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "bench": "heartbeats",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg()[0],
            }
        ),
        flush=True,
    )
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        with ExitStack() as stack:
            await run_backend(backend, args, stack)


if __name__ == "__main__":
    asyncio.run(main())
