"""A power cut at every step of applying a configuration: a real child process, SIGKILLed.

The child applies version 2 over a station running version 1; a step hook kills it with
SIGKILL at the n-th step (every write, fsync, rename, the trial mark, the health check, the
commit). Afterwards the station starts as it would after the power came back, and must run
version 1 or version 2 whole (never a mix, never a file left half-written), and must accept
the next configuration: never bricked. A failing health check must end at version 1 for
every cut.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning.configstore import ConfigStore, HealthVerdict
from provisioning.protocol import SignedEnvelope, b64encode, public_key_bytes, seal_envelope
from provisioning.schema import StationConfig

STATION = "stationbbbbbbbbbbbbbbbbb"
KEY = Ed25519PrivateKey.generate()
PUBLIC = b64encode(public_key_bytes(KEY))

CHILD = r"""
import asyncio, os, signal, sys
from pathlib import Path
from provisioning.configstore import ConfigStore, HealthVerdict
from provisioning.protocol import SignedEnvelope

data_dir, station, kill_at, envelope_file, healthy = sys.argv[1:6]
seen = {}

def step(name):
    seen[name] = seen.get(name, 0) + 1
    label = f"{name}#{seen[name]}"
    print(label, flush=True)
    if label == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

async def check(config):
    step("health_check")
    return HealthVerdict(healthy == "1", "" if healthy == "1" else "turn_unreachable")

async def main():
    store = ConfigStore.open(Path(data_dir), station, step=step)
    envelope = SignedEnvelope.model_validate_json(Path(envelope_file).read_text())
    try:
        await store.apply(envelope, check)
    except Exception as exc:
        print("refused", type(exc).__name__, flush=True)
    print("DONE", flush=True)

asyncio.run(main())
"""


def envelope(version: int) -> SignedEnvelope:
    payload: dict[str, Any] = {
        "format": "kontaktstation-config-1",
        "station_id": STATION,
        "version": version,
        "issued_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        "rollback_of": None,
        "trusted_config_keys": [PUBLIC],
        "config": {
            "care_home": {"id": "solhaven", "name": "Solhaven"},
            "station_name": f"Stue v{version}",
            "clinics": [
                {
                    "id": f"clinic-{version}",
                    "name": "Lægehuset",
                    "provider_number": "057584",
                    "video_room": "room-1",
                }
            ],
        },
    }
    return seal_envelope(KEY, "config", payload)


async def ok(_config: StationConfig) -> HealthVerdict:
    return HealthVerdict(True)


def run_child(data_dir: Path, kill_at: str, envelope_file: Path, healthy: bool) -> tuple[int, str]:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(data_dir),
            STATION,
            kill_at,
            str(envelope_file),
            "1" if healthy else "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    return result.returncode, result.stdout


@pytest.fixture
async def base(tmp_path: Path) -> Path:
    """A station data directory running version 1."""
    data = tmp_path / "base"
    data.mkdir(mode=0o700)
    store = ConfigStore.open(data, STATION)
    store.pin_keys([PUBLIC])
    await store.apply(envelope(1), ok)
    return data


@pytest.mark.slow
@pytest.mark.parametrize("healthy", [True, False], ids=["healthy", "failing-check"])
async def test_power_cut_at_every_step_never_half_applies(
    base: Path, tmp_path: Path, healthy: bool
) -> None:
    v2 = tmp_path / "v2.json"
    v2.write_text(envelope(2).model_dump_json())
    # A full run first, to learn every step's name.
    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    code, out = run_child(probe, "never", v2, healthy)
    assert code == 0 and out.strip().endswith("DONE"), out
    steps = [line for line in out.splitlines() if "#" in line]
    assert "health_check#1" in steps and len(steps) >= 10, steps
    committed_at = steps.index("state.json:renamed#2") if healthy else len(steps)

    for index, step in enumerate(steps):
        data = tmp_path / f"cut-{index}"
        shutil.copytree(base, data)
        code, out = run_child(data, step, v2, healthy)
        assert code == -signal.SIGKILL, (step, code, out)
        assert "DONE" not in out

        # The power is back: the station starts.
        store = ConfigStore.open(data, STATION)
        assert store.current is not None, f"no configuration after a cut at {step}"
        expected = 2 if index >= committed_at else 1
        assert store.version == expected, f"cut at {step}: version {store.version}"
        assert store.current.config.station_name == f"Stue v{expected}"
        assert store.current.config.clinics[0].id == f"clinic-{expected}"
        leftovers = [p.name for p in store.directory.iterdir() if p.name.endswith(".tmp")]
        assert leftovers == [], f"cut at {step} left {leftovers}"
        # Never bricked: the next configuration applies.
        applied = await store.apply(envelope(3), ok)
        assert applied is not None and store.version == 3, f"bricked after a cut at {step}"


async def test_two_interrupted_trials_refuse_that_version(base: Path, tmp_path: Path) -> None:
    v2 = tmp_path / "v2.json"
    v2.write_text(envelope(2).model_dump_json())
    for attempt in (1, 2):
        code, _out = run_child(base, "health_check#1", v2, True)
        assert code == -signal.SIGKILL
        store = ConfigStore.open(base, STATION)
        assert store.version == 1, attempt
    code, out = run_child(base, "never", v2, True)
    assert code == 0 and "refused ConfigRejected" in out
    assert ConfigStore.open(base, STATION).version == 1
