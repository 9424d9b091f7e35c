"""The key holder's errors: one base (:class:`VaultError`) for the vault, keyring, PIN guard,
device secret and sealed boxes."""

from __future__ import annotations

from station.errors import StationError

__all__ = ["DeviceSecretError", "VaultError", "VaultLocked"]


class VaultError(StationError):
    """Base of the key-material errors: vault, keyring, PIN guard, device secret."""


class VaultLocked(VaultError):
    """The vault key was zeroed (the station locked); nothing can be sealed or opened."""

    default_user_message = "Stationen er låst. Lås op med din PIN-kode."


class DeviceSecretError(VaultError):
    """The device secret file is missing, damaged or too open; IT must look at the station."""

    default_user_message = "Stationens sikkerhedsnøgle mangler eller er beskadiget. Kontakt IT."
