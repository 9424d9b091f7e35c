"""The unlock hand-over: the one place stationd touches the vault key's material.

stationd is blind: it stores only ciphertext it cannot read. One deliberate exception makes
unlocking work: stationd checks the PIN (its PIN guard and the device secret never leave it)
and hands the vault key to the staff UI once, over its Unix socket, keeping no copy. This
module is that exception, fenced: :class:`KeyringAccess` loads the keyring behind its PIN
guard, unwraps the vault key for one verified PIN, copies it out for the caller (who passes
it on and zeroes it) and zeroes its own. stationd's wiring may import key code only from here
and from :mod:`station.keys.boxes` (sealing to the vault's public key); an import-linter
contract in ``pyproject.toml`` holds it to that.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from station.core.clock import Clock
from station.storage.datadir import DataDir

__all__ = ["KeyVerifier", "KeyringAccess"]


class KeyVerifier(Protocol):
    """Checks a staff member's PIN (the keyring behind a PIN guard)."""

    def verify(self, staff_number: str, pin: str) -> tuple[str, bytearray]:
        """The pseudonymous staff id and the vault key if the PIN opens the slot with that
        staff number (the caller zeroes the key); raise otherwise. Blocking."""
        ...

    def vault_public_key(self) -> bytes | None:
        """The vault's public key for sealed boxes, or None without a keyring."""
        ...

    def staff_for_number(self, staff_number: str) -> str | None:
        """The pseudonymous id whose slot has this number (only for what the audit may name)."""
        ...


class KeyringAccess:
    """The keyring in the data directory, loaded when first needed (provisioning may add it).

    ``verify`` unwraps the vault key through the keyring's PIN guard and hands a copy to the
    caller (:meth:`StationService.unlock`, which passes it to the staff UI and zeroes it);
    the keyring's own :class:`~station.keys.vault.VaultKey` is zeroed before ``verify`` returns.
    """

    def __init__(
        self, data_dir: Path, clock: Clock, *, environ: Mapping[str, str] | None = None
    ) -> None:
        """The device secret's source is the one ``environ`` names
        (``KONTAKTSTATION_DEVICE_SECRET``; :mod:`station.keys.device_secret`); an unknown name
        raises here, at stationd's start. ``environ`` None: the file in ``data_dir``."""
        from station.keys.device_secret import device_secret_source

        self._data_dir = data_dir
        self._clock = clock
        #: Where the device secret comes from (also handed to staff enrollment).
        self.secret_source: Any = device_secret_source(data_dir, environ or {})
        self._keyring: Any = None
        self._guard: Any = None

    def _load(self) -> Any:
        # Imported here: the keyring pulls in argon2, which nothing else in stationd needs.
        from station.keys.keyring import Keyring
        from station.keys.pin_guard import PinGuard

        if self._keyring is None:
            files = DataDir(self._data_dir)
            path = files.keyslots
            secret = self.secret_source.load()
            if self._guard is None:
                self._guard = PinGuard(files.pin_attempts, self._clock, device_secret=secret)
            self._keyring = Keyring.load(path, secret, guard=self._guard)
        return self._keyring

    def verify(self, staff_number: str, pin: str) -> tuple[str, bytearray]:
        """Guarded PIN check (one Argon2id evaluation): the staff id and the vault key (the
        caller zeroes it), or the keyring's and PIN guard's errors. Blocking."""
        staff_id, vault_key = self._load().open(staff_number, pin)
        try:
            # The one accessor for the raw key; the copy goes straight to the staff UI.
            return staff_id, bytearray(vault_key._material())
        finally:
            vault_key.zero()

    def vault_public_key(self) -> bytes | None:
        """The vault's public key, or None when the station has no keyring yet."""
        from station.keys.keyring import KeyringNotFound

        try:
            key: bytes = self._load().vault_public_key()
        except KeyringNotFound:
            return None
        return key

    def staff_for_number(self, staff_number: str) -> str | None:
        """The id whose slot has this number; None without one (or without a keyring)."""
        try:
            found: str | None = self._load().numbers().get(staff_number)
        except Exception:  # an unreadable keyring names nobody
            return None
        return found

    def close(self) -> None:
        """Close the PIN guard's database."""
        if self._guard is not None:
            self._guard.close()
            self._guard = None
        self._keyring = None
