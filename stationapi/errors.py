"""The clients' errors: one base, and what each failure means to a UI.

Every refusal from stationd raises :class:`StationApiError` (the HTTP status, stationd's
machine ``code``, its English ``str()`` and ``user_message`` for the person); :class:`StationLocked`
is the 401 every lock causes (the staff UI exits on it); :class:`StationUnavailable` means
stationd could not be reached at all. A UI catches :class:`StationClientError` for all of them.
"""

from __future__ import annotations

from typing import Final

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "LOCKED_MESSAGE",
    "StationApiError",
    "StationClientError",
    "StationLocked",
    "StationRequestInvalid",
    "StationUnavailable",
]

#: What staff read when their session is gone (every lock revokes every token). stationd
#: sends it with every 401; the client falls back to it.
LOCKED_MESSAGE: Final = N_("The station is locked. Unlock it with your PIN.")


class StationClientError(StationError):
    """Base of the clients' errors."""

    default_user_message = N_("The station does not answer. Wait a moment and try again.")


class StationUnavailable(StationClientError):
    """stationd could not be reached (not running, socket missing, timed out)."""


class StationApiError(StationClientError):
    """stationd refused the request; ``status``, ``code`` and both texts say why."""

    def __init__(
        self,
        status: int,
        code: str,
        log_message: str,
        user_message: str | None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"stationd answered {status} {code}: {log_message}", user_message)
        self.status = status
        self.code = code
        self.retry_after_seconds = retry_after_seconds


class StationRequestInvalid(StationApiError):
    """422 ``invalid`` found by the client before sending: the same refusal stationd would
    give (the fields and why, never their values)."""

    default_user_message = N_(
        "The information in the request was invalid. Try again, or contact IT."
    )

    def __init__(self, log_message: str) -> None:
        super().__init__(422, "invalid", log_message, None)


class StationLocked(StationApiError):
    """401: no staff session (the station locked, or was never unlocked)."""

    default_user_message = LOCKED_MESSAGE
