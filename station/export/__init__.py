"""The documentation hand-off to the care record (EOJ): FHIR R4, an outbox, a summary.

The staff UI (which holds the plaintext) builds an :class:`ExportPayload` from the wrap-up
note, seals it to the outbox's public key with :func:`seal_export` and hands the box to
stationd (``POST /v1/exports``); with no endpoint configured it shows
:func:`plain_text_summary` for staff to copy. stationd keeps the box in the
:class:`Outbox` (``outbox.db``) and its :class:`DeliveryWorker` delivers it as a FHIR
transaction Bundle (:func:`build_bundle`) with OAuth2 client credentials, retrying with
back-off until the EOJ confirms it. See the modules for the details.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from station.export.config import CareHome, ExportConfig, load_export_config
    from station.export.delivery import DeliveryReport, DeliveryWorker, FhirClient
    from station.export.errors import (
        DeliveryFailed,
        ExportConfigError,
        ExportError,
        ExportKeyError,
        ExportNotConfigured,
        ExportPayloadInvalid,
        OutboxCorrupt,
        OutboxError,
    )
    from station.export.fhir import build_bundle, stable_uuid, validate_bundle
    from station.export.keys import OutboxKey
    from station.export.outbox import Outbox, OutboxEntry, OutboxState, backoff_delay
    from station.export.payload import (
        ExportPatient,
        ExportPayload,
        export_context,
        open_export,
        seal_export,
    )
    from station.export.service import ExportService
    from station.export.summary import plain_text_summary

#: Where each public name lives; imported on first use (PEP 562), so that importing a light
#: submodule (``station.export.payload`` in the staff UI) does not pull in the rest.
_LAZY: dict[str, str] = {
    "CareHome": "station.export.config",
    "DeliveryFailed": "station.export.errors",
    "DeliveryReport": "station.export.delivery",
    "DeliveryWorker": "station.export.delivery",
    "ExportConfig": "station.export.config",
    "ExportConfigError": "station.export.errors",
    "ExportError": "station.export.errors",
    "ExportKeyError": "station.export.errors",
    "ExportNotConfigured": "station.export.errors",
    "ExportPatient": "station.export.payload",
    "ExportPayload": "station.export.payload",
    "ExportPayloadInvalid": "station.export.errors",
    "ExportService": "station.export.service",
    "FhirClient": "station.export.delivery",
    "Outbox": "station.export.outbox",
    "OutboxCorrupt": "station.export.errors",
    "OutboxEntry": "station.export.outbox",
    "OutboxError": "station.export.errors",
    "OutboxKey": "station.export.keys",
    "OutboxState": "station.export.outbox",
    "backoff_delay": "station.export.outbox",
    "build_bundle": "station.export.fhir",
    "export_context": "station.export.payload",
    "load_export_config": "station.export.config",
    "open_export": "station.export.payload",
    "plain_text_summary": "station.export.summary",
    "seal_export": "station.export.payload",
    "stable_uuid": "station.export.fhir",
    "validate_bundle": "station.export.fhir",
}


__all__ = [
    "CareHome",
    "DeliveryFailed",
    "DeliveryReport",
    "DeliveryWorker",
    "ExportConfig",
    "ExportConfigError",
    "ExportError",
    "ExportKeyError",
    "ExportNotConfigured",
    "ExportPatient",
    "ExportPayload",
    "ExportPayloadInvalid",
    "ExportService",
    "FhirClient",
    "Outbox",
    "OutboxCorrupt",
    "OutboxEntry",
    "OutboxError",
    "OutboxKey",
    "OutboxState",
    "backoff_delay",
    "build_bundle",
    "export_context",
    "load_export_config",
    "open_export",
    "plain_text_summary",
    "seal_export",
    "stable_uuid",
    "validate_bundle",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'station.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
