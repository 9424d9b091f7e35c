"""The lock screen's fault banner, against a real stationd whose hardware is partly missing.

stationd runs as production does (``--hardware real``) with the shipped fake picamera2 API
(``FakeCameraState.cameras``: 0 is "nothing on the camera connector"), the fake speakerphone
named explicitly, and gpiozero's mock pins, or a pin factory that cannot load here (no GPIO
chip: no button, no lamp). It re-probes every 0.1 s, so a camera "plugged in" by the test
is found at once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from hardware.camera import FakeCameraState, fake_picamera2_api
from station import i18n
from station.core.clock import FakeClock
from station.daemon.hardware import HardwareLink, build_hardware_link
from tests.integration.daemon_harness import enrol, short_socket_dir
from tests.tui.test_locked_harness import (
    SIZE,
    T0,
    DaemonThread,
    make_app,
    screen_text,
    wait_until,
)
from tui.locked.app import LockedApp
from tui.locked.widgets import FaultBanner

#: The station as assembled, minus what each test takes away.
ENV = {
    "KONTAKTSTATION_CAMERA": "picamera2",
    "KONTAKTSTATION_CAMERA_ENCODING": "raw",
    "KONTAKTSTATION_AUDIO": "fake",
    "GPIOZERO_PIN_FACTORY": "mock",
}
#: gpiozero knows this factory; RPi.GPIO is not installed here: no GPIO chip, as on a Pi
#: whose chip is not there.
NO_GPIO = {"GPIOZERO_PIN_FACTORY": "rpigpio"}

CAMERA_DA = "Kameraet er ikke fundet. Tjek at kameraets kabel sidder i."
BUTTON_DA = "Privatlivsknappen virker ikke. Lås stationen på skærmen"
GOES_AWAY_DA = "Beskeden forsvinder af sig selv, når delen virker igen."


@pytest.fixture(autouse=True)
def danish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_language", "da")


@pytest.fixture
def camera() -> FakeCameraState:
    """The fake Pi camera's state, with nothing on the connector."""
    return FakeCameraState(cameras=0)


def degraded(
    data_dir: Path, camera: FakeCameraState, env: Mapping[str, str] = ENV
) -> Iterator[DaemonThread]:
    """stationd (``--hardware real``) on these parts, at :data:`T0`, re-probing every 0.1 s."""

    async def hardware() -> HardwareLink:
        return await build_hardware_link(
            "real",
            {**os.environ, **env},
            asyncio.get_running_loop(),
            picamera2_api=fake_picamera2_api(camera),
        )

    enrol(data_dir)
    with short_socket_dir() as socket_dir:
        thread = DaemonThread(
            data_dir, socket_dir, FakeClock(T0), hardware=hardware, reprobe_seconds=0.1
        )
        with thread:
            yield thread


@pytest.fixture
def no_camera(data_dir: Path, camera: FakeCameraState) -> Iterator[DaemonThread]:
    """A station whose camera is missing (and comes back when the test says so)."""
    yield from degraded(data_dir, camera)


@pytest.fixture
def no_camera_no_button(data_dir: Path, camera: FakeCameraState) -> Iterator[DaemonThread]:
    """A station with neither camera nor GPIO chip (so no privacy button and no lamp)."""
    yield from degraded(data_dir, camera, {**ENV, **NO_GPIO})


def banner(app: LockedApp) -> FaultBanner:
    return app.lock_screen.query_one(FaultBanner)


async def test_the_lock_screen_says_the_camera_is_missing_and_hides_it_when_it_is_back(
    no_camera: DaemonThread, camera: FakeCameraState
) -> None:
    app = make_app(no_camera)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.health_loaded and CAMERA_DA in screen_text(app), pilot)
        text = screen_text(app)
        assert "Fejl i stationens udstyr" in text and GOES_AWAY_DA in text
        assert banner(app).display and not banner(app).has_class("-button")
        assert "Privatlivsknappen" not in text  # the button works: not mentioned
        assert "Stationen er låst" in text  # still the lock screen, locked

        camera.cameras = 1  # plugged in: stationd finds it, the banner goes
        await wait_until(lambda: not banner(app).display, pilot)
        assert CAMERA_DA not in screen_text(app)
        assert app.faults == []


async def test_a_missing_privacy_button_comes_first_and_loudest(
    no_camera_no_button: DaemonThread,
) -> None:
    app = make_app(no_camera_no_button)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.health_loaded and BUTTON_DA in screen_text(app), pilot)
        await pilot.pause()
        text = screen_text(app)
        assert banner(app).has_class("-button")
        assert text.index(BUTTON_DA) < text.index(CAMERA_DA)
        assert "Lampen ved knappen virker ikke" in text
        assert {f.name for f in app.faults} == {"camera", "button", "led"}


@pytest.fixture
def no_voice(data_dir: Path) -> Iterator[DaemonThread]:
    """A station whose parts are all there, but whose reminders cannot speak."""
    yield from degraded(
        data_dir, FakeCameraState(cameras=1), {**ENV, "KONTAKTSTATION_SPEECH": "none"}
    )


async def test_a_station_that_cannot_speak_its_reminders_says_so(no_voice: DaemonThread) -> None:
    app = make_app(no_voice)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.health_loaded and bool(app.faults), pilot)
        await pilot.pause()
        text = screen_text(app)
        assert [f.name for f in app.faults] == ["speech"]
        assert "Stationen kan ikke sige sine påmindelser; den ringer stadig." in text
        assert "Stationen er låst" in text


async def test_the_fault_banner_speaks_english_when_the_station_does(
    no_camera_no_button: DaemonThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "_language", "en")
    app = make_app(no_camera_no_button)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.health_loaded and "No camera found" in screen_text(app), pilot)
        text = screen_text(app)
        assert "The privacy button is not working" in text
        assert "Station equipment fault" in text and "Kameraet" not in text


def test_snapshot_of_a_station_without_camera_and_button(
    no_camera_no_button: DaemonThread, snap_compare: Any
) -> None:
    app = make_app(no_camera_no_button)

    async def run_before(pilot: Any) -> None:
        await wait_until(lambda: app.loaded and app.health_loaded, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
