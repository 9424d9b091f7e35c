"""The station's video follows the bandwidth the GP's browser reports: a ladder of rates and sizes.

Chromium sends a REMB for the station's video: its estimate, in bit/s, of what the link
carries. Left to itself, aiortc 1.16 sets its VP8 encoder to every REMB, clamped to
250 kbit/s-1.5 Mbit/s (so never below 250 kbit/s, whatever the link carries), and builds a
new encoder, which starts with a keyframe, whenever the rate moves by more than 10 %: on a
link whose estimate wanders, a burst of keyframes exactly when bandwidth is short. The
pre-encoded H.264 of the Pi's hardware encoder did not follow REMB at all (a fixed 1 Mbit/s).

The ladder replaces both. A few rungs, each a bitrate and a picture size (a fraction of the
camera's). What Chromium's REMB looks like (measured with the station's VP8 through a capped
veth, ``tests/integration/test_call_video_ladder.py``): in steady state about 1.0-1.1 times
what it receives; with room to spare it climbs about 8 % a second, to at most 1.5 times what
it receives (WebRTC's AIMD rate control); after an overuse it drops to about 0.85 times the
throughput; and for the first seconds of a call it is below what is sent whatever the link.

So the ladder goes **down** when a REMB is below ``down_below`` times the rung's bitrate and
also holds the video back (below ``limits_sent`` times what the station sent: a still picture
that the encoder sends at 90 kbit/s gets a REMB around 145 kbit/s on a perfect link, which is
the picture, not the link), to the highest rung the REMB carries. It goes **up** one rung
after ``up_after_seconds`` of REMBs at ``up_above`` times the rung's bitrate or more (and
enough that the next rung would not step down at once): the estimate cannot show more room
than 1.5 times the current rate, so the next rung is a trial. A trial that ends in a step down
before the climb has held for ``settle_seconds`` doubles the wait before the next climb (up to
``max_up_after_seconds``), so a link at 550 kbit/s settles instead of switching size, with a
keyframe each time (aiortc's VP8 encoder starts anew at each change), every few seconds; a
climb that holds resets it. Nothing moves during the first ``warmup_seconds`` after video
(re)starts: the first REMBs after a start or a pause measured the call without video.

A simple picture does not fill its rung: the test pattern sends about 430 kbit/s at the
700 kbit/s rung and 290 kbit/s at 450 kbit/s, and the REMB, at most 1.5 times that, could
never reach 1.3 times the rung, so after one dip (a delay step of 200 ms makes Chromium's
estimate dip) the picture stayed small for the rest of the call (``bench/network.py``, the
200 ms row). While what is sent stays under ``content_limited`` times the rung, a climb needs
REMBs at ``up_above`` times what is *sent* instead: the link carries more than the picture
needs, so the next rung's larger picture is a trial like any other, and the step-down rule,
which already compares the REMB with what is sent, undoes it if it was not. It can only be a
trial: a link that is not full gives a REMB of 1.5 times what it receives whatever its
capacity, and the larger picture sends more (the test pattern 1.5 times at 0.75 → 1.0). So a
climb that does not hold goes back to the rung it came from (not to the rung the REMB's bitrate
names, which for a picture under its rung is a size smaller than the one that worked) and the
wait before the next trial doubles, up to ``max_up_after_seconds``. Only towards a larger
picture: a higher cap for the same size would only cost a keyframe.

A rung's size applies to pictures the station encodes itself (VP8); the hardware encoder's
pictures keep their size and get the rung's bitrate live. Under the lowest rung the call goes
audio only (:mod:`station.call.linkjudge`, whose REMB limit is that rung's bitrate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["RUNGS", "Rung", "VideoLadder", "scaled_size"]


@dataclass(frozen=True, slots=True)
class Rung:
    """A bitrate (bit/s) and the picture's size as a fraction of the camera's."""

    bitrate: int
    scale: float


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """A ``width`` x ``height`` picture at ``scale`` (even sizes, as YUV 4:2:0 wants)."""
    if scale >= 1.0:
        return width, height
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


#: From the judge's audio-only limit (200 kbit/s: below it, video and audio with their
#: headers do not fit a 256 kbit/s link) to aiortc's VP8 ceiling; neighbours at most 1.6
#: times apart, so a climb's REMB (1.3 times the rung) is not a step down at the next one.
#: At 640x480 the sizes are 320x240, 480x360 and 640x480.
RUNGS: tuple[Rung, ...] = (
    Rung(200_000, 0.5),
    Rung(300_000, 0.5),
    Rung(450_000, 0.75),
    Rung(700_000, 1.0),
    Rung(1_000_000, 1.0),
    Rung(1_500_000, 1.0),
)


class VideoLadder:
    """See the module docs. Fed once a statistics interval; says when the rung changes."""

    def __init__(
        self,
        *,
        rungs: Sequence[Rung] = RUNGS,
        top_bitrate: int | None = None,
        start_bitrate: int = 700_000,
        down_below: float = 0.8,
        limits_sent: float = 1.2,
        up_above: float = 1.3,
        up_after_seconds: float = 2.0,
        max_up_after_seconds: float = 30.0,
        settle_seconds: float = 20.0,
        warmup_seconds: float = 6.0,
        content_limited: float = 0.8,
    ) -> None:
        usable = [r for r in rungs if top_bitrate is None or r.bitrate <= top_bitrate]
        if top_bitrate is not None and (not usable or usable[-1].bitrate < top_bitrate):
            usable.append(Rung(top_bitrate, 1.0))  # the camera's own rate is the top
        if not usable:
            raise ValueError("a video ladder needs at least one rung")
        self.rungs = tuple(usable)
        self.down_below = down_below
        self.limits_sent = limits_sent
        self.up_above = up_above
        self.up_after_seconds = up_after_seconds
        self.max_up_after_seconds = max_up_after_seconds
        self.settle_seconds = settle_seconds
        self.warmup_seconds = warmup_seconds
        self.content_limited = content_limited
        #: The wait before the next climb (``up_after_seconds``, longer after a failed one).
        self.up_after = up_after_seconds
        fitting = [i for i, r in enumerate(self.rungs) if r.bitrate <= start_bitrate]
        self._index = fitting[-1] if fitting else 0
        self._video_since: float | None = None  # the first REMB since video (re)started
        self._up_since: float | None = None  # since when a climb has been allowed
        self._climbed_at: float | None = None  # the last change was a climb, at this time

    @property
    def rung(self) -> Rung:
        return self.rungs[self._index]

    def video_restarted(self) -> None:
        """Video (re)starts (the call's start, after audio only): warm-up again."""
        self._video_since = None
        self._up_since = None

    def feed(self, now: float, remb_bps: float, sent_bps: float | None) -> Rung | None:
        """A REMB received since the last call (and what video sent meanwhile, bit/s): the
        new rung, or None when it stays."""
        if self._video_since is None:
            self._video_since = now
        if now - self._video_since < self.warmup_seconds:
            return None
        climbed = self._climbed_at
        if climbed is not None and now - climbed >= self.settle_seconds:
            self.up_after = self.up_after_seconds  # the climb held
            self._climbed_at = None
        rate = self.rung.bitrate
        held_back = sent_bps is None or remb_bps < self.limits_sent * sent_bps
        if held_back and remb_bps < self.down_below * rate and self._index > 0:
            if self._climbed_at is not None:  # a climb that did not hold: back where it was
                self.up_after = min(self.up_after * 2, self.max_up_after_seconds)
                self._change(self._index - 1, climbed_at=None)
                return self.rung
            fitting = [i for i, r in enumerate(self.rungs) if r.bitrate <= remb_bps]
            self._change(fitting[-1] if fitting else 0, climbed_at=None)
            return self.rung
        if self._index + 1 >= len(self.rungs):
            return None
        following = self.rungs[self._index + 1]
        larger = following.scale > self.rung.scale
        if larger and sent_bps is not None and 0 < sent_bps < self.content_limited * rate:
            # The picture, not the link, sets the rate; the REMB cannot show more room than
            # 1.5 times it: room over what is sent is room for the next rung's picture.
            needed = self.up_above * sent_bps
        else:
            needed = max(self.up_above * rate, self.down_below * following.bitrate)
        if remb_bps < needed:
            self._up_since = None
            return None
        if self._up_since is None:
            self._up_since = now
        if now - self._up_since < self.up_after:
            return None
        self._change(self._index + 1, climbed_at=now)
        return self.rung

    def _change(self, index: int, *, climbed_at: float | None) -> None:
        self._index = index
        self._climbed_at = climbed_at
        self._up_since = None
