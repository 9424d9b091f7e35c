"""The hub's provisioning rules: enrollment, signed configuration, heartbeats, commands, staff.

Used by two front ends: the station API (:mod:`hub.provisioning.api`, signed requests) and the
admin CLI (:mod:`hub.admin`, run by IT on the hub's host with access to its database and key).
Every admin action is recorded in ``prov_admin_audit``.

Request authentication (:meth:`ProvisioningService.authenticate`) is a compare-and-set on the
station's last counter in one transaction: a counter above the last one is accepted; the very
same request again is a replay (409); a *different* validly signed request at or below the
last counter means the identity is used by two devices (or traffic was captured and replayed)
and the station is flagged ``clone_suspected`` and refused until IT acts.

Configuration is layered: municipality defaults, then the care home, then the station, then
the station's enrolled staff (pseudonymous ids) from ``prov_staff``. Every change that alters
a station's merged configuration publishes a new signed version for it; a rollback publishes
an older content under its old version number with ``rollback_of`` set to the current one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from pydantic import ValidationError

from hub.db import Database, Row, Tx, dt, ts
from hub.provisioning.errors import (
    AdminInputInvalid,
    ClockSkew,
    CloneSuspected,
    CodeAlreadyUsed,
    CodeExpired,
    CodeUnknown,
    CommandUnknown,
    RequestReplayed,
    StationDecommissioned,
    StationNotApproved,
    StationUnknown,
    TooManyAttempts,
)
from hub.provisioning.keys import HubSigningKey
from hub.provisioning.store import (
    STATION_COLUMNS,
    CommandRecord,
    StaffRecord,
    StationRecord,
    ensure_schema,
    station_from_row,
)
from provisioning.protocol import (
    SignedEnvelope,
    b64decode,
    canonical_json,
    seal_envelope,
    station_id_for,
)
from provisioning.schema import (
    CommandAck,
    CommandKind,
    CommandPayload,
    ConfigPayload,
    EnrollRequest,
    EnrollResponse,
    EnrollStatus,
    Heartbeat,
    HeartbeatResponse,
    StaffRedeemResponse,
    StaffRight,
    StationConfig,
)
from station.core.clock import Clock
from station.core.ids import is_opaque_id, new_id

__all__ = [
    "CODE_ALPHABET",
    "LAYER_SCOPES",
    "AdminAuditEntry",
    "ProvisioningService",
    "ProvisioningSettings",
    "format_code",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Codes people type: no 0/O, 1/I/L, U (30 symbols; 8 of them are about 39 bits).
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
LAYER_SCOPES: Final = ("municipality", "care_home", "station")
_MUNICIPALITY_ID: Final = "default"
_CODE_FAILURE_LIMIT: Final = 10
_CODE_FAILURE_WINDOW: Final = timedelta(minutes=15)
_LIVE_COMMAND_STATES: Final = ("pending", "deferred")
# An approved station with a fresh counter, checked and recorded in one statement.
_FAST_AUTH: Final = (
    "UPDATE prov_stations SET last_counter = ?, last_digest = ?, last_seen_at = ? "  # noqa: S608
    "WHERE station_id = ? AND public_key = ? AND status = 'approved' "
    f"AND clone_suspected = 0 AND last_counter < ? RETURNING {STATION_COLUMNS}"
)


def format_code(length: int = 8) -> str:
    """A fresh one-time code, ``XXXX-XXXX``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(raw[i : i + 4] for i in range(0, length, 4))


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


