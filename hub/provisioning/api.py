"""The provisioning API for stations, under ``/api/provisioning/v1`` in the hub's FastAPI app.

Every request is signed with the station's Ed25519 key (see :mod:`provisioning.protocol`);
the signature, time window and counter are checked before any handler runs. Stations only
pull: enrollment, their configuration, heartbeats (answered with commands), command
acknowledgements and staff-code redemption. IT's side is the admin CLI (:mod:`hub.admin`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from fastapi.security import APIKeyHeader

from hub.db import Database, SqliteDatabase
from hub.provisioning.errors import (
    NoConfiguration,
    NoRelease,
    ProvisioningHubError,
    SignatureRejected,
)
from hub.provisioning.keys import LEGACY_KEY_FILE, HubSecret, ITSigningKey
from hub.provisioning.releases import ReleaseShelf
from hub.provisioning.service import ProvisioningService, ProvisioningSettings
from hub.provisioning.store import StationRecord
from hub.settings import HubSettings
from provisioning.errors import SignatureInvalid
from provisioning.protocol import (
    API_PREFIX,
    HEADER_COUNTER,
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIME,
    SignedEnvelope,
    request_message,
    verify_request,
)
from provisioning.schema import (
    CommandAck,
    EnrollRequest,
    EnrollResponse,
    Heartbeat,
    HeartbeatResponse,
    StaffRedeemRequest,
    StaffRedeemResponse,
)
from station.core.clock import Clock

__all__ = [
    "PREFIX",
    "SignedRequest",
    "build_provisioning_router",
    "install_provisioning",
    "open_provisioning",
    "provisioning_settings",
]

PREFIX = API_PREFIX

_signature_header = APIKeyHeader(
    name=HEADER_SIGNATURE,
    auto_error=False,
    scheme_name="StationSignature",
    description=(
        "Ed25519 signature by the station's identity key over method, path, counter, time and "
        f"the body's SHA-256; with {HEADER_KEY}, {HEADER_COUNTER} and {HEADER_TIME}."
    ),
)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request whose signature verified (not yet checked against the hub's state)."""

    public_key: bytes
    counter: int
    time: int
    digest: bytes


async def _signed(
    request: Request, _signature: Annotated[str | None, Security(_signature_header)] = None
) -> SignedRequest:
    body = await request.body()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    headers = {
        name: request.headers.get(name)
        for name in (HEADER_KEY, HEADER_COUNTER, HEADER_TIME, HEADER_SIGNATURE)
    }
    try:
        public_key, counter, time = verify_request(headers, request.method, target, body)
    except SignatureInvalid as exc:
        raise SignatureRejected(str(exc)) from None
    digest = hashlib.sha256(request_message(request.method, target, counter, time, body)).digest()
    return SignedRequest(public_key, counter, time, digest)


Signed = Annotated[SignedRequest, Depends(_signed)]


async def _station(request: Request, signed: Signed) -> StationRecord:
    service: ProvisioningService = request.app.state.provisioning
    record = await service.authenticate(
        signed.public_key, signed.counter, signed.time, signed.digest
    )
    assert record is not None
    return record


Station = Annotated[StationRecord, Depends(_station)]


def provisioning_settings(settings: HubSettings) -> ProvisioningSettings:
    """The provisioning knobs from the hub's settings."""
    return ProvisioningSettings(
        public_base_url=settings.public_base_url,
        enroll_code_ttl=getattr(settings, "enroll_code_ttl", timedelta(hours=24)),
        staff_code_ttl=getattr(settings, "staff_code_ttl", timedelta(minutes=30)),
        heartbeat_seconds=getattr(settings, "heartbeat_seconds", 60),
        releases_dir=settings.data_dir / "releases",
    )


def open_provisioning(
    settings: HubSettings,
    clock: Clock,
    *,
    db: Database | None = None,
    signer: ITSigningKey | None = None,
) -> ProvisioningService:
    """The provisioning service for ``settings`` (SQLite beside the room database unless a
    PostgreSQL ``database_url`` is set); call ``await service.start()`` before use.

    ``signer``: IT's signing key, given only by the admin CLI. Refused (loudly) when a signing
    key from before IT signing is still in the hub's data directory.
    """
    legacy = settings.data_dir / LEGACY_KEY_FILE
    if legacy.exists():
        raise ProvisioningHubError(
            f"{legacy} is a configuration signing key on the hub; the hub holds none any more. "
            "Move it to IT's own machine (stations already trust it) and give it to "
            "'kontaktstation admin --signing-key PATH'"
        )
    secret_path: Path = getattr(settings, "hub_secret_path", None) or (
        settings.data_dir / "hub.secret"
    )
    secret = HubSecret.load_or_create(secret_path)
    if db is None:
        url = getattr(settings, "database_url", None)
        if url is not None:
            from hub.pg import PostgresDatabase

            db = PostgresDatabase(url.get_secret_value())
        else:
            db = SqliteDatabase(settings.data_dir / "provisioning.sqlite3")
    return ProvisioningService(db, secret, clock, provisioning_settings(settings), signer=signer)


def build_provisioning_router(service: ProvisioningService) -> APIRouter:
    """The station-facing provisioning routes."""
    router = APIRouter(prefix=PREFIX, tags=["provisioning"])

    @router.post("/enroll", summary="First contact, and polling until IT approves the station")
    async def enroll(
        signed: Signed,
        body: EnrollRequest,
        renew_code: Annotated[bool, Query(description="The station lost its code")] = False,
    ) -> EnrollResponse:
        record = await service.authenticate(
            signed.public_key, signed.counter, signed.time, signed.digest, enrolling=True
        )
        return await service.enroll(
            signed.public_key, signed.counter, signed.digest, record, body, renew_code=renew_code
        )

    @router.get(
        "/config",
        summary="The station's current signed configuration (404: none published yet)",
    )
    async def config(record: Station) -> SignedEnvelope:
        envelope = await service.current_config(record)
        if envelope is None:
            raise NoConfiguration()
        return envelope

    @router.post(
        "/heartbeat",
        summary="Report health and versions; get commands",
        # The audit fields only for stations that anchor (older ones refuse unknown fields).
        response_model_exclude_none=True,
    )
    async def heartbeat(record: Station, body: Heartbeat) -> HeartbeatResponse:
        return await service.heartbeat(record, body)

    @router.post(
        "/commands/{command_id}/ack",
        status_code=204,
        summary="Report the outcome of one command (idempotent)",
    )
    async def ack(
        record: Station,
        command_id: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")],
        body: CommandAck,
    ) -> Response:
        await service.ack_command(record, command_id, body)
        return Response(status_code=204)

    @router.get(
        "/releases/{sha256}",
        summary="A release archive IT added, by the SHA-256 the station's configuration names",
        response_class=FileResponse,
        responses={404: {"description": "No such release on this hub"}},
    )
    async def release(
        _record: Station,
        sha256: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")],
    ) -> FileResponse:
        directory = service.settings.releases_dir
        path = None if directory is None else ReleaseShelf(directory).path(sha256)
        if path is None:
            raise NoRelease()
        return FileResponse(path, media_type="application/x-tar")

    @router.post("/staff/redeem", summary="Trade a one-time staff code for a staff id")
    async def redeem(record: Station, body: StaffRedeemRequest) -> StaffRedeemResponse:
        return await service.redeem_staff_code(record, body.code)

    return router


def install_provisioning(app: FastAPI, service: ProvisioningService) -> Any:
    """Include the router in ``app`` and keep the service on ``app.state``."""
    app.include_router(build_provisioning_router(service))
    app.state.provisioning = service
    return service
