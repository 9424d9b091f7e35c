"""The station's data directory: every file stationd keeps, named in one place.

The names used to be literals spread over the modules that open the files, and they drifted
(the PIN counters were ``pin_attempts.db`` in stationd and ``pin_attempts.sqlite3`` in the
self-check). :class:`DataDir` owns them now: the modules that open a file take its path from
here, the wipe deletes by these names, and ``ARCHITECTURE.md``'s "data at rest" table is this
class written out.

It only names paths: it opens, creates and deletes nothing (so every layer may use it, from
the key holder to the provisioning agent), except :meth:`DataDir.ensure_provisioning`.

:meth:`DataDir.inventory` is the one list of every file that holds or unlocks personal data,
secrets or the station's identity, each with what it holds and whether stationd keeps it open
while it runs. The remote crypto-wipe and decommission (:mod:`provisioning.wipe`) delete by
this list and nothing else, so a file added here is wiped, and a file a station writes that is
*not* here is caught by the test that fills a data directory as a real station does and lists
it after the wipe (``tests/integration/test_wipe_everything.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Final

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "DataDir",
    "DataFile",
    "Holds",
    "data_dir",
    "sqlite_family",
]

#: The production location (systemd's ``StateDirectory=kontaktstation``).
DEFAULT_DATA_DIR: Final = Path("/var/lib/kontaktstation")
DATA_DIR_ENV: Final = "KONTAKTSTATION_DATA_DIR"


def data_dir() -> Path:
    """The station's data directory: ``KONTAKTSTATION_DATA_DIR`` or the production default."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value) if value else DEFAULT_DATA_DIR


#: SQLite keeps a database in up to four files.
_SQLITE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")


def sqlite_family(path: Path) -> tuple[Path, ...]:
    """``path`` and the write-ahead log, shared-memory and rollback files SQLite adds to it."""
    return tuple(path.with_name(path.name + suffix) for suffix in _SQLITE_SUFFIXES)


class Holds(StrEnum):
    """What a file in the data directory holds, which decides which wipe deletes it."""

    #: Personal data (sealed or not): deleted by a crypto-wipe and a decommission.
    PERSONAL_DATA = "personal_data"
    #: A key or secret that opens personal data: deleted by both, at once.
    KEY = "key"
    #: A credential for another system (EOJ client secret, TURN, hub rooms): deleted by both.
    SECRET = "secret"  # noqa: S105 (a category, not a secret)
    #: The station's identity and enrollment with the hub (and the IT keys it pinned): a
    #: crypto-wipe keeps it, so the station stays enrolled; a decommission deletes it.
    IDENTITY = "identity"


