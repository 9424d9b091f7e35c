"""The due reminder (issue 17): from the reminder instant to the lamp's pattern and to the first
audio sample at the loudspeaker.

stationd runs in-process with the shipped fake hardware (gpiozero MockFactory pins, the
recording loudspeaker), the real espeak-ng, and a FakeClock. Each run books a consultation 20
minutes ahead, locks, waits a random fraction of the reminder tick, then moves the clock to
exactly 15 minutes before the start (the reminder instant) and times, on the monotonic clock:

- the lamp's pin first driven by the ``due`` pattern (the lamp's pattern becomes ``DUE``);
- the first 20 ms frame of the chime reaching the loudspeaker (polled every 0.5 ms).

With the product's tick (5 s) the delay is mostly the wait for the next step; ``--tick 0.02``
shows what a step itself costs (the store query, espeak-ng's synthesis, the lamp's thread).

    .venv/bin/python bench/reminder.py --runs 10 --tick 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.audio.fake import RecordingSpeaker
from station.core.clock import FakeClock
from station.core.ports import LedPattern
from station.daemon.hardware import GpioHardwareLink
from tests.integration.daemon_harness import CLINIC, enrol, running_daemon, short_socket_dir


def nearest_rank(ordered: list[float], q: float) -> float:
    """The q-quantile by nearest rank."""
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


async def one(tick: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp, short_socket_dir() as sockets:
        data = Path(tmp) / "data"
        data.mkdir(mode=0o700)
        enrol(data)
        clock = FakeClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
        async with running_daemon(data, sockets, clock=clock, reminder_tick_seconds=tick) as st:
            link = st.daemon.hardware
            assert isinstance(link, GpioHardwareLink) and link.hw.led is not None
            speaker = link.hw.speaker
            assert isinstance(speaker, RecordingSpeaker)
            await st.put_clinic(CLINIC)
            token = await st.unlock()
            starts = clock.now() + timedelta(minutes=20)
            response = await st.http.post(
                "/v1/consultations",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "clinic_id": CLINIC.id,
                    "starts_at": starts.isoformat(),
                    "ends_at": (starts + timedelta(minutes=30)).isoformat(),
                    "consultation_type": "video_consultation",
                },
            )
            assert response.status_code == 201, response.text
            await st.http.post("/v1/lock")
            await asyncio.sleep(random.uniform(0.0, tick))
            led = link.hw.led
            clock.set(starts - timedelta(minutes=15))
            instant = time.monotonic()
            led_at = audio_at = None
            while led_at is None or audio_at is None:
                now = time.monotonic()
                if led_at is None and led.pattern is LedPattern.DUE:
                    led_at = now
                if audio_at is None and speaker.total_frames > 0:
                    audio_at = now
                if now - instant > tick + 30:
                    raise RuntimeError("no reminder within the tick and 30 s")
                await asyncio.sleep(0.0005)
            return led_at - instant, audio_at - instant


async def run(runs: int, tick: float) -> None:
    led: list[float] = []
    audio: list[float] = []
    for _ in range(runs):
        a, b = await one(tick)
        led.append(a * 1000)
        audio.append(b * 1000)
    for name, values in (("led_pattern", led), ("first_audio_sample", audio)):
        ordered = sorted(values)
        print(
            json.dumps(
                {
                    "bench": "reminder",
                    "to": name,
                    "tick_s": tick,
                    "runs": runs,
                    "median_ms": round(statistics.median(ordered), 1),
                    "p95_ms": round(nearest_rank(ordered, 0.95), 1),
                    "max_ms": round(ordered[-1], 1),
                    "python": platform.python_version(),
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tick", type=float, default=5.0, help="stationd's reminder tick (s)")
    args = parser.parse_args()
    asyncio.run(run(args.runs, args.tick))


if __name__ == "__main__":
    main()
