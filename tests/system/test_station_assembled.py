"""The station as systemd starts it: one journey through the whole process tree.

Every process is started from its unit file in ``systemd/`` — the ``ExecStart=`` command line
and the ``Environment=``/``EnvironmentFile=`` settings read from the file (``units.py``) — and
nothing is wired by the test: the hub (``kontaktstation hub``), stationd (``kontaktstation
daemon --hardware real``), the video surface (``kontaktstation surface``) and the kiosk's
program (``kontaktstation ui``, the supervisor in tmux, in a pseudo-terminal standing in for
foot). IT works with ``kontaktstation admin`` on the hub's data directory, the staff member
types on the kiosk's keyboard (tmux ``send-keys``) and reads its screen, the GP is headless
Chromium on the hub's GP page, the privacy button is pressed.

The station's ``EnvironmentFile`` (what the set-up writes) names its hardware for this machine,
which has none: the stamped test pattern as camera, the fake speakerphone, gpiozero's mock
pins (pressed through stationd's mock-pin socket). Nothing is left to a default that could
fall back: the test checks that every port runs exactly the backend named, and that the
frame sink is the shared memory the surface draws from.

What the test overrides, and why: ``SDL_VIDEODRIVER=offscreen`` for the surface (there is no
compositor; the unit's ``wayland`` would wait for one), the logind session's
``XDG_RUNTIME_DIR`` and a terminal type for the kiosk program, and what systemd itself hands a
service (``NOTIFY_SOCKET``, ``CREDENTIALS_DIRECTORY``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from hardware.camera.testpattern import TestPattern
from provisioning.protocol import b64encode
from station.keyring import generate_escrow_keypair
from tests.integration.fhir_receiver import RunningReceiver, running_receiver
from tests.integration.netns import delegated_to_loopback_namespace

from .kiosk import Terminal, TmuxScreen
from .units import Root, Service, read_unit, start

pytestmark = [pytest.mark.system, pytest.mark.browser, pytest.mark.slow]

HUB_PORT = 8470  # the hub unit's own --port
HUB = f"http://127.0.0.1:{HUB_PORT}"
STATION_TOKEN = "system-test-station-token-0123456789abcdef"
CARE_HOME = "solhaven"
CLINIC = {
    "id": "clinic-soendergade",
    "name": "Lægerne i Søndergade",
    "provider_number": "123456",
    "video_room": "room-soendergade",
}
STAFF_PIN = "482916"
ROUND = [
    ("Karen Jensen", "14-03-1936", "12"),
    ("Poul Nielsen", "02-11-1931", "14"),
]
NOTE = "Blodtryk 135/85. Fortsæt vanlig medicin. Kontrol om 3 måneder."
#: The GP's camera (Chromium's fake capture plays this file): the stamped test pattern.
GP_FRAMES = 60


@dataclass
class Station:
    """The running process tree and the handles a person would have on it."""

    root: Root
    logs: Path
    services: dict[str, Service] = field(default_factory=dict)
    terminal: Terminal | None = None
    screen: TmuxScreen | None = None
    notify: socket.socket | None = None
    receiver: RunningReceiver | None = None

    @property
    def data_dir(self) -> Path:
        return self.root.path("/var/lib/kontaktstation")

    @property
    def hub_data(self) -> Path:
        return self.root.path("/var/lib/kontaktstation-hub")

    @property
    def surface_dir(self) -> Path:
        return self.root.path("/run/kontaktstation/surface")

    @property
    def socket_path(self) -> Path:
        return self.root.path("/run/kontaktstation/stationd.sock")

    @property
    def gpio_socket(self) -> Path:
        return self.root.path("/run/kontaktstation/gpio-mock.sock")

    def kiosk(self) -> TmuxScreen:
        assert self.screen is not None
        return self.screen

    def admin(self, *args: str) -> str:
        """``kontaktstation admin`` as IT runs it on the hub's server."""
        env = dict(self.services["hub"].env)
        result = subprocess.run(
            [str(self.root.venv / "bin" / "kontaktstation"), "admin", "--data-dir",
             str(self.hub_data), "--actor", "it-test", *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"admin {args}: {result.stdout}{result.stderr}"
        return result.stdout

    def api(self) -> httpx.AsyncClient:
        """stationd's local API, as the UIs reach it (read-only use in this test)."""
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(self.socket_path)),
            base_url="http://stationd",
            timeout=10,
        )

    def alive(self) -> None:
        for name, service in self.services.items():
            code = service.process.poll()
            assert code is None, f"{name} exited ({code}):\n{service.output()[-3000:]}"

    def ready(self, within: float = 60.0) -> None:
        """stationd's ``READY=1`` on the notify socket (``Type=notify``)."""
        assert self.notify is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.alive()
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            if "READY=1" in message.split("\n"):
                return
        raise AssertionError("stationd never said READY=1")


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def gp_camera_file(directory: Path) -> Path:
    """A y4m file of the stamped test pattern for Chromium's fake camera (it loops it)."""
    pattern = TestPattern(640, 480)
    path = directory / "gp-camera.y4m"
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for seq in range(GP_FRAMES):
            frame = pattern.render(seq, 1_000_000 + seq * 33_333)
            out.write(b"FRAME\n")
            for plane in frame.reformat(format="yuv420p").planes:
                data = bytes(plane)
                width = plane.width
                line = plane.line_size
                rows = len(data) // line
                out.write(b"".join(data[r * line : r * line + width] for r in range(rows)))
    return path


