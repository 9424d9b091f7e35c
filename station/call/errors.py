"""The call engine's errors: one base (:class:`CallError`), English ``str()``, Danish for people."""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "CallConfigError",
    "CallError",
    "CallFinished",
    "GatheringFailed",
    "HubRefused",
    "HubUnreachable",
]


class CallError(StationError):
    """Base of the call engine's errors."""

    default_user_message = N_("The call could not be made. Try again, or contact IT.")
    #: A stable machine word for the UIs and the event stream.
    code = "call_error"


class CallConfigError(CallError):
    """The call configuration is missing or invalid."""

    default_user_message = N_("The station is not set up for video calls. Contact IT.")
    code = "call_not_configured"


# provisioning.errors has a HubUnreachable too: each package has its own error hierarchy
# (one base error per package), and the call engine and the provisioning agent each catch
# their own; one shared class would tie the call to provisioning for a single word.
class HubUnreachable(CallError):
    """The hub did not answer (network down, hub down, timeout)."""

    default_user_message = N_(
        "The station cannot reach the server. Check the network, and try again."
    )
    code = "hub_unreachable"


class HubRefused(CallError):
    """The hub answered with an error (its ``code`` is kept in :attr:`hub_code`)."""

    default_user_message = N_("The server refused the call. Contact IT if it happens again.")
    code = "hub_refused"

    def __init__(self, log_message: str, status: int, hub_code: str) -> None:
        super().__init__(log_message)
        self.status = status
        self.hub_code = hub_code


class CallFinished(CallError):
    """The room is over on the hub (ended by the GP, revoked, expired)."""

    default_user_message = N_("The call has ended.")
    code = "call_finished"

    def __init__(self, log_message: str, reason: str) -> None:
        super().__init__(log_message)
        self.reason = reason


class GatheringFailed(CallError):
    """No usable ICE candidate: TURN refused the credentials, or gathering timed out."""

    default_user_message = N_("The station cannot connect to the video server (TURN). Contact IT.")
    code = "ice_gathering_failed"
