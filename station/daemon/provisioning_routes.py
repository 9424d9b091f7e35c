"""stationd's local API for staff enrollment: ``POST /v1/staff/enroll`` (an extra route).

``{code, pin, sponsor_staff_id?, sponsor_pin?}`` -> ``{staff_id}``. No token: the newcomer has
none yet; the one-time code (spent at the hub) and, after the first staff member, an enrolled
colleague's PIN are the authorisation. The PIN never leaves the station. Refusals are
``ApiError``s with the Danish ``user_message``.

(``GET /v1/enrollment`` for the lock screen lives in ``station.daemon.api`` and reads
:meth:`provisioning.agent.ProvisioningAgent.enrollment_view`.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from provisioning.errors import StaffEnrollmentError
from station.daemon.errors import ApiError
from stationapi.models import StaffEnrolledOut

__all__ = ["StaffEnrollBody", "provisioning_routes"]

Handler = Callable[[Request], Awaitable[Response]]

_MAX_BODY = 4096
_STATUS = {
    "unknown_code": 404,
    "code_expired": 410,
    "code_used": 409,
    "too_many_attempts": 429,
    "invalid_pin": 422,
    "sponsor_required": 403,
    "sponsor_refused": 403,
    "not_configured": 409,
    "already_enrolled": 409,
    "hub_unreachable": 503,
}


class StaffEnrollBody(BaseModel):
    """A staff member's enrollment at the station."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    code: str = Field(min_length=4, max_length=32, pattern=r"^[A-Za-z0-9 -]+$")
    pin: str = Field(min_length=1, max_length=64, repr=False)
    sponsor_staff_id: str | None = Field(default=None, max_length=64)
    sponsor_pin: str | None = Field(default=None, max_length=64, repr=False)


def provisioning_routes(service: Any) -> list[tuple[str, Handler, str]]:
    """``(path, handler, method)`` for ``build_app(extra_routes=...)``; the agent is read from
    ``service.provisioning`` (None: no hub configured)."""

    async def post_staff_enroll(request: Request) -> Response:
        agent = getattr(service, "provisioning", None)
        if agent is None:
            raise ApiError(
                409, "not_configured", "no provisioning agent", "Stationen er ikke sat op."
            )
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise ApiError(413, "too_large", "body too large", "Forespørgslen er for stor.")
        try:
            body = StaffEnrollBody.model_validate_json(raw)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "body"
            raise ApiError(
                422, "invalid", f"invalid request: {where}", "Oplysningerne var ugyldige."
            ) from None
        try:
            staff_id = await agent.enroll_staff(
                body.code,
                body.pin,
                sponsor_id=body.sponsor_staff_id,
                sponsor_pin=body.sponsor_pin,
            )
        except StaffEnrollmentError as exc:
            raise ApiError(
                _STATUS.get(exc.code, 400), exc.code, str(exc), exc.user_message
            ) from None
        return Response(
            StaffEnrolledOut(staff_id=staff_id).model_dump_json(), media_type="application/json"
        )

    return [("/v1/staff/enroll", post_staff_enroll, "POST")]
