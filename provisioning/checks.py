"""Health checks the agent runs itself: TURN/STUN reachability, disk, clock.

TURN reachability is a real STUN Binding request (RFC 5389) over UDP to each configured
server: every TURN server answers one without credentials, so "it answered" means the
network path and the server are up. It is the check a new configuration must pass before it
is kept (:func:`config_health_check`): a configuration whose TURN servers cannot be reached
would leave the station unable to call, so it is rolled back.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from provisioning.configstore import HealthVerdict
from provisioning.schema import StationConfig

__all__ = [
    "config_health_check",
    "disk_ok",
    "parse_ice_url",
    "stun_binding",
    "turn_reachable",
]

_MAGIC: Final = 0x2112A442
_BINDING_REQUEST: Final = 0x0001
_BINDING_SUCCESS: Final = 0x0101
_BINDING_ERROR: Final = 0x0111


def parse_ice_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, transport)`` of a ``stun:``/``turn:`` URL."""
    scheme, _, rest = url.partition(":")
    rest, _, query = rest.partition("?")
    default = 5349 if scheme in ("stuns", "turns") else 3478
    parts = urlsplit(f"//{rest}")
    transport = "udp"
    if query.startswith("transport="):
        transport = query.removeprefix("transport=").lower()
    if scheme in ("stuns", "turns"):
        transport = "tls"
    return scheme, parts.hostname or "", parts.port or default, transport


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self, transaction: bytes) -> None:
        self.transaction = transaction
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if len(data) < 20 or self.answered.done():
            return
        kind, _length, magic = struct.unpack("!HHI", data[:8])
        if magic == _MAGIC and data[8:20] == self.transaction:
            self.answered.set_result(kind in (_BINDING_SUCCESS, _BINDING_ERROR))

    def error_received(self, exc: Exception) -> None:
        if not self.answered.done():
            self.answered.set_result(False)


async def stun_binding(host: str, port: int, *, within: float = 2.0, tries: int = 3) -> bool:
    """Whether a STUN server at ``host:port`` (UDP) answers a Binding request."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", _BINDING_REQUEST, 0, _MAGIC) + transaction
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _StunProtocol(transaction), remote_addr=(host, port)
        )
    except OSError:
        return False
    try:
        for _ in range(tries):
            transport.sendto(request)
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.answered), within / tries)
            except TimeoutError:
                continue
        return False
    finally:
        transport.close()


async def _url_answers(url: str, within: float) -> bool:
    _scheme, host, port, transport = parse_ice_url(url)
    if not host:
        return False
    if transport == "udp":
        return await stun_binding(host, port, within=within)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def turn_reachable(config: StationConfig, *, within: float = 2.0) -> bool | None:
    """Whether every configured ICE server answers on at least one of its URLs (None: none
    configured).

    UDP URLs get a STUN Binding; TCP/TLS ones a TCP connect; all at once. One entry may list
    the same TURN server over UDP, TCP and TLS on 443 (the station takes the first that gets
    through): behind a firewall that drops UDP, the TCP or TLS URL answering is enough, or a
    configuration made for such firewalls would be rolled back by exactly the stations it is
    for.
    """
    servers = [list(server.urls) for server in config.ice_servers]
    if not servers:
        return None
    for urls in servers:
        answers = await asyncio.gather(*(_url_answers(url, within) for url in urls))
        if not any(answers):
            return False
    return True


async def config_health_check(config: StationConfig) -> HealthVerdict:
    """The check a new configuration must pass: its ICE servers answer."""
    reachable = await turn_reachable(config)
    if reachable is False:
        return HealthVerdict(False, "turn_unreachable")
    return HealthVerdict(True)


def disk_ok(data_dir: Path, *, min_free_bytes: int = 200 * 1024 * 1024) -> bool:
    """Enough free space in the data directory (or at least 5 % of it)."""
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:
        return False
    return usage.free >= min(min_free_bytes, usage.total // 20)
