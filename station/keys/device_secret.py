"""The device secret: 32 random bytes mixed into every PIN-derived key.

So a copied SD card cannot be brute-forced elsewhere, every keyslot's key is derived from the
PIN *and* this secret. Here it lives in a 0600 file in the data directory; on a Pi with an OTP
key a :class:`DeviceSecretSource` backed by the OTP key takes its place. Only stationd (the
keeper: the unlock hand-over, staff enrollment) reads it; the staff UI never does.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Protocol

from station.keys.errors import DeviceSecretError
from station.storage.private_files import load_or_create_private_file

__all__ = ["DEVICE_SECRET_BYTES", "DeviceSecret", "DeviceSecretSource"]

DEVICE_SECRET_BYTES = 32


class DeviceSecretSource(Protocol):
    """Where the device secret comes from: a file here, the Pi's OTP key where available."""

    def load(self) -> bytes:
        """The 32-byte device secret; raises :class:`DeviceSecretError` if unusable."""
        ...


class DeviceSecret:
    """The device secret in a 0600 file in the data directory (the default source)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> bytes:
        """Read the secret, creating it on first use."""
        return self.load_or_create(self.path)

    @staticmethod
    def load_or_create(path: Path) -> bytes:
        """Return the 32-byte secret in ``path``, creating it atomically if absent.

        Refuses a file of the wrong size, not owned by this user, a symlink, or one any other
        user could read or write: the secret is what stops a copied SD card from being
        brute-forced, so a leaked or swapped one must not be used silently.
        """
        return load_or_create_private_file(
            path,
            make=lambda: secrets.token_bytes(DEVICE_SECRET_BYTES),
            size=DEVICE_SECRET_BYTES,
            what="device secret",
            error=DeviceSecretError,
        )
