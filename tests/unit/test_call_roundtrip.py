"""The round trip per receiver report (``station.call.roundtrip``), against aiortc's average."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket

from station.call.roundtrip import RoundTrips, watch_round_trips

SSRC = 0x1234


def _ntp(seconds: float) -> int:
    return int(seconds * (1 << 32))


def _lsr(seconds: float) -> int:
    return (_ntp(seconds) >> 16) & 0xFFFFFFFF


def test_each_report_gives_its_own_round_trip_at_once() -> None:
    """A queue that fills and drains shows in the next report, not 0.15 of it a report: what
    aiortc's average made of 20 → 520 → 20 ms (0.85 old, 0.15 new) is the contrast."""
    trips = RoundTrips()
    averaged: float | None = None
    seen = []
    for second, queue in enumerate([0.0, 0.0, 0.5, 0.5, 0.0, 0.0]):
        sent = 100.0 + second
        trips.sent(SSRC, _ntp(1000.0 + second), sent)
        # The GP holds the report for 0.1 s (DLSR) after the SR reached it.
        rtt = trips.report(SSRC, _lsr(1000.0 + second), int(0.1 * 65536), sent + 0.12 + queue)
        assert rtt is not None
        seen.append(round(rtt, 3))
        averaged = rtt if averaged is None else 0.85 * averaged + 0.15 * rtt
    assert seen == [0.02, 0.02, 0.52, 0.52, 0.02, 0.02]
    assert averaged is not None and averaged > 0.1  # aiortc's still says a queue


def test_a_report_on_an_unknown_or_repeated_sender_report_gives_nothing() -> None:
    """aiortc's sender report carries the NTP time of the last RTP packet, so a sender that
    sent nothing in between (paused video, silence) repeats its LSR: which one the GP answers
    cannot be told. No LSR (nothing received yet) and a forgotten one give nothing either."""
    trips = RoundTrips()
    trips.sent(SSRC, _ntp(50.0), 10.0)
    trips.sent(SSRC, _ntp(50.0), 11.0)  # the same LSR again
    assert trips.report(SSRC, _lsr(50.0), 0, 11.05) is None
    assert trips.report(SSRC, 0, 0, 11.05) is None
    assert trips.report(SSRC, _lsr(51.0), 0, 11.05) is None
    assert trips.report(SSRC + 1, _lsr(50.0), 0, 11.05) is None  # another sender's
    for tenth in range(40):  # only the newest sender reports are remembered
        trips.sent(SSRC, _ntp(60.0 + tenth), 20.0 + tenth / 10)
    assert trips.report(SSRC, _lsr(60.0), 0, 24.0) is None  # forgotten (else 4.0 s)
    assert trips.report(SSRC, _lsr(99.0), 0, 24.0) is not None
    # A round trip no link has (a clock step) is not used.
    trips.sent(SSRC, _ntp(200.0), 70.0)
    assert trips.report(SSRC, _lsr(200.0), 5 * 65536, 70.5) is None


def test_an_interval_takes_the_longest_new_round_trip_else_the_latest() -> None:
    trips = RoundTrips()
    assert trips.take() is None
    for index, answer in enumerate([0.05, 0.3, 0.1]):
        trips.sent(SSRC, _ntp(10.0 + index), 1.0 + index)
        trips.report(SSRC, _lsr(10.0 + index), 0, 1.0 + index + answer)
    assert round(trips.take(3.2) or 0, 3) == 0.3
    assert round(trips.take(4.0) or 0, 3) == 0.1  # nothing new: the latest, while fresh
    assert trips.take(5.7) is None  # a queue measured 2.6 s ago says nothing now


def test_watching_an_aiortc_sender_sees_its_reports_leave_and_the_answers_arrive() -> None:
    """The wrapped methods of a sender as aiortc calls them: every sender report it sends is
    remembered, the GP's report blocks about it give the round trip, and both still reach
    aiortc (its own statistics, NACK and keyframe handling go on)."""

    class Sender:
        _ssrc = SSRC

        def __init__(self) -> None:
            self.sent: list[Any] = []
            self.handled: list[Any] = []

        async def _send_rtcp(self, packets: list[Any]) -> None:
            self.sent.extend(packets)

        async def _handle_rtcp_packet(self, packet: Any) -> None:
            self.handled.append(packet)

    sender = Sender()
    trips = RoundTrips()
    watch_round_trips(sender, trips)
    info = RtcpSenderInfo(ntp_timestamp=_ntp(300.0), rtp_timestamp=0, packet_count=1,
                          octet_count=100)  # fmt: skip
    report = RtcpSrPacket(ssrc=SSRC, sender_info=info)

    def block(ssrc: int) -> RtcpReceiverInfo:
        return RtcpReceiverInfo(ssrc=ssrc, fraction_lost=0, packets_lost=0, highest_sequence=0,
                                jitter=0, lsr=_lsr(300.0), dlsr=0)  # fmt: skip

    async def exchange() -> None:
        await sender._send_rtcp([report])
        await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=99, reports=[block(SSRC + 7)]))
        assert trips.latest is None  # about another sender
        await sender._handle_rtcp_packet(RtcpRrPacket(ssrc=99, reports=[block(SSRC)]))

    asyncio.run(exchange())
    assert sender.sent == [report] and len(sender.handled) == 2
    assert trips.latest is not None and 0 <= trips.latest < 1.0
