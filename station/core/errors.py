"""The one base error of the domain package."""

from __future__ import annotations

from station.errors import StationError

__all__ = ["CoreError"]


class CoreError(StationError):
    """Base of every error the pure domain raises (CPR, model, session)."""
