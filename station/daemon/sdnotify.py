"""systemd readiness and watchdog notifications, without needing systemd.

``sd_notify`` is a datagram to the Unix socket named in ``NOTIFY_SOCKET`` (a leading ``@``
means the abstract namespace). Without that variable every call is a no-op, so stationd runs
the same under systemd, in a terminal and in tests.

The watchdog pings come from a task on the daemon's own event loop: if the loop stalls,
the pings stop and systemd restarts the service. That is the point: a thread pinging on
its own would keep a wedged daemon alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger(__name__)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or None without a watchdog.

    systemd sets ``WATCHDOG_PID`` too; a value for another process means the watchdog is not
    ours (e.g. inherited from a parent), so we don't ping.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC")
        return None
    return value / 2_000_000 if value > 0 else None


class Notifier:
    """Sends sd_notify messages; silent when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address.startswith("@"):
            self._address = "\0" + address[1:]
        elif address.startswith("/"):
            self._address = address
        self._interval = watchdog_interval(env)
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """True when a notify socket was given."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (e.g. ``"READY=1"``, ``"STATUS=locked"``); True if it was sent."""
        if self._address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(1.0)
                sock.sendto(payload, self._address)
        except OSError as exc:
            # A missing or full notify socket must never take the daemon down.
            log.warning("sd_notify failed: %s", exc.strerror or type(exc).__name__)
            return False
        return True

    def ready(self, status: str) -> None:
        """Tell systemd start-up is complete."""
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """Update the one-line status systemd shows."""
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        """Tell systemd a clean shutdown has begun."""
        self.notify("STOPPING=1")

    def start_watchdog(self) -> None:
        """Ping WATCHDOG=1 every half interval from the running loop (no-op without one)."""
        if self._interval is None or self._address is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._ping(self._interval), name="sd-watchdog"
        )

    async def stop_watchdog(self) -> None:
        """Stop pinging (on shutdown)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _ping(self, interval: float) -> None:
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)
