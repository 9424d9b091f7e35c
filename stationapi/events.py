"""stationd's event stream (``GET /v1/events``, server-sent events) as the clients read it.

The stream starts with ``retry:`` and a ``snapshot`` event (the current state), then sends one
event per change (``state``, ``locked``, ``call``, ``health``, ...) and a ``: keepalive``
comment whenever it has been quiet for the daemon's heartbeat; it ends when stationd shuts
down (after a ``shutdown`` event).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiEvent", "parse_sse"]


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """One server-sent event: ``kind`` (``state``, ``locked``, ...), its data and sequence."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None


async def parse_sse(lines: AsyncIterator[str]) -> AsyncIterator[ApiEvent]:
    """Server-sent events from text lines (the subset stationd sends: id, event, data)."""
    kind = "message"
    data: list[str] = []
    seq: int | None = None
    async for line in lines:
        if not line:
            if data:
                try:
                    payload = json.loads("\n".join(data))
                except json.JSONDecodeError:
                    payload = {"raw": "\n".join(data)}
                yield ApiEvent(
                    kind, payload if isinstance(payload, dict) else {"value": payload}, seq
                )
            kind, data, seq = "message", [], None
            continue
        if line.startswith(":"):
            continue  # heartbeat comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            seq = int(value) if value.isdigit() else None
