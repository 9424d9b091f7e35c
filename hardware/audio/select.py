"""Choosing the audio backend from the environment.

``KONTAKTSTATION_AUDIO`` names the backend: ``pyav`` (ALSA through PyAV) or ``fake``.
Unset, the fallback order is ``pyav`` only, when a sound card that can record and play exists;
the fake is never chosen silently (set ``KONTAKTSTATION_AUDIO=fake`` or
``KONTAKTSTATION_HARDWARE=fake`` for the demo). Devices: ``KONTAKTSTATION_AUDIO_INPUT`` and
``KONTAKTSTATION_AUDIO_OUTPUT`` (ALSA names, default ``default``: PipeWire's default source
and sink, which the Pi set-up points at the echo-cancel module). The fake microphone's tone:
``KONTAKTSTATION_AUDIO_TONE`` (Hz, ``0`` for silence, default 440 at -30 dBFS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .._env import choose, env_float
from ..errors import BackendUnavailableError
from .base import Microphone, Speaker
from .fake import RecordingSpeaker, ToneMicrophone
from .pyav import DEFAULT_AUDIO_DEVICE, PyAVMicrophone, PyAVSpeaker, probe_alsa

__all__ = [
    "AUDIO_BACKENDS",
    "AUDIO_ENV",
    "AUDIO_FALLBACK_ORDER",
    "AudioParts",
    "AudioProbe",
    "MicrophoneFactory",
    "build_audio",
]

AUDIO_ENV = "KONTAKTSTATION_AUDIO"
AUDIO_BACKENDS = ("pyav", "fake")
AUDIO_FALLBACK_ORDER = ("pyav",)

#: Makes a fresh microphone track (one per call).
MicrophoneFactory = Callable[[], Microphone]
#: Why no sound card can be used (English), or ``None``; cheap, opens nothing.
AudioProbe = Callable[[], str | None]


@dataclass(frozen=True)
class AudioParts:
    """The chosen audio backend: a microphone factory and the loudspeaker."""

    backend: str
    microphone_factory: MicrophoneFactory
    speaker: Speaker


def build_audio(env: Mapping[str, str], *, probe: AudioProbe = probe_alsa) -> AudioParts:
    """Build the audio parts named by the environment (see the module docstring)."""
    name = choose(env, AUDIO_ENV, AUDIO_BACKENDS, fake="fake")
    if name == "fake":
        tone = env_float(env, "KONTAKTSTATION_AUDIO_TONE", 440.0)

        def fake_microphone() -> Microphone:
            return ToneMicrophone(tone if tone > 0 else None, -30.0)

        return AudioParts("fake", fake_microphone, RecordingSpeaker())

    reason = probe()
    if reason is not None:
        if name is None:
            reason += f" (set {AUDIO_ENV}=fake for the demo)"
        raise BackendUnavailableError("audio", name or "auto", reason)
    input_device = env.get("KONTAKTSTATION_AUDIO_INPUT", "") or DEFAULT_AUDIO_DEVICE
    output_device = env.get("KONTAKTSTATION_AUDIO_OUTPUT", "") or DEFAULT_AUDIO_DEVICE

    def pyav_microphone() -> Microphone:
        return PyAVMicrophone(input_device)

    return AudioParts("pyav", pyav_microphone, PyAVSpeaker(output_device))
