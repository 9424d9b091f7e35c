"""stationd's errors: one base, and the API error that carries an HTTP status.

``str(error)`` is English for logs and IT and never quotes request values (a mistyped id or
PIN field may hold a CPR number); ``user_message`` is for the person
(the catalogue's, Danish by default).
"""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_
from stationapi.errors import LOCKED_MESSAGE

__all__ = [
    "LOCKED_MESSAGE",
    "ApiError",
    "DaemonError",
]


class DaemonError(StationError):
    """Base of stationd's own errors."""

    default_user_message = N_("The station could not carry out the action. Try again.")


class ApiError(DaemonError):
    """A request the API refuses: an HTTP status, a machine code and the two texts."""

    def __init__(
        self,
        status: int,
        code: str,
        log_message: str,
        user_message: str | None = None,
        *,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(log_message, user_message)
        self.status = status
        self.code = code
        self.retry_after_seconds = retry_after_seconds

    # One constructor per refusal, so every route sends the same status, code and text for it;
    # alike by design.
    @classmethod
    def bad_request(cls, log_message: str, user_message: str | None = None) -> ApiError:
        """400: the request itself is malformed."""
        return cls(
            400,
            "bad_request",
            log_message,
            user_message or N_("The request was invalid. Try again, or contact IT."),
        )

    @classmethod
    def locked(cls, log_message: str = "no valid staff session") -> ApiError:
        """401: no token, an unknown one, or one revoked by a lock."""
        return cls(401, "locked", log_message, LOCKED_MESSAGE)

    @classmethod
    def not_found(cls, log_message: str) -> ApiError:
        """404: the record or route does not exist."""
        return cls(
            404, "not_found", log_message, N_("The information no longer exists on the station.")
        )

    @classmethod
    def conflict(cls, log_message: str, user_message: str | None = None) -> ApiError:
        """409: not possible in the current state."""
        return cls(
            409,
            "conflict",
            log_message,
            user_message or N_("That cannot be done right now. Refresh the screen and try again."),
        )

    @classmethod
    def unavailable(cls, log_message: str, user_message: str | None = None) -> ApiError:
        """503: a part of the station (store, keyring) cannot serve the request now."""
        return cls(
            503,
            "unavailable",
            log_message,
            user_message or N_("The station cannot do that right now. Contact IT if it lasts."),
        )
