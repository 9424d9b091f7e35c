"""The staff UI's port adapter: its own rules over the typed staff client.

httpx's ``MockTransport`` stands in for stationd (a handler function, no patching). Reading
and checking stationd's answers is the contract client's job (tests/unit/
test_stationapi_clients.py); here: what the adapter decides itself — the call started without
a call engine, the GP's presence, a thumbnail that does not match its size, an outbox without
an endpoint.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date

import httpx
import pytest

from stationapi.staff import StaffClient
from tui.staff.station import (
    CallStart,
    DaemonStaffStation,
    GpPresence,
    NetworkCheck,
    StationApiError,
    UnreadableAnswer,
    WaitingResident,
)

Handler = Callable[[httpx.Request], httpx.Response]


def station(handler: Handler, seen: list[httpx.Request] | None = None) -> DaemonStaffStation:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    return DaemonStaffStation(
        StaffClient(transport=httpx.MockTransport(record), token="staff-token")
    )


def refusal(status: int, code: str = "refused", message: str = "") -> httpx.Response:
    body = {"code": code, "error": "refused", "user_message": message}
    return httpx.Response(status, json=body)


async def test_starting_the_call_sends_who_is_waiting_and_returns_the_gp_link() -> None:
    seen: list[httpx.Request] = []
    answer = {
        "room_id": "r1",
        "gp_url": "https://hub/r/1",
        "gp_code": "KX4M-7QP2",
        "gp_code_url": "https://hub/kode",
        "call": {"active": True},
    }
    port = station(lambda r: httpx.Response(200, json=answer), seen)
    waiting = [
        WaitingResident(
            display_name="Karen Jensen", birth_date=date(1931, 4, 2), room="12", reason="Kontrol"
        ),
        WaitingResident(display_name="Poul Madsen"),
    ]
    assert await port.start_call("c1", waiting) == CallStart(
        gp_url="https://hub/r/1", gp_code="KX4M-7QP2", gp_code_url="https://hub/kode"
    )
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/call/start")
    assert request.headers["authorization"] == "Bearer staff-token"
    assert json.loads(request.content) == {
        "consultation_id": "c1",
        "residents": [
            {
                "display_name": "Karen Jensen",
                "birth_date": "1931-04-02",
                "room": "12",
                "reason": "Kontrol",
            },
            {"display_name": "Poul Madsen"},
        ],
    }
    await port.aclose()


@pytest.mark.parametrize("status", [404, 405, 503])
async def test_without_a_call_engine_the_check_is_passed_alone(status: int) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/call/start":
            return refusal(status, message="Opkaldsdelen er slukket.")
        state = {
            "state": "waiting_for_gp",
            "since": "2025-03-10T08:50:00+00:00",
            "locked": False,
            "private": False,
            "appointment_id": "c1",
            "call_admitted": False,
            "pending_wrap_ups": [],
            "idle_remaining_seconds": None,
        }
        return httpx.Response(200, json=state)

    port = station(handler, seen)
    started = await port.start_call("c1", [WaitingResident(display_name="Karen Jensen")])
    assert started == CallStart(no_engine="Opkaldsdelen er slukket.")
    assert [r.url.path for r in seen] == ["/v1/call/start", "/v1/session/check-passed"]
    await port.aclose()


async def test_any_other_refusal_to_start_is_raised() -> None:
    port = station(lambda r: refusal(409, message="Ikke nu."))
    with pytest.raises(StationApiError) as raised:
        await port.start_call("c1", [WaitingResident(display_name="Karen Jensen")])
    assert raised.value.status == 409
    await port.aclose()


async def test_the_gp_s_presence_is_read_from_the_call() -> None:
    answer = {"gp": {"left": "gone", "ends_in": 42, "media": {"video": False, "audio": True}}}
    port = station(lambda r: httpx.Response(200, json=answer))
    assert await port.gp_presence() == GpPresence("gone", 42.0, (False, True))
    await port.aclose()
    port = station(lambda r: httpx.Response(200, json={"active": False}))
    assert await port.gp_presence() is None
    await port.aclose()


async def test_pre_call_check_answers_are_handed_on() -> None:
    pixels = bytes(range(12))

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/precheck/frame":
            assert request.url.params["width"] == "2" and request.url.params["height"] == "2"
            data = base64.b64encode(pixels).decode()
            return httpx.Response(200, json={"width": 2, "height": 2, "data": data})
        if request.url.path == "/v1/precheck/microphone":
            return httpx.Response(200, json={"rms_dbfs": -23.5, "peak_dbfs": -12.0})
        checks = [
            {"name": "hub", "ok": True, "detail": "", "hint": ""},
            {"name": "turn", "ok": False, "detail": "refused", "hint": "Ring IT."},
        ]
        return httpx.Response(200, json={"ok": False, "checks": checks})

    port = station(handler)
    assert await port.camera_thumbnail(2, 2) == (2, 2, pixels)
    assert await port.microphone_level() == -23.5
    assert await port.network_checks() == [
        NetworkCheck("hub", True, ""),
        NetworkCheck("turn", False, "Ring IT."),
    ]
    await port.aclose()


async def test_a_picture_that_does_not_match_its_size_is_said_so() -> None:
    data = base64.b64encode(bytes(5)).decode()  # a 2x2 picture needs 12 bytes
    port = station(lambda r: httpx.Response(200, json={"width": 2, "height": 2, "data": data}))
    with pytest.raises(UnreadableAnswer):
        await port.camera_thumbnail(2, 2)
    await port.aclose()


async def test_an_outbox_without_an_endpoint_is_not_an_error() -> None:
    port = station(lambda r: refusal(409, code="export_not_configured"))
    queued = await port.enqueue_export(
        export_id="n1", consultation_id="c1", entry_id=None, sealed=b"x" * 64
    )
    assert queued is False
    await port.aclose()
