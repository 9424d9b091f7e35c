"""The hardware bundle degrades: missing parts are reported, refuse clearly, and come back.

Never a fake in place of a missing part; configuration errors still raise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

import hardware.bundle as bundle
from hardware.audio import PyAVSpeaker, ToneMicrophone
from hardware.bundle import MISSING, Hardware, MissingSpeaker, PartChange, build_hardware
from hardware.camera import FakeCameraState, Picamera2Camera, fake_picamera2_api
from hardware.errors import (
    AudioUnavailableError,
    BackendUnavailableError,
    CameraUnavailableError,
    HardwareConfigError,
    HardwareSettingError,
    UnknownBackendError,
)
from hardware.health import run_health_checks
from station.core.ports import LedPattern
from station.daemon.hardware import GpioHardwareLink, hardware_environ

#: A station as assembled: the Pi camera (here the shipped fake API), the speakerphone (its
#: probe injected), and a GPIO chip (gpiozero's mock pins, or none).
CAMERA_ENV = {"KONTAKTSTATION_CAMERA": "picamera2", "KONTAKTSTATION_CAMERA_ENCODING": "raw"}


class SoundCard:
    """A stand-in for ``/dev/snd``: plugged in or not."""

    def __init__(self, present: bool) -> None:
        self.present = present

    def __call__(self) -> str | None:
        return None if self.present else "no sound card can record (is it plugged in?)"


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory(pin_class=MockPWMPin)
    yield factory
    factory.reset()
    factory.close()


def build(
    camera: FakeCameraState, card: SoundCard, *, pin_factory: Any = None, **env: str
) -> Hardware:
    return build_hardware(
        {**CAMERA_ENV, **env},
        loop=asyncio.get_running_loop(),
        picamera2_api=fake_picamera2_api(camera),
        audio_probe=card,
        pin_factory=pin_factory,
    )


async def test_missing_parts_are_reported_and_refuse_clearly_never_faked() -> None:
    camera, card = FakeCameraState(cameras=0), SoundCard(False)
    hw = build(camera, card, GPIOZERO_PIN_FACTORY="rpigpio")  # known, cannot load here
    try:
        assert hw.backends() == {"camera": MISSING, "audio": MISSING, "gpio": MISSING}
        assert set(hw.faults) == {"camera", "audio", "gpio", "button", "led"}
        assert hw.button is None and hw.led is None
        assert "no camera is connected" in hw.faults["camera"].reason
        assert "Kameraet er ikke fundet" in hw.faults["camera"].user_message
        with pytest.raises(CameraUnavailableError) as refused:
            hw.new_camera()
        assert "camera is missing" in str(refused.value)
        assert "Kameraet" in refused.value.user_message
        with pytest.raises(AudioUnavailableError):
            hw.new_microphone()
        assert isinstance(hw.speaker, MissingSpeaker) and hw.speaker.backend == MISSING
        with pytest.raises(AudioUnavailableError):
            await hw.speaker.start(ToneMicrophone(440.0))  # type: ignore[arg-type]
        await hw.speaker.stop()  # a call's teardown: harmless

        rows = await run_health_checks(hw, within=2)
        assert [(r.name, r.ok, r.missing) for r in rows] == [
            ("camera", False, True),
            ("microphone", False, True),
            ("loudspeaker", False, True),
            ("button", False, True),
            ("led", False, True),
        ]
        assert rows[3].hint.startswith("Privatlivsknappen virker ikke")
        assert camera.opened == 0  # nothing was opened to say so
    finally:
        await hw.aclose()


async def test_parts_that_come_back_are_rebuilt_and_keep_their_wiring(
    pins: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    camera, card = FakeCameraState(cameras=0), SoundCard(False)
    chip = {"there": False}
    real_factory = bundle.pin_factory_from_env

    def gpio(env: Any) -> Any:
        if not chip["there"]:
            raise BackendUnavailableError("gpio", "lgpio", "no /dev/gpiochip0")
        return pins

    monkeypatch.setattr(bundle, "pin_factory_from_env", gpio)
    presses: list[str] = []
    hw = build(camera, card)
    try:
        hw.set_button_handlers(lambda: presses.append("lock"), None)
        assert hw.reprobe() == []  # nothing came back: no change, nothing rebuilt

        camera.cameras, card.present, chip["there"] = 1, True, True
        changes = hw.reprobe()
        assert {(c.part, c.present, c.backend) for c in changes} == {
            ("camera", True, "picamera2"),
            ("audio", True, "pyav"),
            ("gpio", True, "mock"),
            ("button", True, "mock"),
            ("led", True, "mock"),
        }
        assert hw.faults == {}
        track = hw.new_camera()
        assert isinstance(track, Picamera2Camera)
        track.stop()
        assert isinstance(hw.speaker, PyAVSpeaker)
        # The rebuilt button locks like the one at boot would have.
        assert hw.button is not None
        hw.button.pin.drive_low()
        for _ in range(100):
            if presses:
                break
            await asyncio.sleep(0.01)
        assert presses == ["lock"]
    finally:
        monkeypatch.setattr(bundle, "pin_factory_from_env", real_factory)
        await hw.aclose()


async def test_a_camera_or_speakerphone_that_goes_away_is_missing_until_it_is_back() -> None:
    camera, card = FakeCameraState(cameras=1), SoundCard(True)
    hw = build(camera, card, GPIOZERO_PIN_FACTORY="mock")
    try:
        assert hw.faults == {}
        speaker = hw.speaker
        camera.cameras, card.present = 0, False
        # During a call nothing present is probed (the devices are in use).
        assert hw.reprobe(check_present=False) == []
        changes = hw.reprobe(check_present=True)
        assert [(c.part, c.present) for c in changes] == [("camera", False), ("audio", False)]
        assert hw.backends()["camera"] == MISSING and isinstance(hw.speaker, MissingSpeaker)
        await hw.release_retired()  # the vanished loudspeaker is stopped on the loop
        assert not speaker.playing
        camera.cameras, card.present = 1, True
        assert [(c.part, c.present) for c in hw.reprobe(check_present=True)] == [
            ("camera", True),
            ("audio", True),
        ]
    finally:
        await hw.aclose()


@pytest.mark.parametrize(
    ("env", "error", "text"),
    [
        ({"KONTAKTSTATION_CAMERA": "webcam"}, UnknownBackendError, "KONTAKTSTATION_CAMERA"),
        ({"KONTAKTSTATION_AUDIO": "pulse"}, UnknownBackendError, "KONTAKTSTATION_AUDIO"),
        ({"GPIOZERO_PIN_FACTORY": "lgpi0"}, UnknownBackendError, "GPIOZERO_PIN_FACTORY"),
        ({"KONTAKTSTATION_CAMERA_FPS": "fast"}, HardwareSettingError, "KONTAKTSTATION_CAMERA_FPS"),
        ({"KONTAKTSTATION_BUTTON_PIN": "GPIO99"}, HardwareSettingError, "BUTTON_PIN"),
        ({"KONTAKTSTATION_BUTTON_HOLD": "long"}, HardwareSettingError, "BUTTON_HOLD"),
    ],
)
async def test_a_configuration_error_still_raises_and_leaves_nothing_open(
    env: dict[str, str], error: type[HardwareConfigError], text: str
) -> None:
    # The camera is missing too: a typo is never mistaken for (or hidden by) a missing part.
    factory = MockFactory(pin_class=MockPWMPin)
    injected = None if "GPIOZERO_PIN_FACTORY" in env else factory
    try:
        with pytest.raises(error, match=text):
            build(FakeCameraState(cameras=0), SoundCard(False), pin_factory=injected, **env)
        if "BUTTON_HOLD" in text:  # found at start even when there is no GPIO chip at all
            with pytest.raises(error, match=text):
                build(FakeCameraState(), SoundCard(True), GPIOZERO_PIN_FACTORY="rpigpio", **env)
        # Nothing kept the pins: the button and lamp can be claimed again.
        again = build_hardware(
            {"KONTAKTSTATION_HARDWARE": "fake"},
            loop=asyncio.get_running_loop(),
            pin_factory=factory,
        )
        assert again.button is not None and again.led is not None
        await again.aclose()
    finally:
        factory.reset()
        factory.close()


async def test_a_backend_that_breaks_while_probing_is_missing_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # picamera2 on a Pi with a mismatched numpy raises ValueError at import (PLATFORM-NOTES):
    # an installation fault, not IT's typo; the camera is missing, with the reason.
    def broken(api: Any = None) -> str | None:
        raise ValueError("numpy.dtype size changed, may indicate binary incompatibility")

    monkeypatch.setattr(Picamera2Camera, "probe", staticmethod(broken))
    hw = build(FakeCameraState(), SoundCard(True), GPIOZERO_PIN_FACTORY="mock")
    try:
        assert hw.backends()["camera"] == MISSING
        assert hw.faults["camera"].reason.startswith("ValueError: numpy.dtype size changed")
        assert hw.reprobe(check_present=True) == []  # still broken: no change, no raise
    finally:
        await hw.aclose()


def test_real_means_real_even_with_a_stray_fake_in_the_environment() -> None:
    env = hardware_environ("real", {"KONTAKTSTATION_HARDWARE": "fake"})
    assert env["KONTAKTSTATION_HARDWARE"] == "real"
    assert hardware_environ("fake", {})["KONTAKTSTATION_HARDWARE"] == "fake"


async def test_the_link_logs_each_change_once_not_each_probe(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    camera, card = FakeCameraState(cameras=0), SoundCard(True)
    caplog.set_level(logging.INFO, logger="station.daemon.hardware")
    link = GpioHardwareLink(build(camera, card, GPIOZERO_PIN_FACTORY="rpigpio"))
    try:
        for _ in range(5):
            assert await link.reprobe(check_present=True) == []
        camera.cameras = 1
        changes = await link.reprobe(check_present=True)
        assert changes == [PartChange("camera", True, "picamera2")]
        for _ in range(5):
            assert await link.reprobe(check_present=True) == []
        lines = [r.getMessage() for r in caplog.records]
        assert [line.split(":")[0] for line in lines] == [
            "camera missing",
            "gpio missing (and with it the privacy button and the lamp)",
            "camera is back",
        ]
        assert not [r for r in caplog.records if r.exc_info]
        assert [m.part for m in link.missing_parts()] == ["gpio", "button", "led"]
        assert [r.name for r in link.faults()] == ["button", "led"]
        link.show(LedPattern.IDLE)  # no lamp: remembered, not an error
        assert link.pattern is LedPattern.IDLE
    finally:
        await link.close()
