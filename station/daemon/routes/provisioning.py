"""A new staff member's enrollment at the station: ``POST /v1/staff/enroll``.

No token: the newcomer has none yet; IT's one-time code (spent at the hub) and, after the
first staff member, an enrolled colleague's PIN are the authorisation. The PIN never leaves
the station. The body is capped at :data:`MAX_ENROLL_BODY_BYTES` (``station.daemon.api``'s
body limit). Refusals are ``ApiError``s with a ``user_message`` from the catalogue.

(``GET /v1/enrollment`` for the lock screen lives in ``station.daemon.routes.info`` and reads
:meth:`provisioning.agent.ProvisioningAgent.enrollment_view`.)
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends

from provisioning.errors import StaffEnrollmentError
from station.daemon.errors import ApiError
from station.daemon.routes.deps import Service, StationRoute
from station.i18n import N_
from stationapi import models as m

__all__ = ["ENROLL_PATH", "MAX_ENROLL_BODY_BYTES", "router"]

ENROLL_PATH: Final = "/v1/staff/enroll"
#: A code, two PINs and an id fit many times over.
MAX_ENROLL_BODY_BYTES: Final = 4096

_STATUS: Final = {
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

router = APIRouter(route_class=StationRoute, tags=["provisioning"])


async def _agent(service: Service) -> Any:
    # The provisioning agent (provisioning.agent.ProvisioningAgent); None: no hub configured.
    agent = service.provisioning
    if agent is None:
        raise ApiError(
            409, "not_configured", "no provisioning agent", N_("The station is not set up.")
        )
    return agent


@router.post(ENROLL_PATH, summary="Enroll a new staff member with IT's one-time code")
async def post_staff_enroll(
    agent: Annotated[Any, Depends(_agent)], body: m.StaffEnrollRequest
) -> m.StaffEnrolledOut:
    """Makes the newcomer's keyslot here; the answer is their (pseudonymous) staff id."""
    try:
        staff_id = await agent.enroll_staff(
            body.code,
            body.pin,
            sponsor_id=body.sponsor_staff_id,
            sponsor_pin=body.sponsor_pin,
        )
    except StaffEnrollmentError as exc:
        raise ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc), exc.user_message) from None
    return m.StaffEnrolledOut(staff_id=staff_id)
