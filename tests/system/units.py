"""Start the station's processes exactly as the units in ``systemd/`` start them.

A :class:`Unit` is read from the unit file itself: ``ExecStart=``, ``Environment=``,
``EnvironmentFile=``, ``LoadCredential=``, ``WorkingDirectory=``, ``RuntimeDirectory=`` and
``StateDirectory=``. :class:`Root` maps the unit's absolute paths onto a private directory
tree (``/var/lib/...``, ``/run/...``, ``/etc/...``), and ``/opt/kontaktstation/venv`` onto this
checkout's virtual environment, so the command lines and environment are the units' own, only
rooted elsewhere. What systemd itself gives a service, the harness gives too, and says so:
``NOTIFY_SOCKET`` (``Type=notify``), ``CREDENTIALS_DIRECTORY`` (``LoadCredential=``), the
created state and runtime directories; the logind session's ``XDG_RUNTIME_DIR`` for the kiosk.

What it does not reproduce (the booted appliance does, under QEMU): the Unix users, the
sandboxing (``ProtectSystem=``, ``DevicePolicy=``, ...), the compositor and the real devices.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPO", "UNITS", "Root", "Service", "Unit", "read_unit"]

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
#: Where the units expect the software; mapped onto this checkout's venv.
INSTALLED_VENV = "/opt/kontaktstation/venv"
#: A service's environment before its own settings (systemd's default PATH, a locale).
BASE_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


@dataclass
class Unit:
    """The settings of one unit file, as lists (a key may repeat)."""

    name: str
    settings: dict[str, list[str]] = field(default_factory=dict)

    def all(self, key: str) -> list[str]:
        """Every value of ``key`` (in order)."""
        return list(self.settings.get(key, []))

    def one(self, key: str) -> str | None:
        """The last value of ``key`` (systemd: the last assignment wins), or None."""
        values = self.settings.get(key)
        return values[-1] if values else None

    @property
    def exec_start(self) -> list[str]:
        """``ExecStart=`` split as systemd splits it (quotes respected)."""
        value = self.one("ExecStart")
        if value is None:
            raise ValueError(f"{self.name} has no ExecStart=")
        return shlex.split(value.lstrip("-@:+!"))

    def environment(self) -> dict[str, str]:
        """Every ``Environment=`` assignment (later ones win)."""
        env: dict[str, str] = {}
        for line in self.all("Environment"):
            for word in shlex.split(line):
                key, _, value = word.partition("=")
                env[key] = value
        return env


def read_unit(name: str) -> Unit:
    """Parse ``systemd/<name>`` (section names are dropped: keys do not clash here)."""
    unit = Unit(name)
    for raw in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        unit.settings.setdefault(key.strip(), []).append(value.strip())
    return unit


def _env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of an EnvironmentFile (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip().strip('"')
    return env


#: An absolute path the units use under one of the mapped trees.
_MAPPED = re.compile(r"(?<![\w.])/(?:opt/kontaktstation|var/lib|run|etc)(?:/[^\s:\"']*)?")


@dataclass
class Root:
    """A private file-system root the units' absolute paths are mapped into."""

    base: Path
    #: The checkout's virtual environment (standing in for /opt/kontaktstation/venv).
    venv: Path = field(default_factory=lambda: Path(sys.prefix))

    def path(self, absolute: str) -> Path:
        """Where the unit's ``absolute`` path is in this root."""
        if absolute == INSTALLED_VENV or absolute.startswith(INSTALLED_VENV + "/"):
            return self.venv / absolute[len(INSTALLED_VENV) :].lstrip("/")
        return self.base / absolute.lstrip("/")

    def rewrite(self, text: str) -> str:
        """``text`` with every mapped absolute path in it mapped."""

        def swap(match: re.Match[str]) -> str:
            return str(self.path(match.group(0)))

        return re.sub(
            r"(?<![\w.])/(?:opt/kontaktstation|var/lib|run|etc)(?:/[^\s:\"']*)?", swap, text
        )


@dataclass
class Service:
    """One running process started from a unit."""

    unit: Unit
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the process wrote (its journal, in effect)."""
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` (``TimeoutStopSec=``-like); the status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def prepare(unit: Unit, root: Root) -> None:
    """Make the unit's ``StateDirectory=`` and ``RuntimeDirectory=``, as systemd does."""
    for key, parent, default_mode in (
        ("StateDirectory", "/var/lib", "0755"),
        ("RuntimeDirectory", "/run", "0755"),
    ):
        mode = int(unit.one(key + "Mode") or default_mode, 8)
        for name in unit.all(key):
            for word in name.split():
                directory = root.path(f"{parent}/{word}")
                directory.mkdir(parents=True, exist_ok=True)
                directory.chmod(mode)


def start(
    unit: Unit,
    root: Root,
    *,
    argv: Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log: Path,
    terminal: int | None = None,
) -> Service:
    """Start ``unit``'s ``ExecStart=`` (or ``argv``, a command the unit itself runs, e.g. the
    kiosk's session program) with the unit's environment, rooted in ``root``. ``terminal``
    (a pty's slave end) is the program's terminal, as foot's is for the kiosk's program.

    ``extra_env`` is what systemd or the session would add (``NOTIFY_SOCKET``, ...) and what a
    test must override; each use says why.
    """
    prepare(unit, root)
    env = dict(BASE_ENVIRONMENT)
    # The checkout's code, where a test runs from a worktree with PYTHONPATH.
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    for value in unit.all("EnvironmentFile"):
        optional = value.startswith("-")
        path = root.path(value.lstrip("-"))
        if path.exists():
            env |= {key: root.rewrite(value) for key, value in _env_file(path).items()}
        elif not optional:
            raise FileNotFoundError(f"{unit.name}: EnvironmentFile {path} is missing")
    credentials = root.base / "credentials" / unit.name
    for value in unit.all("LoadCredential"):
        name, _, source = value.partition(":")
        credentials.mkdir(parents=True, exist_ok=True)
        (credentials / name).write_bytes(root.path(source).read_bytes())
        (credentials / name).chmod(0o400)
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
    for key, value in unit.environment().items():
        env[key] = root.rewrite(value.replace("%d", str(credentials)))
    env |= dict(extra_env or {})
    command = [root.rewrite(word) for word in (argv if argv is not None else unit.exec_start)]
    workdir = unit.one("WorkingDirectory")
    cwd = root.path(workdir) if workdir else root.base
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL if terminal is None else terminal,
            stdout=out if terminal is None else terminal,
            stderr=subprocess.STDOUT if terminal is None else terminal,
            start_new_session=True,
        )
    return Service(unit, command, env, process, log)
