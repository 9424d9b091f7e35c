"""The station's microphone and loudspeaker: ports, a real backend (PyAV/ALSA) and fakes.

- :class:`Microphone` is an aiortc audio track (48 kHz mono, 20 ms frames);
  :class:`Speaker` plays one audio track (the GP's voice).
- Real: :class:`PyAVMicrophone` and :class:`PyAVSpeaker` (ALSA through PyAV, no extra
  dependency). Fakes: :class:`ToneMicrophone` (a tone or silence) and
  :class:`RecordingSpeaker` (meters and counts what it is given).
- :func:`measure_level` and :class:`LevelMeter` give RMS/peak in dBFS for the pre-call level
  meter; :func:`tone_track` is the loudspeaker test tone.

Echo cancellation
-----------------
aiortc has none, and a loudspeaker next to a microphone sends the GP's own voice back. The
station gets it from one of two places, never from this code:

1. The USB speakerphone's own acoustic echo canceller (Jabra Speak, Poly Sync and the like do
   it in hardware). Then the devices can be used directly, e.g.
   ``KONTAKTSTATION_AUDIO_INPUT=plughw:CARD=USB,DEV=0``.
2. PipeWire's ``libpipewire-module-echo-cancel`` (WebRTC AEC), which the Pi set-up configures
   as the default source and sink. The station then uses ALSA's ``default`` device, which the
   ``pipewire`` ALSA plugin routes through the echo canceller.

Either way the pre-call check plays :func:`tone_track` and watches the microphone's level, so
a missing or broken device shows up before the GP does.
"""

from __future__ import annotations

from .base import AUDIO_PTIME, AUDIO_SAMPLE_RATE, Microphone, Speaker
from .fake import RecordingSpeaker, ToneMicrophone, tone_track
from .level import SILENCE_DBFS, LevelMeter, LevelReading, measure_level, rms_dbfs
from .pyav import (
    DEFAULT_AUDIO_DEVICE,
    PyAVMicrophone,
    PyAVSpeaker,
    alsa_environment,
    apply_alsa_environment,
    probe_alsa,
)
from .select import (
    AUDIO_BACKENDS,
    AUDIO_ENV,
    AUDIO_FALLBACK_ORDER,
    AudioParts,
    MicrophoneFactory,
    build_audio,
)

__all__ = [
    "AUDIO_BACKENDS",
    "AUDIO_ENV",
    "AUDIO_FALLBACK_ORDER",
    "AUDIO_PTIME",
    "AUDIO_SAMPLE_RATE",
    "DEFAULT_AUDIO_DEVICE",
    "SILENCE_DBFS",
    "AudioParts",
    "LevelMeter",
    "LevelReading",
    "Microphone",
    "MicrophoneFactory",
    "PyAVMicrophone",
    "PyAVSpeaker",
    "RecordingSpeaker",
    "Speaker",
    "ToneMicrophone",
    "alsa_environment",
    "apply_alsa_environment",
    "build_audio",
    "measure_level",
    "probe_alsa",
    "rms_dbfs",
    "tone_track",
]
