"""The export endpoints' request and response bodies on stationd's local API (pydantic).

Shared by the daemon (``station.daemon.export_routes``) and its client
(``stationapi.client.StationClient``). Light on purpose (no vault, no store, no httpx,
no fhir.resources): the UIs' client imports it. Only clear metadata and the *sealed* export
(base64) cross the socket: stationd never sees the note in clear.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
)

from station.core.ids import is_opaque_id
from station.export.limits import MAX_SEALED_EXPORT_BYTES

__all__ = [
    "ExportCreate",
    "ExportOut",
    "ExportSettingsOut",
    "SealedExport",
]


def _opaque(value: str) -> str:
    if not is_opaque_id(value):
        raise ValueError("must be an opaque id (never a CPR number)")
    return value


def _b64(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError("must be a base64 string")
    if len(value) > (MAX_SEALED_EXPORT_BYTES * 4) // 3 + 4:
        raise ValueError(f"sealed export is larger than {MAX_SEALED_EXPORT_BYTES} bytes")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be standard base64 with padding") from None
    if not decoded:
        raise ValueError("a sealed export cannot be empty")
    return decoded


def _b64_text(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


_Id = Annotated[str, AfterValidator(_opaque)]

#: A sealed export: bytes in Python, standard base64 in JSON.
SealedExport = Annotated[
    bytes,
    BeforeValidator(_b64),
    PlainSerializer(
        lambda v: base64.b64encode(v).decode("ascii"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


class ExportSettingsOut(BaseModel):
    """``GET /v1/exports/settings``: how the wrap-up screen documents, and the key to seal to.

    ``delivery`` is ``fhir`` (seal and ``POST /v1/exports``), ``summary`` (no endpoint: show
    the plain-text summary to copy) or ``unavailable`` (the outbox is broken: show the
    summary and call IT).
    """

    model_config = ConfigDict(frozen=True)

    delivery: Literal["fhir", "summary", "unavailable"]
    outbox_public_key: SealedExport | None


class ExportCreate(BaseModel):
    """``POST /v1/exports``: one sealed export (see ``station.export.seal_export``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    export_id: _Id
    consultation_id: _Id
    entry_id: _Id | None = None
    sealed: SealedExport


class ExportOut(BaseModel):
    """One export as the wrap-up screen shows its progress (no content)."""

    model_config = ConfigDict(frozen=True)

    export_id: str
    consultation_id: str
    entry_id: str | None
    state: Literal["pending", "delivered"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    #: ``delivered`` or a ``failed_*`` code (``failed_connect``, ``failed_timeout``, ...).
    last_outcome: str | None
    delivered_at: datetime | None
