"""How a call adapts to its link while it runs: the statistics sampled every interval and what
follows from them.

Once a second (``stats_interval_seconds``) the attempt's statistics are read and turned into
the call's quality (:mod:`station.call.quality`), the station's video rung on the GP's REMB
(:mod:`station.call.ladder`), the Opus encoder's rate on the GP's receiver reports
(:mod:`station.call.audiorate`) and automatic audio only (:mod:`station.call.linkjudge`). A
mixin of the call engine, between its controls and one attempt's runner
(:mod:`station.call.attempt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from aiortc.codecs.vpx import Vp8Encoder

from hardware.camera.base import BitrateControl
from station.call.controls import CallControls
from station.call.ladder import Rung
from station.call.linkjudge import Decision, LinkSample, LinkState
from station.call.opus import station_opus_encoder
from station.call.quality import Quality, grade_quality
from station.call.state import Attempt

__all__ = ["OPUS_CLOCK_RATE", "LinkAdaptation", "set_encoder_bitrate", "watch_remb"]

_log = logging.getLogger(__name__)

#: Opus's RTP clock (RFC 7587: 48 kHz whatever the sampling rate): the unit of its jitter.
OPUS_CLOCK_RATE = 48_000
#: A receiver report older than this says nothing about the link now (see ``_recent``).
_RECENT_REPORT_S = 1.5


class LinkAdaptation(CallControls):
    """The call's statistics and what follows from them (see the module docs)."""

    async def _sample_stats(self, attempt: Attempt) -> None:
        loop = asyncio.get_running_loop()
        previous: tuple[float, int, int, int, int, int] | None = None
        while True:
            await asyncio.sleep(self.config.stats_interval_seconds)
            try:
                report = await attempt.pc.getStats()
            except Exception as exc:
                # A closing connection has no stats; the watchdog handles it.
                _log.debug("call statistics unavailable: %s", type(exc).__name__)
                continue
            received = lost = transport_bytes = video_sent = 0
            audio_report: Any = None
            # The audio's jitter, in Opus clock ticks: the GP's audio here, the station's at
            # the GP (its receiver report, if recent: see _both_ways).
            jitter_here: int | None = None
            jitter_there: int | None = None
            for stats in report.values():
                kind = getattr(stats, "type", "")
                if kind == "inbound-rtp" and stats.kind == "audio":
                    jitter_here = max(0, int(stats.jitter or 0))
                elif kind == "remote-inbound-rtp" and stats.kind == "audio" and _recent(stats):
                    jitter_there = max(0, int(stats.jitter or 0))
                if kind == "inbound-rtp":
                    received += int(stats.packetsReceived)
                    lost += max(0, int(stats.packetsLost))
                elif kind == "remote-inbound-rtp" and stats.kind == "audio":
                    audio_report = stats
                elif kind == "outbound-rtp" and stats.kind == "video":
                    video_sent += int(stats.bytesSent)
                elif kind == "transport":
                    transport_bytes += int(stats.bytesReceived)
            now = loop.time()
            frames = attempt.clock.video_frames
            if previous is not None:
                then, frames0, received0, lost0, bytes0, sent0 = previous
                span = max(now - then, 1e-3)
                got, missed = received - received0, lost - lost0
                loss = missed / (got + missed) if got + missed > 0 else 0.0
                fps = (frames - frames0) / span
                bitrate = (transport_bytes - bytes0) * 8 / span / 1000
                # Per report, not aiortc's smoothed roundTripTime (see station.call.roundtrip).
                rtt = attempt.round_trips.take()
                rtt_ms = None if rtt is None else rtt * 1000
                last = attempt.last_sign_of_life()
                age = None if last is None else now - last
                level = grade_quality(
                    rtt_ms, max(0.0, loss), fps, age, video_expected=attempt.video_expected()
                )
                self._quality = Quality(level, rtt_ms, max(0.0, loss), fps, bitrate)
                self._publish("quality", **self._quality.as_json())
                sent_bps = max(0, video_sent - sent0) * 8 / span
                self._follow_bandwidth(attempt, now, sent_bps)
                if self.config.auto_audio_only and self._selected_pair is not None:
                    self._judge_link(
                        attempt,
                        now,
                        rtt_ms,
                        max(0.0, loss),
                        fps,
                        sent_bps,
                        _both_ways(jitter_here, jitter_there),
                    )
            previous = (now, frames, received, lost, transport_bytes, video_sent)
            if audio_report is not None:
                self._follow_audio_loss(attempt, audio_report)

    def _follow_audio_loss(self, attempt: Attempt, report: Any) -> None:
        """A new receiver report from the GP for the station's audio: the Opus encoder's
        bitrate and expected loss follow it (:mod:`station.call.audiorate`)."""
        if report.timestamp == attempt.audio_report_at or report.fractionLost is None:
            return  # the same report as last time
        attempt.audio_report_at = report.timestamp
        # aiortc passes the report's 8-bit fraction through (RFC 3550: lost / 256).
        target = attempt.audio_rate.feed(
            float(report.fractionLost) / 256, audio_only=attempt.audio_only
        )
        if target is None:
            return
        encoders = [station_opus_encoder(s) for s in attempt.pc.getSenders() if s.kind == "audio"]
        for encoder in encoders:
            if encoder is not None:
                encoder.set_bitrate(target.bitrate)
                encoder.set_packet_loss(target.loss_percent)
        _log.info(
            "call attempt %d: audio %d kbit/s, expected loss %d%% (GP reports %.0f%%)%s",
            attempt.number,
            target.bitrate // 1000,
            target.loss_percent,
            float(report.fractionLost) / 2.56,
            "" if any(e is not None for e in encoders) else " (not the station's encoder)",
        )

    def _follow_bandwidth(self, attempt: Attempt, now: float, sent_bps: float) -> None:
        """The station's video follows the GP's REMB (:mod:`station.call.ladder`)."""
        attempt.sent_bps = sent_bps
        ladder = attempt.ladder
        if ladder is None:
            return
        started = attempt.video_started_at
        if started != attempt.ladder_video_at:
            attempt.ladder_video_at = started
            ladder.video_restarted()
        remb, remb_at = attempt.remb_bps, attempt.remb_at
        if (
            remb is not None
            and remb_at is not None
            and started is not None
            and remb_at >= started  # what the link carried with the station's video
            and remb_at != attempt.ladder_remb_at
            and not attempt.audio_only
        ):
            attempt.ladder_remb_at = remb_at
            rung = ladder.feed(now, remb, sent_bps)
            if rung is not None:
                _log.info(
                    "call attempt %d: video %d kbit/s at %.0f%% size (REMB %.0fk, sent %.0fk)",
                    attempt.number,
                    rung.bitrate // 1000,
                    rung.scale * 100,
                    remb / 1000,
                    sent_bps / 1000,
                )
        self._apply_rung(attempt, ladder.rung)

    @staticmethod
    def _apply_rung(attempt: Attempt, rung: Rung) -> None:
        """Give the rung to what encodes the station's video (idempotent: every interval, as
        aiortc makes its encoder only at the first picture)."""
        feed = attempt.camera
        if feed is None:
            return
        camera = feed.camera
        packets = getattr(camera, "passthrough_codec", None) and not feed.decode_packets
        if packets:
            if isinstance(camera, BitrateControl) and attempt.camera_bitrate != rung.bitrate:
                camera.set_bitrate(rung.bitrate)  # kept for its start when not running yet
                attempt.camera_bitrate = rung.bitrate
            return
        feed.scale = rung.scale
        set_encoder_bitrate(attempt.video_sender, rung.bitrate)

    def _judge_link(
        self,
        attempt: Attempt,
        now: float,
        rtt_ms: float | None,
        loss: float,
        fps: float,
        sent_bps: float,
        jitter_s: float | None = None,
    ) -> None:
        """Automatic audio only (see :mod:`station.call.linkjudge`)."""
        after_pause = self.config.video_stall_seconds + self.config.video_keyframe_wait_seconds
        if attempt.paused_at is not None and now - attempt.paused_at < after_pause:
            # Nothing at all arrived for a moment (a Wi-Fi roam, a cut): that says nothing
            # about what the link can carry. The pause's loss and the GP's video, which
            # resumes at its next keyframe, are the media watchdog's and the frozen-video
            # watchdog's to handle (keyframe requests, then a re-dial); judging them here
            # switched a call to audio only for 5-15 s after a pause of half a second
            # (bench/redial.py).
            return
        started = attempt.video_started_at
        # Only a REMB sent since the station's video last started says what video gets.
        fresh = (
            attempt.remb_at is not None
            and started is not None
            and attempt.remb_at >= started
            and not attempt.audio_only
        )
        sample = LinkSample(
            rtt_s=None if rtt_ms is None else rtt_ms / 1000,
            loss=loss,
            fps=fps if attempt.video_expected() else None,
            remb_bps=attempt.remb_bps if fresh else None,
            sent_bps=sent_bps,
            jitter_s=jitter_s,
        )
        judge = self._link_judge
        decision = judge.feed(now, sample)
        reason = judge.reason  # what the judge saw (a trial does not judge REMB)
        if judge.state is not LinkState.VIDEO or decision is not Decision.KEEP:
            _log.info(
                "call attempt %d: link %s/%s (%s; rtt %s ms, loss %.0f%%, fps %s, remb %s, "
                "sent %.0fk, jitter %s ms)",
                attempt.number,
                decision.value,
                judge.state.value,
                reason or "good",
                "-" if rtt_ms is None else f"{rtt_ms:.0f}",
                loss * 100,
                "-" if sample.fps is None else f"{sample.fps:.0f}",
                "-" if sample.remb_bps is None else f"{sample.remb_bps / 1000:.0f}k",
                sent_bps / 1000,
                "-" if jitter_s is None else f"{jitter_s * 1000:.0f}",
            )
        if decision is Decision.KEEP:
            return
        if decision in (Decision.ENTER, Decision.FAIL):
            self.set_audio_only_auto(True)
        elif decision is Decision.PROBE:
            self.set_audio_only_auto(True, probing=True)
        elif decision is Decision.RESUME:
            self.set_audio_only_auto(False)
        self._publish("link", state=judge.state.value, reason=reason)


