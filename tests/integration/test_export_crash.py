"""SIGKILL of the delivering process mid-delivery: nothing lost, nothing stored twice.

The worker runs as its own process (``python -m station.export``, the same worker stationd
runs); the receiver holds the request open (before or after storing the Bundle) while the
test kills the process with SIGKILL. A restart delivers the export, and the receiver ends
with exactly one copy: the retry's conditional creates match what is already there.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from station.core.clock import SystemClock
from station.export import ExportService, OutboxState, seal_export
from station.export.config import EXPORT_CONFIG_FILENAME
from tests.integration.fhir_receiver import (
    CLIENT_ID,
    CLIENT_SECRET,
    FhirReceiver,
    RunningReceiver,
    running_receiver,
)
from tests.integration.test_export_delivery import NAME, NOTE, communication_of, payload

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def write_config(data_dir: Path, rr: RunningReceiver) -> None:
    path = data_dir / EXPORT_CONFIG_FILENAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {
                "fhir_base_url": rr.fhir_url,
                "token_url": rr.token_url,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "care_home": {"name": "Plejecenter Solhaven", "sor": "123456789012345"},
                "timeout_seconds": 5,
                "allow_insecure_loopback": True,
            },
            handle,
        )


def enqueue_one(data_dir: Path) -> None:
    svc = ExportService.open(data_dir, clock=SystemClock())
    try:
        p = payload()
        svc.enqueue(
            export_id=p.export_id,
            consultation_id=p.consultation_id,
            entry_id=p.entry_id,
            sealed=seal_export(p, svc.public_key),
            staff_id=p.staff_id,
        )
    finally:
        svc.close()


async def start_worker(data_dir: Path, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "station.export",
        "--data-dir",
        str(data_dir),
        "--log-level",
        "DEBUG",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def outbox_state(data_dir: Path) -> OutboxState:
    svc = ExportService.open(data_dir, clock=SystemClock())
    try:
        return svc.outbox.get("note-aaaa1").state
    finally:
        svc.close()


@pytest.mark.parametrize("where", ["hang_after_store", "hang_before_store"])
async def test_sigkill_during_delivery_then_restart_delivers_once(
    data_dir: Path, where: str
) -> None:
    async with running_receiver(FhirReceiver()) as rr:
        write_config(data_dir, rr)
        enqueue_one(data_dir)
        rr.receiver.fail_next(where)
        proc = await start_worker(data_dir)
        try:
            async with asyncio.timeout(60):
                await rr.receiver.entered.wait()  # the worker is inside the request
            assert rr.receiver.count("Communication") == (1 if where == "hang_after_store" else 0)
        finally:
            proc.send_signal(signal.SIGKILL)
            _, first_err = await proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        # Killed before it could record anything: the export still waits, sealed.
        assert outbox_state(data_dir) is OutboxState.PENDING
        rr.receiver.release()

        restarted = await start_worker(data_dir, "--once")
        async with asyncio.timeout(60):
            _, second_err = await restarted.communicate()
        assert restarted.returncode == 0, second_err.decode(errors="replace")[-2000:]

        assert outbox_state(data_dir) is OutboxState.DELIVERED
        assert len(communication_of(rr, "note-aaaa1")) == 1
        for rtype in ("Encounter", "Patient", "Communication", "Organization"):
            assert rr.receiver.count(rtype) == 1, rtype
        assert len(rr.receiver.bodies) == 2
        assert rr.receiver.bodies[0] == rr.receiver.bodies[1]
        logs = first_err + second_err
        assert b"note-aaaa1" in logs
        for needle in (NAME, NOTE, "0102301234"):
            assert needle.encode() not in logs
