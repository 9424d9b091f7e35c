"""Durable small files: write to a temp file, fsync, rename (or link), fsync the directory.

The one writer for every small file that must survive a power cut: the station's private
keys (:func:`station.storage.private_files.write_private_file`), the provisioning agent's
state, identity and configurations, the hub's secret and IT's signing key.

A power cut at any instant leaves the old file or the new one, never a mix; a leftover
``.<name>.*.tmp`` is swept by :func:`sweep_temp_files`. ``step`` hooks name each point of a
write so the crash tests can SIGKILL a real process exactly there.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = ["StepHook", "atomic_write", "fsync_dir", "no_step", "sweep_temp_files"]

StepHook = Callable[[str], None]


def no_step(_name: str) -> None:
    """The default step hook: nothing."""


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: Path, data: bytes, *, replace: bool, mode: int = 0o600, step: StepHook = no_step
) -> None:
    """Write ``data`` to ``path`` atomically and durably (``replace=False``: fail if present)."""
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            step(f"{path.name}:written")
            os.fsync(fd)
        finally:
            os.close(fd)
        step(f"{path.name}:synced")
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
        step(f"{path.name}:renamed")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    step(f"{path.name}:dir_synced")


def sweep_temp_files(directory: Path) -> int:
    """Delete temp files a crash left behind in ``directory``; how many."""
    count = 0
    if not directory.is_dir():
        return 0
    for entry in directory.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                count += 1
    return count
