"""The station's Opus follows the loss Chromium reports for it (issue 18 item 2), in a real call.

stationd (hub, fake hardware, its voice-like microphone) calls Chromium as the GP. Loss is made
on the station's way out: while it is on, one in six of the station's audio RTP packets is
dropped just before SRTP (this kernel has no netem), so Chromium's receiver reports, and only
they, tell the station. The station's encoder must climb the bitrate ladder and raise the
redundancy it codes, then come back down once the loss is gone
(:mod:`station.call.audiorate`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import is_rtcp

from station.call.opus import FecOpusEncoder, station_opus_encoder
from tests.opus_lbrr import speak_into_fake_microphone

from .call_harness import wait_for
from .netns import delegated_to_loopback_namespace
from .test_call_browser import admitted_call, scenario

#: One in this many of the station's audio packets is lost while the loss is on.
DROP_EVERY = 6

AUDIO_BYTES_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  let out = null;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") out = s.bytesReceived;
  });
  return out;
}
"""


@pytest.mark.browser
@pytest.mark.slow
def test_the_stations_opus_follows_the_loss_chromium_reports(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if delegated_to_loopback_namespace(request):
        return
    loss: dict[str, Any] = {"on": False, "ssrc": None, "seen": 0, "dropped": 0, "bytes": 0}
    original_send = RTCDtlsTransport._send_rtp

    async def lossy_send(self: RTCDtlsTransport, data: bytes) -> None:
        ours = not is_rtcp(data) and len(data) >= 12 and loss["ssrc"] is not None
        if ours and int.from_bytes(data[8:12], "big") == loss["ssrc"]:
            loss["bytes"] += len(data)
            if loss["on"]:
                loss["seen"] += 1
                if loss["seen"] % DROP_EVERY == 0:
                    loss["dropped"] += 1
                    return  # lost on the way
        await original_send(self, data)

    speak_into_fake_microphone(monkeypatch)
    monkeypatch.setattr(RTCDtlsTransport, "_send_rtp", lossy_send)

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            page = await admitted_call(st, context)
            attempt = st.daemon.calls.engine._attempt
            (sender,) = [s for s in attempt.pc.getSenders() if s.kind == "audio"]
            await wait_for(
                lambda: station_opus_encoder(sender) is not None, what="the station's encoder"
            )
            encoder = station_opus_encoder(sender)
            assert isinstance(encoder, FecOpusEncoder)
            loss["ssrc"] = sender._ssrc

            def settings() -> tuple[int, int]:
                return encoder.bitrate, encoder.packet_loss_percent

            # A clean link: Chromium's first reports bring the clean rung and the floor.
            await wait_for(lambda: settings() == (32_000, 2), what="clean settings", timeout=40)
            clean_sent, clean_gp = await rates(page, loss)

            loss["on"] = True
            started = time.monotonic()
            await wait_for(
                lambda: settings()[0] >= 40_000 and settings()[1] >= 8,
                what="the encoder following the loss",
                timeout=45,
            )
            adapted_s = time.monotonic() - started
            await wait_for(lambda: settings()[0] == 48_000, what="the top rung", timeout=45)
            lossy_sent, lossy_gp = await rates(page, loss)
            lossy = settings()

            loss["on"] = False
            started = time.monotonic()
            await wait_for(lambda: settings() == (32_000, 2), what="back to clean", timeout=90)
            recovered_s = time.monotonic() - started
            print(
                f"MEASURED opus follows loss: 1 in {DROP_EVERY} dropped ({loss['dropped']} of "
                f"{loss['seen']}); settings under loss {lossy}; adapted in {adapted_s:.1f} s, "
                f"back to clean in {recovered_s:.1f} s; station sent {clean_sent:.1f} -> "
                f"{lossy_sent:.1f} kbit/s, Chromium received {clean_gp:.1f} -> {lossy_gp:.1f}"
            )
            # The station sends more (a higher rung, more redundancy) once it knows of the loss.
            assert lossy_sent > clean_sent * 1.15, (clean_sent, lossy_sent)
            await page.close()

    asyncio.run(run())


async def rates(page: Any, loss: dict[str, Any], seconds: float = 6.0) -> tuple[float, float]:
    """kbit/s of the station's audio RTP sent, and of audio Chromium received, over a window."""
    sent0, got0, t0 = loss["bytes"], await page.evaluate(AUDIO_BYTES_JS), time.monotonic()
    await asyncio.sleep(seconds)
    sent1, got1, t1 = loss["bytes"], await page.evaluate(AUDIO_BYTES_JS), time.monotonic()
    span = t1 - t0
    return (sent1 - sent0) * 8 / span / 1000, (got1 - got0) * 8 / span / 1000
