"""The station's Opus encoder really codes in-band FEC and DTX (real libopus, real packets).

FEC is read from the packets themselves: the LBRR flag at the start of the SILK layer (RFC
6716 section 4.2.4), decoded with the RFC's range decoder, and measured as audio recovered by
libopus's decoder (``decode_fec=1``, what a browser's NetEq does) when packets are dropped.
aiortc's own encoder is measured the same way, so the tests fail if the FEC is not real.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import numpy as np
import pytest
from aiortc.codecs.opus import OpusEncoder
from av import AudioFrame

from station.call.opus import (
    OPUS_FMTP,
    FecOpusEncoder,
    install_fec_opus_encoder,
    load_libopus,
)
from tests.opus_lbrr import lbrr_flag, speech_like

RATE = 48_000
FRAME = 960


def frames(signal: np.ndarray) -> list[AudioFrame]:
    out = []
    for start in range(0, signal.size - FRAME + 1, FRAME):
        stereo = np.repeat(signal[start : start + FRAME], 2).reshape(1, -1)
        frame = AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = start
        out.append(frame)
    return out


def encode(encoder: OpusEncoder, signal: np.ndarray) -> list[tuple[bytes, int]]:
    """(packet, RTP timestamp) for every packet sent."""
    sent = []
    for frame in frames(signal):
        payloads, timestamp = encoder.encode(frame)
        for i, payload in enumerate(payloads):
            sent.append((payload, timestamp + i * FRAME))
    return sent


def test_the_station_encoder_codes_lbrr_and_aiortcs_does_not() -> None:
    signal = speech_like(3)
    ours = [p for p, _ in encode(FecOpusEncoder(), signal)]
    theirs = [p for p, _ in encode(OpusEncoder(), signal)]
    ours_flags = [lbrr_flag(p) for p in ours[5:]]
    theirs_flags = [lbrr_flag(p) for p in theirs[5:]]
    # aiortc's encoder: CELT only for voice at 96 kbit/s, so no packet can carry FEC.
    assert all(flag is None for flag in theirs_flags), {p[0] >> 3 for p in theirs}
    # Ours: SILK/hybrid, with LBRR in (nearly) every voiced packet.
    assert all(flag is not None for flag in ours_flags)
    share = sum(bool(f) for f in ours_flags) / len(ours_flags)
    assert share > 0.5, share


class Decoder:
    def __init__(self) -> None:
        self.lib = load_libopus()
        error = ctypes.c_int(0)
        self.handle = self.lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
        assert error.value == 0
        self.pcm = (ctypes.c_int16 * (FRAME * 6))()

    def decode(self, packet: bytes | None, fec: bool = False) -> np.ndarray:
        n = self.lib.opus_decode(
            ctypes.c_void_p(self.handle),
            packet,
            len(packet) if packet else 0,
            self.pcm,
            FRAME,
            1 if fec else 0,
        )
        assert n == FRAME, n
        return np.frombuffer(bytes(self.pcm), dtype=np.int16, count=FRAME).copy()


def receive(
    sent: list[tuple[bytes, int]], lost: Callable[[int], bool], use_fec: bool
) -> np.ndarray:
    """What a receiver plays: libopus decoding, lost packets concealed or recovered by FEC."""
    decoder = Decoder()
    out = []
    for i, (packet, _) in enumerate(sent):
        if not lost(i):
            out.append(decoder.decode(packet))
        elif use_fec and i + 1 < len(sent) and not lost(i + 1):
            out.append(decoder.decode(sent[i + 1][0], fec=True))  # the next packet's LBRR
        else:
            out.append(decoder.decode(None))  # packet loss concealment
    return np.concatenate(out)


def snr_over(reference: np.ndarray, decoded: np.ndarray, delay: int, frames: list[int]) -> float:
    """Signal-to-noise (dB) of ``decoded`` against ``reference`` over the given 20 ms frames."""
    signal = noise = 0.0
    for i in frames:
        ref = reference[i * FRAME : (i + 1) * FRAME].astype(np.float64)
        got = decoded[i * FRAME + delay : (i + 1) * FRAME + delay].astype(np.float64)
        if got.size < ref.size:
            continue
        signal += float(np.sum(ref**2))
        noise += float(np.sum((ref - got) ** 2))
    return float(10 * np.log10(signal / max(noise, 1e-9)))


def test_fec_recovers_dropped_packets_that_concealment_cannot() -> None:
    signal = speech_like(4)
    sent = encode(FecOpusEncoder(), signal)
    assert len(sent) == signal.size // FRAME  # voice: every frame is sent
    dropped = [i for i in range(10, len(sent) - 1) if i % 7 == 3]  # about 14 %, isolated

    def lost(i: int) -> bool:
        return i in dropped

    # Against what the same packets give without loss: how much of a lost frame comes back.
    clean = receive(sent, lambda i: False, use_fec=False)
    scores = {
        "concealed": snr_over(clean, receive(sent, lost, use_fec=False), 0, dropped),
        "recovered": snr_over(clean, receive(sent, lost, use_fec=True), 0, dropped),
    }
    print("SNR over the dropped frames (dB):", {k: round(v, 1) for k, v in scores.items()})
    # Concealment guesses; FEC decodes the lost frame's low-rate copy.
    assert scores["recovered"] > scores["concealed"] + 6, scores

    # aiortc's own encoder: nothing to recover from (CELT), FEC decoding is concealment.
    plain = encode(OpusEncoder(), signal)
    plain_clean = receive(plain, lambda i: False, use_fec=False)
    plain_fec = snr_over(plain_clean, receive(plain, lost, use_fec=True), 0, dropped)
    print("aiortc's encoder, FEC decoding (dB):", round(plain_fec, 1))
    assert plain_fec < scores["recovered"] - 3


def test_dtx_stops_sending_during_silence() -> None:
    # Digital silence (a muted or silent microphone). libopus's VAD still counts white noise
    # as activity, so only true silence is measured here.
    silence = np.zeros(RATE * 3, dtype=np.int16)
    encoder = FecOpusEncoder()
    sent = encode(encoder, silence)
    frames_in = silence.size // FRAME
    # DTX: after the first 200 ms, one comfort-noise update per 400 ms at most.
    assert len(sent) < frames_in / 4, (len(sent), frames_in)
    assert encoder.frames_skipped == frames_in - len(sent)
    # The RTP clock keeps running across the gaps (timestamps follow the audio, not packets).
    stamps = [t for _, t in sent]
    assert stamps == sorted(stamps) and stamps[-1] >= (frames_in - 21) * FRAME
    without = FecOpusEncoder(dtx=False)
    assert len(encode(without, silence)) == frames_in


def test_live_bitrate_and_loss_changes() -> None:
    encoder = FecOpusEncoder(bitrate=96_000)
    signal = speech_like(2)
    high = sum(len(p) for p, _ in encode(encoder, signal))
    encoder.set_bitrate(24_000)
    encoder.set_packet_loss(30)
    low = sum(len(p) for p, _ in encode(encoder, signal))
    assert low < high * 0.5, (low, high)
    assert encoder.bitrate == 24_000 and encoder.packet_loss_percent == 30


def test_installed_for_aiortcs_senders_and_sdp() -> None:
    import aiortc.rtcrtpsender
    from aiortc import RTCPeerConnection
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    assert install_fec_opus_encoder()
    get_encoder = aiortc.rtcrtpsender.get_encoder  # type: ignore[attr-defined]
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2)
    assert isinstance(get_encoder(opus), FecOpusEncoder)
    vp8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000)
    assert not isinstance(get_encoder(vp8), FecOpusEncoder)

    async def offer() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio")
        description = await pc.createOffer()
        await pc.close()
        return str(description.sdp)

    import asyncio

    sdp = asyncio.run(offer())
    fmtp = [line for line in sdp.splitlines() if line.startswith("a=fmtp:96 ")]
    assert fmtp, sdp
    for key, value in OPUS_FMTP.items():
        assert f"{key}={value}" in fmtp[0]


@pytest.mark.parametrize("packet", [bytes([31 << 3]) + b"\x00" * 40])
def test_lbrr_reader_skips_celt(packet: bytes) -> None:
    assert lbrr_flag(packet) is None
