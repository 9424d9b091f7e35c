"""The reminders' sound: espeak-ng's Danish voice, the chime, and the track that plays them."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from hardware.audio.speech import SoundTrack, build_speech, chime, probe_espeak
from hardware.errors import HardwareConfigError

needs_espeak = pytest.mark.skipif(
    probe_espeak() is not None, reason="espeak-ng with its Danish voice is not installed"
)


def test_the_backend_is_chosen_by_name_and_a_wrong_name_is_it_s_error() -> None:
    with pytest.raises(HardwareConfigError, match="KONTAKTSTATION_SPEECH"):
        build_speech({"KONTAKTSTATION_SPEECH": "festival"})
    off = build_speech({"KONTAKTSTATION_SPEECH": "none"})
    assert off.backend == "none" and off.reason and "switched off" in off.reason


def test_a_missing_espeak_says_why() -> None:
    reason = probe_espeak("no-such-espeak-here")
    assert reason is not None and "not installed" in reason


@needs_espeak
def test_espeak_without_the_voice_is_missing_too() -> None:
    reason = probe_espeak("espeak-ng", "xx")
    assert reason is not None and "no voice for 'xx'" in reason


@needs_espeak
async def test_espeak_speaks_danish_and_text_is_never_an_option() -> None:
    speech = build_speech({})
    assert speech.backend == "espeak-ng" and speech.reason is None
    samples = await speech.synthesize("Videokonsultation med Lægehuset om 15 minutter.")
    assert samples.dtype == np.int16 and 2.0 < samples.size / 48_000 < 8.0
    assert np.abs(samples).max() > 3000  # audible, not silence
    # Text on stdin: a sentence that looks like an option is spoken, not obeyed.
    tricky = await speech.synthesize("--help -w /tmp/x")
    assert tricky.size / 48_000 > 0.5


async def test_the_track_plays_the_chime_once_in_20_ms_frames() -> None:
    sound = chime()
    assert 0.85 < sound.size / 48_000 < 0.95
    track = SoundTrack(sound, "hello", paced=False)
    frames = []
    with pytest.raises(MediaStreamError):
        while True:
            frames.append(await track.recv())
    assert all(f.samples == 960 and f.sample_rate == 48_000 for f in frames)
    assert len(frames) == -(-sound.size // 960) and track.text == "hello"
    assert track.readyState == "ended"
