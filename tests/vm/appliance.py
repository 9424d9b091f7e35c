"""The appliance test's set-up: the cached image, the share, the hub on the host, the guest.

:func:`booted_appliance` gives a running guest (``guest.py``) that has not been provisioned
yet, the hub started from its own unit file on the host's loopback (the guest reaches it at
10.0.2.2), and the share the guest mounts at ``/mnt/ks``:

- ``src/``: ``provisioning/`` and ``systemd/`` of this checkout (what ``setup.sh`` installs),
- ``wheels/``: every Python wheel the station needs for CPython 3.13 x86_64 (from
  ``scripts/vm-image``'s cache, lgpio's built with the image) and this checkout's own wheel,
  built now with no network,
- ``tools/probe.py``: stationd's API and the simulated button, timed inside the guest,
- ``tools/picture.py``: a call's picture in the surface's shared memory (its window opens),
- ``dropins/``: the rig's drop-ins for the station's units (emulation-scaled timeouts),
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.provisioning.keys import ITSigningKey
from provisioning.protocol import b64encode
from station.keys.keyring import generate_escrow_keypair
from tests.system.units import Root, Service, read_unit, start

from .guest import ExecResult, Guest, Image, read_ppm

__all__ = ["HUB_PORT", "Appliance", "booted_appliance", "cached_image"]

REPO = Path(__file__).resolve().parents[2]
#: The hub unit's own --port; the guest reaches it through QEMU's user network.
HUB_PORT = 8470
GUEST_HUB = f"http://10.0.2.2:{HUB_PORT}"
CARE_HOME = "solhaven"
CLINIC = {
    "id": "clinic-soendergade",
    "name": "Lægerne i Søndergade",
    "provider_number": "123456",
    "video_room": "room-soendergade",
}
#: Where the figures of the last run go (bench/README.md quotes them).
FIGURES_FILE = "vm-figures.json"


def cached_image() -> Image | None:
    """The image ``scripts/vm-image`` built, or None if it has not been built."""
    result = subprocess.run(
        [str(REPO / "scripts/vm-image"), "--print"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode == 3:
        return None
    if result.returncode != 0:
        raise RuntimeError(f"scripts/vm-image --print: {result.stderr}")
    return Image.from_assignments(result.stdout)


@dataclass
class Appliance:
    """The guest, the hub and what the test learns on the way."""

    guest: Guest
    hub: Service
    root: Root
    share: Path
    workdir: Path
    figures: dict[str, Any] = field(default_factory=dict)
    #: Moments (time.monotonic()) later tests measure from, e.g. "rebooted".
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def hub_data(self) -> Path:
        return self.root.path("/var/lib/kontaktstation-hub")

    @property
    def it_key(self) -> Path:
        """IT's signing key, which never lives on the hub (made on first use)."""
        return self.workdir / "it-signing.key"

    def admin(self, *args: str) -> str:
        """``kontaktstation admin`` as IT runs it, with IT's own signing key."""
        if not self.it_key.exists():
            ITSigningKey.generate(self.it_key)
        result = subprocess.run(
            [str(Path(sys.prefix) / "bin" / "kontaktstation"), "admin", "--data-dir",
             str(self.hub_data), "--actor", "it-vm-test", "--signing-key", str(self.it_key),
             *args],
            env=dict(self.hub.env), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"admin {args}: {result.stdout}{result.stderr}"
        return result.stdout

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """stationd's local API, from inside the guest (its Unix socket)."""
        words = ["python3", "/mnt/ks/tools/probe.py", method.lower(), path]
        if body is not None:
            words.append(json.dumps(body))
        answer = json.loads(self.guest.sh(*words, timeout=60).stdout)
        return int(answer["status"]), answer["body"]

    def uid(self, user: str) -> int:
        return int(self.guest.sh("id", "-u", user).stdout)

    def tmux_socket(self) -> str:
        """The UI supervisor's tmux socket in the guest."""
        return f"/run/user/{self.uid('kontaktstation-kiosk')}/kontaktstation-ui/tmux.sock"

    def screen_text(self) -> str:
        """The kiosk's terminal as text (the UI supervisor's tmux, read as root)."""
        socket = self.tmux_socket()
        result = self.guest.sh("tmux", "-S", socket, "capture-pane", "-p", "-t", "kiosk",
                               check=False)  # fmt: skip
        return result.stdout if result.status == 0 else ""

    def window(self) -> str:
        socket = f"/run/user/{self.uid('kontaktstation-kiosk')}/kontaktstation-ui/tmux.sock"
        result = self.guest.sh("tmux", "-S", socket, "display-message", "-p", "-t", "kiosk",
                               "#{window_name}", check=False)  # fmt: skip
        return result.stdout.strip()

    def tmux_keys(self, *keys: str, literal: bool = False) -> None:
        """Type into the kiosk's UI through its tmux (as the system test does)."""
        socket = f"/run/user/{self.uid('kontaktstation-kiosk')}/kontaktstation-ui/tmux.sock"
        for key in keys:
            words = ["tmux", "-S", socket, "send-keys", "-t", "kiosk"]
            if literal:
                words.append("-l")
            self.guest.sh(*words, key)
            time.sleep(0.3)

    def wait_text(self, wanted: str, *, within: float = 120, window: str | None = None) -> str:
        """Wait until the kiosk's terminal shows ``wanted``."""
        deadline = time.monotonic() + within
        text = ""
        while time.monotonic() < deadline:
            text = self.screen_text()
            if wanted in text and (window is None or self.window() == window):
                return text
            time.sleep(1)
        raise AssertionError(f"the kiosk never showed {wanted!r}:\n{text}")

    def screenshot(self, name: str) -> tuple[int, int, bytes]:
        """The display's content now (QEMU's scanout of virtio-gpu), kept in the workdir."""
        path = self.guest.screendump(self.workdir / f"{name}.ppm")
        return read_ppm(path)

    def unit_state(self, unit: str) -> dict[str, str]:
        """``systemctl show`` properties of a unit."""
        text = self.guest.sh(
            "systemctl", "show", unit,
            "-p", "ActiveState,SubState,NRestarts,MainPID,ExecMainStartTimestampMonotonic",
        ).stdout  # fmt: skip
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

    def record(self, name: str, value: Any, command: str = "") -> None:
        """A figure for bench/README.md (kept with the command that measured it)."""
        self.figures[name] = {"value": value, "command": command} if command else value
        (self.workdir / FIGURES_FILE).write_text(json.dumps(self.figures, indent=2) + "\n")

    def journal(self, unit: str, lines: int = 80) -> str:
        result: ExecResult = self.guest.sh(
            "journalctl", "-b", "-u", unit, "-n", str(lines), "--no-pager", check=False
        )
        return result.stdout


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True
    )


