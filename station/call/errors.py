"""The call engine's errors: one base (:class:`CallError`), English ``str()``, Danish for people."""

from __future__ import annotations

from station.errors import StationError

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

    default_user_message = "Opkaldet kunne ikke gennemføres. Prøv igen, eller kontakt IT."
    #: A stable machine word for the UIs and the event stream.
    code = "call_error"


class CallConfigError(CallError):
    """The call configuration is missing or invalid."""

    default_user_message = "Stationen er ikke sat op til videoopkald. Kontakt IT."
    code = "call_not_configured"


# provisioning.errors has a HubUnreachable too: each package has its own error hierarchy
# (one base error per package), and the call engine and the provisioning agent each catch
# their own; one shared class would tie the call to provisioning for a single word.
class HubUnreachable(CallError):
    """The hub did not answer (network down, hub down, timeout)."""

    default_user_message = "Stationen kan ikke nå serveren. Tjek netværket, og prøv igen."
    code = "hub_unreachable"


class HubRefused(CallError):
    """The hub answered with an error (its ``code`` is kept in :attr:`hub_code`)."""

    default_user_message = "Serveren afviste opkaldet. Kontakt IT, hvis det sker igen."
    code = "hub_refused"

    def __init__(self, log_message: str, status: int, hub_code: str) -> None:
        super().__init__(log_message)
        self.status = status
        self.hub_code = hub_code


class CallFinished(CallError):
    """The room is over on the hub (ended by the GP, revoked, expired)."""

    default_user_message = "Opkaldet er afsluttet."
    code = "call_finished"

    def __init__(self, log_message: str, reason: str) -> None:
        super().__init__(log_message)
        self.reason = reason


class GatheringFailed(CallError):
    """No usable ICE candidate: TURN refused the credentials, or gathering timed out."""

    default_user_message = (
        "Stationen kan ikke oprette forbindelse til videoserveren (TURN). Kontakt IT."
    )
    code = "ice_gathering_failed"
