"""``kontaktstation ui-host``: a tmux server of one UI's own Unix user, for the supervisor.

Issue 14 item 7: the locked UI and the staff UI run as different Unix users
(``kontaktstation-locked``, ``kontaktstation-staff``), each in a tmux server of its own, so
that code running as one can read neither the other's screen (its tmux socket), nor its
memory or environment (``/proc``: another uid), nor its staff token. Each server is a
systemd unit running this program as that user (``systemd/kontaktstation-ui-*.service``).

This program starts ``tmux -D`` (the server in the foreground: systemd sees it and stops
it) with the kiosk's configuration (every key unbound, :func:`tui.supervisor.tmux_config`),
then, as the server's owner:

- lets the kiosk's user in with tmux's own access list (``server-access -a``, tmux >= 3.3;
  tmux checks the connecting process's uid with ``SO_PEERCRED``) and opens the socket to the
  server's group (``0660``). The kiosk's user is the one other member of that group, so
  the socket's mode and the directory's (``0750``) already keep every other user out; the
  access list is the second wall. Connecting once as the owner is also what makes tmux
  3.3 read its configuration when started with ``-D`` (found here: until a client of the
  owner connected, another user's connection was refused);
- waits for the server to exit, and exits with its status.

The supervisor (the kiosk's user) then creates the UI's session in this server
(``new-session``: the UI runs as *this* user) and attaches a client to it from a window of
its own tmux, so the kiosk can still switch between two screens that are already drawn.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Final

from tui.supervisor import tmux_config

__all__ = ["HostError", "main", "open_to"]

_log = logging.getLogger("tui.uihost")

#: How long tmux may take to make its socket.
_SOCKET_WAIT: Final = 10.0


class HostError(RuntimeError):
    """The UI's tmux server could not be started or opened (English, for the journal)."""


def _tmux(tmux: str, socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (tmux from PATH, our own arguments)
        [tmux, "-S", str(socket), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
        stdin=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )


def open_to(tmux: str, socket: Path, users: Sequence[str]) -> None:
    """Let ``users`` in (tmux's access list), then open the socket to its group."""
    me = os.getuid()
    for name in users:
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            raise HostError(f"no such user {name!r} to let into the UI's tmux") from None
        if uid in (me, 0):
            continue  # tmux always lets its owner and root in
        result = _tmux(tmux, socket, "server-access", "-a", "-w", name)
        if result.returncode != 0 and "already" not in result.stderr:
            raise HostError(f"tmux server-access failed: {result.stderr.strip()[:200]}")
    # Even with nobody to add, one command as the owner: tmux 3.3 started with -D reads its
    # configuration only then.
    result = _tmux(tmux, socket, "server-access", "-l")
    if result.returncode != 0:
        raise HostError(f"tmux does not answer: {result.stderr.strip()[:200]}")
    os.chmod(socket, 0o660)


def _wait_for_socket(server: subprocess.Popen[bytes], socket: Path) -> None:
    deadline = time.monotonic() + _SOCKET_WAIT
    while not socket.is_socket():
        if server.poll() is not None:
            raise HostError(f"tmux exited ({server.returncode}) before making {socket}")
        if time.monotonic() > deadline:
            raise HostError(f"tmux made no socket at {socket} in {_SOCKET_WAIT:.0f} s")
        time.sleep(0.02)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation ui-host",
        description="A tmux server of this Unix user for one of the kiosk's UIs.",
    )
    parser.add_argument("--socket", type=Path, required=True, help="the tmux socket to make")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="USER",
        help="a user who may connect (the kiosk's); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it exits (or this program is stopped)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = _parser().parse_args(argv)
    tmux = shutil.which("tmux")
    if tmux is None:
        print("kontaktstation ui-host: tmux is not installed (apt install tmux)", file=sys.stderr)
        return 1
    socket: Path = args.socket
    socket.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    if socket.exists():
        # A server before us died: its socket must not be mistaken for ours.
        socket.unlink()
    conf = socket.with_name(socket.name + ".conf")
    conf.write_text(tmux_config())
    server = subprocess.Popen(  # noqa: S603 (tmux from PATH, our own arguments)
        [tmux, "-D", "-S", str(socket), "-f", str(conf)],
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "TMUX"},
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            server.terminate()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        _wait_for_socket(server, socket)
        open_to(tmux, socket, args.allow)
    except (HostError, OSError, subprocess.SubprocessError) as exc:
        print(f"kontaktstation ui-host: {exc}", file=sys.stderr)
        server.terminate()
        server.wait()
        return 1
    _log.info("UI tmux server ready at %s (users let in: %s)", socket, ", ".join(args.allow))
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
