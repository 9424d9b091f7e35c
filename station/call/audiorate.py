"""The station's Opus follows the loss the GP's browser reports (issue 18 item 2).

The station's encoder (:class:`station.call.opus.FecOpusEncoder`) codes in-band FEC: each
packet carries a low-rate copy of the one before, which the GP's browser decodes when that one
is lost. libopus decides how much of the bitrate goes to that copy from the *expected* packet
loss it is told; told 1 % (what it was fixed at), it spends almost nothing on it. The browser's
receiver reports (RTCP RR) say what it really lost of the station's audio. This class turns
each new report into the encoder's two live settings:

- **expected loss**: the reported fraction, smoothed (an exponential average, half from the
  newest report), as a whole percent, 1-30: the redundancy follows the link;
- **bitrate**: a short ladder, so that the redundancy does not eat the voice's own bits:
  32 kbit/s on a clean link (what browsers send for voice; aiortc's fixed 96 kbit/s was three
  times that on links that are often the building's shared uplink), 40 kbit/s from 3 %
  smoothed loss, 48 kbit/s from 10 %. A step down waits until the loss is well below the step
  (1.5 % and 6 %), so a link near a threshold does not flap. While the link judge holds the
  call in audio only (:mod:`station.call.linkjudge`: the link cannot carry video) the bitrate
  is at most the clean rung: what is scarce there is bandwidth, not packets.

Chromium sends its audio receiver reports every few seconds (RFC 3550 timing, about 5 s for
audio), so the encoder adapts within a few reports; a report is used once (its arrival time
tells a new one from the last).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BITRATES", "START", "STEP_DOWN", "STEP_UP", "AudioRate", "AudioTarget"]

#: The bitrate ladder (bit/s): clean, lossy, very lossy.
BITRATES: Final = (32_000, 40_000, 48_000)
#: Smoothed loss at which each rung above the first is taken ...
STEP_UP: Final = (0.03, 0.10)
#: ... and below which it is left again.
STEP_DOWN: Final = (0.015, 0.06)
#: The expected loss libopus is told stays within this (percent). The floor keeps some
#: redundancy on a link that has lost nothing yet (Wi-Fi loses in bursts, and a report comes
#: only every few seconds).
_LOSS_PERCENT_RANGE: Final = (2, 30)
#: What the encoder starts with, before the first report: the clean rung, and the expected
#: loss that makes libopus code LBRR from the first packet.
START: Final = (BITRATES[0], 10)


@dataclass(frozen=True)
class AudioTarget:
    """The encoder's two live settings."""

    bitrate: int
    loss_percent: int


class AudioRate:
    """Receiver reports in, encoder settings out (see the module's text). Pure: no I/O."""

    def __init__(self, *, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        #: The smoothed loss fraction (None before the first report).
        self.loss: float | None = None
        self._rung = 0
        self.target = AudioTarget(*START)

    def feed(self, fraction_lost: float, *, audio_only: bool = False) -> AudioTarget | None:
        """One new receiver report's loss fraction (0-1). The new target if it changed."""
        fraction = min(1.0, max(0.0, fraction_lost))
        self.loss = (
            fraction
            if self.loss is None
            else self.smoothing * fraction + (1 - self.smoothing) * self.loss
        )
        while self._rung < len(STEP_UP) and self.loss >= STEP_UP[self._rung]:
            self._rung += 1
        while self._rung > 0 and self.loss < STEP_DOWN[self._rung - 1]:
            self._rung -= 1
        bitrate = BITRATES[0] if audio_only else BITRATES[self._rung]
        low, high = _LOSS_PERCENT_RANGE
        percent = min(high, max(low, round(self.loss * 100)))
        target = AudioTarget(bitrate, percent)
        if target == self.target:
            return None
        self.target = target
        return target
