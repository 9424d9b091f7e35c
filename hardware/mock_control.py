"""Pressing gpiozero's mock pins from another process: the fake privacy button's socket.

gpiozero's ``MockFactory`` pins are driven in-process (``pin.drive_low()``). When stationd runs
as its own process on a machine without GPIO — the system test that starts the units' command
lines, the demo — something outside it must be able to press the button. With the mock pin
factory *and* ``KONTAKTSTATION_MOCK_GPIO_SOCKET`` set, stationd listens on that Unix datagram
socket for one word and a pin per datagram:

    ``drive_low GPIO17``   (press: the button pulls its pin low)
    ``drive_high GPIO17``  (release)

It exists only with the mock factory, which is itself only ever chosen by name; a station with
real GPIO never opens it. The socket is made 0600 (only stationd's user can press). Nothing is
answered: the effect is observed where it matters (the session locks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = ["MOCK_GPIO_SOCKET_ENV", "MockPinControl", "press_mock_pin"]

_log = logging.getLogger(__name__)

MOCK_GPIO_SOCKET_ENV: Final = "KONTAKTSTATION_MOCK_GPIO_SOCKET"
_ACTIONS: Final = ("drive_low", "drive_high")
_MAX_DATAGRAM: Final = 64


class MockPinControl:
    """A thread that drives a ``MockFactory``'s pins from datagrams; see the module docs."""

    def __init__(self, factory: Any, path: Path) -> None:
        self._factory = factory
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            if path.is_socket():
                path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self._sock.bind(str(path))
        finally:
            os.umask(old)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        #: Datagrams acted on, and refused (unknown word or pin).
        self.handled = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._serve, name="mock-gpio", daemon=True)
        self._thread.start()

    @classmethod
    def from_env(cls, factory: Any, env: Mapping[str, str]) -> MockPinControl | None:
        """The control if the environment asks for it and ``factory`` is gpiozero's mock."""
        value = env.get(MOCK_GPIO_SOCKET_ENV, "").strip()
        if not value:
            return None
        from gpiozero.pins.mock import MockFactory

        if not isinstance(factory, MockFactory):
            _log.warning("%s ignored: the pins are real", MOCK_GPIO_SOCKET_ENV)
            return None
        return cls(factory, Path(value))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            self._act(data)

    def _act(self, data: bytes) -> None:
        words = data.decode("ascii", errors="replace").split()
        if len(words) != 2 or words[0] not in _ACTIONS:
            self.refused += 1
            _log.warning("mock GPIO control: refused a malformed request")
            return
        try:
            pin = self._factory.pin(words[1])
            getattr(pin, words[0])()
        except Exception as exc:  # an unknown pin name, a closed factory
            self.refused += 1
            _log.warning("mock GPIO control: %s", type(exc).__name__)
            return
        self.handled += 1

    def close(self) -> None:
        """Stop listening and remove the socket."""
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def press_mock_pin(path: Path, pin: str, action: str) -> None:
    """Send one request to a :class:`MockPinControl` (``drive_low`` presses the button)."""
    if action not in _ACTIONS:
        raise ValueError(f"action must be one of {_ACTIONS}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f"{action} {pin}".encode("ascii"), str(path))
