"""Issue 14, item 6: a rewritten audit log raises the hub's alarm.

A real hub and a real stationd whose agent sends signed audit heads. The station's audit log
(``audit.db``, the real file) gets entries and the hub anchors its head. Then the attacker,
with the SD card: stationd stopped, one entry deleted from the *middle*, every later entry
renumbered and re-chained, so ``AuditLog.verify()`` passes and the log even grows past the
anchored seq again. stationd starts; within two heartbeats the hub sees that the entry at its
anchored seq is no longer the one it anchored and raises the alarm: in the heartbeat's answer,
in the hub's history of heads, and in ``kontaktstation admin stations show`` (run as IT runs
it, a process of its own on the hub's data directory).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from station.core.clock import SystemClock
from station.storage.audit import GENESIS_HASH, AuditLog, entry_hash
from station.storage.datadir import DataDir
from tests.integration.daemon_harness import provisioned_daemon
from tests.integration.hub_server import provisioning_hub
from tests.integration.test_provisioning_daemon import until

ROOT = Path(__file__).resolve().parents[2]


def rewrite_without(audit_db: Path, victim_seq: int) -> None:
    """The attacker's step: delete entry ``victim_seq``, renumber and re-chain the rest."""
    db = sqlite3.connect(audit_db)
    try:
        rows = db.execute(
            "SELECT seq, time, staff, action, resident, outcome FROM audit_log ORDER BY seq"
        ).fetchall()
        triggers = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).fetchall()
        for (sql,) in triggers:
            name = sql.split()[2]
            db.execute(f"DROP TRIGGER {name}")
        db.execute("DELETE FROM audit_log")
        prev = GENESIS_HASH
        seq = 0
        for old_seq, time, staff, action, resident, outcome in rows:
            if old_seq == victim_seq:
                continue
            seq += 1
            digest = entry_hash(seq, time, staff, action, resident, outcome, prev)
            db.execute(
                "INSERT INTO audit_log (seq, time, staff, action, resident, outcome, "
                "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, time, staff, action, resident, outcome, prev, digest),
            )
            prev = digest
        for (sql,) in triggers:
            db.execute(sql)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def admin_show(hub_dir: Path, station_id: str) -> str:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "kontaktstation"),
            "admin",
            "stations",
            "show",
            station_id,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "KONTAKTSTATION_HUB_DATA_DIR": str(hub_dir), "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
async def test_a_rewritten_middle_entry_raises_the_hubs_alarm(
    tmp_path: Path, data_dir: Path
) -> None:
    hub_dir = tmp_path / "hub"
    async with provisioning_hub(hub_dir) as (hub, admin):
        async with provisioned_daemon(data_dir, hub.base_url) as daemon:
            agent = daemon.provisioning
            await until(lambda: agent.status == "pending")
            await admin.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 3", "it")
            agent.wake()
            await until(lambda: agent.config_store.version > 0)
            station_id = agent.identity.station_id
            for _ in range(6):  # entries in the log (each a remote lock, audited)
                daemon.provisioning_port.audit("remote_lock", None, "done")
            await asyncio.sleep(0.2)
            await agent.heartbeat_once()
            await agent.heartbeat_once()  # proves the first anchor, anchors the head
            record = await admin.get_station(station_id)
            anchored = record.audit_seq
            assert anchored is not None and anchored >= 6
            assert not record.audit_alarm
            # A healthy station keeps extending its anchor: no alarm.
            daemon.provisioning_port.audit("remote_lock", None, "done")
            await asyncio.sleep(0.2)
            await agent.heartbeat_once()
            record = await admin.get_station(station_id)
            assert record.audit_seq == anchored + 1 and not record.audit_alarm
            anchored = record.audit_seq

        # The attacker: a middle entry deleted, the rest renumbered and re-chained.
        audit_db = DataDir(data_dir).audit
        rewrite_without(audit_db, victim_seq=3)
        log = AuditLog.open(data_dir, clock=SystemClock())
        try:
            assert log.verify().ok, "the rewrite must pass verify() on its own"
            assert log.head()[0] == anchored - 1
        finally:
            log.close()

        async with provisioned_daemon(data_dir, hub.base_url) as daemon:
            agent = daemon.provisioning
            await until(lambda: agent.status == "approved")
            # Enough new entries to pass the anchored seq again: truncation alone would
            # not show; only the anchored entry's hash gives the rewrite away.
            for _ in range(4):
                daemon.provisioning_port.audit("remote_lock", None, "done")
            await asyncio.sleep(0.2)
            await agent.heartbeat_once()
            await agent.heartbeat_once()
            record = await admin.get_station(station_id)
            assert record.audit_alarm
            assert record.audit_seq == anchored  # the anchor does not move past a rewrite
            heads = await admin.audit_heads(station_id)
            assert heads[0][3] == "alarm_rewritten"
        shown = admin_show(hub_dir, station_id)
    assert "AUDIT ALARM" in shown and "rewritten" in shown
    assert "AUDIT!" in shown
