"""Issue 15, item 1: the station installs on a Raspberry Pi from wheels, on trixie (CPython
3.13) and on Bookworm (3.11), with apt's numpy. ``scripts/platform-wheels`` resolves it with
pip's resolver for the boards' platforms (scripts/test runs it before pytest, where there is
no network) and keeps the report; this test holds the report to what the Pi needs."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _report() -> dict[str, dict[str, object]]:
    result = subprocess.run(
        [str(ROOT / "scripts/platform-wheels"), "--print"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode == 3:
        pytest.fail("no platform report for these dependencies: run scripts/platform-wheels")
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip().split("=", 1)[1])
    report: dict[str, dict[str, object]] = json.loads(path.read_text())
    return report


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "_", text).lower()


def test_every_runtime_dependency_has_a_wheel_for_both_raspberry_pi_releases() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        wanted = {
            _name(re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0])
            for dep in tomllib.load(f)["project"]["dependencies"]
        }
    report = _report()
    assert set(report) == {"trixie", "bookworm"}
    for release, python, numpy in (("trixie", "3.13", "2.2.4"), ("bookworm", "3.11", "1.24.2")):
        target = report[release]
        assert target["python"] == python
        files = target["files"]
        assert isinstance(files, list) and files
        names = {_name(f.split("-", 1)[0]) for f in files}
        assert wanted <= names, f"{release}: not resolved: {sorted(wanted - names)}"
        cp = "cp" + python.replace(".", "")
        for wheel in files:
            assert wheel.endswith(".whl"), f"{release}: {wheel} is not a wheel"
            tags = wheel[: -len(".whl")].split("-")[-3:]
            interpreter, abi, platform = tags
            # Pure Python, or built for the Pi: aarch64, and this CPython (or the stable ABI).
            assert platform == "any" or "aarch64" in platform, f"{release}: {wheel}"
            assert platform == "any" or abi == "abi3" or cp in interpreter, f"{release}: {wheel}"
        # numpy is apt's (what apt's simplejpeg and picamera2 are built against).
        assert any(f.startswith(f"numpy-{numpy}-") for f in files), release
