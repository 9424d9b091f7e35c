"""The updater: install a release beside the running one, switch, health-check, roll back.

Over 600 lines for one job, one root process's whole update from request to status: the
steps below share one journal and one trust state, and a reviewer reads them in order here.

Run as root by ``kontaktstation-update.service`` (started by ``kontaktstation-update.path``
when stationd writes its request; ``provisioning/updates.py``), always from the set-up's own
release (``<prefix>/releases/setup``, never pruned): a broken release cannot break the
updater that has to roll it back. One request, start to end:

1. **Trust nothing stationd wrote but IT's signature.** The request carries the signed
   configuration naming the release; it is verified here against IT's keys: those the set-up
   pinned (``KONTAKTSTATION_IT_KEYS`` in the root-owned ``station.env``) until the first
   verified configuration, then the keys the last one named (IT's key rotation: a retired key
   signs nothing more). A rotation that came in configurations naming no release reaches the
   updater with the next release: stationd hands over every configuration that changed the
   keys (``keychain.json`` beside the request), and each is followed only if the keys before
   it signed it. It must be for the station the first one was for, not older than the newest
   one acted on nor one IT rolled back from (no replay of an older release; IT's own signed
   rollback excepted), and name exactly the requested release. The request and the archive
   are opened in stationd's directory without following a link, as regular files of bounded
   size.
2. **Install beside.** The archive is copied into the updater's own directory and checked
   against the hash IT signed; it is unpacked into ``<prefix>/releases/<version>-<hash>/``
   and installed there into a new venv, from its own wheels only (``--no-index``), by the
   hashes in its lock (``--require-hashes``) and within the set-up's constraints; synced to
   the card, then marked complete. Nothing running is touched yet.
3. **Never during a call.** It waits until stationd says the station is locked with no call.
4. **Switch atomically.** A journal (the release, the previous one) is written first; then
   ``<prefix>/venv``, the path every unit runs from, a symbolic link, is replaced by a new
   link in one ``rename(2)``.
5. **Health check, roll back.** The station's units are restarted; the release passes when a
   new stationd is active (it says READY only after its start-up), answers its API and stays
   so without a restart for the settle time. Otherwise (waiting for no call first) the link
   goes back, the units restart on the previous release, the failed release is removed and
   the status says ``rolled_back``: stationd does not ask for it again unless a newer
   configuration names it.

A power cut or a crash after the switch leaves the journal: the next start (the path unit at
boot, the request still there) finishes the health check or the rollback before anything
else. One before the switch leaves the old link and the request: it goes on from the top (an
installed release is reused).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from pydantic import ValidationError

from provisioning.errors import ConfigRejected, SignatureInvalid
from provisioning.protocol import SignedEnvelope, b64decode
from provisioning.release import (
    LOCK_FILE,
    MAX_RELEASE_BYTES,
    WHEELS,
    ReleaseInvalid,
    unpack_release,
)
from provisioning.schema import ConfigPayload, SoftwareRelease, open_config
from provisioning.updates import (
    KEYCHAIN_FILE,
    REQUEST_FILE,
    KeyChain,
    UpdateRequest,
    UpdateStatus,
)
from station.storage.durable import atomic_write

__all__ = ["Updater", "UpdaterSettings", "main"]

_log = logging.getLogger("kontaktstation.updater")

STATUS_FILE: Final = "status.json"
TRUST_FILE: Final = "trust.json"
JOURNAL_FILE: Final = "journal.json"
#: The units that run from ``<prefix>/venv``: stationd first, then what shows its screen.
STATION_UNITS: Final = (
    "kontaktstation-stationd.service",
    "kontaktstation-surface.service",
    "kontaktstation-ui-locked.service",
    "kontaktstation-ui-staff.service",
    "kontaktstation-kiosk.service",
)
_COMPLETE: Final = "installed"


class UpdateFailed(Exception):
    """The release cannot be installed; ``reason`` is the machine word for the heartbeat."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class UpdaterSettings:
    """Where things are; the defaults are the appliance's (``provisioning/pi/setup.sh``)."""

    spool: Path = Path("/var/lib/kontaktstation/updates")
    state: Path = Path("/var/lib/kontaktstation-update")
    prefix: Path = Path("/opt/kontaktstation")
    socket: Path = Path("/run/kontaktstation/stationd.sock")
    it_keys: tuple[str, ...] = ()
    python: str = "/usr/bin/python3"
    #: The set-up's constraints: on a Pi, what must come from apt (numpy, simplejpeg,
    #: picamera2, lgpio) pinned to apt's versions, so a release that would shadow them in the
    #: venv (picamera2 issues 1088, 1211) fails to install instead of losing the camera.
    constraints: Path = Path("/etc/kontaktstation/constraints.txt")
    units: tuple[str, ...] = STATION_UNITS
    #: How long stationd may take to become active after the restart.
    health_seconds: float = 120.0
    #: How long it must then stay active, answering and without a restart.
    settle_seconds: float = 20.0
    #: Failed starts (systemd's automatic restarts) before it ever came up: given up at once.
    failed_starts: int = 3
    poll_seconds: float = 2.0
    idle_poll_seconds: float = 15.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> UpdaterSettings:
        keys = tuple(k.strip() for k in environ.get("KONTAKTSTATION_IT_KEYS", "").split(","))
        values: dict[str, object] = {"it_keys": tuple(k for k in keys if k)}
        data = environ.get("KONTAKTSTATION_DATA_DIR")
        if data:
            values["spool"] = Path(data) / "updates"
        if state := environ.get("STATE_DIRECTORY"):  # systemd's StateDirectory=
            values["state"] = Path(state.split(":")[0])
        if health := environ.get("KONTAKTSTATION_UPDATE_HEALTH_SECONDS"):
            values["health_seconds"] = float(health)
        if settle := environ.get("KONTAKTSTATION_UPDATE_SETTLE_SECONDS"):
            values["settle_seconds"] = float(settle)
        return cls(**values)  # type: ignore[arg-type]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("stationd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def station_state(path: Path, timeout: float = 10.0) -> str | None:
    """stationd's session state (``GET /v1/state``, which answers while locked); None: no
    answer."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", "/v1/state")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None
        state = json.loads(body).get("state")
        return state if isinstance(state, str) else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _systemctl(*words: str) -> subprocess.CompletedProcess[str]:
    # The unit names are this module's constants; systemctl from the unit's own PATH.
    return subprocess.run(  # noqa: S603
        ["systemctl", *words],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def unit_state(unit: str) -> tuple[str, int, str]:
    """A unit's ActiveState, NRestarts and InvocationID (new at every start)."""
    out = _systemctl("show", unit, "-p", "ActiveState,NRestarts,InvocationID").stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    restarts = int(props.get("NRestarts", "0") or 0)
    return props.get("ActiveState", "unknown"), restarts, props.get("InvocationID", "")


