"""Shared set-up for the stationd integration tests: a real daemon on a real Unix socket.

Not a conftest on purpose (that file belongs to the project lead); the daemon tests import
these helpers explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from hardware.bundle import build_hardware
from hardware.button import PrivacyButton
from station.core.clock import Clock, SystemClock
from station.daemon.app import Daemon, DaemonConfig
from station.daemon.hardware import (
    REPROBE_SECONDS,
    GpioHardwareLink,
    HardwareLink,
    hardware_environ,
)
from station.daemon.sdnotify import Notifier
from station.keys.device_secret import DeviceSecret
from station.keys.keyring import KEYSLOTS_FILE, KdfParams, Keyring, generate_escrow_keypair
from station.keys.pin_guard import PinGuard
from station.keys.vault import VaultKey
from station.storage.store import Clinic

#: Cheap Argon2 for tests only (the slot records its own parameters).
TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)
STAFF_ID = "staff-a"
STAFF_PIN = "4711"
#: The staff number ``enrol`` gives the first staff member (the next ones: 102, 103, ...).
STAFF_NUMBER = "101"
CLINIC = Clinic(
    id="clinic-1", name="Lægehuset Åboulevarden", provider_number="057584", video_room="room-1"
)


@contextlib.contextmanager
def short_socket_dir() -> Iterator[Path]:
    """A private directory with a short path (a socket path must fit in 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="ks-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def ui_hosts(directory: Path) -> Iterator[tuple[Path, Path]]:
    """The two UIs' own tmux servers (``kontaktstation ui-host``), started as their units start
    them, but as this one user (the booted appliance, ``tests/vm``, has the users): the
    locked UI's and the staff UI's socket."""
    sockets = (directory / "locked" / "tmux.sock", directory / "staff" / "tmux.sock")
    program = str(Path(sys.executable).with_name("kontaktstation"))
    me = pwd.getpwuid(os.getuid()).pw_name
    hosts = [
        subprocess.Popen([program, "ui-host", "--socket", str(sock), "--allow", me])
        for sock in sockets
    ]
    try:
        yield sockets
    finally:
        for host in hosts:
            host.terminate()
        for host in hosts:
            host.wait(10)


def staff_number(index: int) -> str:
    """The staff number ``enrol`` gives the ``index``-th staff member (0: :data:`STAFF_NUMBER`)."""
    return str(101 + index)


def enrol(
    data_dir: Path,
    staff: Mapping[str, str] | None = None,
    *,
    kdf: KdfParams = TEST_KDF,
    secret: bytes | None = None,
) -> VaultKey:
    """Create the keyring (cheap KDF) with a slot per staff member, numbered 101, 102, ... in
    the mapping's order; the vault key for checks. ``secret``: the device secret (default:
    the file source's, made in ``data_dir``)."""
    staff = staff or {STAFF_ID: STAFF_PIN}
    if secret is None:
        secret = DeviceSecret.load_or_create(data_dir / "device.secret")
    _, escrow_public = generate_escrow_keypair()
    with PinGuard(data_dir / "pin_attempts.db", SystemClock(), device_secret=secret) as guard:
        keyring, vault_key = Keyring.initialise(
            data_dir / KEYSLOTS_FILE, secret, escrow_public, guard=guard, kdf_params=kdf
        )
        for index, (staff_id, pin) in enumerate(staff.items()):
            keyring.add_slot(vault_key, staff_id, pin, number=staff_number(index))
    return vault_key


@dataclass
class Running:
    """A started daemon and an httpx client on its socket."""

    daemon: Daemon
    http: httpx.AsyncClient
    socket_path: Path

    async def unlock(self, number: str = STAFF_NUMBER, pin: str = STAFF_PIN) -> str:
        """Unlock through the API with a staff number; the Bearer token."""
        response = await self.http.post("/v1/unlock", json={"staff_number": number, "pin": pin})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    async def put_clinic(self, clinic: Clinic = CLINIC) -> None:
        """Clinics come from the signed configuration, not the API: put one in directly."""
        service = self.daemon.service
        await service.db(service.store.put_clinic, clinic)


def uds_client(socket_path: Path, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client talking HTTP over the daemon's Unix socket."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
        base_url="http://stationd",
        timeout=kwargs.pop("timeout", 10.0),
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running_daemon(
    data_dir: Path,
    socket_dir: Path,
    *,
    hardware: HardwareLink | None = None,
    clock: Clock | None = None,
    idle_timeout: timedelta = timedelta(minutes=5),
    tick_seconds: float = 1.0,
    heartbeat_seconds: float = 15.0,
    hardware_mode: str = "fake",
    environ: Mapping[str, str] | None = None,
    reprobe_seconds: float = REPROBE_SECONDS,
    **config_extra: Any,
) -> AsyncIterator[Running]:
    """Start a daemon in this test's loop; stop it (and check it stopped) afterwards.

    ``config_extra`` adds :class:`DaemonConfig` fields (e.g. ``reminder_tick_seconds``)."""
    socket_path = socket_dir / "stationd.sock"
    config = DaemonConfig(
        data_dir=data_dir,
        socket_path=socket_path,
        idle_timeout=idle_timeout,
        tick_seconds=tick_seconds,
        heartbeat_seconds=heartbeat_seconds,
        reprobe_seconds=reprobe_seconds,
        hardware=hardware_mode,
        environ=environ if environ is not None else {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
        **config_extra,
    )
    daemon = Daemon(config, clock=clock, notifier=Notifier(environ={}), hardware=hardware)
    await daemon.start()
    http = uds_client(socket_path)
    try:
        yield Running(daemon, http, socket_path)
    finally:
        await http.aclose()
        await asyncio.wait_for(daemon.stop(), 10)


#: Cheap Argon2 for keyrings the provisioning agent makes in tests.
PROVISIONING_TEST_KDF = KdfParams(memory_kib=64, time_cost=1, parallelism=1)


@contextlib.asynccontextmanager
async def provisioned_daemon(
    data_dir: Path,
    hub_url: str,
    *,
    config: Mapping[str, Any] | None = None,
    **daemon: Any,
) -> AsyncIterator[Daemon]:
    """stationd in this loop (fake hardware) with its provisioning agent talking to ``hub_url``.

    ``config`` adds :class:`DaemonConfig` fields (e.g. ``call``); ``daemon`` adds
    :class:`Daemon` arguments (e.g. ``hardware``, ``frame_sink``).
    """
    with short_socket_dir() as sock_dir:
        fields: dict[str, Any] = {
            "provisioning": {"kdf_params": PROVISIONING_TEST_KDF, "check_turn": False},
            **(config or {}),
        }
        daemon_config = DaemonConfig(
            data_dir=data_dir,
            socket_path=sock_dir / "stationd.sock",
            hardware="fake",
            environ={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
            hub_url=hub_url,
            **fields,
        )
        running = Daemon(daemon_config, notifier=Notifier(environ={}), **daemon)
        await running.start()
        try:
            yield running
        finally:
            await asyncio.wait_for(running.stop(), 15)


async def fake_hardware(*, event_gap: float = 0.25, hold_seconds: float = 2.0) -> GpioHardwareLink:
    """The shipped fakes (MockFactory pins), with the button's duplicate gap and hold time set.

    ``event_gap=0`` hands every press edge to the daemon (the product suppresses repeats
    within 0.25 s); tests use it to push every press through the daemon's lock path.
    """
    loop = asyncio.get_running_loop()
    env = hardware_environ("fake", {**os.environ, "KONTAKTSTATION_BUTTON_HOLD": str(hold_seconds)})
    hw = await asyncio.to_thread(build_hardware, env, loop=loop)
    if event_gap != 0.25:
        pin = hw.button.pin
        hw.button.close()
        hw.button = PrivacyButton(
            pin.info.name,
            pin_factory=hw.pin_factory,
            loop=loop,
            hold_time=hold_seconds,
            event_gap=event_gap,
        )
    return GpioHardwareLink(hw)
