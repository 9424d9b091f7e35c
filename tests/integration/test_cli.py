"""The README's run command today: the self-check, through the real console command."""

from __future__ import annotations

import subprocess
import sys


def test_self_check_command_passes_and_prints_no_personal_data() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kontaktstation.cli", "self-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-check: 10 passed, 0 failed" in done.stdout
    for secret in ("Åse", "Østergård", "Bøgh", "070761", "Stue 12", "Hører"):
        assert secret not in done.stdout + done.stderr


def test_hw_check_passes_on_the_fake_hardware_and_fails_clearly_without_it() -> None:
    import os

    env = {**os.environ, "KONTAKTSTATION_HARDWARE": "fake"}
    done = subprocess.run(
        [sys.executable, "-m", "kontaktstation.cli", "hw-check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 of 5 checks passed" in done.stdout

    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KONTAKTSTATION_", "GPIOZERO_"))
    }
    env |= {"KONTAKTSTATION_CAMERA": "v4l2", "KONTAKTSTATION_V4L2_DEVICE": "/dev/no-such-camera"}
    done = subprocess.run(
        [sys.executable, "-m", "kontaktstation.cli", "hw-check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 1
    assert "FAIL" in done.stdout


def test_pass_through_commands_take_their_own_help() -> None:
    for command in ("daemon", "hub", "hw-check"):
        done = subprocess.run(
            [sys.executable, "-m", "kontaktstation.cli", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, command + done.stderr
        assert f"usage: kontaktstation {command}" in done.stdout or "usage:" in done.stdout


_CRASH = """
import ctypes, sys
from hardware.system_alsa import use_system_alsa_lib
use_system_alsa_lib()  # as the command does, before the daemon's modules import av
import station.daemon.app as app
from kontaktstation.cli import main

def crash(argv):
    ctypes.string_at(0)  # a read of address 0: what a bug in native code does
    return 0

app.main = crash
sys.exit(main(sys.argv[1:]))
"""


def test_a_crash_in_native_code_says_where_it_was_in_the_services_journal() -> None:
    # stationd's crash in the booted appliance was a bare `status=11/SEGV`; its unit's standard
    # error is the journal, so the command itself turns on Python's fault handler.
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, "daemon"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -11, done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert ", line " in done.stderr and "in crash" in done.stderr, done.stderr
    # A UI's standard error is the screen: no trace there.
    done = subprocess.run(
        [sys.executable, "-c", _CRASH.replace("station.daemon.app", "tui.uihost"), "ui-host"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -11
    assert "Fatal Python error" not in done.stderr
