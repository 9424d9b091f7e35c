"""The admin side of provisioning: what IT does through ``kontaktstation admin``
(:mod:`hub.admin`, with access to the hub's database, and IT's signing key for what signs).

Stations (approve, pre-authorise, unflag), configuration layers and rollbacks, remote
commands, staff codes; every action is recorded in ``prov_admin_audit``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hub.db import Tx, dt, ts
from hub.provisioning.errors import (
    AdminInputInvalid,
    CodeAlreadyUsed,
    CodeExpired,
    CodeUnknown,
)
from hub.provisioning.keys import format_code
from hub.provisioning.layers import LAYER_SCOPES, MUNICIPALITY_ID, ProvisioningCore
from hub.provisioning.store import (
    COMMAND_COLUMNS,
    STAFF_COLUMNS,
    STATION_COLUMNS,
    CommandRecord,
    StaffRecord,
    StationRecord,
    command_from_row,
    staff_from_row,
    station_from_row,
)
from provisioning.protocol import (
    SignedEnvelope,
    b64decode,
    seal_envelope,
    station_id_for,
)
from provisioning.schema import (
    CommandKind,
    CommandPayload,
    EnrollStatus,
    StaffRight,
    StationConfig,
)
from station.core.ids import is_opaque_id, new_id

__all__ = ["AdminActions", "AdminAuditEntry"]


@dataclass(frozen=True, slots=True)
class AdminAuditEntry:
    """One recorded admin action."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: str | None


