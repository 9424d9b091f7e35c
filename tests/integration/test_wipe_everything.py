"""Issue 14, item 2: a remote crypto-wipe (and a decommission) leaves nothing that opens a note.

A real hub, a real stationd with its provisioning agent, a data directory filled as a station
fills it: IT's signed configuration (with an EOJ endpoint and its client secret), a staff
member enrolled through the agent, residents and a note sealed through the staff UI's unlock
hand-over, a wrong PIN under a made-up id, and a wrap-up note with a CPR number waiting in the
outbox (the EOJ is unreachable, so it stays pending). Then IT's command goes through the hub,
the agent runs it on a heartbeat, and stationd restarts as systemd would restart it.

The attacker's step is :func:`attacker_opens_pending_notes`: with a copy of the data directory
they open every note in ``outbox.db`` with ``outbox.key``. Before the wipe it reads the CPR
number (so the test can fail); after it, nothing. The directory is listed after each phase,
and every file found before the wipe must be named by ``DataDir.inventory()`` (or be the
audit log), so a file added later without a place in the wipe list fails here.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hub.provisioning.api import open_provisioning
from provisioning.protocol import b64encode
from provisioning.schema import CommandKind
from station.core.clock import SystemClock
from station.core.cpr import parse_cpr
from station.core.model import Resident, WithCpr
from station.export import seal_export
from station.export.payload import export_context
from station.keys.boxes import open_sealed_box
from station.keys.keyring import generate_escrow_keypair
from station.keys.records import ConsultationKey, seal_entry
from station.keys.vault import VaultKey
from station.storage.datadir import DataDir, Holds, sqlite_family
from station.storage.store import Clinic, new_id
from tests.integration.daemon_harness import provisioned_daemon, uds_client
from tests.integration.hub_server import it_key, running_hub
from tests.integration.test_export_delivery import CPR, NAME, NOTE, payload
from tests.integration.test_provisioning_daemon import until

PIN = "839201746553"
CLIENT_SECRET = "eoj-client-secret-8c1f0e2a77d94b1b"
#: Nothing listens on the discard port: deliveries fail and the note stays pending.
UNREACHABLE = "http://127.0.0.1:9"


def attacker_opens_pending_notes(copy: Path) -> list[str]:
    """Everything a holder of a copy of the data directory reads from the outbox."""
    key_file, db_file = copy / DataDir.OUTBOX_KEY, copy / DataDir.OUTBOX
    if not key_file.exists() or not db_file.exists():
        return []
    private = X25519PrivateKey.from_private_bytes(key_file.read_bytes())
    db = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT id, consultation_id, sealed FROM exports WHERE sealed IS NOT NULL"
        ).fetchall()
    finally:
        db.close()
    opened = []
    for export_id, consultation_id, sealed in rows:
        with contextlib.suppress(Exception):
            context = export_context(export_id, consultation_id)
            opened.append(open_sealed_box(private, sealed, context).decode())
    return opened


def listing(root: Path) -> set[str]:
    """Every file under ``root``, relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def named(root: Path) -> set[str]:
    """What the inventory names (files, and the files now in its directories)."""
    names = set()
    for entry in DataDir(root).inventory():
        if entry.directory:
            names |= {str(p.relative_to(root)) for p in entry.path.glob("*") if p.is_file()}
        else:
            names.add(str(entry.path.relative_to(root)))
    return names


KEPT = {str(p.name) for p in sqlite_family(Path(DataDir.AUDIT))}


async def fill_station(data_dir: Path, hub_url: str, admin: object, kind: CommandKind) -> None:
    """Everything a station in use has, then IT's command through the hub."""
    async with provisioned_daemon(data_dir, hub_url) as daemon:
        agent = daemon.provisioning
        await until(lambda: agent.status == "pending")
        await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 9", "it")  # type: ignore[attr-defined]
        agent.wake()
        await until(lambda: agent.config_store.version > 0)
        await until(lambda: (data_dir / DataDir.EXPORT_CONFIG).exists())
        _staff, code, _ = await admin.issue_staff_code(agent.identity.station_id, "Eva", "it")  # type: ignore[attr-defined]
        _staff_id, number = await agent.enroll_staff(code, PIN)
        http = uds_client(daemon.config.socket_path)
        try:
            # A stranger's wrong PIN (the counters file gets a row).
            await http.post("/v1/unlock", json={"staff_number": "9999", "pin": "000000"})
            unlocked = await http.post("/v1/unlock", json={"staff_number": number, "pin": PIN})
            assert unlocked.status_code == 200, unlocked.text
            body = unlocked.json()
            auth = {"Authorization": f"Bearer {body['token']}"}
            service = daemon.service
            await service.db(
                service.store.put_clinic,
                Clinic(id="clinic-x", name="Lægehuset", provider_number="057584", video_room="r-x"),
            )
            consultation_id = "cons-cccc1"
            start = datetime.now(UTC)
            await service.db(
                service.store.create_consultation,
                consultation_id=consultation_id,
                clinic_id="clinic-x",
                starts_at=start,
                ends_at=start + timedelta(minutes=15),
                consultation_type="assisted_consultation",
            )
            # Sealed as the staff UI seals, with the vault key stationd handed over.
            with VaultKey(bytearray(base64.b64decode(body["vault_key"]))) as vault:
                key, wrapped = ConsultationKey.new(vault, consultation_id)
                await service.db(service.store.put_consultation_key, consultation_id, wrapped)
                entry_id = new_id()
                resident = Resident(entry_id, WithCpr(parse_cpr(CPR), NAME, room="Stue 9"))
                await service.db(
                    service.store.add_entry,
                    entry_id=entry_id,
                    consultation_id=consultation_id,
                    sealed=seal_entry(key, entry_id, resident, "Feber"),
                )
                key.zero()
            settings = (await http.get("/v1/exports/settings", headers=auth)).json()
            assert settings["delivery"] == "fhir"
            p = payload(consultation_id=consultation_id)
            sealed = seal_export(p, base64.b64decode(settings["outbox_public_key"]))
            queued = await http.post(
                "/v1/exports",
                headers=auth,
                json={
                    "export_id": p.export_id,
                    "consultation_id": p.consultation_id,
                    "entry_id": p.entry_id,
                    "sealed": base64.b64encode(sealed).decode(),
                },
            )
            assert queued.status_code == 201, queued.text
            await http.post("/v1/lock", json={})
        finally:
            await http.aclose()
        await agent.heartbeat_once()

        # The attacker's copy before the wipe: the pending note opens, CPR and all.
        before = data_dir.parent / "copy-before"
        shutil.copytree(data_dir, before)
        notes = attacker_opens_pending_notes(before)
        assert any(CPR in note and NOTE in note for note in notes), "the attack must work first"
        # Every file the station wrote has a place in the one list (or is the audit log).
        unnamed = listing(data_dir) - named(data_dir) - KEPT
        assert not unnamed, f"files not in DataDir.inventory(): {sorted(unnamed)}"

        await admin.issue_command(agent.identity.station_id, kind, "it")  # type: ignore[attr-defined]
        # The agent's own loop may fetch the command first (stationd's lock wakes it): either
        # way the next heartbeat runs it, and stationd asks to be restarted.
        agent.wake()
        await until(lambda: daemon.restart_requested)


