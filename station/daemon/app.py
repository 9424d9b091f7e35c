"""stationd's composition root: ``kontaktstation daemon`` (``python -m station.daemon.app``).

Longer than 600 lines on purpose: this is where stationd is put together, and its start
order, its shutdown order and its command line are easiest to check read top to bottom in
one place; each part it wires (store, audit, session, hardware, calls, export, provisioning,
the API and its socket) lives in a module of its own.

:class:`Daemon` wires the pieces and runs them on one asyncio loop:

- the blind store (``station.db``) and the audit log (``audit.db``), each on its own worker
  thread (SQLite with fsync per commit never runs on the loop);
- the session state machine, which **always boots LOCKED**: nothing of a previous run's
  session survives a restart, so a crash mid-call comes back locked;
- the keyring behind its PIN guard (loaded when first needed);
- the hardware: the privacy button (its callbacks are handed to the loop by the hardware
  layer), the status LED and the health checks (``station.daemon.hardware``). A missing
  camera, speakerphone, button or GPIO chip does not stop stationd: the part is reported
  ``missing`` (health, ports, heartbeat, lock screen), calls that need it are refused, and a
  task re-probes every ``reprobe_seconds`` until it is back. Only a configuration error
  (a backend that does not exist) stops it, with one line;
- the local API (``station.daemon.api``: FastAPI routers per capability in
  ``station.daemon.routes``), served by uvicorn on a Unix socket
  (``station.daemon.serving``: how the socket is bound, 0660 from the first instant).

systemd (``Type=notify``): ``READY=1`` once the socket listens, ``STATUS=`` on every session
change, ``WATCHDOG=1`` from a task on the loop (a stalled loop stops the pings), and
``STOPPING=1`` at SIGTERM/SIGINT, after which shutdown is bounded (default 5 s): stop
accepting, end the event streams, stop the server, close the hardware, wait briefly for
queued writes, close the audit log and the store. Every store write commits before it is
acknowledged, so a crash (even SIGKILL) leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI

from hardware.surface.select import build_frame_sink
from hardware.video import FrameSink
from station.core.clock import Clock, SystemClock
from station.core.session import DEFAULT_IDLE_TIMEOUT, Session
from station.core.tasks import cancel_and_wait
from station.daemon.api import DEFAULT_HEARTBEAT_SECONDS, build_app
from station.daemon.errors import DaemonError
from station.daemon.events import EventBroker, EventKind
from station.daemon.hardware import REPROBE_SECONDS, HardwareLink, build_hardware_link
from station.daemon.reminders import REPEAT as REMINDER_REPEAT
from station.daemon.sdnotify import Notifier
from station.daemon.service import StationService
from station.daemon.serving import (
    DEFAULT_SOCKET,
    SOCKET_ENV,
    api_server,
    bind_unix_socket,
    default_socket_path,
    handle_stop_signals,
    unlink_if_socket,
)
from station.daemon.workers import SerialAuditSink, Worker
from station.errors import StationError
from station.i18n import N_
from station.keys.handover import KeyringAccess

__all__ = [
    "DEFAULT_SOCKET",
    "EXIT_RESTART",
    "SOCKET_ENV",
    "Daemon",
    "DaemonConfig",
    "bind_unix_socket",
    "main",
]

_log = logging.getLogger("station.daemon")

#: Exit status asking systemd for a restart (a remote wipe finishes at the next start).
EXIT_RESTART: Final = 75


@dataclass
class DaemonConfig:
    """Everything the daemon is started with; the defaults are the product's."""

    data_dir: Path
    socket_path: Path
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT
    #: How often the idle timeout is checked.
    tick_seconds: float = 1.0
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    #: How often the hardware is re-checked (a change is published as a ``health`` event).
    health_interval_seconds: float = 60.0
    #: How often a missing part is looked for again (see station.daemon.hardware).
    reprobe_seconds: float = REPROBE_SECONDS
    #: How often the due reminders and missed slots are looked at (station.daemon.reminders).
    reminder_tick_seconds: float = 1.0
    #: An unanswered reminder sounds again after this long (on the daemon's clock).
    reminder_repeat: timedelta = REMINDER_REPEAT
    #: A call that ended without a note this long ago is counted in the heartbeat.
    undocumented_after: timedelta = timedelta(days=1)
    #: The whole shutdown, SIGTERM to exit, stays within this.
    shutdown_seconds: float = 5.0
    #: ``auto`` (fakes off a Raspberry Pi), ``fake`` or ``real``; see station.daemon.hardware.
    hardware: str = "auto"
    #: Environment the hardware layer reads its backends from (None: ``os.environ``).
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    #: The call engine's configuration (None: from ``environ``, see station.call.config).
    call: Any = field(default=None, repr=False)
    #: The hub's URL for provisioning (``--hub-url`` or ``KONTAKTSTATION_HUB_URL``); None: no
    #: provisioning agent runs.
    hub_url: str | None = None
    #: Overrides for the provisioning agent (tests: ``kdf_params``, ``check_turn``, ...).
    provisioning: Mapping[str, Any] = field(default_factory=dict, repr=False)


