"""The station's client of the hub's rendezvous API (``/api/station/...``, see hub/README.md).

Every request has a timeout; long-polls ask the hub to hold the request and add that to the
read timeout, so nothing here waits forever and nothing loops without waiting. Errors come
back as :class:`~station.call.errors.HubUnreachable` (no answer) or
:class:`~station.call.errors.HubRefused` / :class:`~station.call.errors.CallFinished` (the
hub's ``code``); their texts never quote what was sent (waiting info is personal data).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from pydantic import ValidationError

from station.call.config import CallConfig
from station.call.errors import CallFinished, HubRefused, HubUnreachable
from station.call.ice import IceServerConfig

__all__ = [
    "CreatedRoom",
    "RendezvousClient",
    "RoomView",
    "Sealer",
    "SessionCredentials",
    "StationCredentials",
    "hub_ssl_context",
]

#: A session token is renewed this long before it expires.
_RENEW_BEFORE = timedelta(seconds=60)


class StationCredentials(Protocol):
    """Where the ``Authorization`` of rendezvous requests comes from."""

    async def bearer(self) -> str:
        """The token to send now."""
        ...

    def refused(self, token: str) -> None:
        """The hub answered 401 to ``token``: do not use it again."""
        ...


class SessionCredentials:
    """Short-lived rendezvous tokens, each bought with one request signed by the station's
    identity (``fetch``: :meth:`provisioning.client.HubClient.rendezvous_session`); cached
    until shortly before they expire, shared by every attempt of every call."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, datetime]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = datetime.min.replace(tzinfo=UTC)
        self._lock = asyncio.Lock()

    async def bearer(self) -> str:
        async with self._lock:
            if self._token is None or datetime.now(UTC) >= self._expires_at - _RENEW_BEFORE:
                self._token, self._expires_at = await self._fetch()
            return self._token

    def refused(self, token: str) -> None:
        if token == self._token:
            self._token = None

    def __repr__(self) -> str:  # the token is a credential
        return "SessionCredentials(<secret>)"


class _StaticToken:
    """The legacy shared station token (only where the hub still allows it)."""

    def __init__(self, config: CallConfig) -> None:
        self._config = config

    async def bearer(self) -> str:
        token = self._config.station_token
        if token is None:
            raise HubRefused("no station credential configured", 401, "no_station_credential")
        return token.get_secret_value()

    def refused(self, token: str) -> None:
        """Nothing to drop: a configured token cannot be renewed; the 401 reaches the caller."""


_FINAL_CODES = frozenset({"call_ended", "link_revoked", "link_expired"})
_FINAL_STATES = frozenset({"ended", "revoked", "expired"})


#: Seals what the station tells the GP page through the hub (``purpose``, JSON payload → an
#: opaque box only the GP link's key opens): :meth:`station.keys.room_seal.RoomSealer.seal`,
#: injected by stationd so the call itself never holds key code.
Sealer = Callable[[str, Mapping[str, Any]], str]


def hub_ssl_context() -> ssl.SSLContext:
    """The TLS context for the hub: the operating system's CA store (``/etc/ssl/certs``, where
    ``update-ca-certificates`` puts a municipality's own CA), not certifi's copy of Mozilla's.
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` still override it, as OpenSSL defines."""
    return ssl.create_default_context()


# CreatedRoom and RoomView read the fields of the hub's answers (hub.models.CreatedRoom,
# StationRoomView) that the call engine uses: the hub's models are the API's definition,
# and a test holds these fields and their types to them (the station does not import hub/).


@dataclass(frozen=True, slots=True)
class CreatedRoom:
    """A room the hub made for one booking; ``gp_url`` exists only in this answer."""

    room_id: str
    gp_url: str
    valid_from: datetime
    valid_until: datetime
    #: The short code staff read over the phone, and the address where the GP types it
    #: (``None`` from a hub without codes). As secret as the link while the room lives.
    gp_code: str | None = None
    gp_code_url: str | None = None
    #: This call's TURN servers with short-lived credentials from the hub (may be empty).
    ice_servers: tuple[IceServerConfig, ...] = ()

    def __repr__(self) -> str:  # the GP link is a credential: never in a repr or log
        return f"CreatedRoom(room_id={self.room_id!r}, gp_url=<secret>)"


@dataclass(frozen=True, slots=True)
class RoomView:
    """The room as the station sees it."""

    state: str
    version: int
    offer_generation: int
    gp_admitted: bool
    end_reason: str | None
    #: The admitted GP page said it was being closed and has not been back since.
    gp_left: bool = False
    #: Seconds since the admitted GP page last reached the hub (None: not admitted, or a hub
    #: that does not say).
    gp_seen_seconds_ago: float | None = None
    #: This call's TURN servers with short-lived credentials from the hub (may be empty).
    ice_servers: tuple[IceServerConfig, ...] = ()

    @property
    def final(self) -> bool:
        """Whether the room is over (ended, revoked, expired)."""
        return self.state in _FINAL_STATES