@contextlib.asynccontextmanager
async def station_tree(base: Path) -> AsyncIterator[Station]:
    """Hub, stationd, surface and kiosk, each from its unit; torn down in reverse order."""
    root = Root(base)
    station = Station(root, base / "logs")
    escrow_private, escrow_public = generate_escrow_keypair()
    del escrow_private  # IT's offline half: not needed here
    # --- what IT puts on the hub's server (hub.env, the station-token credential)
    write(
        root.path("/etc/kontaktstation-hub/hub.env"), f"KONTAKTSTATION_HUB_PUBLIC_BASE_URL={HUB}\n"
    )
    write(root.path("/etc/kontaktstation-hub/station-token"), STATION_TOKEN, 0o600)
    # --- what the station's set-up writes (station.env): hub, and this machine's hardware
    write(root.path("/etc/kontaktstation/station-token"), STATION_TOKEN, 0o600)
    write(
        root.path("/etc/kontaktstation/station.env"),
        "\n".join(
            [
                f"KONTAKTSTATION_HUB_URL={HUB}",
                "KONTAKTSTATION_HUB_STATION_TOKEN_FILE=/etc/kontaktstation/station-token",
                "KONTAKTSTATION_ICE_SERVERS=[]",
                "KONTAKTSTATION_CALL_LOOPBACK=1",
                "KONTAKTSTATION_CAMERA=testpattern",
                "KONTAKTSTATION_AUDIO=fake",
                "GPIOZERO_PIN_FACTORY=mock",
                "KONTAKTSTATION_MOCK_GPIO_SOCKET=/run/kontaktstation/gpio-mock.sock",
            ]
        )
        + "\n",
    )
    runtime = root.path("/run/user/1000")
    runtime.mkdir(parents=True, mode=0o700)
    notify_path = base / "notify.sock"
    station.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    station.notify.bind(str(notify_path))
    station.notify.settimeout(0.5)
    try:
        async with running_receiver() as receiver:
            station.receiver = receiver
            hub = read_unit("kontaktstation-hub.service")
            station.services["hub"] = start(hub, root, log=station.logs / "hub.log")
            await wait_http(f"{HUB}/gp/", station)
            # IT's defaults for the municipality (signed by the hub when published).
            layer = base / "municipality.json"
            layer.write_text(
                json.dumps(
                    {
                        "care_home": {"id": CARE_HOME, "name": "Plejecenter Solhaven"},
                        "station_name": "Stue 1",
                        "clinics": [CLINIC],
                        "escrow_public_key": b64encode(escrow_public),
                        "retention": {"purge_after_hours": 1},
                        "eoj": {
                            "fhir_base_url": receiver.fhir_url,
                            "token_url": receiver.token_url,
                            "client_id": "kontaktstation",
                            "client_secret": "system-test-client-secret",
                            "care_home_sor": "123456789012",
                            "allow_insecure_loopback": True,
                        },
                    }
                )
            )
            station.admin("config", "set", "--municipality", str(layer))
            stationd = read_unit("kontaktstation-stationd.service")
            station.services["stationd"] = start(
                stationd,
                root,
                log=station.logs / "stationd.log",
                extra_env={"NOTIFY_SOCKET": str(notify_path)},  # systemd's, for Type=notify
            )
            await asyncio.to_thread(station.ready)
            surface = read_unit("kontaktstation-surface.service")
            station.services["surface"] = start(
                surface,
                root,
                log=station.logs / "surface.log",
                # No compositor here: SDL draws offscreen (the unit asks for Wayland).
                extra_env={"SDL_VIDEODRIVER": "offscreen"},
            )
            kiosk = read_unit("kontaktstation-kiosk.service")
            # labwc -S "foot ... kontaktstation ui": the session program is foot's last words.
            session = kiosk.exec_start[kiosk.exec_start.index("-S") + 1].split()
            program = session[session.index("--app-id=kontaktstation-ui") + 1 :]
            assert program[-1] == "ui" and program[0].endswith("/kontaktstation"), program
            station.terminal = Terminal(120, 40)
            station.services["kiosk"] = start(
                kiosk,
                root,
                argv=program,
                log=station.logs / "kiosk.log",
                extra_env={
                    "XDG_RUNTIME_DIR": str(runtime),  # the logind session's
                    "TERM": "xterm-256color",  # foot's own terminfo may be missing here
                },
                terminal=station.terminal.slave,
            )
            station.screen = TmuxScreen(runtime / "kontaktstation-ui" / "tmux.sock")
            yield station
    finally:
        for name in ("kiosk", "surface", "stationd", "hub"):
            service = station.services.get(name)
            if service is not None:
                service.stop()
        if station.terminal is not None:
            station.terminal.close()
        station.notify.close()


