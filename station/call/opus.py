"""The station's Opus encoder: in-band FEC and DTX, which aiortc 1.16's encoder cannot do.

aiortc 1.16 encodes Opus through PyAV, i.e. FFmpeg's ``libopus`` wrapper, at a fixed 96 kbit/s
with ``application=voip`` and nothing else. FFmpeg's wrapper has ``fec`` and ``packet_loss``
options but no DTX, and every option is fixed when the codec opens. Measured with the PyAV
build the station uses: aiortc's encoder picks CELT-only packets (TOC config 31) for voice,
and CELT carries no in-band FEC at all, so the GP's browser had nothing to recover a lost
packet from.

:class:`FecOpusEncoder` is aiortc's ``OpusEncoder`` (its resampler, its 20 ms frames) with the
encoding done by libopus itself through :mod:`ctypes`: in-band FEC (LBRR, RFC 6716 section
4.2.4) on, an expected packet loss so that libopus both codes the redundancy and keeps voice in
the SILK/hybrid modes that can carry it, and DTX (frames of silence are not sent; libopus
emits a comfort-noise update every 400 ms). Bitrate and expected loss can be changed live
(``OPUS_SET_*`` ctls), which FFmpeg's wrapper cannot.

:func:`install_fec_opus_encoder` makes aiortc's sender use it for ``audio/opus`` and announces
``useinbandfec=1;usedtx=1`` in the station's SDP, so the GP's browser (which reads that
``fmtp`` as "the other side decodes FEC") sends FEC too. It replaces a module-level name of
aiortc and the ``fmtp`` of its Opus codec entry, so it is applied only on the aiortc release it
was written against; another keeps aiortc's encoder and says so in the log.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
from typing import Any

from aiortc.codecs.opus import SAMPLE_RATE, SAMPLES_PER_FRAME, OpusEncoder
from av import AudioFrame
from av.frame import Frame

from station.call.audiorate import START

__all__ = [
    "DEFAULT_BITRATE",
    "DEFAULT_PACKET_LOSS_PERCENT",
    "FEC_OPUS_AIORTC_VERSION",
    "OPUS_FMTP",
    "FecOpusEncoder",
    "fec_opus_encoder_installed",
    "install_fec_opus_encoder",
    "load_libopus",
    "station_opus_encoder",
]

_log = logging.getLogger(__name__)

#: The aiortc release whose ``rtcrtpsender.get_encoder`` and Opus codec entry are replaced.
FEC_OPUS_AIORTC_VERSION = "1.16.0"
#: The bitrate and the loss libopus expects until the GP's first receiver report (then
#: :class:`station.call.audiorate.AudioRate` sets both): 32 kbit/s, not aiortc's 96; an
#: expected loss must be non-zero for LBRR to be coded.
DEFAULT_BITRATE, DEFAULT_PACKET_LOSS_PERCENT = START
#: What the station's SDP says about Opus (RFC 7587 section 6.1).
OPUS_FMTP = {"useinbandfec": "1", "usedtx": "1"}

_CHANNELS = 2
_MAX_PACKET = 1500
# opus_defines.h
_OPUS_APPLICATION_VOIP = 2048
_OPUS_SET_BITRATE = 4002
_OPUS_SET_INBAND_FEC = 4012
_OPUS_SET_PACKET_LOSS_PERC = 4014
_OPUS_SET_DTX = 4016
_OPUS_SET_SIGNAL = 4024
_OPUS_SIGNAL_VOICE = 3001

_libopus: Any = None


def load_libopus() -> Any:
    """libopus through ctypes: the system's, else the copy bundled with PyAV's wheel."""
    global _libopus
    if _libopus is not None:
        return _libopus
    candidates: list[str] = []
    found = ctypes.util.find_library("opus")
    if found:
        candidates.append(found)
    import av

    bundled = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
    candidates += sorted(glob.glob(os.path.join(bundled, "libopus*.so*")))
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        # One ctypes prototype per libopus function used: each C signature spelled out (a
        # wrong one corrupts memory); alike by design.
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_int32,
        ]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [
            ctypes.c_int32,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        _libopus = lib
        return lib
    raise OSError("libopus not found (neither the system's nor PyAV's)")


class FecOpusEncoder(OpusEncoder):
    """aiortc's Opus encoder with libopus's in-band FEC and DTX (see the module's text)."""

    def __init__(
        self,
        bitrate: int = DEFAULT_BITRATE,
        packet_loss_percent: int = DEFAULT_PACKET_LOSS_PERCENT,
        *,
        dtx: bool = True,
    ) -> None:
        super().__init__()  # aiortc's resampler; its PyAV codec context is not used
        self._lib = load_libopus()
        error = ctypes.c_int(0)
        handle = self._lib.opus_encoder_create(
            SAMPLE_RATE, _CHANNELS, _OPUS_APPLICATION_VOIP, ctypes.byref(error)
        )
        if not handle or error.value != 0:
            raise OSError(f"opus_encoder_create failed ({error.value})")
        self._handle = handle
        self._out = ctypes.create_string_buffer(_MAX_PACKET)
        self._samples = 0  # samples encoded so far (the RTP clock)
        #: Frames libopus said need not be sent (DTX).
        self.frames_skipped = 0
        self._ctl(_OPUS_SET_INBAND_FEC, 1)
        self._ctl(_OPUS_SET_DTX, 1 if dtx else 0)
        self._ctl(_OPUS_SET_SIGNAL, _OPUS_SIGNAL_VOICE)
        self.set_bitrate(bitrate)
        self.set_packet_loss(packet_loss_percent)

    def _ctl(self, request: int, value: int) -> None:
        result = self._lib.opus_encoder_ctl(
            ctypes.c_void_p(self._handle), ctypes.c_int(request), ctypes.c_int32(value)
        )
        if result != 0:
            raise OSError(f"opus_encoder_ctl({request}, {value}) failed ({result})")

    def set_bitrate(self, bitrate: int) -> None:
        """The target bitrate (bit/s), live."""
        self.bitrate = max(6_000, min(510_000, int(bitrate)))
        self._ctl(_OPUS_SET_BITRATE, self.bitrate)

    def set_packet_loss(self, percent: int) -> None:
        """The packet loss libopus expects (1-100 %), live; more loss, stronger redundancy."""
        self.packet_loss_percent = max(1, min(100, int(percent)))
        self._ctl(_OPUS_SET_PACKET_LOSS_PERC, self.packet_loss_percent)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        payloads: list[bytes] = []
        timestamp: int | None = None
        for chunk in self.resampler.resample(frame):
            pcm = chunk.to_ndarray()  # s16 packed stereo: shape (1, 2 * samples)
            data = pcm.tobytes()
            length = self._lib.opus_encode(
                ctypes.c_void_p(self._handle), data, SAMPLES_PER_FRAME, self._out, _MAX_PACKET
            )
            if length < 0:
                raise OSError(f"opus_encode failed ({length})")
            at = self._samples
            self._samples += SAMPLES_PER_FRAME
            if length <= 2:
                # DTX: nothing to send for this frame (RFC 6716 section 2.1.9).
                self.frames_skipped += 1
                continue
            if timestamp is None:
                timestamp = at
            payloads.append(self._out.raw[:length])
        if not payloads:
            return [], None  # type: ignore[return-value]  # aiortc's own convention
        assert timestamp is not None
        return payloads, timestamp

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle:
            self._handle = None
            self._lib.opus_encoder_destroy(ctypes.c_void_p(handle))


_original_get_encoder: Any = None


def station_opus_encoder(sender: Any) -> FecOpusEncoder | None:
    """The station's Opus encoder an aiortc audio sender encodes with, to change it live.

    aiortc keeps it private (``RTCRtpSender.__encoder``, made at the sender's first frame);
    None before that, or when aiortc's own encoder is in use (see
    :func:`install_fec_opus_encoder`).
    """
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    return encoder if isinstance(encoder, FecOpusEncoder) else None


def fec_opus_encoder_installed() -> bool:
    """Whether aiortc's senders get a :class:`FecOpusEncoder` for Opus."""
    import aiortc.rtcrtpsender

    return getattr(aiortc.rtcrtpsender, "get_encoder", None) is _get_encoder


def install_fec_opus_encoder() -> bool:
    """Use :class:`FecOpusEncoder` for Opus and announce FEC/DTX in the SDP (process-wide).

    Idempotent. Returns whether it is in effect.
    """
    global _original_get_encoder
    import aiortc
    import aiortc.rtcrtpsender
    from aiortc.codecs import CODECS

    if fec_opus_encoder_installed():
        return True
    if aiortc.__version__ != FEC_OPUS_AIORTC_VERSION:
        _log.warning(
            "aiortc %s is not %s: its own Opus encoder stays (no in-band FEC, no DTX)",
            aiortc.__version__,
            FEC_OPUS_AIORTC_VERSION,
        )
        return False
    try:
        load_libopus()
    except OSError as exc:
        _log.warning("%s: aiortc's own Opus encoder stays (no in-band FEC, no DTX)", exc)
        return False
    for codec in CODECS["audio"]:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters.update(OPUS_FMTP)
    _original_get_encoder = aiortc.rtcrtpsender.get_encoder  # type: ignore[attr-defined]
    aiortc.rtcrtpsender.get_encoder = _get_encoder  # type: ignore[attr-defined]
    return True


def _get_encoder(codec: Any) -> Any:
    if codec.mimeType.lower() == "audio/opus":
        return FecOpusEncoder()
    return _original_get_encoder(codec)
