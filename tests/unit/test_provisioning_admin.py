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
from hub.provisioning.keys import HubSecret, ITSigningKey
from hub.provisioning.service import ProvisioningService
from provisioning.protocol import b64encode, fingerprint, public_key_bytes, station_id_for
from provisioning.schema import EnrollRequest
from station.core.clock import SystemClock

ROOT = Path(__file__).resolve().parents[2]


def service(hub_dir: Path) -> ProvisioningService:
    secret = HubSecret.load_or_create(hub_dir / "hub.secret")
    key_path = hub_dir.parent / "it-signing.key"
    signer = ITSigningKey.load(key_path) if key_path.exists() else ITSigningKey.generate(key_path)
    return ProvisioningService(
        SqliteDatabase(hub_dir / "provisioning.sqlite3"), secret, SystemClock(), signer=signer
    )


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
    # Version 1 was signed at pre-authorisation, version 2 with the care home's layer.
    assert "approved" in listing and "0/2" in listing
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
    assert station_id in out and "version 3" in out
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
    # A forgotten PIN: a new code for the same person, the old enrollment revoked.
    reissued = admin(hub_dir, "staff", "reissue", staff.group(1))
    new_staff = re.search(r"staff id\s+(\S+)\s+\(replaces (\S+), now revoked\)", reissued)
    new_code = re.search(r"code\s+(\S{4}-\S{4})", reissued)
    assert new_staff and new_code and new_staff.group(2) == staff.group(1)
    assert new_staff.group(1) != staff.group(1) and new_code.group(1) != code.group(1)
    rows = {line.split()[0]: line for line in admin(hub_dir, "staff", "list").splitlines()}
    assert "revoked" in rows[staff.group(1)] and "Anna Jensen" in rows[staff.group(1)]
    assert "code issued" in rows[new_staff.group(1)] and "Anna Jensen" in rows[new_staff.group(1)]
    staff = new_staff
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
    # The hub's own secret, made on first use; no signing key anywhere on the hub.
    assert (tmp_path / "hub" / "hub.secret").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "hub" / "provisioning.key").exists()


def _admin_process(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kontaktstation admin`` as IT runs it: its own process, the hub's settings."""
    full = {
        **os.environ,
        "KONTAKTSTATION_HUB_DATA_DIR": str(tmp_path / "hub"),
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }
    full.pop("KONTAKTSTATION_HUB_STATION_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "kontaktstation.cli", "admin", *argv],
        capture_output=True, text=True, env=full, timeout=60, check=False,
    )  # fmt: skip


def test_it_signing_key_is_made_by_it_and_never_lives_on_the_hub(tmp_path: Path) -> None:
    """Issue 14 item 3: ``keygen`` needs no hub and never overwrites; what signs refuses to run
    without IT's key, and refuses a key kept in the hub's data directory."""
    key = tmp_path / "it" / "signing.key"
    made = _admin_process(tmp_path, "keygen", str(key))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    public = re.search(r"public\s+(\S+)", made.stdout)
    assert public is not None
    before = key.read_bytes()
    again = _admin_process(tmp_path, "keygen", str(key))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    assert key.read_bytes() == before
    assert not (tmp_path / "hub").exists()  # keygen never touched a hub

    # Looking needs no key; signing does, and says how to get one.
    assert _admin_process(tmp_path, "stations", "list").returncode == 0
    station = fingerprint(public_key_bytes(Ed25519PrivateKey.generate()))
    args = ("preauthorise", station, "--care-home", "solhaven", "--name", "Stue 1")
    unsigned = _admin_process(tmp_path, *args)
    assert unsigned.returncode == 1
    assert "--signing-key" in unsigned.stderr and "keygen" in unsigned.stderr
    assert "0 station(s)" in _admin_process(tmp_path, "stations", "list").stdout

    # The same key copied into the hub's data directory is refused.
    on_hub = tmp_path / "hub" / "it.key"
    on_hub.write_bytes(before)
    on_hub.chmod(0o600)
    refused = _admin_process(tmp_path, "--signing-key", str(on_hub), *args)
    assert refused.returncode == 2 and "must not live in the hub" in refused.stderr

    # From the environment, as IT's shell gives it: signed, and `key` shows the public key.
    env = {"KONTAKTSTATION_IT_SIGNING_KEY": str(key)}
    assert _admin_process(tmp_path, *args, env=env).returncode == 0
    shown = _admin_process(tmp_path, "key", env=env).stdout
    assert f"trusted  {public.group(1)}" in shown


def test_the_hub_refuses_to_start_beside_a_signing_key(tmp_path: Path) -> None:
    """A hub upgraded with the old ``provisioning.key`` still in its data directory stops with
    what to do, rather than go on with a key that should be IT's; the old setting too."""
    from hub.app import create_app
    from hub.errors import HubError
    from hub.settings import HubSettings

    hub_dir = tmp_path / "hub"
    hub_dir.mkdir(mode=0o700)
    (hub_dir / "provisioning.key").write_bytes(b"k" * 32)
    settings = HubSettings(data_dir=hub_dir, station_token=None)
    with pytest.raises(HubError, match="Move it to IT's own machine"):
        create_app(settings)
    with pytest.raises(ValueError, match="holds no signing key"):
        HubSettings.from_env(
            {
                "KONTAKTSTATION_HUB_DATA_DIR": str(hub_dir),
                "KONTAKTSTATION_HUB_PROVISIONING_KEY": str(hub_dir / "provisioning.key"),
            }
        )


def test_key_resign_refuses_a_layer_the_keys_given_do_not_verify(tmp_path: Path) -> None:
    """A rotation run out of order: ``key resign`` with the new key B alone, while the layers
    are still A's, refuses and stores nothing (the layers stay A's and A still opens them);
    with ``--also-trust A`` it signs them again, and from then on A alone is refused in turn."""
    keys = {name: tmp_path / "it" / f"{name}.key" for name in ("a", "b")}
    public = {}
    for name, path in keys.items():
        made = _admin_process(tmp_path, "keygen", str(path))
        assert made.returncode == 0, made.stderr
        found = re.search(r"public\s+(\S+)", made.stdout)
        assert found is not None
        public[name] = found.group(1)
    layer = tmp_path / "layer.json"
    layer.write_text(json.dumps({"idle_lock_seconds": 240}))
    with_a = ("--signing-key", str(keys["a"]))
    with_b = ("--signing-key", str(keys["b"]))
    stored = _admin_process(tmp_path, *with_a, "config", "set", "--municipality", str(layer))
    assert stored.returncode == 0, stored.stderr

    def shown(*signer: str) -> subprocess.CompletedProcess[str]:
        return _admin_process(tmp_path, *signer, "config", "show", "--municipality")

    before = shown(*with_a)
    assert before.returncode == 0 and "240" in before.stdout

    refused = _admin_process(tmp_path, *with_b, "key", "resign")
    assert refused.returncode != 0
    assert "does not verify against IT's keys" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert shown(*with_a).stdout == before.stdout  # nothing stored: A still opens the layer
    assert shown(*with_b).returncode != 0

    rotated = _admin_process(tmp_path, *with_b, "--also-trust", public["a"], "key", "resign")
    assert rotated.returncode == 0, rotated.stderr
    assert "240" in shown(*with_b).stdout
    assert _admin_process(tmp_path, *with_a, "key", "resign").returncode != 0
    assert "240" in shown(*with_b).stdout
