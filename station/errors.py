"""The station's base error.

Every error carries two texts: ``str(error)`` is English, for logs and IT, and never holds
personal data; ``user_message`` is for the staff member or resident in front of the station,
and says what to do. It is kept as an English msgid (or a :class:`~station.i18n.LazyText`
with its parameters) and translated when it is read, so it speaks the language the process
uses then (Danish by default), not the one in use when the error was made.
"""

from __future__ import annotations

from typing import TypeAlias

from station.i18n import N_, LazyText, translate

__all__ = ["StationError", "UserText"]

#: What an error may be given for the person: a msgid, or a msgid with its parameters.
#: A text that is no msgid (one stationd sent, already translated) passes through unchanged.
UserText: TypeAlias = str | LazyText


class StationError(Exception):
    """Base of every error the station raises on purpose."""

    #: The msgid of the text for the person at the station; subclasses override it.
    default_user_message: str = N_(
        "An error occurred at the station. Contact IT if it happens again."
    )

    def __init__(self, log_message: str, user_message: UserText | None = None) -> None:
        super().__init__(log_message)
        self._user_message: UserText = user_message or self.default_user_message

    @property
    def user_message(self) -> str:
        """The text for the person at the station, in the language in use now."""
        if isinstance(self._user_message, LazyText):
            return self._user_message.translated()
        return translate(self._user_message)
