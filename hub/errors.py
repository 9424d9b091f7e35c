"""The hub's errors: each knows its HTTP status and a stable machine-readable code.

``str(error)`` is English (logs, the API's ``{"error": ...}``) and never holds a token or
personal data; ``user_message`` is the catalogue's (Danish by default). The GP page shows its
own Danish or English text chosen by ``code``, so the code is the contract with the page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "BookingInvalid",
    "CallEnded",
    "GenerationStale",
    "HubError",
    "InvalidSessionDescription",
    "LinkExpired",
    "LinkNotYetValid",
    "LinkRevoked",
    "NotAdmittedBrowser",
    "RoomAlreadyAdmitted",
    "RoomStoreError",
    "StationNotWaiting",
    "StationUnauthorized",
    "TooManyCandidates",
    "UnknownLink",
    "UnknownRoom",
]


class HubError(StationError):
    """Base of every error the hub raises on purpose."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_user_message = N_("An error occurred. Try again, or contact the care home.")

    def __init__(self, log_message: str | None = None, user_message: str | None = None) -> None:
        super().__init__(log_message or self.default_log_message(), user_message)

    @classmethod
    def default_log_message(cls) -> str:
        """The English message used when none is given."""
        return cls.code.replace("_", " ")

    def details(self) -> dict[str, Any]:
        """Extra, non-personal fields for the JSON error body."""
        return {}


# One class per refusal: the API maps each to its status and code by type, and the GP page
# picks its text by code; alike by design (hub.provisioning.errors is the same family).
class StationUnauthorized(HubError):
    """The station credential is missing or wrong."""

    status_code = 401
    code = "station_unauthorized"


class UnknownRoom(HubError):
    """No room with this id (station API)."""

    status_code = 404
    code = "unknown_room"


class UnknownLink(HubError):
    """The GP's link token matches no room (wrong, mistyped or long deleted)."""

    status_code = 404
    code = "unknown_link"
    default_user_message = N_(
        "The link is not valid. Check that you used the whole link from the invitation."
    )


class LinkNotYetValid(HubError):
    """The link's validity window has not begun."""

    status_code = 403
    code = "link_not_yet_valid"
    default_user_message = N_("The link works only shortly before the appointment.")

    def __init__(self, valid_from: datetime) -> None:
        super().__init__()
        self.valid_from = valid_from

    def details(self) -> dict[str, Any]:
        return {"valid_from": self.valid_from.isoformat()}


class LinkExpired(HubError):
    """The link's validity window is over."""

    status_code = 410
    code = "link_expired"
    default_user_message = N_("The link has expired. Book a new time with the care home.")


class LinkRevoked(HubError):
    """The station revoked the room (appointment cancelled)."""

    status_code = 410
    code = "link_revoked"
    default_user_message = N_("The appointment is cancelled, and the link no longer works.")


class CallEnded(HubError):
    """The call in this room has ended; a room is used for one call only."""

    status_code = 410
    code = "call_ended"
    default_user_message = N_("The conversation has ended.")


class RoomAlreadyAdmitted(HubError):
    """Another browser has already admitted the station and is in the call."""

    status_code = 409
    code = "room_already_admitted"
    default_user_message = N_(
        "The conversation is already open in another window or another browser."
    )


class NotAdmittedBrowser(HubError):
    """A call action from a browser that is not the admitted one."""

    status_code = 403
    code = "not_admitted_browser"
    default_user_message = N_("This window is not part of the conversation. Reload the page.")


class StationNotWaiting(HubError):
    """The GP tried to admit before the station has called in."""

    status_code = 409
    code = "station_not_waiting"
    default_user_message = N_("The station is not ready yet. Wait a moment.")


class GenerationStale(HubError):
    """An answer or candidate for an offer the station has since replaced."""

    status_code = 409
    code = "generation_stale"


class InvalidSessionDescription(HubError):
    """The SDP is not a sane offer/answer of the expected shape and size."""

    status_code = 422
    code = "invalid_sdp"


class BookingInvalid(HubError):
    """A room needs a booked appointment with a sane start and end."""

    status_code = 422
    code = "booking_invalid"


class TooManyCandidates(HubError):
    """The GP sent more trickled ICE candidates than a call can need."""

    status_code = 429
    code = "too_many_candidates"


class RoomStoreError(HubError):
    """The room database failed; not the caller's fault."""

    status_code = 503
    code = "store_unavailable"
