"""The station's data directory: every file stationd keeps, named in one place.

The names used to be literals spread over the modules that open the files, and they drifted
(the PIN counters were ``pin_attempts.db`` in stationd and ``pin_attempts.sqlite3`` in the
self-check). :class:`DataDir` owns them now: the modules that open a file take its path from
here, the wipe deletes by these names, and ``ARCHITECTURE.md``'s "data at rest" table is this
class written out.

It only names paths: it opens, creates and deletes nothing (so every layer may use it, from
the key holder to the provisioning agent), except :meth:`DataDir.ensure_provisioning`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Final

__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "DataDir", "data_dir", "sqlite_family"]

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

    def ensure_provisioning(self) -> Path:
        """The provisioning directory, created 0700 if missing."""
        path = self.provisioning
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def key_files(self) -> tuple[Path, ...]:
        """Every file a crypto-wipe deletes at once: what opens the sealed personal data."""
        return (
            self.keyslots,
            self.keyslots.with_name(self.KEYSLOTS + ".lock"),
            self.device_secret,
            *sqlite_family(self.pin_attempts),
        )

    def store_files(self) -> tuple[Path, ...]:
        """The blind store's files (deleted when a wipe finishes, before the store opens)."""
        return sqlite_family(self.store)
