"""The real hardware on a Raspberry Pi: picamera2, a V4L2 webcam, lgpio pins, ALSA audio.

Runs only on a Pi (tests/conftest.py skips ``hardware``-marked tests elsewhere). A part that is
not connected is skipped with the reason its probe gives. Optional loopback for the button:
wire a spare GPIO (``KONTAKTSTATION_TEST_LOOPBACK_PIN``, e.g. ``GPIO22``) to the button pin and
the press test drives it low instead of a finger.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import av
import pytest
from aiortc.codecs import depayload, get_decoder, get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from hardware.audio import PyAVMicrophone, PyAVSpeaker, measure_level, probe_alsa, tone_track
from hardware.button import DEFAULT_BUTTON_PIN, PrivacyButton
from hardware.camera import (
    DEFAULT_V4L2_DEVICE,
    Picamera2Camera,
    V4L2Camera,
    board_has_hardware_h264,
)
from hardware.gpio import pin_factory_from_env
from hardware.health import hw_check_main
from hardware.led import LedPattern, StatusLed

pytestmark = pytest.mark.hardware


def nal_types(item: av.Packet[Any] | av.VideoFrame) -> list[int]:
    """The NAL unit types in an Annex B access unit."""
    assert isinstance(item, av.Packet), "expected an encoded packet"
    return [nal[0] & 0x1F for nal in bytes(item).split(b"\x00\x00\x01")[1:] if nal]


async def test_picamera2_captures() -> None:
    reason = Picamera2Camera.probe()
    if reason:
        pytest.skip(reason)
    camera = Picamera2Camera(width=640, height=480, fps=30)
    try:
        if board_has_hardware_h264():
            assert camera.passthrough_codec == "video/H264"
            codec = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=96)
            encoder, decoder = get_encoder(codec), get_decoder(codec)
            first = await asyncio.wait_for(camera.recv(), 10)
            assert isinstance(first, av.Packet)
            assert nal_types(first)[:2] == [7, 8]  # SPS/PPS before the first IDR
            decoded = 0
            for _ in range(30):
                packet = await asyncio.wait_for(camera.recv(), 5)
                assert isinstance(packet, av.Packet)
                payloads, timestamp = encoder.pack(packet)
                data = b"".join(depayload(codec, p) for p in payloads)
                decoded += len(decoder.decode(JitterFrame(data, timestamp)))
            assert decoded >= 25
            camera.request_keyframe()  # the V4L2 FORCE_KEY_FRAME control on /dev/video11
            assert camera.keyframe_requests == 1
            for _ in range(15):
                packet = await asyncio.wait_for(camera.recv(), 5)
                if 5 in nal_types(packet):
                    break
            else:
                pytest.fail("the hardware encoder ignored the keyframe request")
        else:
            assert camera.passthrough_codec is None
            frames = [await asyncio.wait_for(camera.recv(), 10) for _ in range(10)]
            assert all(isinstance(f, av.VideoFrame) and f.width == 640 for f in frames)
    finally:
        await camera.aclose()


async def test_v4l2_webcam_captures() -> None:
    device = os.environ.get("KONTAKTSTATION_CAMERA_DEVICE", DEFAULT_V4L2_DEVICE)
    reason = V4L2Camera.probe(device)
    if reason:
        pytest.skip(reason)
    camera = V4L2Camera(device)
    try:
        frames = [await asyncio.wait_for(camera.recv(), 10) for _ in range(10)]
    finally:
        await camera.aclose()
    assert all(f.format.name == "yuv420p" for f in frames)
    pts = [f.pts or 0 for f in frames]
    assert pts == sorted(pts)


async def test_real_button_pin_reads_and_locks() -> None:
    factory = pin_factory_from_env(os.environ)
    pin = os.environ.get("KONTAKTSTATION_BUTTON_PIN", DEFAULT_BUTTON_PIN)
    locked = asyncio.Event()
    button = PrivacyButton(pin, pin_factory=factory, on_press=locked.set)
    try:
        assert not button.is_pressed  # nobody is pressing it during the test run
        loopback = os.environ.get("KONTAKTSTATION_TEST_LOOPBACK_PIN")
        if loopback:
            from gpiozero import DigitalOutputDevice

            driver = DigitalOutputDevice(loopback, pin_factory=factory, initial_value=True)
            try:
                driver.off()  # pulls the button pin low: a press
                await asyncio.wait_for(locked.wait(), 2)
            finally:
                driver.close()
    finally:
        await button.aclose()
        factory.close()


async def test_real_led_shows_every_pattern() -> None:
    factory = pin_factory_from_env(os.environ)
    led = StatusLed(os.environ.get("KONTAKTSTATION_LED_PIN", "GPIO27"), pin_factory=factory)
    try:
        for pattern in LedPattern:
            led.show(pattern)
            await asyncio.sleep(0.5)  # for a person watching; nothing is timed
            led.check()
    finally:
        led.close()
        factory.close()


async def test_real_audio() -> None:
    reason = probe_alsa()
    if reason:
        pytest.skip(reason)
    microphone = PyAVMicrophone(os.environ.get("KONTAKTSTATION_AUDIO_INPUT", "default"))
    try:
        reading = await measure_level(microphone, duration=0.5, give_up_after=10)
    finally:
        await microphone.aclose()
    assert reading.frames >= 25
    speaker = PyAVSpeaker(os.environ.get("KONTAKTSTATION_AUDIO_OUTPUT", "default"))
    await speaker.check()
    await speaker.start(tone_track(0.5))
    while speaker.playing:
        await asyncio.sleep(0.05)
    await speaker.stop()
    assert speaker.error is None and speaker.written >= 20


def test_hw_check_passes_on_an_assembled_station() -> None:
    assert hw_check_main([]) == 0