class Daemon:
    """stationd: build with a config, then ``await run()`` (or ``start()`` / ``stop()``)."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        hardware: HardwareLink | None = None,
        frame_sink: Any = None,
    ) -> None:
        self.config = config
        #: Where the call's video goes (a ``hardware.video.FrameSink``). None: chosen by name
        #: (``KONTAKTSTATION_FRAME_SINK``, default the shared memory the video surface reads)
        #: when the call engine is built; tests inject one.
        self.frame_sink = frame_sink
        self._owns_sink = False
        self.calls: Any = None
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self._hardware = hardware
        # Created here (not in start) so a signal during start-up is not lost.
        self._stop_requested = asyncio.Event()
        self._service: StationService | None = None
        self._server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._store_worker: Worker | None = None
        self._audit_worker: Worker | None = None
        self._store: Any = None
        self._audit: Any = None
        self._keys: KeyringAccess | None = None
        self._precheck: Any = None
        #: The local API (FastAPI) once started; its ``openapi()`` is stationd's description.
        self.api: FastAPI | None = None
        #: The care-record export (``station.export.ExportService``), None if unusable.
        self.exports: Any = None
        self._socket: socket.socket | None = None
        self._started = False
        self._stopped = False
        #: The provisioning agent (None without a hub); see provisioning.agent.
        self.provisioning: Any = None
        #: Its port into stationd (``station.daemon.provisioning_port.DaemonStationPort``).
        self.provisioning_port: Any = None
        #: Set by a remote wipe or decommission: ``run`` then exits with ``EXIT_RESTART``.
        self.restart_requested = False
        #: The due reminders and missed slots (``station.daemon.reminders``), once started.
        self.reminders: Any = None

    # ------------------------------------------------------------------ accessors

    @property
    def service(self) -> StationService:
        """The running service (session, tokens, broker, store); after :meth:`start`."""
        if self._service is None:
            raise DaemonError("the daemon is not started")
        return self._service

    @property
    def hardware(self) -> HardwareLink | None:
        """The hardware link (button, LED, health), once started."""
        return self._hardware

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Open storage, wire the session and hardware, and listen on the socket."""
        if self._started:
            raise DaemonError("the daemon was already started")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self._close_resources()
            raise

    async def _start(self) -> None:
        from station.storage.audit import AuditLog
        from station.storage.store import BlindStore

        cfg = self.config
        data_dir = cfg.data_dir
        if not data_dir.is_dir():
            raise DaemonError(
                f"data directory {data_dir} does not exist",
                N_("The station's data folder is missing. Contact IT."),
            )
        self._store_worker = Worker("stationd-store")
        self._audit_worker = Worker("stationd-audit")
        from provisioning.wipe import finish_pending_wipe

        # A remote wipe destroyed the keys at once; the files stationd held open (the store,
        # the outbox, the hub rooms) go now, before anything opens them.
        if await asyncio.to_thread(finish_pending_wipe, data_dir):
            _log.warning("finished a remote wipe: every file of the wipe list was deleted")
        self._store = await self._store_worker.run(BlindStore.open, data_dir, clock=self.clock)
        self._audit = await self._audit_worker.run(AuditLog.open, data_dir, clock=self.clock)
        audit = SerialAuditSink(self._audit, self._audit_worker)
        # A new Session starts LOCKED: that *is* "boots locked, always".
        session = Session(self.clock, audit, idle_timeout=cfg.idle_timeout)
        self._keys = KeyringAccess(
            data_dir, self.clock, environ=os.environ if cfg.environ is None else cfg.environ
        )
        broker = EventBroker(self.clock)
        loop = asyncio.get_running_loop()
        if self._hardware is None:
            self._hardware = await build_hardware_link(cfg.hardware, cfg.environ, loop)
        hardware = self._hardware
        self._service = StationService(
            clock=self.clock,
            session=session,
            store=self._store,
            store_worker=self._store_worker,
            audit=audit,
            broker=broker,
            keys=self._keys,
            notifier=self.notifier,
            led=hardware.show,
            health=hardware.check_health,
            faults=hardware.faults,
        )
        audit.record("station_started", staff=None, resident=None, outcome="locked")
        await hardware.attach(self._service, loop)
        if cfg.hub_url:
            await self._start_provisioning(cfg.hub_url)

        self._socket = bind_unix_socket(cfg.socket_path)
        from station.daemon.precheck import PreCheck

        self._precheck = PreCheck(self._service, hardware, cfg.environ)
        from station.daemon.exports import open_exports

        # The outbox delivers while locked and offline; its purge guard keeps consultations
        # whose note has not reached the care record.
        self.exports = await open_exports(data_dir, self.clock, audit)
        if self.exports is not None:
            await self.exports.start()
            self.exports.start_purge_loop(self._store, self._service.db)
        from station.daemon.calls import build_call_controller

        self.calls = build_call_controller(
            self._service,
            hardware,
            data_dir=data_dir,
            config=cfg.call,
            environ=cfg.environ,
            sink=self._frame_sink,
            credentials=self._rendezvous_credentials(),
            room_keys=self._room_key_wrap,
        )
        calls = self.calls

        def next_ice_servers() -> Any:
            config = calls.next_config if calls is not None else None
            return config.ice_servers if config is not None else None

        # The pre-call check probes the TURN servers the next call will use.
        self._precheck.ice_servers = next_ice_servers
        self._service.ports_source = self.current_ports
        _log.info("ports: %s", ", ".join(f"{k}={v}" for k, v in self.current_ports().items()))
        if self.provisioning_port is not None:
            # The configuration in force reaches the call engine, the purge and the export.
            self.provisioning_port.bind(data_dir=data_dir, calls=self.calls, exports=self.exports)
        self.api = build_app(
            self._service,
            calls=self.calls,
            precheck=self._precheck,
            exports=self.exports,
            heartbeat_seconds=cfg.heartbeat_seconds,
        )
        self._server = api_server(self.api, shutdown_seconds=cfg.shutdown_seconds)
        self._server_task = loop.create_task(
            self._server.serve(sockets=[self._socket]), name="stationd-http"
        )
        await self._wait_listening()
        self._tasks.append(loop.create_task(self._tick_loop(), name="stationd-idle"))
        self._tasks.append(loop.create_task(self._health_loop(), name="stationd-health"))
        self._tasks.append(loop.create_task(self._reprobe_loop(), name="stationd-reprobe"))
        self._start_reminders(loop)
        if self.provisioning is not None:
            self._tasks.append(
                loop.create_task(self.provisioning.run(), name="stationd-provisioning")
            )
        self.notifier.ready(self._service.status_line())
        self.notifier.start_watchdog()
        _log.info("stationd listening on %s (session locked)", cfg.socket_path)

    def _start_reminders(self, loop: asyncio.AbstractEventLoop) -> None:
        """The due reminders (lamp, chime, speech) and the missed-slot record."""
        from station.daemon.reminders import Reminders

        hardware = self._hardware
        assert hardware is not None
        speech = hardware.speech()
        if speech is None:
            from hardware.audio.speech import MissingSpeech

            speech = MissingSpeech("none", "stationd runs without hardware")
        self.service.undocumented_after = self.config.undocumented_after
        self.reminders = Reminders(
            self.service,
            speaker=hardware.speaker,
            speech=speech,
            repeat=self.config.reminder_repeat,
        )
        self._tasks.append(
            loop.create_task(
                self.reminders.run(self.config.reminder_tick_seconds), name="stationd-reminders"
            )
        )

    def current_ports(self) -> dict[str, str]:
        """Which backend serves each port now; ``GET /v1/health`` and the heartbeat report it."""
        hardware = self._hardware
        return {
            **(hardware.backends() if hardware is not None else {}),
            "frame_sink": _sink_name(self.frame_sink),
            "hub": "configured"
            if self.config.hub_url or (self.calls is not None and self.calls.engine is not None)
            else "none",
            "export": _export_name(self.exports),
            "device_secret": str(self._keys.secret_source.kind) if self._keys else "none",
        }

    def _frame_sink(self) -> FrameSink:
        """The injected sink, or the one the environment names (raises when it cannot be)."""
        if self.frame_sink is None:
            env = os.environ if self.config.environ is None else self.config.environ
            _, self.frame_sink = build_frame_sink(env)
            self._owns_sink = True
        sink: FrameSink = self.frame_sink
        return sink

    async def _wait_listening(self) -> None:
        assert self._server is not None and self._server_task is not None
        async with asyncio.timeout(10):
            while not self._server.started:
                if self._server_task.done():
                    self._server_task.result()  # raises the server's start-up error
                    raise DaemonError("the HTTP server stopped during start-up")
                await asyncio.sleep(0.005)

    async def _tick_loop(self) -> None:
        service = self.service
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            try:
                service.tick()
            except Exception:
                _log.exception("idle tick failed")

    async def _health_loop(self) -> None:
        service = self.service
        while True:
            try:
                await service.refresh_health()
            except Exception:
                _log.exception("health check failed")
            await asyncio.sleep(self.config.health_interval_seconds)

    async def _reprobe_loop(self) -> None:
        """Look for missing parts (and, outside calls, vanished ones) every few seconds.

        A change updates the ports, tells the UIs (``hardware`` and ``health`` events), runs
        the full checks for the part that came back, and wakes the provisioning agent so the
        hub hears of it now rather than at the next heartbeat. A failing probe is logged
        once, not on every round.
        """
        service, hardware = self.service, self._hardware
        assert hardware is not None
        failing: str | None = None
        while True:
            await asyncio.sleep(self.config.reprobe_seconds)
            try:
                changes = await hardware.reprobe(check_present=not service.in_call)
            except Exception as exc:
                if failing != type(exc).__name__:
                    failing = type(exc).__name__
                    _log.error("hardware re-probe failed: %s: %s", failing, exc)
                continue
            failing = None
            if changes:
                self._hardware_changed(changes)

    def _hardware_changed(self, changes: Sequence[Any]) -> None:
        assert self._hardware is not None and self._service is not None
        # The ports report is computed when read (current_ports): nothing to update here.
        self._service.hardware_changed(changes)
        if any(change.present for change in changes):
            # The part that came back gets its real check (skipped during a call).
            task = asyncio.get_running_loop().create_task(self._recheck(), name="stationd-recheck")
            self._tasks.append(task)
            task.add_done_callback(self._forget_task)
        if self.provisioning is not None:
            self.provisioning.wake()

    async def _recheck(self) -> None:
        try:
            await self.service.refresh_health()
        except Exception as exc:  # refresh_health maps check failures itself; a bug only
            _log.error("health check after a hardware change failed: %s", type(exc).__name__)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    def _room_key_wrap(self) -> Any:
        """The wrap for room keys at rest, from the device secret (the OTP key on a Pi)."""
        from station.keys.room_seal import RoomKeyWrap

        assert self._keys is not None
        return RoomKeyWrap(self._keys.secret_source.load())

    def _rendezvous_credentials(self) -> Any:
        """The call engine's rendezvous credentials: short-lived session tokens bought with
        requests signed by the station's identity, through the provisioning agent's client
        (None without an agent: then only a legacy shared token could work)."""
        agent = self.provisioning
        if agent is None:
            return None
        from station.call.errors import HubUnreachable
        from station.call.hub import SessionCredentials

        async def fetch() -> Any:
            if agent.client is None:
                raise HubUnreachable("the provisioning agent has no hub client")
            return await agent.client.rendezvous_session()

        return SessionCredentials(fetch)

    async def _start_provisioning(self, hub_url: str) -> None:
        from station.daemon.provisioning_port import start_agent

        agent, port = start_agent(
            self.service,
            self.config.data_dir,
            hub_url,
            self.clock,
            audit_log=self._audit,
            audit_worker=self._audit_worker,
            request_restart=self.request_restart,
            options={
                "device_secret": self._keys.secret_source if self._keys else None,
                **self.config.provisioning,
            },
        )
        try:
            await agent.start()
        except StationError as exc:
            # The station works without its hub (locked, on its last configuration).
            _log.error("provisioning agent not started: %s", exc)
            self.service.provisioning = None
            return
        self.provisioning = agent
        self.provisioning_port = port

    def request_restart(self) -> None:
        """Stop, asking systemd to start stationd again (exit status ``EXIT_RESTART``)."""
        self.restart_requested = True
        self.request_stop()

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (signal handlers call this)."""
        self._stop_requested.set()

    async def wait_stop_requested(self) -> None:
        """Return once :meth:`request_stop` was called."""
        await self._stop_requested.wait()

    async def stop(self) -> None:
        """Shut down within ``shutdown_seconds``; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.stopping()
        budget = self.config.shutdown_seconds
        try:
            async with asyncio.timeout(budget):
                await self._shutdown()
        except TimeoutError:
            _log.error("shutdown exceeded %.1f s; closing what is left", budget)
        finally:
            await self._close_resources()

    async def _shutdown(self) -> None:
        service = self._service
        if service is not None:
            # Never unlocked by a shutdown: locking first means a staff UI still connected
            # sees its token die and exits, like on any lock.
            service.begin_shutdown()
            service.broker.publish(EventKind.SHUTDOWN, {})
            service.broker.close()
        if self.provisioning is not None:
            # "Going offline" to the hub, bounded.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.provisioning.stop(), 2.0)
        if self._server is not None and self._server_task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.shield(self._server_task), self.config.shutdown_seconds / 2
                )
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self.calls is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.calls.aclose(), 2.0)
        close_sink = getattr(self.frame_sink, "close", None)
        if self._owns_sink and callable(close_sink):
            with contextlib.suppress(Exception):
                close_sink()
        if self.exports is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.exports.stop(), 1.0)
        if self._precheck is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._precheck.close(), 1.0)
        if self._hardware is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._hardware.close(), 1.0)
        if service is not None:
            await service.drain(1.0)

    async def _close_resources(self) -> None:
        """Close everything still open; runs even when shutdown ran out of time."""
        if self._server_task is not None and not self._server_task.done():
            if self._server is not None:
                self._server.force_exit = True
            self._server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._server_task
        await self.notifier.stop_watchdog()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            with contextlib.suppress(FileNotFoundError):
                unlink_if_socket(self.config.socket_path)
            self._socket = None
        if self._keys is not None:
            with contextlib.suppress(Exception):
                self._keys.close()
        if self.exports is not None:
            with contextlib.suppress(Exception):
                await self.exports.stop()
                self.exports.close()
            self.exports = None
        # Queued audit entries (the lock above all) are written before the log closes.
        for worker, resource in (
            (self._audit_worker, self._audit),
            (self._store_worker, self._store),
        ):
            if worker is not None:
                if resource is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.to_thread(_finish, worker, resource), 2.0)
                else:
                    worker.close(wait=False)
        self._audit = self._store = None

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT (or :meth:`request_stop`), stop. Exit status."""
        loop = asyncio.get_running_loop()
        # Handlers first: a signal between READY=1 and here would otherwise kill the process
        # with the default action instead of a clean shutdown.
        with handle_stop_signals(loop, self.request_stop):
            try:
                await self.start()
            except StationError as exc:
                _log.error("stationd could not start: %s", exc)
                await self.stop()
                return 1
            assert self._server_task is not None
            stop_wait = loop.create_task(self.wait_stop_requested())
            done, _ = await asyncio.wait(
                {stop_wait, self._server_task}, return_when=asyncio.FIRST_COMPLETED
            )
            stop_wait.cancel()
            crashed = self._server_task in done and not self._stop_requested_is_set()
            await self.stop()
        if crashed:
            _log.error("the HTTP server stopped unexpectedly")
            return 1
        return EXIT_RESTART if self.restart_requested else 0

    def _stop_requested_is_set(self) -> bool:
        return self._stop_requested.is_set()


def _sink_name(sink: Any) -> str:
    """The frame sink's name for the ports report (``none`` when calls are unavailable)."""
    return "none" if sink is None else str(getattr(sink, "name", type(sink).__name__))


