"""The key holder's errors: one base (:class:`VaultError`) for the vault, keyring, PIN guard,
device secret and sealed boxes."""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "DeviceSecretError",
    "InvalidPin",
    "InvalidStaffId",
    "KeyringCorrupt",
    "KeyringExists",
    "KeyringNotFound",
    "NoSuchSlot",
    "SlotExists",
    "VaultError",
    "VaultLocked",
    "WrongDeviceSecret",
]


# Each error is its own class so callers and the API map them by type; alike by design.
class VaultError(StationError):
    """Base of the key-material errors: vault, keyring, PIN guard, device secret."""


class VaultLocked(VaultError):
    """The vault key was zeroed (the station locked); nothing can be sealed or opened."""

    default_user_message = N_("The station is locked. Unlock it with your PIN.")


class DeviceSecretError(VaultError):
    """The device secret file is missing, damaged or too open; IT must look at the station."""

    default_user_message = N_("The station's security key is missing or damaged. Contact IT.")


class KeyringCorrupt(VaultError):
    """keyslots.json is damaged or was edited; nothing was overwritten. For IT."""

    default_user_message = N_("The station's key file is damaged. Contact IT.")


class WrongDeviceSecret(VaultError):
    """keyslots.json was made with another device secret (SD card moved, secret replaced)."""

    default_user_message = N_("The station's key file does not belong to this station. Contact IT.")


class KeyringNotFound(VaultError):
    """There is no keyslots.json yet: the station was never initialised."""

    default_user_message = N_("The station is not set up yet. Contact IT.")


class KeyringExists(VaultError):
    """Initialising would overwrite an existing keyring (and lose every record); refused."""


class InvalidPin(VaultError):
    """A PIN that breaks the rules (digits only, 4-12 long); no attempt is counted."""

    default_user_message = N_("The PIN must be 4 to 12 digits.")


class InvalidStaffId(VaultError):
    """A staff id that is not a short pseudonymous token."""


class InvalidStaffNumber(VaultError):
    """A staff number that is not 3 or 4 digits (a number given by hand at enrollment)."""


class StaffNumberTaken(VaultError):
    """Another slot on this station already has that staff number."""


class SlotExists(VaultError):
    """The staff id already has a slot; change its PIN or remove it first."""


class NoSuchSlot(VaultError):
    """An admin action named a staff id without a slot."""
