"""stationd's process runs one alsa-lib, the system's, not PyAV's bundled copy beside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HAVE_SYSTEM_ALSA = Path("/usr/share/alsa/alsa.conf").is_file()

_OPEN_A_LOUDSPEAKER = """
import asyncio, sys
if sys.argv[1] == "system":
    from hardware.system_alsa import use_system_alsa_lib
    assert use_system_alsa_lib()
from hardware.audio.pyav import PyAVSpeaker
asyncio.run(PyAVSpeaker("null").check())
"""


def _where_pyav_opens_pcms(tmp_path: Path, mode: str) -> set[str]:
    """The libraries PyAV's ``libavdevice`` binds ``snd_pcm_open`` to, from the dynamic
    linker's own record (``LD_DEBUG=bindings``) of a process that opens ALSA's null device."""
    log = tmp_path / f"bindings-{mode}"
    env = {**os.environ, "LD_DEBUG": "bindings", "LD_DEBUG_OUTPUT": str(log)}
    subprocess.run(
        [sys.executable, "-c", _OPEN_A_LOUDSPEAKER, mode], env=env, check=True, timeout=60
    )
    found = set()
    for path in tmp_path.glob(f"bindings-{mode}.*"):
        for line in path.read_text(errors="replace").splitlines():
            if "libavdevice" in line and "`snd_pcm_open'" in line:
                found.add(line.split(" to ", 1)[1].split(" [", 1)[0])
    return found


@pytest.mark.skipif(not HAVE_SYSTEM_ALSA, reason="no system alsa-lib on this machine")
def test_pyav_opens_sound_devices_through_the_systems_alsa_lib(tmp_path: Path) -> None:
    # Without it, PyAV's own alsa-lib runs the PCM while the system's plugins bring the
    # system's in beside it (hardware/system_alsa.py says why that is a hazard).
    bundled = _where_pyav_opens_pcms(tmp_path, "bundled")
    assert bundled and all("av.libs" in lib for lib in bundled), bundled
    system = _where_pyav_opens_pcms(tmp_path, "system")
    assert system and not any("av.libs" in lib for lib in system), system
    assert all(Path(lib).name.startswith("libasound.so.2") for lib in system), system


def test_it_must_come_before_av_is_imported() -> None:
    code = "import av\nfrom hardware.system_alsa import use_system_alsa_lib\nuse_system_alsa_lib()"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "must run before av is imported" in result.stderr


def test_a_machine_without_it_says_so_in_the_log() -> None:
    code = (
        "import hardware.system_alsa as s\n"
        "s.SYSTEM_ALSA_LIB = 'libasound-not-here.so.2'\n"
        "assert s.use_system_alsa_lib() is False\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "did not load" in result.stderr and "bundled copy serves alone" in result.stderr
