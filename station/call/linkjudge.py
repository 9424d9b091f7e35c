"""Automatic audio only: when the link cannot carry video at a useful rate, and when it can again.

Fed one sample a statistics interval (1 s) with what the station measures:

* **round-trip time** from the GP's RTCP receiver reports, each report's own
  (:mod:`station.call.roundtrip`; queueing on a capped link shows here first: a bottleneck's
  queue grows long before it drops);
* **loss** of what the station receives (the station's own receiver statistics);
* the **frame rate** of the GP's video as decoded at the station (only while video is
  expected);
* the **REMB** Chromium sends for the station's video (its estimate of the station-to-GP
  link), only once the station's video has run long enough for the estimate to mean something
  (right after video starts, REMB is about 1.5 times what was sent before, i.e. audio), and
  only when it holds the video back: Chromium's estimate never grows past about 1.5 times what
  it receives (WebRTC's AIMD rate control), so a still picture that the encoder sends at
  120 kbit/s gets a REMB under 200 kbit/s on a perfect link. A REMB counts against the link
  when it is below ``remb_limits_sent`` times what the station sent (after an overuse the
  estimate drops to about 0.85 times the throughput); a REMB well above what was sent says
  the picture, not the link, sets the rate. Nor while it is still climbing: after audio only
  Chromium's estimate restarts from what audio alone carried and grows for well over ten
  seconds on a clean link.

A sample is *bad* when any of them is past its limit. The REMB limit, ``min_remb_bps``, is the
lowest rung of the video ladder (:mod:`station.call.ladder`): below it video and audio, with
their packets' headers, do not fit a 256 kbit/s link. Hysteresis: audio only after
``bad_to_enter`` bad samples in a row. While audio only, nothing measures whether video would
fit again (audio alone fits nearly anything), so after ``hold_seconds`` the judge *probes*:
video resumes (the label stays) for up to ``probe_seconds``. Video is back after
``good_to_resume`` good samples in a row when a REMB received during the trial says the link
carries video (at least ``confirm_remb_bps``, above the limit that paused it), else after
``good_to_confirm`` good samples in a row; audio only again if neither happens in time. The
long confirmation is for what a short trial cannot see: after a pause the GP's browser restarts
its video at the rate its estimate had fallen to and climbs from there, so on a capped link its
video fits for the first seconds and overruns the cap only later (CI saw trials under a 256
kbit/s cap with a 2 ms round trip and the GP's video at 30 frames a second for three seconds,
and video resumed on a link that could not carry it; that was with aiortc's averaged round
trip, which hid the queue for seconds: with each report's own the queue shows within a second
or two, so five good samples, not seven). REMB alone cannot decide either: after audio only
it starts low and climbs for many seconds on a clean link too.

A trial must also show a short queue (``probe_max_rtt_s``: a capped link's queue fills again
as soon as video returns) that is not growing: a sample whose round trip is more than
``probe_max_rise_s`` above the lowest one of the trial is not good (CI saw a 256 kbit/s link
resume video on 134 → 179 → 218 ms, each under the absolute limit, the queue filling at
~40 ms a second; and on 320 → 231 → 219 ms, the queue of the video before still draining:
hence the lowest, not the first), and two samples with a queue or loss end a trial early.
Jitter moves single round trips too: under 50 ± 50 ms of delay each way they spread over
200 ms with no queue at all, and CI saw trials on such a link fail as "rising". Both limits of
a trial therefore grow by ``probe_jitter_factor`` times the link's jitter both ways
(``jitter_s``: the RTP interarrival jitter of the station's audio at the GP, from its
receiver reports, plus that of the GP's audio at the station) as measured when the trial
begins, i.e. with audio alone on the link: the trial's own video bursts make the audio's
jitter grow on a capped link, and counting that would hide the queue the limits are for.
With jitter J per direction spread evenly over ±a, J is about 2a/3 and a round trip moves
over 4a, i.e. 3 times J both ways; at most ``probe_max_spread_s`` (a jitter measured wrong,
a stale report say, must not hide a queue for good). A
probe costs some queueing on a link that is still bad: under a 256 kbit/s cap about one probe
every 8-14 s, each adding up to about 0.7 s of delay for a moment.

A link on the edge can still pass a trial and fail again once video has run for a while
(REMB). Audio only again within ``flap_seconds`` of a resume doubles the wait before the next
trial (up to ``max_hold_seconds``): video that comes and goes every 15 s is worse than audio
only. Video that lasts ``flap_seconds`` resets the wait.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

__all__ = ["AudioOnlyJudge", "Decision", "LinkSample", "LinkState"]


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One interval's measurements (None: not measured now)."""

    rtt_s: float | None
    loss: float
    #: Frames a second of the GP's video at the station; None while no video is expected.
    fps: float | None
    #: Chromium's REMB for the station's video (bit/s); None when not received.
    remb_bps: float | None
    #: What the station's video sent in the interval (bit/s, RTP payload); None: unknown.
    sent_bps: float | None = None
    #: Interarrival jitter of the audio both ways (seconds, RFC 3550); None: not measured.
    jitter_s: float | None = None


