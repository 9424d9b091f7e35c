"""How stationd serves its local API: the Unix socket, uvicorn, and the stop signals.

The socket: the daemon creates the parent directory ``0750`` when it has to (systemd's
``RuntimeDirectory=kontaktstation`` with ``RuntimeDirectoryMode=0750`` does the same) and
binds the socket itself with a umask, so it is ``0660`` from the first instant (uvicorn's own
``uds=`` binding would leave it ``0666`` until a chmod). The station's users are the daemon's
and the UI's, sharing one group: only they can connect. A stale socket file from a crash is
replaced; a socket another live stationd answers on is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import uvicorn

from station.daemon.errors import DaemonError

__all__ = [
    "DEFAULT_SOCKET",
    "SOCKET_ENV",
    "ApiServer",
    "api_server",
    "bind_unix_socket",
    "default_socket_path",
    "handle_stop_signals",
    "unlink_if_socket",
]

SOCKET_ENV: Final = "KONTAKTSTATION_SOCKET"
#: Exit status asking systemd for a restart (a remote wipe finishes at the next start).
EXIT_RESTART: Final = 75
DEFAULT_SOCKET: Final = Path("/run/kontaktstation/stationd.sock")
#: Longest path a Unix socket address holds (``sun_path`` is 108 bytes with the NUL).
_MAX_SOCKET_PATH: Final = 107


def default_socket_path(environ: Mapping[str, str] | None = None) -> Path:
    """``KONTAKTSTATION_SOCKET`` or the production default."""
    env = os.environ if environ is None else environ
    value = env.get(SOCKET_ENV, "")
    return Path(value) if value else DEFAULT_SOCKET


def api_server(app: Any, *, shutdown_seconds: float) -> ApiServer:
    """uvicorn for the local API: HTTP/1.1 only, quiet, bounded (so shutdown stays in time)."""
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        # Bounded, so shutdown stays within shutdown_seconds.
        timeout_graceful_shutdown=max(1, int(shutdown_seconds / 3)),
        timeout_keep_alive=5,
        limit_concurrency=256,
    )
    return ApiServer(config)


class ApiServer(uvicorn.Server):
    """uvicorn's server without its own signal handling: stationd owns SIGTERM/SIGINT.

    uvicorn would install handlers, and re-raise the signal after shutdown (exiting with
    the signal's status instead of our clean 0).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.contextmanager
def handle_stop_signals(loop: asyncio.AbstractEventLoop, callback: Any) -> Iterator[None]:
    """SIGTERM and SIGINT call ``callback`` on the loop while the block runs (main thread only)."""
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests run the daemon in-process)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def unlink_if_socket(path: Path) -> None:
    """Remove ``path`` if it is a socket (never another kind of file)."""
    if stat.S_ISSOCK(os.lstat(path).st_mode):
        path.unlink()


def bind_unix_socket(path: Path, *, backlog: int = 64) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0660, parent created 0750 if missing.

    Refuses (``DaemonError``) a path that is too long, an existing non-socket file, and a
    socket another process is still serving; replaces a stale socket left by a crash.
    """
    text = os.fsencode(path)
    if len(text) > _MAX_SOCKET_PATH:
        raise DaemonError(f"socket path is {len(text)} bytes; at most {_MAX_SOCKET_PATH} fit")
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o750, parents=True)
        os.chmod(parent, 0o750)  # noqa: S103 (group = the UI user; mkdir's mode is umasked)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise DaemonError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise DaemonError(f"cannot check the existing socket {path}: {exc}") from None
            path.unlink()  # stale: nobody listens
        else:
            raise DaemonError(f"another stationd is already serving {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o117)  # the socket file is born 0660
    try:
        sock.bind(str(path))
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o660)
    sock.listen(backlog)
    sock.setblocking(False)
    return sock
