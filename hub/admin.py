"""``kontaktstation admin``: IT's command line for provisioning, run on the hub's host.

Over 500 lines for one job, IT's command line: its argument parser and each command's output
(the rules are :mod:`hub.provisioning`).

It works on the hub's own database (the same settings as ``kontaktstation hub``:
``KONTAKTSTATION_HUB_DATA_DIR``, ``..._DATABASE_URL`` for PostgreSQL), so there is no admin
endpoint on the network at all. What a station obeys — configurations, commands, and the
layers they are merged from — is signed here with **IT's signing key**, which the hub never
holds: ``--signing-key PATH`` (or ``KONTAKTSTATION_IT_SIGNING_KEY``), a 0600 file IT keeps on
their own machine or a stick, made once with ``kontaktstation admin keygen PATH`` (which needs
no hub). Looking (``stations``, ``commands``, ``audit``, ``config show``) needs no key. Every
action is recorded in the admin audit trail with the operating-system user as the actor.

Stations are named by their id, a unique prefix of it, or their fingerprint as the lock screen
shows it (``ABCD-EFGH-...``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from hub.errors import HubError
from hub.provisioning.errors import ProvisioningHubError
from hub.provisioning.keys import ITSigningKey
from hub.provisioning.releases import ReleaseShelf
from hub.provisioning.service import ProvisioningService
from hub.provisioning.store import StationRecord
from provisioning.errors import SignatureInvalid
from provisioning.protocol import b64encode, fingerprint
from provisioning.release import ReleaseInvalid, build_release
from provisioning.schema import CommandKind, HealthName, Heartbeat, StaffRight
from station.core.clock import SystemClock

__all__ = ["format_table", "main"]

# The admin CLI needs no station credential; HubSettings insists on one (the interim token).


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the header; no colours."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "just now"
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60} min ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _health(station: StationRecord) -> str:
    if station.heartbeat_json is None:
        return "-"
    try:
        beat = Heartbeat.model_validate_json(station.heartbeat_json)
    except ValidationError:
        return "?"
    failing = [h.name.value for h in beat.health if not h.ok]
    return "ok" if not failing else "FAIL " + ",".join(failing)


def _update(beat: Heartbeat) -> str:
    """The release the configuration names and where the station stands with it."""
    update = beat.update
    if update is None:
        return "-"
    return f"{update.version} {update.state}" + (f" ({update.reason})" if update.reason else "")


def _version(station: StationRecord) -> str:
    """The running version, and the one on its way (or refused) when they differ."""
    running = station.software_version or "-"
    if station.heartbeat_json is None:
        return running
    try:
        update = Heartbeat.model_validate_json(station.heartbeat_json).update
    except ValidationError:
        return running
    if update is None or update.state == "installed":
        return running
    return f"{running} ({update.version} {update.state})"


def _button_failing(station: StationRecord) -> bool:
    """The last heartbeat says the privacy button is missing or not working."""
    if station.heartbeat_json is None:
        return False
    try:
        beat = Heartbeat.model_validate_json(station.heartbeat_json)
    except ValidationError:
        return False
    return any(h.name is HealthName.BUTTON and not h.ok for h in beat.health)


def _flags(station: StationRecord) -> str:
    flags = []
    if _button_failing(station):
        # The lock's first line is gone: the station locks only on its screen. First and loud.
        flags.append("BUTTON!")
    if station.clone_suspected:
        flags.append("CLONE?")
    if station.audit_alarm:
        flags.append("AUDIT!")
    if station.config_rejected:
        flags.append(f"refused:{station.config_rejected}")
    return " ".join(flags) or "-"


def _fingerprint(station: StationRecord) -> str:
    if station.public_key is not None:
        return fingerprint(station.public_key)
    raw = station.station_id.upper()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _mask_secrets(config: Any) -> Any:
    """A copy of a configuration (or layer) for the screen: TURN and EOJ secrets hidden."""
    shown = json.loads(json.dumps(config))
    if not isinstance(shown, dict):
        return shown
    for server in shown.get("ice_servers") or []:
        if isinstance(server, dict) and server.get("credential"):
            server["credential"] = "********"
    eoj = shown.get("eoj")
    if isinstance(eoj, dict) and eoj.get("client_secret"):
        eoj["client_secret"] = "********"  # noqa: S105 - the mask, not a secret
    return shown


class Admin:
    """The sub-commands, on one :class:`ProvisioningService`."""

    def __init__(self, service: ProvisioningService, actor: str, out: TextIO) -> None:
        self.service = service
        self.actor = actor
        self.out = out

    def say(self, text: str) -> None:
        """Print a line."""
        print(text, file=self.out)

    async def resolve(self, name: str) -> str:
        """A station id from an id, a unique prefix or a fingerprint."""
        wanted = name.replace("-", "").lower()
        matches = [
            s.station_id
            for s in await self.service.list_stations()
            if s.station_id.startswith(wanted)
        ]
        if len(matches) != 1:
            what = "no station" if not matches else f"{len(matches)} stations"
            raise SystemExit(f"kontaktstation admin: {what} match {name!r}")
        return matches[0]

    # -- stations

    async def stations_list(self, args: argparse.Namespace) -> None:
        now = self.service.clock.now()
        rows = []
        for s in await self.service.list_stations():
            if s.status == "decommissioned" and not args.all:
                continue
            online = "online" if self.service.is_online(s) else "offline"
            config = f"{s.config_version}/{s.published_version}"
            rows.append(
                [
                    s.station_id[:12],
                    s.name or "-",
                    s.care_home_id or "-",
                    s.status,
                    online if s.status == "approved" else "-",
                    _ago(s.last_seen_at, now),
                    _version(s),
                    config,
                    _health(s),
                    _flags(s),
                ]
            )
        headers = ["STATION", "NAME", "CARE HOME", "STATUS", "NET", "LAST SEEN", "VERSION",
                   "CONFIG", "HEALTH", "FLAGS"]  # fmt: skip
        self.say(format_table(headers, rows))
        self.say(f"\n{len(rows)} station(s); CONFIG is running/published version.")

    async def stations_show(self, args: argparse.Namespace) -> None:
        station = await self.service.get_station(await self.resolve(args.station))
        now = self.service.clock.now()
        pairs = [
            ("station id", station.station_id),
            ("fingerprint", _fingerprint(station)),
            ("status", station.status),
            ("name", station.name or "-"),
            ("care home", station.care_home_id or "-"),
            ("online", "yes" if self.service.is_online(station) else "no"),
            ("last seen", _ago(station.last_seen_at, now)),
            ("software", station.software_version or "-"),
            ("config running", str(station.config_version)),
            ("config published", str(station.published_version)),
            ("health", _health(station)),
            (
                "audit head",
                "-"
                if station.audit_seq is None
                else f"seq {station.audit_seq}, {(station.audit_hash or '')[:16]}",
            ),
            ("flags", _flags(station)),
        ]
        heads = await self.service.audit_heads(station.station_id)
        alarms = [h for h in heads if h[3].startswith("alarm_")]
        if station.audit_alarm:
            what = "-"
            if alarms:
                seq, _digest, when, verdict = alarms[0]
                what = f"{verdict.removeprefix('alarm_')} (head seq {seq}, {_ago(when, now)})"
            pairs.append(("AUDIT ALARM", f"the log no longer extends the anchored head: {what}"))
        pairs += [
            (f"anchored {i + 1}", f"seq {seq}, {digest[:16]} ({verdict}, {_ago(when, now)})")
            for i, (seq, digest, when, verdict) in enumerate(heads[:5])
        ]
        if station.heartbeat_json:
            beat = Heartbeat.model_validate_json(station.heartbeat_json)
            pairs += [
                ("lock state", beat.lock_state),
                ("session", beat.session_state),
                (
                    "ports",
                    " ".join(f"{k.value}={v}" for k, v in sorted(beat.ports.items())) or "-",
                ),
                ("wrong PINs", str(beat.pins.station_failures)),
                ("staff enrolled", str(beat.enrolled_staff)),
                ("queue", str(beat.queue_length)),
                ("missed (7 days)", str(beat.missed_consultations)),
                ("undocumented", str(beat.undocumented_consultations)),
                ("last call", beat.last_call_outcome or "-"),
                ("update", _update(beat)),
            ]
        width = max(len(k) for k, _ in pairs)
        for key, value in pairs:
            self.say(f"{key.ljust(width)}  {value}")

    async def approve(self, args: argparse.Namespace) -> None:
        station = await self.service.approve(args.code, args.care_home, args.name, self.actor)
        self.say(
            f"approved {station.station_id} ({_fingerprint(station)}) as {args.name!r}; "
            f"configuration version {station.published_version}"
        )

    async def preauthorise(self, args: argparse.Namespace) -> None:
        station_id = await self.service.preauthorise(
            args.key, args.care_home, args.name, self.actor
        )
        self.say(f"pre-authorised {station_id}: it is accepted when it first calls in")

    async def unflag(self, args: argparse.Namespace) -> None:
        station_id = await self.resolve(args.station)
        await self.service.clear_clone_flag(station_id, self.actor)
        self.say(f"cleared the clone flag of {station_id}")

    # -- configuration

    def _scope(self, args: argparse.Namespace) -> tuple[str, str | None]:
        if args.municipality:
            return "municipality", None
        if args.care_home:
            return "care_home", args.care_home
        return "station", args.station

    async def config_set(self, args: argparse.Namespace) -> None:
        scope, scope_id = self._scope(args)
        if scope == "station" and scope_id is not None:
            scope_id = await self.resolve(scope_id)
        try:
            data = json.loads(args.layer_text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"kontaktstation admin: {args.file}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise SystemExit("kontaktstation admin: a layer is a JSON object")
        published = await self.service.set_layer(scope, scope_id, data, self.actor)
        self.say(f"{scope} layer stored; {len(published)} station(s) get a new version")
        for station_id, version in sorted(published.items()):
            self.say(f"  {station_id}  version {version}")

    async def config_show(self, args: argparse.Namespace) -> None:
        if args.station and not (args.municipality or args.care_home or args.layer):
            config = await self.service.effective_config(await self.resolve(args.station))
            shown = _mask_secrets(config.model_dump(mode="json"))
            self.say(json.dumps(shown, indent=2, ensure_ascii=False))
            return
        scope, scope_id = self._scope(args)
        if scope == "station" and scope_id is not None:
            scope_id = await self.resolve(scope_id)
        layer = _mask_secrets(await self.service.get_layer(scope, scope_id))
        self.say(json.dumps(layer, indent=2, ensure_ascii=False))

    async def config_rollback(self, args: argparse.Namespace) -> None:
        station_id = await self.resolve(args.station)
        version = await self.service.rollback(station_id, args.to, self.actor)
        self.say(f"{station_id} rolls back to version {version} at its next heartbeat")

    # -- releases

    def _shelf(self) -> ReleaseShelf:
        directory = self.service.settings.releases_dir
        if directory is None:
            raise SystemExit("kontaktstation admin: this hub keeps no releases")
        return ReleaseShelf(directory)

    async def release_add(self, args: argparse.Namespace) -> None:
        try:
            release = await asyncio.to_thread(self._shelf().add, Path(args.archive))
        except (ReleaseInvalid, OSError) as exc:
            raise SystemExit(f"kontaktstation admin: {exc}") from None
        self.say(f"release {release.version} on the hub: sha256 {release.sha256}")
        self.say("  no station installs it until a configuration names it (admin release rollout)")

    async def release_list(self, args: argparse.Namespace) -> None:
        del args
        stations = await self.service.list_stations()
        rows = []
        for release in self._shelf().list():
            running = sum(1 for s in stations if s.software_version == release.version)
            first = release.manifest.changelog.strip().splitlines()[:1]
            rows.append(
                [release.version, release.sha256[:16], f"{release.size // 1024} KiB",
                 str(running), first[0][:60] if first else "-"]
            )  # fmt: skip
        self.say(format_table(["VERSION", "SHA256", "SIZE", "RUNNING", "CHANGES"], rows))

    async def release_rollout(self, args: argparse.Namespace) -> None:
        scope, scope_id = self._scope(args)
        if scope == "station" and scope_id is not None:
            scope_id = await self.resolve(scope_id)
        if bool(args.withdraw) == bool(args.version):
            raise SystemExit("kontaktstation admin: give a release version or --withdraw")
        layer = await self.service.get_layer(scope, scope_id)
        if args.withdraw:
            layer.pop("software", None)
            what = "no release of its own (the layer below decides)"
        else:
            try:
                release = self._shelf().find(args.version)
            except ReleaseInvalid as exc:
                raise SystemExit(f"kontaktstation admin: {exc}") from None
            layer["software"] = {"version": release.version, "sha256": release.sha256}
            what = f"release {release.version}"
        published = await self.service.set_layer(scope, scope_id, layer, self.actor)
        where = scope if scope_id is None else f"{scope} {scope_id}"
        self.say(f"{where}: {what}; {len(published)} station(s) get a new configuration")
        for station_id, version in sorted(published.items()):
            self.say(f"  {station_id}  version {version}")

    # -- staff

    async def staff_issue(self, args: argparse.Namespace) -> None:
        station_id = await self.resolve(args.station)
        rights = tuple(StaffRight(r) for r in args.rights.split(",")) if args.rights else None
        kwargs: dict[str, Any] = {"ttl": timedelta(minutes=args.ttl_minutes)}
        if rights:
            kwargs["rights"] = rights
        staff_id, code, expires = await self.service.issue_staff_code(
            station_id, args.name, self.actor, **kwargs
        )
        local = expires.astimezone().strftime("%H:%M")
        self.say(f"staff id  {staff_id}")
        self.say(f"code      {code}   (one use, valid until {local})")
        self.say("Give the code to the staff member only; they type it at the station.")

    async def staff_revoke(self, args: argparse.Namespace) -> None:
        command = await self.service.revoke_staff(args.staff_id, self.actor)
        tail = f"; slot removed at the next contact (command {command})" if command else ""
        self.say(f"revoked {args.staff_id}{tail}")

    async def staff_reissue(self, args: argparse.Namespace) -> None:
        new_id, code, expires, command = await self.service.reissue_staff_code(
            args.staff_id, self.actor, ttl=timedelta(minutes=args.ttl_minutes)
        )
        local = expires.astimezone().strftime("%H:%M")
        self.say(f"staff id  {new_id}   (replaces {args.staff_id}, now revoked)")
        self.say(f"code      {code}   (one use, valid until {local})")
        if command:
            self.say(f"The old slot is removed at the station's next contact (command {command}).")
        self.say(
            "The staff member enrolls again at the station with the code, a new PIN and a "
            "colleague's staff number and PIN; the station shows their new staff number."
        )

    async def staff_list(self, args: argparse.Namespace) -> None:
        station_id = await self.resolve(args.station) if args.station else None
        now = self.service.clock.now()
        rows = []
        for s in await self.service.staff(station_id):
            if s.revoked_at is not None:
                state = "revoked"
            elif s.redeemed_at is not None:
                state = "enrolled"
            elif s.code_expires_at <= now:
                state = "code expired"
            else:
                state = "code issued"
            rows.append([s.staff_id, s.display_name, s.station_id[:12], state, ",".join(s.rights)])
        self.say(format_table(["STAFF ID", "NAME", "STATION", "STATE", "RIGHTS"], rows))

    # -- commands

    async def command(self, args: argparse.Namespace, kind: CommandKind) -> None:
        station_id = await self.resolve(args.station)
        command_id = await self.service.issue_command(
            station_id, kind, self.actor, now=getattr(args, "now", False)
        )
        self.say(f"{kind.value} queued for {station_id} (command {command_id})")
        if kind in (CommandKind.CRYPTO_WIPE, CommandKind.DECOMMISSION) and not args.now:
            self.say("It waits for a running call to end (use --now to interrupt one).")

    async def commands(self, args: argparse.Namespace) -> None:
        station_id = await self.resolve(args.station) if args.station else None
        now = self.service.clock.now()
        rows = [
            [
                c.command_id,
                c.station_id[:12],
                c.kind,
                c.state,
                c.outcome or "-",
                c.detail or "-",
                _ago(c.created_at, now),
            ]
            for c in await self.service.commands(station_id, args.limit)
        ]
        headers = ["COMMAND", "STATION", "KIND", "STATE", "OUTCOME", "DETAIL", "ISSUED"]
        self.say(format_table(headers, rows))

    async def audit(self, args: argparse.Namespace) -> None:
        rows = [
            [
                str(e.seq),
                e.at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                e.actor,
                e.action,
                e.target or "-",
                e.detail or "-",
            ]
            for e in await self.service.admin_audit(args.limit)
        ]
        self.say(format_table(["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"], rows))

    async def key(self, _args: argparse.Namespace) -> None:
        signer = self.service.require_signer()
        self.say(f"key id   {signer.key_id}")
        for public in signer.trusted:
            self.say(f"trusted  {b64encode(public)}")

    async def key_resign(self, _args: argparse.Namespace) -> None:
        """A rotation from key A to key B, in three runs of ``kontaktstation admin``:
        ``--also-trust B key resign`` with A (stations learn B), ``--signing-key B
        --also-trust A key resign`` (every layer signed by B), ``--signing-key B key resign``
        (configurations name B alone: stations and their updaters drop A)."""
        published = await self.service.resign_layers(self.actor)
        signer = self.service.require_signer()
        self.say(
            f"every layer signed by {signer.key_id}; {len(published)} station(s) get a new version"
        )
        for station_id, version in sorted(published.items()):
            self.say(f"  {station_id}  version {version}")


#: Where the admin finds IT's signing key and the extra keys to trust, unless given.
SIGNING_KEY_ENV = "KONTAKTSTATION_IT_SIGNING_KEY"
ALSO_TRUST_ENV = "KONTAKTSTATION_IT_ALSO_TRUST"


def _keygen(path: Path, out: TextIO) -> int:
    try:
        key = ITSigningKey.generate(path)
    except FileExistsError:
        print(f"kontaktstation admin: {path} exists; a key is never overwritten", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kontaktstation admin: {path}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"key id   {key.key_id}", file=out)
    print(f"public   {b64encode(key.public_key)}", file=out)
    print(
        "Keep the file on IT's machine, not the hub. Give the public key to each station's "
        "set-up (--it-key) and compare the key id on its screen.",
        file=out,
    )
    return 0


def _load_signer(args: argparse.Namespace, hub_data_dir: Path) -> ITSigningKey | None:
    """IT's key if one was given (HubError if it is unusable or lives on the hub)."""
    path = args.signing_key or (
        Path(os.environ[SIGNING_KEY_ENV]) if os.environ.get(SIGNING_KEY_ENV) else None
    )
    if path is None:
        return None
    if path.resolve().is_relative_to(hub_data_dir.resolve()):
        raise ProvisioningHubError(
            f"{path}: IT's signing key must not live in the hub's data directory"
        )
    extra = list(args.also_trust or ())
    extra += [k for k in os.environ.get(ALSO_TRUST_ENV, "").split(",") if k.strip()]
    try:
        return ITSigningKey.load(path, tuple(extra))
    except FileNotFoundError:
        raise ProvisioningHubError(f"{path}: no such signing key") from None
    except SignatureInvalid as exc:
        raise ProvisioningHubError(f"--also-trust: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation admin",
        description="Provisioning for IT: stations, configuration, staff codes, commands.",
    )
    parser.add_argument("--data-dir", type=Path, help="the hub's data directory")
    parser.add_argument("--actor", default=None, help="name in the audit trail (default: $USER)")
    parser.add_argument(
        "--signing-key",
        type=Path,
        default=None,
        help=f"IT's signing key file (default: ${SIGNING_KEY_ENV}); never on the hub",
    )
    parser.add_argument(
        "--also-trust",
        action="append",
        default=None,
        metavar="PUBLIC_KEY",
        help=f"another key stations should trust, for rotation (also ${ALSO_TRUST_ENV})",
    )
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="make IT's signing key (on IT's machine, not the hub)")
    keygen.add_argument("path", type=Path, help="the new key file (0600; never overwritten)")
    keygen.set_defaults(run=None)

    stations = sub.add_parser("stations", help="list or show stations").add_subparsers(
        dest="action", required=True
    )
    listing = stations.add_parser("list", help="every station: online, versions, health")
    listing.add_argument("--all", action="store_true", help="include decommissioned stations")
    listing.set_defaults(run=Admin.stations_list)
    show = stations.add_parser("show", help="one station in detail")
    show.add_argument("station")
    show.set_defaults(run=Admin.stations_show)

    approve = sub.add_parser("approve", help="approve the station showing this code")
    approve.add_argument("code")
    approve.add_argument("--care-home", required=True, help="the care home's id")
    approve.add_argument("--name", required=True, help="the station's name, e.g. 'Stue 1'")
    approve.set_defaults(run=Admin.approve)

    pre = sub.add_parser("preauthorise", help="register a station's key or fingerprint")
    pre.add_argument("key", help="base64url public key or fingerprint (ABCD-EFGH-...)")
    pre.add_argument("--care-home", required=True)
    pre.add_argument("--name", required=True)
    pre.set_defaults(run=Admin.preauthorise)

    unflag = sub.add_parser("unflag", help="clear a station's suspected-clone flag")
    unflag.add_argument("station")
    unflag.set_defaults(run=Admin.unflag)

    config = sub.add_parser("config", help="configuration layers").add_subparsers(
        dest="action", required=True
    )
    for name, helptext in (("set", "replace one layer from a JSON file"), ("show", "show")):
        p = config.add_parser(name, help=helptext)
        scope = p.add_mutually_exclusive_group(required=name == "set")
        scope.add_argument("--municipality", action="store_true", help="the defaults layer")
        scope.add_argument("--care-home", metavar="ID")
        scope.add_argument("--station", metavar="STATION")
        if name == "set":
            p.add_argument("file", help="JSON file with the layer ('-': standard input)")
            p.set_defaults(run=Admin.config_set)
        else:
            p.add_argument("--layer", action="store_true", help="the station's own layer only")
            p.set_defaults(run=Admin.config_show)
    rollback = config.add_parser("rollback", help="send an earlier version again (signed)")
    rollback.add_argument("station")
    rollback.add_argument("--to", type=int, required=True, metavar="VERSION")
    rollback.set_defaults(run=Admin.config_rollback)

    staff = sub.add_parser("staff", help="staff enrollment codes").add_subparsers(
        dest="action", required=True
    )
    issue = staff.add_parser("issue", help="a one-time code for a named staff member")
    issue.add_argument("--station", required=True)
    issue.add_argument("--name", required=True, help="the staff member's name (stays here)")
    issue.add_argument("--rights", help="comma list: call,records,notes,rounds")
    issue.add_argument("--ttl-minutes", type=int, default=30)
    issue.set_defaults(run=Admin.staff_issue)
    revoke = staff.add_parser("revoke", help="revoke: the slot goes at the next contact")
    revoke.add_argument("staff_id")
    revoke.set_defaults(run=Admin.staff_revoke)
    reissue = staff.add_parser(
        "reissue", help="forgotten PIN: a new code for the same person; the old slot goes"
    )
    reissue.add_argument("staff_id")
    reissue.add_argument("--ttl-minutes", type=int, default=30)
    reissue.set_defaults(run=Admin.staff_reissue)
    staff_list = staff.add_parser("list", help="staff and their codes' state")
    staff_list.add_argument("--station")
    staff_list.set_defaults(run=Admin.staff_list)

    for name, kind, helptext in (
        ("lock", CommandKind.LOCK, "lock the station now"),
        ("wipe", CommandKind.CRYPTO_WIPE, "crypto-wipe: every keyslot and the data"),
        ("decommission", CommandKind.DECOMMISSION, "wipe and forget the station's identity"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("station")
        if kind is not CommandKind.LOCK:
            p.add_argument("--now", action="store_true", help="even during a call")

        def run(admin: Admin, args: argparse.Namespace, kind: CommandKind = kind) -> Any:
            return admin.command(args, kind)

        p.set_defaults(run=run)

    releases = sub.add_parser("release", help="the station's software").add_subparsers(
        dest="action", required=True
    )
    build = releases.add_parser("build", help="pack a directory of wheels into a release")
    build.add_argument("wheels", help="the project's wheel and every dependency, for one target")
    build.add_argument("--out", required=True, help="the release archive to write (.tar)")
    build.add_argument("--changelog", help="what changed (IT reads it in 'release list')")
    build.set_defaults(run=None)
    add = releases.add_parser("add", help="put a release archive on the hub")
    add.add_argument("archive")
    add.set_defaults(run=Admin.release_add)
    releases.add_parser("list", help="the releases on the hub").set_defaults(run=Admin.release_list)
    rollout = releases.add_parser(
        "rollout", help="name a release in a layer (signed): a group of stations first"
    )
    rollout.add_argument("version", nargs="?", help="a version or a hash prefix")
    rollout.add_argument("--withdraw", action="store_true", help="remove it from the layer")
    where = rollout.add_mutually_exclusive_group(required=True)
    where.add_argument("--municipality", action="store_true", help="every station")
    where.add_argument("--care-home", metavar="ID")
    where.add_argument("--station", metavar="STATION")
    rollout.set_defaults(run=Admin.release_rollout)

    commands = sub.add_parser("commands", help="recent remote commands and their outcome")
    commands.add_argument("--station")
    commands.add_argument("--limit", type=int, default=30)
    commands.set_defaults(run=Admin.commands)
    audit = sub.add_parser("audit", help="the trail of admin actions")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(run=Admin.audit)
    key = sub.add_parser("key", help="IT's signing key id and the keys stations trust")
    key.set_defaults(run=Admin.key)
    key_actions = key.add_subparsers(dest="action", required=False, metavar="ACTION")
    key_actions.add_parser(
        "resign",
        help="sign every layer again with this key (a rotation's step before the old key goes)",
    ).set_defaults(run=Admin.key_resign)
    return parser


def _release_build(args: argparse.Namespace, out: TextIO) -> int:
    """``release build`` runs on IT's (or the build machine's) side: no hub is touched."""
    try:
        release = build_release(Path(args.wheels), Path(args.out), changelog=args.changelog or "")
    except (ReleaseInvalid, OSError) as exc:
        print(f"kontaktstation admin: {exc}", file=sys.stderr)
        return 2
    print(f"release {release.version}: {args.out}", file=out)
    print(
        f"  sha256 {release.sha256}, {len(release.wheels)} wheels, {release.size} bytes", file=out
    )
    return 0


async def _run(args: argparse.Namespace, service: ProvisioningService, out: TextIO) -> None:
    await service.start()
    try:
        admin = Admin(service, args.actor or getpass.getuser(), out)
        runner: Callable[[Admin, argparse.Namespace], Coroutine[Any, Any, None]] = args.run
        await runner(admin, args)
    finally:
        await service.close()


def main(
    argv: Sequence[str] | None = None,
    *,
    service: ProvisioningService | None = None,
    out: TextIO | None = None,
) -> int:
    """``kontaktstation admin ...``; the exit status. ``service`` and ``out`` are for tests."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    stream = out or sys.stdout
    if args.group == "keygen":
        return _keygen(args.path, stream)
    if args.group == "release" and args.action == "build":
        return _release_build(args, stream)
    if getattr(args, "file", None) is not None:
        try:
            args.layer_text = (
                sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
            )
        except OSError as exc:
            print(f"kontaktstation admin: {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
    if service is None:
        from hub.provisioning.api import open_provisioning
        from hub.settings import HubSettings

        overrides: dict[str, Any] = {}
        if args.data_dir is not None:
            overrides["data_dir"] = args.data_dir
        try:
            try:
                settings = HubSettings.from_env(**overrides)
            except ValidationError:
                settings = HubSettings.from_env(
                    **overrides, station_token=None, allow_shared_station_token=False
                )
        except ValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"]) or "settings"
                print(f"kontaktstation admin: {where}: {error['msg']}", file=sys.stderr)
            return 2
        try:
            signer = _load_signer(args, settings.data_dir)
            service = open_provisioning(settings, SystemClock(), signer=signer)
        except HubError as exc:
            print(f"kontaktstation admin: {exc}", file=sys.stderr)
            return 2
    try:
        asyncio.run(_run(args, service, stream))
    except HubError as exc:
        print(f"kontaktstation admin: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"kontaktstation admin: {exc}", file=sys.stderr)
        return 1
    return 0
