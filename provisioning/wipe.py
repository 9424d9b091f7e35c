"""Crypto-wipe and decommission: delete every file :meth:`DataDir.inventory` names.

What is deleted is decided in one place, :meth:`station.storage.datadir.DataDir.wipe_list`:
every file that holds or unlocks personal data or a secret (the keyslots, the device secret,
the PIN counters, the outbox key, the store, the outbox, the EOJ settings, the hub rooms, the
signed configuration versions with their credentials); a decommission adds the station's
identity and enrollment. Two phases, so a power cut in between still ends wiped:

1. :func:`destroy_keys` (at once, while stationd runs): a ``wipe.pending`` marker is written
   first (saying which wipe), then every listed file stationd does not keep open is deleted.
   From this instant every sealed field in ``station.db`` and every note in ``outbox.db`` is
   ciphertext nobody can open (their keys are gone). A decommission's identity files go in
   :func:`forget_identity`, after the station has acknowledged the command with that identity.
2. :func:`finish_pending_wipe` (at stationd's next start, before anything is opened): every
   listed file is deleted again, including those that were open, and the marker removed.

A crypto-wipe keeps IT's pinned keys (``provisioning/config/state.json`` is rewritten to
hold nothing else but the version that was in force, the lowest it accepts again), so the
station stays enrolled and verifies its next configuration as before, without a downgrade.
The audit log (``audit.db``) is kept: the record that a wipe happened outlives it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Final, Literal

from station.storage.datadir import DataDir, DataFile, Holds
from station.storage.durable import atomic_write, fsync_dir

__all__ = [
    "WIPE_MARKER",
    "WipeKind",
    "destroy_keys",
    "finish_pending_wipe",
    "forget_identity",
    "wipe_pending",
]

WIPE_MARKER: Final = DataDir.WIPE_MARKER
WipeKind = Literal["crypto_wipe", "decommission"]
_KINDS: Final = ("crypto_wipe", "decommission")


def _delete(entry: DataFile, *, decommission: bool) -> set[Path]:
    """Delete one inventory entry; the directories whose entries changed."""
    touched: set[Path] = set()
    if entry.directory:
        try:
            children = list(entry.path.iterdir())
        except FileNotFoundError:
            return touched
        for child in children:
            if child.name in entry.keep and not decommission:
                continue
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                child.unlink()
                touched.add(entry.path)
        return touched
    with contextlib.suppress(FileNotFoundError):
        entry.path.unlink()
        touched.add(entry.path.parent)
    return touched


def _delete_all(entries: tuple[DataFile, ...], *, decommission: bool) -> None:
    touched: set[Path] = set()
    for entry in entries:
        touched |= _delete(entry, decommission=decommission)
    for directory in touched:
        fsync_dir(directory)


def _keep_only_pinned_keys(files: DataDir) -> None:
    """Rewrite the configuration state to IT's pinned keys alone (a crypto-wipe keeps them)."""
    path = files.provisioning_config / DataDir.CONFIG_STATE
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        raw = {}
    keys = raw.get("trusted_keys", []) if isinstance(raw, dict) else []
    state: dict[str, object] = {
        "trusted_keys": [str(k) for k in keys] if isinstance(keys, list) else []
    }
    # The version in force ("<version>-<hash>.json") stays the lowest one accepted again.
    current = raw.get("current") if isinstance(raw, dict) else None
    floor = raw.get("floor", 0) if isinstance(raw, dict) else 0
    if isinstance(current, str) and current.split("-", 1)[0].isdigit():
        floor = max(int(floor) if isinstance(floor, int) else 0, int(current.split("-", 1)[0]))
    if isinstance(floor, int) and floor > 0:
        state["floor"] = floor
    atomic_write(path, json.dumps(state, sort_keys=True).encode(), replace=True)


def wipe_pending(data_dir: Path) -> bool:
    """Whether a wipe was started and not finished."""
    return DataDir(data_dir).wipe_marker.exists()


def _pending_kind(files: DataDir) -> WipeKind:
    try:
        text = files.wipe_marker.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    # An unreadable marker finishes the wider wipe: a marker is never written by anyone else.
    return "crypto_wipe" if text in ("crypto_wipe", "crypto-wipe") else "decommission"


def destroy_keys(data_dir: Path, kind: WipeKind = "crypto_wipe") -> None:
    """Phase 1: the marker first, then every listed file stationd does not hold open.

    A decommission's identity files are left for :func:`forget_identity` (the station still
    signs its acknowledgement with them).
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown wipe kind {kind!r}")
    files = DataDir(data_dir)
    atomic_write(files.wipe_marker, f"{kind}\n".encode("ascii"), replace=True)
    now = tuple(
        f
        for f in files.wipe_list(decommission=False)
        if not f.open_while_running and f.holds is not Holds.IDENTITY
    )
    _delete_all(now, decommission=False)
    _keep_only_pinned_keys(files)


def forget_identity(data_dir: Path) -> None:
    """A decommission's last step: the station's identity and enrollment files."""
    files = DataDir(data_dir)
    identity = tuple(f for f in files.inventory() if f.holds is Holds.IDENTITY)
    _delete_all(identity, decommission=True)


def finish_pending_wipe(data_dir: Path) -> bool:
    """Phase 2 (before anything opens): every listed file again; True if a wipe finished."""
    if not wipe_pending(data_dir):
        return False
    files = DataDir(data_dir)
    decommission = _pending_kind(files) == "decommission"
    _delete_all(files.wipe_list(decommission=decommission), decommission=decommission)
    if not decommission:
        _keep_only_pinned_keys(files)
    files.wipe_marker.unlink()
    fsync_dir(data_dir)
    return True