@dataclass(frozen=True, slots=True)
class DataFile:
    """One entry of :meth:`DataDir.inventory`."""

    path: Path
    holds: Holds
    #: stationd keeps it open while it runs: a wipe makes it unreadable at once (its key
    #: goes) and deletes it at the next start, before it is opened again.
    open_while_running: bool = False
    #: A directory whose every file is meant (its contents go, the directory stays);
    #: ``keep`` names files in it a crypto-wipe leaves (a decommission deletes them too).
    directory: bool = False
    keep: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataDir:
    """stationd's data directory (``KONTAKTSTATION_DATA_DIR``) and the files in it."""

    root: Path

    # The names, once. Class attributes so modules can name a default file without a root.
    STORE: ClassVar[str] = "station.db"
    AUDIT: ClassVar[str] = "audit.db"
    KEYSLOTS: ClassVar[str] = "keyslots.json"
    DEVICE_SECRET: ClassVar[str] = "device.secret"  # noqa: S105 (a file name)
    PIN_ATTEMPTS: ClassVar[str] = "pin_attempts.db"
    OUTBOX: ClassVar[str] = "outbox.db"
    OUTBOX_KEY: ClassVar[str] = "outbox.key"
    EXPORT_CONFIG: ClassVar[str] = "export.json"
    CALL_ROOMS: ClassVar[str] = "call_rooms.json"
    PROVISIONING: ClassVar[str] = "provisioning"
    WIPE_MARKER: ClassVar[str] = "wipe.pending"
    #: Releases fetched for the updater, and the request it acts on (provisioning.updates).
    UPDATES: ClassVar[str] = "updates"
    # Inside ``provisioning/`` (the agent's files; provisioning.identity and .agent use these).
    IDENTITY_KEY: ClassVar[str] = "identity.key"
    REQUEST_COUNTER: ClassVar[str] = "counter"
    ENROLLMENT: ClassVar[str] = "enrollment.json"
    COMMAND_LEDGER: ClassVar[str] = "commands.json"
    OFFLINE_QUEUE: ClassVar[str] = "offline.json"
    CONFIG_DIR: ClassVar[str] = "config"
    #: In ``provisioning/config/``: which version is current, and IT's pinned keys.
    CONFIG_STATE: ClassVar[str] = "state.json"

    @property
    def store(self) -> Path:
        """The blind store: clear metadata, sealed personal fields, wrapped consultation keys."""
        return self.root / self.STORE

    @property
    def audit(self) -> Path:
        """The hash-chained audit log (pseudonymous ids only; outlives purges and wipes)."""
        return self.root / self.AUDIT

    @property
    def keyslots(self) -> Path:
        """The vault key wrapped per staff member and for IT's escrow."""
        return self.root / self.KEYSLOTS

    @property
    def device_secret(self) -> Path:
        """The device secret mixed into every keyslot's key (a file where no OTP key exists)."""
        return self.root / self.DEVICE_SECRET

    @property
    def pin_attempts(self) -> Path:
        """Wrong-PIN counters, so back-off survives restarts and power loss."""
        return self.root / self.PIN_ATTEMPTS

    @property
    def outbox(self) -> Path:
        """EOJ exports waiting for delivery, sealed to the outbox key."""
        return self.root / self.OUTBOX

    @property
    def outbox_key(self) -> Path:
        """The outbox's private key (stationd holds it: something must send the note)."""
        return self.root / self.OUTBOX_KEY

    @property
    def export_config(self) -> Path:
        """The EOJ endpoint's settings (with its client secret)."""
        return self.root / self.EXPORT_CONFIG

    @property
    def call_rooms(self) -> Path:
        """Which consultation has which hub room (no personal data)."""
        return self.root / self.CALL_ROOMS

    @property
    def provisioning(self) -> Path:
        """The station's identity and its signed configuration versions."""
        return self.root / self.PROVISIONING

    @property
    def wipe_marker(self) -> Path:
        """Written first by a crypto-wipe; its presence finishes the wipe at the next start."""
        return self.root / self.WIPE_MARKER

    @property
    def updates(self) -> Path:
        """Release archives fetched for the updater, and its request (with a copy of the
        signed configuration, so its credentials: a secret)."""
        return self.root / self.UPDATES

    def ensure_provisioning(self) -> Path:
        """The provisioning directory, created 0700 if missing."""
        path = self.provisioning
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    @property
    def provisioning_config(self) -> Path:
        """The signed configuration versions (they carry the EOJ and TURN credentials)."""
        return self.provisioning / self.CONFIG_DIR

    def inventory(self) -> tuple[DataFile, ...]:
        """Every file that holds or unlocks personal data, secrets or identity (module docs).

        Not in it: ``audit.db`` (pseudonymous evidence that must outlive a wipe) and the
        wipe's own marker.
        """
        prov = self.provisioning
        return (
            # What opens the sealed personal data, and the PIN counters (staff ids, hashed).
            DataFile(self.keyslots, Holds.KEY),
            DataFile(self.keyslots.with_name(self.KEYSLOTS + ".lock"), Holds.KEY),
            DataFile(self.device_secret, Holds.KEY),
            *(DataFile(p, Holds.KEY) for p in sqlite_family(self.pin_attempts)),
            DataFile(self.outbox_key, Holds.KEY),
            # The personal data itself (sealed), deleted before it is opened again.
            *(DataFile(p, Holds.PERSONAL_DATA, True) for p in sqlite_family(self.store)),
            *(DataFile(p, Holds.PERSONAL_DATA, True) for p in sqlite_family(self.outbox)),
            # Credentials for other systems.
            DataFile(self.export_config, Holds.SECRET),
            DataFile(self.call_rooms, Holds.SECRET, True),
            DataFile(self.updates, Holds.SECRET, directory=True),
            DataFile(
                self.provisioning_config, Holds.SECRET, directory=True, keep=(self.CONFIG_STATE,)
            ),
            # Who the station is to the hub.
            DataFile(self.provisioning_config / self.CONFIG_STATE, Holds.IDENTITY),
            DataFile(prov / self.IDENTITY_KEY, Holds.IDENTITY),
            DataFile(prov / self.REQUEST_COUNTER, Holds.IDENTITY),
            DataFile(prov / self.ENROLLMENT, Holds.IDENTITY),
            DataFile(prov / self.COMMAND_LEDGER, Holds.IDENTITY),
            DataFile(prov / self.OFFLINE_QUEUE, Holds.IDENTITY),
        )

    def wipe_list(self, *, decommission: bool) -> tuple[DataFile, ...]:
        """What a crypto-wipe (or, with ``decommission``, a decommission) deletes."""
        return tuple(f for f in self.inventory() if decommission or f.holds is not Holds.IDENTITY)
