"""The UIs' own errors: the person's text comes from the catalogue, when the error is raised.

:class:`station.errors.StationError` carries a Danish ``user_message`` written into its class.
The UIs speak the station's configured language (:mod:`tui.i18n`, adopted at start), so their
errors look their text up when they are raised, after the language is known, never at
import. Subclasses say theirs in :meth:`UiError.user_text`.
"""

from __future__ import annotations

from station.errors import StationError
from tui.i18n import _

__all__ = ["UiError"]


class UiError(StationError):
    """Base of the UIs' errors (see the module docs)."""

    def __init__(self, log_message: str, user_message: str | None = None) -> None:
        super().__init__(log_message, user_message or self.user_text())

    @classmethod
    def user_text(cls) -> str:
        """What the person at the station reads, in the language in use."""
        return _("An error occurred at the station. Contact IT if it happens again.")