def _recent(stats: Any) -> bool:
    """Whether a receiver report (aiortc stamps it when it arrives) is under
    :data:`_RECENT_REPORT_S` old: the GP's browser may report on audio only every few
    seconds, and a report from before audio only measured the link with video on it."""
    stamp = getattr(stats, "timestamp", None)
    if not isinstance(stamp, datetime):
        return False
    return (datetime.now(UTC) - stamp).total_seconds() <= _RECENT_REPORT_S


def _both_ways(here: int | None, there: int | None) -> float | None:
    """The audio's jitter both ways in seconds: the GP's audio as received here, plus the
    station's at the GP when its report is recent, else (a guess) the same as here."""
    if here is None:
        return None
    return (here + (here if there is None else there)) / OPUS_CLOCK_RATE


def watch_remb(sender: Any, attempt: Attempt) -> None:
    """Keep Chromium's REMB for ``sender`` (its estimate of the link, bit/s) on ``attempt``.

    aiortc 1.16 reads REMB only to set its VP8 encoder's bitrate, clamped to 250 kbit/s and
    with a new encoder at every 10 % change; the video ladder does that instead
    (:mod:`station.call.ladder`), so the packet stops here (per instance, as
    ``hardware.camera.base.forward_keyframe_requests`` does).
    """
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

    original = sender._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            with contextlib.suppress(ValueError):
                attempt.remb_bps = float(unpack_remb_fci(packet.fci)[0])
                attempt.remb_at = asyncio.get_running_loop().time()
            return
        await original(packet)

    setattr(sender, "_handle_rtcp_packet", handle)  # noqa: B010


def set_encoder_bitrate(sender: Any, bitrate: int) -> None:
    """Set the bitrate of ``sender``'s encoder (aiortc makes it at the first picture).

    aiortc's VP8 encoder clamps what it is given to 250 kbit/s-1.5 Mbit/s; the ladder's lowest
    rung is below that, so its (name-mangled, aiortc pinned) attribute is set directly.
    """
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is None or getattr(encoder, "target_bitrate", bitrate) == bitrate:
        return
    if isinstance(encoder, Vp8Encoder):
        setattr(encoder, "_Vp8Encoder__target_bitrate", bitrate)  # noqa: B010
    else:
        encoder.target_bitrate = bitrate
