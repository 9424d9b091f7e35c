"""``kontaktstation demo``: the whole station on embedded defaults, on one machine.

Over 500 lines for one job: the demo's processes from start to a clean stop (spawning, waiting
for each to answer, the UI, the check, the teardown). Its made-up care home and the booking
of its residents are :mod:`kontaktstation.demo_data`.

Started in the background, in a private temporary directory (removed at the end):

- the hub (SQLite) on 127.0.0.1, without a shared station token; the station is enrolled and
  configured there as IT would do it (its identity key preauthorised with ``kontaktstation
  admin preauthorise``, a municipality layer with the care home, the clinic and the escrow
  key set with ``kontaktstation admin config set``), so the lock screen shows an enrolled,
  configured station and never an enrollment code;
- stationd with fake hardware (or a USB webcam when ``/dev/video0`` exists), its call
  engine configured for that hub with ICE restricted to loopback and no STUN/TURN at all
  (``iceServers=[]``): the demo never reaches a public server;
- a demo care home: one GP clinic, a round of three residents *without* CPR starting in
  ten minutes (so the lock screen's reminder shows at once), and one appointment *with* CPR
  an hour later. The residents are sealed exactly as the staff UI seals them
  (``station.keys.records`` under the vault key); this process holds the vault key only while
  seeding, then zeroes it;
- the UI supervisor (``kontaktstation ui``) in this terminal.

The demo staff number and PIN are printed at start (a real station has none), with the GP's link
to open in a browser. Ctrl+C stops everything: every child process is ended and the
temporary directory removed. ``--check`` starts everything, verifies that the hub and
stationd answer, prints the link and exits (CI and the tests use it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from kontaktstation.demo_data import (
    DEMO_CLINIC,
    DEMO_HOME,
    DEMO_HOME_ID,
    DEMO_STAFF_ID,
    DEMO_STAFF_NUMBER,
    DEMO_STATION_NAME,
    SeededConsultation,
    seed_demo,
)
from station.errors import StationError
from station.i18n import N_, _
from station.storage.datadir import DataDir

__all__ = ["NOT_SET_UP", "DemoError", "DemoRunner", "main"]

#: What a lock screen shows before IT enrolled the station (never in the demo).
NOT_SET_UP = N_("Not yet set up. Enrollment code:")


class DemoError(StationError):
    """The demo could not start (a part did not come up, a tool is missing)."""

    default_user_message = N_("The demo could not start. See the message above.")


# --------------------------------------------------------------------------- the runner


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _has_webcam() -> bool:
    return Path("/dev/video0").exists()


@dataclass
class DemoRunner:
    """Starts and stops the demo's processes; see the module docs."""

    root: Path
    owns_root: bool = True
    hub_port: int | None = None
    #: ``fake`` (default off a webcam), ``webcam`` (V4L2 camera, fake button/LED/audio).
    hardware: str = "auto"
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    staff_pin: str = field(default_factory=lambda: f"{secrets.randbelow(10**6):06d}")
    gp_url: str | None = None
    #: Who made the GP's room: ``stationd`` (the call engine) or ``hub`` (fallback).
    gp_link_via: str | None = None
    seeded: list[SeededConsultation] = field(default_factory=list)
    #: The station's identity (base64url public key), made before stationd first starts.
    station_key: str | None = None
    #: The escrow public key (base64url) the demo's keyring and configuration share.
    escrow_key: str | None = None
    #: IT's public key (base64url), which stationd pins.
    it_public_key: str | None = None
    _children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        """stationd's data directory."""
        return self.root / "data"

    @property
    def socket_path(self) -> Path:
        """stationd's API socket."""
        return self.root / "stationd.sock"

    @property
    def surface_dir(self) -> Path:
        """The shared memory stationd draws the call into (the surface or the terminal reads)."""
        return self.root / "surface"

    @property
    def log_dir(self) -> Path:
        """Where the hub's and stationd's logs go."""
        return self.root / "logs"

    @property
    def children(self) -> Mapping[str, subprocess.Popen[bytes]]:
        """The running child processes by name."""
        return dict(self._children)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The demo never takes a station's production settings from the caller's shell.
        for key in list(env):
            if key.startswith("KONTAKTSTATION_"):
                del env[key]
        return env

    def _spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        # A session of its own: Ctrl+C in the terminal reaches the demo, which stops the
        # children in order, instead of hitting every process at once.
        self._children[name] = subprocess.Popen(  # noqa: S603 (our own interpreter)
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )

    async def start(self) -> None:
        """Key ring, hub, stationd, demo data and the GP link; raises :class:`DemoError`."""
        for path in (self.root, self.data_dir, self.log_dir, self.root / "hub", self.root / "it"):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)
        vault_key = await asyncio.to_thread(self._enrol)
        try:
            await asyncio.to_thread(self._put_clinic)
            port = self.hub_port or _free_port()
            self.hub_port = port
            base = f"http://127.0.0.1:{port}"
            # No shared station token: the station signs in to the rendezvous with the
            # identity key IT preauthorised (per-station credentials).
            hub_env = self._environment()
            self._spawn(
                "hub",
                [
                    sys.executable, "-m", "kontaktstation.cli", "hub", "--host", "127.0.0.1",
                    "--port", str(port), "--data-dir", str(self.root / "hub"),
                    "--public-url", base, "--log-level", "warning",
                ],
                hub_env,
            )  # fmt: skip
            await self._wait_hub(base)
            await asyncio.to_thread(self._it_key)
            await self._enrol_station()
            self._spawn("stationd", self._daemon_argv(), self._daemon_env(base))
            await self._wait_ready(base)
            await self._wait_enrolled()
            await self._seed(vault_key)
        finally:
            vault_key.zero()

    def _put_clinic(self) -> None:
        from station.storage.store import BlindStore

        store = BlindStore.open(self.data_dir)
        try:
            store.put_clinic(DEMO_CLINIC)  # clinics come from the configuration
        finally:
            store.close()

    def _enrol(self) -> Any:
        from station.keys.device_secret import DeviceSecret
        from station.keys.keyring import Keyring, generate_escrow_keypair
        from station.keys.pin_guard import PinGuard

        files = DataDir(self.data_dir)
        secret = DeviceSecret.load_or_create(files.device_secret)
        # The escrow's private half is thrown away: a demo has no IT department.
        _escrow_private, escrow_public = generate_escrow_keypair()
        from provisioning.identity import FileIdentity
        from provisioning.protocol import b64encode
        from station.core.clock import SystemClock

        # The identity stationd would make at its first start, made now so IT (the demo)
        # can preauthorise it at the hub before stationd first calls in.
        self.station_key = b64encode(FileIdentity(self.data_dir).load().public_key)
        self.escrow_key = b64encode(escrow_public)
        with PinGuard(files.pin_attempts, SystemClock(), device_secret=secret) as guard:
            keyring, vault_key = Keyring.initialise(
                files.keyslots, secret, escrow_public, guard=guard
            )
            keyring.add_slot(vault_key, DEMO_STAFF_ID, self.staff_pin, number=DEMO_STAFF_NUMBER)
        return vault_key

    @property
    def it_key_path(self) -> Path:
        """IT's signing key: beside the hub's data directory, never in it."""
        return self.root / "it" / "signing.key"

    def _it_key(self) -> None:
        """``kontaktstation admin keygen`` as IT runs it once on their own machine; the public
        key goes to the station as its set-up would give it (``--it-key``)."""
        if not self.it_key_path.exists():
            self._admin("keygen", str(self.it_key_path), signing=False)
        shown = self._admin("key")
        self.it_public_key = next(
            line.split()[1] for line in shown.splitlines() if line.startswith("trusted")
        )

    def _admin(self, *args: str, signing: bool = True) -> str:
        """``kontaktstation admin`` on the demo hub's data directory, as IT runs it."""
        key = ["--signing-key", str(self.it_key_path)] if signing else []
        result = subprocess.run(  # noqa: S603 (our own interpreter)
            [sys.executable, "-m", "kontaktstation.cli", "admin",
             "--data-dir", str(self.root / "hub"), "--actor", "demo", *key, *args],
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise DemoError(f"kontaktstation admin {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    async def _enrol_station(self) -> None:
        """IT's part: the municipality's layer and the station's key, before it calls in."""
        assert self.station_key is not None and self.escrow_key is not None
        layer = self.root / "hub" / "municipality.json"
        layer.write_text(
            json.dumps(
                {
                    "care_home": {"id": DEMO_HOME_ID, "name": DEMO_HOME},
                    "station_name": DEMO_STATION_NAME,
                    "clinics": [
                        {
                            "id": DEMO_CLINIC.id,
                            "name": DEMO_CLINIC.name,
                            "provider_number": DEMO_CLINIC.provider_number,
                            "video_room": DEMO_CLINIC.video_room,
                        }
                    ],
                    "escrow_public_key": self.escrow_key,
                    # A development machine has no OTP key: the device secret is a file.
                    "allow_file_device_secret": True,
                    "language": "da",
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        await asyncio.to_thread(self._admin, "config", "set", "--municipality", str(layer))
        await asyncio.to_thread(
            self._admin,
            "preauthorise",
            self.station_key,
            "--care-home",
            DEMO_HOME_ID,
            "--name",
            DEMO_STATION_NAME,
        )

    async def _wait_hub(self, hub_url: str, within: float = 60.0) -> None:
        import httpx

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                hub = self._children["hub"]
                if hub.poll() is not None:
                    raise DemoError(f"hub exited with {hub.returncode}; see {self.log_dir}/hub.log")
                if loop.time() > deadline:
                    raise DemoError(f"the hub did not answer within {within:.0f} s")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{hub_url}/gp/")).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    async def _wait_enrolled(self, within: float = 60.0) -> None:
        """Until the hub lists the station approved and stationd shows no enrollment code."""
        from provisioning.protocol import b64decode, station_id_for
        from stationapi.errors import StationApiError
        from stationapi.locked import LockedClient

        assert self.station_key is not None
        station_id = station_id_for(b64decode(self.station_key, length=32))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            shown = await asyncio.to_thread(self._admin, "stations", "show", station_id)
            if re.search(r"^status\s+approved$", shown, re.MULTILINE):
                async with LockedClient(self.socket_path, timeout=2.0) as client:
                    try:
                        await client.enrollment()
                    except StationApiError as exc:
                        if exc.status == 404:
                            return
            if loop.time() > deadline:
                raise DemoError(f"the station was not enrolled at the hub within {within:.0f} s")
            await asyncio.sleep(0.3)

    def _daemon_argv(self) -> list[str]:
        mode = "real" if self.hardware == "webcam" else "fake"
        return [
            sys.executable, "-m", "kontaktstation.cli", "daemon", "--data-dir", str(self.data_dir),
            "--socket", str(self.socket_path), "--hardware", mode, "--log-level", "WARNING",
        ]  # fmt: skip

    def _daemon_env(self, hub_url: str) -> dict[str, str]:
        env = self._environment()
        env |= {
            "KONTAKTSTATION_DATA_DIR": str(self.data_dir),
            "KONTAKTSTATION_HUB_URL": hub_url,
            # IT's key, pinned as the set-up pins it: the station never takes the hub's word.
            "KONTAKTSTATION_IT_KEYS": self.it_public_key or "",
            # No STUN/TURN at all, host candidates on 127.0.0.1 only: the demo's call never
            # leaves this machine and never reaches a public server.
            "KONTAKTSTATION_ICE_SERVERS": "[]",
            "KONTAKTSTATION_CALL_LOOPBACK": "1",
            "GPIOZERO_PIN_FACTORY": "mock",
            # The call is drawn into shared memory, as on a station: the surface window (with a
            # display) or the terminal UIs (without one) show it.
            "KONTAKTSTATION_SURFACE_DIR": str(self.surface_dir),
        }
        if self.hardware == "webcam":
            env |= {"KONTAKTSTATION_CAMERA": "v4l2", "KONTAKTSTATION_AUDIO": "fake"}
        return env

    async def _wait_ready(self, hub_url: str, within: float = 60.0) -> None:
        import httpx

        from stationapi.locked import LockedClient, StationClientError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        hub_ok = daemon_ok = False
        async with httpx.AsyncClient(timeout=2.0) as http:
            while not (hub_ok and daemon_ok):
                for name, proc in self._children.items():
                    if proc.poll() is not None:
                        raise DemoError(
                            f"{name} exited with {proc.returncode}; see {self.log_dir}/{name}.log"
                        )
                if loop.time() > deadline:
                    raise DemoError(f"hub or stationd did not answer within {within:.0f} s")
                if not hub_ok:
                    with contextlib.suppress(httpx.HTTPError):
                        hub_ok = (await http.get(f"{hub_url}/gp/")).status_code == 200
                if not daemon_ok and self.socket_path.exists():
                    with contextlib.suppress(StationClientError):
                        async with LockedClient(self.socket_path, timeout=2.0) as client:
                            daemon_ok = (await client.state()).locked
                await asyncio.sleep(0.1)

    async def _seed(self, vault_key: Any) -> None:
        from stationapi.staff import StaffClient

        async with StaffClient(self.socket_path, timeout=30.0) as client:
            await client.unlock(DEMO_STAFF_NUMBER, self.staff_pin)
            try:
                self.seeded = await seed_demo(client, vault_key, datetime.now(UTC))
                round_ = self.seeded[0]
                self.gp_url = await self._call_room(client, round_)
                if self.gp_url is None:
                    raise DemoError(f"stationd has no call engine; see {self.log_dir}/stationd.log")
                self.gp_link_via = "stationd"
            finally:
                await client.lock()

    async def _call_room(self, client: Any, round_: SeededConsultation) -> str | None:
        """The GP link through the call engine's room API (``POST /v1/call/room``, staff):
        stationd then knows the room when the call starts. None if the engine is absent.

        ``client`` is the unlocked :class:`~stationapi.staff.StaffClient`."""
        from stationapi.errors import StationApiError

        try:
            room = await client.make_room(round_.id)
        except StationApiError as exc:
            if exc.status in (404, 503):
                return None
            raise DemoError(f"stationd refused the demo's GP link: HTTP {exc.status}") from None
        return str(room.gp_url)

    def ui_environ(self) -> dict[str, str]:
        """The UIs' environment: where the call's pictures are, and who draws them."""
        env = {
            "KONTAKTSTATION_STATION_NAME": DEMO_HOME,
            "KONTAKTSTATION_SURFACE_DIR": str(self.surface_dir),
        }
        if "surface" not in self._children:
            # No display for a window: the call screen and the private screen draw the GP.
            env["KONTAKTSTATION_TERMINAL_VIDEO"] = "1"
        return env

    def start_surface(self, environ: Mapping[str, str]) -> bool:
        """The video surface's window, when there is a display to open it on."""
        if not (environ.get("WAYLAND_DISPLAY") or environ.get("DISPLAY")):
            return False
        env = self._environment()
        env["KONTAKTSTATION_SURFACE_DIR"] = str(self.surface_dir)
        self._spawn(
            "surface",
            [sys.executable, "-m", "kontaktstation.cli", "surface", "--size", "960x540",
             "--dir", str(self.surface_dir)],
            env,
        )  # fmt: skip
        return True

    def banner(self) -> str:
        """What the person starting the demo needs: staff number, PIN, GP link, how to stop."""
        lines = [
            "KontaktStation — demo",
            "  "
            + _(
                "Staff number: {number}    PIN: {pin}    (the demo only: a real station has none)"
            ).format(number=DEMO_STAFF_NUMBER, pin=self.staff_pin),
            "  " + _("The doctor's link (open it in a browser): {url}").format(url=self.gp_url),
            "  "
            + _("Hub: {hub}    Data: {root} (deleted at stop)").format(
                hub=f"http://127.0.0.1:{self.hub_port}", root=self.root
            ),
            "  " + _("The round starts in 10 minutes; the appointment with CPR in 70 minutes."),
            "  " + _("Stop: Ctrl+C"),
        ]
        return "\n".join(lines)

    async def stop(self) -> None:
        """End every child (SIGTERM, then SIGKILL after 5 s) and remove the directory."""
        for name in ("surface", "stationd", "hub"):
            proc = self._children.get(name)
            if proc is None or proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 8.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 5.0)
        for proc in self._children.values():
            # Anything the children left in their sessions goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self._logs:
            log.close()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


async def _run(args: argparse.Namespace) -> int:
    root = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="ks-demo-"))
    hardware = args.hardware
    if hardware == "auto":
        hardware = "webcam" if _has_webcam() else "fake"
    runner = DemoRunner(
        root, owns_root=args.state_dir is None, hub_port=args.port, hardware=hardware
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(_("Starting the demo …"), flush=True)
        start = asyncio.ensure_future(runner.start())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
            return 130
        waiter.cancel()
        start.result()
        print(runner.banner(), flush=True)
        if args.check:
            await _check(runner)
            print(
                _("Check: hub, stationd and the lock screen answer; the demo stops again."),
                flush=True,
            )
            return 0
        if args.no_ui:
            await stop.wait()
            return 0
        if runner.start_surface(os.environ):
            print("  " + _("The doctor's video is shown in a window beside it."), flush=True)
        else:
            print(
                "  "
                + _("No display: the doctor's video is shown in the terminal during the call."),
                flush=True,
            )
        if sys.stdin.isatty() and not await _wait_for_enter(stop):
            return 130
        return await _run_ui(runner, stop)
    except DemoError as exc:
        print(f"kontaktstation demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.stop()
        print(_("The demo has stopped."), flush=True)


async def _wait_for_enter(stop: asyncio.Event) -> bool:
    """Let the person note the PIN and the GP link before the station's screen covers them.

    Returns False when Ctrl+C came first.
    """
    print(_("Press Enter to open the station's screen …"), flush=True)
    loop = asyncio.get_running_loop()
    pressed = asyncio.Event()
    # A reader callback, not a thread: a thread blocked in readline() would hold up Ctrl+C.
    loop.add_reader(sys.stdin.fileno(), pressed.set)
    try:
        waiters = {asyncio.ensure_future(pressed.wait()), asyncio.ensure_future(stop.wait())}
        _finished, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        loop.remove_reader(sys.stdin.fileno())
    if pressed.is_set():
        sys.stdin.readline()
    return not stop.is_set()


async def _check(runner: DemoRunner) -> None:
    """--check: the seeded bookings are on the lock screen's list, and (with tmux) the
    locked UI draws the lock screen under the supervisor."""
    from stationapi.locked import LockedClient

    async with LockedClient(runner.socket_path) as client:
        upcoming = await client.upcoming()
    if [item.starts_at for item in upcoming.items] != [s.starts_at for s in runner.seeded]:
        raise DemoError("stationd does not list the demo's bookings")
    missing = [r for r in ("remote", "self") if not (runner.surface_dir / f"{r}.frames").exists()]
    if missing:
        raise DemoError(f"stationd has no shared memory for the call's pictures ({missing})")
    if shutil.which("tmux") is None:
        print(_("(tmux is missing: the lock screen was not tried)"), flush=True)
        return
    from tui.supervisor import Supervisor, SupervisorConfig

    supervisor = Supervisor(
        SupervisorConfig(
            socket_path=runner.socket_path,
            runtime_dir=runner.root / "ui",
            attach=False,
            environ=runner.ui_environ(),
        )
    )
    await supervisor.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while DEMO_HOME not in (screen := await supervisor.capture()):
            if loop.time() > deadline:
                raise DemoError("the locked UI did not draw the lock screen within 60 s")
            await asyncio.sleep(0.1)
        # An enrolled, configured station: no enrollment code on its lock screen.
        if _(NOT_SET_UP) in screen:
            raise DemoError("the demo's lock screen shows an enrollment code")
    finally:
        await supervisor.stop()


async def _run_ui(runner: DemoRunner, stop: asyncio.Event) -> int:
    from tui.supervisor import Supervisor, SupervisorConfig, TmuxMissing

    if shutil.which("tmux") is None:
        _install_tmux()
    config = SupervisorConfig(
        socket_path=runner.socket_path,
        runtime_dir=runner.root / "ui",
        exit_key="C-c",
        environ=runner.ui_environ(),
    )
    supervisor = Supervisor(config)
    watcher = asyncio.ensure_future(stop.wait())
    watcher.add_done_callback(lambda _: supervisor.request_stop())
    try:
        return await supervisor.run()
    except TmuxMissing as exc:
        print(f"kontaktstation demo: {exc}\n{exc.user_message}", file=sys.stderr)
        return 1
    finally:
        watcher.cancel()


def _install_tmux() -> None:
    """Install tmux with apt (as root, or through sudo), saying so plainly."""
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "tmux"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            print(_("tmux is missing, and there is no sudo: install tmux (apt install tmux)."))
            return
        apt = ["sudo", *apt]
    print(
        _("The screen uses tmux, which is missing. Installing it: {command}").format(
            command=" ".join(apt)
        ),
        flush=True,
    )
    subprocess.run(apt, check=False)  # noqa: S603 (a fixed command line)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation demo",
        description="The whole station on this machine: hub, stationd, demo data and the UI.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="start everything, verify that it answers, print the GP link and stop",
    )
    parser.add_argument("--no-ui", action="store_true", help="no UI; run until Ctrl+C")
    parser.add_argument("--port", type=int, help="the hub's port (default: a free one)")
    parser.add_argument(
        "--hardware", choices=("auto", "fake", "webcam"), default="auto",
        help="auto: a USB webcam when /dev/video0 exists, otherwise fakes",
    )  # fmt: skip
    parser.add_argument(
        "--state-dir", help="keep the demo's files here instead of a temporary directory"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``kontaktstation demo``; the exit status."""
    args = _parser().parse_args(argv)
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
