"""One factory for the staff app (the CLI and tests build it the same way), and ``main``."""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from station.core.clock import Clock
from stationapi.staff import StaffClient
from tui.staff.app import ExitCode, StaffApp
from tui.staff.station import DaemonStaffStation, StaffStation
from tui.stationd import SOCKET_ENV
from tui.stationd import socket_path as stationd_socket

__all__ = ["HARD_EXIT_SECONDS", "create_app", "main"]

#: After a lock, the process ends by this time even if Textual's shutdown hangs.
HARD_EXIT_SECONDS: Final = 1.0


def create_app(
    socket_path: str | Path | None = None,
    *,
    station: StaffStation | None = None,
    clock: Clock | None = None,
    live_interval: float = 0.5,
    hard_exit: bool = False,
) -> StaffApp:
    """The staff app on ``socket_path`` (default ``$KONTAKTSTATION_SOCKET``), or on ``station``.

    ``hard_exit`` (the real process only): after a lock, ``os._exit`` follows within
    :data:`HARD_EXIT_SECONDS` should the orderly shutdown stall; memory never outlives that.
    """
    if station is None:
        station = DaemonStaffStation(StaffClient(stationd_socket(socket_path), timeout=10.0))

    def arm(code: int) -> None:
        timer = threading.Timer(HARD_EXIT_SECONDS, os._exit, args=(code,))
        timer.daemon = True
        timer.start()

    return StaffApp(
        station, clock=clock, live_interval=live_interval, on_lock_out=arm if hard_exit else None
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the staff UI; the exit status is an :class:`~tui.staff.app.ExitCode`."""
    parser = argparse.ArgumentParser(prog="python -m tui.staff", description=__doc__)
    parser.add_argument("--socket", help=f"stationd's socket (default ${SOCKET_ENV})")
    args = parser.parse_args(argv)
    from tui.station_language import adopt_station_language

    # IT's language, before any screen is built.
    adopt_station_language(stationd_socket(args.socket))
    app = create_app(args.socket, hard_exit=True)
    code = app.run()
    return int(code if code is not None else ExitCode.LOCKED)
