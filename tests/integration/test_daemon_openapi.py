"""stationd's OpenAPI description is complete: every route, with its contract models.

The description is the app's own (``app.openapi()``, also served at ``GET /v1/openapi.json``
on the socket). :data:`OPERATIONS` is the whole API as the contract says it should be: each
route's request body and answer are models of :mod:`stationapi.models`, staff-only routes
name the staff token, and every refusal is documented with the one error body. A route
added without its models, or a model that is not the contract's, fails here.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from station.daemon.api import OPENAPI_PATH, ROUTERS
from stationapi import models
from tests.integration.daemon_harness import Running, enrol, running_daemon, short_socket_dir

#: (method, path) -> (request body model, success status, response model). ``None``: no
#: body; ``"event-stream"``: server-sent events.
OPERATIONS: dict[tuple[str, str], tuple[str | None, int, str | None]] = {
    # session
    ("GET", "/v1/state"): (None, 200, "StateOut"),
    ("POST", "/v1/lock"): ("LockRequest", 200, "LockResponse"),
    ("POST", "/v1/unlock"): ("UnlockRequest", 200, "UnlockResponse"),
    ("POST", "/v1/session/begin-check"): ("BeginCheckRequest", 200, "StateOut"),
    ("POST", "/v1/session/check-passed"): ("EmptyRequest", 200, "StateOut"),
    ("POST", "/v1/session/cancel"): ("CancelRequest", 200, "StateOut"),
    ("POST", "/v1/session/resume-wrap-up"): ("ResumeWrapUpRequest", 200, "StateOut"),
    ("POST", "/v1/session/finish-wrap-up"): ("EmptyRequest", 200, "StateOut"),
    ("POST", "/v1/session/touch"): (None, 200, "StateOut"),
    # what the lock screen reads, and the events
    ("GET", "/v1/settings"): (None, 200, "SettingsOut"),
    ("GET", "/v1/upcoming"): (None, 200, "UpcomingOut"),
    ("GET", "/v1/health"): (None, 200, "HealthOut"),
    ("GET", "/v1/enrollment"): (None, 200, "EnrollmentOut"),
    ("GET", "/v1/events"): (None, 200, "event-stream"),
    # the blind store
    ("GET", "/v1/clinics"): (None, 200, "ClinicList"),
    ("GET", "/v1/missed"): (None, 200, "MissedOut"),
    ("POST", "/v1/missed/acknowledge"): ("MissedAcknowledge", 200, "MissedAcknowledged"),
    ("POST", "/v1/consultations"): ("ConsultationCreate", 201, "ConsultationOut"),
    ("GET", "/v1/consultations"): (None, 200, "ConsultationList"),
    ("GET", "/v1/consultations/{cid}"): (None, 200, "ConsultationOut"),
    ("PATCH", "/v1/consultations/{cid}"): ("ConsultationUpdate", 200, "ConsultationOut"),
    ("PUT", "/v1/consultations/{cid}/status"): (
        "ConsultationStatusRequest",
        200,
        "ConsultationOut",
    ),
    ("POST", "/v1/consultations/{cid}/documented"): ("EmptyRequest", 200, "ConsultationOut"),
    ("PUT", "/v1/consultations/{cid}/key"): ("KeyIn", 200, "KeyOut"),
    ("GET", "/v1/consultations/{cid}/key"): (None, 200, "KeyOut"),
    ("POST", "/v1/consultations/{cid}/entries"): ("EntryCreate", 201, "EntryOut"),
    ("GET", "/v1/consultations/{cid}/entries"): (None, 200, "EntryList"),
    ("PUT", "/v1/consultations/{cid}/entries/order"): ("OrderRequest", 200, "EntryList"),
    ("POST", "/v1/consultations/{cid}/notes"): ("NoteCreate", 201, "NoteOut"),
    ("GET", "/v1/consultations/{cid}/notes"): (None, 200, "NoteList"),
    ("GET", "/v1/consultations/{cid}/sealed-events"): (None, 200, "SealedEventList"),
    ("GET", "/v1/entries/{eid}"): (None, 200, "EntryOut"),
    ("PATCH", "/v1/entries/{eid}"): ("EntryUpdate", 200, "EntryOut"),
    ("DELETE", "/v1/entries/{eid}"): (None, 204, None),
    ("PUT", "/v1/entries/{eid}/status"): ("EntryStatusRequest", 200, "EntryOut"),
    # the call
    ("GET", "/v1/call"): (None, 200, "CallStatusOut"),
    ("POST", "/v1/call/room"): ("CallRoomRequest", 201, "CallRoomOut"),
    ("POST", "/v1/call/start"): ("CallStartRequest", 202, "CallStartOut"),
    ("POST", "/v1/call/next"): (None, 200, "CallStatusOut"),
    ("POST", "/v1/call/previous"): (None, 200, "CallStatusOut"),
    ("POST", "/v1/call/mute"): ("CallMuteRequest", 200, "CallStatusOut"),
    ("POST", "/v1/call/camera"): ("CallCameraRequest", 200, "CallStatusOut"),
    ("POST", "/v1/call/audio-only"): ("CallAudioOnlyRequest", 200, "CallStatusOut"),
    ("POST", "/v1/call/volume"): ("CallVolumeRequest", 200, "CallStatusOut"),
    ("POST", "/v1/call/call-staff"): (None, 200, "CallStatusOut"),
    ("POST", "/v1/call/end"): (None, 200, "CallStatusOut"),
    # the pre-call check
    ("GET", "/v1/precheck/frame"): (None, 200, "FrameOut"),
    ("GET", "/v1/precheck/microphone"): (None, 200, "MicrophoneLevelOut"),
    ("POST", "/v1/precheck/tone"): (None, 200, "ToneOut"),
    ("GET", "/v1/precheck/network"): (None, 200, "NetworkOut"),
    # the export
    ("GET", "/v1/exports/settings"): (None, 200, "ExportSettingsOut"),
    ("POST", "/v1/exports"): ("ExportCreate", 201, "ExportOut"),
    ("GET", "/v1/consultations/{cid}/exports"): (None, 200, "ExportList"),
    ("POST", "/v1/exports/{export_id}/retry"): (None, 200, "ExportOut"),
    # staff enrollment
    ("POST", "/v1/staff/enroll"): ("StaffEnrollRequest", 200, "StaffEnrolledOut"),
}

#: Open without a token (the locked UI's part, and the unlock and enrollment themselves).
OPEN = {
    ("GET", "/v1/state"),
    ("POST", "/v1/lock"),
    ("POST", "/v1/unlock"),
    ("GET", "/v1/settings"),
    ("GET", "/v1/upcoming"),
    ("GET", "/v1/health"),
    ("GET", "/v1/enrollment"),
    ("GET", "/v1/events"),
    ("GET", "/v1/call"),
    ("POST", "/v1/staff/enroll"),
}
#: The resident's controls: the staff token, or none while the call is private.
STAFF_OR_PRIVATE = {
    ("POST", "/v1/call/mute"),
    ("POST", "/v1/call/camera"),
    ("POST", "/v1/call/audio-only"),
    ("POST", "/v1/call/volume"),
    ("POST", "/v1/call/call-staff"),
    ("POST", "/v1/call/end"),
}
ERROR_STATUSES = ("400", "401", "404", "409", "413", "415", "422", "429", "500", "503")


@pytest.fixture
async def station(data_dir: Path) -> AsyncIterator[Running]:
    enrol(data_dir)
    with short_socket_dir() as socket_dir:
        async with running_daemon(data_dir, socket_dir) as running:
            yield running


def _ref(content: dict[str, Any], media_type: str = "application/json") -> str | None:
    schema = content.get(media_type, {}).get("schema", {})
    ref = schema.get("$ref")
    return None if ref is None else str(ref).rsplit("/", 1)[-1]


async def test_every_route_is_described_with_its_contract_models(station: Running) -> None:
    app = station.daemon.api
    assert app is not None
    schema = app.openapi()
    # The socket serves the same description.
    served = await station.http.get(OPENAPI_PATH)
    assert served.status_code == 200 and served.json() == schema

    routes = {(method, route.path) for route in _routes() for method in route.methods}
    assert routes == set(OPERATIONS)
    described = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert described == set(OPERATIONS)
    assert len(OPERATIONS) == 55

    for (method, path), (request, status, response) in OPERATIONS.items():
        op = schema["paths"][path][method.lower()]
        where = f"{method} {path}"
        body = op.get("requestBody")
        if request is None:
            assert body is None, where
        else:
            assert body is not None and _ref(body["content"]) == request, where
        answer = op["responses"][str(status)]
        if response is None:
            assert not answer.get("content"), where
        elif response == "event-stream":
            assert "text/event-stream" in answer["content"], where
        else:
            assert _ref(answer["content"]) == response, where
        for error in ERROR_STATUSES:
            assert _ref(op["responses"][error]["content"]) == "ErrorBody", (where, error)
        security = {name for item in op.get("security", []) for name in item}
        if (method, path) in OPEN:
            assert security == set(), where
        elif (method, path) in STAFF_OR_PRIVATE:
            assert security == {"StaffTokenUnlessPrivate"}, where
        else:
            assert security == {"StaffToken"}, where

    # Every schema in the description is a model of the contract package.
    for name in schema["components"]["schemas"]:
        model = getattr(models, name, None)
        assert isinstance(model, type) and issubclass(model, BaseModel), name
        assert name in models.__all__, name


def _routes() -> Iterator[APIRoute]:
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            yield route


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_every_handler_and_dependency_runs_on_the_daemons_loop() -> None:
    # FastAPI runs a plain ``def`` on a worker thread; the session, the tokens and the
    # store's worker belong to the daemon's one loop.
    routes = list(_routes())
    assert len(routes) == len(OPERATIONS)
    for route in routes:
        assert inspect.iscoroutinefunction(route.endpoint), route.path
        for call in _calls(route.dependant):
            target = call if inspect.isfunction(call) else type(call).__call__
            assert inspect.iscoroutinefunction(target), (route.path, call)
