"""The station's HTTP client for the hub's provisioning API: every request signed.

One request at a time per station (an :class:`asyncio.Lock`): counters must reach the hub in
the order they were taken, or the hub would see a stale counter and suspect a clone.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import datetime
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from provisioning.errors import EnrollmentError, HubUnreachable, StaffEnrollmentError
from provisioning.identity import RequestCounter, StationIdentity
from provisioning.protocol import API_PREFIX, SignedEnvelope
from provisioning.schema import (
    CommandAck,
    EnrollRequest,
    EnrollResponse,
    Heartbeat,
    HeartbeatResponse,
    StaffRedeemRequest,
    StaffRedeemResponse,
)
from station.core.clock import Clock

__all__ = ["API_PREFIX", "HubClient"]

_M = TypeVar("_M", bound=BaseModel)


def _error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"http_{response.status_code}"
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code.isascii() else f"http_{response.status_code}"


class HubClient:
    """Signed requests to one hub. ``transport`` is the test seam (httpx's)."""

    def __init__(
        self,
        base_url: str,
        identity: StationIdentity,
        counter: RequestCounter,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._prefix = urlsplit(self.base_url).path.rstrip("/")
        self.identity = identity
        self._counter = counter
        self._clock = clock
        self._lock = asyncio.Lock()
        # The OS's CA store (a municipal CA installed with update-ca-certificates counts) and
        # the environment's proxy settings (HTTPS_PROXY, NO_PROXY: station.env), as a
        # municipality's network needs; httpx no longer reads .netrc.
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=timeout,
            follow_redirects=False,
            verify=ssl.create_default_context(),
            trust_env=True,
        )
        #: Bytes of every request body sent (tests inspect what leaves the station).
        self.sent_bytes = 0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        body: BaseModel | None = None,
        params: dict[str, str] | None = None,
        *,
        into: BinaryIO | None = None,
        limit: int = 0,
    ) -> httpx.Response:
        """One signed request. ``into``: stream a 200 answer's body into this file (at most
        ``limit`` bytes) instead of keeping it in memory."""
        data = b"" if body is None else body.model_dump_json().encode()
        target = self._prefix + API_PREFIX + path + (f"?{urlencode(params)}" if params else "")
        async with self._lock:
            counter = await asyncio.to_thread(self._counter.next)
            headers = self.identity.sign_request(
                method, target, counter, int(self._clock.now().timestamp()), data
            )
            if body is not None:
                headers["Content-Type"] = "application/json"
            url = self.base_url[: len(self.base_url) - len(self._prefix)] + target
            try:
                request = self._http.build_request(method, url, content=data, headers=headers)
                response = await self._http.send(request, stream=into is not None)
                if into is not None:
                    try:
                        if response.status_code == 200:
                            written = 0
                            async for chunk in response.aiter_bytes(1 << 16):
                                written += len(chunk)
                                if written > limit:
                                    raise HubUnreachable("hub sent more than was asked for")
                                await asyncio.to_thread(into.write, chunk)
                        else:
                            await response.aread()
                    finally:
                        await response.aclose()
            except httpx.HTTPError as exc:
                raise HubUnreachable(f"hub not reachable: {type(exc).__name__}") from None
            self.sent_bytes += len(data)
        if response.status_code >= 500:
            raise HubUnreachable(f"hub answered {response.status_code}")
        return response

    def _parse(self, response: httpx.Response, model: type[_M]) -> _M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise HubUnreachable("hub sent a malformed answer") from None

    def _refused(self, response: httpx.Response) -> EnrollmentError:
        return EnrollmentError(_error_code(response))

    async def enroll(self, software_version: str, *, renew_code: bool = False) -> EnrollResponse:
        """First contact / enrollment poll."""
        params = {"renew_code": "true"} if renew_code else None
        response = await self._send(
            "POST", "/enroll", EnrollRequest(software_version=software_version), params
        )
        if response.status_code != 200:
            raise self._refused(response)
        return self._parse(response, EnrollResponse)

    async def rendezvous_session(self) -> tuple[str, datetime]:
        """A short-lived token for the hub's rendezvous API (``/api/station``), for a request
        signed with this station's identity; the token and when it expires."""
        response = await self._send("POST", "/rendezvous-session")
        if response.status_code != 200:
            raise self._refused(response)
        try:
            body = response.json()
            return str(body["token"]), datetime.fromisoformat(body["expires_at"])
        except (ValueError, KeyError, TypeError):
            raise HubUnreachable("hub sent a malformed answer") from None

    async def config(self) -> SignedEnvelope | None:
        """The current signed configuration (None: none published yet)."""
        response = await self._send("GET", "/config")
        if response.status_code == 404 and _error_code(response) == "no_config":
            return None
        if response.status_code != 200:
            raise self._refused(response)
        return self._parse(response, SignedEnvelope)

    async def heartbeat(self, beat: Heartbeat) -> HeartbeatResponse:
        """Send a heartbeat; the hub's answer."""
        response = await self._send("POST", "/heartbeat", beat)
        if response.status_code != 200:
            raise self._refused(response)
        return self._parse(response, HeartbeatResponse)

    async def ack(self, command_id: str, ack: CommandAck) -> None:
        """Report a command's outcome."""
        response = await self._send("POST", f"/commands/{command_id}/ack", ack)
        if response.status_code != 204:
            raise self._refused(response)

    async def download_release(self, sha256: str, into: BinaryIO, *, limit: int) -> None:
        """Write the release archive ``sha256`` into ``into`` (unchecked: the caller checks)."""
        response = await self._send("GET", f"/releases/{sha256}", into=into, limit=limit)
        if response.status_code != 200:
            raise self._refused(response)

    async def redeem_staff_code(self, code: str) -> StaffRedeemResponse:
        """Trade a staff enrollment code for a pseudonymous staff id."""
        response = await self._send("POST", "/staff/redeem", StaffRedeemRequest(code=code))
        if response.status_code != 200:
            code_word = _error_code(response)
            user: Any = None
            try:
                user = response.json().get("user_message")
            except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
                user = None
            raise StaffEnrollmentError(code_word, None, user if isinstance(user, str) else None)
        return self._parse(response, StaffRedeemResponse)
