"""The updater (issue 15 item 3): install beside, switch in one rename, health-check, roll
back; and trust nothing stationd wrote but IT's signature.

Real: the release archives, ``python -m venv`` and ``pip install --require-hashes`` from the
release's own wheels, the symbolic link and its rename. The seams are the ones that need a
booted system (restarting units, reading their state, stationd's answer): recorded here,
real in the booted appliance (``tests/vm``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provisioning.protocol import SignedEnvelope, b64encode, seal_envelope
from provisioning.release import Release
from provisioning.schema import SoftwareRelease
from provisioning.updater import STATUS_FILE, Updater, UpdaterSettings
from provisioning.updates import KEYCHAIN_FILE, REQUEST_FILE, KeyChain, UpdateRequest, read_status
from tests.releases import make_release

pytestmark = pytest.mark.timeout(300)


def _public(key: Ed25519PrivateKey) -> str:
    return b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


class Rig:
    """A prefix with the set-up's release linked in, stationd's spool, root's state dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.it = Ed25519PrivateKey.generate()
        self.settings = UpdaterSettings(
            spool=root / "var/lib/kontaktstation/updates",
            state=root / "var/lib/kontaktstation-update",
            prefix=root / "opt/kontaktstation",
            it_keys=(_public(self.it),),
            python=sys.executable,
            constraints=root / "etc/kontaktstation/constraints.txt",
            health_seconds=30,
            settle_seconds=3,
            poll_seconds=1,
            idle_poll_seconds=1,
        )
        self.settings.spool.mkdir(parents=True)
        setup = self.settings.prefix / "releases/setup/venv"
        setup.mkdir(parents=True)
        (self.settings.prefix / "venv").symlink_to(setup)
        self.setup_venv = setup
        self.restarts: list[tuple[str, ...]] = []
        #: stationd's session states still to be read when each restart came.
        self.states_left_at_restart: list[int] = []
        self.states: list[str | None] = []
        #: stationd's ActiveState and NRestarts; its InvocationID changes at each restart.
        self.unit = ("active", 0)
        self.now = 0.0

    def updater(self) -> Updater:
        def state_of() -> str | None:
            return self.states.pop(0) if self.states else "locked"

        def restart(units: Sequence[str]) -> None:
            self.restarts.append(tuple(units))
            self.states_left_at_restart.append(len(self.states))

        def sleep(seconds: float) -> None:
            self.now += seconds

        return Updater(
            self.settings,
            state_of=state_of,
            restart=restart,
            unit=lambda _name: (*self.unit, f"invocation-{len(self.restarts)}"),
            sleep=sleep,
            clock=lambda: self.now,
        )

    def config(self, release: Release | SoftwareRelease, *, version: int = 5,
               key: Ed25519PrivateKey | None = None,
               trusted: Sequence[Ed25519PrivateKey] = (), station_id: str = "st1",
               rollback_of: int | None = None) -> SignedEnvelope:  # fmt: skip
        software = (
            release if isinstance(release, SoftwareRelease)
            else SoftwareRelease(version=release.version, sha256=release.sha256)
        )  # fmt: skip
        payload = {
            "format": "kontaktstation-config-1",
            "station_id": station_id,
            "version": version,
            **({"rollback_of": rollback_of} if rollback_of is not None else {}),
            "issued_at": datetime.now(UTC).isoformat(),
            "trusted_config_keys": [_public(k) for k in (trusted or [self.it])],
            "config": {
                "care_home": {"id": "solhaven", "name": "Plejecenter Solhaven"},
                "station_name": "Stue 1",
                "software": software.model_dump(),
            },
        }
        return seal_envelope(key or self.it, "config", payload)

    def request(
        self,
        release: Release,
        archive: Path,
        config: SignedEnvelope,
        chain: Sequence[SignedEnvelope] = (),
    ) -> None:
        """What stationd writes: the archive beside the request."""
        shutil.copyfile(archive, self.settings.spool / f"{release.sha256}.tar")
        request = UpdateRequest(
            release=SoftwareRelease(version=release.version, sha256=release.sha256),
            archive=f"{release.sha256}.tar",
            config=config,
        )
        keychain = self.settings.spool / KEYCHAIN_FILE
        keychain.unlink(missing_ok=True)
        if chain:
            keychain.write_text(KeyChain(links=tuple(chain)).model_dump_json())
        (self.settings.spool / REQUEST_FILE).write_text(request.model_dump_json())

    @property
    def linked(self) -> Path:
        return (self.settings.prefix / "venv").readlink()

    def status(self) -> tuple[str, str] | None:
        status = read_status(self.settings.state / STATUS_FILE)
        return None if status is None else (status.outcome, status.reason)


