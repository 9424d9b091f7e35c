"""The kiosk's terminal for the system test: a pseudo-terminal standing in for foot, and the
supervisor's tmux server read and typed into as a person at the station would.

``kontaktstation ui`` (the program the kiosk unit's foot runs) attaches to its terminal; here
that terminal is a pty of a fixed size whose output is drained (a terminal that is never read
would block tmux). The screen is read from the supervisor's own tmux server
(``$XDG_RUNTIME_DIR/kontaktstation-ui/tmux.sock``): ``capture-pane`` of the window on show.
Keys go in with ``send-keys``, as a keyboard's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Terminal", "TmuxScreen"]


class Terminal:
    """A pty of ``columns`` x ``rows``; the slave end is the program's terminal."""

    def __init__(self, columns: int = 120, rows: int = 40) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def close(self) -> None:
        """Close both ends."""
        self._stop.set()
        for fd in (self.slave, self.master):
            with contextlib.suppress(OSError):
                os.close(fd)


class TmuxScreen:
    """The supervisor's tmux server: what is on the kiosk's screen, and the keyboard."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"tmux {args[0]}: {result.stderr.strip()}")
        return result.stdout

    def window(self) -> str:
        """The name of the window on show (``locked`` or ``staff``)."""
        return self._tmux("display-message", "-p", "-t", "kiosk", "#{window_name}").strip()

    def text(self) -> str:
        """The screen on show, as text."""
        return self._tmux("capture-pane", "-p", "-t", "kiosk")

    async def keys(self, *keys: str, pause: float = 0.25) -> None:
        """Press keys (tmux names: Enter, Tab, C-s, ...), one at a time, as a person does: a
        terminal app reads a burst of input as one chunk, and a key that arrives before the
        screen it is meant for has drawn goes to the screen before it."""
        for key in keys:
            self._tmux("send-keys", "-t", "kiosk", key)
            await asyncio.sleep(pause)

    async def type(self, text: str, pause: float = 0.25) -> None:
        """Type ``text`` literally."""
        self._tmux("send-keys", "-t", "kiosk", "-l", text)
        await asyncio.sleep(pause)

    async def wait(
        self,
        wanted: str | Callable[[str], bool],
        *,
        within: float = 30.0,
        window: str | None = None,
        what: str | None = None,
    ) -> str:
        """Wait until the screen shows ``wanted`` (text, or a test on the text); the screen."""
        test = (lambda screen: wanted in screen) if isinstance(wanted, str) else wanted
        deadline = time.monotonic() + within
        screen = ""
        while True:
            try:
                shown = self.window()
                screen = self.text()
            except (RuntimeError, subprocess.TimeoutExpired):
                shown, screen = "", ""
            if (window is None or shown == window) and test(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the kiosk never showed {what or wanted!r} (window {shown!r}):\n{screen}"
                )
            await asyncio.sleep(0.1)

    def find(self, pattern: str) -> str:
        """The first match of ``pattern`` on the screen (AssertionError if none)."""
        screen = self.text()
        match = re.search(pattern, screen)
        if match is None:
            raise AssertionError(f"{pattern!r} is not on the screen:\n{screen}")
        return match.group(0)
