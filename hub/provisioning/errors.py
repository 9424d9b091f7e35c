"""Errors of the hub's provisioning API; each knows its HTTP status and a stable code.

Texts never quote a key, a code, a staff member's name or a configuration value.
"""

from __future__ import annotations

from hub.errors import HubError
from station.i18n import N_

__all__ = [
    "AdminInputInvalid",
    "ClockSkew",
    "CloneSuspected",
    "CodeAlreadyUsed",
    "CodeExpired",
    "CodeUnknown",
    "CommandUnknown",
    "LayerNotSigned",
    "NoConfiguration",
    "NoRelease",
    "ProvisioningHubError",
    "ProvisioningStoreError",
    "RequestReplayed",
    "SignatureRejected",
    "SigningKeyRequired",
    "StationDecommissioned",
    "StationNotApproved",
    "StationUnknown",
    "TooManyAttempts",
]


class ProvisioningHubError(HubError):
    """Base of the provisioning API's errors."""

    status_code = 400
    code = "provisioning_error"


# One class per refusal, as in hub.errors: the API answers each with its status and code by
# type, and the station acts on the code; alike by design.
class ProvisioningStoreError(ProvisioningHubError):
    """The provisioning database failed; not the caller's fault."""

    status_code = 503
    code = "store_unavailable"


class SignatureRejected(ProvisioningHubError):
    """The request is unsigned or its signature does not verify."""

    status_code = 401
    code = "signature_invalid"


class ClockSkew(ProvisioningHubError):
    """The request's time is too far from the hub's (a stale capture, or a wrong clock)."""

    status_code = 401
    code = "clock_skew"


class RequestReplayed(ProvisioningHubError):
    """A counter at or below the last one seen, with the very same request: a replay."""

    status_code = 409
    code = "replayed_request"


class CloneSuspected(ProvisioningHubError):
    """Two different requests under one counter: the identity runs on two devices."""

    status_code = 403
    code = "clone_suspected"


class StationUnknown(ProvisioningHubError):
    """The signing key belongs to no enrolled station."""

    status_code = 403
    code = "station_unknown"


class StationNotApproved(ProvisioningHubError):
    """The station is pending IT's approval."""

    status_code = 403
    code = "station_pending"


class StationDecommissioned(ProvisioningHubError):
    """The station was decommissioned; its key is refused for good."""

    status_code = 410
    code = "station_decommissioned"


class CodeUnknown(ProvisioningHubError):
    """No enrollment code like this (mistyped, or never issued)."""

    status_code = 404
    code = "unknown_code"
    default_user_message = N_("The code does not exist. Check the code, or ask IT for a new one.")


class CodeExpired(ProvisioningHubError):
    """The enrollment code's time is up."""

    status_code = 410
    code = "code_expired"
    default_user_message = N_("The code has expired. Ask IT for a new one.")


class CodeAlreadyUsed(ProvisioningHubError):
    """The one-time enrollment code was used already."""

    status_code = 409
    code = "code_used"
    default_user_message = N_("The code has already been used. Ask IT for a new one.")


class TooManyAttempts(ProvisioningHubError):
    """Too many wrong codes from this station; try later."""

    status_code = 429
    code = "too_many_attempts"
    default_user_message = N_("Too many wrong codes. Wait a while, and try again.")


class CommandUnknown(ProvisioningHubError):
    """No such command for this station."""

    status_code = 404
    code = "unknown_command"


class AdminInputInvalid(ProvisioningHubError):
    """An admin action with input that cannot be used (unknown station, invalid layer, ...)."""

    status_code = 422
    code = "admin_input_invalid"


class NoConfiguration(ProvisioningHubError):
    """No configuration was published for this station yet."""

    status_code = 404
    code = "no_config"


class NoRelease(ProvisioningHubError):
    """The release a station asked for is not on this hub."""

    status_code = 404
    code = "no_release"


class SigningKeyRequired(ProvisioningHubError):
    """An admin action that signs, run without IT's signing key (the hub holds none)."""

    status_code = 500
    code = "signing_key_required"

    def __init__(self) -> None:
        super().__init__(
            "this action signs configurations or commands: give IT's signing key with "
            "--signing-key PATH or KONTAKTSTATION_IT_SIGNING_KEY (make one on your own machine "
            "with 'kontaktstation admin keygen PATH'; it never lives on the hub)"
        )


class LayerNotSigned(ProvisioningHubError):
    """A stored configuration layer whose IT signature is missing or does not verify: the
    hub's database was changed behind IT's back; nothing is signed from it."""

    status_code = 500
    code = "layer_not_signed"
