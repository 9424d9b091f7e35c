"""Care-record export: outbox delivery latency, and how long a note survives offline.

1. ``delivery_latency``: a local FHIR-shaped receiver (tests/integration/fhir_receiver.py,
   uvicorn on 127.0.0.1) and stationd's export service with its worker running, as in the
   daemon. Per export: ``time.monotonic()`` just before ``ExportService.enqueue`` (the sealed
   export is written to outbox.db, fsynced) -> the receiver has stored the Bundle (its
   monotonic timestamp). Includes: the worker's wake-up, opening the box (HPKE), building
   and validating the Bundle with fhir.resources, the OAuth2 token (first export only),
   the HTTP round trip, the receiver's validation, and nothing after (the outbox's own
   "delivered" write is not in the interval). Exports are sent one at a time.
2. ``offline_survival``: by design an export waits until delivered (no give-up); the limit
   is disk. By test: the EOJ is unreachable (connection refused) for ``--offline-hours`` of
   simulated time (fake clock, 1-minute steps, a delivery pass each step), then comes back;
   reports the attempts made meanwhile, the wait after it came back, and copies stored.

Prints one JSON object per line. Run: ``.venv/bin/python bench/export.py [--exports N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from station.core.clock import FakeClock, SystemClock
from station.export import ExportService, FhirClient, seal_export
from station.export.fhir import stable_uuid
from tests.integration.fhir_receiver import FhirReceiver, running_receiver
from tests.integration.test_export_delivery import export_config, payload


def _emit(**data: object) -> None:
    print(json.dumps({"bench": "export", "python": platform.python_version(), **data}), flush=True)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def delivery_latency(n: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="ks-bench-export-"))
    try:
        async with running_receiver(FhirReceiver()) as rr:
            svc = ExportService.open(data_dir, clock=SystemClock(), config=export_config(rr))
            await svc.start()
            latencies: list[float] = []
            sealed_sizes: list[int] = []
            try:
                for i in range(n):
                    p = payload(
                        f"note-b{i}", entry_id=f"entry-b{i}", note=f"Notat nr. {i} æøå " * 20
                    )
                    sealed = seal_export(p, svc.public_key)
                    sealed_sizes.append(len(sealed))
                    bundle_id = stable_uuid("bundle", p.export_id)
                    rr.receiver.stored.clear()
                    t0 = time.monotonic()
                    await asyncio.to_thread(
                        svc.enqueue,
                        export_id=p.export_id,
                        consultation_id=p.consultation_id,
                        entry_id=p.entry_id,
                        sealed=sealed,
                        staff_id=p.staff_id,
                    )
                    async with asyncio.timeout(30):
                        await rr.receiver.stored.wait()
                    assert bundle_id in rr.receiver.stored_at
                    latencies.append((rr.receiver.stored_at[bundle_id] - t0) * 1000)
            finally:
                await svc.stop()
                svc.close()
        ms = latencies[1:] or latencies  # the first includes the OAuth2 token request
        _emit(
            metric="delivery_latency_ms",
            exports=len(ms),
            median=round(statistics.median(ms), 2),
            p95=round(_pct(ms, 0.95), 2),
            max=round(max(ms), 2),
            first_with_token_ms=round(latencies[0], 2),
            sealed_bytes_median=int(statistics.median(sealed_sizes)),
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def offline_survival(hours: float) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="ks-bench-export-"))
    clock = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    try:
        async with running_receiver(FhirReceiver()) as rr:
            live = export_config(rr)
            dead = export_config(rr, fhir_base_url="http://127.0.0.1:9/fhir")
            svc = ExportService.open(data_dir, clock=clock, config=live)
            worker = svc.build_worker()
            assert worker is not None
            live_client = worker.client
            worker.client = FhirClient(dead)
            worker.config = dead
            p = payload("note-offline")
            svc.enqueue(
                export_id=p.export_id,
                consultation_id=p.consultation_id,
                entry_id=p.entry_id,
                sealed=seal_export(p, svc.public_key),
                staff_id=p.staff_id,
            )
            steps = int(hours * 60)
            for _ in range(steps):
                await worker.run_once()
                clock.advance(timedelta(minutes=1))
            during = svc.outbox.get(p.export_id)
            await worker.client.aclose()
            worker.client, worker.config = live_client, live
            back_at = clock.now()
            while svc.outbox.get(p.export_id).state.value == "pending":
                await worker.run_once()
                if svc.outbox.get(p.export_id).state.value == "pending":
                    clock.advance(timedelta(minutes=1))
            waited = (clock.now() - back_at).total_seconds() / 60
            size = (data_dir / "outbox.db").stat().st_size
            await svc.stop()
            svc.close()
            copies = rr.receiver.count("Communication")
        _emit(
            metric="offline_survival",
            offline_simulated_hours=hours,
            attempts_while_offline=during.attempts,
            last_outcome_while_offline=during.last_outcome,
            state_while_offline=during.state.value,
            minutes_to_delivery_after_back=round(waited, 1),
            copies_stored=copies,
            outbox_db_bytes=size,
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--exports", type=int, default=200)
    parser.add_argument("--offline-hours", type=float, default=72.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the worker's per-attempt warnings are noise here
    asyncio.run(delivery_latency(args.exports))
    asyncio.run(offline_survival(args.offline_hours))


if __name__ == "__main__":
    main()
