"""The export package's errors: one base, specific subclasses, no personal data in ``str()``."""

from __future__ import annotations

from station.errors import StationError
from station.i18n import N_

__all__ = [
    "DeliveryFailed",
    "ExportConfigError",
    "ExportError",
    "ExportKeyError",
    "ExportNotConfigured",
    "ExportPayloadInvalid",
    "OutboxCorrupt",
    "OutboxError",
    "OutboxSchemaTooNew",
]


# Each error is its own class so callers and the API map them by type; alike by design.
class ExportError(StationError):
    """Base of every error of the care-record export (``station.export``)."""

    default_user_message = N_("The note could not be sent to the care record. Contact IT.")


class ExportConfigError(ExportError):
    """The export configuration is missing a value, malformed, or unsafe (e.g. plain http)."""

    default_user_message = N_(
        "The connection to the care record is not set up correctly. Contact IT."
    )


class ExportNotConfigured(ExportError):
    """No care-record endpoint is configured: staff copy the plain-text summary instead."""

    default_user_message = N_(
        "The station is not connected to the care record. Copy the summary into the record."
    )


class ExportKeyError(ExportError):
    """The outbox key file is missing, damaged or too open."""

    default_user_message = N_("The station's key to the outbox is missing or damaged. Contact IT.")


class ExportPayloadInvalid(ExportError):
    """An export payload failed validation or could not be opened; never quotes its content."""

    default_user_message = N_("The note could not be prepared for the care record. Contact IT.")


class OutboxError(ExportError):
    """The outbox database could not be read or written."""

    default_user_message = N_("The outbox to the care record could not be used. Contact IT.")


class OutboxCorrupt(OutboxError):
    """``outbox.db`` is damaged; it is left untouched for IT."""

    default_user_message = N_("The outbox to the care record is damaged. Contact IT.")


class OutboxSchemaTooNew(OutboxError):
    """``outbox.db`` was written by a newer version of the station software."""


class DeliveryFailed(ExportError):
    """One delivery attempt failed; ``outcome`` is the audit code (``failed_timeout``, ...)."""

    default_user_message = N_(
        "The note has not been sent yet. The station tries again by itself; nothing is lost."
    )

    def __init__(self, log_message: str, outcome: str, *, drop_token: bool = False) -> None:
        super().__init__(log_message)
        #: A short code for the audit log and the outbox row (``[a-z_]``, at most 32).
        self.outcome = outcome
        #: The access token was refused: fetch a new one before the next attempt.
        self.drop_token = drop_token