class RendezvousClient:
    """Calls to the hub's rendezvous API for one station; one ``httpx.AsyncClient`` (close
    with :meth:`aclose`). Provisioning talks to the hub through its own client
    (:class:`provisioning.client.HubClient`): other endpoints, other credentials.

    The engine makes a new client for every call attempt: a connection that went quiet in a
    network outage is not reused after it (TCP would retransmit into it with a long back-off).
    """

    def __init__(
        self,
        config: CallConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        credentials: StationCredentials | None = None,
    ) -> None:
        self._config = config
        self._credentials = credentials if credentials is not None else _StaticToken(config)
        self._http = httpx.AsyncClient(
            base_url=config.hub_url,
            # A shared context: building one loads the CA bundle (~20 ms), per client.
            verify=ssl_context if ssl_context is not None else True,
            timeout=httpx.Timeout(config.hub_request_seconds, connect=config.hub_connect_seconds),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, wait: float = 0.0, **kwargs: Any
    ) -> httpx.Response:
        timeout = None
        if wait:
            timeout = httpx.Timeout(
                self._config.hub_request_seconds + wait, connect=self._config.hub_connect_seconds
            )
        for retry in (True, False):
            try:
                token = await self._credentials.bearer()
            except (HubRefused, HubUnreachable, CallFinished):
                raise
            except Exception as exc:  # the signed session request failed (hub, identity)
                raise HubUnreachable(f"no rendezvous session: {type(exc).__name__}") from None
            headers = {"Authorization": f"Bearer {token}"}
            try:
                if timeout is not None:
                    response = await self._http.request(
                        method, path, timeout=timeout, headers=headers, **kwargs
                    )
                else:
                    response = await self._http.request(method, path, headers=headers, **kwargs)
            except httpx.HTTPError as exc:
                raise HubUnreachable(f"hub request failed: {type(exc).__name__}") from None
            if response.status_code != 401 or not retry:
                break
            # An expired (or, after a hub key change, unknown) session: one fresh one.
            self._credentials.refused(token)
        if response.status_code >= 400:
            code = "unknown"
            try:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("code"), str):
                    code = body["code"]
            except ValueError:
                pass  # not our JSON error body: judged by the HTTP status alone
            if code in _FINAL_CODES:
                raise CallFinished(f"the hub says {code}", code)
            if response.status_code >= 500:
                raise HubUnreachable(f"hub error {response.status_code} ({code})")
            raise HubRefused(
                f"hub refused: {response.status_code} {code}", response.status_code, code
            )
        return response

    async def create_room(
        self, starts_at: datetime, ends_at: datetime, language: str
    ) -> CreatedRoom:
        """A room (and the GP's link) for a booking."""
        response = await self._request(
            "POST",
            "/api/station/rooms",
            json={
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
                "language": language,
            },
        )
        body = response.json()
        return CreatedRoom(
            room_id=str(body["room_id"]),
            gp_url=str(body["gp_url"]),
            valid_from=datetime.fromisoformat(body["valid_from"]),
            valid_until=datetime.fromisoformat(body["valid_until"]),
            gp_code=_optional_str(body.get("gp_code")),
            gp_code_url=_optional_str(body.get("gp_code_url")),
            ice_servers=_ice_servers(body.get("ice_servers")),
        )

    async def room(self, room_id: str, *, since: int = -1, wait: float = 0.0) -> RoomView:
        """The room; with ``since``/``wait`` a long-poll for its next change."""
        response = await self._request(
            "GET",
            f"/api/station/rooms/{room_id}",
            params={"since": since, "timeout": wait},
            wait=wait,
        )
        body = response.json()
        return RoomView(
            state=str(body["state"]),
            version=int(body["version"]),
            offer_generation=int(body["offer_generation"]),
            gp_admitted=bool(body["gp_admitted"]),
            end_reason=body.get("end_reason"),
            gp_left=bool(body.get("gp_left", False)),
            gp_seen_seconds_ago=_float_or_none(body.get("gp_seen_seconds_ago")),
            ice_servers=_ice_servers(body.get("ice_servers")),
        )

    async def post_offer(self, room_id: str, sdp: str, waiting: str | None) -> int:
        """Post a complete offer (and, the first time, who is waiting, sealed); its generation."""
        body: dict[str, Any] = {"type": "offer", "sdp": sdp}
        if waiting is not None:
            body["waiting"] = {"sealed": waiting}
        response = await self._request("POST", f"/api/station/rooms/{room_id}/offer", json=body)
        return int(response.json()["generation"])

    async def answer(self, room_id: str, generation: int, *, wait: float) -> str | None:
        """Long-poll for the GP's answer to ``generation``; None when the wait ran out."""
        response = await self._request(
            "GET",
            f"/api/station/rooms/{room_id}/answer",
            params={"generation": generation, "timeout": wait},
            wait=wait,
        )
        if response.status_code == 204:
            return None
        return str(response.json()["sdp"])

    async def notice(self, room_id: str, notice: dict[str, Any]) -> None:
        """The hub's copy of a data-channel notice (the GP page's fallback path)."""
        await self._request("POST", f"/api/station/rooms/{room_id}/notices", json=notice)

    async def end(self, room_id: str) -> None:
        """End the call on the hub (idempotent); the room's personal data is deleted."""
        await self._request("POST", f"/api/station/rooms/{room_id}/end")

    async def revoke(self, room_id: str) -> None:
        """Revoke the GP link (a new one replaces it)."""
        await self._request("POST", f"/api/station/rooms/{room_id}/revoke")


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _optional_str(value: object) -> str | None:
    return str(value) if value else None


def _ice_servers(value: Any) -> tuple[IceServerConfig, ...]:
    """The hub's per-call TURN servers; anything malformed is left out (the call then uses
    the configured servers alone)."""
    if not isinstance(value, list):
        return ()
    servers = []
    for item in value[:4]:
        try:
            servers.append(IceServerConfig.model_validate(item))
        except ValidationError:
            continue
    return tuple(servers)
