"""The appliance on a booted Debian 13: set up by ``provisioning/pi/setup.sh``, rebooted, used.

A Debian 13 (trixie) image built and cached by ``scripts/vm-image`` boots under QEMU (TCG) with
systemd as PID 1 and the station's hardware as real kernel drivers: vivid (camera),
snd-aloop (sound), virtio-gpu (the kiosk's display), gpio-sim (the privacy button's GPIO chip)
and an i6300esb watchdog. In the guest, the set-up runs for a generic (non-Pi) board with the
hub's URL and IT's key (no call credential: the station signs in with its identity key),
exactly as IT would run it on a Pi;
then the guest reboots and everything after is checked from the host, as a person would see
it or IT would check it:

1. the set-up succeeds, locks the imager's admin account, and its figures are kept;
2. after the reboot every unit is active and none restarts; the sandboxing the units ask for
   holds (``/run/user``: each unit sees its own runtime directory only), the hardware
   watchdog is armed, the journal is bounded;
3. the kiosk compositor's output (QEMU's screenshot of the display) shows the lock screen,
   and the kiosk's terminal says so;
4. IT approves the enrollment code on the hub and the station takes its configuration;
5. a staff member enrolls and unlocks; a press of the gpio-sim button locks within the bench's
   bound; a key typed on the (emulated) keyboard reaches the UI through labwc and foot with
   and without the video window on the screen (a call's picture in the surface's shared
   memory), and after the surface restarted;
6. no labwc default key or pointer binding does anything (the video window on the screen);
7. a reboot comes back locked;
8. IT rolls a release out to the station (a new build of this checkout, from the hub): the
   station installs it beside the running one, switches, passes the health check and comes
   back locked on it; a deliberately broken release, rolled out to the care home, fails the
   health check and is rolled back by itself;
9. the same step (``kontaktstation self-check``) on the host and in the guest: the emulation
   factor for every figure here.

The tests run in order on one guest (each builds on the one before). The whole module runs
where only loopback exists (``scripts/test`` runs pytest in such a namespace as root), so the
guest's user network reaches the host's 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.integration.netns import inside_loopback_namespace

from .appliance import (
    CARE_HOME,
    GUEST_HUB,
    Appliance,
    booted_appliance,
    cached_image,
    project_wheel,
)
from .guest import GuestError
from .picture import COLOUR as PICTURE_COLOUR

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

UNITS = (
    "kontaktstation-stationd.service",
    "kontaktstation-kiosk.service",
    "kontaktstation-surface.service",
    "kontaktstation-ui-locked.service",
    "kontaktstation-ui-staff.service",
)
STAFF_PIN = "482916"
#: The lock screen's title colour (tui/locked/locked.tcss, #locked-title).
LOCK_TITLE_RGB = (0x9E, 0xCB, 0xFF)
#: The colour of the call's picture tests/vm/picture.py puts on the video surface.
PICTURE_RGB = PICTURE_COLOUR
#: Button press to locked: the bench's bound on a Pi (tests/integration/test_daemon_button.py
#: holds stationd to it on this machine); in the guest it is multiplied by the emulation
#: factor measured below, with a floor.
BUTTON_BOUND_MS = 250.0


@pytest.fixture(scope="module")
def appliance() -> Iterator[Appliance]:
    if not inside_loopback_namespace():
        pytest.skip(
            "the appliance test runs where only loopback exists: scripts/test tests/vm (root)"
        )
    image = cached_image()
    if image is None:
        # scripts/test builds it (as root, before pytest's namespace cuts the network off):
        # a missing image is a broken run, not a reason to skip.
        pytest.fail(
            "no VM image for these inputs: run scripts/vm-image as root (scripts/test does)"
        )
    workdir = Path(os.environ.get("KS_VM_WORKDIR") or tempfile.mkdtemp(prefix="ks-vm-"))
    workdir.mkdir(parents=True, exist_ok=True)
    with booted_appliance(image, workdir) as booted:
        try:
            yield booted
        finally:
            print(f"\nvm figures ({workdir}):\n{json.dumps(booted.figures, indent=2)}")
            console = booted.guest.console_tail(20000)
            (workdir / "console-tail.log").write_text(console)


def _colour_pixels(
    rgb: bytes,
    width: int,
    height: int,
    colour: tuple[int, int, int],
    region: tuple[float, float] = (0.0, 1.0),
    tolerance: int = 24,
) -> int:
    """How many pixels of ``colour`` (within ``tolerance``) lie in the rows ``region``."""
    picture = np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)
    rows = picture[int(region[0] * height) : int(region[1] * height)].astype(np.int16)
    near = np.all(np.abs(rows - np.array(colour, dtype=np.int16)) <= tolerance, axis=2)
    return int(near.sum())


def _wait_lock_screen(appliance: Appliance, within: float) -> tuple[float, str]:
    """Wait until the display shows the lock screen (its title's colour; the UI has the whole
    screen outside a call) and the kiosk's terminal says so; seconds waited and the text."""
    started = time.monotonic()
    deadline = started + within
    while True:
        try:
            width, height, rgb = appliance.screenshot("lock-screen")
            title = _colour_pixels(rgb, width, height, LOCK_TITLE_RGB)
        except (GuestError, OSError, ValueError):
            title = 0
        if title > 50:
            text = appliance.screen_text()
            if "Stationen er låst" in text:
                return time.monotonic() - started, text
        if time.monotonic() > deadline:
            states = {u: appliance.unit_state(u) for u in UNITS}
            raise AssertionError(
                f"no lock screen within {within} s (title pixels {title}); units {states}\n"
                + appliance.journal("kontaktstation-kiosk.service")
                + appliance.journal("kontaktstation-surface.service")
            )
        time.sleep(1)


