"""Hardware health checks: the pre-call check's and IT's answer to "does everything work?".

Each check returns a :class:`~station.core.ports.HealthResult` (English ``detail`` for IT and
the heartbeat, a ``hint`` in the language in use saying what to do).
:func:`run_health_checks` runs them all with timeouts; :func:`format_table` prints them;
:func:`hw_check_main` is ``kontaktstation hw-check``.

Camera and microphone checks open the device, so run them only when no call is on (the daemon
does; the CLI is for a station whose daemon is idle or stopped).

A part the bundle has as *missing* (:attr:`hardware.bundle.Hardware.faults`) is not touched:
its rows say so (``missing=True``), from :func:`missing_results`, which opens nothing and so
can answer at once and as often as asked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import av

from station.core.ports import HealthResult
from station.i18n import N_, _

from .audio.base import Speaker
from .audio.level import SILENCE_DBFS, measure_level
from .audio.select import MicrophoneFactory, build_audio
from .bundle import Hardware, PartFault, build_button, build_led
from .button import PrivacyButton
from .camera.base import Camera
from .camera.select import CameraFactory, build_camera_factory
from .errors import HardwareError
from .gpio import pin_factory_from_env
from .led import StatusLed

__all__ = [
    "CHECK_NAMES",
    "HealthResult",
    "check_button",
    "check_camera",
    "check_led",
    "check_microphone",
    "check_speaker",
    "format_table",
    "hw_check_main",
    "missing_results",
    "run_health_checks",
]

_HINTS = {
    "camera": (
        N_(
            "Check that the camera is plugged in, and restart the station. Contact IT if that "
            "does not help."
        )
    ),
    "microphone": (
        N_(
            "Check that the loudspeaker with microphone is plugged into the USB socket, and that "
            "the microphone is not turned off. Contact IT if that does not help."
        )
    ),
    "loudspeaker": (
        N_(
            "Check that the loudspeaker is plugged into the USB socket and on. Contact IT if that"
            " does not help."
        )
    ),
    "button": (
        N_(
            "The privacy button does not work. Lock the station on the screen, and contact IT. Do"
            " not use the station for private calls until the button is repaired."
        )
    ),
    "led": N_("The lamp by the button does not work. The station can be used, but contact IT."),
}


def _fail(name: str, detail: str, error: BaseException | None = None) -> HealthResult:
    hint = _(_HINTS[name])
    if isinstance(error, HardwareError) and error.user_message:
        hint = error.user_message
    return HealthResult(name, False, detail, hint)


async def _stop_track(track: Any) -> None:
    aclose = getattr(track, "aclose", None)
    if callable(aclose):
        with contextlib.suppress(Exception):
            await aclose()
    else:
        track.stop()


async def check_camera(factory: CameraFactory, within: float = 5.0) -> HealthResult:
    """A frame (or encoded packet) arrives within ``within`` seconds."""
    started = time.monotonic()
    try:
        camera: Camera = factory()
    except Exception as exc:
        return _fail("camera", f"cannot create the camera: {exc}", exc)
    try:
        item = await asyncio.wait_for(camera.recv(), within)
    except TimeoutError:
        return _fail("camera", f"{camera.backend}: no picture within {within:g} s")
    except Exception as exc:
        return _fail("camera", f"{camera.backend}: {exc}", exc)
    finally:
        await _stop_track(camera)
    elapsed = (time.monotonic() - started) * 1000
    if isinstance(item, av.VideoFrame):
        what = f"a {item.width}x{item.height} frame"
    else:
        what = f"a {camera.passthrough_codec} packet of {item.size} bytes"
    return HealthResult("camera", True, f"{camera.backend}: {what} after {elapsed:.0f} ms")


async def check_microphone(
    factory: MicrophoneFactory, within: float = 5.0, duration: float = 0.5
) -> HealthResult:
    """Sound arrives within ``within`` seconds and is not digital silence (muted or dead)."""
    try:
        microphone = factory()
    except Exception as exc:
        return _fail("microphone", f"cannot create the microphone: {exc}", exc)
    try:
        reading = await measure_level(microphone, duration, within)
    except TimeoutError:
        return _fail("microphone", f"{microphone.backend}: no sound within {within:g} s")
    except Exception as exc:
        return _fail("microphone", f"{microphone.backend}: {exc}", exc)
    finally:
        await _stop_track(microphone)
    if reading.peak_dbfs <= SILENCE_DBFS:
        return _fail(
            "microphone",
            f"{microphone.backend}: {reading.frames} frames of digital silence (muted?)",
        )
    return HealthResult(
        "microphone",
        True,
        f"{microphone.backend}: level {reading.rms_dbfs:.1f} dBFS RMS, "
        f"peak {reading.peak_dbfs:.1f} dBFS over {reading.frames} frames",
    )


async def check_speaker(speaker: Speaker, within: float = 5.0) -> HealthResult:
    """The output device opens (and closes again)."""
    try:
        await asyncio.wait_for(speaker.check(within), within + 1)
    except TimeoutError:
        return _fail("loudspeaker", f"{speaker.backend}: did not open within {within:g} s")
    except Exception as exc:
        return _fail("loudspeaker", f"{speaker.backend}: {exc}", exc)
    return HealthResult("loudspeaker", True, f"{speaker.backend}: output opens")


async def check_button(button: PrivacyButton) -> HealthResult:
    """The pin reads, and reads "not pressed" (held down for the check means stuck)."""
    try:
        pressed = button.is_pressed
    except Exception as exc:
        return _fail("button", f"cannot read the button: {exc}", exc)
    if pressed:
        return _fail(
            "button",
            "the button reads pressed; if nobody is pressing it, it is stuck or miswired "
            "and a press would not be seen",
        )
    return HealthResult("button", True, f"pin {button.pin} reads released")


async def check_led(led: StatusLed) -> HealthResult:
    """The lamp's pin can be driven."""
    try:
        await asyncio.to_thread(led.check)
    except Exception as exc:
        return _fail("led", f"cannot drive the lamp: {exc}", exc)
    kind = "PWM" if led.pwm else "on/off"
    return HealthResult("led", True, f"pin {led.pin} ({kind}) shows {led.pattern.value}")


