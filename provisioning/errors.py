"""Provisioning's errors: one base, an English ``str()`` and a translated ``user_message``.

Messages never quote a key, a code, a PIN or a configuration value: they name what failed.
"""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "ConfigRejected",
    "EnrollmentError",
    "HubUnreachable",
    "IdentityError",
    "ProvisioningError",
    "SignatureInvalid",
    "StaffEnrollmentError",
]


class ProvisioningError(StationError):
    """Base of every provisioning error."""

    default_user_message = N_("The station's set-up failed. Contact IT.")


class IdentityError(ProvisioningError):
    """The station's identity key is missing, unreadable or unsafe (mode, owner, size)."""

    default_user_message = N_("The station's identity could not be read. Contact IT.")


class SignatureInvalid(ProvisioningError):
    """A signature, envelope or signed request does not verify."""


class ConfigRejected(ProvisioningError):
    """A configuration was refused (unsigned, tampered, older, invalid or unhealthy).

    ``reason`` is a short machine word the heartbeat and the hub's table show.
    """

    default_user_message = N_("A new set-up was refused; the station carries on as before.")

    def __init__(self, reason: str, log_message: str | None = None) -> None:
        super().__init__(log_message or f"configuration rejected: {reason}")
        self.reason = reason


# station.call.errors has a HubUnreachable too (the call's hierarchy); see the note there.
class HubUnreachable(ProvisioningError):
    """The hub did not answer (network, TLS, 5xx): the station keeps going offline."""

    default_user_message = N_(
        "The station has no connection to the municipality's server right now."
    )


class EnrollmentError(ProvisioningError):
    """The hub refused the station (unknown, decommissioned, clone suspected, ...)."""

    def __init__(self, code: str, log_message: str | None = None) -> None:
        super().__init__(log_message or f"the hub refused the station: {code}")
        self.code = code


class StaffEnrollmentError(ProvisioningError):
    """A staff enrollment code or PIN was refused; ``code`` says why."""

    default_user_message = N_(
        "The code could not be used. Check the code, or ask IT for a new one."
    )

    def __init__(self, code: str, log_message: str | None = None, user_message: str | None = None):
        super().__init__(log_message or f"staff enrollment refused: {code}", user_message)
        self.code = code
