"""Where the station keeps its files, from the environment with production defaults."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_DATA_DIR", "data_dir"]

#: Production default; systemd's StateDirectory=kontaktstation creates it for the service user.
DEFAULT_DATA_DIR = Path("/var/lib/kontaktstation")


def data_dir() -> Path:
    """The station's data directory: ``KONTAKTSTATION_DATA_DIR`` or the production default."""
    value = os.environ.get("KONTAKTSTATION_DATA_DIR")
    return Path(value) if value else DEFAULT_DATA_DIR
