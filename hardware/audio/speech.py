"""Spoken reminders: a chime and a short sentence, as one audio track for the loudspeaker.

Speech comes from **espeak-ng** (Debian and Raspberry Pi OS package ``espeak-ng``, whose data
has a Danish voice, ``da``), run as a subprocess with the text on its standard input (never on
a command line, never through a shell) and its WAV output read back. It is chosen by
``KONTAKTSTATION_SPEECH``: ``espeak-ng`` (the default) or ``none`` (no speech, deliberately).
When espeak-ng or its voice is not there, :func:`build_speech` gives a :class:`MissingSpeech`
that says why: the chime still plays, and the station's health reports ``speech`` as failing
(loudly, never a silent station).

:func:`chime` is the two-note chime; :class:`SoundTrack` plays samples as a paced aiortc audio
track (48 kHz mono, 20 ms frames, at real time, so a real device is never flooded) and carries
the text it speaks, which the shipped fake loudspeaker records.
"""

from __future__ import annotations

import asyncio
import fractions
import io
import shutil
import subprocess
import wave
from collections.abc import Mapping
from typing import Final, Protocol

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..errors import AudioUnavailableError, HardwareConfigError
from .base import AUDIO_PTIME, AUDIO_SAMPLE_RATE

__all__ = [
    "SPEECH_BACKENDS",
    "SPEECH_ENV",
    "EspeakSpeech",
    "MissingSpeech",
    "SoundTrack",
    "Speech",
    "SpeechUnavailableError",
    "build_speech",
    "chime",
    "probe_espeak",
]