async def wait_http(url: str, station: Station, within: float = 60.0) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            station.alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def base() -> Iterator[Path]:
    # A short path: the unit's /run/kontaktstation/... sockets must fit a socket address.
    path = Path(tempfile.mkdtemp(prefix="ks-sys-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_station_as_systemd_starts_it_does_its_job(
    request: pytest.FixtureRequest, base: Path
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux (scripts/ensure-system-deps installs it)")
    asyncio.run(journey(base))


async def journey(base: Path) -> None:
    async with station_tree(base) as station:
        kiosk = station.kiosk()
        # --- every port is the backend the station's configuration names; nothing fell back
        async with station.api() as api:
            health = (await api.get("/v1/health")).json()
            assert health["ports"] == {
                "camera": "testpattern",
                "audio": "fake",
                "gpio": "mock",
                "frame_sink": "shm",
                "hub": "configured",
                "export": "summary",  # no EOJ endpoint until IT's configuration arrives
            }
            enrollment = (await api.get("/v1/enrollment")).json()
        # --- enrollment: the lock screen shows the code; IT approves it on the hub
        screen = await kiosk.wait(enrollment["code"], window="locked", within=60)
        assert "Stationen er låst" in screen
        station.admin("approve", enrollment["code"], "--care-home", CARE_HOME, "--name", "Stue 1")
        # --- the signed configuration arrives and is applied: the EOJ endpoint is in force
        async with station.api() as api:
            deadline = time.monotonic() + 90
            while (await api.get("/v1/health")).json()["ports"]["export"] != "fhir":
                assert time.monotonic() < deadline, "the configuration never took effect"
                station.alive()
                await asyncio.sleep(0.3)
        await kiosk.wait(lambda s: enrollment["code"] not in s, window="locked")
        print(kiosk.text())
