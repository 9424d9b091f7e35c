"""Opus in-band FEC both ways in a real call: stationd (hub, fake hardware) and Chromium as GP.

The station's SDP asks for FEC and DTX; the station's encoder codes LBRR in the packets it
sends; and Chromium, told by that SDP, codes LBRR in the packets it sends once the station's
receiver reports loss. The loss is made at the station's RTP receiver (every 8th audio packet
from the GP is dropped before aiortc sees it, so its receiver reports count it): this kernel
has no netem, and what is tested here is Chromium's reaction to reported loss.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from station.call.opus import FecOpusEncoder
from tests.opus_lbrr import lbrr_flag, speak_into_fake_microphone

from .call_harness import wait_for
from .netns import delegated_to_loopback_namespace
from .test_call_browser import admitted_call, scenario

OPUS_FMTP_JS = """
() => {
  const pc = window.kontaktGp.peerConnection();
  const fmtp = (sdp) => {
    const rtpmap = sdp.split("\\r\\n").find((l) => /^a=rtpmap:\\d+ opus\\/48000/i.test(l));
    const pt = rtpmap.split(" ")[0].split(":")[1];
    return sdp.split("\\r\\n").find((l) => l.startsWith(`a=fmtp:${pt} `)) || "";
  };
  return {offer: fmtp(pc.remoteDescription.sdp), answer: fmtp(pc.localDescription.sdp)};
}
"""

AUDIO_IN_JS = """
async () => {
  const pc = window.kontaktGp.peerConnection();
  let out = null;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio")
      out = {packets: s.packetsReceived, samples: s.totalSamplesReceived,
             concealed: s.concealedSamples};
  });
  return out;
}
"""


@pytest.mark.browser
@pytest.mark.slow
def test_opus_fec_both_ways_with_chromium(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if delegated_to_loopback_namespace(request):
        return

    sent: list[bytes] = []
    received: list[bytes] = []
    original_encode = FecOpusEncoder.encode

    def recording_encode(self: FecOpusEncoder, frame: Any, force: bool = False) -> Any:
        payloads, timestamp = original_encode(self, frame, force)
        sent.extend(payloads)
        return payloads, timestamp

    original_handle = RTCRtpReceiver._handle_rtp_packet
    audio_seen = 0

    async def lossy_handle(self: RTCRtpReceiver, packet: Any, arrival_time_ms: int) -> None:
        nonlocal audio_seen
        if self._RTCRtpReceiver__kind == "audio":  # type: ignore[attr-defined]
            audio_seen += 1
            if audio_seen % 8 == 0:
                return  # lost on the way
            received.append(bytes(packet.payload))
        await original_handle(self, packet, arrival_time_ms)

    speak_into_fake_microphone(monkeypatch)
    monkeypatch.setattr(FecOpusEncoder, "encode", recording_encode)
    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", lossy_handle)

    async def run() -> None:
        async with scenario(tmp_path) as (_hub, st, context):
            page = await admitted_call(st, context)
            fmtp = await page.evaluate(OPUS_FMTP_JS)
            # The station's offer asks for FEC and DTX; Chromium's answer says it decodes FEC.
            assert "useinbandfec=1" in fmtp["offer"] and "usedtx=1" in fmtp["offer"], fmtp
            assert "useinbandfec=1" in fmtp["answer"], fmtp

            # The live call's audio sender encodes with the station's encoder.
            engine = st.daemon.calls.engine
            pc = engine._attempt.pc
            encoders = [s._RTCRtpSender__encoder for s in pc.getSenders() if s.kind == "audio"]
            assert any(isinstance(e, FecOpusEncoder) for e in encoders), encoders

            # Chromium decodes the station's hybrid/SILK packets.
            await wait_for(
                lambda: _audio_in(page, lambda a: a and a["packets"] > 100),
                what="station audio at Chromium",
                timeout=20,
            )
            station = [lbrr_flag(p) for p in sent[10:]]
            share = sum(bool(f) for f in station) / max(1, len(station))
            print(f"station -> GP: {len(station)} packets, LBRR in {share:.0%}")
            assert share > 0.5, share

            # Chromium reacts to the reported loss with LBRR in its own packets.
            async def chromium_sends_fec() -> bool:
                flags = [lbrr_flag(p) for p in received[-50:] if len(p) > 2]
                return sum(bool(f) for f in flags) >= 5

            await wait_for(chromium_sends_fec, what="LBRR from Chromium", timeout=30)
            flags = [lbrr_flag(p) for p in received if len(p) > 2]
            print(
                f"GP -> station: {len(received)} packets kept ({audio_seen} seen, 1 in 8 "
                f"dropped), LBRR in {sum(bool(f) for f in flags)} of {len(flags)} voiced"
            )
            await page.close()

    asyncio.run(run())


async def _audio_in(page: Any, ok: Any) -> bool:
    return bool(ok(await page.evaluate(AUDIO_IN_JS)))
