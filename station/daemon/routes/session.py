"""The session: its state, the lock, the unlock, and the transitions staff drive.

``GET /v1/state``, ``POST /v1/lock`` and ``POST /v1/unlock`` are open to both UIs (the lock
is always safe; the unlock needs a PIN). Everything under ``/v1/session`` needs the staff
token; only ``POST /v1/session/touch`` counts as activity for the idle lock (the staff UI
sends it on a person's key press, click or touch; screens that poll must not keep a station
unlocked).
"""

from __future__ import annotations

from fastapi import APIRouter

from station.core.session import LockReason, SessionState
from station.daemon.routes.deps import Service, Staff, StaffActivity, StationRoute, mapped
from station.daemon.service import StationService
from stationapi import models as m

__all__ = ["router", "state_out"]

router = APIRouter(route_class=StationRoute, tags=["session"])

# An absent (or empty) body is the model's defaults. The models are frozen: sharing one
# instance as every request's default is safe.
_LOCK = m.LockRequest()
_EMPTY = m.EmptyRequest()
_CANCEL = m.CancelRequest()
_RESUME = m.ResumeWrapUpRequest()


def state_out(service: StationService) -> m.StateOut:
    """The session as the UIs see it (clear ids only)."""
    s = service.session
    remaining = s.idle_remaining()
    return m.StateOut(
        state=s.state.value,
        since=s.since,
        locked=s.is_locked,
        private=s.state is SessionState.IN_CALL_PRIVATE,
        appointment_id=s.appointment_id,
        call_admitted=s.call_admitted,
        pending_wrap_ups=list(s.pending_wrap_ups),
        idle_remaining_seconds=remaining.total_seconds() if remaining is not None else None,
    )


@router.get("/v1/state", summary="The session's state (no token needed)")
async def get_state(service: Service) -> m.StateOut:
    """Where the session is: clear ids only."""
    return state_out(service)


@router.post("/v1/lock", summary="Lock now, or leave the room (the call goes private)")
async def post_lock(service: Service, body: m.LockRequest = _LOCK) -> m.LockResponse:
    """Lock (``staff_action``) or ``leave``; revokes every staff token. Never fails."""
    before = service.session.state
    if body.reason == "leave":
        service.leave()
    else:
        service.request_lock(LockReason.STAFF_ACTION)
    after = service.session.state
    return m.LockResponse(state=after.value, changed=after is not before)


@router.post("/v1/unlock", summary="Unlock with a PIN: the staff token and the vault key")
async def post_unlock(service: Service, body: m.UnlockRequest) -> m.UnlockResponse:
    """Check the staff number and PIN (stationd's PIN guard), unlock, hand over the token,
    the pseudonymous staff id and the vault key."""
    staff_id, token, transition, key = await service.unlock(body.staff_number, body.pin)
    try:
        # The key hand-over (see StationService.unlock): copied into the answer once, then
        # this copy is zeroed.
        return m.UnlockResponse(
            token=token,
            staff_id=staff_id,
            state=transition.to_state.value,
            vault_key=bytes(key),
        )
    finally:
        for i in range(len(key)):
            key[i] = 0


# One handler per transition (its own path, summary and OpenAPI entry), each checking the
# token and taking one step of the session; alike by design.
@router.post("/v1/session/begin-check", summary="Start the pre-call check for a booking")
async def post_begin_check(
    service: Service, _staff: Staff, body: m.BeginCheckRequest
) -> m.StateOut:
    """STAFF → PRE_CALL_CHECK for a booked consultation."""
    await mapped(service.begin_check(body.appointment_id))
    return state_out(service)


@router.post("/v1/session/check-passed", summary="The check passed: wait for the GP")
async def post_check_passed(
    service: Service,
    _staff: Staff,
    _body: m.EmptyRequest = _EMPTY,
) -> m.StateOut:
    """PRE_CALL_CHECK → WAITING_FOR_GP (the call engine does this itself when it dials)."""
    service.transition(service.session.check_passed)
    return state_out(service)


@router.post("/v1/session/cancel", summary="Call off the check or the waiting call")
async def post_cancel(
    service: Service,
    _staff: Staff,
    body: m.CancelRequest = _CANCEL,
) -> m.StateOut:
    """Back to the staff screen, with a short machine word saying why."""
    service.transition(lambda: service.session.cancel(body.reason))
    return state_out(service)


@router.post("/v1/session/resume-wrap-up", summary="Open a pending wrap-up")
async def post_resume_wrap_up(
    service: Service,
    _staff: Staff,
    body: m.ResumeWrapUpRequest = _RESUME,
) -> m.StateOut:
    """STAFF → WRAP_UP for a call that ended while private (default: the oldest)."""
    service.transition(lambda: service.session.resume_wrap_up(body.appointment_id))
    return state_out(service)


@router.post("/v1/session/finish-wrap-up", summary="The note is written: back to staff")
async def post_finish_wrap_up(
    service: Service,
    _staff: Staff,
    _body: m.EmptyRequest = _EMPTY,
) -> m.StateOut:
    """WRAP_UP → STAFF."""
    service.transition(service.session.finish_wrap_up)
    return state_out(service)


@router.post("/v1/session/touch", summary="A person's input: postpone the idle lock")
async def post_touch(service: Service, _staff: StaffActivity) -> m.StateOut:
    """The one request that counts as staff activity."""
    return state_out(service)
