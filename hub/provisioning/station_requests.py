"""The station side of provisioning: signed requests, enrollment, heartbeats, command acks,
staff codes (what :mod:`hub.provisioning.api` serves).

Request authentication (:meth:`StationRequests.authenticate`) is a compare-and-set on the
station's last counter in one transaction: a counter above the last one is accepted; the very
same request again is a replay (409); a *different* validly signed request at or below the
last counter means the identity is used by two devices (or traffic was captured and replayed)
and the station is flagged ``clone_suspected`` and refused until IT acts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError

from hub.db import Tx, dt, ts
from hub.provisioning.errors import (
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
from hub.provisioning.keys import format_code
from hub.provisioning.layers import ProvisioningCore
from hub.provisioning.store import (
    STAFF_COLUMNS,
    STATION_COLUMNS,
    StaffRecord,
    StationRecord,
    staff_from_row,
    station_from_row,
)
from provisioning.protocol import (
    SignedEnvelope,
    b64decode,
    station_id_for,
    verify_audit_head,
)
from provisioning.schema import (
    CommandAck,
    CommandKind,
    ConfigPayload,
    EnrollRequest,
    EnrollResponse,
    EnrollStatus,
    Heartbeat,
    HeartbeatResponse,
    StaffRedeemResponse,
    StaffRight,
)

__all__ = ["StationRequests"]

_log = logging.getLogger(__name__)

_CODE_FAILURE_LIMIT: Final = 10
_CODE_FAILURE_WINDOW: Final = timedelta(minutes=15)
_LIVE_COMMAND_STATES: Final = ("pending", "deferred")
# An approved station with a fresh counter, checked and recorded in one statement.
_FAST_AUTH: Final = (
    "UPDATE prov_stations SET last_counter = ?, last_digest = ?, last_seen_at = ? "  # noqa: S608
    "WHERE station_id = ? AND public_key = ? AND status = 'approved' "
    f"AND clone_suspected = 0 AND last_counter < ? RETURNING {STATION_COLUMNS}"
)


class StationRequests(ProvisioningCore):
    """What a station may ask of the hub (see the module docs)."""

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
        # The transaction returns a verdict and the refusal is raised after it commits: raised
        # inside, it would roll back the clone flag or failure count it records. Each request
        # has its own verdicts and table (here and in redeem_staff_code); alike by design.
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
                        self.secret.code_hash("station", code),
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
                # Its configuration was signed by IT when it was pre-authorised.
                self._audit(tx, "station", "enrolled_preauthorised", station_id, None)
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
                    (self.secret.code_hash("station", code), ts(new_expiry), station_id),
                )
                return ("pending", new_expiry)
            return (status, None)

        status, expires = await self.db.run(work)
        if status == EnrollStatus.APPROVED.value:
            return EnrollResponse(
                station_id=station_id,
                status=EnrollStatus.APPROVED,
                poll_seconds=self.settings.heartbeat_seconds,
                config_keys=await self._published_keys(station_id),
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

    async def _published_keys(self, station_id: str) -> tuple[str, ...]:
        """The keys IT's latest configuration for this station names (the hub has none of its
        own to offer). Only a station that was not given IT's key by its set-up pins these:
        the set-up's ``--it-key`` is the out-of-band check a hostile hub cannot get round."""
        envelope = await self.current_config_for(station_id)
        if envelope is None:
            return ()
        try:
            payload = ConfigPayload.model_validate_json(b64decode(envelope.payload))
        except ValidationError:
            return ()
        return tuple(payload.trusted_config_keys)

    async def current_config(self, station: StationRecord) -> SignedEnvelope | None:
        """The station's current signed configuration, if one was published."""
        return await self.current_config_for(station.station_id)

    async def current_config_for(self, station_id: str) -> SignedEnvelope | None:
        """A station's current signed configuration, if one was published."""
        row = await self.db.run(
            lambda tx: tx.one(
                "SELECT envelope_json FROM prov_configs WHERE station_id = ? "
                "ORDER BY revision DESC LIMIT 1",
                (station_id,),
            )
        )
        return None if row is None else SignedEnvelope.model_validate_json(row[0])

    async def heartbeat(self, station: StationRecord, beat: Heartbeat) -> HeartbeatResponse:
        """Record a heartbeat; answer with the version to run and the commands waiting."""
        now = self.clock.now()
        station_id = station.station_id
        beat_json = beat.model_dump_json()

        def work(tx: Tx) -> tuple[int, list[str], int | None, bool]:
            anchor_seq, alarm = self._anchor_audit_head(tx, station, beat, now)
            row = tx.one(
                "UPDATE prov_stations SET heartbeat_json = ?, last_seen_at = ?, "
                "software_version = ?, config_version = ?, config_rejected = ?, "
                "offline_at = ?, "
                "first_config_at = CASE WHEN first_config_at IS NULL AND ? > 0 THEN ? "
                "ELSE first_config_at END WHERE station_id = ? RETURNING published_version",
                (
                    beat_json,
                    ts(now),
                    beat.software_version,
                    beat.config_version,
                    beat.config_rejected,
                    ts(now) if beat.going_offline else None,
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
            version = 0 if row is None else int(row[0])
            return (version, [c[0] for c in commands], anchor_seq, alarm)

        version, commands, anchor_seq, alarm = await self.db.run(work)
        anchoring = beat.audit_head is not None and beat.audit_head.signature is not None
        return HeartbeatResponse(
            config_version=version,
            commands=tuple(SignedEnvelope.model_validate_json(c) for c in commands[:32]),
            next_in_seconds=self.settings.heartbeat_seconds,
            server_time=now,
            audit_anchor_seq=anchor_seq if anchoring else None,
            audit_alarm=alarm if anchoring else None,
        )

    def _anchor_audit_head(
        self, tx: Tx, station: StationRecord, beat: Heartbeat, now: datetime
    ) -> tuple[int | None, bool]:
        """Anchor the heartbeat's signed audit head, or raise the alarm (issue 14, item 6).

        The hub keeps the last anchored ``(seq, hash)`` and moves it forward only when the
        station proves that its log still holds that very entry: ``audit_proof`` is the hash
        the station's log has now at the anchored seq, recomputed from the start of the chain.
        A head below the anchor (entries cut off), a different hash at the anchored seq (the
        log rewritten and re-chained up to there) or a head whose signature is not the
        station's raise the alarm; it stays until IT clears it. A head without a proof (the
        first heartbeat after a restart) is not anchored and answered with the seq to prove.
        Returns the anchored seq and whether the station is in alarm.
        """
        station_id = station.station_id
        row = tx.one(
            "SELECT audit_seq, audit_hash, audit_alarm FROM prov_stations WHERE station_id = ?",
            (station_id,),
        )
        if row is None:
            return None, False
        anchor_seq = None if row[0] is None else int(row[0])
        anchor_hash, alarmed = row[1], bool(row[2])
        head = beat.audit_head
        if head is None or head.signature is None:
            # Nothing to anchor (or a station from before signed heads: not anchored).
            return anchor_seq, alarmed
        verdict: str | None = None
        if station.public_key is None or not verify_audit_head(
            station.public_key, station_id, head.seq, head.hash, head.signature
        ):
            verdict = "alarm_bad_signature"
        elif anchor_seq is None or anchor_hash is None:
            verdict = "anchored"
        elif head.seq < anchor_seq:
            verdict = "alarm_truncated"
        elif head.seq == anchor_seq:
            verdict = None if head.hash == anchor_hash else "alarm_rewritten"
        else:
            proof = beat.audit_proof
            if proof is None or proof.seq != anchor_seq:
                verdict = None  # unproven: answered with the seq to prove
            elif proof.hash != anchor_hash:
                verdict = "alarm_rewritten"
            else:
                verdict = "anchored"
        if verdict is None:
            return anchor_seq, alarmed
        if alarmed and verdict != "anchored":
            return anchor_seq, True  # recorded and logged when it was raised
        tx.execute(
            "INSERT INTO prov_audit_heads (station_id, seq, hash, signature, received_at, "
            "verdict) VALUES (?, ?, ?, ?, ?, ?)",
            (station_id, head.seq, head.hash, head.signature, ts(now), verdict),
        )
        if verdict == "anchored":
            tx.execute(
                "UPDATE prov_stations SET audit_seq = ?, audit_hash = ? WHERE station_id = ?",
                (head.seq, head.hash, station_id),
            )
            return head.seq, alarmed
        tx.execute("UPDATE prov_stations SET audit_alarm = 1 WHERE station_id = ?", (station_id,))
        _log.error(
            "audit alarm for station %s: %s (anchored seq %s, head seq %d)",
            station_id,
            verdict.removeprefix("alarm_"),
            anchor_seq,
            head.seq,
        )
        return anchor_seq, True

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
        code_hash = self.secret.code_hash("staff", code)

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
                f"SELECT {STAFF_COLUMNS} FROM prov_staff WHERE code_hash = ?",  # noqa: S608
                (code_hash,),
            )
            record = None if row is None else staff_from_row(row)
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
            # Nothing to sign: IT put the id in the configuration when it issued the code.
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
