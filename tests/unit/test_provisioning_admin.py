"""``kontaktstation admin``: every sub-command on a real SQLite database, output as IT sees it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.admin import format_table, main
from hub.db import SqliteDatabase
from hub.provisioning.keys import HubSigningKey
from hub.provisioning.service import ProvisioningService
from provisioning.protocol import b64encode, fingerprint, public_key_bytes, station_id_for
from provisioning.schema import EnrollRequest
from station.core.clock import SystemClock

ROOT = Path(__file__).resolve().parents[2]


def service(hub_dir: Path) -> ProvisioningService:
    key = HubSigningKey.load_or_create(hub_dir / "provisioning.key")
    return ProvisioningService(SqliteDatabase(hub_dir / "provisioning.sqlite3"), key, SystemClock())


def admin(hub_dir: Path, *argv: str) -> str:
    out = io.StringIO()
    assert main(["--actor", "it-anna", *argv], service=service(hub_dir), out=out) == 0
    return out.getvalue()


async def _enroll(hub_dir: Path, public: bytes) -> None:
    svc = service(hub_dir)
    await svc.start()
    try:
        now = int(svc.clock.now().timestamp())
        record = await svc.authenticate(public, 1, now, b"x" * 32, enrolling=True)
        await svc.enroll(public, 1, b"x" * 32, record, EnrollRequest(software_version="0.1.0"))
    finally:
        await svc.close()


def test_format_table_aligns_columns() -> None:
    text = format_table(["A", "LONGER"], [["xx", "y"], ["z", "wwwwwww"]])
    lines = text.splitlines()
    assert lines[0] == "A   LONGER"
    assert lines[1] == "--  -------"
    assert lines[3] == "z   wwwwwww"


def test_admin_cli_end_to_end(tmp_path: Path) -> None:
    hub_dir = tmp_path / "hub"
    public = public_key_bytes(Ed25519PrivateKey.generate())
    station_id = station_id_for(public)

    out = admin(hub_dir, "preauthorise", fingerprint(public), "--care-home", "solhaven",
                "--name", "Stue 1")  # fmt: skip
    assert station_id in out
    listing = admin(hub_dir, "stations", "list")
    assert "preauthorised" in listing and "Stue 1" in listing and "STATUS" in listing

    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps({"care_home": {"name": "Solhaven"}, "language": "da"}))
    assert "care_home layer stored" in admin(
        hub_dir, "config", "set", "--care-home", "solhaven", str(layer)
    )
    asyncio.run(_enroll(hub_dir, public))  # the station calls in: accepted, configured
    listing = admin(hub_dir, "stations", "list")
    assert "approved" in listing and "0/1" in listing
    shown = json.loads(admin(hub_dir, "config", "show", "--station", station_id[:8]))
    assert shown["care_home"] == {"id": "solhaven", "name": "Solhaven"}

    secret_layer = tmp_path / "turn.json"
    secret_layer.write_text(
        json.dumps(
            {
                "ice_servers": [
                    {
                        "urls": ["turn:turn.example:3478"],
                        "username": "u",
                        "credential": "s3cret-turn",
                    }
                ]
            }
        )
    )
    out = admin(hub_dir, "config", "set", "--municipality", str(secret_layer))
    assert station_id in out and "version 2" in out
    shown_text = admin(hub_dir, "config", "show", "--station", fingerprint(public))
    assert "s3cret-turn" not in shown_text and "********" in shown_text
    raw_layer = admin(hub_dir, "config", "show", "--municipality")
    assert "s3cret-turn" not in raw_layer and "********" in raw_layer
    assert "version 1" in admin(hub_dir, "config", "rollback", station_id, "--to", "1")

    issued = admin(hub_dir, "staff", "issue", "--station", station_id, "--name", "Anna Jensen")
    code = re.search(r"code\s+(\S{4}-\S{4})", issued)
    staff = re.search(r"staff id\s+(\S+)", issued)
    assert code and staff
    staff_list = admin(hub_dir, "staff", "list")
    assert "Anna Jensen" in staff_list and "code issued" in staff_list
    assert "revoked" in admin(hub_dir, "staff", "revoke", staff.group(1))

    assert "lock queued" in admin(hub_dir, "lock", station_id)
    assert "waits for a running call" in admin(hub_dir, "wipe", station_id)
    assert "decommission queued" in admin(hub_dir, "decommission", station_id, "--now")
    commands = admin(hub_dir, "commands")
    assert commands.count("pending") == 3 and "crypto_wipe" in commands

    trail = admin(hub_dir, "audit")
    for action in ("preauthorise", "set_config", "rollback", "staff_code_issued",
                   "staff_revoked", "command_lock", "command_crypto_wipe"):  # fmt: skip
        assert action in trail
    assert "it-anna" in trail
    assert "Anna Jensen" not in trail  # the trail names the pseudonym only
    detail = admin(hub_dir, "stations", "show", station_id)
    assert "fingerprint" in detail and fingerprint(public) in detail
    assert "key id" in admin(hub_dir, "key")
    assert b64encode(public) not in detail


def test_admin_refuses_bad_input_with_a_message(tmp_path: Path) -> None:
    hub_dir = tmp_path / "hub"
    err = io.StringIO()
    out = io.StringIO()
    with pytest.raises(SystemExit):
        main(["lock", "nosuchstation"], service=service(hub_dir), out=out)
    status = main(["approve", "ABCD-EFGH", "--care-home", "x", "--name", "y"],
                  service=service(hub_dir), out=err)  # fmt: skip
    assert status == 1


def test_admin_runs_as_a_command_with_the_hub_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KONTAKTSTATION_HUB_DATA_DIR": str(tmp_path / "hub"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("KONTAKTSTATION_HUB_STATION_TOKEN", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from hub.admin import main; sys.exit(main())",
            "stations",
            "list",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "0 station(s)" in result.stdout
    assert (tmp_path / "hub" / "provisioning.key").stat().st_mode & 0o777 == 0o600
