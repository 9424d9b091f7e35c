"""Issue 14, item 3: signed commands expire, and a hub taken over changes nothing.

A real hub and a real stationd with its agent. First the attacker holds the hub's database
and commands IT once signed but out of their time — one issued eight days ago (held back, or
captured and replayed under a new id) and one dated tomorrow (made in advance to be used
later). The station refuses both on its own clock (English log line, the refusal acknowledged
to the hub as ``refused``/``expired``), and stays unlocked; a current command still locks it.
Then the attacker holds the whole hub: IT's key is nowhere in its data directory, the
configuration and the commands the attacker signs with a key of their own are refused by the
station, and the layers they leave in the database are refused by IT's admin instead of being
signed onwards.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from hub.db import Tx
from hub.provisioning.api import open_provisioning
from hub.provisioning.errors import LayerNotSigned
from hub.provisioning.keys import ITSigningKey
from provisioning.protocol import b64decode, b64encode, canonical_json, seal_envelope
from provisioning.schema import CommandKind, CommandPayload
from station.core.clock import SystemClock
from station.storage.store import new_id
from tests.integration.daemon_harness import provisioned_daemon, uds_client
from tests.integration.hub_server import it_key, provisioning_hub, running_hub
from tests.integration.test_provisioning_daemon import PIN, until


async def queue_signed(admin: object, key: ITSigningKey, payload: CommandPayload) -> None:
    """What whoever holds IT's key and the hub's database can do: queue any signed command."""
    envelope = seal_envelope(key.private_key, "command", payload.model_dump(mode="json"))

    def work(tx: Tx) -> None:
        admin._insert_command(tx, payload, envelope)  # type: ignore[attr-defined]

    await admin.db.run(work)  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_stale_and_future_commands_are_refused_and_reported(
    tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub_dir = tmp_path / "hub"
    async with provisioning_hub(hub_dir) as (hub, admin):
        key = it_key(hub.settings)
        async with provisioned_daemon(data_dir, hub.base_url) as daemon:
            agent = daemon.provisioning
            await until(lambda: agent.status == "pending")
            await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 4", "it")
            agent.wake()
            await until(lambda: agent.config_store.version > 0)
            station_id = agent.identity.station_id
            _staff, code, _ = await admin.issue_staff_code(station_id, "Eva", "it")
            _staff_id, number = await agent.enroll_staff(code, PIN)
            http = uds_client(daemon.config.socket_path)
            try:
                unlocked = await http.post("/v1/unlock", json={"staff_number": number, "pin": PIN})
                assert unlocked.status_code == 200, unlocked.text
            finally:
                await http.aclose()
            assert not daemon.service.session.is_locked

            now = SystemClock().now()
            stale = CommandPayload(
                command_id=new_id(),
                station_id=station_id,
                kind=CommandKind.LOCK,
                issued_at=now - timedelta(days=8),
            )
            future = CommandPayload(
                command_id=new_id(),
                station_id=station_id,
                kind=CommandKind.LOCK,
                issued_at=now + timedelta(days=1),
            )
            await queue_signed(admin, key, stale)
            await queue_signed(admin, key, future)
            with caplog.at_level(logging.ERROR, logger="provisioning.agent"):
                await agent.heartbeat_once()
            assert not daemon.service.session.is_locked, "an out-of-time command ran"
            by_id = {c.command_id: c for c in await admin.commands(station_id)}
            assert (by_id[stale.command_id].outcome, by_id[stale.command_id].detail) == (
                "refused",
                "expired",
            )
            assert (by_id[future.command_id].outcome, by_id[future.command_id].detail) == (
                "refused",
                "issued_in_future",
            )
            assert f"command {stale.command_id} (lock) refused: expired" in caplog.text
            assert f"command {future.command_id} (lock) refused: issued in future" in (caplog.text)

            # A current command still works.
            await admin.issue_command(station_id, CommandKind.LOCK, "it")
            await agent.heartbeat_once()
            assert daemon.service.session.is_locked


@pytest.mark.slow
async def test_a_hub_taken_over_cannot_change_the_station(tmp_path: Path, data_dir: Path) -> None:
    """Issue 14 item 3: whoever holds the whole hub — its database, its data directory, its
    process — holds no key a station obeys, and cannot get IT to sign a change onwards."""
    hub_dir = tmp_path / "hub"
    async with running_hub(hub_dir) as hub:
        admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
        await admin.start()
        try:
            await admin.set_layer("care_home", "solhaven", {}, "it")
            async with provisioned_daemon(data_dir, hub.base_url) as daemon:
                agent = daemon.provisioning
                await until(lambda: agent.status == "pending")
                await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 5", "it")
                agent.wake()
                await until(lambda: agent.config_store.version > 0)
                pinned = agent.config_store.trusted_keys
                version = agent.config_store.version
        finally:
            await admin.close()
    it_private = it_key(hub.settings).private_key.private_bytes_raw()
    # Nothing on the hub holds IT's key: a byte search of everything in its data directory.
    for path in hub_dir.rglob("*"):
        if path.is_file():
            assert it_private not in path.read_bytes(), path
    # The attacker: the same data directory and database, and a signing key of their own.
    evil_key = ITSigningKey.generate(tmp_path / "evil.key")
    async with running_hub(hub_dir) as hub:
        evil = open_provisioning(hub.settings, SystemClock(), signer=evil_key)
        await evil.start()
        try:
            async with provisioned_daemon(data_dir, hub.base_url) as daemon:
                agent = daemon.provisioning
                await until(lambda: agent.status == "approved")
                station_id = agent.identity.station_id
                await evil.set_layer(
                    "care_home", "solhaven", {"timeouts": {"idle_lock_seconds": 3600}}, "evil"
                )
                await evil.issue_command(station_id, CommandKind.LOCK, "evil")
                await agent.heartbeat_once()
                await agent.heartbeat_once()
                assert agent.config_store.version == version
                assert agent.config_store.trusted_keys == pinned
                assert agent.config_store.current.config.timeouts.idle_lock_seconds != 3600
                # IT sees the refusal: the station says so in its heartbeat.
                assert agent.config_store.rejected_reason() == "bad_signature"
                record = await evil.get_station(station_id)
                assert record.config_rejected == "bad_signature"
                (command,) = await evil.commands(station_id)
                assert command.state == "pending"  # never acknowledged: refused unread
        finally:
            await evil.close()
    # The attacker's layer is still in the database. The next time IT signs anything for
    # the station, the admin refuses to merge it instead of signing it onwards.
    admin = open_provisioning(hub.settings, SystemClock(), signer=it_key(hub.settings))
    await admin.start()
    try:
        with pytest.raises(LayerNotSigned, match="care_home:solhaven"):
            await admin.issue_staff_code(station_id, "Eva", "it")
        # A layer edited in place (the attacker keeps IT's envelope, changes its data) too.
        await admin.set_layer("care_home", "solhaven", {}, "it")

        def tamper(tx: Tx) -> None:
            (stored,) = tx.one("SELECT data_json FROM prov_layers WHERE scope = 'care_home'")
            envelope = json.loads(stored)
            payload = json.loads(b64decode(envelope["payload"]))
            payload["data"] = {"timeouts": {"idle_lock_seconds": 3600}}
            envelope["payload"] = b64encode(canonical_json(payload))
            tx.execute("UPDATE prov_layers SET data_json = ?", (json.dumps(envelope),))

        await admin.db.run(tamper)
        with pytest.raises(LayerNotSigned, match="does not verify"):
            await admin.set_layer("station", station_id, {"language": "da"}, "it")
    finally:
        await admin.close()