def restart_units(units: Sequence[str]) -> None:
    """Restart stationd, then the units that run beside it (those running now); queued
    (``--no-block``): the health check watches them come up, however slow the start."""
    first, *rest = units
    _systemctl("restart", "--no-block", first)
    if rest:
        _systemctl("try-restart", "--no-block", *rest)


@dataclass(frozen=True)
class _Journal:
    """Written before the switch, removed after the outcome: a power cut or a crash between
    them finds it at the next start and finishes the health check or the rollback."""

    release: SoftwareRelease
    venv: Path
    previous: Path | None
    config_version: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "release": self.release.model_dump(),
                "venv": str(self.venv),
                "previous": None if self.previous is None else str(self.previous),
                "config_version": self.config_version,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _Journal:
        raw = json.loads(data)
        return cls(
            SoftwareRelease.model_validate(raw["release"]),
            Path(raw["venv"]),
            None if raw["previous"] is None else Path(raw["previous"]),
            int(raw["config_version"]),
        )


@dataclass(frozen=True)
class _Trust:
    """What the updater has learnt, in root's own directory: IT's keys as the last verified
    configuration named them, the station they were for, and the newest version acted on."""

    keys: tuple[str, ...]
    station_id: str | None
    floor: int
    #: The newest version IT rolled back from: never acted on again, though not below floor.
    superseded: int = 0

    def allows(self, payload: ConfigPayload) -> bool:
        """Not a replay: at least the newest version acted on and above any version IT rolled
        back from, or IT's signed rollback of the newest one (or a newer)."""
        if payload.rollback_of is not None and payload.rollback_of >= self.floor:
            return True
        return payload.version >= self.floor and payload.version > self.superseded

    def after(self, payload: ConfigPayload) -> _Trust:
        """The trust once ``payload`` is acted on: its keys, its station, the floors."""
        rolled_back = payload.rollback_of if payload.rollback_of is not None else 0
        return _Trust(
            tuple(sorted(payload.trusted_config_keys)),
            payload.station_id,
            max(self.floor, payload.version),
            max(self.superseded, rolled_back),
        )


