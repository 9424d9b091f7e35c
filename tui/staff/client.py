"""The staff UI's client: stationd's typed client plus the endpoints newer than it.

:class:`StaffClient` adds one generic staff request (:meth:`StaffClient.staff_json`) for the
pre-call check (``/v1/precheck/...``) and the call engine (``/v1/call/...``), through the
typed client's own request path, so the error mapping is the same as every other call: a
401 is :class:`~stationapi.client.StationLocked`, and the staff UI exits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stationapi.client import StationClient, StationClientError

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
        response = await self._request(method, path, staff=True, params=params, json_body=body)
        if not response.content:
            return {}
        try:
            data = json.loads(response.content)
        except ValueError:
            raise StationClientError(f"stationd sent a non-JSON answer to {path}") from None
        return data if isinstance(data, dict) else {"value": data}
