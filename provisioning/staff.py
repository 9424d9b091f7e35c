"""Staff keyslots made on the station: the hub never sees a PIN or the vault key.

The design (the simplest sound one with the keyring as it is):

* **The first staff member** of a station initialises the keyring: a new random vault key,
  IT's escrow slot sealed to the escrow public key from the signed configuration, and the
  staff member's own slot under the PIN they chose.
* **Every later staff member** enrolls with a colleague present: the colleague types their
  own staff number and PIN (a guarded unlock, counted like any other), which opens the vault key
  just long enough to wrap it into the newcomer's slot; the key is zeroed at once. A keyslot
  can only be made from the vault key, and stationd never keeps it: so someone who already
  holds it must be there. (When nobody is, IT crypto-wipes the station and the next staff
  member starts a new keyring; see :mod:`station.keys.keyring` on the escrow slot.)
* The colleague's PIN is checked *before* the one-time code is spent at the hub (a wrong
  PIN burns nothing), and again to make the slot.
* The new slot gets a short **staff number** (3-4 digits, unique on the station; see
  :mod:`station.keys.keyring`): what the newcomer types to log in. The hub never learns it.

Every function here blocks (Argon2id, fsync): run it on a worker thread.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from provisioning.errors import StaffEnrollmentError
from provisioning.protocol import b64decode
from station.core.clock import Clock
from station.i18n import N_
from station.keys.device_secret import DeviceSecretSource, device_secret_source
from station.keys.errors import VaultError
from station.keys.keyring import (
    DEFAULT_KDF_PARAMS,
    KEYSLOTS_FILE,
    InvalidPin,
    KdfParams,
    Keyring,
    KeyringNotFound,
    NoSuchSlot,
    SlotExists,
    validate_new_pin,
)
from station.keys.pin_guard import PinGuard
from station.keys.vault import VaultKey
from station.storage.datadir import DataDir

__all__ = ["PIN_ATTEMPTS_FILE", "USER_MESSAGES", "StaffKeyslots"]

PIN_ATTEMPTS_FILE = DataDir.PIN_ATTEMPTS

#: The texts (msgids) for the hub's refusal codes and the station's own.
USER_MESSAGES = {
    "unknown_code": N_("The code does not exist. Check the code, or ask IT for a new one."),
    "code_expired": N_("The code has expired. Ask IT for a new one."),
    "code_used": N_("The code has already been used. Ask IT for a new one."),
    "too_many_attempts": N_("Too many wrong codes. Wait a quarter of an hour, and try again."),
    "invalid_pin": N_("The PIN code must be 6 to 12 digits."),
    "sponsor_required": (
        N_("A colleague who is already enrolled must approve with their staff number and PIN.")
    ),
    "sponsor_refused": N_("The colleague's staff number or PIN was not accepted."),
    "not_configured": N_("The station is not set up for staff yet. Contact IT."),
    "no_hardware_secret": N_(
        "The station has no hardware key for its data, and IT has not allowed it to be used "
        "without one. Contact IT."
    ),
    "already_enrolled": N_("You are already enrolled on this station."),
    "hub_unreachable": N_("The station cannot reach the municipality's server. Try again later."),
}


def _refuse(code: str, log: str | None = None) -> StaffEnrollmentError:
    return StaffEnrollmentError(code, log, USER_MESSAGES.get(code))


class StaffKeyslots:
    """The keyring seen from provisioning: make, check and remove staff slots."""

    def __init__(
        self,
        data_dir: Path,
        clock: Clock,
        *,
        kdf_params: KdfParams = DEFAULT_KDF_PARAMS,
        secret: DeviceSecretSource | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.path = data_dir / KEYSLOTS_FILE
        self._clock = clock
        self._kdf = kdf_params
        #: The device secret's source (stationd chooses it by name); None: the file.
        self._source = secret or device_secret_source(data_dir, {})

    def _guard(self) -> PinGuard:
        return PinGuard(
            self.data_dir / PIN_ATTEMPTS_FILE, self._clock, device_secret=self._secret()
        )

    def _secret(self) -> bytes:
        return self._source.load()

    @property
    def secret_kind(self) -> str:
        """Where the device secret comes from: ``otp``, ``file`` or ``fake_otp``."""
        return str(getattr(self._source, "kind", "file"))

    def exists(self) -> bool:
        """Whether the station has a keyring (at least one staff member enrolled once)."""
        return self.path.exists()

    def staff_ids(self) -> list[str]:
        """Enrolled pseudonymous ids (empty without a keyring)."""
        if not self.exists():
            return []
        with self._guard() as guard:
            try:
                return Keyring.load(self.path, self._secret(), guard=guard).staff_ids()
            except KeyringNotFound:
                return []

    def check_pin(self, pin: str) -> None:
        """Refuse a PIN the keyring would refuse (before anything is spent)."""
        try:
            validate_new_pin(pin)
        except InvalidPin:
            raise _refuse("invalid_pin") from None

    def check_sponsor(self, sponsor_number: str | None, sponsor_pin: str | None) -> None:
        """A colleague's guarded unlock, the key zeroed at once (only when a keyring exists)."""
        if not self.exists():
            return
        if not sponsor_number or not sponsor_pin:
            raise _refuse("sponsor_required")
        with self._guard() as guard:
            keyring = Keyring.load(self.path, self._secret(), guard=guard, kdf_params=self._kdf)
            try:
                keyring.unlock(sponsor_number, sponsor_pin).zero()
            except VaultError as exc:
                raise _refuse(
                    "sponsor_refused", f"sponsor unlock refused: {type(exc).__name__}"
                ) from None

    def add(
        self,
        staff_id: str,
        pin: str,
        *,
        escrow_public_key: str | None,
        sponsor_number: str | None,
        sponsor_pin: str | None,
    ) -> str:
        """Make ``staff_id``'s slot: initialise the keyring (first staff) or via the sponsor;
        the new slot's staff number."""
        self.check_pin(pin)
        with self._guard() as guard:
            secret = self._secret()
            vault_key: VaultKey
            if not self.exists():
                if escrow_public_key is None:
                    raise _refuse("not_configured", "no escrow key in the configuration")
                keyring, vault_key = Keyring.initialise(
                    self.path,
                    secret,
                    b64decode(escrow_public_key, length=32),
                    guard=guard,
                    kdf_params=self._kdf,
                )
            else:
                keyring = Keyring.load(self.path, secret, guard=guard, kdf_params=self._kdf)
                if not sponsor_number or not sponsor_pin:
                    raise _refuse("sponsor_required")
                try:
                    vault_key = keyring.unlock(sponsor_number, sponsor_pin)
                except VaultError as exc:
                    raise _refuse(
                        "sponsor_refused", f"sponsor unlock refused: {type(exc).__name__}"
                    ) from None
            with vault_key:
                try:
                    return keyring.add_slot(vault_key, staff_id, pin)
                except SlotExists:
                    raise _refuse("already_enrolled") from None

    def remove(self, staff_id: str) -> bool:
        """Remove a staff member's slot; False if they had none."""
        if not self.exists():
            return False
        with self._guard() as guard:
            keyring = Keyring.load(self.path, self._secret(), guard=guard)
            try:
                keyring.remove_slot(staff_id)
            except NoSuchSlot:
                return False
        return True

    def numbers(self) -> dict[str, str]:
        """Staff number → pseudonymous staff id (empty without a keyring)."""
        if not self.exists():
            return {}
        with self._guard() as guard:
            try:
                return Keyring.load(self.path, self._secret(), guard=guard).numbers()
            except KeyringNotFound:
                return {}

    def pin_counters(self) -> tuple[int, dict[str, int]]:
        """Station-wide wrong-PIN count and consecutive failures per enrolled staff id (the
        guard counts per staff number; the heartbeat names the pseudonymous id)."""
        if not self.exists():
            # No keyring (never enrolled, or wiped): no counters, and no counter file made.
            return 0, {}
        numbers = self.numbers()
        with self._guard() as guard:
            by_staff = {}
            for number, staff_id in numbers.items():
                with contextlib.suppress(VaultError):
                    by_staff[staff_id] = guard.status(number).consecutive_failures
            return guard.station_failures(), by_staff
