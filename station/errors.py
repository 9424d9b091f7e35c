"""The station's base error.

Every error carries two texts: ``str(error)`` is English, for logs and IT, and never holds
personal data; ``user_message`` is Danish, for the staff member or resident in front of the
station, and says what to do.
"""

from __future__ import annotations

__all__ = ["StationError"]


class StationError(Exception):
    """Base of every error the station raises on purpose."""

    #: Danish text for the person at the station; subclasses override it.
    default_user_message = "Der opstod en fejl på stationen. Kontakt IT, hvis det sker igen."

    def __init__(self, log_message: str, user_message: str | None = None) -> None:
        super().__init__(log_message)
        self.user_message = user_message or self.default_user_message