def project_wheel(
    wheels: Path, out: Path, *, version: str | None = None, broken: bool = False
) -> Path:
    """This checkout's wheel, built with no network (the build backend from ``wheels``).

    ``version``: built as that version (a release for the update test); ``broken``: a release
    whose stationd exits as it starts (the update test's rollback).
    """
    build = Path(tempfile.mkdtemp(prefix="ks-vm-build-"))
    try:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, build / name)
        for package in ("station", "stationapi", "hardware", "tui", "provisioning", "hub",
                        "kontaktstation"):  # fmt: skip
            _copy_tree(REPO / package, build / package)
        if version is not None:
            pyproject = build / "pyproject.toml"
            text, count = re.subn(
                r'^version = "[^"]+"$', f'version = "{version}"', pyproject.read_text(), count=1,
                flags=re.MULTILINE,
            )  # fmt: skip
            assert count == 1, "pyproject.toml has no version line"
            pyproject.write_text(text)
        if broken:
            with (build / "station/daemon/app.py").open("a") as app:
                app.write('\nraise SystemExit("a deliberately broken release (tests/vm)")\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--isolated", "--no-deps",
             "--no-index", "--find-links", str(wheels), "--wheel-dir", str(out), str(build)],
            env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"building the project's wheel failed:\n{result.stderr}")
    finally:
        shutil.rmtree(build, ignore_errors=True)
    (wheel,) = out.glob(f"kontaktstation-{version or ''}*.whl")
    return wheel


def make_share(image: Image, share: Path) -> Path:
    """Fill the share (see the module docs); the project's wheel."""
    src = share / "src"
    _copy_tree(REPO / "provisioning", src / "provisioning")
    _copy_tree(REPO / "systemd", src / "systemd")
    wheels = share / "wheels"
    wheels.mkdir(parents=True)
    for directory in (image.wheels, image.image_wheels):
        for wheel in directory.glob("*.whl"):
            shutil.copy2(wheel, wheels / wheel.name)
    wheel = project_wheel(image.wheels, wheels)
    tools = share / "tools"
    tools.mkdir()
    shutil.copy2(Path(__file__).with_name("probe.py"), tools / "probe.py")
    shutil.copy2(Path(__file__).with_name("picture.py"), tools / "picture.py")
    _copy_tree(Path(__file__).with_name("guest") / "dropins", share / "dropins")
    for path in share.rglob("*"):
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    return wheel


def _wait_http(url: str, service: Service, within: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert service.process.poll() is None, service.output()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{service.output()[-3000:]}")


@contextlib.contextmanager
def booted_appliance(image: Image, workdir: Path) -> Iterator[Appliance]:
    """Hub on the host, guest booted (not yet provisioned); everything stopped on the way out."""
    share = workdir / "share"
    share.mkdir(parents=True)
    started = time.monotonic()
    make_share(image, share)
    built = time.monotonic() - started
    root = Root(workdir / "host")
    hub_env = root.path("/etc/kontaktstation-hub/hub.env")
    hub_env.parent.mkdir(parents=True, exist_ok=True)
    # GPs and IT use the hub on the host's loopback; the station reaches it as GUEST_HUB.
    hub_env.write_text(f"KONTAKTSTATION_HUB_PUBLIC_BASE_URL=http://127.0.0.1:{HUB_PORT}\n")
    # No station token: the station signs in to the hub with its enrolled identity key.
    hub = start(read_unit("kontaktstation-hub.service"), root, log=workdir / "hub.log")
    guest = Guest(image, workdir / "qemu", share)
    appliance = Appliance(guest, hub, root, share, workdir)
    appliance.record("share_and_wheel_build_s", round(built, 1))
    try:
        _wait_http(f"http://127.0.0.1:{HUB_PORT}/gp/", hub)
        # IT's escrow key (its private half stays offline): without it no staff can enroll.
        _, escrow_public = generate_escrow_keypair()
        layer = workdir / "municipality.json"
        layer.write_text(
            json.dumps(
                {
                    "care_home": {"id": CARE_HOME, "name": "Plejecenter Solhaven"},
                    "station_name": "Stue 1",
                    "clinics": [CLINIC],
                    "escrow_public_key": b64encode(escrow_public),
                    # A generic board has no OTP key: IT allows the file secret.
                    "allow_file_device_secret": True,
                }
            )
        )
        appliance.admin("config", "set", "--municipality", str(layer))
        guest.start()
        appliance.record("first_boot_to_agent_s", round(guest.wait_for_agent(600), 1))
        yield appliance
    finally:
        guest.stop()
        hub.stop()
        (workdir / FIGURES_FILE).write_text(json.dumps(appliance.figures, indent=2) + "\n")
