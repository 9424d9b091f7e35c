"""Reading an Opus packet's in-band FEC flag (LBRR, RFC 6716 section 4.2.4), and a voice-like
signal for libopus to code it on (its VAD takes a steady sine for no speech), for tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

__all__ = ["RATE", "RangeDecoder", "lbrr_flag", "speak_into_fake_microphone", "speech_like"]

RATE = 48_000


def speech_like(seconds: float, seed: int = 1) -> np.ndarray:
    """A voiced, syllable-modulated signal (a vowel's harmonics at 3-5 syllables/s), mono s16."""
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(seed)
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    noise = rng.normal(0, 0.02, t.size)
    return (6000 * (voice * envelope + noise)).astype(np.int16)


def speak_into_fake_microphone(monkeypatch: pytest.MonkeyPatch, seconds: float = 60) -> None:
    """The fake microphone "hears" :func:`speech_like` instead of its steady tone, which
    libopus's VAD (rightly) does not take for speech, and codes no FEC for."""
    from hardware.audio.fake import ToneMicrophone

    voice = speech_like(seconds)
    original_recv = ToneMicrophone.recv

    async def voice_recv(self: ToneMicrophone) -> Any:
        frame = await original_recv(self)
        start = int(frame.pts or 0) % (voice.size - frame.samples)
        frame.planes[0].update(voice[start : start + frame.samples].tobytes())
        return frame

    monkeypatch.setattr(ToneMicrophone, "recv", voice_recv)


class RangeDecoder:
    """RFC 6716 section 4.1's range decoder: ``ec_dec_init`` and ``ec_dec_bit_logp``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0
        self.rem = self._byte()
        self.rng = 128
        self.val = 127 - (self.rem >> 1)
        self._normalize()

    def _byte(self) -> int:
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def _normalize(self) -> None:
        while self.rng <= 1 << 23:
            self.rng <<= 8
            sym = self.rem
            self.rem = self._byte()
            sym = ((sym << 8) | self.rem) >> 1
            self.val = ((self.val << 8) + (255 & ~sym)) & ((1 << 31) - 1)

    def bit_logp(self, logp: int) -> int:
        s = self.rng >> logp
        bit = 1 if self.val < s else 0
        if bit:
            self.rng = s
        else:
            self.val -= s
            self.rng -= s
        self._normalize()
        return bit


def lbrr_flag(packet: bytes) -> bool | None:
    """The (mid) channel's LBRR flag of a one-frame SILK/hybrid packet; None for CELT-only."""
    config = packet[0] >> 3
    if config >= 16:
        return None  # CELT only: no SILK layer, no FEC
    stereo = bool(packet[0] & 0x04)
    assert packet[0] & 0x03 == 0, "one frame per packet expected"
    decoder = RangeDecoder(packet[1:])
    decoder.bit_logp(1)  # mid channel: VAD flag of its one 20 ms SILK frame
    mid_lbrr = decoder.bit_logp(1)
    if stereo:
        decoder.bit_logp(1)  # side channel's VAD flag
        decoder.bit_logp(1)  # side channel's LBRR flag
    return bool(mid_lbrr)