#: Each check's part in the bundle (a speakerphone is one part: microphone and loudspeaker).
_PART_OF_CHECK: dict[str, str] = {
    "camera": "camera",
    "microphone": "audio",
    "loudspeaker": "audio",
    "button": "button",
    "led": "led",
}
CHECK_NAMES = tuple(_PART_OF_CHECK)


def _missing_result(name: str, fault: PartFault) -> HealthResult:
    return HealthResult(name, False, f"missing: {fault.reason}", fault.user_message, missing=True)


def missing_results(hw: Hardware) -> list[HealthResult]:
    """The rows of the parts missing now, in the checks' order; touches no device."""
    faults = dict(hw.faults)  # one copy: a re-probe on its thread may change the original
    return [
        _missing_result(name, faults[part])
        for name, part in _PART_OF_CHECK.items()
        if part in faults
    ]


async def run_health_checks(hw: Hardware, *, within: float = 5.0) -> list[HealthResult]:
    """Every check, concurrently, each bounded by ``within`` seconds; in a fixed order.

    A missing part's rows come from :func:`missing_results` (no device is opened for it).
    """
    faults = dict(hw.faults)
    button, led = hw.button, hw.led

    async def row(name: str) -> HealthResult:
        part = _PART_OF_CHECK[name]
        if part in faults:
            return _missing_result(name, faults[part])
        if name == "camera":
            return await check_camera(hw.camera_factory, within)
        if name == "microphone":
            return await check_microphone(hw.microphone_factory, within)
        if name == "loudspeaker":
            return await check_speaker(hw.speaker, within)
        if name == "button" and button is not None:
            return await check_button(button)
        if name == "led" and led is not None:
            return await check_led(led)
        return _missing_result(name, PartFault(part, "not built", _(_HINTS[name])))

    return list(await asyncio.gather(*(row(name) for name in CHECK_NAMES)))


def format_table(results: Sequence[HealthResult]) -> str:
    """A plain pass/fail table; failures get their hint on the next line."""
    width = max([len("part")] + [len(r.name) for r in results])
    lines = [f"{'part':<{width}}  result  detail"]
    for result in results:
        verdict = "PASS" if result.ok else "FAIL"
        lines.append(f"{result.name:<{width}}  {verdict:<6}  {result.detail}")
        if not result.ok and result.hint:
            lines.append(f"{'':<{width}}  {'':<6}  → {result.hint}")
    passed = sum(r.ok for r in results)
    lines.append(f"{passed} of {len(results)} checks passed")
    return "\n".join(lines)


async def _check_from_env(env: Mapping[str, str], within: float) -> list[HealthResult]:
    """Build each part on its own, so one missing part fails its row, not the whole check."""
    results: list[HealthResult] = []

    async def guarded(name: str, run: Callable[[], Awaitable[HealthResult]]) -> None:
        try:
            results.append(await run())
        except Exception as exc:
            results.append(_fail(name, str(exc), exc))

    async def camera() -> HealthResult:
        _name, factory = build_camera_factory(env)
        return await check_camera(factory, within)

    await guarded("camera", camera)
    try:
        audio = build_audio(env)
    except Exception as exc:
        results.append(_fail("microphone", str(exc), exc))
        results.append(_fail("loudspeaker", str(exc), exc))
    else:
        await guarded("microphone", lambda: check_microphone(audio.microphone_factory, within))
        await guarded("loudspeaker", lambda: check_speaker(audio.speaker, within))
    try:
        factory = pin_factory_from_env(env)
    except Exception as exc:
        results.append(_fail("button", str(exc), exc))
        results.append(_fail("led", str(exc), exc))
        return results
    try:
        # The button and the LED each built, checked and closed on their own: two short
        # blocks over different types read plainer than a generic helper; alike by design.
        try:
            button = build_button(env, factory)
        except Exception as exc:
            results.append(_fail("button", str(exc), exc))
        else:
            await guarded("button", lambda: check_button(button))
            button.close()
        try:
            led = build_led(env, factory)
        except Exception as exc:
            results.append(_fail("led", str(exc), exc))
        else:
            await guarded("led", lambda: check_led(led))
            led.close()
    finally:
        with contextlib.suppress(Exception):
            factory.close()
    return results


def hw_check_main(argv: list[str] | None = None) -> int:
    """``kontaktstation hw-check``: check every part; exit 0 only if all pass."""
    parser = argparse.ArgumentParser(
        prog="kontaktstation hw-check",
        description="Check the station's camera, microphone, loudspeaker, button and lamp.",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds each check may take (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per check")
    args = parser.parse_args(argv)
    results = asyncio.run(_check_from_env(os.environ, args.timeout))
    if args.json:
        for result in results:
            print(json.dumps(asdict(result), ensure_ascii=False))
    else:
        print(format_table(results))
    sys.stdout.flush()
    return 0 if all(r.ok for r in results) else 1