def _probe(venv: Path) -> str:
    done = subprocess.run(
        [str(venv / "bin/python"), "-c", "import ks_release_probe; print(ks_release_probe.MARKER)"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def test_a_release_is_installed_beside_switched_in_and_kept_when_healthy(
    rig: Rig, tmp_path: Path
) -> None:
    release = make_release(tmp_path / "build", "2.0", marker="two")
    rig.request(release, tmp_path / "build/release-2.0.tar", rig.config(release))
    # stationd says it is in a private call twice: nothing restarts until it is locked.
    rig.states = ["in_call_private", "in_call_private", "locked"]

    assert rig.updater().run_once() == "installed"

    venv = rig.settings.prefix / f"releases/2.0-{release.sha256[:12]}/venv"
    assert rig.linked == venv
    assert _probe(rig.settings.prefix / "venv") == "two"
    assert rig.restarts == [rig.settings.units]
    assert rig.states_left_at_restart == [0]  # it waited for the call to end
    assert rig.status() == ("installed", "")
    # The request is gone (the path unit does not start the updater again); the set-up's
    # release stays as the one to go back to.
    assert not (rig.settings.spool / REQUEST_FILE).exists()
    assert rig.setup_venv.exists()


def test_a_release_that_fails_its_health_check_is_rolled_back(rig: Rig, tmp_path: Path) -> None:
    release = make_release(tmp_path / "build", "3.0")
    rig.request(release, tmp_path / "build/release-3.0.tar", rig.config(release))
    rig.unit = ("activating", 4)  # stationd never says READY

    assert rig.updater().run_once() == "rolled_back"

    assert rig.linked == rig.setup_venv
    assert rig.restarts == [rig.settings.units, rig.settings.units]  # on, then back
    assert rig.now >= rig.settings.health_seconds
    assert rig.status() == ("rolled_back", "health_check")
    assert not (rig.settings.prefix / f"releases/3.0-{release.sha256[:12]}").exists()


def test_a_release_whose_stationd_keeps_failing_to_start_is_rolled_back_early(
    rig: Rig, tmp_path: Path
) -> None:
    release = make_release(tmp_path / "build", "3.2")
    rig.request(release, tmp_path / "build/release-3.2.tar", rig.config(release))
    updater = rig.updater()
    starts = iter(range(1000))
    # systemd restarts it after each crash, and it never says READY.
    updater._unit = lambda _name: ("activating", next(starts), f"i{len(rig.restarts)}")  # type: ignore[method-assign]

    assert updater.run_once() == "rolled_back"

    assert rig.linked == rig.setup_venv
    assert rig.now < rig.settings.health_seconds / 3  # not the whole health window
    assert not (rig.settings.spool / REQUEST_FILE).exists()


def test_stationd_restarting_after_ready_fails_the_health_check(rig: Rig, tmp_path: Path) -> None:
    release = make_release(tmp_path / "build", "3.1")
    rig.request(release, tmp_path / "build/release-3.1.tar", rig.config(release))
    updater = rig.updater()
    restarts = iter(range(1000))
    # Active every time it is looked at, but with one more restart each time: a crash loop.
    updater._unit = lambda _name: ("active", next(restarts), f"i{len(rig.restarts)}")  # type: ignore[method-assign]

    assert updater.run_once() == "rolled_back"
    assert rig.linked == rig.setup_venv


def test_a_compromised_stationd_cannot_make_root_install_its_own_release(
    rig: Rig, tmp_path: Path
) -> None:
    """The attacker holds stationd (its user, its directory): it writes a request for a
    release of its own, with a configuration signed by a key of its own."""
    evil = make_release(tmp_path / "evil", "6.6.6", marker="evil")
    attacker = Ed25519PrivateKey.generate()
    rig.request(evil, tmp_path / "evil/release-6.6.6.tar", rig.config(evil, key=attacker))

    assert rig.updater().run_once() == "failed"

    assert rig.status() == ("failed", "config_unverified")
    assert rig.linked == rig.setup_venv
    assert not (rig.settings.prefix / "releases").joinpath(f"6.6.6-{evil.sha256[:12]}").exists()
    assert rig.restarts == []


def test_a_compromised_stationd_cannot_swap_the_archive_it_signed(rig: Rig, tmp_path: Path) -> None:
    """IT's configuration names release A; stationd puts B's bytes under A's name."""
    good = make_release(tmp_path / "good", "7.0")
    evil = make_release(tmp_path / "evil", "7.0", marker="evil")
    rig.request(good, tmp_path / "evil/release-7.0.tar", rig.config(good))
    assert evil.sha256 != good.sha256

    assert rig.updater().run_once() == "failed"

    assert rig.status() == ("failed", "release_invalid")
    assert rig.linked == rig.setup_venv and rig.restarts == []


def test_an_older_signed_configuration_cannot_bring_an_older_release_back(
    rig: Rig, tmp_path: Path
) -> None:
    new = make_release(tmp_path / "new", "9.0")
    rig.request(new, tmp_path / "new/release-9.0.tar", rig.config(new, version=9))
    assert rig.updater().run_once() == "installed"
    old = make_release(tmp_path / "old", "8.0")
    # A configuration IT really signed, once: version 8 named release 8.0.
    rig.request(old, tmp_path / "old/release-8.0.tar", rig.config(old, version=8))

    assert rig.updater().run_once() == "failed"

    assert rig.status() == ("failed", "config_replayed")
    assert _probe(rig.settings.prefix / "venv") == "ok"
    assert "9.0-" in str(rig.linked)


def test_no_request_no_change(rig: Rig) -> None:
    assert rig.updater().run_once() == "none"
    assert rig.status() is None and rig.restarts == []


def test_an_unexpected_failure_still_ends_the_request_and_is_reported(
    rig: Rig, tmp_path: Path
) -> None:
    """Otherwise the path unit would start the updater again at once, for ever, and stationd
    would ask again at every heartbeat."""
    release = make_release(tmp_path / "build", "4.0")
    rig.request(release, tmp_path / "build/release-4.0.tar", rig.config(release))
    rig.settings = rig.settings.__class__(**{**rig.settings.__dict__, "python": "/nonexistent"})

    assert rig.updater().run_once() == "failed"

    assert rig.status() == ("failed", "updater_error")
    assert not (rig.settings.spool / REQUEST_FILE).exists()
    assert rig.linked == rig.setup_venv and rig.restarts == []


def test_a_release_that_would_shadow_what_comes_from_apt_is_not_installed(
    rig: Rig, tmp_path: Path
) -> None:
    """On a Pi the set-up's constraints pin apt's numpy & co.; a release carrying its own
    (here: the dependency in another version) fails to install, and nothing changes."""
    constraints = rig.settings.constraints
    constraints.parent.mkdir(parents=True)
    constraints.write_text("# target pi5; these come from apt only.\nks-release-dep==2.0\n")
    release = make_release(tmp_path / "build", "5.0")
    rig.request(release, tmp_path / "build/release-5.0.tar", rig.config(release))

    assert rig.updater().run_once() == "failed"

    assert rig.status() == ("failed", "install_failed")
    assert rig.linked == rig.setup_venv and rig.restarts == []
    assert not (rig.settings.prefix / f"releases/5.0-{release.sha256[:12]}").exists()


def test_a_key_it_retired_no_longer_signs_a_release(rig: Rig, tmp_path: Path) -> None:
    """IT rotates its key with a configuration signed by the old key naming the new one; a
    release signed afterwards with the old key (stolen, say) is refused."""
    new_key = Ed25519PrivateKey.generate()
    first = make_release(tmp_path / "a", "10.0")
    rig.request(
        first, tmp_path / "a/release-10.0.tar", rig.config(first, version=10, trusted=[new_key])
    )
    assert rig.updater().run_once() == "installed"
    second = make_release(tmp_path / "b", "11.0")
    rig.request(second, tmp_path / "b/release-11.0.tar", rig.config(second, version=11))

    assert rig.updater().run_once() == "failed"
    assert rig.status() == ("failed", "config_unverified")

    rig.request(
        second,
        tmp_path / "b/release-11.0.tar",
        rig.config(second, version=12, key=new_key, trusted=[new_key]),
    )
    assert rig.updater().run_once() == "installed"


def test_the_old_stationd_still_running_is_not_taken_for_the_new_one(
    rig: Rig, tmp_path: Path
) -> None:
    """The restart is queued: at the first look the old stationd may still be up."""
    release = make_release(tmp_path / "build", "3.3")
    rig.request(release, tmp_path / "build/release-3.3.tar", rig.config(release))
    updater = rig.updater()
    # The same invocation as before the restart, active and answering, for ever.
    updater._unit = lambda _name: ("active", 0, "the-old-one")  # type: ignore[method-assign]

    assert updater.run_once() == "rolled_back"


class PowerCut(BaseException):
    """The process ends here (nothing of it runs on, not even its exception handlers)."""


def test_a_power_cut_after_the_switch_is_finished_at_the_next_start(
    rig: Rig, tmp_path: Path
) -> None:
    release = make_release(tmp_path / "build", "12.0")
    rig.request(release, tmp_path / "build/release-12.0.tar", rig.config(release))
    cut = rig.updater()

    def power_cut(_units: Sequence[str]) -> None:
        raise PowerCut

    cut._restart = power_cut  # type: ignore[method-assign]
    with pytest.raises(PowerCut):
        cut.run_once()
    assert "12.0-" in str(rig.linked)  # switched, never checked
    # At boot the new release starts and never becomes healthy: the next start of the
    # updater (the request is still there) rolls it back.
    rig.unit = ("activating", 0)
    assert (rig.settings.spool / REQUEST_FILE).exists()

    assert rig.updater().run_once() == "rolled_back"

    assert rig.linked == rig.setup_venv
    assert rig.status() == ("rolled_back", "health_check")
    assert not (rig.settings.spool / REQUEST_FILE).exists()
    assert rig.updater().run_once() == "none"


def test_a_crash_after_the_switch_goes_back_to_the_previous_release(
    rig: Rig, tmp_path: Path
) -> None:
    release = make_release(tmp_path / "build", "13.0")
    rig.request(release, tmp_path / "build/release-13.0.tar", rig.config(release))
    updater = rig.updater()
    calls: list[int] = []

    def restart(_units: Sequence[str]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("systemctl went away")

    updater._restart = restart  # type: ignore[method-assign]

    assert updater.run_once() == "failed"

    assert rig.linked == rig.setup_venv
    assert rig.status() == ("rolled_back", "updater_error")
    assert len(calls) == 2


def test_a_configuration_for_another_station_is_refused(rig: Rig, tmp_path: Path) -> None:
    """The hub has every station's configurations; stationd offers another station's."""
    first = make_release(tmp_path / "a", "14.0")
    rig.request(first, tmp_path / "a/release-14.0.tar", rig.config(first, version=3))
    assert rig.updater().run_once() == "installed"
    other = make_release(tmp_path / "b", "15.0")
    rig.request(other, tmp_path / "b/release-15.0.tar",
                rig.config(other, version=40, station_id="st2"))  # fmt: skip

    assert rig.updater().run_once() == "failed"
    assert rig.status() == ("failed", "config_other_station")
    # Its version did not raise the floor: the station's own next configuration is taken.
    rig.request(other, tmp_path / "b/release-15.0.tar", rig.config(other, version=4))
    assert rig.updater().run_once() == "installed"


def test_its_own_signed_rollback_of_the_configuration_is_taken(rig: Rig, tmp_path: Path) -> None:
    new = make_release(tmp_path / "new", "16.0")
    rig.request(new, tmp_path / "new/release-16.0.tar", rig.config(new, version=9))
    assert rig.updater().run_once() == "installed"
    old = make_release(tmp_path / "old", "15.9")
    # `admin config rollback --to 8`: version 8 again, signed with rollback_of=9.
    rig.request(old, tmp_path / "old/release-15.9.tar", rig.config(old, version=8, rollback_of=9))

    assert rig.updater().run_once() == "installed"


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_a_request_that_is_not_a_plain_file_neither_hangs_nor_loops(
    rig: Rig, tmp_path: Path, kind: str
) -> None:
    path = rig.settings.spool / REQUEST_FILE
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        (tmp_path / "elsewhere.json").write_text("{}")
        path.symlink_to(tmp_path / "elsewhere.json")

    assert rig.updater().run_once() == "failed"  # at once: a FIFO is never read
    assert rig.linked == rig.setup_venv and rig.restarts == []
    assert not path.exists() and not path.is_symlink()  # gone: the path unit stops
    assert (tmp_path / "elsewhere.json").exists() or kind != "symlink"


def test_a_key_rotation_without_a_release_is_followed_link_by_link(
    rig: Rig, tmp_path: Path
) -> None:
    """IT rotates A → B in a configuration that names no new release (stationd applies it;
    the updater never sees it), then signs a release with B. With the key change stationd
    kept (the request's chain) the updater follows A → B and installs; without it, as before,
    it refuses."""
    first = make_release(tmp_path / "a", "20.0", marker="twenty")
    rig.request(first, tmp_path / "a/release-20.0.tar", rig.config(first, version=20))
    assert rig.updater().run_once() == "installed"  # the updater trusts A, floor 20
    key_b = Ed25519PrivateKey.generate()
    rotation = rig.config(first, version=21, trusted=[key_b])  # signed by A, names B
    second = make_release(tmp_path / "b", "21.0", marker="twenty-one")
    signed_by_b = rig.config(second, version=22, key=key_b, trusted=[key_b])

    rig.request(second, tmp_path / "b/release-21.0.tar", signed_by_b)
    assert rig.updater().run_once() == "failed"
    assert rig.status() == ("failed", "config_unverified")

    rig.request(second, tmp_path / "b/release-21.0.tar", signed_by_b, chain=[rotation])
    assert rig.updater().run_once() == "installed"
    assert _probe(rig.settings.prefix / "venv") == "twenty-one"
    # From now on B is what the updater trusts, A no longer (the chain was followed once).
    third = make_release(tmp_path / "c", "23.0")
    rig.request(third, tmp_path / "c/release-23.0.tar", rig.config(third, version=23))
    assert rig.updater().run_once() == "failed"
    assert rig.status() == ("failed", "config_unverified")


def test_a_chain_stationd_made_up_changes_nothing(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A compromised stationd hands over key changes IT did not sign (its own key naming
    itself), a key change for another station, and an old one replayed: none moves the
    updater's trust, and a release signed by stationd's key is refused."""
    first = make_release(tmp_path / "a", "30.0", marker="thirty")
    rig.request(first, tmp_path / "a/release-30.0.tar", rig.config(first, version=30))
    assert rig.updater().run_once() == "installed"
    mallory = Ed25519PrivateKey.generate()
    second = make_release(tmp_path / "b", "31.0")
    own = rig.config(second, version=31, key=mallory, trusted=[mallory])
    other_station = rig.config(second, version=32, trusted=[mallory], station_id="st2")
    replayed = rig.config(second, version=29, trusted=[mallory])  # IT-signed, but older
    for chain, reason in (
        ([own], "config_unverified"),
        ([replayed], "config_unverified"),
        ([other_station], "config_unverified"),
    ):
        rig.request(
            second,
            tmp_path / "b/release-31.0.tar",
            rig.config(second, version=33, key=mallory, trusted=[mallory]),
            chain=chain,
        )
        with caplog.at_level(logging.ERROR, logger="kontaktstation.updater"):
            caplog.clear()
            assert rig.updater().run_once() == "failed"
        assert rig.status() == ("failed", reason)
        # The journal tells IT the key change came and was not followed.
        assert "(0 of 1 key changes followed)" in caplog.text
    assert _probe(rig.settings.prefix / "venv") == "thirty"


def test_a_key_change_in_its_rollback_and_a_replay_after_a_rollback(
    rig: Rig, tmp_path: Path
) -> None:
    """IT's first configuration after a rotation can be a rollback (an older version, naming
    the newer one it rolls back from): it is a link like any other. And once IT rolled back
    from a version, that version is never acted on again (stationd replaying it)."""
    first = make_release(tmp_path / "a", "40.0", marker="forty")
    rig.request(first, tmp_path / "a/release-40.0.tar", rig.config(first, version=40))
    assert rig.updater().run_once() == "installed"  # floor 40
    key_b = Ed25519PrivateKey.generate()
    rolled_back = rig.config(first, version=38, rollback_of=41, trusted=[key_b])
    second = make_release(tmp_path / "b", "42.0", marker="forty-two")
    by_b = rig.config(second, version=42, key=key_b, trusted=[key_b])
    rig.request(second, tmp_path / "b/release-42.0.tar", by_b, chain=[rolled_back])
    assert rig.updater().run_once() == "installed"
    assert _probe(rig.settings.prefix / "venv") == "forty-two"

    # IT rolls the station back from 43 (to 42's content, as version 42 with rollback_of 43);
    # a compromised stationd then hands over 43 again.
    third = make_release(tmp_path / "c", "43.0", marker="forty-three")
    rig.request(
        third, tmp_path / "c/release-43.0.tar",
        rig.config(third, version=43, key=key_b, trusted=[key_b]),
    )  # fmt: skip
    assert rig.updater().run_once() == "installed"
    rig.request(
        second, tmp_path / "b/release-42.0.tar",
        rig.config(second, version=42, rollback_of=43, key=key_b, trusted=[key_b]),
    )  # fmt: skip
    assert rig.updater().run_once() == "installed"
    assert _probe(rig.settings.prefix / "venv") == "forty-two"
    rig.request(
        third, tmp_path / "c/release-43.0.tar",
        rig.config(third, version=43, key=key_b, trusted=[key_b]),
    )  # fmt: skip
    assert rig.updater().run_once() == "failed"
    assert rig.status() == ("failed", "config_replayed")
    assert _probe(rig.settings.prefix / "venv") == "forty-two"
