"""Health checks: pass on the fakes, fail clearly (with a Danish hint) when a part is broken."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.audio import PyAVSpeaker, ToneMicrophone
from hardware.bundle import Hardware, build_hardware
from hardware.camera import (
    FakeCameraState,
    Picamera2Camera,
    TestPatternCamera,
    V4L2Camera,
    build_camera_factory,
    fake_picamera2_api,
)
from hardware.errors import BackendUnavailableError, UnknownBackendError
from hardware.gpio import ensure_lg_wd, pin_factory_from_env
from hardware.health import (
    HealthResult,
    check_button,
    check_camera,
    format_table,
    hw_check_main,
    run_health_checks,
)
from hardware.led import LedPattern

FAKE_ENV = {"KONTAKTSTATION_HARDWARE": "fake"}


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()
    pins.close()


@pytest.fixture
async def hw(factory: MockFactory) -> AsyncIterator[Hardware]:
    hardware = build_hardware(FAKE_ENV, pin_factory=factory)
    yield hardware
    await hardware.aclose()


def by_name(results: list[HealthResult]) -> dict[str, HealthResult]:
    return {r.name: r for r in results}


async def test_everything_passes_on_the_fakes(hw: Hardware) -> None:
    assert hw.camera_backend == "testpattern" and hw.audio_backend == "fake"
    results = await run_health_checks(hw, within=5)
    assert [r.name for r in results] == ["camera", "microphone", "loudspeaker", "button", "led"]
    assert all(r.ok for r in results), format_table(results)
    assert all(r.hint == "" for r in results)
    found = by_name(results)
    assert "640x480 frame" in found["camera"].detail
    assert "-30.0 dBFS" in found["microphone"].detail
    table = format_table(results)
    assert table.count("PASS") == 5 and "5 of 5 checks passed" in table


async def test_a_broken_camera_fails_with_a_danish_hint(hw: Hardware, tmp_path: Path) -> None:
    missing = str(tmp_path / "video0")
    broken = dataclasses.replace(hw, camera_factory=lambda: V4L2Camera(missing))
    results = by_name(await run_health_checks(broken, within=5))
    camera = results["camera"]
    assert not camera.ok and missing in camera.detail
    assert "Kameraet virker ikke" in camera.hint
    assert all(r.ok for name, r in results.items() if name != "camera")
    table = format_table(list(results.values()))
    assert "FAIL" in table and "→ Kameraet virker ikke" in table and "4 of 5" in table


async def test_a_camera_that_never_delivers_times_out() -> None:
    silent = fake_picamera2_api(FakeCameraState(fail_after_frames=0))
    result = await check_camera(lambda: Picamera2Camera(api=silent), within=0.3)
    assert not result.ok and "no picture within 0.3 s" in result.detail
    assert "kameraet" in result.hint


async def test_a_camera_that_cannot_even_be_created() -> None:
    def factory() -> TestPatternCamera:
        raise BackendUnavailableError("camera", "picamera2", "no camera is connected")

    result = await check_camera(factory)
    assert not result.ok and "no camera is connected" in result.detail
    assert "Kameraet" in result.hint


async def test_a_muted_microphone_and_a_missing_speaker_fail(hw: Hardware) -> None:
    broken = dataclasses.replace(
        hw,
        microphone_factory=lambda: ToneMicrophone(None),
        speaker=PyAVSpeaker("no-such-device-kontakt"),
    )
    results = by_name(await run_health_checks(broken, within=5))
    assert not results["microphone"].ok and "digital silence" in results["microphone"].detail
    assert "mikrofonen" in results["microphone"].hint
    assert (
        not results["loudspeaker"].ok and "no-such-device-kontakt" in results["loudspeaker"].detail
    )
    assert "højttaler" in results["loudspeaker"].hint


async def test_a_stuck_button_and_a_dead_lamp_fail(hw: Hardware) -> None:
    hw.button.pin.drive_low()  # held down through the check: stuck or miswired
    result = await check_button(hw.button)
    assert not result.ok and "stuck" in result.detail
    assert "Privatlivsknappen virker ikke" in result.hint
    hw.button.pin.drive_high()
    assert (await check_button(hw.button)).ok
    hw.led.close()
    results = by_name(await run_health_checks(hw, within=5))
    assert not results["led"].ok and "closed" in results["led"].detail


def test_hw_check_cli_passes_on_the_fakes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KONTAKTSTATION_HARDWARE", "fake")
    assert hw_check_main([]) == 0
    out = capsys.readouterr().out
    assert "5 of 5 checks passed" in out


def test_hw_check_cli_fails_one_row_for_one_missing_part(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("KONTAKTSTATION_HARDWARE", "fake")
    monkeypatch.setenv("KONTAKTSTATION_CAMERA", "v4l2")
    monkeypatch.setenv("KONTAKTSTATION_CAMERA_DEVICE", str(tmp_path / "video0"))
    assert hw_check_main(["--json", "--timeout", "2"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["ok"]) for r in rows] == [
        ("camera", False),
        ("microphone", True),
        ("loudspeaker", True),
        ("button", True),
        ("led", True),
    ]
    assert "video0" in rows[0]["detail"] and "Kameraet" in rows[0]["hint"]


def test_hw_check_cli_reports_unusable_gpio(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KONTAKTSTATION_HARDWARE", "fake")
    # A factory gpiozero knows that cannot load here (no RPi.GPIO): the parts are missing.
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "rpigpio")
    assert hw_check_main([]) == 1
    out = capsys.readouterr().out
    assert "rpigpio" in out and "3 of 5 checks passed" in out
    assert "Privatlivsknappen" in out
    # A name gpiozero does not know is a configuration error, and says so.
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    assert hw_check_main([]) == 1
    out = capsys.readouterr().out
    assert "no-such-factory" in out and "is not one of" in out and "3 of 5 checks passed" in out
    assert "sat forkert op" in out


# -- the bundle and the GPIO factory choice --------------------------------------------------


async def test_build_hardware_for_the_demo_wires_the_button_to_the_loop() -> None:
    locked = asyncio.Event()
    hardware = build_hardware(FAKE_ENV, on_press=locked.set)
    try:
        assert hardware.owns_pin_factory and isinstance(hardware.pin_factory, MockFactory)
        assert hardware.led.pattern is LedPattern.IDLE and hardware.led.pwm
        hardware.button.pin.drive_low()  # the demo "presses" the button like this
        await asyncio.wait_for(locked.wait(), 5)
        camera = hardware.new_camera()
        assert camera.backend == "testpattern"
        camera.stop()
    finally:
        await hardware.aclose()
    assert hardware.button.closed and hardware.led.closed


def test_pin_factory_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LG_WD", str(tmp_path))  # restored afterwards: the lookup may set it
    with pytest.raises(UnknownBackendError) as unknown:
        pin_factory_from_env({"GPIOZERO_PIN_FACTORY": "nosuch"})  # a typo: IT's error
    assert "GPIOZERO_PIN_FACTORY='nosuch'" in str(unknown.value) and "lgpio" in str(unknown.value)
    with pytest.raises(BackendUnavailableError) as caught:
        pin_factory_from_env({"GPIOZERO_PIN_FACTORY": "rpigpio"})  # known, no RPi.GPIO here
    assert caught.value.part == "gpio" and "rpigpio" in str(caught.value)
    assert "Privatlivsknappen" in caught.value.user_message
    with pytest.raises(BackendUnavailableError) as caught:
        pin_factory_from_env({})  # this machine has neither lgpio nor RPi.GPIO
    assert "lgpio:" in str(caught.value) and "GPIOZERO_PIN_FACTORY=mock" in str(caught.value)
    mock = pin_factory_from_env({"GPIOZERO_PIN_FACTORY": "mock"})
    assert isinstance(mock, MockFactory) and mock.pin_class is MockPWMPin
    mock.close()


def test_lg_wd_points_at_a_writable_runtime_directory(tmp_path: Path) -> None:
    env = {"RUNTIME_DIRECTORY": str(tmp_path)}
    assert ensure_lg_wd(env) == str(tmp_path / "lgpio")
    assert env["LG_WD"] == str(tmp_path / "lgpio") and (tmp_path / "lgpio").is_dir()
    assert ensure_lg_wd({"LG_WD": str(tmp_path)}) == str(tmp_path)  # a writable one stays


def test_unknown_hardware_mode_is_rejected() -> None:
    with pytest.raises(UnknownBackendError, match="KONTAKTSTATION_HARDWARE"):
        build_camera_factory({"KONTAKTSTATION_HARDWARE": "demo"})