# --------------------------------------------------------------------------- 1. set-up


def test_setup_provisions_a_generic_board_and_locks_the_imagers_user(
    appliance: Appliance,
) -> None:
    guest = appliance.guest
    it_key = re.search(r"trusted\s+(\S+)", appliance.admin("key"))
    assert it_key is not None
    wheel = next((appliance.share / "wheels").glob("kontaktstation-*.whl")).name
    command = (
        "/mnt/ks/src/provisioning/pi/setup.sh --target generic"
        f" --hub-url {GUEST_HUB} --it-key {it_key.group(1)}"
        " --wheels /mnt/ks/wheels"
        f" --source /mnt/ks/wheels/{wheel}"
    )
    # The rig's one change to the product's units, before they exist: start timeout and
    # watchdog scaled for the emulator (tests/vm/guest/dropins/90-vm-emulation.conf says why).
    guest.run(
        "install -D -m 0644 /mnt/ks/dropins/90-vm-emulation.conf"
        " /etc/systemd/system/kontaktstation-stationd.service.d/90-vm-emulation.conf"
    )
    # And for the updater: stationd takes minutes to come up under TCG after an update (its
    # media and crypto stack, beside the kiosk's restart), so its health check waits longer.
    # (Written here, not as a file in tests/vm/guest: that directory keys the cached image.)
    guest.run(
        "mkdir -p /etc/systemd/system/kontaktstation-update.service.d && printf '%s\\n'"
        " '# The appliance test rig (tests/vm): the health check scaled for the emulator.'"
        " '[Service]' 'Environment=KONTAKTSTATION_UPDATE_HEALTH_SECONDS=900'"
        " > /etc/systemd/system/kontaktstation-update.service.d/90-vm-update.conf"
    )
    started = time.monotonic()
    result = guest.run(command, timeout=2400, check=False)
    elapsed = time.monotonic() - started
    (appliance.workdir / "setup.log").write_text(result.stdout + result.stderr)
    assert result.status == 0, result.stdout[-6000:] + result.stderr[-6000:]
    appliance.record("setup_s", round(elapsed, 1), f"setup.sh {command.split(' ', 1)[1]}")
    assert "trixie (Debian 13, Python 3.13), target generic" in result.stdout
    # The imager's admin user ("pi" in the image) can no longer log in.
    shadow = guest.sh("getent", "shadow", "pi").stdout.split(":")
    assert shadow[1].startswith("!") and shadow[7] == "1", shadow
    # The venv's Python packages: the station's own, lgpio for the generic board.
    venv = "/opt/kontaktstation/venv/bin/python"
    guest.sh(venv, "-c", "import kontaktstation, lgpio, gpiozero, av, pygame")
    settings = guest.sh("cat", "/etc/kontaktstation/station.env").stdout
    assert f"KONTAKTSTATION_HUB_URL={GUEST_HUB}" in settings
    assert "KONTAKTSTATION_CAMERA=v4l2" in settings and "GPIOZERO_PIN_FACTORY=lgpio" in settings
    # A second run changes nothing but reinstalling the venv's packages.
    started = time.monotonic()
    again = guest.run(command, timeout=2400, check=False)
    appliance.record("setup_second_run_s", round(time.monotonic() - started, 1))
    assert again.status == 0, again.stdout[-4000:] + again.stderr[-4000:]
    changed = [
        line for line in again.stdout.splitlines()
        if line.startswith("  + ") and not re.search(
            r"pip install|numpy\.__file__|daemon-reload|sysctl --quiet|set-default|"
            r"systemctl start|curl ", line)
    ]  # fmt: skip
    assert changed == [], changed
    # Then the reboot the set-up asks for: boot to the lock screen.
    started = time.monotonic()
    appliance.marks["rebooted"] = started
    guest.reboot()
    waited, _ = _wait_lock_screen(appliance, within=600)
    appliance.record(
        "reboot_to_lock_screen_s",
        round(time.monotonic() - started, 1),
        "systemctl reboot → lock screen's title colour in QEMU's screendump",
    )
    assert waited >= 0


# --------------------------------------------------------------------------- 2. units


