"""Is a STUN/TURN server there? A short probe, so a dead server cannot stall call set-up.

aioice waits up to 5 s for each STUN/TURN server while gathering (and aiortc's
``setLocalDescription`` waits for the gathering): a configured server that is down or
unreachable would delay every call and every re-dial by that much. Before each attempt the
engine probes every configured URL at once, with a short timeout, and leaves out of that
attempt's configuration what did not answer.

The probe is a STUN Binding request (RFC 5389) over the URL's transport: STUN servers answer
it, and so does coturn on its TURN port (any STUN response, even an error, proves the server is
there). For ``turns:`` (TLS) a TCP connection is enough. Credentials are not checked here (an
authenticated allocation would cost a TURN allocation per probe): a wrong TURN password shows
up after gathering as a missing relay candidate, which the engine checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from station.call.ice import IceServerConfig

__all__ = ["ProbeResult", "parse_ice_url", "probe_ice_servers", "probe_url"]

_log = logging.getLogger(__name__)

_STUN_HEADER = 20
_RETRANSMIT = (0.0, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class ParsedUrl:
    """What aiortc makes of one ICE URL: scheme, host, port and transport."""

    scheme: str
    host: str
    port: int
    transport: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One URL's probe: whether it answered in time, and why not (English, no secrets)."""

    url: str
    reachable: bool
    detail: str


def parse_ice_url(url: str) -> ParsedUrl:
    """Parse ``stun:``/``turn:``/``turns:`` URLs exactly as aiortc does; ``ValueError`` if bad."""
    from aiortc.rtcicetransport import parse_stun_turn_uri

    parsed = parse_stun_turn_uri(url)
    transport = parsed.get("transport") or "udp"
    return ParsedUrl(parsed["scheme"], parsed["host"], int(parsed["port"]), transport)


def _binding_request() -> bytes:
    from aioice import stun

    return bytes(stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST))


def _is_stun_response(data: bytes, request: bytes) -> bool:
    # Same transaction id (bytes 8-20), a response class (bit 0x0100 or 0x0010 set).
    if len(data) < _STUN_HEADER or data[8:20] != request[8:20]:
        return False
    message_type = int.from_bytes(data[0:2], "big")
    return bool(message_type & 0x0110)


class _FirstDatagram(asyncio.DatagramProtocol):
    def __init__(self, request: bytes) -> None:
        self.request = request
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if _is_stun_response(data, self.request) and not self.answered.done():
            self.answered.set_result(None)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable arrives here on Linux: nobody listens there.
        if not self.answered.done():
            self.answered.set_exception(ConnectionRefusedError(str(exc)))


async def _probe_udp(host: str, port: int, within: float) -> None:
    loop = asyncio.get_running_loop()
    request = _binding_request()
    infos = await loop.getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
    address = (str(infos[0][4][0]), int(infos[0][4][1]))
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _FirstDatagram(request), remote_addr=address
    )
    try:

        async def send_with_retransmits() -> None:
            started = loop.time()
            for at in _RETRANSMIT:
                delay = started + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                transport.sendto(request)

        sender = asyncio.create_task(send_with_retransmits())
        try:
            async with asyncio.timeout(within):
                await protocol.answered
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    finally:
        transport.close()


async def _probe_tcp(host: str, port: int, tls: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if tls:
            return  # reachable; the TLS handshake is aioice's business
        request = _binding_request()
        writer.write(request)
        await writer.drain()
        data = await reader.readexactly(_STUN_HEADER)
        if not _is_stun_response(data, request):
            raise ConnectionError("not a STUN response")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def probe_url(url: str, within: float) -> ProbeResult:
    """Probe one ICE URL; never raises, never waits longer than ``within`` seconds."""
    try:
        parsed = parse_ice_url(url)
    except ValueError:
        return ProbeResult(url, False, "malformed ICE URL")
    try:
        async with asyncio.timeout(within):
            if parsed.transport == "tcp":
                await _probe_tcp(parsed.host, parsed.port, tls=parsed.scheme in ("turns", "stuns"))
            else:
                await _probe_udp(parsed.host, parsed.port, within)
    except TimeoutError:
        return ProbeResult(url, False, f"no answer within {within:g} s")
    except (OSError, ConnectionError, asyncio.IncompleteReadError) as exc:
        return ProbeResult(url, False, f"unreachable ({type(exc).__name__})")
    return ProbeResult(url, True, "answered")


async def probe_ice_servers(
    servers: Sequence[IceServerConfig], within: float
) -> tuple[list[IceServerConfig], list[ProbeResult]]:
    """Probe every URL of ``servers`` at once; the servers cut down to the URLs that answered.

    Returns the usable servers (order kept, so aiortc's "first STUN, first TURN" picks the
    first *reachable* one) and every probe's result.
    """
    urls = [url for server in servers for url in server.urls]
    results = await asyncio.gather(*(probe_url(url, within) for url in urls))
    reachable = {result.url for result in results if result.reachable}
    usable = []
    for server in servers:
        kept = tuple(url for url in server.urls if url in reachable)
        if kept:
            usable.append(server.model_copy(update={"urls": kept}))
    for result in results:
        if not result.reachable:
            # The URL names a server, not a person; the credential is never part of it.
            _log.warning("ICE server %s left out of this attempt: %s", result.url, result.detail)
    return usable, list(results)