@pytest.mark.slow
@pytest.mark.parametrize("kind", [CommandKind.CRYPTO_WIPE, CommandKind.DECOMMISSION])
async def test_remote_wipe_leaves_nothing_that_opens_a_pending_note(
    tmp_path: Path, data_dir: Path, kind: CommandKind
) -> None:
    decommission = kind is CommandKind.DECOMMISSION
    async with running_hub(tmp_path / "hub") as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        _private, escrow = generate_escrow_keypair()
        eoj = {
            "fhir_base_url": f"{UNREACHABLE}/fhir",
            "token_url": f"{UNREACHABLE}/token",
            "client_id": "kontaktstation",
            "client_secret": CLIENT_SECRET,
            "care_home_sor": "123456789012345",
            "timeout_seconds": 1,
            "allow_insecure_loopback": True,
        }
        await admin.set_layer(
            "care_home",
            "solhaven",
            {"escrow_public_key": b64encode(escrow), "allow_file_device_secret": True, "eoj": eoj},
            "it",
        )
        try:
            await fill_station(data_dir, hub.base_url, admin, kind)
        finally:
            await admin.close()

    secrets_before = {
        name: (data_dir.parent / "copy-before" / name).read_bytes()
        for name in (DataDir.DEVICE_SECRET, DataDir.OUTBOX_KEY, "provisioning/identity.key")
    }

    # Phase 1 (stationd stopped as it asked): the copy holds no key, no secret, no note.
    after_command = listing(data_dir)
    gone_now = {
        str(f.path.relative_to(data_dir))
        for f in DataDir(data_dir).wipe_list(decommission=decommission)
        if not f.open_while_running and not f.directory and (f.holds is not Holds.IDENTITY)
    }
    assert not (after_command & gone_now), sorted(after_command & gone_now)
    assert not [
        n
        for n in after_command
        if n.startswith("provisioning/config/") and not n.endswith(DataDir.CONFIG_STATE)
    ]
    assert attacker_opens_pending_notes(data_dir) == []

    # The restart (the hub is gone: nothing is pulled again): the wipe finishes first.
    async with provisioned_daemon(data_dir, "http://127.0.0.1:9"):
        pass
    after = listing(data_dir)
    print(f"{kind.value}: before {sorted(listing(data_dir.parent / 'copy-before'))}")
    print(f"{kind.value}: after {sorted(after)}")
    assert DataDir.WIPE_MARKER not in after
    assert DataDir.EXPORT_CONFIG not in after
    assert DataDir.CALL_ROOMS not in after
    assert DataDir.KEYSLOTS not in after and DataDir.DEVICE_SECRET not in after
    assert attacker_opens_pending_notes(data_dir) == []
    # Whatever stationd made afresh at its start holds none of the old secrets or data.
    everything = b"".join((data_dir / name).read_bytes() for name in after)
    for what, secret in secrets_before.items():
        if what == "provisioning/identity.key" and not decommission:
            continue  # a crypto-wipe keeps the station enrolled
        assert secret not in everything, f"{what} survived the wipe"
    for needle in (CPR, NAME, NOTE, CLIENT_SECRET):
        assert needle.encode() not in everything
    config_files = [n for n in after if n.startswith("provisioning/config/")]
    if decommission:
        assert "provisioning/identity.key" not in after or (
            (data_dir / "provisioning/identity.key").read_bytes()
            != secrets_before["provisioning/identity.key"]
        )
    else:
        # IT's pinned keys stay (the station verifies its next configuration as before).
        assert config_files == ["provisioning/config/state.json"]
        assert b"trusted_keys" in (data_dir / "provisioning/config/state.json").read_bytes()