class AdminActions(ProvisioningCore):
    """IT's actions (see the module docs)."""

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

    async def audit_heads(
        self, station_id: str, limit: int = 10
    ) -> list[tuple[int, str, datetime, str]]:
        """A station's anchored audit heads and alarms, newest first: (seq, hash, when, verdict)."""
        rows = await self.db.run(
            lambda tx: tx.all(
                "SELECT seq, hash, received_at, verdict FROM prov_audit_heads "
                "WHERE station_id = ? ORDER BY received_at DESC, seq DESC LIMIT ?",
                (station_id, limit),
            )
        )
        out = []
        for seq, digest, received, verdict in rows:
            when = dt(received)
            assert when is not None
            out.append((int(seq), str(digest), when, str(verdict)))
        return out

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
        self.require_signer()
        now = self.clock.now()
        code_hash = self.secret.code_hash("station", code)

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
            # Signed now, by IT: the station finds it when it first calls in.
            self._publish(tx, station_id, quiet=True)

        self.require_signer()
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
            scope_id = MUNICIPALITY_ID
        if scope_id is None:
            raise AdminInputInvalid(f"a {scope} layer needs an id")
        _check_id(scope_id, f"{scope} id")
        if "staff" in data:
            raise AdminInputInvalid("staff come from staff enrollment, not from layers")
        now = self.clock.now()
        stored = self.sign_layer(scope, scope_id, data)
        ready = "status IN ('approved', 'preauthorised')"

        def work(tx: Tx) -> dict[str, int]:
            tx.execute(
                "INSERT INTO prov_layers (scope, scope_id, data_json, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (scope, scope_id) DO UPDATE SET "
                "data_json = excluded.data_json, updated_at = excluded.updated_at",
                (scope, scope_id, stored, ts(now)),
            )
            if scope == "municipality":
                rows = tx.all(f"SELECT station_id FROM prov_stations WHERE {ready}")  # noqa: S608
            elif scope == "care_home":
                rows = tx.all(
                    f"SELECT station_id FROM prov_stations WHERE {ready} "  # noqa: S608
                    "AND care_home_id = ?",
                    (scope_id,),
                )
            else:
                rows = tx.all(
                    f"SELECT station_id FROM prov_stations WHERE {ready} "  # noqa: S608
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

    async def resign_layers(self, actor: str) -> dict[str, int]:
        """Sign every stored layer again with IT's current key and republish every station
        whose configuration that changes (its keys at least): the step of a key rotation
        after which the old key can be dropped (see ``kontaktstation admin key resign``).

        Each layer must verify against the keys trusted now (the new key and, given with
        ``--also-trust``, the old one): a layer that does not is refused, nothing stored.
        """
        ready = "status IN ('approved', 'preauthorised')"

        def work(tx: Tx) -> dict[str, int]:
            layers = tx.all("SELECT scope, scope_id FROM prov_layers ORDER BY scope, scope_id")
            for scope, scope_id in layers:
                data = self._layer(tx, scope, scope_id)  # LayerNotSigned if it does not verify
                tx.execute(
                    "UPDATE prov_layers SET data_json = ?, updated_at = ? "
                    "WHERE scope = ? AND scope_id = ?",
                    (self.sign_layer(scope, scope_id, data), ts(self.clock.now()), scope, scope_id),
                )
            published: dict[str, int] = {}
            for (station_id,) in tx.all(
                f"SELECT station_id FROM prov_stations WHERE {ready}"  # noqa: S608
            ):
                version = self._publish(tx, station_id, quiet=True)
                if version is not None:
                    published[station_id] = version
            self._audit(tx, actor, "resign_layers", "all", f"layers={len(layers)}")
            return published

        return await self.db.run(work)

    async def get_layer(self, scope: str, scope_id: str | None) -> dict[str, Any]:
        """One stored layer (empty if none)."""
        if scope == "municipality":
            scope_id = MUNICIPALITY_ID
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
        self.require_signer()

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
        payload, envelope = self._signed_command(
            station_id, kind, self.clock.now(), now=now, staff_id=staff_id
        )

        def work(tx: Tx) -> None:
            if self._station_row(tx, station_id) is None:
                raise AdminInputInvalid(f"no station {station_id}")
            self._insert_command(tx, payload, envelope)
            self._audit(tx, actor, f"command_{kind.value}", station_id, f"now={int(now)}")

        await self.db.run(work)
        return payload.command_id

    def _signed_command(
        self,
        station_id: str,
        kind: CommandKind,
        issued_at: datetime,
        *,
        now: bool,
        staff_id: str | None,
    ) -> tuple[CommandPayload, SignedEnvelope]:
        """A new command for a station and its envelope, sealed with IT's signing key.

        One place for what a signed command holds, for every action that queues one (a command
        IT issues, the ``revoke_staff`` a staff revocation queues), so they cannot drift. The
        default lifetime is left out of the signed document: a station from before expiring
        commands refuses a field it does not know, and applies the same default.
        """
        payload = CommandPayload(
            command_id=new_id(),
            station_id=station_id,
            kind=kind,
            issued_at=issued_at,
            now=now,
            staff_id=staff_id,
        )
        envelope = seal_envelope(
            self.require_signer().private_key,
            "command",
            payload.model_dump(mode="json", exclude={"lifetime_seconds"}),
        )
        return payload, envelope

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
                f"SELECT {COMMAND_COLUMNS} FROM prov_commands {where}"  # noqa: S608
                "ORDER BY created_at DESC, command_id LIMIT ?",
                (*params, limit),
            )
        )
        return [command_from_row(r) for r in rows]

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
                    self.secret.code_hash("staff", code),
                    ts(expires),
                    ts(now),
                ),
            )
            # The audit names the pseudonym only; the name is in prov_staff.
            self._audit(tx, actor, "staff_code_issued", staff_id, f"station={station_id}")
            # The new id is in the station's configuration from now on (signed by IT here,
            # so redeeming the code at the station needs no signature from the hub).
            self._publish(tx, station_id, quiet=True)

        self.require_signer()
        await self.db.run(work)
        return staff_id, code, expires

    async def revoke_staff(self, staff_id: str, actor: str) -> str | None:
        """Revoke a staff member: their code dies, their slot goes on the station's next
        contact (a signed ``revoke_staff`` command); the command id if one was queued."""
        self.require_signer()
        now = self.clock.now()

        def work(tx: Tx) -> str | None:
            record = self._staff_record(tx, staff_id)
            if record.revoked_at is not None:
                return None
            tx.execute(
                "UPDATE prov_staff SET revoked_at = ? WHERE staff_id = ?", (ts(now), staff_id)
            )
            command_id = None
            if record.redeemed_at is not None:
                payload, envelope = self._signed_command(
                    record.station_id, CommandKind.REVOKE_STAFF, now, now=True, staff_id=staff_id
                )
                self._insert_command(tx, payload, envelope)
                command_id = payload.command_id
            self._publish(tx, record.station_id, quiet=True)
            self._audit(tx, actor, "staff_revoked", staff_id, f"station={record.station_id}")
            return command_id

        return await self.db.run(work)

    def _staff_record(self, tx: Tx, staff_id: str) -> StaffRecord:
        """One staff member by id; AdminInputInvalid if there is none.

        Revoking and reissuing both start from the staff member IT named, and refuse an
        unknown id with the same words; one lookup keeps them the same.
        """
        row = tx.one(
            f"SELECT {STAFF_COLUMNS} FROM prov_staff WHERE staff_id = ?",  # noqa: S608
            (staff_id,),
        )
        if row is None:
            raise AdminInputInvalid(f"no staff member {staff_id}")
        return staff_from_row(row)

    async def reissue_staff_code(
        self, staff_id: str, actor: str, *, ttl: timedelta | None = None
    ) -> tuple[str, str, datetime, str | None]:
        """A forgotten PIN (issue 17): a new one-time code for the same person, station and
        rights, and the old enrollment revoked (its slot goes at the station's next contact).

        ``(new_staff_id, code, expires_at, revoke_command_id)``. The new code is issued first,
        so a refusal (the station no longer approved) leaves the old enrollment as it was.
        A PIN cannot be reset on the hub: only the station can make a slot, so the staff
        member enrolls again at the station with the new code (and a colleague vouching).
        """
        old = await self.db.run(lambda tx: self._staff_record(tx, staff_id))
        if old.revoked_at is not None:
            raise AdminInputInvalid(f"{staff_id} is revoked; issue a new code with 'staff issue'")
        rights = tuple(StaffRight(r) for r in old.rights)
        new_id, code, expires = await self.issue_staff_code(
            old.station_id, old.display_name, actor, rights=rights, ttl=ttl
        )
        command = await self.revoke_staff(staff_id, actor)
        return new_id, code, expires, command

    async def staff(self, station_id: str | None = None) -> list[StaffRecord]:
        """Staff enrollments (of one station, or all)."""
        where, params = ("WHERE station_id = ? ", (station_id,)) if station_id else ("", ())
        rows = await self.db.run(
            lambda tx: tx.all(
                f"SELECT {STAFF_COLUMNS} FROM prov_staff {where}"  # noqa: S608
                "ORDER BY created_at",
                params,
            )
        )
        return [staff_from_row(r) for r in rows]

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