def _export_name(exports: Any) -> str:
    """``fhir`` (delivered to the EOJ), ``summary`` (copied by hand) or ``none`` (broken)."""
    if exports is None:
        return "none"
    return "fhir" if exports.delivery_enabled else "summary"


def _finish(worker: Worker, resource: Any) -> None:
    """Let the worker finish its queue, then close the resource on that same thread."""
    try:
        worker.submit(resource.close).result(timeout=2.0)
    finally:
        worker.close(wait=True)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    from station.storage.datadir import data_dir

    parser = argparse.ArgumentParser(
        prog="kontaktstation daemon",
        description="stationd: the station's daemon (hardware, blind store, local API).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data_dir(),
        help="data directory (default: $KONTAKTSTATION_DATA_DIR or /var/lib/kontaktstation)",
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=default_socket_path(),
        help=f"API socket (default: ${SOCKET_ENV} or {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "--hardware",
        choices=("real", "fake", "auto"),
        default="real",
        help="hardware backends: the environment's real ones (default; a missing device is "
        "reported, never replaced by a fake), the shipped fakes (the demo), or auto "
        "(fakes off a Raspberry Pi, for development)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT.total_seconds(),
        metavar="SECONDS",
        help="lock after this long without staff activity",
    )
    parser.add_argument(
        "--shutdown-timeout", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--reprobe-interval",
        type=float,
        default=REPROBE_SECONDS,
        metavar="SECONDS",
        help=argparse.SUPPRESS,  # tests: how often a missing part is looked for again
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )
    parser.add_argument(
        "--hub-url",
        default=None,
        help="the hub's URL for provisioning (default: $KONTAKTSTATION_HUB_URL; none: off)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run stationd until SIGTERM/SIGINT; the exit status (0: clean shutdown)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.idle_timeout <= 0:
        print("--idle-timeout must be positive", file=sys.stderr)
        return 2
    if args.reprobe_interval <= 0:
        print("--reprobe-interval must be positive", file=sys.stderr)
        return 2
    config = DaemonConfig(
        data_dir=args.data_dir,
        socket_path=args.socket,
        idle_timeout=timedelta(seconds=args.idle_timeout),
        shutdown_seconds=args.shutdown_timeout,
        reprobe_seconds=args.reprobe_interval,
        hardware=args.hardware,
        hub_url=args.hub_url or os.environ.get("KONTAKTSTATION_HUB_URL") or None,
        provisioning=_agent_options(os.environ),
    )
    return asyncio.run(Daemon(config).run())


def _agent_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The agent's settings from the unit's environment: IT's configuration keys the set-up
    gave (``KONTAKTSTATION_IT_KEYS``, comma-separated base64url Ed25519 public keys: the
    station trusts these, never what the hub offers) and the updater's status file
    (``KONTAKTSTATION_UPDATE_STATUS``: set where the root updater is installed)."""
    options: dict[str, Any] = {}
    keys = tuple(
        k.strip() for k in environ.get("KONTAKTSTATION_IT_KEYS", "").split(",") if k.strip()
    )
    if keys:
        options["pinned_keys"] = keys
    if status := environ.get("KONTAKTSTATION_UPDATE_STATUS"):
        options["update_status"] = Path(status)
    return options


if __name__ == "__main__":
    sys.exit(main())
