"""The blind store's errors: one base, a subclass per way a write or read can fail.

Errors never quote the rejected value: an id typed wrongly may be a CPR number.
"""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "StoreConflict",
    "StoreCorrupt",
    "StoreError",
    "StoreInvalid",
    "StoreNotFound",
    "StoreSchemaTooNew",
    "StoreScrubIncomplete",
]


# Each error is its own class so callers and the API map them by type; alike by design.
class StoreError(StationError):
    """Base of the blind store's errors."""

    default_user_message = N_("The station's data could not be saved or read. Contact IT.")


class StoreInvalid(StoreError):
    """A write was refused because a value broke a rule; nothing was written."""

    default_user_message = N_(
        "The information could not be saved, because something was filled in wrongly."
    )


class StoreNotFound(StoreError):
    """The record asked for does not exist (or has been purged)."""

    default_user_message = N_("The information no longer exists on the station.")


class StoreConflict(StoreError):
    """A write clashes with what is stored: a duplicate id, an unknown parent, a wrong state."""

    default_user_message = N_(
        "The change could not be saved, because the data changed meanwhile. Try again."
    )


class StoreCorrupt(StoreError):
    """The database file is damaged. It is left untouched for IT to recover."""

    default_user_message = N_("The station's data is damaged. The station must be checked by IT.")


class StoreSchemaTooNew(StoreError):
    """The database was written by a newer version of the station software."""

    default_user_message = N_(
        "The station's data is from a newer version of the program. Contact IT for an update."
    )


class StoreScrubIncomplete(StoreError):
    """Rows were deleted and committed, but old pages could not yet be cleared from the WAL."""

    def __init__(self, log_message: str, purged: int) -> None:
        super().__init__(log_message)
        #: How many consultations were purged before the WAL checkpoint was blocked.
        self.purged = purged
