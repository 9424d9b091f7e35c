"""Audio: the fakes, the level meter, and PyAV against real devices (ALSA null, lavfi)."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from hardware.audio import (
    SILENCE_DBFS,
    LevelMeter,
    Microphone,
    PyAVMicrophone,
    PyAVSpeaker,
    RecordingSpeaker,
    Speaker,
    ToneMicrophone,
    alsa_environment,
    build_audio,
    measure_level,
    probe_alsa,
    rms_dbfs,
    tone_track,
)
from hardware.errors import AudioUnavailableError, BackendUnavailableError, UnknownBackendError

HAVE_SYSTEM_ALSA = Path("/usr/share/alsa/alsa.conf").is_file()


@pytest.fixture(autouse=True)
def no_leaked_audio_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for _ in range(100):
        leaked = [
            t
            for t in set(threading.enumerate()) - before
            if t.is_alive() and t.name.startswith(("microphone", "loudspeaker"))
        ]
        if not leaked:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running: {leaked}")


def frame_of(samples: np.ndarray, layout: str = "mono") -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = 48000
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, 48000)
    return frame


def test_rms_dbfs_of_known_signals() -> None:
    t = np.arange(960) / 48000
    full = np.round(32767 * np.sin(2 * math.pi * 1000 * t)).astype(np.int16)
    assert rms_dbfs(frame_of(full)) == pytest.approx(-3.01, abs=0.05)
    quieter = (full // 10).astype(np.int16)
    assert rms_dbfs(frame_of(quieter)) == pytest.approx(-23.0, abs=0.1)
    assert rms_dbfs(frame_of(np.zeros(960, dtype=np.int16))) == SILENCE_DBFS
    meter = LevelMeter()
    meter.feed(frame_of(full))
    meter.feed(frame_of(np.zeros(960, dtype=np.int16)))
    reading = meter.reading()
    assert reading.frames == 2 and reading.samples == 1920
    assert reading.rms_dbfs == pytest.approx(-6.02, abs=0.05)  # half the energy
    assert reading.peak_dbfs == pytest.approx(0.0, abs=0.01)


async def test_tone_microphone_frames_are_48k_20ms_paced_and_continuous() -> None:
    mic = ToneMicrophone(1000.0, level_dbfs=-20.0)
    assert isinstance(mic, Microphone) and mic.kind == "audio"
    frames = [await mic.recv() for _ in range(5)]
    assert all(f.samples == 960 and f.sample_rate == 48000 for f in frames)
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    assert rms_dbfs(frames[1]) == pytest.approx(-20.0, abs=0.1)
    joined = np.concatenate([f.to_ndarray().ravel() for f in frames]).astype(float)
    # Phase-continuous across frames: no jump bigger than one sample step of the sine.
    step = 2 * math.pi * 1000 / 48000 * math.sqrt(2) * 10 ** (-1) * 32767
    assert np.max(np.abs(np.diff(joined))) <= step + 2
    mic.set_tone(None)
    assert rms_dbfs(await mic.recv()) == SILENCE_DBFS
    mic.stop()
    with pytest.raises(MediaStreamError):
        await mic.recv()


async def test_measure_level_of_the_fake_microphone() -> None:
    mic = ToneMicrophone(440.0, level_dbfs=-30.0)
    reading = await measure_level(mic, duration=0.2)
    mic.stop()
    assert reading.frames == 10
    assert reading.rms_dbfs == pytest.approx(-30.0, abs=0.2)


async def test_recording_speaker_meters_what_it_plays() -> None:
    speaker = RecordingSpeaker()
    assert isinstance(speaker, Speaker)
    await speaker.start(tone_track(0.2, 440.0, level_dbfs=-12.0))
    assert speaker.playing
    for _ in range(200):
        if not speaker.playing:
            break
        await asyncio.sleep(0.01)
    assert not speaker.playing  # the test tone ended by itself after 0.2 s of audio
    assert speaker.total_samples == 9600 and speaker.sample_rate == 48000
    assert speaker.meter.reading().rms_dbfs == pytest.approx(-12.0, abs=0.2)
    await speaker.check()
    await speaker.stop()


async def test_speaker_replaces_and_stops_tracks() -> None:
    speaker = RecordingSpeaker()
    first, second = ToneMicrophone(440.0), ToneMicrophone(None)
    await speaker.start(first)
    await asyncio.sleep(0.05)
    await speaker.start(second)  # the GP re-dialled: the new track replaces the old
    await asyncio.sleep(0.05)
    assert speaker.meter.reading().peak_dbfs == SILENCE_DBFS  # metering restarted on silence
    await speaker.stop()
    assert not speaker.playing
    first.stop()
    second.stop()
    with pytest.raises(ValueError, match="audio"):
        from hardware.camera import TestPatternCamera

        camera = TestPatternCamera()
        try:
            await speaker.start(camera)
        finally:
            camera.stop()


# -- PyAV backend -------------------------------------------------------------------------


async def test_pyav_microphone_reads_a_real_source_in_20ms_frames() -> None:
    # lavfi's sine source, paced in real time: the capture thread, resampler and queue are
    # the same as for an ALSA device.
    mic = PyAVMicrophone("sine=frequency=440:sample_rate=48000,arealtime", container_format="lavfi")
    assert isinstance(mic, Microphone) and mic.backend == "pyav"
    reading = await measure_level(mic, duration=0.3, give_up_after=10)
    frames = [await mic.recv() for _ in range(3)]
    await mic.aclose()
    assert all(
        f.samples == 960 and f.sample_rate == 48000 and f.format.name == "s16" for f in frames
    )
    assert (frames[1].pts or 0) - (frames[0].pts or 0) == 960
    assert reading.rms_dbfs == pytest.approx(-21.1, abs=0.3)  # lavfi's sine is 1/8 full scale
    with pytest.raises(MediaStreamError):
        await mic.recv()


@pytest.mark.skipif(not HAVE_SYSTEM_ALSA, reason="needs the system's ALSA configuration")
async def test_pyav_microphone_opens_a_real_alsa_device() -> None:
    # ALSA's "null" device exists on every Linux with alsa-lib's configuration: a real PCM
    # opened by PyAV's bundled alsa-lib, once apply_alsa_environment has pointed it there.
    mic = PyAVMicrophone("null")
    frame = await asyncio.wait_for(mic.recv(), 10)
    await mic.aclose()
    assert frame.samples == 960 and frame.sample_rate == 48000


@pytest.mark.skipif(not HAVE_SYSTEM_ALSA, reason="needs the system's ALSA configuration")
async def test_pyav_speaker_plays_to_a_real_alsa_device() -> None:
    speaker = PyAVSpeaker("null")
    await speaker.check()
    await speaker.start(tone_track(0.2, 1000.0, level_dbfs=-12.0))
    for _ in range(300):
        if not speaker.playing and speaker.written >= 10:
            break
        await asyncio.sleep(0.01)
    await speaker.stop()
    assert speaker.error is None
    assert speaker.written == 10  # 0.2 s in 20 ms frames, all reached the device
    assert speaker.meter.reading().rms_dbfs == pytest.approx(-12.0, abs=0.2)


@pytest.mark.slow
async def test_a_stalled_loudspeaker_never_holds_up_the_call(tmp_path: Path) -> None:
    # A device that stops taking samples (a FIFO nobody reads: the pipe fills in under a
    # second, then every write blocks). Stopping used to close the device from another
    # thread under the blocked write: that hung for ever (the call's teardown with it) or
    # freed FFmpeg's context under the write. Now the writer closes it when its write returns.
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        speaker = PyAVSpeaker(str(fifo), container_format="s16le")
        await speaker.start(tone_track(30))
        await asyncio.sleep(1.5)
        stuck_at = speaker.written
        await asyncio.sleep(0.5)
        assert speaker.written == stuck_at < 75  # stalled: not 100 frames in 2 s
        await asyncio.wait_for(speaker.stop(), 10)
        assert not speaker.playing
        writers = [t for t in threading.enumerate() if t.name == "loudspeaker"]
        assert writers, "the writer is still in its blocked write"
        # The device takes samples again: the write returns and the writer closes it.
        deadline = time.monotonic() + 10
        while any(t.is_alive() for t in writers):
            assert time.monotonic() < deadline, "the writer never ended"
            with contextlib.suppress(BlockingIOError):
                os.read(reader, 1 << 20)
            await asyncio.sleep(0.05)
    finally:
        os.close(reader)


async def test_pyav_devices_that_do_not_exist_are_clear_errors() -> None:
    mic = PyAVMicrophone("no-such-device-kontakt")
    with pytest.raises(AudioUnavailableError) as caught:
        await asyncio.wait_for(mic.recv(), 10)
    assert "no-such-device-kontakt" in str(caught.value)
    assert "Mikrofon eller højttaler" in caught.value.user_message
    await mic.aclose()
    speaker = PyAVSpeaker("no-such-device-kontakt")
    with pytest.raises(AudioUnavailableError, match="loudspeaker"):
        await speaker.check()
    with pytest.raises(AudioUnavailableError):
        await speaker.start(ToneMicrophone())
    assert not speaker.playing


def test_alsa_environment_points_the_bundled_alsa_lib_at_the_system(tmp_path: Path) -> None:
    (tmp_path / "usr/share/alsa").mkdir(parents=True)
    (tmp_path / "usr/share/alsa/alsa.conf").write_text("")
    (tmp_path / "usr/lib/aarch64-linux-gnu/alsa-lib").mkdir(parents=True)
    wanted = alsa_environment({}, root=tmp_path)
    assert wanted == {
        "ALSA_CONFIG_PATH": str(tmp_path / "usr/share/alsa/alsa.conf"),
        "ALSA_CONFIG_DIR": str(tmp_path / "usr/share/alsa"),
        "ALSA_PLUGIN_DIR": str(tmp_path / "usr/lib/aarch64-linux-gnu/alsa-lib"),
    }
    assert (
        alsa_environment(
            {"ALSA_CONFIG_PATH": "/x", "ALSA_CONFIG_DIR": "/y", "ALSA_PLUGIN_DIR": "/z"},
            root=tmp_path,
        )
        == {}
    )


def test_probe_alsa(tmp_path: Path) -> None:
    assert "does not exist" in (probe_alsa(tmp_path / "snd") or "")
    snd = tmp_path / "snd"
    snd.mkdir()
    (snd / "pcmC1D0p").touch()
    assert "record" in (probe_alsa(snd) or "")
    (snd / "pcmC1D0c").touch()
    assert probe_alsa(snd) is None


async def test_audio_backend_choice() -> None:
    parts = build_audio({"KONTAKTSTATION_AUDIO": "fake", "KONTAKTSTATION_AUDIO_TONE": "0"})
    mic = parts.microphone_factory()
    assert parts.backend == "fake" and rms_dbfs(await mic.recv()) == SILENCE_DBFS
    mic.stop()
    assert build_audio({"KONTAKTSTATION_HARDWARE": "fake"}).backend == "fake"
    with pytest.raises(UnknownBackendError):
        build_audio({"KONTAKTSTATION_AUDIO": "pulse"})
    with pytest.raises(BackendUnavailableError) as caught:
        build_audio({}, probe=lambda: "no sound card can record")
    assert "KONTAKTSTATION_AUDIO=fake" in str(caught.value)
    assert caught.value.backend == "auto"
    with pytest.raises(BackendUnavailableError) as caught:
        build_audio({"KONTAKTSTATION_AUDIO": "pyav"}, probe=lambda: "no sound card can record")
    assert caught.value.backend == "pyav"
    parts = build_audio({"KONTAKTSTATION_AUDIO_INPUT": "hw:1"}, probe=lambda: None)
    mic = parts.microphone_factory()
    assert parts.backend == "pyav" and isinstance(mic, PyAVMicrophone) and mic.device == "hw:1"
    assert isinstance(parts.speaker, PyAVSpeaker)
