"""The UIs' import contracts catch what they promise: a deliberate violation breaks each.

``lint-imports`` runs on a copy of ``tui/`` in a temporary directory, with only the two
contracts from ``pyproject.toml`` that are about the UIs' own structure: the staff UI's
layers (the app above its screens, screens above widgets, ... the port to stationd at the
bottom) and "no import circle in the UIs". The copy as it is keeps both; one added import
breaks the one it should.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tui

ROOT = Path(tui.__file__).parent.parent
LAYERS = "The staff UI is layered"
NO_CIRCLE = "No import circle in the UIs"


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    chosen = [
        c for c in config["contracts"] if c["name"].startswith(LAYERS) or c["name"] == NO_CIRCLE
    ]
    assert len(chosen) == 2, "both contracts are in pyproject.toml"
    return chosen


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def copy(tmp_path: Path) -> Iterator[Path]:
    """``tui/`` copied beside a config that holds only the two contracts."""
    shutil.copytree(ROOT / "tui", tmp_path / "tui", ignore=shutil.ignore_patterns("__pycache__"))
    lines = ["[tool.importlinter]", 'root_packages = ["tui"]', ""]
    for contract in _contracts():
        lines.append("[[tool.importlinter.contracts]]")
        lines += [f"{key} = {_toml(value)}" for key, value in contract.items()]
        lines.append("")
    (tmp_path / "contracts.toml").write_text("\n".join(lines))
    yield tmp_path


def lint(copy: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the copy (it is first on the path, before the installed tree)."""
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--config",
            str(copy / "contracts.toml"),
            "--no-cache",
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_import(copy: Path, module: str, line: str) -> None:
    """Append ``line`` to ``module`` (a path inside the copy of ``tui``)."""
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}  # the deliberate violation\n")


def verdicts(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Contract name (its start) → KEPT or BROKEN, from lint-imports' summary."""
    text = " ".join(result.stdout.split())
    found = {}
    for name in (LAYERS, NO_CIRCLE):
        start = text.index(name)
        kept, broken = text.find("KEPT", start), text.find("BROKEN", start)
        candidates = [i for i in (kept, broken) if i >= 0]
        found[name] = "KEPT" if min(candidates) == kept else "BROKEN"
    return found


def test_the_ui_tree_as_it_is_keeps_both(copy: Path) -> None:
    result = lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verdicts(result) == {LAYERS: "KEPT", NO_CIRCLE: "KEPT"}


def test_a_screen_that_imports_the_app_breaks_the_layers_and_makes_a_circle(copy: Path) -> None:
    # The circle this contract was written against: a screen importing StaffApp to type
    # self.app, while the app imports the screens.
    add_import(copy, "tui/staff/screens/today.py", "from tui.staff.app import StaffApp")
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    assert verdicts(result) == {LAYERS: "BROKEN", NO_CIRCLE: "BROKEN"}
    assert "tui.staff.screens.today -> tui.staff.app" in result.stdout


def test_a_widget_that_reaches_up_to_a_screen_breaks_the_layers(copy: Path) -> None:
    # No circle (the dialogs module does not import the widget), but upside down.
    add_import(copy, "tui/staff/widgets/meter.py", "import tui.staff.screens.dialogs")
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    assert verdicts(result)[LAYERS] == "BROKEN"


def test_a_module_outside_the_layers_breaks_them(copy: Path) -> None:
    (copy / "tui/staff/helpers.py").write_text('"""A new module nobody placed."""\n')
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    assert verdicts(result) == {LAYERS: "BROKEN", NO_CIRCLE: "KEPT"}


def test_a_circle_in_the_locked_ui_breaks_the_no_circle_contract(copy: Path) -> None:
    # The lock screen's widgets importing the screens that import them: no staff layer is
    # involved, so only the circle contract can see it.
    add_import(copy, "tui/locked/widgets.py", "import tui.locked.screens")
    result = lint(copy)
    assert result.returncode == 1, result.stdout
    assert verdicts(result) == {LAYERS: "KEPT", NO_CIRCLE: "BROKEN"}
