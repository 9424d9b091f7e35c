"""The UIs' own errors: the person's text comes from the catalogue, when it is read.

:class:`station.errors.StationError` keeps a msgid and translates it when ``user_message`` is
read, so the UIs' errors speak the station's configured language (:mod:`station.i18n`,
adopted at start) even when made before it was known. Subclasses give their msgid as
``default_user_message = N_("…")``.
"""

from __future__ import annotations

from station.errors import StationError

__all__ = ["UiError"]


class UiError(StationError):
    """Base of the UIs' errors (see the module docs)."""
