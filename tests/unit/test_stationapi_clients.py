"""The contract package's two clients: what each may call, and that no endpoint is missing.

Every method is called against an ``httpx.MockTransport`` that records the request and
refuses it (so no answer has to be made up); the requests are matched to stationd's routes.
The locked UI's client reaches only the open endpoints and the resident's call controls, and
sends no token; the staff UI's client has a typed method for every one of stationd's
endpoints and sends its token.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
from starlette.routing import Match

from station.daemon.api import ROUTERS, build_app
from stationapi import models as m
from stationapi.errors import StationApiError, StationLocked, StationRequestInvalid
from stationapi.locked import LockedClient
from stationapi.staff import StaffClient

#: The locked UI's whole client (the transport's ``aclose`` and the context manager aside).
LOCKED_SURFACE = {
    "state",
    "settings",
    "upcoming",
    "health",
    "enrollment",
    "lock",
    "events",
    "volume",
    "mute",
    "call_staff",
    "end_call",
}
#: What the locked client reaches on stationd.
LOCKED_OPERATIONS = {
    ("GET", "/v1/state"),
    ("GET", "/v1/settings"),
    ("GET", "/v1/upcoming"),
    ("GET", "/v1/health"),
    ("GET", "/v1/enrollment"),
    ("POST", "/v1/lock"),
    ("GET", "/v1/events"),
    ("POST", "/v1/call/volume"),
    ("POST", "/v1/call/mute"),
    ("POST", "/v1/call/call-staff"),
    ("POST", "/v1/call/end"),
}
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SEALED = b"\x01sealed"
#: Arguments for each client method (a new method without an entry here fails the tests).
ARGUMENTS: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {
    "state": ((), {}),
    "settings": ((), {}),
    "upcoming": ((), {"limit": 5}),
    "missed": ((), {}),
    "acknowledge_missed": ((["c1"],), {}),
    "health": ((), {}),
    "enrollment": ((), {}),
    "lock": ((), {}),
    "events": ((), {}),
    "volume": (("up",), {}),
    "mute": ((True,), {}),
    "call_staff": ((), {}),
    "end_call": ((), {}),
    "unlock": (("101", "4711"), {}),
    "enroll_staff": (("ABCD-1234", "4711"), {}),
    "begin_check": (("c1",), {}),
    "check_passed": ((), {}),
    "cancel": ((), {"reason": "staff_cancelled"}),
    "resume_wrap_up": ((), {}),
    "finish_wrap_up": ((), {}),
    "touch": ((), {}),
    "clinics": ((), {}),
    "create_consultation": (
        (),
        {
            "clinic_id": "clinic-1",
            "starts_at": NOW,
            "ends_at": NOW,
            "consultation_type": "video_consultation",
        },
    ),
    "consultations": ((), {"starts_from": NOW, "statuses": ["booked"]}),
    "consultation": (("c1",), {}),
    "update_consultation": (("c1", m.ConsultationUpdate()), {}),
    "set_consultation_status": (("c1", "cancelled"), {}),
    "mark_documented": (("c1",), {}),
    "put_key": (("c1", SEALED), {}),
    "get_key": (("c1",), {}),
    "add_entry": (("c1", {"display_name": SEALED}), {}),
    "entries": (("c1",), {}),
    "entry": (("e1",), {}),
    "update_entry": (("e1", m.EntryUpdate()), {}),
    "set_entry_status": (("e1", "done"), {}),
    "delete_entry": (("e1",), {}),
    "reorder_entries": (("c1", ["e1"]), {}),
    "add_note": (("c1", SEALED), {}),
    "notes": (("c1",), {}),
    "sealed_events": (("c1",), {}),
    "call": ((), {}),
    "make_room": (("c1",), {}),
    "start_call": (("c1", [m.WaitingResident(display_name="A")]), {}),
    "next_resident": ((), {}),
    "previous_resident": ((), {}),
    "camera": ((False,), {}),
    "audio_only": ((True,), {}),
    "precheck_frame": ((), {}),
    "precheck_microphone": ((), {}),
    "precheck_tone": ((), {}),
    "precheck_network": ((), {}),
    "export_settings": ((), {}),
    "enqueue_export": ((), {"export_id": "x1", "consultation_id": "c1", "sealed": SEALED}),
    "exports": (("c1",), {}),
    "retry_export": (("x1",), {}),
}


def public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") and name != "aclose"
    }


def route_of(method: str, path: str) -> tuple[str, str]:
    """The route template a concrete request reaches."""
    scope = {"type": "http", "method": method, "path": path}
    for router in ROUTERS:
        for route in router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return method, getattr(route, "path", "?")
    raise AssertionError(f"{method} {path} reaches no route")


class Recorder:
    """A transport that records each request and refuses it (404 with the error body)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = m.ErrorBody(error="test", user_message="test", code="not_found")
        return httpx.Response(404, content=body.model_dump_json())


