"""``kontaktstation ui``: the kiosk terminal's supervisor, alternating the locked and staff UIs.

The mechanism is a private tmux server whose configuration removes every key binding (no
prefix key, no status line, no copy mode, no command prompt), with two windows:

- ``locked``: the locked UI (``python -m tui.locked``), started first and **always
  running and drawn**, so that a lock only has to switch windows (about 13 ms here; a
  Textual cold start is 0.3-0.5 s, far longer on a Pi, during which a stale staff screen
  with names on it would stay visible);
- ``staff``: the staff UI (``python -m tui.staff``), started when someone presses "log in"
  on the lock screen (the locked UI sends ``login`` on the supervisor's Unix socket) and
  shown once it has drawn its first screen.

The supervisor follows stationd's event stream. At the lock edge (state ``locked`` or
``in_call_private``, or any ``lock_requested``) it selects the locked window *first*, then
sends SIGTERM to the staff UI's process group and SIGKILL after a short grace period
(:attr:`SupervisorConfig.grace_seconds`): the lock never depends on the staff UI's good
behaviour (stationd has already revoked its token). It fails closed: if the event stream
breaks, it locks the screen; if the staff UI exits on its own while the station is
unlocked, it asks stationd to lock; a crashed locked UI is restarted at once.

On the appliance the two UIs are also two Unix users (issue 14 item 7): each runs in a tmux
server of its own user (``kontaktstation ui-host``, :mod:`tui.uihost`, a systemd unit each),
which lets the kiosk's user in; the supervisor creates the UI's session there, and its own
windows ``locked`` and ``staff`` run a tmux *client* attached to that session. Switching stays
a ``select-window`` between two screens already drawn, and neither UI's user can reach the
other's screen, process or token: the sockets are in directories only the kiosk's user shares,
and ``/proc`` of another uid is closed. The supervisor can no longer signal the staff UI itself
(another uid): it asks the staff UI's server to (``run-shell kill``), which runs as that user.
Without ``--locked-host``/``--staff-host`` (the demo, development) both UIs run in the
supervisor's own tmux as before.

Why tmux, not two virtual consoles or a compositor: it runs in any terminal (the kiosk's
foot under cage, an SSH session for development, the test suite with no terminal at all),
and ``select-window`` switches to a surface that is already drawn. The alternative that
meets "already drawn" on the Pi, a second Wayland surface, would tie the UI to one
compositor.

Over 800 lines for one job, the kiosk's two screens and the lock between them: the tmux
configuration, the supervisor (start, lock, staff log-in, respawn, the hosted variant) and its
command line belong together; the lock's guarantees are read in one place.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from station.core.tasks import cancel_and_wait
from station.i18n import N_
from stationapi.errors import StationClientError
from stationapi.locked import LockedClient
from tui.errors import UiError
from tui.stationd import LOCKED_STATES, SOCKET_ENV
from tui.stationd import socket_path as stationd_socket

__all__ = [
    "STAFF_COMMAND",
    "LockTiming",
    "Supervisor",
    "SupervisorConfig",
    "SupervisorError",
    "TmuxMissing",
    "main",
    "tmux_config",
]

_log = logging.getLogger("tui.supervisor")

#: The real staff UI's entry point (the other app in this package).
STAFF_COMMAND: Final = (sys.executable, "-m", "tui.staff")
LOCKED_COMMAND: Final = (sys.executable, "-m", "tui.locked")
SESSION: Final = "kiosk"
#: The supervisor's directory inside the session's ``XDG_RUNTIME_DIR``.
RUNTIME_NAME: Final = "kontaktstation-ui"
LOCKED_WINDOW: Final = f"{SESSION}:locked"
STAFF_WINDOW: Final = f"{SESSION}:staff"
#: The two UIs by role: the name of the window in the kiosk and of the session in its host.
LOCKED: Final = "locked"
STAFF: Final = "staff"
#: How long the supervisor waits for a UI's tmux server (its unit starting) to answer.
_HOST_WAIT: Final = 30.0
#: What a UI's session in its host server is given of the supervisor's environment: the
#: station's own settings and the language, never the kiosk session's (its runtime
#: directory, its Wayland display).
_UI_ENV_PREFIXES: Final = ("KONTAKTSTATION_", "LANG", "LC_")
#: Back-off between attempts to reach stationd's event stream.
_RECONNECT: Final = (0.2, 0.5, 1.0, 2.0, 5.0)


class SupervisorError(UiError):
    """The supervisor cannot run (tmux missing, the terminal multiplexer failed)."""

    default_user_message = N_(
        "The station's screen could not start. Restart the station, and contact IT."
    )


class TmuxMissing(SupervisorError):
    ""

    """tmux is not installed."""

    default_user_message = N_(
        "The program tmux is missing. Install it (apt install tmux), or contact IT."
    )


def tmux_config(*, exit_key: str | None = None, size: tuple[int, int] = (100, 30)) -> str:
    """The tmux configuration: every key binding removed, no status line, no history.

    ``exit_key`` (the demo's ``C-c``) is the one binding added back: it detaches the
    terminal, which ends the supervisor. A kiosk has none.
    """
    lines = [
        "set -g prefix None",
        "set -g prefix2 None",
        *(f"unbind-key -a -T {table}" for table in ("prefix", "root", "copy-mode", "copy-mode-vi")),
        "set -g status off",
        # Mouse on with no mouse bindings: tmux forwards clicks and touches to the pane's
        # app (the resident's touch screen) and does nothing of its own with them.
        "set -g mouse on",
        "set -g escape-time 0",
        "set -g history-limit 0",
        "set -g remain-on-exit on",
        "set -g allow-rename off",
        "set -g automatic-rename off",
        "set -g set-titles off",
        "set -g visual-bell off",
        "set -g visual-activity off",
        "set -g destroy-unattached off",
        "set -g detach-on-destroy off",
        "set -g exit-empty off",
        "set -g exit-unattached off",
        "set -g lock-after-time 0",
        "set -g focus-events on",
        "set -g default-terminal tmux-256color",
        # tmux runs each window's command with the user's login shell, and the kiosk's user
        # has none (/usr/sbin/nologin would print a refusal and exit 1: a dead lock screen).
        "set -g default-shell /bin/sh",
        f"set -g default-size {size[0]}x{size[1]}",
    ]
    if exit_key:
        lines.append(f"bind-key -n {exit_key} detach-client")
    return "\n".join(lines) + "\n"


@dataclass
class SupervisorConfig:
    """What the supervisor runs and where; the defaults are the product's."""

    #: stationd's API socket.
    socket_path: Path
    #: Where the tmux socket and the control socket live (a fresh 0700 directory if None).
    runtime_dir: Path | None = None
    locked_command: Sequence[str] = LOCKED_COMMAND
    staff_command: Sequence[str] = STAFF_COMMAND
    #: SIGTERM → SIGKILL for a staff UI that does not exit.
    grace_seconds: float = 1.0
    #: Attach this terminal to the kiosk session (False: run detached, for tests/benches).
    attach: bool = True
    #: The demo's way out (``C-c``); None in a kiosk.
    exit_key: str | None = None
    #: Extra environment for both UIs.
    environ: Mapping[str, str] = field(default_factory=dict)
    #: Window size while no terminal is attached.
    size: tuple[int, int] = (100, 30)
    #: How long a starting staff UI may take to draw before it is shown anyway.
    staff_draw_timeout: float = 10.0
    #: The UIs' own tmux servers (``kontaktstation ui-host``, each as the UI's Unix user);
    #: both or neither. None: both UIs run in the supervisor's own tmux.
    locked_host: Path | None = None
    staff_host: Path | None = None
    #: The control socket the locked UI asks to log in on; default: in ``runtime_dir``. With
    #: hosts it must be where the locked UI's user can reach it (``/run/kontaktstation-ui``).
    control_socket: Path | None = None

    def __post_init__(self) -> None:
        if (self.locked_host is None) != (self.staff_host is None):
            raise ValueError("give both UI hosts (locked and staff) or neither")

    @property
    def hosted(self) -> bool:
        """Whether the UIs run in their own users' tmux servers."""
        return self.locked_host is not None


@dataclass
class LockTiming:
    """One lock edge as the supervisor saw it (``time.perf_counter()`` seconds)."""

    seen: float
    shown: float | None = None
    staff_gone: float | None = None
    killed: bool = False


class Supervisor:
    """See the module docs. ``await run()``, or ``start()`` / ``stop()`` in tests."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self._own_runtime = config.runtime_dir is None
        self.runtime_dir = config.runtime_dir or Path(tempfile.mkdtemp(prefix="ks-ui-"))
        self.tmux_socket = self.runtime_dir / "tmux.sock"
        self.control_socket = config.control_socket or self.runtime_dir / "control.sock"
        self.state: str | None = None
        self.staff_pid: int | None = None
        self.locked_pid: int | None = None
        #: With hosts: the pid of the tmux client in the kiosk's ``locked`` window.
        self._locked_client: int | None = None
        self._locked_lock = asyncio.Lock()
        self.timings: list[LockTiming] = []
        self._tmux = shutil.which("tmux")
        self._tasks: list[asyncio.Task[None]] = []
        self._control: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self._lock_epoch = 0
        self._staff_lock = asyncio.Lock()
        self._watchers: dict[int, int] = {}
        self._staff_exit = asyncio.Event()
        self._stopped = False

    # ------------------------------------------------------------------ tmux

    async def tmux(self, *args: str, check: bool = True) -> str:
        """Run one tmux command against the private server; its stdout."""
        return await self._run_tmux(self.tmux_socket, args, check=check)

    async def host_tmux(self, role: str, *args: str, check: bool = True) -> str:
        """Run one tmux command against the UI ``role``'s own server; its stdout."""
        host = self.config.locked_host if role == LOCKED else self.config.staff_host
        assert host is not None
        # A client environment with nothing of the kiosk's session in it: tmux copies some
        # of a client's variables into the sessions it creates.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        return await self._run_tmux(host, args, check=check, env=env)

    async def _run_tmux(
        self,
        socket: Path,
        args: Sequence[str],
        *,
        check: bool,
        env: Mapping[str, str] | None = None,
    ) -> str:
        assert self._tmux is not None
        proc = await asyncio.create_subprocess_exec(
            self._tmux,
            "-S",
            str(socket),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate()
        if check and proc.returncode != 0:
            raise SupervisorError(
                f"tmux {args[0]} failed ({proc.returncode}): {err.decode(errors='replace')[:200]}"
            )
        return out.decode(errors="replace")

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TEXTUAL")}
        env.pop("TMUX", None)
        env.update(self.config.environ)
        env[SOCKET_ENV] = str(self.config.socket_path)
        env["KONTAKTSTATION_SUPERVISOR_SOCKET"] = str(self.control_socket)
        return env

    def _ui_environment(self) -> dict[str, str]:
        """What a UI's session in its host server is given (see ``_UI_ENV_PREFIXES``)."""
        env = {k: v for k, v in os.environ.items() if k.startswith(_UI_ENV_PREFIXES)}
        env.update(self.config.environ)
        env[SOCKET_ENV] = str(self.config.socket_path)
        env["KONTAKTSTATION_SUPERVISOR_SOCKET"] = str(self.control_socket)
        return env

    @staticmethod
    def _shell(command: Sequence[str]) -> str:
        # exec: the pane's process *is* the UI, so its pid is the one to signal.
        return "exec " + shlex.join(command)

    def _window_command(self, role: str) -> str:
        """What the kiosk's window ``role`` runs: the UI itself, or a client of its host."""
        if not self.config.hosted:
            command = self.config.locked_command if role == LOCKED else self.config.staff_command
            return self._shell(command)
        host = self.config.locked_host if role == LOCKED else self.config.staff_host
        assert self._tmux is not None and host is not None
        # The kiosk's window is itself a tmux pane: unset TMUX, or the client refuses to nest.
        attach = ["env", "-u", "TMUX", self._tmux, "-S", str(host), "attach-session"]
        return self._shell([*attach, "-t", f"={role}"])

    async def _host_session(self, role: str) -> int:
        """(Re)create the UI ``role``'s session in its own server; the UI's pid."""
        command = self.config.locked_command if role == LOCKED else self.config.staff_command
        await self.host_tmux(role, "kill-session", "-t", f"={role}", check=False)
        width, height = self.config.size
        env = [f"-e{key}={value}" for key, value in sorted(self._ui_environment().items())]
        out = await self.host_tmux(
            role,
            "new-session",
            "-d",
            "-s",
            role,
            "-x",
            str(width),
            "-y",
            str(height),
            "-c",
            "/",
            *env,
            "-P",
            "-F",
            "#{pane_pid}",
            self._shell(command),
        )
        return int(out.strip())

    async def _wait_for_hosts(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _HOST_WAIT
        for role in (LOCKED, STAFF):
            while True:
                try:
                    await self.host_tmux(role, "server-access", "-l")
                    break
                except SupervisorError as exc:
                    if loop.time() > deadline:
                        raise SupervisorError(f"the {role} UI's tmux server: {exc}") from exc
                await asyncio.sleep(0.1)

    async def _signal(self, role: str, pid: int, sig: signal.Signals) -> None:
        """Signal a UI's process group: directly, or (another user's) through its server."""
        if not self.config.hosted:
            _kill_group(pid, sig)
            return
        name = sig.name.removeprefix("SIG")
        # run-shell runs in the UI's own server, as the UI's user; tmux started the pane's
        # process as a process group of its own.
        await self.host_tmux(
            role,
            "run-shell",
            f"kill -{name} -- -{pid} 2>/dev/null || kill -{name} {pid} 2>/dev/null; true",
            check=False,
        )

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Start tmux with the locked UI, the control socket and the event follower."""
        if self._tmux is None:
            raise TmuxMissing("tmux is not installed (apt install tmux)")
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        if self.tmux_socket.exists():
            # A supervisor before us died (the kiosk restarts it): its tmux server, and the
            # staff UI in it, must not outlive it. Start from nothing.
            await self.tmux("kill-server", check=False)
        conf = self.runtime_dir / "tmux.conf"
        conf.write_text(tmux_config(exit_key=self.config.exit_key, size=self.config.size))
        if self.config.hosted:
            await self._wait_for_hosts()
            self.locked_pid = await self._host_session(LOCKED)
        width, height = self.config.size
        proc = await asyncio.create_subprocess_exec(
            self._tmux,
            "-S",
            str(self.tmux_socket),
            "-f",
            str(conf),
            "new-session",
            "-d",
            "-s",
            SESSION,
            "-n",
            LOCKED,
            "-x",
            str(width),
            "-y",
            str(height),
            "-P",
            "-F",
            "#{pane_pid}",
            self._window_command(LOCKED),
            env=self._environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise SupervisorError(f"tmux did not start: {err.decode(errors='replace')[:200]}")
        pane = int(out.decode().strip())
        if self.config.hosted:
            self._locked_client = pane
            self._watch(pane, self._on_locked_exit)
        else:
            self.locked_pid = pane
        assert self.locked_pid is not None
        self._watch(self.locked_pid, self._on_locked_exit)
        with contextlib.suppress(FileNotFoundError):
            self.control_socket.unlink()  # a supervisor before us died
        self._control = await asyncio.start_unix_server(
            self._on_control, path=str(self.control_socket)
        )
        if self.config.hosted:
            # The locked UI's user reaches it through its group: the group of its own server's
            # socket (the kiosk's user is a member; nobody else is).
            assert self.config.locked_host is not None
            os.chown(self.control_socket, -1, self.config.locked_host.stat().st_gid)
            os.chmod(self.control_socket, 0o660)
        else:
            os.chmod(self.control_socket, 0o600)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._follow_events(), name="supervisor-events"))

    async def run(self) -> int:
        """Start, attach this terminal (or wait for :meth:`request_stop`), stop. Exit status."""
        loop = asyncio.get_running_loop()
        with _signals(loop, self.request_stop):
            await self.start()
            try:
                if self.config.attach:
                    return await self._attach()
                await self._stop.wait()
                return 0
            finally:
                await self.stop()

    async def _attach(self) -> int:
        assert self._tmux is not None
        client = await asyncio.create_subprocess_exec(
            self._tmux, "-S", str(self.tmux_socket), "attach-session", "-t", SESSION
        )
        stop_wait = asyncio.ensure_future(self._stop.wait())
        client_wait = asyncio.ensure_future(client.wait())
        await asyncio.wait({stop_wait, client_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if not client_wait.done():
            with contextlib.suppress(ProcessLookupError):
                client.terminate()
            await client_wait
        return 0

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish (signal handlers call this)."""
        self._stop.set()

    async def stop(self) -> None:
        """End the staff UI, the locked UI and tmux; remove the runtime directory."""
        if self._stopped:
            return
        self._stopped = True
        await cancel_and_wait(self._tasks)
        if self._control is not None:
            self._control.close()
            with contextlib.suppress(Exception):
                await self._control.wait_closed()
        await self._end_staff(LockTiming(seen=time.perf_counter()))
        for pid in list(self._watchers):
            self._unwatch(pid)
        if self.config.hosted:
            with contextlib.suppress(Exception):
                await self.host_tmux(LOCKED, "kill-session", "-t", f"={LOCKED}", check=False)
        with contextlib.suppress(Exception):
            await self.tmux("kill-server", check=False)
        if self.locked_pid is not None and not await _wait_gone(self.locked_pid, 2.0):
            with contextlib.suppress(Exception):
                await self._signal(LOCKED, self.locked_pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.control_socket.unlink()
        if self._own_runtime:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)

    # ------------------------------------------------------------------ the lock

    async def _follow_events(self) -> None:
        attempt = 0
        while True:
            try:
                async with LockedClient(self.config.socket_path) as client:
                    async for event in client.events():
                        attempt = 0
                        state = event.data.get("state")
                        if isinstance(state, str):
                            self.state = state
                        if event.kind == "lock_requested" or (
                            event.kind in ("snapshot", "state", "locked") and state in LOCKED_STATES
                        ):
                            await self.lock_screen()
            except StationClientError as exc:
                _log.warning("stationd's event stream failed: %s", exc)
            # Fail closed: without the event stream nobody could tell us about a lock.
            self.state = None
            await self.lock_screen()
            await asyncio.sleep(_RECONNECT[min(attempt, len(_RECONNECT) - 1)])
            attempt += 1

    async def lock_screen(self) -> LockTiming:
        """Show the locked UI now, then end the staff UI (TERM, grace, KILL)."""
        timing = LockTiming(seen=time.perf_counter())
        self._lock_epoch += 1
        await self.tmux("select-window", "-t", LOCKED_WINDOW, check=False)
        timing.shown = time.perf_counter()
        if self.staff_pid is not None:
            self.timings.append(timing)
            await self._end_staff(timing)
        return timing

    async def _end_staff(self, timing: LockTiming) -> None:
        async with self._staff_lock:
            pid = self.staff_pid
            if pid is None:
                return
            await self._signal(STAFF, pid, signal.SIGTERM)
            if not await _wait_gone(pid, self.config.grace_seconds):
                _log.warning("the staff UI ignored SIGTERM; killing it")
                await self._signal(STAFF, pid, signal.SIGKILL)
                timing.killed = True
                await _wait_gone(pid, 5.0)
            timing.staff_gone = time.perf_counter()
            self._unwatch(pid)
            self.staff_pid = None
            await self._close_staff_windows()

    async def _close_staff_windows(self) -> None:
        await self.tmux("kill-window", "-t", STAFF_WINDOW, check=False)
        if self.config.hosted:
            await self.host_tmux(STAFF, "kill-session", "-t", f"={STAFF}", check=False)

    # ------------------------------------------------------------------ log in

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.config.staff_draw_timeout + 5):
                line = (await reader.readline()).strip()
                if line == b"login":
                    answer = b"ok" if await self.start_staff() else b"busy"
                else:
                    answer = b"unknown"
                writer.write(answer + b"\n")
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the asking client hung up or stalled; nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def start_staff(self) -> bool:
        """Start the staff UI in its window and show it once drawn; False if one runs."""
        if self.staff_pid is not None:
            return False
        epoch = self._lock_epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.staff_draw_timeout
        if self.config.hosted:
            # The UI first, as the staff UI's user, in its own server; drawn there before the
            # kiosk's window attaches to it.
            pid = await self._host_session(STAFF)
            self.staff_pid = pid
            self._watch(pid, self._on_staff_exit)
            await self._wait_drawn(
                lambda: self.host_tmux(
                    STAFF, "capture-pane", "-p", "-t", f"={STAFF}:", check=False
                ),
                pid,
                deadline,
            )
            if self.staff_pid != pid or self._lock_epoch != epoch:
                return False
        out = await self.tmux(
            "new-window",
            "-d",
            "-n",
            STAFF,
            "-t",
            f"{SESSION}:",
            "-P",
            "-F",
            "#{pane_pid}",
            self._window_command(STAFF),
        )
        if not self.config.hosted:
            pid = int(out.strip())
            self.staff_pid = pid
            self._watch(pid, self._on_staff_exit)
        # Shown once it has drawn something: until then the lock screen stays in view.
        await self._wait_drawn(
            lambda: self.tmux("capture-pane", "-p", "-t", STAFF_WINDOW, check=False), pid, deadline
        )
        if self.staff_pid != pid or self._lock_epoch != epoch:
            return False  # a lock came first: it stays hidden (and is being ended)
        await self.tmux("select-window", "-t", STAFF_WINDOW, check=False)
        return True

    async def _wait_drawn(
        self, capture: Callable[[], Awaitable[str]], pid: int, deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < deadline and self.staff_pid == pid:
            if (await capture()).strip():
                return
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ process exits

    def _watch(self, pid: int, callback: object) -> None:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        self._watchers[pid] = fd
        loop = asyncio.get_running_loop()
        loop.add_reader(fd, lambda: self._exited(pid, callback))

    def _unwatch(self, pid: int) -> None:
        fd = self._watchers.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _exited(self, pid: int, callback: object) -> None:
        self._unwatch(pid)
        if not self._stopped:
            task = asyncio.get_running_loop().create_task(callback(pid))  # type: ignore[operator]
            self._tasks.append(task)

    async def _on_staff_exit(self, pid: int) -> None:
        if self.staff_pid != pid:
            return
        await self.tmux("select-window", "-t", LOCKED_WINDOW, check=False)
        self.staff_pid = None
        await self._close_staff_windows()
        if self.state not in LOCKED_STATES:
            # The staff UI is gone but the station is unlocked: lock it (fail closed).
            with contextlib.suppress(StationClientError):
                async with LockedClient(self.config.socket_path) as client:
                    await client.lock()

    async def _on_locked_exit(self, pid: int) -> None:
        """The locked UI (or, with hosts, the kiosk's client of it) exited: restart it."""
        async with self._locked_lock:
            if self._stopped:
                return
            if pid == self.locked_pid:
                _log.error("the locked UI exited; restarting it")
                if self.config.hosted:
                    await self._restart_hosted_locked_ui()
                else:
                    await self._respawn_locked_window()
                    self.locked_pid = self._locked_client
                    self._locked_client = None
            if self.config.hosted and not _running(self._locked_client):
                # The kiosk's client of the locked UI's server ended (its session was made
                # anew, or the server restarted): the session first, then a new client.
                if not await self._host_pane_pid(LOCKED):
                    await self._restart_hosted_locked_ui()
                _log.warning("the kiosk's client of the locked UI ended; attaching again")
                await self._respawn_locked_window()
            if self.staff_pid is None:
                await self.tmux("select-window", "-t", LOCKED_WINDOW, check=False)

    async def _respawn_locked_window(self) -> None:
        command = self._window_command(LOCKED)
        await self.tmux("respawn-pane", "-k", "-t", LOCKED_WINDOW, command)
        out = await self.tmux("display-message", "-p", "-t", LOCKED_WINDOW, "#{pane_pid}")
        self._locked_client = int(out.strip())
        self._watch(self._locked_client, self._on_locked_exit)

    async def _host_pane_pid(self, role: str) -> int | None:
        """The pid of the UI in its host's session, None if there is no such session."""
        out = await self.host_tmux(
            role, "display-message", "-p", "-t", f"={role}:", "#{pane_pid}", check=False
        )
        return int(out.strip()) if out.strip().isdigit() else None

    async def _restart_hosted_locked_ui(self) -> None:
        # The session still there (the UI crashed): respawn its pane, and the kiosk's client
        # stays attached. The session gone (its server restarted): wait for it, make it anew.
        command = self._shell(self.config.locked_command)
        await self.host_tmux(
            LOCKED, "respawn-pane", "-k", "-t", f"={LOCKED}:", command, check=False
        )
        pid = await self._host_pane_pid(LOCKED)
        if pid is None:
            await self._wait_for_hosts()
            pid = await self._host_session(LOCKED)
        self.locked_pid = pid
        self._watch(pid, self._on_locked_exit)

    async def current_window(self) -> str:
        """The name of the window the kiosk shows now."""
        return (await self.tmux("display-message", "-p", "-t", SESSION, "#{window_name}")).strip()

    async def capture(self, window: str | None = None) -> str:
        """The text the kiosk shows now (or ``window``'s)."""
        return await self.tmux("capture-pane", "-p", "-t", window or SESSION, check=False)


def _running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's (a UI's, with hosts)
    return True


def _kill_group(pid: int, sig: signal.Signals) -> None:
    # tmux starts each pane in its own session, so the pane's pid is its process group.
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def _wait_gone(pid: int, within: float) -> bool:
    """True once ``pid`` no longer runs (within ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        fd = -1
    try:
        if fd >= 0:
            gone = asyncio.Event()
            loop.add_reader(fd, gone.set)
            try:
                async with asyncio.timeout(within):
                    await gone.wait()
                return True
            except TimeoutError:
                return False
            finally:
                loop.remove_reader(fd)
        deadline = loop.time() + within
        while loop.time() < deadline:
            if not _running(pid):
                return True
            await asyncio.sleep(0.01)
        return False
    finally:
        if fd >= 0:
            os.close(fd)


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Iterator[None]:
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation ui",
        description="The kiosk terminal: the locked UI, and the staff UI after log-in.",
    )
    parser.add_argument("--socket", type=Path, help="stationd's API socket")
    parser.add_argument(
        "--grace",
        type=float,
        default=1.0,
        help="seconds before a staff UI that ignores SIGTERM at a lock is killed",
    )
    parser.add_argument("--detached", action="store_true", help="do not attach this terminal")
    parser.add_argument(
        "--locked-host",
        type=Path,
        help="the locked UI's own tmux server (kontaktstation ui-host, as the UI's user)",
    )
    parser.add_argument(
        "--staff-host",
        type=Path,
        help="the staff UI's own tmux server (kontaktstation ui-host, as the UI's user)",
    )
    parser.add_argument(
        "--control-socket",
        type=Path,
        help="where the locked UI asks to log in (with hosts: a directory its user can reach)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the supervisor in this terminal until it is stopped."""
    args = _parser().parse_args(argv)
    socket_path = stationd_socket(args.socket)
    # The kiosk's logind session has a runtime directory: the tmux server lives there under a
    # fixed name (IT, and the system test, find the screen at
    # $XDG_RUNTIME_DIR/kontaktstation-ui/tmux.sock). Elsewhere, a private temporary one.
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    try:
        config = SupervisorConfig(
            socket_path=socket_path,
            grace_seconds=args.grace,
            attach=not args.detached,
            runtime_dir=Path(runtime) / RUNTIME_NAME if runtime else None,
            locked_host=args.locked_host,
            staff_host=args.staff_host,
            control_socket=args.control_socket,
        )
    except ValueError as exc:
        print(f"kontaktstation ui: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(Supervisor(config).run())
    except SupervisorError as exc:
        print(f"kontaktstation ui: {exc}\n{exc.user_message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
