"""Crypto-wipe: make every piece of personal data on the station unreadable, then delete it.

Two phases, so a power cut in between still ends wiped:

1. :func:`destroy_keys` (at once, while stationd runs): the keyslots file (every staff slot
   *and* IT's escrow slot: the only wrappings of the vault key), the device secret and the
   PIN counters are deleted, and a ``wipe.pending`` marker is written first. From this
   instant every sealed field in ``station.db`` is ciphertext nobody can open.
2. :func:`finish_pending_wipe` (at stationd's next start, before the store opens): the blind
   store's files are deleted and the marker removed.

The audit log (``audit.db``) is kept: the record that a wipe happened outlives it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Final

from station.durable import atomic_write, fsync_dir

__all__ = ["WIPE_MARKER", "destroy_keys", "finish_pending_wipe", "wipe_pending"]

WIPE_MARKER: Final = "wipe.pending"
_KEY_FILES: Final = (
    "keyslots.json",
    "keyslots.json.lock",
    "device.secret",
    "pin_attempts.db",
    "pin_attempts.db-wal",
    "pin_attempts.db-shm",
)
_STORE_FILES: Final = ("station.db", "station.db-wal", "station.db-shm", "station.db-journal")


def _unlink_all(data_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()
    fsync_dir(data_dir)


def wipe_pending(data_dir: Path) -> bool:
    """Whether a wipe was started and not finished."""
    return (data_dir / WIPE_MARKER).exists()


def destroy_keys(data_dir: Path) -> None:
    """Phase 1: marker first, then every key that opens personal data."""
    atomic_write(data_dir / WIPE_MARKER, b"crypto-wipe\n", replace=True)
    _unlink_all(data_dir, _KEY_FILES)


def finish_pending_wipe(data_dir: Path) -> bool:
    """Phase 2 (before the store opens): delete the store's files; True if a wipe finished."""
    if not wipe_pending(data_dir):
        return False
    _unlink_all(data_dir, _KEY_FILES)  # again: phase 1 may have been cut short
    _unlink_all(data_dir, _STORE_FILES)
    (data_dir / WIPE_MARKER).unlink()
    fsync_dir(data_dir)
    return True