@dataclass(frozen=True, slots=True)
class AdminAuditEntry:
    """One recorded admin action."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None


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


_COMMAND_COLUMNS: Final = (
    "command_id, station_id, kind, staff_id, envelope_json, created_at, state, outcome, detail, "
    "acked_at"
)
_STAFF_COLUMNS: Final = (
    "staff_id, station_id, display_name, rights_json, code_expires_at, created_at, redeemed_at, "
    "revoked_at"
)


def _command(row: Row) -> CommandRecord:
    created = dt(row[5])
    assert created is not None
    return CommandRecord(
        command_id=row[0],
        station_id=row[1],
        kind=row[2],
        staff_id=row[3],
        envelope_json=row[4],
        created_at=created,
        state=row[6],
        outcome=row[7],
        detail=row[8],
        acked_at=dt(row[9]),
    )


def _staff(row: Row) -> StaffRecord:
    expires, created = dt(row[4]), dt(row[5])
    assert expires is not None and created is not None
    return StaffRecord(
        staff_id=row[0],
        station_id=row[1],
        display_name=row[2],
        rights=tuple(json.loads(row[3])),
        code_expires_at=expires,
        created_at=created,
        redeemed_at=dt(row[6]),
        revoked_at=dt(row[7]),
    )


class ProvisioningService:
    """Provisioning on one :class:`~hub.db.Database`; see the module docs."""

    def __init__(
        self,
        db: Database,
        key: HubSigningKey,
        clock: Clock,
        settings: ProvisioningSettings | None = None,
    ) -> None:
        self.db = db
        self.key = key
        self.clock = clock
        self.settings = settings or ProvisioningSettings()

    async def start(self) -> None:
        """Create the tables if needed."""
        await ensure_schema(self.db)

    async def close(self) -> None:
        """Release the database."""
        await self.db.close()

    # ================================================================== station requests

    async def authenticate(
        self, public_key: bytes, counter: int, time: int, digest: bytes, *, enrolling: bool = False
    ) -> StationRecord | None:
        """Check a signed request's key, counter and time; the station (None: new, enrolling).

        Raises :class:`ClockSkew`, :class:`StationUnknown`, :class:`StationNotApproved`,
        :class:`StationDecommissioned`, :class:`RequestReplayed` or :class:`CloneSuspected`.
        """
        now = self.clock.now()
        if abs(now.timestamp() - time) > self.settings.max_clock_skew.total_seconds():
            raise ClockSkew()
        station_id = station_id_for(public_key)

        def work(tx: Tx) -> tuple[str, StationRecord | None]:
            # The common case in one statement: an approved station, a fresh counter.
            fast = tx.one(_FAST_AUTH, (counter, digest, ts(now), station_id, public_key, counter))
            if fast is not None:
                return ("ok", station_from_row(fast))
            row = tx.one(
                "SELECT public_key, status, last_counter, last_digest, clone_suspected "
                "FROM prov_stations WHERE station_id = ?",
                (station_id,),
            )
            if row is None:
                return ("new", None)
            stored_key, status, last_counter, last_digest, clone = row
            if stored_key is not None and bytes(stored_key) != public_key:
                return ("unknown", None)
            if clone:
                return ("clone", None)
            if status == EnrollStatus.DECOMMISSIONED.value:
                return ("decommissioned", None)
            if status != "preauthorised" and counter <= int(last_counter):
                same = last_digest is not None and bytes(last_digest) == digest
                if counter == int(last_counter) and same:
                    return ("replay", None)
                tx.execute(
                    "UPDATE prov_stations SET clone_suspected = 1 WHERE station_id = ?",
                    (station_id,),
                )
                return ("clone", None)
            tx.execute(
                "UPDATE prov_stations SET last_counter = ?, last_digest = ?, last_seen_at = ? "
                "WHERE station_id = ?",
                (counter, digest, ts(now), station_id),
            )
            fresh = tx.one(
                f"SELECT {STATION_COLUMNS} FROM prov_stations WHERE station_id = ?",  # noqa: S608
                (station_id,),
            )
            assert fresh is not None
            return ("ok", station_from_row(fresh))

        verdict, record = await self.db.run(work)
        if verdict == "new":
            if enrolling:
                return None
            raise StationUnknown()
        errors: dict[str, Callable[[], Exception]] = {
            "unknown": StationUnknown,
            "clone": CloneSuspected,
            "decommissioned": StationDecommissioned,
            "replay": RequestReplayed,
        }
        if verdict in errors:
            if verdict == "clone":
                _log.warning("station %s: counter reuse, flagged as a suspected clone", station_id)
            raise errors[verdict]()
        assert record is not None
        if not enrolling and record.status != EnrollStatus.APPROVED.value:
            raise StationNotApproved()
        return record

    async def enroll(
        self,
        public_key: bytes,
        counter: int,
        digest: bytes,
        record: StationRecord | None,
        request: EnrollRequest,
        *,
        renew_code: bool = False,
    ) -> EnrollResponse:
        """First contact and every poll until approved.

        A pre-authorised key is approved at once (and gets its configuration); an unknown key
        becomes a pending station with a fresh one-time code for the lock screen.
        """
        now = self.clock.now()
        station_id = station_id_for(public_key)
        code: str | None = None

        def work(tx: Tx) -> tuple[str, datetime | None]:
            nonlocal code
            row = tx.one(
                "SELECT status, enroll_code_expires_at FROM prov_stations WHERE station_id = ?",
                (station_id,),
            )
            if row is None:
                code = format_code()
                expires = now + self.settings.enroll_code_ttl
                inserted = tx.execute(
                    "INSERT INTO prov_stations (station_id, public_key, status, created_at, "
                    "last_counter, last_digest, last_seen_at, enroll_code_hash, "
                    "enroll_code_expires_at, software_version) VALUES (?, ?, 'pending', ?, ?, "
                    "?, ?, ?, ?, ?) ON CONFLICT (station_id) DO NOTHING",
                    (
                        station_id,
                        public_key,
                        ts(now),
                        counter,
                        digest,
                        ts(now),
                        self.key.code_hash("station", code),
                        ts(expires),
                        request.software_version,
                    ),
                )
                if inserted == 0:
                    raise RequestReplayed("concurrent first contact; try again")
                return ("pending", expires)
            status, expires_text = row
            if status == "preauthorised":
                tx.execute(
                    "UPDATE prov_stations SET public_key = ?, status = 'approved', "
                    "approved_at = ?, last_counter = ?, last_digest = ?, last_seen_at = ?, "
                    "software_version = ? WHERE station_id = ?",
                    (
                        public_key,
                        ts(now),
                        counter,
                        digest,
                        ts(now),
                        request.software_version,
                        station_id,
                    ),
                )
                self._audit(tx, "station", "enrolled_preauthorised", station_id, None)
                self._publish(tx, station_id, quiet=True)
                return ("approved", None)
            if status == "pending":
                stored_expiry = dt(expires_text)
                if stored_expiry is not None and not renew_code and stored_expiry > now:
                    return ("pending", stored_expiry)
                code = format_code()
                new_expiry = now + self.settings.enroll_code_ttl
                tx.execute(
                    "UPDATE prov_stations SET enroll_code_hash = ?, "
                    "enroll_code_expires_at = ? WHERE station_id = ?",
                    (self.key.code_hash("station", code), ts(new_expiry), station_id),
                )
                return ("pending", new_expiry)
            return (status, None)

        status, expires = await self.db.run(work)
        if status == EnrollStatus.APPROVED.value:
            return EnrollResponse(
                station_id=station_id,
                status=EnrollStatus.APPROVED,
                poll_seconds=self.settings.heartbeat_seconds,
                config_keys=self.key.trusted_b64(),
            )
        approve_url = None
        if code is not None:
            approve_url = f"{self.settings.public_base_url}/enroll#{code}"
        return EnrollResponse(
            station_id=station_id,
            status=EnrollStatus(status),
            code=code,
            code_expires_at=expires,
            approve_url=approve_url,
            poll_seconds=self.settings.enroll_poll_seconds,
        )

    async def current_config(self, station: StationRecord) -> SignedEnvelope | None:
        """The station's current signed configuration, if one was published."""
        row = await self.db.run(
            lambda tx: tx.one(
                "SELECT envelope_json FROM prov_configs WHERE station_id = ? "
                "ORDER BY revision DESC LIMIT 1",
                (station.station_id,),
            )
        )
        return None if row is None else SignedEnvelope.model_validate_json(row[0])

    async def heartbeat(self, station: StationRecord, beat: Heartbeat) -> HeartbeatResponse:
        """Record a heartbeat; answer with the version to run and the commands waiting."""
        now = self.clock.now()
        station_id = station.station_id
        beat_json = beat.model_dump_json()

        def work(tx: Tx) -> tuple[int, list[str]]:
            alarm = 0
            head, seen = beat.audit_head, station.audit_seq
            # The head may only move forward: a shorter or rewritten chain is an alarm.
            if (
                head is not None
                and seen is not None
                and (head.seq < seen or (head.seq == seen and head.hash != station.audit_hash))
            ):
                alarm = 1
            row = tx.one(
                "UPDATE prov_stations SET heartbeat_json = ?, last_seen_at = ?, "
                "software_version = ?, config_version = ?, config_rejected = ?, "
                "offline_at = ?, audit_seq = COALESCE(?, audit_seq), "
                "audit_hash = COALESCE(?, audit_hash), "
                "audit_alarm = CASE WHEN ? = 1 THEN 1 ELSE audit_alarm END, "
                "first_config_at = CASE WHEN first_config_at IS NULL AND ? > 0 THEN ? "
                "ELSE first_config_at END WHERE station_id = ? RETURNING published_version",
                (
                    beat_json,
                    ts(now),
                    beat.software_version,
                    beat.config_version,
                    beat.config_rejected,
                    ts(now) if beat.going_offline else None,
                    None if beat.audit_head is None else beat.audit_head.seq,
                    None if beat.audit_head is None else beat.audit_head.hash,
                    alarm,
                    beat.config_version,
                    ts(now),
                    station_id,
                ),
            )
            commands = tx.all(
                "SELECT envelope_json FROM prov_commands WHERE station_id = ? "
                "AND state IN ('pending', 'deferred') ORDER BY created_at, command_id",
                (station_id,),
            )
            return (0 if row is None else int(row[0]), [c[0] for c in commands])

        version, commands = await self.db.run(work)
        return HeartbeatResponse(
            config_version=version,
            commands=tuple(SignedEnvelope.model_validate_json(c) for c in commands[:32]),
            next_in_seconds=self.settings.heartbeat_seconds,
            server_time=now,
        )

    async def ack_command(self, station: StationRecord, command_id: str, ack: CommandAck) -> None:
        """The station's outcome for a command (idempotent: a repeated ack changes nothing)."""
        now = self.clock.now()
        state = "deferred" if ack.outcome == "deferred" else "done"

        def work(tx: Tx) -> bool:
            row = tx.one(
                "SELECT state, kind FROM prov_commands WHERE command_id = ? AND station_id = ?",
                (command_id, station.station_id),
            )
            if row is None:
                return False
            if row[0] in _LIVE_COMMAND_STATES:
                tx.execute(
                    "UPDATE prov_commands SET state = ?, outcome = ?, detail = ?, acked_at = ? "
                    "WHERE command_id = ?",
                    (state, ack.outcome, ack.detail or None, ts(now), command_id),
                )
                if row[1] == CommandKind.DECOMMISSION.value and ack.outcome == "done":
                    tx.execute(
                        "UPDATE prov_stations SET status = 'decommissioned', offline_at = ? "
                        "WHERE station_id = ?",
                        (ts(now), station.station_id),
                    )
            return True

        if not await self.db.run(work):
            raise CommandUnknown()

    async def redeem_staff_code(self, station: StationRecord, code: str) -> StaffRedeemResponse:
        """Trade a one-time staff code for a pseudonymous staff id (the code dies here)."""
        now = self.clock.now()
        code_hash = self.key.code_hash("staff", code)

        def work(tx: Tx) -> tuple[str, StaffRecord | None]:
            failures, since = tx.one(
                "SELECT code_failures, code_failures_since FROM prov_stations WHERE station_id = ?",
                (station.station_id,),
            ) or (0, None)
            since_dt = dt(since)
            if since_dt is None or now - since_dt > _CODE_FAILURE_WINDOW:
                failures, since_dt = 0, now
            if failures >= _CODE_FAILURE_LIMIT:
                return ("throttled", None)
            row = tx.one(
                f"SELECT {_STAFF_COLUMNS} FROM prov_staff WHERE code_hash = ?",  # noqa: S608
                (code_hash,),
            )
            record = None if row is None else _staff(row)
            verdict = "ok"
            if (
                record is None
                or record.station_id != station.station_id
                or record.revoked_at is not None
            ):
                verdict = "unknown"
            elif record.redeemed_at is not None:
                verdict = "used"
            elif record.code_expires_at <= now:
                verdict = "expired"
            if verdict != "ok":
                tx.execute(
                    "UPDATE prov_stations SET code_failures = ?, code_failures_since = ? "
                    "WHERE station_id = ?",
                    (failures + 1, ts(since_dt), station.station_id),
                )
                return (verdict, None)
            assert record is not None
            tx.execute(
                "UPDATE prov_staff SET redeemed_at = ? WHERE staff_id = ?",
                (ts(now), record.staff_id),
            )
            self._publish(tx, station.station_id, quiet=True)
            return ("ok", record)

        verdict, record = await self.db.run(work)
        errors: dict[str, Callable[[], Exception]] = {
            "throttled": TooManyAttempts,
            "unknown": CodeUnknown,
            "used": CodeAlreadyUsed,
            "expired": CodeExpired,
        }
        if verdict in errors:
            raise errors[verdict]()
        assert record is not None
        return StaffRedeemResponse(
            staff_id=record.staff_id, rights=tuple(StaffRight(r) for r in record.rights)
        )

    # ================================================================== configuration

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
        value = {} if row is None else json.loads(row[0])
        return value if isinstance(value, dict) else {}

    def _effective(self, tx: Tx, station: StationRecord) -> StationConfig:
        """The merged configuration of one station; AdminInputInvalid if it does not validate."""
        if station.care_home_id is None:
            raise AdminInputInvalid(f"station {station.station_id} has no care home")
        merged: dict[str, Any] = {}
        for scope, scope_id in (
            ("municipality", _MUNICIPALITY_ID),
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
        rows = tx.all(
            "SELECT staff_id, rights_json FROM prov_staff WHERE station_id = ? "
            "AND redeemed_at IS NOT NULL AND revoked_at IS NULL ORDER BY staff_id",
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
        station = self._station_row(tx, station_id)
        if station is None or station.status != EnrollStatus.APPROVED.value:
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
            "SELECT content_hash, version FROM prov_configs WHERE station_id = ? "
            "ORDER BY revision DESC LIMIT 1",
            (station_id,),
        )
        if rollback_of is None and latest is not None and latest[0] == content_hash:
            return None  # nothing changed for this station
        row = tx.one("SELECT max_version FROM prov_stations WHERE station_id = ?", (station_id,))
        revision = (0 if row is None else int(row[0])) + 1
        payload = ConfigPayload(
            station_id=station_id,
            version=version if version is not None else revision,
            issued_at=self.clock.now(),
            rollback_of=rollback_of,
            trusted_config_keys=self.key.trusted_b64(),
            config=effective,
        )
        envelope = seal_envelope(self.key.private_key, "config", payload.model_dump(mode="json"))
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

    # ================================================================== admin

    def _audit(
        self, tx: Tx, actor: str, action: str, target: str | None, detail: str | None
    ) -> None:
        tx.execute(
            "INSERT INTO prov_admin_audit (at, actor, action, target, detail) "
            "VALUES (?, ?, ?, ?, ?)",
            (ts(self.clock.now()), actor, action, target, detail),
        )

    async def _admin(self, work: Callable[[Tx], _T]) -> _T:
        return await self.db.run(work)

    async def list_stations(self) -> list[StationRecord]:
        """Every station, newest first."""
        rows = await self.db.run(
            lambda tx: tx.all(
                f"SELECT {STATION_COLUMNS} FROM prov_stations "  # noqa: S608
                "ORDER BY care_home_id, name, station_id"
            )
        )
        return [station_from_row(r) for r in rows]

    async def get_station(self, station_id: str) -> StationRecord:
        """One station; AdminInputInvalid if unknown."""
        record = await self.db.run(lambda tx: self._station_row(tx, station_id))
        if record is None:
            raise AdminInputInvalid(f"no station {station_id}")
        return record

    def is_online(self, station: StationRecord) -> bool:
        """Seen within ``offline_after`` and not gone offline since."""
        if station.last_seen_at is None or station.status != EnrollStatus.APPROVED.value:
            return False
        if station.offline_at is not None and station.offline_at >= station.last_seen_at:
            return False
        return self.clock.now() - station.last_seen_at <= self.settings.offline_after

    async def approve(self, code: str, care_home_id: str, name: str, actor: str) -> StationRecord:
        """Approve the pending station showing ``code``; publishes its first configuration."""
        _check_id(care_home_id, "care home id")
        now = self.clock.now()
        code_hash = self.key.code_hash("station", code)

        def work(tx: Tx) -> tuple[str, StationRecord | None]:
            row = tx.one(
                "SELECT station_id, status, enroll_code_expires_at FROM prov_stations "
                "WHERE enroll_code_hash = ?",
                (code_hash,),
            )
            if row is None:
                return ("unknown", None)
            station_id, status, expires_text = row
            if status != "pending":
                return ("used", None)
            expires = dt(expires_text)
            if expires is None or expires <= now:
                return ("expired", None)
            tx.execute(
                "UPDATE prov_stations SET status = 'approved', approved_at = ?, "
                "care_home_id = ?, name = ? WHERE station_id = ?",
                (ts(now), care_home_id, name, station_id),
            )
            self._audit(tx, actor, "approve", station_id, f"care_home={care_home_id}")
            self._publish(tx, station_id)
            return ("ok", self._station_row(tx, station_id))

        verdict, record = await self.db.run(work)
        if verdict == "unknown":
            raise CodeUnknown()
        if verdict == "used":
            raise CodeAlreadyUsed()
        if verdict == "expired":
            raise CodeExpired()
        assert record is not None
        return record

    async def preauthorise(
        self, key_or_fingerprint: str, care_home_id: str, name: str, actor: str
    ) -> str:
        """Register a station's public key (base64url) or fingerprint before it first calls."""
        _check_id(care_home_id, "care home id")
        text = key_or_fingerprint.strip()
        if len(text.replace("-", "")) == 24:
            station_id = text.replace("-", "").lower()
            public_key = None
        else:
            try:
                public_key = b64decode(text, length=32)
            except Exception:
                raise AdminInputInvalid("give a base64url public key or a fingerprint") from None
            station_id = station_id_for(public_key)
        now = self.clock.now()

        def work(tx: Tx) -> None:
            inserted = tx.execute(
                "INSERT INTO prov_stations (station_id, public_key, status, care_home_id, name, "
                "created_at) VALUES (?, ?, 'preauthorised', ?, ?, ?) "
                "ON CONFLICT (station_id) DO NOTHING",
                (station_id, public_key, care_home_id, name, ts(now)),
            )
            if inserted == 0:
                # Already waiting on a lock screen: approving it by its key is the same thing.
                approved = tx.execute(
                    "UPDATE prov_stations SET status = 'approved', approved_at = ?, "
                    "care_home_id = ?, name = ? WHERE station_id = ? AND status = 'pending'",
                    (ts(now), care_home_id, name, station_id),
                )
                if approved == 0:
                    raise AdminInputInvalid(f"station {station_id} is already known")
                self._audit(tx, actor, "approve_by_key", station_id, f"care_home={care_home_id}")
                self._publish(tx, station_id)
                return
            self._audit(tx, actor, "preauthorise", station_id, f"care_home={care_home_id}")

        await self.db.run(work)
        return station_id

    async def set_layer(
        self, scope: str, scope_id: str | None, data: dict[str, Any], actor: str
    ) -> dict[str, int]:
        """Replace one configuration layer; republish every station it changes.

        Refused (nothing stored) if any affected station's merged configuration would not
        validate. Returns the new version per republished station.
        """
        if scope not in LAYER_SCOPES:
            raise AdminInputInvalid(f"scope must be one of {', '.join(LAYER_SCOPES)}")
        if scope == "municipality":
            scope_id = _MUNICIPALITY_ID
        if scope_id is None:
            raise AdminInputInvalid(f"a {scope} layer needs an id")
        _check_id(scope_id, f"{scope} id")
        if "staff" in data:
            raise AdminInputInvalid("staff come from staff enrollment, not from layers")
        now = self.clock.now()

        def work(tx: Tx) -> dict[str, int]:
            tx.execute(
                "INSERT INTO prov_layers (scope, scope_id, data_json, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (scope, scope_id) DO UPDATE SET "
                "data_json = excluded.data_json, updated_at = excluded.updated_at",
                (scope, scope_id, json.dumps(data, sort_keys=True), ts(now)),
            )
            if scope == "municipality":
                rows = tx.all("SELECT station_id FROM prov_stations WHERE status = 'approved'")
            elif scope == "care_home":
                rows = tx.all(
                    "SELECT station_id FROM prov_stations WHERE status = 'approved' "
                    "AND care_home_id = ?",
                    (scope_id,),
                )
            else:
                rows = tx.all(
                    "SELECT station_id FROM prov_stations WHERE status = 'approved' "
                    "AND station_id = ?",
                    (scope_id,),
                )
            published: dict[str, int] = {}
            for (station_id,) in rows:
                version = self._publish(tx, station_id)
                if version is not None:
                    published[station_id] = version
            self._audit(
                tx, actor, "set_config", f"{scope}:{scope_id}", f"keys={','.join(sorted(data))}"
            )
            return published

        return await self.db.run(work)

    async def get_layer(self, scope: str, scope_id: str | None) -> dict[str, Any]:
        """One stored layer (empty if none)."""
        if scope == "municipality":
            scope_id = _MUNICIPALITY_ID
        return await self.db.run(lambda tx: self._layer(tx, scope, scope_id))

    async def effective_config(self, station_id: str) -> StationConfig:
        """The merged configuration a station would get now."""

        def work(tx: Tx) -> StationConfig:
            station = self._station_row(tx, station_id)
            if station is None:
                raise AdminInputInvalid(f"no station {station_id}")
            return self._effective(tx, station)

        return await self.db.run(work)

    async def rollback(self, station_id: str, to_version: int, actor: str) -> int:
        """Send the station an earlier configuration version again (a signed rollback)."""

        def work(tx: Tx) -> int:
            station = self._station_row(tx, station_id)
            if station is None:
                raise AdminInputInvalid(f"no station {station_id}")
            if to_version >= station.published_version:
                raise AdminInputInvalid("a rollback goes to a version below the current one")
            row = tx.one(
                "SELECT envelope_json FROM prov_configs WHERE station_id = ? AND version = ? "
                "ORDER BY revision DESC LIMIT 1",
                (station_id, to_version),
            )
            if row is None:
                raise AdminInputInvalid(f"station {station_id} never had version {to_version}")
            old = SignedEnvelope.model_validate_json(row[0])
            payload = json.loads(b64decode(old.payload))
            config = StationConfig.model_validate(payload["config"])
            self._publish(
                tx,
                station_id,
                config=config,
                version=to_version,
                rollback_of=station.published_version,
            )
            self._audit(
                tx,
                actor,
                "rollback",
                station_id,
                f"from={station.published_version} to={to_version}",
            )
            return to_version

        return await self.db.run(work)

    async def issue_command(
        self,
        station_id: str,
        kind: CommandKind,
        actor: str,
        *,
        now: bool = False,
        staff_id: str | None = None,
    ) -> str:
        """Queue a signed command for a station; its id."""
        command_id = new_id()
        payload = CommandPayload(
            command_id=command_id,
            station_id=station_id,
            kind=kind,
            issued_at=self.clock.now(),
            now=now,
            staff_id=staff_id,
        )
        envelope = seal_envelope(self.key.private_key, "command", payload.model_dump(mode="json"))

        def work(tx: Tx) -> None:
            if self._station_row(tx, station_id) is None:
                raise AdminInputInvalid(f"no station {station_id}")
            self._insert_command(tx, payload, envelope)
            self._audit(tx, actor, f"command_{kind.value}", station_id, f"now={int(now)}")

        await self.db.run(work)
        return command_id

    def _insert_command(self, tx: Tx, payload: CommandPayload, envelope: SignedEnvelope) -> None:
        tx.execute(
            "INSERT INTO prov_commands (command_id, station_id, kind, staff_id, envelope_json, "
            "created_at, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
            (
                payload.command_id,
                payload.station_id,
                payload.kind.value,
                payload.staff_id,
                envelope.model_dump_json(),
                ts(payload.issued_at),
            ),
        )

    async def commands(self, station_id: str | None = None, limit: int = 50) -> list[CommandRecord]:
        """Recent commands (of one station, or all)."""
        where, params = ("WHERE station_id = ? ", (station_id,)) if station_id else ("", ())
        rows = await self.db.run(
            lambda tx: tx.all(
                f"SELECT {_COMMAND_COLUMNS} FROM prov_commands {where}"  # noqa: S608
                "ORDER BY created_at DESC, command_id LIMIT ?",
                (*params, limit),
            )
        )
        return [_command(r) for r in rows]

    async def issue_staff_code(
        self,
        station_id: str,
        display_name: str,
        actor: str,
        *,
        rights: tuple[StaffRight, ...] = (StaffRight.CALL, StaffRight.RECORDS, StaffRight.NOTES),
        ttl: timedelta | None = None,
    ) -> tuple[str, str, datetime]:
        """A one-time staff enrollment code; ``(staff_id, code, expires_at)``.

        The hub keeps the name and a hash of the code; the station only ever gets the id.
        """
        name = display_name.strip()
        if not name or len(name) > 120 or any(ord(c) < 32 for c in name):
            raise AdminInputInvalid("the staff member's name must be 1-120 printable characters")
        staff_id = "s-" + new_id()
        code = format_code()
        now = self.clock.now()
        expires = now + (ttl or self.settings.staff_code_ttl)

        def work(tx: Tx) -> None:
            station = self._station_row(tx, station_id)
            if station is None or station.status != EnrollStatus.APPROVED.value:
                raise AdminInputInvalid(f"no approved station {station_id}")
            tx.execute(
                "INSERT INTO prov_staff (staff_id, station_id, display_name, rights_json, "
                "code_hash, code_expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    staff_id,
                    station_id,
                    name,
                    json.dumps([r.value for r in rights]),
                    self.key.code_hash("staff", code),
                    ts(expires),
                    ts(now),
                ),
            )
            # The audit names the pseudonym only; the name is in prov_staff.
            self._audit(tx, actor, "staff_code_issued", staff_id, f"station={station_id}")

        await self.db.run(work)
        return staff_id, code, expires

    async def revoke_staff(self, staff_id: str, actor: str) -> str | None:
        """Revoke a staff member: their code dies, their slot goes on the station's next
        contact (a signed ``revoke_staff`` command); the command id if one was queued."""
        now = self.clock.now()

        def work(tx: Tx) -> str | None:
            row = tx.one(
                f"SELECT {_STAFF_COLUMNS} FROM prov_staff WHERE staff_id = ?",  # noqa: S608
                (staff_id,),
            )
            if row is None:
                raise AdminInputInvalid(f"no staff member {staff_id}")
            record = _staff(row)
            if record.revoked_at is not None:
                return None
            tx.execute(
                "UPDATE prov_staff SET revoked_at = ? WHERE staff_id = ?", (ts(now), staff_id)
            )
            command_id = None
            if record.redeemed_at is not None:
                payload = CommandPayload(
                    command_id=new_id(),
                    station_id=record.station_id,
                    kind=CommandKind.REVOKE_STAFF,
                    issued_at=now,
                    now=True,
                    staff_id=staff_id,
                )
                envelope = seal_envelope(
                    self.key.private_key, "command", payload.model_dump(mode="json")
                )
                self._insert_command(tx, payload, envelope)
                command_id = payload.command_id
                self._publish(tx, record.station_id, quiet=True)
            self._audit(tx, actor, "staff_revoked", staff_id, f"station={record.station_id}")
            return command_id

        return await self.db.run(work)

    async def staff(self, station_id: str | None = None) -> list[StaffRecord]:
        """Staff enrollments (of one station, or all)."""
        where, params = ("WHERE station_id = ? ", (station_id,)) if station_id else ("", ())
        rows = await self.db.run(
            lambda tx: tx.all(
                f"SELECT {_STAFF_COLUMNS} FROM prov_staff {where}"  # noqa: S608
                "ORDER BY created_at",
                params,
            )
        )
        return [_staff(r) for r in rows]

    async def admin_audit(self, limit: int = 50) -> list[AdminAuditEntry]:
        """The latest admin actions, oldest first."""
        rows = await self.db.run(
            lambda tx: tx.all(
                "SELECT seq, at, actor, action, target, detail FROM prov_admin_audit "
                "ORDER BY seq DESC LIMIT ?",
                (limit,),
            )
        )
        entries = []
        for row in reversed(rows):
            at = dt(row[1])
            assert at is not None
            entries.append(AdminAuditEntry(int(row[0]), at, row[2], row[3], row[4], row[5]))
        return entries

    async def clear_clone_flag(self, station_id: str, actor: str) -> None:
        """IT checked the station (e.g. re-imaged the other device): accept it again."""

        def work(tx: Tx) -> None:
            if not tx.execute(
                "UPDATE prov_stations SET clone_suspected = 0 WHERE station_id = ?", (station_id,)
            ):
                raise AdminInputInvalid(f"no station {station_id}")
            self._audit(tx, actor, "clear_clone_flag", station_id, None)

        await self.db.run(work)


def _check_id(value: str, what: str) -> None:
    if not is_opaque_id(value):
        raise AdminInputInvalid(f"{what} must be an opaque id (letters, digits, . _ -)")
