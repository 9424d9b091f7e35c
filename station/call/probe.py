"""Is a STUN/TURN server there? A short probe, so a dead server cannot stall call set-up.

aioice waits up to 5 s for each STUN/TURN server while gathering (and aiortc's
``setLocalDescription`` waits for the gathering): a configured server that is down or
unreachable would delay every call and every re-dial by that much. Before each attempt the
engine probes every configured URL at once, with a short timeout, and leaves out of that
attempt's configuration what did not answer.

The probe is a STUN Binding request (RFC 5389) over the URL's transport: STUN servers answer
it, and so does coturn on its TURN port (any STUN response, even an error, proves the server is
there). For ``turns:`` the probe makes the TLS handshake first, with the same trust as aioice
(see :func:`turn_tls_context`), then sends the Binding request inside it: a port 443 that a
firewall lets through but a TLS-intercepting proxy answers is no path. Credentials are not
checked here (an authenticated allocation would cost a TURN allocation per attempt): a wrong
TURN password shows up after gathering as a missing relay candidate, which the engine checks.

Because aiortc uses only the first TURN URL it is given, the order of the configured URLs is the
order of preference, and the probe is what makes the choice automatic: with
``turn:host:3478`` (UDP), ``turn:host:3478?transport=tcp`` and ``turns:host:443?transport=tcp``
configured, a network that drops UDP leaves the first out, one that lets only 443 through
leaves the first two out, and the call goes through TURN over TLS on 443.

:func:`probe_turn_paths` is the pre-call check's stronger probe: a real, authenticated TURN
allocation over each configured URL (released at once), so staff learn which path works
("UDP", "TCP", "TLS 443" or none) before the GP is asked to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from station.call.ice import IceServerConfig

__all__ = [
    "ProbeResult",
    "TurnPath",
    "parse_ice_url",
    "path_label",
    "probe_ice_servers",
    "probe_turn_paths",
    "probe_url",
    "turn_tls_context",
]

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


def turn_tls_context() -> ssl.SSLContext:
    """The trust aioice uses for ``turns:``: asyncio's default for ``ssl=True``.

    aiortc hands aioice ``ssl=True`` for a ``turns:`` URL, and asyncio turns that into
    ``ssl.create_default_context()`` with the URL's host as the server name: the certificate
    is verified against the operating system's CA store (``/etc/ssl/certs``, where
    ``update-ca-certificates`` puts the municipality's CA) and must name that host.
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` override the store, as OpenSSL defines (the tests' CA
    comes in that way). The same as the hub's trust (:func:`station.call.hub.hub_ssl_context`).
    """
    return ssl.create_default_context()


async def _probe_tcp(host: str, port: int, tls: bool) -> None:
    if tls:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=turn_tls_context(), server_hostname=host
        )
    else:
        reader, writer = await asyncio.open_connection(host, port)
    try:
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
    except ssl.SSLError as exc:
        return ProbeResult(url, False, f"TLS failed ({exc.reason or type(exc).__name__})")
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


#: The three ways to a TURN server, as staff see them: "UDP", "TCP", "TLS 443".
Transport = Literal["udp", "tcp", "tls"]


@dataclass(frozen=True, slots=True)
class TurnPath:
    """One configured TURN URL tried with a real allocation: did it work, and how long it took."""

    url: str
    transport: Transport
    port: int
    ok: bool
    detail: str
    #: Milliseconds until the allocation was granted (None when it was not).
    ms: float | None = None

    @property
    def label(self) -> str:
        """``UDP``, ``TCP`` or ``TLS 443`` (the port only for TLS: the one firewalls care for)."""
        return path_label(self.transport, self.port)


def path_label(transport: str, port: int) -> str:
    """How staff and IT name a path: ``UDP``, ``TCP``, ``TLS 443``."""
    return f"TLS {port}" if transport == "tls" else transport.upper()


class _Released(asyncio.DatagramProtocol):
    """The relayed endpoint's protocol: nothing is sent; it only notices the release."""

    def __init__(self) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def _allocate(url: str, username: str | None, password: str | None, within: float) -> float:
    """One authenticated TURN allocation over ``url``, released again; its time in ms."""
    from aioice import turn

    parsed = parse_ice_url(url)
    tls: Any = turn_tls_context() if parsed.scheme == "turns" else None
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(within):
        transport, protocol = await turn.create_turn_endpoint(
            _Released,
            server_addr=(parsed.host, parsed.port),
            username=username,
            password=password,
            ssl=tls,
            transport=parsed.transport,
        )
    ms = (loop.time() - started) * 1000
    transport.close()  # deletes the allocation (a Refresh with lifetime 0)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await protocol.lost
    return ms


async def _turn_path(server: IceServerConfig, url: str, within: float) -> TurnPath:
    try:
        parsed = parse_ice_url(url)
    except ValueError:
        return TurnPath(url, "udp", 0, False, "malformed ICE URL")
    transport: Transport = "tls" if parsed.scheme == "turns" else "tcp"
    if parsed.transport != "tcp":
        transport = "udp"
    if parsed.scheme == "turns" and parsed.transport != "tcp":
        # aiortc ignores turns: over anything but TCP (it has no DTLS client).
        return TurnPath(url, "tls", parsed.port, False, "turns: works over TCP only")
    password = server.credential.get_secret_value() if server.credential is not None else None
    try:
        ms = await _allocate(url, server.username, password, within)
    except TimeoutError:
        return TurnPath(url, transport, parsed.port, False, f"no allocation within {within:g} s")
    except ssl.SSLError as exc:
        detail = f"TLS failed ({exc.reason or type(exc).__name__})"
        return TurnPath(url, transport, parsed.port, False, detail)
    except Exception as exc:
        # aioice raises TransactionFailed (401: wrong credentials), ConnectionError, OSError.
        detail = f"refused or unreachable ({type(exc).__name__})"
        return TurnPath(url, transport, parsed.port, False, detail)
    return TurnPath(url, transport, parsed.port, True, f"allocated in {ms:.0f} ms", round(ms, 1))


async def probe_turn_paths(servers: Sequence[IceServerConfig], within: float) -> list[TurnPath]:
    """Try every configured TURN URL at once with a real allocation; one result each, in the
    configured order (the call takes the first that works, see the module docs)."""
    tries = [
        _turn_path(server, url, within)
        for server in servers
        for url in server.urls
        if url.startswith(("turn:", "turns:"))
    ]
    return list(await asyncio.gather(*tries))
