"""Every import contract in pyproject.toml catches the violation it is there for.

``scripts/test`` runs ``lint-imports`` on the tree: that shows the contracts are kept. This
shows each one can fail: a copy of the packages gets one forbidden import added, and
``lint-imports --contract <id>`` run on the copy must report exactly that contract broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("station", "stationapi", "hardware", "tui", "provisioning", "hub", "kontaktstation")

#: contract id -> the violations it must catch: (the file that gets the import, the import).
VIOLATIONS: dict[str, list[tuple[str, str]]] = {
    "layers": [
        ("station/storage/store.py", "import station.daemon.app"),
        # The catalogue is below the base error: every package may translate, it uses none.
        ("station/i18n/__init__.py", "import station.errors"),
    ],
    "catalogue": [("station/i18n/__init__.py", "import textual")],
    "blind": [("station/daemon/api.py", "import station.keys.vault")],
    "outbox-key": [("station/export/outbox.py", "import station.keys.vault")],
    "media": [("station/call/engine.py", "import station.storage.store")],
    "keeper-libraries": [("station/keys/records.py", "import httpx")],
    "pure-core": [("station/core/cpr.py", "import sqlite3")],
    "uis": [("tui/staff/app.py", "import station.storage.store")],
    "locked-ui": [
        ("tui/locked/app.py", "import station.keys.records"),
        ("tui/locked/link.py", "import stationapi.staff"),
    ],
    "contract": [("stationapi/models.py", "import station.daemon.service")],
    "hardware": [("hardware/led.py", "import station.keys.vault")],
    "hub": [("hub/app.py", "import station.keys.vault")],
    "protocol": [("provisioning/schema.py", "import httpx")],
    "agent": [("provisioning/agent.py", "import hub.app")],
    "staff-ui-layers": [
        # A screen typing self.app with the app (the eight-file circle this was written for).
        ("tui/staff/screens/today.py", "from tui.staff.app import StaffApp"),
        # A widget reaching up to a screen (no circle, but upside down).
        ("tui/staff/widgets/meter.py", "import tui.staff.screens.dialogs"),
        # A new module nobody placed in the layers (exhaustive).
        ("tui/staff/helpers.py", '"""A new module."""'),
    ],
    # The lock screen's widgets importing the screens that import them.
    "ui-circles": [("tui/locked/widgets.py", "import tui.locked.screens")],
}
CASES = [(contract, *case) for contract, cases in VIOLATIONS.items() for case in cases]


def contract_ids() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [c["id"] for c in config["tool"]["importlinter"]["contracts"]]


def test_every_contract_has_a_violation_here() -> None:
    assert sorted(contract_ids()) == sorted(VIOLATIONS)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def lint(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [str(lint_imports), "--no-cache", "--contract", contract],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(("contract", "target", "line"), CASES)
def test_the_contract_catches_its_violation(
    copy: Path, contract: str, target: str, line: str
) -> None:
    path = copy / target
    original = path.read_text(encoding="utf-8") if path.exists() else None
    assert lint(copy, contract).returncode == 0, f"{contract} is broken before the violation"
    path.write_text((original or "") + f"\n{line}  # a deliberate violation\n", encoding="utf-8")
    try:
        result = lint(copy, contract)
    finally:
        if original is None:
            path.unlink()  # a new module that nobody placed
        else:
            path.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout + result.stderr
    if original is not None:  # the report names the forbidden import
        imported = line.split()[1]
        assert imported.rsplit(".", 1)[-1] in result.stdout, result.stdout
