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

from pathlib import Path
from typing import Any, Protocol

from station.core.clock import Clock
from station.storage.datadir import DataDir

__all__ = ["KeyVerifier", "KeyringAccess"]


class KeyVerifier(Protocol):
    """Checks a staff member's PIN (the keyring behind a PIN guard)."""

    def verify(self, staff_id: str, pin: str) -> bytearray:
        """The vault key if the PIN opens the slot (the caller zeroes it); raise otherwise.

        Blocking.
        """
        ...

    def vault_public_key(self) -> bytes | None:
        """The vault's public key for sealed boxes, or None without a keyring."""
        ...

    def is_enrolled(self, staff_id: str) -> bool:
        """Whether ``staff_id`` has a keyslot (only to decide what the audit may name)."""
        ...


class KeyringAccess:
    """The keyring in the data directory, loaded when first needed (provisioning may add it).

    ``verify`` unwraps the vault key through the keyring's PIN guard and hands a copy to the
    caller (:meth:`StationService.unlock`, which passes it to the staff UI and zeroes it);
    the keyring's own :class:`~station.keys.vault.VaultKey` is zeroed before ``verify`` returns.
    """

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self._data_dir = data_dir
        self._clock = clock
        self._keyring: Any = None
        self._guard: Any = None

    def _load(self) -> Any:
        # Imported here: the keyring pulls in argon2, which nothing else in stationd needs.
        from station.keys.device_secret import DeviceSecret
        from station.keys.keyring import Keyring
        from station.keys.pin_guard import PinGuard

        if self._keyring is None:
            files = DataDir(self._data_dir)
            path = files.keyslots
            secret = DeviceSecret(files.device_secret).load()
            if self._guard is None:
                self._guard = PinGuard(files.pin_attempts, self._clock, device_secret=secret)
            self._keyring = Keyring.load(path, secret, guard=self._guard)
        return self._keyring

    def verify(self, staff_id: str, pin: str) -> bytearray:
        """Guarded PIN check: the vault key (caller zeroes it), or the keyring's and PIN
        guard's errors. Blocking."""
        vault_key = self._load().unlock(staff_id, pin)
        try:
            # The one accessor for the raw key; the copy goes straight to the staff UI.
            return bytearray(vault_key._material())
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

    def is_enrolled(self, staff_id: str) -> bool:
        """Whether the id has a slot; False when there is no keyring."""
        try:
            return bool(self._load().has_slot(staff_id))
        except Exception:  # an unreadable keyring names nobody
            return False

    def close(self) -> None:
        """Close the PIN guard's database."""
        if self._guard is not None:
            self._guard.close()
            self._guard = None
        self._keyring = None