SPEECH_ENV: Final = "KONTAKTSTATION_SPEECH"
SPEECH_BACKENDS: Final = ("espeak-ng", "none")
_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
_FRAME = round(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
#: espeak-ng's voice for each UI language.
_VOICES: Final = {"da": "da", "en": "en"}
#: espeak-ng renders a sentence in tens of milliseconds; this bounds a stuck one.
_SYNTH_TIMEOUT: Final = 10.0

Samples = npt.NDArray[np.int16]


class SpeechUnavailableError(AudioUnavailableError):
    """No speech can be made (espeak-ng or its voice missing, or it failed)."""


class Speech(Protocol):
    """Text to speech: 48 kHz mono signed 16-bit samples."""

    @property
    def backend(self) -> str:
        """``espeak-ng``, ``none`` or ``missing``."""
        ...

    @property
    def reason(self) -> str | None:
        """Why there is no speech (English), or None when it works."""
        ...

    async def synthesize(self, text: str, language: str = "da") -> Samples:
        """``text`` spoken in ``language``; raises :class:`SpeechUnavailableError`."""
        ...


def probe_espeak(binary: str = "espeak-ng", language: str = "da") -> str | None:
    """Why espeak-ng cannot speak ``language`` here (English), or None when it can."""
    path = shutil.which(binary)
    if path is None:
        return f"{binary} is not installed (apt install espeak-ng)"
    voice = _VOICES.get(language, language)
    try:
        listed = subprocess.run(  # noqa: S603 (a fixed command line; the voice is ours)
            [path, f"--voices={voice}"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{binary} does not run: {type(exc).__name__}"
    if not any(line.split()[1:2] == [voice] for line in listed.splitlines()[1:]):
        return f"{binary} has no voice for {voice!r} (espeak-ng-data)"
    return None


def _resample(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.float64]:
    """Linear interpolation to 48 kHz (speech only: no need for a better filter)."""
    if rate == AUDIO_SAMPLE_RATE or samples.size == 0:
        return samples
    count = round(samples.size * AUDIO_SAMPLE_RATE / rate)
    positions = np.arange(count) * (rate / AUDIO_SAMPLE_RATE)
    resampled: npt.NDArray[np.float64] = np.interp(positions, np.arange(samples.size), samples)
    return resampled


def _wav_samples(data: bytes) -> Samples:
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2:
            raise SpeechUnavailableError("espeak-ng gave a WAV that is not 16-bit")
        channels, rate = wav.getnchannels(), wav.getframerate()
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    if channels > 1:
        raw = raw.reshape(-1, channels).mean(axis=1)
    return np.clip(np.round(_resample(raw, rate)), -32768, 32767).astype(np.int16)


class EspeakSpeech:
    """espeak-ng as a subprocess (text on stdin, WAV on stdout)."""

    backend = "espeak-ng"
    reason: str | None = None

    def __init__(self, binary: str = "espeak-ng", *, speed: int = 150) -> None:
        self.binary = binary
        self.speed = speed

    def _run(self, text: str, voice: str) -> Samples:
        try:
            done = subprocess.run(  # noqa: S603 (fixed arguments; the text goes on stdin)
                [self.binary, "-v", voice, "-s", str(self.speed), "--stdin", "--stdout"],
                input=text.encode(),
                capture_output=True,
                timeout=_SYNTH_TIMEOUT,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SpeechUnavailableError(f"espeak-ng failed: {type(exc).__name__}") from exc
        return _wav_samples(done.stdout)

    async def synthesize(self, text: str, language: str = "da") -> Samples:
        """``text`` spoken by espeak-ng's voice for ``language`` (off the loop)."""
        return await asyncio.to_thread(self._run, text, _VOICES.get(language, language))


class MissingSpeech:
    """No speech: deliberately (``none``) or because espeak-ng cannot be used (``missing``)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason

    async def synthesize(self, text: str, language: str = "da") -> Samples:
        """Refuse, saying why."""
        raise SpeechUnavailableError(f"no speech: {self.reason}")


def build_speech(env: Mapping[str, str], language: str = "da") -> Speech:
    """The speech backend ``KONTAKTSTATION_SPEECH`` names (default ``espeak-ng``).

    espeak-ng without its voice is *missing* (with the reason), never silently replaced.
    """
    name = (env.get(SPEECH_ENV, "") or "espeak-ng").strip()
    if name not in SPEECH_BACKENDS:
        raise HardwareConfigError(
            f"{SPEECH_ENV}={name!r} is not one of {', '.join(SPEECH_BACKENDS)}"
        )
    if name == "none":
        return MissingSpeech("none", f"{SPEECH_ENV}=none: speech is switched off")
    reason = probe_espeak("espeak-ng", language)
    if reason is not None:
        return MissingSpeech("missing", reason)
    return EspeakSpeech()


def chime(level_dbfs: float = -9.0) -> Samples:
    """Two bell-like notes (E6 then C6), 0.9 s in all, peaking at ``level_dbfs``."""
    peak = 10 ** (level_dbfs / 20) * 32767
    parts: list[npt.NDArray[np.float64]] = []
    for frequency, seconds in ((1318.5, 0.35), (1046.5, 0.55)):
        t = np.arange(round(seconds * AUDIO_SAMPLE_RATE)) / AUDIO_SAMPLE_RATE
        envelope = np.exp(-t * 5.0) * np.minimum(1.0, t / 0.005)  # 5 ms attack, bell decay
        tone = np.sin(2 * np.pi * frequency * t) + 0.3 * np.sin(4 * np.pi * frequency * t)
        parts.append(peak / 1.3 * envelope * tone)
    return np.round(np.concatenate(parts)).astype(np.int16)


def silence(seconds: float) -> Samples:
    """``seconds`` of digital silence."""
    return np.zeros(round(seconds * AUDIO_SAMPLE_RATE), dtype=np.int16)


class SoundTrack(MediaStreamTrack):
    """Plays ``samples`` (48 kHz mono s16) once as 20 ms frames, at real time, then ends.

    ``text`` is what the track says (None for a chime alone): the fake loudspeaker records it,
    so a test can read what was spoken.
    """

    kind = "audio"

    def __init__(self, samples: Samples, text: str | None = None, *, paced: bool = True) -> None:
        super().__init__()
        self.samples = samples
        self.text = text
        self._paced = paced
        self._offset = 0
        self._start: float | None = None
        #: Set once the track has ended (played to the end, or stopped).
        self.finished = asyncio.Event()

    def stop(self) -> None:
        """End the track (and say so)."""
        super().stop()
        self.finished.set()

    @property
    def seconds(self) -> float:
        """How long the track plays."""
        return self.samples.size / AUDIO_SAMPLE_RATE

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms, when it is due; ``MediaStreamError`` at the end."""
        if self.readyState != "live" or self._offset >= self.samples.size:
            self.stop()
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._offset / AUDIO_SAMPLE_RATE
        if self._paced and due > loop.time():
            await asyncio.sleep(due - loop.time())
        chunk = self.samples[self._offset : self._offset + _FRAME]
        if chunk.size < _FRAME:
            chunk = np.concatenate([chunk, np.zeros(_FRAME - chunk.size, dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_SAMPLE_RATE
        frame.pts = self._offset
        frame.time_base = _TIME_BASE
        self._offset += _FRAME
        return frame
