"""What both UIs and their supervisor know of stationd: where its socket is, which states lock.

One place for the three processes (``tui.staff``, ``tui.locked``, ``tui.supervisor``), each
of which used to spell these out. Not ``station.daemon.app``'s own helper: that module wires
the store, which the locked UI and the supervisor must never import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_SOCKET", "LOCKED_STATES", "PRIVATE_STATE", "SOCKET_ENV", "socket_path"]

#: stationd's API socket is passed to the UIs under this name (the supervisor sets it).
SOCKET_ENV: Final = "KONTAKTSTATION_SOCKET"
#: Where stationd listens on a station (systemd's runtime directory).
DEFAULT_SOCKET: Final = "/run/kontaktstation/stationd.sock"
#: The session state of a private call: the resident's controls, nothing personal.
PRIVATE_STATE: Final = "in_call_private"
#: Session states in which no personal data may be on screen: the staff UI exits, the
#: supervisor shows the locked UI.
LOCKED_STATES: Final = frozenset({"locked", PRIVATE_STATE})


def socket_path(given: str | Path | None = None) -> Path:
    """``given``, else ``$KONTAKTSTATION_SOCKET``, else the station's default."""
    return Path(given or os.environ.get(SOCKET_ENV) or DEFAULT_SOCKET)
