"""The updater: install a release beside the running one, switch, health-check, roll back.

Run as root by ``kontaktstation-update.service`` (started by ``kontaktstation-update.path``
when stationd writes its request; ``provisioning/updates.py``), from the release that runs
now. One request, start to end:

1. **Trust nothing stationd wrote but IT's signature.** The request carries the signed
   configuration naming the release; it is verified here against IT's keys from the set-up
   (``KONTAKTSTATION_IT_KEYS`` in the root-owned ``station.env``; after the first, the keys the
   last verified configuration named: IT's key rotation, a retired key no longer trusted),
   its version may not be older than the last one
   acted on (no replay of an older release), and it must name exactly the requested release.
2. **Install beside.** The archive is copied into the updater's own directory and checked
   against the hash IT signed; it is unpacked into ``<prefix>/releases/<version>-<hash>/``
   and installed there into a new venv, from its own wheels only (``--no-index``) and by the
   hashes in its lock (``--require-hashes``). Nothing running is touched yet.
3. **Never during a call.** It waits until stationd says the station is locked with no call.
4. **Switch atomically.** ``<prefix>/venv``, the path every unit runs from, is a symbolic link;
   a new link is made beside it and renamed over it (one ``rename(2)``).
5. **Health check, roll back.** The station's units are restarted; the release passes when
   stationd is active (it says READY only after its start-up) and answers its API, and stays
   so without a restart for the settle time. Otherwise the link goes back, the units restart on
   the previous release, and the status says ``rolled_back``: stationd does not ask for that
   release again.

A power cut at any step leaves either the old link or the new one, and the request in place:
the path unit starts the updater again at boot and it goes on from the top (an unpacked,
installed release is reused; a switched one is checked again).
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
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from provisioning.errors import SignatureInvalid
from provisioning.protocol import b64decode, open_envelope
from provisioning.release import LOCK_FILE, WHEELS, ReleaseInvalid, read_release, unpack_release
from provisioning.schema import ConfigPayload, SoftwareRelease
from provisioning.updates import REQUEST_FILE, UpdateRequest, UpdateStatus, read_status
from station.storage.durable import atomic_write

__all__ = ["Updater", "UpdaterSettings", "main"]

_log = logging.getLogger("kontaktstation.updater")

STATUS_FILE: Final = "status.json"
TRUST_FILE: Final = "trusted_keys.json"
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
    extra_pip_args: tuple[str, ...] = field(default_factory=tuple)

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


def unit_state(unit: str) -> tuple[str, int]:
    """A unit's ActiveState and NRestarts."""
    out = _systemctl("show", unit, "-p", "ActiveState,NRestarts").stdout
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return props.get("ActiveState", "unknown"), int(props.get("NRestarts", "0") or 0)


def restart_units(units: Sequence[str]) -> None:
    """Restart stationd, then the units that run beside it (those running now); queued
    (``--no-block``): the health check watches them come up, however slow the start."""
    first, *rest = units
    _systemctl("restart", "--no-block", first)
    if rest:
        _systemctl("try-restart", "--no-block", *rest)


