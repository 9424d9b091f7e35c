"""The pre-call check's endpoints (staff, during ``PRE_CALL_CHECK`` only; 409 otherwise).

The devices and what each answer holds are :class:`station.daemon.precheck.PreCheck`'s; a
missing camera or speakerphone is refused at once with 503 ``hardware_missing``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from station.daemon.precheck import MAX_THUMB, PreCheck
from station.daemon.routes.deps import Context, Staff, StationRoute
from stationapi import models as m

__all__ = ["router"]

router = APIRouter(route_class=StationRoute, tags=["pre-call check"])


async def _running_check(context: Context, _staff: Staff) -> PreCheck:
    # After the token (Staff), so a locked station answers 401 before anything else.
    precheck = context.precheck
    precheck.require_check()
    return precheck


RunningCheck = Annotated[PreCheck, Depends(_running_check)]
_Side = Query(ge=1, le=MAX_THUMB, description=f"Pixels, 1-{MAX_THUMB}.")


@router.get("/v1/precheck/frame", summary="A small RGB thumbnail of the camera's picture")
async def get_frame(
    precheck: RunningCheck,
    width: Annotated[int, _Side] = 64,
    height: Annotated[int, _Side] = 48,
) -> m.FrameOut:
    """Scaled to fit ``width`` x ``height`` in stationd (a few KiB through the socket)."""
    return await precheck.frame(width, height)


@router.get("/v1/precheck/microphone", summary="The microphone's level just now")
async def get_microphone(precheck: RunningCheck) -> m.MicrophoneLevelOut:
    """RMS and peak in dBFS over 0.2 s."""
    return await precheck.microphone()


@router.post("/v1/precheck/tone", summary="A short test tone on the loudspeaker")
async def post_tone(precheck: RunningCheck) -> m.ToneOut:
    """Returns at once; the tone ends by itself."""
    return await precheck.play_test_tone()


@router.get("/v1/precheck/network", summary="Can the hub and each TURN server be reached?")
async def get_network(precheck: RunningCheck) -> m.NetworkOut:
    """A bounded TCP connect to each, with a hint for each failure."""
    return await precheck.network_report()
