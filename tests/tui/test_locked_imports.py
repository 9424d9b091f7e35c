"""The locked UI and the supervisor never load vault, keyring, record, store or crypto code,
nor the staff client (no unlock, no records, no staff token) or stationd's wiring.

A subprocess imports the app (and builds it, as ``python -m tui.locked`` does) and reports
``sys.modules``; the import-linter contracts in pyproject.toml say the same statically.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = (
    "station.keys.vault",
    "station.keys.keyring",
    "station.keys.records",
    "station.storage.store",
    "station.keys.crypto",
    "station.keys.pin_guard",
    "station.storage.audit",
    "cryptography",
    "argon2",
    # The staff UI's client: the locked UI talks to stationd through stationapi.locked only.
    "stationapi.staff",
    "station.daemon",
)


@pytest.mark.parametrize(
    "code",
    [
        "import tui.locked.app as a; a.create_app('/nonexistent.sock', supervisor_socket='/x')",
        "import tui.locked.link, tui.locked.screens, tui.locked.widgets",
        "import tui.supervisor",
    ],
)
def test_no_key_or_record_code_is_loaded(code: str) -> None:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "textual" in loaded or "tui.supervisor" in loaded  # the import really happened
    assert "stationapi.locked" in loaded  # and it talks to stationd through the locked client
    bad = sorted(
        m for m in loaded if m in FORBIDDEN or m.startswith(tuple(f + "." for f in FORBIDDEN))
    )
    assert bad == []


def test_the_kiosk_environment_drops_textual_switches() -> None:
    from tui.locked import kiosk_environment

    env = {"TEXTUAL": "devtools,debug", "TEXTUAL_SCREENSHOT": "1", "PATH": "/bin"}
    assert sorted(kiosk_environment(env)) == ["TEXTUAL", "TEXTUAL_SCREENSHOT"]
    assert env == {"PATH": "/bin"}
