"""A real hub (uvicorn) on 127.0.0.1 inside the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from hub.app import create_app
from hub.provisioning.api import open_provisioning
from hub.provisioning.keys import ITSigningKey
from hub.provisioning.service import ProvisioningService
from hub.settings import HubSettings
from provisioning.protocol import b64encode
from station.core.clock import SystemClock
from station.keys.keyring import generate_escrow_keypair

__all__ = ["STATION_TOKEN", "RunningHub", "it_key", "provisioning_hub", "running_hub"]

#: The interim shared station credential used by the tests.
STATION_TOKEN = "test-station-token-0123456789abcdefghijklmnop"


@dataclass(frozen=True)
class RunningHub:
    """Where the hub listens and how it was configured."""

    base_url: str
    settings: HubSettings


def it_key(settings: HubSettings) -> ITSigningKey:
    """IT's signing key for a test hub: a file beside (never inside) the hub's data directory,
    made on first use, as ``kontaktstation admin keygen`` makes it on IT's machine."""
    path = settings.data_dir.parent / f"{settings.data_dir.name}.it-signing.key"
    try:
        return ITSigningKey.load(path)
    except FileNotFoundError:
        return ITSigningKey.generate(path)


@asynccontextmanager
async def running_hub(
    data_dir: Path, *, shared_token: bool = True, **overrides: Any
) -> AsyncIterator[RunningHub]:
    """Serve the hub on 127.0.0.1 until the block ends; ``shared_token=False``: stations only
    with their identity (the production default), else the legacy token is allowed too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    settings = HubSettings(
        data_dir=data_dir,
        station_token=STATION_TOKEN if shared_token else None,
        allow_shared_station_token=shared_token,
        public_base_url=base_url,
        **overrides,
    )
    config = uvicorn.Config(
        create_app(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield RunningHub(base_url=base_url, settings=settings)
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def provisioning_hub(data_dir: Path) -> AsyncIterator[tuple[RunningHub, ProvisioningService]]:
    """A hub and IT's admin service on it: an escrow key in the municipality layer and the
    care home ``solhaven``, so a station can be approved and its first staff member enrolled.
    """
    async with running_hub(data_dir) as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        try:
            _private, public = generate_escrow_keypair()
            await admin.set_layer(
                "municipality",
                None,
                {"escrow_public_key": b64encode(public), "allow_file_device_secret": True},
                "it-test",
            )
            await admin.set_layer(
                "care_home", "solhaven", {"care_home": {"name": "Plejecenter Solhaven"}}, "it-test"
            )
            yield hub, admin
        finally:
            await admin.close()
