"""The call engine's endpoints (``/v1/call``), over :class:`station.daemon.calls.CallController`.

=====================================  =====================================  ============
endpoint                               body                                   who
=====================================  =====================================  ============
``GET  /v1/call``                      -                                      anyone
``POST /v1/call/room``                 :class:`~stationapi.models.CallRoomRequest`   staff
``POST /v1/call/start``                :class:`~stationapi.models.CallStartRequest`  staff
``POST /v1/call/next`` / ``previous``  -                                      staff
``POST /v1/call/mute``                 :class:`~stationapi.models.CallMuteRequest`   staff or P
``POST /v1/call/camera``               :class:`~stationapi.models.CallCameraRequest` staff or P
``POST /v1/call/audio-only``           :class:`~stationapi.models.CallAudioOnlyRequest` staff or P
``POST /v1/call/volume``               :class:`~stationapi.models.CallVolumeRequest` staff or P
``POST /v1/call/call-staff``           -                                      staff or P
``POST /v1/call/end``                  -                                      staff or P
=====================================  =====================================  ============

"P" means: without a token, but only while the session is ``in_call_private`` (the
resident's own controls on the locked screen). The controls answer with the call's status
(:class:`~stationapi.models.CallStatusOut`), sent with ``exclude_unset``: without calls only
``available``, ``reason`` and ``active``.
"""

from __future__ import annotations

from fastapi import APIRouter

from station.call.errors import CallError
from station.daemon.errors import ApiError
from station.daemon.routes.deps import Calls, Service, Staff, StaffOrPrivate, StationRoute
from stationapi import models as m

__all__ = ["router"]

router = APIRouter(route_class=StationRoute, tags=["call"])


@router.get(
    "/v1/call",
    summary="Whether calls work here, and the running call",
    response_model_exclude_unset=True,
)
async def get_call(calls: Calls) -> m.CallStatusOut:
    """No personal data: positions, not names."""
    return calls.call_status()


@router.post("/v1/call/room", status_code=201, summary="The GP's link for a consultation")
async def post_room(calls: Calls, _staff: Staff, body: m.CallRoomRequest) -> m.CallRoomOut:
    """Once; ``renew`` revokes the old link and makes a new one."""
    return await calls.make_room(body)


@router.post(
    "/v1/call/start",
    status_code=202,
    summary="Dial, with who is waiting",
    response_model_exclude_unset=True,
)
async def post_start(calls: Calls, _staff: Staff, body: m.CallStartRequest) -> m.CallStartOut:
    """After the pre-call check; the GP's link is in the answer if it was made now."""
    return await calls.start(body)


async def _move(calls: Calls, step: int) -> m.CallStatusOut:
    engine = calls.active_engine()
    try:
        engine.move_resident(step)
    except CallError as exc:
        raise ApiError(409, "no_such_resident", str(exc), exc.user_message) from None
    return calls.call_status()


@router.post(
    "/v1/call/next", summary="The next resident of the round", response_model_exclude_unset=True
)
async def post_next(calls: Calls, _staff: Staff) -> m.CallStatusOut:
    """Who is in front of the camera moves on (the GP's page follows)."""
    return await _move(calls, 1)


@router.post(
    "/v1/call/previous", summary="Back to the previous resident", response_model_exclude_unset=True
)
async def post_previous(calls: Calls, _staff: Staff) -> m.CallStatusOut:
    """Who is in front of the camera moves back."""
    return await _move(calls, -1)


@router.post("/v1/call/mute", summary="Microphone off or on", response_model_exclude_unset=True)
async def post_mute(calls: Calls, _who: StaffOrPrivate, body: m.CallMuteRequest) -> m.CallStatusOut:
    """Staff, or the resident during a private call."""
    calls.active_engine().set_muted(body.muted)
    return calls.call_status()


@router.post("/v1/call/camera", summary="Camera off or on", response_model_exclude_unset=True)
async def post_camera(
    calls: Calls, _who: StaffOrPrivate, body: m.CallCameraRequest
) -> m.CallStatusOut:
    """Staff, or the resident during a private call."""
    calls.active_engine().set_camera_off(body.off)
    return calls.call_status()


@router.post(
    "/v1/call/audio-only",
    summary="Audio only (video paused both ways) or video back",
    response_model_exclude_unset=True,
)
async def post_audio_only(
    calls: Calls, _who: StaffOrPrivate, body: m.CallAudioOnlyRequest
) -> m.CallStatusOut:
    """Staff, or the resident during a private call; the GP's page follows (and may choose
    the same on its side)."""
    calls.active_engine().set_audio_only(body.on, by="staff")
    return calls.call_status()


@router.post(
    "/v1/call/volume", summary="One step louder or softer", response_model_exclude_unset=True
)
async def post_volume(
    calls: Calls, _who: StaffOrPrivate, body: m.CallVolumeRequest
) -> m.CallStatusOut:
    """Staff, or the resident during a private call."""
    calls.active_engine().change_volume(1 if body.direction == "up" else -1)
    return calls.call_status()


@router.post(
    "/v1/call/call-staff", summary="The resident asks for staff", response_model_exclude_unset=True
)
async def post_call_staff(calls: Calls, service: Service, _who: StaffOrPrivate) -> m.CallStatusOut:
    """The lamp says so, and the UIs hear it."""
    calls.active_engine()
    service.call_staff_back()
    return calls.call_status()


@router.post("/v1/call/end", summary="Hang up", response_model_exclude_unset=True)
async def post_end(calls: Calls, _who: StaffOrPrivate) -> m.CallStatusOut:
    """The call ends; the session moves on."""
    await calls.active_engine().hang_up()
    return calls.call_status()
