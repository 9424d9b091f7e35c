"""What each process really loads, beside what the import contracts say statically.

A subprocess imports a process's entry module (as its command does) and reports
``sys.modules``: stationd never loads the record code, the staff UI never loads stationd's
wiring or the blind storage, the hub never loads the station's keys, wiring, contract or UIs.
The locked UI's own check is tests/tui/test_locked_imports.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CASES = {
    # stationd: blind. The keyring is loaded only at the first unlock (inside the hand-over).
    "station.daemon.app": (
        "station.daemon.service",
        (
            "station.keys.records", "station.keys.keyring", "station.keys.pin_guard",
            "station.keys.vault", "textual", "tui", "hub", "kontaktstation",
        ),
    ),
    # The staff UI: keys and records yes (it is the key holder), stationd's insides no.
    "tui.staff.app": (
        "station.keys.records",
        (
            "station.daemon", "station.storage", "station.call", "hub", "provisioning",
            "uvicorn", "fastapi", "aiortc",
        ),
    ),
    # The hub: the shared provisioning protocol, nothing of the station's keys or wiring.
    "hub.app": (
        "provisioning.protocol",
        (
            "station.keys", "station.daemon", "station.call", "station.export", "stationapi",
            "tui", "hardware", "aiortc", "provisioning.agent",
        ),
    ),
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(CASES))
def test_a_process_loads_only_what_it_may(module: str) -> None:
    expected, forbidden = CASES[module]
    script = f"import {module}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert expected in loaded  # the import really happened
    bad = sorted(
        m for m in loaded if m in forbidden or m.startswith(tuple(f + "." for f in forbidden))
    )
    assert bad == []
