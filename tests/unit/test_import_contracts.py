"""The contract package's import-linter contracts catch a deliberate violation.

``lint-imports`` runs against a copy of the tree (the packages and ``pyproject.toml``) with
two forbidden imports added: the locked UI's link importing the staff client, and the staff
client importing the blind storage (a module no other contract forbids, so each violation
breaks one contract). The copy comes first on ``PYTHONPATH``, so it is the copy
that is analysed; exactly the two contracts that forbid those imports must break, naming the
offending modules, and every other contract must still hold.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("station", "stationapi", "hardware", "tui", "provisioning", "hub", "kontaktstation")
LOCKED_UI_CONTRACT = (
    "The locked UI and the supervisor never import the staff client (no unlock, no records, "
    "no staff token)"
)
CONTRACT_PACKAGE_CONTRACT = (
    "The contract package imports nothing of stationd's wiring, storage or keys, nor a UI"
)

pytestmark = pytest.mark.slow


def _normalised(text: str) -> str:
    # lint-imports wraps long contract names over lines.
    return " ".join(text.split())


def test_the_contracts_break_on_a_forbidden_import(tmp_path: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static", "locale"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "tui" / "locked" / "link.py").open("a") as link:
        link.write("\nimport stationapi.staff  # deliberate violation\n")
    with (tmp_path / "stationapi" / "staff.py").open("a") as client:
        client.write("\nimport station.storage.datadir  # deliberate violation\n")

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--no-cache",
            "--no-logo",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = _normalised(result.stdout + result.stderr)
    assert result.returncode != 0, output
    assert f"{LOCKED_UI_CONTRACT} BROKEN" in output
    assert f"{CONTRACT_PACKAGE_CONTRACT} BROKEN" in output
    assert "Contracts: 9 kept, 2 broken." in output
    # Each broken contract names the import that broke it.
    assert "tui.locked.link -> stationapi.staff" in output
    assert "stationapi.staff -> station.storage.datadir" in output