async def call_each(client: LockedClient, names: set[str]) -> None:
    for name in sorted(names):
        args, kwargs = ARGUMENTS[name]
        method = getattr(client, name)
        with pytest.raises(StationApiError):
            if name == "events":
                async for _ in method(*args, **kwargs):
                    pass
            else:
                await cast(Callable[..., Awaitable[Any]], method)(*args, **kwargs)


def test_the_locked_client_has_only_the_locked_uis_methods() -> None:
    assert public_methods(LockedClient) == LOCKED_SURFACE
    for forbidden in ("unlock", "token", "clinics", "entries", "notes", "start_call", "camera"):
        assert not hasattr(LockedClient, forbidden), forbidden
    # The staff client is the locked one and everything else.
    assert issubclass(StaffClient, LockedClient)
    assert public_methods(StaffClient) > LOCKED_SURFACE


async def test_the_locked_client_reaches_open_endpoints_only_and_sends_no_token() -> None:
    recorder = Recorder()
    async with LockedClient(transport=httpx.MockTransport(recorder)) as client:
        await call_each(client, LOCKED_SURFACE)
    reached = {route_of(r.method, r.url.path) for r in recorder.requests}
    assert reached == LOCKED_OPERATIONS
    assert not [r for r in recorder.requests if "authorization" in r.headers]


async def test_the_staff_client_has_a_typed_method_for_every_endpoint() -> None:
    schema = build_app(
        cast(Any, None), calls=cast(Any, None), precheck=cast(Any, None), exports=None
    ).openapi()
    every = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert public_methods(StaffClient) == set(ARGUMENTS)
    recorder = Recorder()
    async with StaffClient(transport=httpx.MockTransport(recorder), token="t0k3n") as client:
        await call_each(client, set(ARGUMENTS))
    reached = {route_of(r.method, r.url.path) for r in recorder.requests}
    assert reached == every
    assert all(r.headers["authorization"] == "Bearer t0k3n" for r in recorder.requests)
    # Every method answers with a contract model (a list of them; the wrapped key's bytes;
    # nothing for a deletion; the event stream's events).
    for name in ARGUMENTS:
        returns = inspect.signature(getattr(StaffClient, name)).return_annotation
        assert str(returns).startswith(("m.", "list[m.")) or returns in (
            "bytes",
            "None",
            "AsyncIterator[ApiEvent]",
        ), (name, returns)


async def test_a_refusal_becomes_the_clients_error_with_both_texts() -> None:
    def locked(request: httpx.Request) -> httpx.Response:
        body = m.ErrorBody(
            error="no valid staff session", user_message="Stationen er låst.", code="locked"
        )
        return httpx.Response(401, content=body.model_dump_json())

    async with StaffClient(transport=httpx.MockTransport(locked)) as client:
        with pytest.raises(StationLocked) as refused:
            await client.clinics()
    assert refused.value.status == 401 and refused.value.user_message == "Stationen er låst."


async def test_an_invalid_request_is_refused_before_it_is_sent_without_its_values() -> None:
    recorder = Recorder()
    async with StaffClient(transport=httpx.MockTransport(recorder)) as client:
        with pytest.raises(StationRequestInvalid) as invalid:
            await client.unlock("staff-a", "12ab34")
        with pytest.raises(StationRequestInvalid):
            await client.begin_check("010190-1234")
    assert recorder.requests == []
    assert invalid.value.status == 422 and invalid.value.code == "invalid"
    assert "12ab34" not in str(invalid.value) and "pin" in str(invalid.value)
    assert invalid.value.user_message.startswith("Oplysningerne")


def test_the_contracts_export_limit_is_the_outboxs() -> None:
    # The contract package imports nothing of the export; the two limits must still agree.
    from station.export.limits import MAX_SEALED_EXPORT_BYTES

    assert m.MAX_SEALED_EXPORT_BYTES == MAX_SEALED_EXPORT_BYTES