class LinkState(enum.StrEnum):
    VIDEO = "video"
    AUDIO_ONLY = "audio_only"
    PROBING = "probing"


class Decision(enum.StrEnum):
    """What the call does after a sample."""

    KEEP = "keep"
    ENTER = "enter"  # pause video: audio only (poor connection)
    PROBE = "probe"  # resume video for a trial, label kept
    RESUME = "resume"  # the trial went well: video is back
    FAIL = "fail"  # the trial did not: audio only again


class AudioOnlyJudge:
    """See the module docs."""

    def __init__(
        self,
        *,
        max_rtt_s: float = 0.5,
        max_loss: float = 0.10,
        min_fps: float = 5.0,
        min_remb_bps: float = 200_000,
        confirm_remb_bps: float = 250_000,
        remb_limits_sent: float = 1.2,
        remb_after_seconds: float = 10.0,
        remb_climb_seconds: float = 3.0,
        remb_climb_ratio: float = 1.1,
        warmup_seconds: float = 4.0,
        bad_to_enter: int = 3,
        hold_seconds: float = 2.0,
        probe_seconds: float = 12.0,
        probe_max_rtt_s: float = 0.25,
        probe_max_rise_s: float = 0.06,
        probe_jitter_factor: float = 3.0,
        probe_max_spread_s: float = 0.15,
        good_to_resume: int = 3,
        good_to_confirm: int = 5,
        flap_seconds: float = 30.0,
        max_hold_seconds: float = 16.0,
    ) -> None:
        self.max_rtt_s = max_rtt_s
        self.max_loss = max_loss
        self.min_fps = min_fps
        self.min_remb_bps = min_remb_bps
        self.confirm_remb_bps = confirm_remb_bps
        self.remb_limits_sent = remb_limits_sent
        self.remb_after_seconds = remb_after_seconds
        self.remb_climb_seconds = remb_climb_seconds
        self.remb_climb_ratio = remb_climb_ratio
        self.warmup_seconds = warmup_seconds
        self.bad_to_enter = bad_to_enter
        self.hold_seconds = hold_seconds
        self.probe_seconds = probe_seconds
        self.probe_max_rtt_s = probe_max_rtt_s
        self.probe_max_rise_s = probe_max_rise_s
        self.probe_jitter_factor = probe_jitter_factor
        self.probe_max_spread_s = probe_max_spread_s
        self.good_to_resume = good_to_resume
        self.good_to_confirm = good_to_confirm
        self.flap_seconds = flap_seconds
        self.max_hold_seconds = max_hold_seconds
        #: The wait before the next trial (``hold_seconds``, longer after a flap).
        self.hold = hold_seconds
        self.state = LinkState.VIDEO
        self._since: float | None = None  # when the current state began
        self._bad = 0
        self._recent: list[bool] = []  # the probe's samples: good?
        self._probe_rtt: float | None = None  # the lowest round trip of the trial
        self._probe_spread = 0.0  # what jitter alone moves a round trip by (at its start)
        self._resumed_at: float | None = None  # when a trial last brought video back
        self._rembs: list[tuple[float, float]] = []  # (when, REMB) while video runs
        #: Why the last sample was bad (for the log; in a trial also what keeps it from
        #: counting as good), None when good.
        self.reason: str | None = None

    def connected(self, now: float) -> None:
        """A (new) connection carries media from ``now``: video gets its warm-up again."""
        if self.state is LinkState.VIDEO:
            self._enter(LinkState.VIDEO, now)

    def why_bad(
        self, sample: LinkSample, video_for: float, *, remb_climbing: bool = False
    ) -> str | None:
        """The first limit ``sample`` is past (for the log), or None when it is good.
        ``remb_climbing``: the REMB is still growing (:meth:`_remb_climbing`), so not the
        link's limit."""
        if sample.rtt_s is not None and sample.rtt_s > self.max_rtt_s:
            return f"rtt {sample.rtt_s * 1000:.0f} ms"
        if sample.loss > self.max_loss:
            return f"loss {sample.loss:.0%}"
        if sample.fps is not None and sample.fps < self.min_fps:
            return f"fps {sample.fps:.1f}"
        if (
            sample.remb_bps is not None
            and not remb_climbing
            and video_for >= self.remb_after_seconds
            and sample.remb_bps < self.min_remb_bps
            and (
                sample.sent_bps is None or sample.remb_bps < self.remb_limits_sent * sample.sent_bps
            )
        ):
            return f"remb {sample.remb_bps / 1000:.0f} kbit/s"
        return None

    def feed(self, now: float, sample: LinkSample) -> Decision:
        """One sample at ``now`` (seconds, any monotonic clock)."""
        if self._since is None:
            self._since = now
        age = now - self._since
        if self.state is LinkState.VIDEO:
            if age >= self.flap_seconds:
                self.hold = self.hold_seconds
            climbing = self._remb_climbing(now, sample.remb_bps)
            self.reason = self.why_bad(sample, age, remb_climbing=climbing)
            if age < self.warmup_seconds:
                return Decision.KEEP
            self._bad = self._bad + 1 if self.reason else 0
            if self._bad >= self.bad_to_enter:
                resumed = self._resumed_at
                if resumed is not None and now - resumed < self.flap_seconds:
                    self.hold = min(self.hold * 2, self.max_hold_seconds)
                self._enter(LinkState.AUDIO_ONLY, now)
                return Decision.ENTER
            return Decision.KEEP
        self.reason = self.why_bad(sample, 0.0)
        if self.state is LinkState.AUDIO_ONLY:
            if age >= self.hold:
                self._enter(LinkState.PROBING, now)
                self._probe_rtt = sample.rtt_s
                self._probe_spread = min(
                    self.probe_jitter_factor * (sample.jitter_s or 0.0), self.probe_max_spread_s
                )
                return Decision.PROBE
            return Decision.KEEP
        # Probing: video runs again (the GP's takes 2-3 s to arrive after a pause); see the
        # module docs for when it is back.
        spread = self._probe_spread
        rising = (
            sample.rtt_s is not None
            and self._probe_rtt is not None
            and sample.rtt_s > self._probe_rtt + self.probe_max_rise_s + spread
        )
        if sample.rtt_s is not None and (self._probe_rtt is None or sample.rtt_s < self._probe_rtt):
            self._probe_rtt = sample.rtt_s
        if self.reason is None:
            if sample.fps is not None and sample.fps <= 0:
                self.reason = "no video yet"
            elif rising:
                self.reason = "rtt rising"
            elif sample.rtt_s is not None and sample.rtt_s > self.probe_max_rtt_s + spread:
                self.reason = f"rtt {sample.rtt_s * 1000:.0f} ms in a trial"
        good = self.reason is None
        self._recent.append(good)
        queue = self.why_bad(LinkSample(sample.rtt_s, sample.loss, None, None), 0.0)
        self._bad = self._bad + 1 if queue else 0
        if self._bad >= 2:
            # Clearly bad (a queue, loss), not merely video still on its way: stop early.
            self._enter(LinkState.AUDIO_ONLY, now)
            return Decision.FAIL
        carries = sample.remb_bps is not None and sample.remb_bps >= self.confirm_remb_bps
        needed = self.good_to_resume if carries else self.good_to_confirm
        if len(self._recent) >= needed and all(self._recent[-needed:]):
            self._enter(LinkState.VIDEO, now)
            self._resumed_at = now
            return Decision.RESUME
        if age < self.probe_seconds:
            return Decision.KEEP
        self._enter(LinkState.AUDIO_ONLY, now)
        return Decision.FAIL

    def _remb_climbing(self, now: float, remb_bps: float | None) -> bool:
        """Whether Chromium's estimate is still growing: every REMB of the last
        ``remb_climb_seconds`` at least the one before, the newest ``remb_climb_ratio`` times
        the oldest or more. After audio only it restarts from what audio alone carried and
        climbs for many seconds on a clean link (``bench/network.py --transitions``,
        2026-12-07: 30 → 151 kbit/s ten seconds after video was back, and audio only again
        on a link with a 5 ms round trip); on a link that is full it stops growing or falls."""
        if remb_bps is None:
            return False
        # A little slack: the statistics come a little over a second apart.
        window = self.remb_climb_seconds + 0.5
        self._rembs = [(t, r) for t, r in self._rembs if now - t <= window]
        self._rembs.append((now, remb_bps))
        values = [r for _, r in self._rembs]
        if now - self._rembs[0][0] < self.remb_climb_seconds - 1.0:
            return False  # too short a history to tell
        rising = all(b >= a for a, b in itertools.pairwise(values))
        return rising and values[-1] >= self.remb_climb_ratio * values[0]

    def _enter(self, state: LinkState, now: float) -> None:
        self.state = state
        self._since = now
        self._bad = 0
        self._recent = []
        self._rembs = []
