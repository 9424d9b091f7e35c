"""What both clients share (private): httpx over stationd's Unix socket, error mapping, SSE.

:class:`Transport` sends a request model as JSON, maps every refusal to the errors of
:mod:`stationapi.errors` and parses the answer into a :mod:`stationapi.models` model. It
knows no endpoint: the public clients (:mod:`stationapi.locked`, :mod:`stationapi.staff`)
each name only the endpoints their UI may call. Tests and tools pass ``transport=`` (e.g.
``httpx.MockTransport``) instead of a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from stationapi import models as m
from stationapi.errors import (
    StationApiError,
    StationClientError,
    StationLocked,
    StationRequestInvalid,
    StationUnavailable,
)
from stationapi.events import ApiEvent, parse_sse

__all__ = ["Transport"]

_M = TypeVar("_M", bound=BaseModel)


class Transport:
    """The HTTP plumbing under both clients; use a client as an async context manager."""

    def __init__(
        self,
        socket_path: str | Path | None = None,
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if transport is None:
            if socket_path is None:
                raise ValueError("give socket_path or transport")
            transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            transport=transport,
            base_url="http://stationd",
            timeout=httpx.Timeout(timeout),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ requests

    @staticmethod
    def _body(model: type[_M], **fields: Any) -> _M:
        """A request body; invalid fields raise :class:`StationRequestInvalid` (as stationd
        would answer), naming the fields and never their values."""
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise StationRequestInvalid(f"invalid {model.__name__}: {where}") from None

    def _authorization(self) -> dict[str, str]:
        """Credentials for every request: none here (the staff client adds its token)."""
        return {}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        headers = self._authorization()
        content = None
        if body is not None:
            content = body.model_dump_json(exclude_none=True).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, path, content=content, headers=headers, params=params
            )
        except httpx.TimeoutException as exc:
            raise StationUnavailable(f"stationd did not answer {method} {path}: timeout") from exc
        except httpx.TransportError as exc:
            raise StationUnavailable(
                f"stationd unreachable for {method} {path}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    async def _call(
        self,
        model: type[_M],
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> _M:
        """One request whose answer is ``model``."""
        response = await self._request(method, path, body=body, params=params)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise StationClientError(
                f"stationd sent an unexpected {model.__name__} ({exc.error_count()} error(s))"
            ) from None

    async def _events(self, read_timeout: float | None) -> AsyncIterator[ApiEvent]:
        timeout = httpx.Timeout(self._timeout, read=read_timeout)
        try:
            async with self._http.stream(
                "GET", "/v1/events", timeout=timeout, headers=self._authorization()
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _api_error(response)
                async for event in parse_sse(response.aiter_lines()):
                    yield event
        except httpx.TimeoutException as exc:
            raise StationUnavailable("stationd's event stream went silent") from exc
        except httpx.TransportError as exc:
            raise StationUnavailable(
                f"stationd's event stream failed: {type(exc).__name__}"
            ) from exc


def _api_error(response: httpx.Response) -> StationApiError:
    try:
        body = m.ErrorBody.model_validate_json(response.content)
    except ValidationError:
        return StationApiError(
            response.status_code, "http_error", f"HTTP {response.status_code}", None
        )
    cls = StationLocked if body.code == "locked" else StationApiError
    return cls(
        response.status_code, body.code, body.error, body.user_message, body.retry_after_seconds
    )
