"""The event stream: ``GET /v1/events`` (server-sent events, no token).

A ``retry:`` line and a ``snapshot`` of the state first, then one event per change; a
``: keepalive`` comment whenever the stream has been quiet for the heartbeat. A subscriber
that falls behind by :data:`SSE_QUEUE_SIZE` events loses the oldest and is told so
(``lagged``). The stream ends when stationd shuts down (``shutdown``, then the end).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Final

from fastapi import APIRouter
from starlette.responses import StreamingResponse

from station.daemon.events import Event
from station.daemon.routes.deps import Context, StationRoute
from station.daemon.routes.session import state_out

__all__ = ["SSE_QUEUE_SIZE", "router"]

#: Events an SSE client may fall behind by before the oldest are dropped.
SSE_QUEUE_SIZE: Final = 64

router = APIRouter(route_class=StationRoute, tags=["events"])


@router.get(
    "/v1/events",
    summary="Server-sent events: the state, locks, the call, health",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless text/event-stream (``id``, ``event``, ``data`` as JSON)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def get_events(context: Context) -> StreamingResponse:
    """Follow stationd (see the module docs)."""
    service = context.service
    heartbeat = context.heartbeat_seconds
    subscription = service.broker.subscribe(SSE_QUEUE_SIZE)
    snapshot = service.broker.make_event("snapshot", state_out(service).model_dump(mode="json"))

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 1000\n\n" + _sse(snapshot)
            while True:
                event = await subscription.get(wait=heartbeat)
                if event is not None:
                    yield _sse(event)
                elif subscription.closed:
                    return
                else:
                    yield b": keepalive\n\n"
        finally:
            subscription.close()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _sse(event: Event) -> bytes:
    data = json.dumps(event.as_json(), separators=(",", ":"))
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()