class Updater:
    """One request, start to end (module docs). The seams (state, restart, unit state) are
    the real system's by default."""

    def __init__(
        self,
        settings: UpdaterSettings,
        *,
        state_of: Callable[[], str | None] | None = None,
        restart: Callable[[Sequence[str]], None] = restart_units,
        unit: Callable[[str], tuple[str, int]] = unit_state,
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

    def _status(self, release: SoftwareRelease, outcome: str, reason: str, version: int) -> None:
        last = read_status(self.settings.state / STATUS_FILE)
        status = UpdateStatus(
            release=release,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            # Never lowered: a refused request does not reopen older configurations.
            config_version=max(version, 0 if last is None else last.config_version),
        )
        self.settings.state.mkdir(mode=0o755, parents=True, exist_ok=True)
        # Readable by stationd (it reports it); in root's own directory, so no one else writes.
        atomic_write(
            self.settings.state / STATUS_FILE,
            status.model_dump_json().encode(),
            replace=True,
            mode=0o644,
        )

    def _trusted(self) -> list[str]:
        """IT's keys as the last verified configuration named them (how IT's key rotates: a
        retired key is trusted no longer); before the first, the keys the set-up pinned."""
        try:
            saved = json.loads((self.settings.state / TRUST_FILE).read_bytes())
        except FileNotFoundError:
            return list(self.settings.it_keys)
        return [k for k in saved if isinstance(k, str)]

    def _read_request(self) -> UpdateRequest | None:
        path = self.settings.spool / REQUEST_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(4 << 20)
        try:
            return UpdateRequest.model_validate_json(data)
        except ValidationError:
            raise UpdateFailed("request_invalid", "the request does not parse") from None

    def _done(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.settings.spool / REQUEST_FILE).unlink()

    # ------------------------------------------------------------------ steps

    def verify(self, request: UpdateRequest) -> ConfigPayload:
        """IT's signature over the configuration naming this release (step 1)."""
        trusted = self._trusted()
        if not trusted:
            raise UpdateFailed("no_it_key", "the set-up pinned no IT key (--it-key)")
        try:
            keys = [b64decode(k, length=32) for k in trusted]
            payload = ConfigPayload.model_validate(open_envelope(request.config, "config", keys))
        except (SignatureInvalid, ValidationError, ValueError):
            raise UpdateFailed("config_unverified", "not signed by a key IT pinned") from None
        if payload.config.software != request.release:
            raise UpdateFailed("config_mismatch", "the configuration names another release")
        last = read_status(self.settings.state / STATUS_FILE)
        if last is not None and payload.version < last.config_version:
            raise UpdateFailed("config_replayed", "an older configuration than the last one")
        self.settings.state.mkdir(mode=0o755, parents=True, exist_ok=True)
        atomic_write(
            self.settings.state / TRUST_FILE,
            json.dumps(sorted(payload.trusted_config_keys)).encode(),
            replace=True,
            mode=0o644,
        )
        return payload

    def install(self, request: UpdateRequest) -> Path:
        """Copy, check, unpack and install the release beside the running one (step 2)."""
        release = request.release
        target = self.releases / f"{release.version}-{release.sha256[:12]}"
        if (target / _COMPLETE).exists():
            return target / "venv"
        # A copy in root's own directory: the bytes checked are the bytes unpacked.
        copy = self.settings.state / request.archive
        source = os.open(self.settings.spool / request.archive, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(source, "rb") as reader, copy.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
        try:
            if target.exists():
                shutil.rmtree(target)
            self.releases.mkdir(mode=0o755, parents=True, exist_ok=True)
            unpack_release(copy, target, sha256=release.sha256)
            checked = read_release(copy, sha256=release.sha256)
            if checked.version != release.version:
                raise UpdateFailed("release_invalid", f"the archive is {checked.version}")
        except ReleaseInvalid as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise UpdateFailed("release_invalid", str(exc)) from None
        finally:
            copy.unlink(missing_ok=True)
        venv = target / "venv"
        steps = (
            [self.settings.python, "-m", "venv", "--system-site-packages", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--no-cache-dir", "--no-input", "--no-index",
             "--find-links", str(target / WHEELS),
             "--require-hashes", "-r", str(target / LOCK_FILE),
             *(["--constraint", str(self.settings.constraints)]
               if self.settings.constraints.is_file() else []),
             *self.settings.extra_pip_args],
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
        (target / _COMPLETE).write_text(release.model_dump_json() + "\n")
        return venv

    def wait_until_idle(self) -> None:
        """Until stationd says locked with no call (or does not answer: then it runs no call)."""
        while (state := self._state_of()) not in (None, "locked"):
            _log.info("stationd is %s: the update waits", state)
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

    def healthy(self) -> bool:
        """stationd active, answering, and no restart for the settle time (step 5). Given
        up early when it has failed to start ``failed_starts`` times and never came up."""
        stationd = self.settings.units[0]
        deadline = self._clock() + self.settings.health_seconds
        settled_from: float | None = None
        restarts = -1
        first: int | None = None
        came_up = False
        while self._clock() < deadline:
            active, count = self._unit(stationd)
            first = count if first is None else first
            if active == "active" and self._state_of() is not None:
                came_up = True
                if settled_from is None or count != restarts:
                    settled_from, restarts = self._clock(), count
                elif self._clock() - settled_from >= self.settings.settle_seconds:
                    return True
            else:
                settled_from = None
                if not came_up and count - first >= self.settings.failed_starts:
                    _log.error("stationd failed to start %d times", count - first)
                    return False
            self._sleep(self.settings.poll_seconds)
        return False

    def prune(self, keep: Sequence[Path]) -> None:
        """Remove releases but the running one and the one before it."""
        kept = {p.resolve().parent for p in keep}
        if not self.releases.is_dir():
            return
        for path in self.releases.iterdir():
            if path.resolve() not in kept:
                shutil.rmtree(path, ignore_errors=True)

    def run_once(self) -> str:
        """Act on the request, if any; the outcome (``none`` when there was none).

        Whatever happens, the request is gone afterwards: the path unit would otherwise start
        the updater again at once, for ever.
        """
        self._working = None
        try:
            return self._run_once()
        except Exception:
            _log.exception("the updater failed")
            if self._working is not None:  # stationd must not ask for this release again
                release, version = self._working
                with contextlib.suppress(Exception):
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
        version = 0
        self._working = (release, 0)
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
        previous = self.switch(venv)
        _log.info("release %s switched in (previous: %s); restarting", release.version, previous)
        self._restart(self.settings.units)
        if self.healthy():
            _log.info("release %s is healthy", release.version)
            self._status(release, "installed", "", version)
            self.prune([venv, *([previous] if previous is not None else [])])
            self._done()
            return "installed"
        _log.error("release %s failed its health check; rolling back", release.version)
        if previous is not None and previous != venv:
            self.switch(previous)
            self._restart(self.settings.units)
            # Never asked for again: its space on the SD card goes back.
            shutil.rmtree(venv.parent, ignore_errors=True)
        self._status(release, "rolled_back", "health_check", version)
        self._done()
        return "rolled_back"


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
