"""The blind store's errors: one base, a subclass per way a write or read can fail.

Errors never quote the rejected value: an id typed wrongly may be a CPR number.
"""

from __future__ import annotations

from station.errors import StationError

__all__ = [
    "StoreConflict",
    "StoreCorrupt",
    "StoreError",
    "StoreInvalid",
    "StoreNotFound",
    "StoreSchemaTooNew",
    "StoreScrubIncomplete",
]


class StoreError(StationError):
    """Base of the blind store's errors."""

    default_user_message = "Stationens data kunne ikke gemmes eller læses. Kontakt IT."


class StoreInvalid(StoreError):
    """A write was refused because a value broke a rule; nothing was written."""

    default_user_message = "Oplysningerne kunne ikke gemmes, fordi noget var udfyldt forkert."


class StoreNotFound(StoreError):
    """The record asked for does not exist (or has been purged)."""

    default_user_message = "Oplysningerne findes ikke længere på stationen."


class StoreConflict(StoreError):
    """A write clashes with what is stored: a duplicate id, an unknown parent, a wrong state."""

    default_user_message = "Ændringen kunne ikke gemmes, fordi data er ændret imens. Prøv igen."


class StoreCorrupt(StoreError):
    """The database file is damaged. It is left untouched for IT to recover."""

    default_user_message = "Stationens data er beskadiget. Stationen skal efterses af IT."


class StoreSchemaTooNew(StoreError):
    """The database was written by a newer version of the station software."""

    default_user_message = (
        "Stationens data er fra en nyere version af programmet. Kontakt IT for en opdatering."
    )


class StoreScrubIncomplete(StoreError):
    """Rows were deleted and committed, but old pages could not yet be cleared from the WAL."""

    def __init__(self, log_message: str, purged: int) -> None:
        super().__init__(log_message)
        #: How many consultations were purged before the WAL checkpoint was blocked.
        self.purged = purged