def _why_it_ended(appliance: Appliance, unit: str) -> str:
    """systemd's own lines about the unit this boot (a start timeout, the watchdog, an exit
    status), and the unit's tracebacks: whole, not cut to fit an assertion's repr."""
    result = appliance.guest.run(
        f"journalctl -b -u {unit} --no-pager -o short-monotonic"
        " | grep -E 'systemd\\[1\\]|Traceback|Error|error:|Fatal Python|Thread 0x|  File '"
        " | tail -n 120",
        check=False,
    )
    return result.stdout + result.stderr


def _wait_units_active(appliance: Appliance, within: float) -> float:
    """Wait until every unit is active (stationd: READY=1 sent); seconds waited. A unit that
    fails or restarts on the way fails at once: that is the finding, not slowness."""
    started = time.monotonic()
    while True:
        states = {unit: appliance.unit_state(unit) for unit in UNITS}
        for unit, state in states.items():
            assert state["ActiveState"] in ("active", "activating"), (
                unit, state, appliance.journal(unit),
            )  # fmt: skip
            if state["NRestarts"] != "0":
                pytest.fail(f"{unit} restarted: {state}\n{_why_it_ended(appliance, unit)}")
        if all(state["ActiveState"] == "active" for state in states.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < within, (
            states, appliance.journal("kontaktstation-stationd.service"),
        )  # fmt: skip
        time.sleep(2)


def test_every_unit_is_active_and_none_restarts(appliance: Appliance) -> None:
    _wait_units_active(appliance, within=600)
    appliance.record(
        "reboot_to_units_active_s",
        round(time.monotonic() - appliance.marks["rebooted"], 1),
        "systemctl reboot → every unit active (stationd's READY=1)",
    )
    first = {unit: appliance.unit_state(unit) for unit in UNITS}
    time.sleep(15)
    second = {unit: appliance.unit_state(unit) for unit in UNITS}
    for unit in UNITS:
        assert second[unit]["ActiveState"] == "active", (
            unit,
            second[unit],
            appliance.journal(unit),
        )
        assert second[unit]["NRestarts"] == "0", (unit, second[unit], appliance.journal(unit))
        assert first[unit]["MainPID"] == second[unit]["MainPID"], unit
    failed = appliance.guest.sh("systemctl", "--failed", "--no-legend", "--plain").stdout
    assert failed.strip() == "", failed


def test_the_units_sandboxes_hold_in_the_booted_system(appliance: Appliance) -> None:
    guest = appliance.guest
    station_uid = appliance.uid("kontaktstation")
    kiosk_uid = appliance.uid("kontaktstation-kiosk")
    for unit, own in (
        ("kontaktstation-stationd.service", station_uid),
        ("kontaktstation-kiosk.service", kiosk_uid),
        ("kontaktstation-surface.service", kiosk_uid),
    ):
        pid = appliance.unit_state(unit)["MainPID"]
        # What the unit's own mount namespace shows in /run/user and /home.
        run_user = guest.sh("nsenter", "-t", pid, "-m", "ls", "-A", "/run/user").stdout.split()
        home = guest.sh("nsenter", "-t", pid, "-m", "ls", "-A", "/home").stdout.split()
        assert run_user == [str(own)], (unit, run_user)
        assert home == [], (unit, home)
    # stationd reaches its PipeWire session; the kiosk's Wayland socket exists.
    guest.sh("test", "-S", f"/run/user/{station_uid}/pipewire-0")
    guest.run(f"ls /run/user/{kiosk_uid}/wayland-* >/dev/null")
    # Fleet hygiene: hardware watchdog armed, journal bounded, time sync pulled in.
    assert guest.sh("cat", "/sys/class/watchdog/watchdog0/state").stdout.strip() == "active"
    manager = guest.sh("systemctl", "show", "-p", "RuntimeWatchdogUSec").stdout
    assert manager.strip() == "RuntimeWatchdogUSec=15s", manager
    journald = guest.sh("systemd-analyze", "cat-config", "systemd/journald.conf").stdout
    assert "SystemMaxUse=64M" in journald
    wants = guest.sh("systemctl", "show", "-p", "Wants", "kontaktstation-stationd").stdout
    assert "time-sync.target" in wants
    exposure = guest.sh("systemd-analyze", "security", "--no-pager",
                        "kontaktstation-stationd.service").stdout  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", exposure)
    assert match and float(match.group(1)) <= 3.0, exposure[-500:]
    appliance.record("stationd_exposure_in_guest", float(match.group(1)))


# --------------------------------------------------------------------------- 3. lock screen


def test_the_compositor_shows_the_lock_screen(appliance: Appliance) -> None:
    _wait_lock_screen(appliance, within=120)
    width, height, rgb = appliance.screenshot("lock-screen")
    assert (width, height) == (1280, 800)
    # The UI (foot, the whole screen outside a call) draws the title's colour near the top,
    # where the video's window would be during a call: no video window outside a call.
    assert _colour_pixels(rgb, width, height, LOCK_TITLE_RGB, (0.0, 0.6)) > 50
    assert _colour_pixels(rgb, width, height, PICTURE_RGB) == 0
    assert appliance.window() == "locked"
    # The station's own hardware check, through the real drivers: camera (vivid), button and
    # LED (gpio-sim), loudspeaker (snd-aloop through PipeWire) pass. The microphone hears
    # digital silence: nothing in the VM makes a sound (a room always does), so the lock
    # screen shows the hardware-fault banner for it, as it should.
    deadline = time.monotonic() + 240
    while True:
        _, health = appliance.api("GET", "/v1/health")
        failing = {c["name"]: c["detail"] for c in health["checks"] if not c["ok"]}
        if set(failing) <= {"microphone"} and len(health["checks"]) >= 5:
            break
        assert time.monotonic() < deadline, health
        time.sleep(5)
    appliance.record("health_in_guest", {c["name"]: c["detail"] for c in health["checks"]})
    assert {c["name"] for c in health["checks"]} >= {"camera", "loudspeaker", "button", "led"}


def test_the_enrollment_code_is_on_the_screen(appliance: Appliance) -> None:
    """With the hardware-fault banner shown (the VM's silent microphone), the enrollment code
    is on the kiosk's screen: the UI has the whole screen outside a call (it had the bottom
    40 %, 12 rows, where the code fell below the last row)."""
    _, enrollment = appliance.api("GET", "/v1/enrollment")
    text = appliance.wait_text(enrollment["code"], window="locked", within=60)
    assert "Stationen er låst" in text
    rows = appliance.guest.sh(
        "tmux", "-S", appliance.tmux_socket(), "display-message", "-p", "-t", "kiosk",
        "#{window_width}x#{window_height}",
    ).stdout.strip()  # fmt: skip
    # 1280x800: the whole screen (97 x 31 derived from foot's 13 x 25 px cell and 8 px
    # padding; the booted foot gives 97 x 30), at least the 28 rows the staff screens are
    # tested to fit (tests/tui/test_station_fit.py).
    appliance.record("kiosk_terminal_cells", rows, "tmux display-message #{window_width}x...")
    columns, lines = (int(n) for n in rows.split("x"))
    assert columns == 97 and lines >= 28, rows


# --------------------------------------------------------------------------- 4. enrollment


def test_it_approves_the_enrollment_and_the_station_takes_its_configuration(
    appliance: Appliance,
) -> None:
    status, enrollment = appliance.api("GET", "/v1/enrollment")
    assert status == 200, enrollment
    approved_at = time.monotonic()
    approved = appliance.admin(
        "approve", enrollment["code"], "--care-home", CARE_HOME, "--name", "Stue 1"
    )
    appliance.figures["station_id"] = approved.split()[1]
    deadline = time.monotonic() + 180
    while True:
        status, _ = appliance.api("GET", "/v1/enrollment")
        listing = appliance.admin("stations", "show", appliance.figures["station_id"])
        # The station runs the configuration the hub signed with IT's pinned key.
        running = re.search(r"config running\s+(\d+)", listing)
        published = re.search(r"config published\s+(\d+)", listing)
        applied = bool(running and published and running.group(1) == published.group(1))
        if status == 404 and "Stue 1" in listing and applied:
            break
        assert time.monotonic() < deadline, listing
        time.sleep(2)
    appliance.record("approve_to_config_running_s", round(time.monotonic() - approved_at, 1))
    assert re.search(r"online\s+yes", listing), listing
    appliance.wait_text("Stationen er låst", window="locked")


# --------------------------------------------------------------------------- 5. the button


def test_a_staff_member_unlocks_and_the_privacy_button_locks(appliance: Appliance) -> None:
    station_id = appliance.figures["station_id"]
    issued = appliance.admin("staff", "issue", "--station", station_id, "--name", "Mette H.")
    staff_id = re.search(r"staff id\s+(\S+)", issued).group(1)  # type: ignore[union-attr]
    code = re.search(r"code\s+(.+?)\s{3}", issued).group(1)  # type: ignore[union-attr]
    # The staff member enrolls with IT's code and unlocks through stationd's API, as the staff
    # UI does (tests/system drives the UI's own dialogs; test_the_keyboard_reaches_the_ui
    # below types on the kiosk's keyboard).
    status, enrolled = appliance.api("POST", "/v1/staff/enroll", {"code": code, "pin": STAFF_PIN})
    assert status == 200 and enrolled["staff_id"] == staff_id, enrolled
    # Staff log in with the short number the station gave them (issue 17), not the id.
    number = enrolled["staff_number"]
    status, unlocked = appliance.api(
        "POST", "/v1/unlock", {"staff_number": number, "pin": STAFF_PIN}
    )
    assert status == 200 and unlocked["staff_id"] == staff_id, unlocked
    _, state = appliance.api("GET", "/v1/state")
    assert state["locked"] is False, state
    # The privacy button: gpio-sim's line 17 pulled down, timed inside the guest (from the
    # edge to the first /v1/state answer that says locked: an upper bound).
    pressed = json.loads(
        appliance.guest.sh("python3", "/mnt/ks/tools/probe.py", "press-button").stdout
    )
    assert pressed["before"] != "locked" and pressed["locked_ms"] is not None, pressed
    appliance.record(
        "button_press_to_locked_ms",
        pressed["locked_ms"],
        "tests/vm/probe.py press-button (gpio-sim pull-down → /v1/state locked, in the guest)",
    )
    factor = appliance.figures.get("emulation_factor", 10.0)
    assert pressed["locked_ms"] <= max(BUTTON_BOUND_MS * factor, 1000.0), pressed
    appliance.wait_text("Stationen er låst", window="locked", within=60)


def _picture(appliance: Appliance, action: str) -> None:
    """A call's picture in the surface's shared memory (``show``: its window opens) or none
    (``clear``: it closes), stored as stationd's sink stores it (tests/vm/picture.py)."""
    # As stationd's user: the file it makes (stationd makes its own at its first call) is
    # then stationd's, group-readable by the surface, as in a call.
    appliance.guest.run(
        "cd /tmp && runuser -u kontaktstation -- /opt/kontaktstation/venv/bin/python"
        f" /mnt/ks/tools/picture.py {action}"
    )


def _wait_video(appliance: Appliance, *, shown: bool, within: float = 120) -> float:
    """Wait until the video window is on the screen (the picture's colour fills the top 60 %
    and none of it lies below) or gone; seconds waited."""
    started = time.monotonic()
    while True:
        width, height, rgb = appliance.screenshot("video-shown" if shown else "video-gone")
        top = _colour_pixels(rgb, width, height, PICTURE_RGB, (0.0, 0.6))
        below = _colour_pixels(rgb, width, height, PICTURE_RGB, (0.6, 1.0))
        if (top > 100_000 and below == 0) if shown else (top + below == 0):
            return time.monotonic() - started
        if time.monotonic() - started >= within:
            raise AssertionError(
                f"video window {'never shown' if shown else 'still shown'}: "
                f"{top} / {below} pixels\n{_surface_diagnosis(appliance)}"
            )
        time.sleep(1)


def _surface_diagnosis(appliance: Appliance) -> str:
    """What the surface has and drew (its SIGUSR1 layout), and what the kiosk logged."""
    result = appliance.guest.run(
        "ls -ln /run/kontaktstation/surface; id kontaktstation-kiosk;"
        " systemctl kill -s USR1 kontaktstation-surface.service; sleep 3;"
        " cat /run/kontaktstation/surface/drawn.json; echo",
        check=False,
    )
    return (
        result.stdout + result.stderr
        + appliance.journal("kontaktstation-surface.service", lines=40)
        + appliance.journal("kontaktstation-kiosk.service", lines=40)
    )  # fmt: skip


def _log_in_by_keyboard(appliance: Appliance) -> float:
    """ "l" on the kiosk's keyboard opens the staff log-in; Esc goes back. Seconds to open."""
    started = time.monotonic()
    appliance.guest.press("l")
    appliance.wait_text("Lås stationen op", window="staff", within=90)
    opened = time.monotonic() - started
    appliance.guest.press("esc")
    appliance.wait_text("Stationen er låst", window="locked", within=90)
    return opened


def test_the_keyboard_reaches_the_ui(appliance: Appliance) -> None:
    """ "Log ind" on the kiosk's keyboard: QEMU's keyboard → libinput → labwc → foot → UI, with
    no call (the UI alone on the whole screen, the surface running without a window)."""
    appliance.record("key_to_staff_login_s", round(_log_in_by_keyboard(appliance), 1),
                     "QMP send-key l → tmux window 'staff' shows the log-in")  # fmt: skip
    _log_in_by_keyboard(appliance)


def test_the_locked_uis_user_reaches_nothing_of_the_staff_ui(appliance: Appliance) -> None:
    """Issue 14 item 7, the attacker's step: code running as the locked UI's user (here a
    shell as that user, outside even the unit's sandbox) tries what code in the locked pane
    did before: the staff screen through tmux (its own $TMUX, the staff UI's server, the
    kiosk's), and the staff UI's memory and environment through /proc. Each is refused while
    the staff UI is up; the kiosk's user, the one let in, reads the same screen."""
    guest = appliance.guest
    kiosk_uid = appliance.uid("kontaktstation-kiosk")
    appliance.guest.press("l")
    appliance.wait_text("Lås stationen op", window="staff", within=90)
    try:
        processes = guest.sh("ps", "-eo", "user:32=,pid=,args=").stdout.splitlines()
        owners = {}
        for line in processes:
            user, pid, args = line.split(None, 2)
            for module in ("tui.locked", "tui.staff"):
                if f"-m {module}" in args:
                    owners[module] = (user, pid)
        assert owners["tui.locked"][0] == "kontaktstation-locked", processes
        assert owners["tui.staff"][0] == "kontaktstation-staff", processes
        staff_pid = owners["tui.staff"][1]
        locked_pid = owners["tui.locked"][1]
        # The socket the locked pane's own $TMUX names (read as root).
        environ = guest.sh("cat", f"/proc/{locked_pid}/environ").stdout.split("\0")
        own_tmux = next(v for v in environ if v.startswith("TMUX=")).split("=", 1)[1].split(",")[0]
        staff_socket = "/run/kontaktstation-ui-staff/tmux.sock"
        kiosk_socket = appliance.tmux_socket()
        attempts = {
            "its own server's staff session": f"tmux -S {own_tmux} capture-pane -p -t =staff:",
            "the staff UI's server": f"tmux -S {staff_socket} capture-pane -p -t =staff:",
            "the staff UI's directory": "ls /run/kontaktstation-ui-staff",
            "the kiosk's server": f"tmux -S {kiosk_socket} capture-pane -p -t kiosk:staff",
            "the staff UI's environment": f"cat /proc/{staff_pid}/environ",
            "the staff UI's memory": f"head -c 1 /proc/{staff_pid}/mem",
            "the staff UI's open files": f"ls /proc/{staff_pid}/fd",
        }
        refusals = {}
        for what, command in attempts.items():
            result = guest.run(
                f"cd / && runuser -u kontaktstation-locked -- {command}", check=False
            )
            assert result.status != 0, (what, result.stdout[:300])
            assert "Lås stationen op" not in result.stdout, what
            refusals[what] = result.stderr.strip().splitlines()[-1:] or [f"exit {result.status}"]
        # The same screen is there for the kiosk's user: the refusals are about the user.
        shown = guest.run(
            f"cd / && runuser -u kontaktstation-kiosk -- tmux -S {staff_socket}"
            " capture-pane -p -t =staff:",
            check=False,
        )
        assert shown.status == 0 and "Lås stationen op" in shown.stdout, shown
        appliance.record(
            "locked_user_refused",
            refusals,
            f"runuser -u kontaktstation-locked (kiosk uid {kiosk_uid}) while the staff UI is up",
        )
    finally:
        appliance.guest.press("esc")
        appliance.wait_text("Stationen er låst", window="locked", within=90)


def test_the_keyboard_stays_with_the_ui_when_the_video_window_maps(appliance: Appliance) -> None:
    """A call's picture on the screen (the video window maps after foot, and labwc focuses a
    window when it maps), then the surface restarted mid-call (a new video window), then the
    call over (the window closed): in each, "l" on the keyboard still reaches the UI."""
    guest = appliance.guest
    try:
        _picture(appliance, "show")
        appliance.record("picture_to_video_window_s", round(_wait_video(appliance, shown=True), 1),
                         "picture.py show → the picture's colour in QEMU's screendump")  # fmt: skip
        _log_in_by_keyboard(appliance)
        before = appliance.unit_state("kontaktstation-surface.service")["MainPID"]
        guest.sh("systemctl", "restart", "kontaktstation-surface.service")
        assert appliance.unit_state("kontaktstation-surface.service")["MainPID"] != before
        _wait_video(appliance, shown=True)
        _log_in_by_keyboard(appliance)
    finally:
        _picture(appliance, "clear")
    _wait_video(appliance, shown=False)
    _log_in_by_keyboard(appliance)
    journal = appliance.journal("kontaktstation-surface.service", lines=200)
    assert journal.count("video window opened") >= 2, journal


# --------------------------------------------------------------------------- 6. labwc


#: labwc's default key bindings (include/config/default-bindings.h), as QEMU key codes.
LABWC_DEFAULT_KEYS = [
    ("alt", "tab"), ("alt", "shift", "tab"), ("meta_l", "ret"), ("alt", "f3"), ("alt", "f4"),
    ("alt", "esc"), ("meta_l", "a"), ("alt", "left"), ("alt", "right"), ("alt", "up"),
    ("alt", "down"), ("meta_l", "left"), ("meta_l", "right"), ("meta_l", "up"),
    ("meta_l", "down"), ("alt", "spc"), ("volumedown",), ("volumeup",), ("audiomute",),
    # Not labwc's, but a kiosk must not let them through either: VT switching.
    ("ctrl", "alt", "f2"), ("ctrl", "alt", "f6"),
]  # fmt: skip


def _processes(appliance: Appliance) -> set[str]:
    text = appliance.guest.sh("ps", "-u", "kontaktstation-kiosk", "-o", "comm=").stdout
    return set(text.split())


def test_no_labwc_default_binding_does_anything(appliance: Appliance) -> None:
    """Outside a call (the UI alone on the whole screen, focused), every labwc default key and
    pointer binding does nothing."""
    _press_every_default_binding(appliance)


def _changed(before: np.ndarray, after: np.ndarray) -> float:
    """The share of pixels that differ."""
    return float(np.mean(np.any(before != after, axis=2)))


def _settled_top(appliance: Appliance, name: str, within: float = 60) -> np.ndarray:
    """The top 60 % of the display once two screendumps a second apart agree: the UI's
    window in tmux changes before foot has drawn it on a loaded emulated machine (a
    screendump taken then once differed from the lock screen by a third)."""
    deadline = time.monotonic() + within
    previous: np.ndarray | None = None
    while True:
        width, height, rgb = appliance.screenshot(name)
        top = np.frombuffer(rgb, np.uint8).reshape(height, width, 3)[: int(height * 0.6)]
        if previous is not None and _changed(previous, top) < 0.01:
            return top
        assert time.monotonic() < deadline, f"the display never settled ({name}.ppm)"
        previous = top
        time.sleep(1)


def _press_every_default_binding(appliance: Appliance) -> None:
    guest = appliance.guest
    kiosk_before = appliance.unit_state("kontaktstation-kiosk.service")
    surface_before = appliance.unit_state("kontaktstation-surface.service")
    processes = _processes(appliance)
    video_before = _settled_top(appliance, "bindings-before")
    for combo in LABWC_DEFAULT_KEYS:
        guest.press(*combo)
        time.sleep(0.5)
    # labwc's default pointer bindings, with and without Alt/Super, every button, and the
    # wheel, at three points of the top 60 % (the video's place in a call): there the lock
    # screen has text, no control.
    for x, y in ((0.5, 0.3), (0.02, 0.02), (0.98, 0.55)):
        for keys in ((), ("alt",), ("meta_l",)):
            for button in ("left", "right", "middle", "wheel-up", "wheel-down"):
                guest.pointer(x, y, button, keys=keys)
                time.sleep(0.2)
    guest.pointer(0.5, 0.3, "left")
    time.sleep(2)
    # The keys themselves reach the UI, which has the whole screen (the focus stays there):
    # Return on its focused "Log ind" may open the log-in; Esc goes back to the lock screen.
    if appliance.window() != "locked":
        guest.press("esc")
    appliance.wait_text("Stationen er låst", window="locked", within=90)
    video_after = _settled_top(appliance, "bindings-after")
    # No menu, switcher, terminal or moved window: back on the lock screen, the top 60 % is
    # as it was (the clock may tick), nobody new runs as the kiosk user, and the compositor
    # and the surface are the same processes.
    changed = _changed(video_before, video_after)
    assert changed < 0.01, (
        f"{changed:.1%} of the top 60 % changed (bindings-before.ppm, bindings-after.ppm in "
        f"{appliance.workdir}); the kiosk shows:\n{appliance.screen_text()}"
    )
    assert _processes(appliance) <= processes, _processes(appliance) - processes
    kiosk_after = appliance.unit_state("kontaktstation-kiosk.service")
    surface_after = appliance.unit_state("kontaktstation-surface.service")
    assert kiosk_after["MainPID"] == kiosk_before["MainPID"], kiosk_after
    assert kiosk_after["NRestarts"] == kiosk_before["NRestarts"]
    assert surface_after["MainPID"] == surface_before["MainPID"], surface_after
    _, state = appliance.api("GET", "/v1/state")
    assert state["locked"] is True
    # Still on the kiosk's VT: Ctrl+Alt+F2 switched nothing.
    assert guest.sh("cat", "/sys/class/tty/tty0/active").stdout.strip() == "tty1"


# --------------------------------------------------------------------------- 7. reboot


def test_a_reboot_comes_back_locked(appliance: Appliance) -> None:
    started = time.monotonic()
    appliance.guest.reboot()
    _wait_lock_screen(appliance, within=600)
    appliance.record("reboot_to_lock_screen_enrolled_s", round(time.monotonic() - started, 1))
    _, state = appliance.api("GET", "/v1/state")
    assert state["locked"] is True and state["state"] == "locked", state
    assert appliance.window() == "locked"
    # Enrolled: no code on the screen, and the hub hears from the station again.
    status, _ = appliance.api("GET", "/v1/enrollment")
    assert status == 404
    for unit in UNITS:
        assert appliance.unit_state(unit)["ActiveState"] == "active", appliance.journal(unit)


# --------------------------------------------------------------------------- 8. updates

STATUS = "/var/lib/kontaktstation-update/status.json"


def _release(appliance: Appliance, version: str, *, broken: bool = False) -> Path:
    """A release IT builds: this checkout as ``version`` and every wheel the set-up installed
    (the same wheelhouse, for CPython 3.13 x86_64), packed by ``kontaktstation admin``."""
    directory = appliance.workdir / f"release-{version}"
    wheels = directory / "wheels"
    wheels.mkdir(parents=True)
    for wheel in (appliance.share / "wheels").glob("*.whl"):
        if not wheel.name.startswith("kontaktstation-"):
            (wheels / wheel.name).write_bytes(wheel.read_bytes())
    project_wheel(appliance.share / "wheels", wheels, version=version, broken=broken)
    archive = directory / "release.tar"
    appliance.admin("release", "build", str(wheels), "--out", str(archive),
                    "--changelog", f"{version} (tests/vm)")  # fmt: skip
    appliance.admin("release", "add", str(archive))
    return archive


def _wait_update(appliance: Appliance, version: str, outcome: str, within: float) -> None:
    """Until the updater's status says ``outcome`` for ``version``."""
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        text = appliance.guest.sh("cat", STATUS, check=False).stdout
        if text:
            status = json.loads(text)
            if status["release"]["version"] == version and status["outcome"] == outcome:
                return
        time.sleep(5)
    raise AssertionError(
        f"no {outcome} for {version} within {within} s: {text}\n"
        + appliance.journal("kontaktstation-update.service", 60)
        + appliance.journal("kontaktstation-stationd.service", 30)
    )


def _running_version(appliance: Appliance) -> str:
    shown = appliance.admin("stations", "show", appliance.figures["station_id"])
    found = re.search(r"^software\s+(\S+)", shown, re.MULTILINE)
    assert found is not None, shown
    return found.group(1)


def test_it_rolls_a_release_out_and_the_station_switches_to_it(appliance: Appliance) -> None:
    station_id = appliance.figures["station_id"]
    _release(appliance, "0.1.0+vm1")
    started = time.monotonic()
    appliance.admin("release", "rollout", "0.1.0+vm1", "--station", station_id)
    _wait_update(appliance, "0.1.0+vm1", "installed", within=2400)
    appliance.record(
        "release_rollout_to_installed_s",
        round(time.monotonic() - started, 1),
        "admin release rollout → the updater's health check passed (fetch, venv, pip, restart)",
    )
    link = appliance.guest.sh("readlink", "/opt/kontaktstation/venv").stdout.strip()
    assert link.startswith("/opt/kontaktstation/releases/0.1.0+vm1-"), link
    # The set-up's release stays, to go back to.
    appliance.guest.sh("test", "-x", "/opt/kontaktstation/releases/setup/venv/bin/python")
    # The station came back locked on the new release, and tells the hub so.
    _wait_lock_screen(appliance, within=600)
    _, state = appliance.api("GET", "/v1/state")
    assert state["locked"] is True and state["state"] == "locked", state
    deadline = time.monotonic() + 300
    while _running_version(appliance) != "0.1.0+vm1":
        assert time.monotonic() < deadline, appliance.admin("stations", "show", station_id)
        time.sleep(5)
    for unit in UNITS:
        assert appliance.unit_state(unit)["ActiveState"] == "active", appliance.journal(unit)


def test_a_broken_release_is_rolled_back_by_itself(appliance: Appliance) -> None:
    station_id = appliance.figures["station_id"]
    _release(appliance, "0.1.0+vm2", broken=True)
    started = time.monotonic()
    # To the care home (a group), after taking the station's own release out of its layer.
    appliance.admin("release", "rollout", "--withdraw", "--station", station_id)
    appliance.admin("release", "rollout", "0.1.0+vm2", "--care-home", CARE_HOME)
    _wait_update(appliance, "0.1.0+vm2", "rolled_back", within=2400)
    appliance.record(
        "release_rollout_to_rolled_back_s",
        round(time.monotonic() - started, 1),
        "admin release rollout → the broken release installed, failed, the previous one back",
    )
    link = appliance.guest.sh("readlink", "/opt/kontaktstation/venv").stdout.strip()
    assert link.startswith("/opt/kontaktstation/releases/0.1.0+vm1-"), link
    journal = appliance.journal("kontaktstation-stationd.service", 200)
    assert "a deliberately broken release" in journal  # it really ran, and failed
    # Back on the previous release: the units come up again (they restart on the way, so
    # not _wait_units_active, which is for a boot).
    back = time.monotonic()
    deadline = back + 900
    while not all(appliance.unit_state(u)["ActiveState"] == "active" for u in UNITS):
        assert time.monotonic() < deadline, {u: appliance.unit_state(u) for u in UNITS}
        time.sleep(3)
    appliance.record("rolled_back_to_units_active_s", round(time.monotonic() - back, 1))
    _wait_lock_screen(appliance, within=600)
    deadline = time.monotonic() + 300
    while "0.1.0+vm2 rolled_back (health_check)" not in (
        shown := appliance.admin("stations", "show", station_id)
    ):
        assert time.monotonic() < deadline, shown
        time.sleep(5)
    assert _running_version(appliance) == "0.1.0+vm1"
    # Not asked for again: no request waits, and the updater is not running.
    appliance.guest.sh("test", "!", "-e", "/var/lib/kontaktstation/updates/request.json")
    assert appliance.unit_state("kontaktstation-update.service")["ActiveState"] == "inactive"


# --------------------------------------------------------------------------- 9. emulation


def test_the_emulation_factor(appliance: Appliance) -> None:
    """The same step on the host and in the guest: ``kontaktstation self-check``."""
    host_started = time.monotonic()
    host = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "kontaktstation"), "self-check"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    host_s = time.monotonic() - host_started
    assert host.returncode == 0, host.stdout + host.stderr
    guest_started = time.monotonic()
    guest = appliance.guest.run(
        "cd /tmp && runuser -u kontaktstation -- /opt/kontaktstation/venv/bin/kontaktstation"
        " self-check",
        timeout=900,
        check=False,
    )
    guest_s = time.monotonic() - guest_started
    assert guest.status == 0, guest.stdout + guest.stderr
    appliance.record("self_check_host_s", round(host_s, 2), "kontaktstation self-check")
    appliance.record("self_check_guest_s", round(guest_s, 2), "kontaktstation self-check")
    appliance.record("emulation_factor", round(guest_s / host_s, 1))