class Updater:
    """One request, start to end (module docs). The seams (state, restart, unit state) are
    the real system's by default."""

    def __init__(
        self,
        settings: UpdaterSettings,
        *,
        state_of: Callable[[], str | None] | None = None,
        restart: Callable[[Sequence[str]], None] = restart_units,
        unit: Callable[[str], tuple[str, int, str]] = unit_state,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._state_of = state_of or (lambda: station_state(settings.socket))
        self._restart = restart
        self._unit = unit
        self._sleep = sleep
        self._clock = clock
        #: The release being worked on and its configuration's version (for a failure).
        self._working: tuple[SoftwareRelease, int] | None = None

    # ------------------------------------------------------------------ files

    @property
    def link(self) -> Path:
        return self.settings.prefix / "venv"

    @property
    def releases(self) -> Path:
        return self.settings.prefix / "releases"

    def _write(self, name: str, data: bytes) -> None:
        self.settings.state.mkdir(mode=0o755, parents=True, exist_ok=True)
        # Readable by stationd (it reports the status); root's own directory: no one else writes.
        atomic_write(self.settings.state / name, data, replace=True, mode=0o644)

    def _status(self, release: SoftwareRelease, outcome: str, reason: str, version: int) -> None:
        status = UpdateStatus(
            release=release,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            config_version=version,
        )
        self._write(STATUS_FILE, status.model_dump_json().encode())

    def _trust(self) -> _Trust:
        try:
            raw = json.loads((self.settings.state / TRUST_FILE).read_bytes())
            return _Trust(
                tuple(raw["keys"]),
                raw["station_id"],
                int(raw["floor"]),
                int(raw.get("superseded", 0)),
            )
        except FileNotFoundError:
            # Before the first verified configuration (or after the set-up pinned IT's keys
            # again): the keys in the root-owned station.env.
            return _Trust(self.settings.it_keys, None, 0)

    def _journal(self) -> _Journal | None:
        try:
            return _Journal.from_json((self.settings.state / JOURNAL_FILE).read_bytes())
        except FileNotFoundError:
            return None

    def _spool(self) -> int | None:
        """stationd's spool directory, opened without following a link (None: none yet)."""
        try:
            return os.open(self.settings.spool, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError:
            raise UpdateFailed("spool_invalid", "the spool is not a directory") from None

    def _open(self, name: str, limit: int) -> BinaryIO:
        """A regular file in the spool, at most ``limit`` bytes; never a link, a directory or
        a FIFO (opened non-blocking, checked before a byte is read)."""
        spool = self._spool()
        if spool is None:
            raise FileNotFoundError(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=spool)
        except FileNotFoundError:
            raise
        except OSError:
            raise UpdateFailed("request_invalid", f"{name} cannot be opened") from None
        finally:
            os.close(spool)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            os.close(fd)
            raise UpdateFailed("request_invalid", f"{name} is not a file of at most {limit} B")
        return os.fdopen(fd, "rb")

    def _read_request(self) -> UpdateRequest | None:
        try:
            with self._open(REQUEST_FILE, 4 << 20) as stream:
                data = stream.read(4 << 20)
        except FileNotFoundError:
            return None
        try:
            request = UpdateRequest.model_validate_json(data)
        except ValidationError:
            raise UpdateFailed("request_invalid", "the request does not parse") from None
        if request.archive != f"{request.release.sha256}.tar":
            raise UpdateFailed("request_invalid", "the archive is not named by its hash")
        return request

    def _done(self) -> None:
        with contextlib.suppress(OSError, UpdateFailed):
            spool = self._spool()
            if spool is not None:
                try:
                    try:
                        os.unlink(REQUEST_FILE, dir_fd=spool)
                    except IsADirectoryError:  # (empty) directories too: no loop
                        os.rmdir(REQUEST_FILE, dir_fd=spool)
                finally:
                    os.close(spool)

    # ------------------------------------------------------------------ steps

    def verify(self, request: UpdateRequest) -> ConfigPayload:
        """IT's signature over the configuration naming this release (step 1), after following
        IT's key changes in ``request.chain`` link by link (:meth:`_follow_chain`)."""
        trust = self._trust()
        if not trust.keys:
            raise UpdateFailed("no_it_key", "the set-up pinned no IT key (--it-key)")
        chain = self._read_chain()
        followed, stations, steps = self._follow_chain(trust, chain)
        payload = _opened(request.config, followed.keys)
        if payload is None:
            # For IT: whether a rotation's key changes came with it and were followed.
            raise UpdateFailed(
                "config_unverified",
                f"not signed by a key IT pinned ({steps} of {len(chain)} key changes followed)",
            )
        if trust.station_id is not None and payload.station_id != trust.station_id:
            raise UpdateFailed("config_other_station", "a configuration for another station")
        if stations - {payload.station_id}:
            raise UpdateFailed("config_other_station", "a key change for another station")
        if payload.config.software != request.release:
            raise UpdateFailed("config_mismatch", "the configuration names another release")
        if not followed.allows(payload):
            raise UpdateFailed("config_replayed", "an older configuration than the last one")
        learnt = followed.after(payload)
        self._write(
            TRUST_FILE,
            json.dumps(
                {
                    "keys": list(learnt.keys),
                    "station_id": learnt.station_id,
                    "floor": learnt.floor,
                    "superseded": learnt.superseded,
                }
            ).encode(),
        )
        return payload

    def _read_chain(self) -> tuple[SignedEnvelope, ...]:
        """stationd's key changes beside the request (none: no file, or one that does not
        parse; the configuration then has to verify without them)."""
        try:
            with self._open(KEYCHAIN_FILE, 4 << 20) as stream:
                return KeyChain.model_validate_json(stream.read(4 << 20)).links
        except (FileNotFoundError, UpdateFailed, ValidationError):
            return ()

    @staticmethod
    def _follow_chain(
        trust: _Trust, chain: Sequence[SignedEnvelope]
    ) -> tuple[_Trust, set[str], int]:
        """The trust after the key changes in ``chain`` that it allows, in order; the stations
        they were for; how many it followed.

        Each link must be signed by the keys in force before it (as stationd checked when it
        applied it), be for this station and no replay (:meth:`_Trust.allows`): a link signed
        by anything else (stationd's own, an older rotation already followed, a gap) changes
        nothing, so a compromised stationd can hand over only what IT signed, in IT's order.
        """
        stations: set[str] = set()
        steps = 0
        for link in chain:
            payload = _opened(link, trust.keys)
            if payload is None or not trust.allows(payload):
                continue
            if trust.station_id is not None and payload.station_id != trust.station_id:
                continue
            trust = trust.after(payload)
            stations.add(payload.station_id)
            steps += 1
        return trust, stations, steps

    def _copy(self, request: UpdateRequest, copy: Path) -> None:
        """The archive into root's own directory, at most a release's size: the bytes checked
        are the bytes unpacked."""
        with self._open(request.archive, MAX_RELEASE_BYTES) as reader, copy.open("wb") as writer:
            left = MAX_RELEASE_BYTES + 1
            while left > 0 and (block := reader.read(min(1 << 20, left))):
                writer.write(block)
                left -= len(block)
        if left <= 0:
            raise UpdateFailed("release_invalid", "the archive is larger than a release may be")

    def install(self, request: UpdateRequest) -> Path:
        """Copy, check, unpack and install the release beside the running one (step 2)."""
        release = request.release
        target = self.releases / f"{release.version}-{release.sha256[:12]}"
        venv = target / "venv"
        if (target / _COMPLETE).exists():
            return venv
        if self.link.is_symlink() and self.link.readlink() == venv:
            raise UpdateFailed("release_in_use", "the running release is not complete")
        copy = self.settings.state / request.archive
        try:
            self._copy(request, copy)
            if target.exists():
                shutil.rmtree(target)
            self.releases.mkdir(mode=0o755, parents=True, exist_ok=True)
            checked = unpack_release(copy, target, sha256=release.sha256)
            if checked.version != release.version:
                raise UpdateFailed("release_invalid", f"the archive is {checked.version}")
        except ReleaseInvalid as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise UpdateFailed("release_invalid", str(exc)) from None
        finally:
            copy.unlink(missing_ok=True)
        steps = (
            [self.settings.python, "-m", "venv", "--system-site-packages", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--no-cache-dir", "--no-input", "--no-index",
             "--find-links", str(target / WHEELS),
             "--require-hashes", "-r", str(target / LOCK_FILE),
             *(["--constraint", str(self.settings.constraints)]
               if self.settings.constraints.is_file() else [])],
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        for words in steps:
            # Paths this module made; the wheels and lock were checked against IT's hash.
            done = subprocess.run(  # noqa: S603
                words, capture_output=True, text=True, timeout=3600, check=False, env=env
            )
            if done.returncode != 0:
                _log.error("%s failed:\n%s", words[2], done.stderr[-4000:])
                shutil.rmtree(target, ignore_errors=True)
                raise UpdateFailed(
                    "install_failed", f"{' '.join(words[:3])} exited {done.returncode}"
                )
        # On the card before the link can point at it (a cut must not leave empty files in
        # the release the units start from), and only then marked complete.
        os.sync()
        atomic_write(target / _COMPLETE, release.model_dump_json().encode(), replace=True,
                     mode=0o644)  # fmt: skip
        return venv

    def _idle(self) -> bool:
        """stationd says locked with no call; or it does not answer and is not running."""
        state = self._state_of()
        if state is None:
            return self._unit(self.settings.units[0])[0] != "active"
        return state == "locked"

    def wait_until_idle(self) -> None:
        """Until the station is locked with no call (never a restart during a call)."""
        while not self._idle():
            _log.info("the station is in use: the update waits")
            self._sleep(self.settings.idle_poll_seconds)

    def switch(self, venv: Path) -> Path | None:
        """Point ``<prefix>/venv`` at ``venv`` in one rename; the previous target (step 4)."""
        previous = Path(os.readlink(self.link)) if self.link.is_symlink() else None
        if previous == venv:
            return previous
        tmp = self.link.with_name(".venv.new")
        tmp.unlink(missing_ok=True)
        os.symlink(venv, tmp)
        os.replace(tmp, self.link)
        fd = os.open(self.link.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return previous

    def healthy(self, before: str) -> bool:
        """A new stationd (not invocation ``before``) active, answering, and no restart for
        the settle time (step 5). Given up early when it has failed to start
        ``failed_starts`` times and never came up."""
        stationd = self.settings.units[0]
        deadline = self._clock() + self.settings.health_seconds
        settled_from: float | None = None
        restarts = -1
        first: int | None = None
        came_up = False
        while self._clock() < deadline:
            active, count, invocation = self._unit(stationd)
            first = count if first is None else first
            new = invocation != before
            if new and active == "active" and self._state_of() is not None:
                came_up = True
                if settled_from is None or count != restarts:
                    settled_from, restarts = self._clock(), count
                elif self._clock() - settled_from >= self.settings.settle_seconds:
                    return True
            else:
                settled_from = None
                if new and not came_up and count - first >= self.settings.failed_starts:
                    _log.error("stationd failed to start %d times", count - first)
                    return False
            self._sleep(self.settings.poll_seconds)
        return False

    def prune(self, keep: Sequence[Path]) -> None:
        """Remove releases but the running one, the one before it and the set-up's."""
        kept = {p.resolve().parent for p in keep} | {(self.releases / "setup").resolve()}
        if not self.releases.is_dir():
            return
        for path in self.releases.iterdir():
            if path.resolve() not in kept:
                shutil.rmtree(path, ignore_errors=True)

    def _finish(self, journal: _Journal) -> str:
        """Restart on the switched-in release, health-check it, keep it or roll back."""
        release, venv, previous = journal.release, journal.venv, journal.previous
        before = self._unit(self.settings.units[0])[2]
        self._restart(self.settings.units)
        if self.healthy(before):
            _log.info("release %s is healthy", release.version)
            self._status(release, "installed", "", journal.config_version)
            self.prune([venv, *([previous] if previous is not None else [])])
            outcome = "installed"
        else:
            _log.error("release %s failed its health check; rolling back", release.version)
            self._roll_back(journal, "health_check")
            outcome = "rolled_back"
        (self.settings.state / JOURNAL_FILE).unlink(missing_ok=True)
        self._done()
        return outcome

    def _roll_back(self, journal: _Journal, reason: str) -> None:
        """The link back to the previous release, the units restarted on it (never during a
        call), the failed release removed; the status says so."""
        if journal.previous is not None and journal.previous != journal.venv:
            self.wait_until_idle()
            self.switch(journal.previous)
            self._restart(self.settings.units)
            # Never asked for again: its space on the SD card goes back.
            shutil.rmtree(journal.venv.parent, ignore_errors=True)
            self._status(journal.release, "rolled_back", reason, journal.config_version)
        else:
            self._status(journal.release, "failed", reason, journal.config_version)

    def run_once(self) -> str:
        """Act on the request, if any; the outcome (``none`` when there was none).

        Whatever happens, the request is gone afterwards: the path unit would otherwise start
        the updater again at once, for ever. A switch left unfinished by a power cut or a
        crash (the journal) is finished first.
        """
        self._working = None
        try:
            journal = self._journal()
            if journal is not None:
                _log.warning("release %s was switched in unfinished; checking it",
                             journal.release.version)  # fmt: skip
                if self.link.is_symlink() and self.link.readlink() == journal.venv:
                    return self._finish(journal)
                (self.settings.state / JOURNAL_FILE).unlink()  # cut before the switch
            return self._run_once()
        except Exception:
            _log.exception("the updater failed")
            journal = self._journal()
            with contextlib.suppress(Exception):
                if journal is not None:  # after the switch: back to the previous release
                    self._roll_back(journal, "updater_error")
                    (self.settings.state / JOURNAL_FILE).unlink()
                elif self._working is not None:  # stationd must not ask for it again
                    release, version = self._working
                    self._status(release, "failed", "updater_error", version)
            self._done()
            return "failed"

    def _run_once(self) -> str:
        try:
            request = self._read_request()
        except UpdateFailed as exc:
            _log.error("update refused: %s", exc)
            self._done()
            return "failed"
        if request is None:
            return "none"
        release = request.release
        # Until verified, the version the configuration claims: only for the status (stationd
        # asks again only for a newer configuration), never for the replay floor.
        version = _claimed_version(request)
        self._working = (release, version)
        try:
            version = self.verify(request).version
            self._working = (release, version)
            self._status(release, "installing", "", version)
            venv = self.install(request)
        except UpdateFailed as exc:
            _log.error("release %s not installed: %s", release.version, exc)
            self._status(release, "failed", exc.reason, version)
            self._done()
            return "failed"
        self.wait_until_idle()
        previous = Path(os.readlink(self.link)) if self.link.is_symlink() else None
        journal = _Journal(release, venv, previous, version)
        self._write(JOURNAL_FILE, journal.to_json())
        self.switch(venv)
        _log.info("release %s switched in (previous: %s); restarting", release.version, previous)
        return self._finish(journal)


def _opened(envelope: SignedEnvelope, keys: Sequence[str]) -> ConfigPayload | None:
    """The configuration in ``envelope`` if one of ``keys`` (base64url) signed it."""
    try:
        return open_config(envelope, keys)
    except ConfigRejected:
        return None


def _claimed_version(request: UpdateRequest) -> int:
    with contextlib.suppress(SignatureInvalid, ValueError, TypeError, AttributeError):
        raw = json.loads(b64decode(request.config.payload))
        return min(max(0, int(raw.get("version", 0))), 2**31)
    return 0


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="kontaktstation update",
        description="Install the release IT's signed configuration names, beside the running "
        "one; switch, health-check and roll back (run by kontaktstation-update.service).",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``kontaktstation update`` (the update unit's command): act on stationd's request."""
    parser = _parser()
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    outcome = Updater(UpdaterSettings.from_env(os.environ)).run_once()
    print(json.dumps({"outcome": outcome}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
