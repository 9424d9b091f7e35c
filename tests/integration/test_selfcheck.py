"""The README's run command today: the self-check, through the real console command."""

from __future__ import annotations

import subprocess
import sys


def test_self_check_command_passes_and_prints_no_personal_data() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "station.cli", "self-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-check: 10 passed, 0 failed" in done.stdout
    for secret in ("Åse", "Østergård", "Bøgh", "070761", "Stue 12", "Hører"):
        assert secret not in done.stdout + done.stderr
