"""A release from IT's hands to the station's updater (issue 15 item 3), through the real
hub over HTTP, ``kontaktstation admin`` as IT runs it, and stationd's agent in a running
stationd: build → add to the hub → roll out to one station (a group of one, first) → the
station fetches it through its signed requests, checks it against the hash IT signed and,
locked with no call, hands it to the updater → the updater verifies IT's signature itself,
installs it for real beside the running release → a failed health check rolls back → the
heartbeat and ``admin stations show`` say so, and the station does not ask again.

The updater's system seams (restarting units, their state) are recorded here; they run for
real in the booted appliance (``tests/vm``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hub.provisioning.keys import ITSigningKey
from provisioning.updater import STATUS_FILE, Updater, UpdaterSettings
from provisioning.updates import KEYCHAIN_FILE, REQUEST_FILE, KeyChain, UpdateRequest, read_status
from station.storage.datadir import DataDir
from tests.integration.daemon_harness import PROVISIONING_TEST_KDF, provisioned_daemon
from tests.integration.hub_server import it_key, provisioning_hub
from tests.integration.test_provisioning_daemon import until
from tests.releases import make_wheel

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def admin(hub_dir: Path, *args: str) -> str:
    """``kontaktstation admin`` as IT runs it, with IT's own key (a file off the hub; a
    ``--signing-key`` among ``args`` comes later and wins)."""
    key = hub_dir.parent / f"{hub_dir.name}.it-signing.key"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kontaktstation"), "admin", "--actor", "it-test",
         "--signing-key", str(key), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KONTAKTSTATION_HUB_DATA_DIR": str(hub_dir), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def approved(daemon: Any, service: Any) -> Any:
    """The daemon's agent once IT pre-authorised the station and its first configuration is in
    force."""
    agent = daemon.provisioning
    assert agent is not None and agent.identity is not None
    await until(lambda: agent.status == "pending")
    await service.preauthorise(agent.identity.fingerprint, "solhaven", "Stue 1", "it")
    agent.wake()
    await until(lambda: agent.config_store is not None and agent.config_store.version > 0)
    return agent


async def test_a_release_goes_from_it_to_the_updater_and_a_failed_one_is_not_asked_for_again(
    tmp_path: Path, data_dir: Path
) -> None:
    hub_dir = tmp_path / "hub"
    status = tmp_path / "update-state" / STATUS_FILE
    spool = DataDir(data_dir).updates
    provisioning = {
        "kdf_params": PROVISIONING_TEST_KDF,
        "check_turn": False,
        "update_status": status,
    }
    # The release IT builds: the project's wheel (a stand-in that prints its marker) and a
    # dependency, packed with a lock of their hashes.
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "kontaktstation", "99.1", {"ks_release_probe.py": "MARKER = 'new'\n"})
    make_wheel(wheels, "ks-release-dep", "1.0", {"ks_release_dep.py": "VALUE = 1\n"})
    async with provisioning_hub(hub_dir) as (hub, service):
        built = admin(hub_dir, "release", "build", str(wheels), "--out", str(tmp_path / "r.tar"),
                      "--changelog", "Faster call set-up")  # fmt: skip
        assert "release 99.1" in built
        added = admin(hub_dir, "release", "add", str(tmp_path / "r.tar"))
        sha256 = added.split("sha256 ")[1].split()[0]
        assert "99.1" in admin(hub_dir, "release", "list")

        daemon_config = {"provisioning": provisioning}
        async with provisioned_daemon(data_dir, hub.base_url, config=daemon_config) as daemon:
            agent = await approved(daemon, service)
            assert agent.identity is not None
            station_id = agent.identity.station_id
            assert not spool.exists() or not any(spool.iterdir())

            # Rolled out to this one station first (its own layer), signed by IT.
            out = admin(hub_dir, "release", "rollout", "99.1", "--station", station_id)
            assert "1 station(s) get a new configuration" in out
            agent.wake()
            await until(lambda: (spool / REQUEST_FILE).exists(), within=60)

            # What stationd handed over: the archive IT's hash names, and the signed
            # configuration naming it.
            request = UpdateRequest.model_validate_json((spool / REQUEST_FILE).read_bytes())
            assert request.release.version == "99.1" and request.release.sha256 == sha256
            assert (spool / request.archive).read_bytes() == (tmp_path / "r.tar").read_bytes()
            assert agent.releases.report is not None
            assert agent.releases.report.state == "installing"

            # The updater (as root would run it), trusting only IT's key from the set-up. The
            # new stationd never becomes healthy: the release is rolled back.
            it_public = ITSigningKey.load(hub_dir.parent / f"{hub_dir.name}.it-signing.key")
            assert it_public.public_key == it_key(hub.settings).public_key
            prefix = tmp_path / "opt"
            (prefix / "releases/setup/venv").mkdir(parents=True)
            (prefix / "venv").symlink_to(prefix / "releases/setup/venv")
            restarts: list[Sequence[str]] = []
            markers: list[str] = []

            def restart(units: Sequence[str]) -> None:
                # What the units would start from now: the link's venv, the release's code
                # (the stand-in set-up release has no Python: only the first is probed).
                restarts.append(units)
                if len(restarts) > 1:
                    return
                probe = subprocess.run(
                    [str(prefix / "venv/bin/python"), "-c",
                     "import ks_release_probe as p; print(p.MARKER)"],
                    capture_output=True, text=True, timeout=60, check=False,
                )  # fmt: skip
                markers.append(probe.stdout.strip() or probe.stderr.strip()[-80:])

            clock = [0.0]
            updater = Updater(
                UpdaterSettings(
                    spool=spool, state=status.parent, prefix=prefix,
                    it_keys=it_public.trusted_b64(), python=sys.executable,
                    health_seconds=10, settle_seconds=2, poll_seconds=1,
                ),
                state_of=lambda: "locked",
                restart=restart,
                unit=lambda _name: ("activating", 0, f"invocation-{len(restarts)}"),
                sleep=lambda s: clock.__setitem__(0, clock[0] + s),
                clock=lambda: clock[0],
            )  # fmt: skip
            assert await asyncio.to_thread(updater.run_once) == "rolled_back"
            assert len(restarts) == 2
            # Installed for real and switched in (its code ran from the link), then switched
            # back and removed.
            assert markers[0] == "new"
            assert (prefix / "venv").readlink() == prefix / "releases/setup/venv"
            assert not (prefix / f"releases/99.1-{sha256[:12]}").exists()
            outcome = read_status(status)
            assert outcome is not None and outcome.outcome == "rolled_back"

            # The next heartbeat says so; the station tidies its spool and does not ask again.
            agent.wake()
            await until(
                lambda: (
                    agent.releases.report is not None
                    and agent.releases.report.state == "rolled_back"
                )
            )
            agent.wake()
            await until(lambda: not any(spool.iterdir()))
            await agent.heartbeat_once()
            assert not (spool / REQUEST_FILE).exists()
            shown = admin(hub_dir, "stations", "show", station_id)
            assert "99.1 rolled_back (health_check)" in shown
            listed = admin(hub_dir, "stations", "list")
            assert "(99.1 rolled_back)" in listed


async def test_a_key_rotation_between_two_releases_reaches_the_updater(
    tmp_path: Path, data_dir: Path
) -> None:
    """IT rotates its key between two releases with ``kontaktstation admin key resign``: a
    configuration signed by the old key that also trusts the new one, then one signed by the
    new key alone, neither naming a release. The updater, which trusts the old key (the
    set-up pinned it; the first release's configuration kept it), never saw either; stationd
    hands them over with the next release (``UpdateRequest.chain``) and the updater follows
    them link by link and installs the release the new key signed."""
    hub_dir = tmp_path / "hub"
    status = tmp_path / "update-state" / STATUS_FILE
    spool = DataDir(data_dir).updates
    provisioning = {"kdf_params": PROVISIONING_TEST_KDF, "check_turn": False,
                    "update_status": status}  # fmt: skip
    new_key = tmp_path / "it-2.key"
    admin(hub_dir, "keygen", str(new_key))
    new_public = ITSigningKey.load(new_key).trusted_b64()[0]
    archives = {}
    for version, marker in (("99.1", "first"), ("99.2", "second")):
        wheels = tmp_path / f"wheels-{version}"
        probe = {"ks_release_probe.py": f"MARKER = {marker!r}\n"}
        make_wheel(wheels, "kontaktstation", version, probe)
        make_wheel(wheels, "ks-release-dep", "1.0", {"ks_release_dep.py": "VALUE = 1\n"})
        archives[version] = tmp_path / f"r-{version}.tar"
        admin(hub_dir, "release", "build", str(wheels), "--out", str(archives[version]))
    async with provisioning_hub(hub_dir) as (hub, service):
        for archive in archives.values():
            admin(hub_dir, "release", "add", str(archive))
        async with provisioned_daemon(
            data_dir, hub.base_url, config={"provisioning": provisioning}
        ) as daemon:
            agent = await approved(daemon, service)
            assert agent.identity is not None
            store = agent.config_store
            assert store is not None
            station_id = agent.identity.station_id
            old_public = it_key(hub.settings).trusted_b64()
            updater = _installing_updater(spool, status, tmp_path / "opt", old_public)

            async def handed_over(version: str) -> UpdateRequest:
                agent.wake()
                await until(lambda: _requested(spool) == version, within=60)
                return UpdateRequest.model_validate_json((spool / REQUEST_FILE).read_bytes())

            # The first release, signed by the old key: installed, no key change to follow.
            admin(hub_dir, "release", "rollout", "99.1", "--station", station_id)
            await handed_over("99.1")
            assert not (spool / KEYCHAIN_FILE).exists()
            assert await asyncio.to_thread(updater.run_once) == "installed"
            # What the units' restart does on a station: stationd runs the release now.
            agent.releases.running = "99.1"
            (spool / REQUEST_FILE).unlink(missing_ok=True)  # asked again before it knew

            # The rotation as IT runs it: the new key announced under the old one; every
            # layer signed again by the new key; the old key dropped. No release named.
            admin(hub_dir, "--also-trust", new_public, "key", "resign")
            agent.wake()
            await until(lambda: set(store.trusted_keys) == {*old_public, new_public})
            admin(hub_dir, "--signing-key", str(new_key), "--also-trust", old_public[0],
                  "key", "resign")  # fmt: skip
            admin(hub_dir, "--signing-key", str(new_key), "key", "resign")
            agent.wake()
            await until(lambda: store.trusted_keys == (new_public,))

            # The second release, signed by the new key: the chain comes with it.
            admin(hub_dir, "--signing-key", str(new_key), "release", "rollout", "99.2",
                  "--station", station_id)  # fmt: skip
            await handed_over("99.2")
            chain = KeyChain.model_validate_json((spool / KEYCHAIN_FILE).read_bytes())
            assert len(chain.links) == 2
            assert await asyncio.to_thread(updater.run_once) == "installed"
            assert _marker(tmp_path / "opt") == "second"


def _requested(spool: Path) -> str | None:
    try:
        request = UpdateRequest.model_validate_json((spool / REQUEST_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return request.release.version


def _marker(prefix: Path) -> str:
    probe = subprocess.run(
        [str(prefix / "venv/bin/python"), "-c", "import ks_release_probe as p; print(p.MARKER)"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return probe.stdout.strip() or probe.stderr.strip()[-80:]


def _installing_updater(
    spool: Path, status: Path, prefix: Path, it_keys: tuple[str, ...]
) -> Updater:
    """The updater as root runs it, trusting ``it_keys`` (the set-up's ``--it-key``); the
    station's units come back healthy (their restart and state are the booted appliance's)."""
    (prefix / "releases/setup/venv").mkdir(parents=True)
    (prefix / "venv").symlink_to(prefix / "releases/setup/venv")
    restarts: list[Sequence[str]] = []
    clock = [0.0]
    return Updater(
        UpdaterSettings(
            spool=spool, state=status.parent, prefix=prefix, it_keys=it_keys,
            python=sys.executable, health_seconds=10, settle_seconds=2, poll_seconds=1,
        ),
        state_of=lambda: "locked",
        restart=restarts.append,
        unit=lambda _name: ("active", 0, f"invocation-{len(restarts)}"),
        sleep=lambda s: clock.__setitem__(0, clock[0] + s),
        clock=lambda: clock[0],
    )  # fmt: skip
