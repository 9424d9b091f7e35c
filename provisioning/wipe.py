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

from station.storage.datadir import DataDir
from station.storage.durable import atomic_write, fsync_dir

__all__ = ["WIPE_MARKER", "destroy_keys", "finish_pending_wipe", "wipe_pending"]

WIPE_MARKER: Final = DataDir.WIPE_MARKER


def _unlink_all(data_dir: Path, paths: tuple[Path, ...]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    fsync_dir(data_dir)


def wipe_pending(data_dir: Path) -> bool:
    """Whether a wipe was started and not finished."""
    return DataDir(data_dir).wipe_marker.exists()


def destroy_keys(data_dir: Path) -> None:
    """Phase 1: marker first, then every key that opens personal data."""
    files = DataDir(data_dir)
    atomic_write(files.wipe_marker, b"crypto-wipe\n", replace=True)
    _unlink_all(data_dir, files.key_files())


def finish_pending_wipe(data_dir: Path) -> bool:
    """Phase 2 (before the store opens): delete the store's files; True if a wipe finished."""
    if not wipe_pending(data_dir):
        return False
    files = DataDir(data_dir)
    _unlink_all(data_dir, files.key_files())  # again: phase 1 may have been cut short
    _unlink_all(data_dir, files.store_files())
    files.wipe_marker.unlink()
    fsync_dir(data_dir)
    return True
