"""Time from IT's approval to a station running its first configuration.

A real hub (uvicorn on 127.0.0.1) and a real agent (its own data directory, key, signed
requests, signature checks and the atomic apply with its fsyncs; stationd's side is the
shipped fake port). Per sample a fresh station makes first contact and shows its code; IT
approves it; the clock runs until the agent has applied version 1.

- ``approval_to_running_ms`` with the product's enrollment poll interval (the hub tells a
  pending station to ask every ``enroll_poll_seconds``, 10 s): on average half the interval;
- ``mechanics_ms``: the same with the station woken right after the approval (what the
  approval, the enroll answer, the config download, verification and apply cost).

Run: ``.venv/bin/python bench/provisioning.py [--samples N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.provisioning.api import open_provisioning
from provisioning.agent import ProvisioningAgent
from station.core.clock import SystemClock
from tests.integration.fake_station import FakeStationPort
from tests.integration.hub_server import it_key, running_hub


async def sample(base_url: str, admin: object, data_dir: Path, wake: bool) -> float:
    applied = asyncio.Event()
    agent = ProvisioningAgent(
        data_dir, base_url, FakeStationPort(), SystemClock(), check_turn=False
    )

    def done(_version: int) -> None:
        applied.set()

    agent.on_config = done
    await agent.start()
    runner = asyncio.create_task(agent.run())
    try:
        code = None
        while code is None:
            view = agent.enrollment_view()
            code = None if view is None else view["code"]
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        await admin.approve(code, "bench", "Stue", "bench")  # type: ignore[attr-defined]
        if wake:
            agent.wake()
        await asyncio.wait_for(applied.wait(), 60)
        return (time.perf_counter() - start) * 1000
    finally:
        await agent.stop()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--mechanics-samples", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with running_hub(root / "hub") as hub:
            admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
            await admin.start()
            await admin.set_layer("care_home", "bench", {"care_home": {"name": "Bench"}}, "bench")
            for label, count, wake in (
                ("mechanics_ms", args.mechanics_samples, True),
                ("approval_to_running_ms", args.samples, False),
            ):
                times = []
                for n in range(count):
                    data_dir = root / f"{label}-{n}"
                    data_dir.mkdir(mode=0o700)
                    times.append(await sample(hub.base_url, admin, data_dir, wake))
                times.sort()
                print(
                    json.dumps(
                        {
                            "bench": "provisioning",
                            "figure": label,
                            "samples": count,
                            "median": round(statistics.median(times), 1),
                            "max": round(times[-1], 1),
                            "min": round(times[0], 1),
                            "enroll_poll_seconds": admin.settings.enroll_poll_seconds,
                        }
                    ),
                    flush=True,
                )
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
