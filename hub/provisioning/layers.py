"""What the hub's two provisioning front ends share: the database, the hub's secret, the clock,
IT's signing key (admin only), and the configuration layering.

Configuration is layered: municipality defaults, then the care home, then the station, then
the station's enrolled staff (pseudonymous ids) from ``prov_staff``. Every change that alters
a station's merged configuration publishes a new signed version for it (:meth:`_publish`); a
rollback publishes an older content under its old version number with ``rollback_of`` set to
the current one. Admin actions (and a station's redeemed staff code) are recorded in
``prov_admin_audit`` (:meth:`_audit`).

Only the admin signs (:mod:`hub.provisioning.keys`): the hub's web process has no signing key
and publishes nothing. Each stored layer carries IT's signature (a ``layer`` envelope), and a
configuration is merged only from layers that verify against IT's keys, so whoever changes the
hub's database cannot get IT to sign the change onwards the next time IT publishes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from hub.db import Database, Tx, ts
from hub.provisioning.errors import (
    AdminInputInvalid,
    LayerNotSigned,
    SigningKeyRequired,
)
from hub.provisioning.keys import HubSecret, ITSigningKey
from hub.provisioning.store import (
    STATION_COLUMNS,
    StationRecord,
    ensure_schema,
    station_from_row,
)
from provisioning.errors import SignatureInvalid
from provisioning.protocol import (
    SignedEnvelope,
    b64decode,
    canonical_json,
    open_envelope,
    seal_envelope,
)
from provisioning.schema import (
    ConfigPayload,
    EnrollStatus,
    StationConfig,
)
from station.core.clock import Clock

__all__ = ["LAYER_SCOPES", "MUNICIPALITY_ID", "ProvisioningCore", "ProvisioningSettings"]

_log = logging.getLogger(__name__)

LAYER_SCOPES: Final = ("municipality", "care_home", "station")
#: The one municipality layer's id.
MUNICIPALITY_ID: Final = "default"
#: Stations a configuration is signed for: approved, and pre-authorised ones (their first
#: configuration is waiting when they first call, with no signature needed from the hub).
_PUBLISHABLE: Final = (EnrollStatus.APPROVED.value, "preauthorised")


@dataclass(frozen=True)
class ProvisioningSettings:
    """The knobs of provisioning (from :class:`hub.settings.HubSettings`)."""

    public_base_url: str = "http://127.0.0.1:8470"
    enroll_code_ttl: timedelta = timedelta(hours=24)
    staff_code_ttl: timedelta = timedelta(minutes=30)
    max_clock_skew: timedelta = timedelta(minutes=10)
    heartbeat_seconds: int = 60
    enroll_poll_seconds: int = 10
    #: A station counts as offline this long after its last heartbeat.
    offline_after: timedelta = timedelta(minutes=3)
    #: Where IT's station releases are kept (``hub/provisioning/releases.py``); None: none.
    releases_dir: Path | None = None


def _deep_merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _validation_summary(exc: ValidationError) -> str:
    # Locations and messages only: never the value (it may be a TURN credential).
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'config'}: {e.get('msg')}"
        for e in exc.errors(include_url=False, include_input=False)[:5]
    ]
    return "; ".join(parts)


def _named_keys(envelope_json: str) -> set[str]:
    """The trusted keys a stored configuration names (none if it cannot be read)."""
    try:
        envelope = SignedEnvelope.model_validate_json(envelope_json)
        raw = json.loads(b64decode(envelope.payload))
        return {str(key) for key in raw.get("trusted_config_keys", [])}
    except (ValidationError, ValueError, TypeError, AttributeError):
        return set()


class ProvisioningCore:
    """The state and the configuration rules the station and admin sides share."""

    def __init__(
        self,
        db: Database,
        secret: HubSecret,
        clock: Clock,
        settings: ProvisioningSettings | None = None,
        *,
        signer: ITSigningKey | None = None,
    ) -> None:
        self.db = db
        self.secret = secret
        #: IT's signing key: only in the admin's process, never in the hub's.
        self.signer = signer
        self.clock = clock
        self.settings = settings or ProvisioningSettings()

    def require_signer(self) -> ITSigningKey:
        """IT's signing key; SigningKeyRequired if this process has none (the hub never has)."""
        if self.signer is None:
            raise SigningKeyRequired()
        return self.signer

    def sign_layer(self, scope: str, scope_id: str, data: dict[str, Any]) -> str:
        """The stored form of a layer: IT's ``layer`` envelope over scope, id and data."""
        envelope = seal_envelope(
            self.require_signer().private_key,
            "layer",
            {"scope": scope, "scope_id": scope_id, "data": data},
        )
        return envelope.model_dump_json()

    async def start(self) -> None:
        """Create the tables if needed."""
        await ensure_schema(self.db)

    async def close(self) -> None:
        """Release the database."""
        await self.db.close()

    def _station_row(self, tx: Tx, station_id: str) -> StationRecord | None:
        row = tx.one(
            f"SELECT {STATION_COLUMNS} FROM prov_stations WHERE station_id = ?",  # noqa: S608
            (station_id,),
        )
        return None if row is None else station_from_row(row)

    def _layer(self, tx: Tx, scope: str, scope_id: str | None) -> dict[str, Any]:
        if scope_id is None:
            return {}
        row = tx.one(
            "SELECT data_json FROM prov_layers WHERE scope = ? AND scope_id = ?", (scope, scope_id)
        )
        if row is None:
            return {}
        where = f"{scope}:{scope_id}"
        try:
            envelope = SignedEnvelope.model_validate_json(row[0])
        except ValidationError:
            raise LayerNotSigned(f"configuration layer {where} is not signed by IT") from None
        trusted = [] if self.signer is None else self.signer.trusted
        try:
            if self.signer is None:
                # Shown to someone without the key (``config show``), never signed onwards.
                payload = json.loads(b64decode(envelope.payload))
            else:
                payload = open_envelope(envelope, "layer", trusted)
        except (SignatureInvalid, ValueError):
            raise LayerNotSigned(
                f"configuration layer {where} does not verify against IT's keys"
            ) from None
        if payload.get("scope") != scope or payload.get("scope_id") != scope_id:
            raise LayerNotSigned(f"configuration layer {where} was signed for another scope")
        value = payload.get("data")
        return value if isinstance(value, dict) else {}

    def _effective(self, tx: Tx, station: StationRecord) -> StationConfig:
        """The merged configuration of one station; AdminInputInvalid if it does not validate."""
        if station.care_home_id is None:
            raise AdminInputInvalid(f"station {station.station_id} has no care home")
        merged: dict[str, Any] = {}
        for scope, scope_id in (
            ("municipality", MUNICIPALITY_ID),
            ("care_home", station.care_home_id),
            ("station", station.station_id),
        ):
            merged = _deep_merge(merged, self._layer(tx, scope, scope_id))
        care_home = merged.get("care_home") if isinstance(merged.get("care_home"), dict) else {}
        merged["care_home"] = {
            "id": station.care_home_id,
            "name": (care_home or {}).get("name", station.care_home_id),
        }
        merged.setdefault("station_name", station.name or station.station_id)
        # Issued and not revoked (redeemed or not): signed when IT issues the code, so the
        # hub need not sign anything when the station redeems it.
        rows = tx.all(
            "SELECT staff_id, rights_json FROM prov_staff WHERE station_id = ? "
            "AND revoked_at IS NULL ORDER BY staff_id",
            (station.station_id,),
        )
        merged["staff"] = [{"staff_id": r[0], "rights": json.loads(r[1])} for r in rows]
        try:
            return StationConfig.model_validate(merged)
        except ValidationError as exc:
            raise AdminInputInvalid(
                f"configuration of station {station.station_id} is invalid: "
                f"{_validation_summary(exc)}"
            ) from None

    def _publish(
        self,
        tx: Tx,
        station_id: str,
        *,
        quiet: bool = False,
        config: StationConfig | None = None,
        version: int | None = None,
        rollback_of: int | None = None,
    ) -> int | None:
        """Sign and store a new version if the merged configuration changed; its version.

        ``quiet``: a station not ready for a configuration (no care home, invalid layers) is
        skipped instead of failing the transaction (used on enrollment and staff changes).
        """
        signer = self.require_signer()
        station = self._station_row(tx, station_id)
        if station is None or station.status not in _PUBLISHABLE:
            return None
        try:
            effective = config if config is not None else self._effective(tx, station)
        except AdminInputInvalid:
            if quiet:
                _log.warning("station %s: no valid configuration to publish", station_id)
                return None
            raise
        body = effective.model_dump(mode="json")
        content_hash = hashlib.sha256(canonical_json(body)).hexdigest()
        latest = tx.one(
            "SELECT content_hash, envelope_json FROM prov_configs WHERE station_id = ? "
            "ORDER BY revision DESC LIMIT 1",
            (station_id,),
        )
        if (
            rollback_of is None
            and latest is not None
            and latest[0] == content_hash
            and _named_keys(latest[1]) == set(signer.trusted_b64())
        ):
            return None  # nothing changed for this station (IT's keys included: a rotation)
        row = tx.one("SELECT max_version FROM prov_stations WHERE station_id = ?", (station_id,))
        revision = (0 if row is None else int(row[0])) + 1
        payload = ConfigPayload(
            station_id=station_id,
            version=version if version is not None else revision,
            issued_at=self.clock.now(),
            rollback_of=rollback_of,
            trusted_config_keys=signer.trusted_b64(),
            config=effective,
        )
        envelope = seal_envelope(signer.private_key, "config", payload.model_dump(mode="json"))
        tx.execute(
            "INSERT INTO prov_configs (station_id, revision, version, envelope_json, "
            "content_hash, rollback_of, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                station_id,
                revision,
                payload.version,
                envelope.model_dump_json(),
                content_hash,
                rollback_of,
                ts(self.clock.now()),
            ),
        )
        tx.execute(
            "UPDATE prov_stations SET max_version = ?, published_version = ? WHERE station_id = ?",
            (revision, payload.version, station_id),
        )
        return payload.version

    def _audit(
        self, tx: Tx, actor: str, action: str, target: str | None, detail: str | None
    ) -> None:
        tx.execute(
            "INSERT INTO prov_admin_audit (at, actor, action, target, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (ts(self.clock.now()), actor, action, target, detail),
        )
