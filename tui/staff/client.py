"""The staff UI's client: stationd's typed client plus the endpoints newer than it.

:class:`StaffClient` adds one generic staff request (:meth:`StaffClient.staff_json`) for the
pre-call check (``/v1/precheck/...``) and the call engine (``/v1/call/...``), with the same
error mapping as every other call: a 401 is :class:`StationLocked`, and the staff UI exits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from station.daemon import models as m
from station.daemon.client import (
    StationApiError,
    StationClient,
    StationClientError,
    StationLocked,
    StationUnavailable,
)

__all__ = ["StaffClient"]


class StaffClient(StationClient):
    """:class:`StationClient` with :meth:`staff_json` (see the module docs)."""

    async def staff_json(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A staff request (Bearer token) with a JSON body; the JSON answer as a dict."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        content = None
        if body is not None:
            content = json.dumps(dict(body), separators=(",", ":")).encode()
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
            raise _error(response)
        if not response.content:
            return {}
        try:
            data = json.loads(response.content)
        except ValueError:
            raise StationClientError(f"stationd sent a non-JSON answer to {path}") from None
        return data if isinstance(data, dict) else {"value": data}


def _error(response: httpx.Response) -> StationApiError:
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
