"""One version, written once (pyproject.toml), reported everywhere the same."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import station
from provisioning.agent import SOFTWARE_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_every_report_of_the_version_comes_from_the_installed_distribution() -> None:
    written = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    assert version("kontaktstation") == written
    assert station.__version__ == written
    assert written == SOFTWARE_VERSION  # what the heartbeat reports


def test_no_version_literal_outside_pyproject() -> None:
    written = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    literal = f'"{written}"'
    found = [
        str(path.relative_to(ROOT))
        for package in ("station", "hub", "provisioning", "tui", "hardware", "kontaktstation")
        for path in (ROOT / package).rglob("*.py")
        if literal in path.read_text("utf-8")
    ]
    assert found == []
