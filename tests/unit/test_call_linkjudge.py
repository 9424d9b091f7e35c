"""The automatic audio-only judge: hysteresis in, probing out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from station.call.adapt import _both_ways, _recent
from station.call.linkjudge import AudioOnlyJudge, Decision, LinkSample, LinkState

GOOD = LinkSample(rtt_s=0.02, loss=0.0, fps=25.0, remb_bps=1_000_000)
QUEUED = LinkSample(rtt_s=1.5, loss=0.0, fps=25.0, remb_bps=1_000_000)
SLOW_VIDEO = LinkSample(rtt_s=0.02, loss=0.0, fps=2.0, remb_bps=1_000_000)
AUDIO_ONLY = LinkSample(rtt_s=0.02, loss=0.0, fps=None, remb_bps=120_000)


def run(judge: AudioOnlyJudge, samples: list[LinkSample], start: float = 0.0) -> list[Decision]:
    return [judge.feed(start + i, s) for i, s in enumerate(samples)]


def test_warm_up_then_three_bad_samples_in_a_row_pause_video() -> None:
    judge = AudioOnlyJudge()
    # The first 4 s after connecting are not judged (video ramps up).
    assert run(judge, [SLOW_VIDEO] * 4) == [Decision.KEEP] * 4
    # Two bad, one good: no change (hysteresis).
    assert set(run(judge, [QUEUED, QUEUED, GOOD], 4)) == {Decision.KEEP}
    assert run(judge, [QUEUED, SLOW_VIDEO, QUEUED], 7) == [Decision.KEEP] * 2 + [Decision.ENTER]
    assert judge.state is LinkState.AUDIO_ONLY


def test_probe_resumes_on_a_good_link_and_falls_back_on_a_bad_one() -> None:
    judge = AudioOnlyJudge(warmup_seconds=0)
    assert run(judge, [QUEUED] * 3)[-1] is Decision.ENTER  # at t=2
    # Audio only for 2 s (REMB is low now: it only sees audio, and is not believed).
    assert run(judge, [AUDIO_ONLY] * 3, 3) == [Decision.KEEP, Decision.PROBE, Decision.KEEP]
    # A 12 s trial on a still-bad link where no GP video arrives: audio only again.
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3 + [AUDIO_ONLY] * 2)  # probing from t=4
    assert run(judge, [SLOW_VIDEO] * 12, 5) == [Decision.KEEP] * 11 + [Decision.FAIL]  # t=16
    # Two clearly bad samples (a queue) end a trial early.
    assert run(judge, [AUDIO_ONLY] * 2, 17)[-1] is Decision.PROBE  # t=18
    assert run(judge, [QUEUED, QUEUED], 19) == [Decision.KEEP, Decision.FAIL]  # t=20
    assert judge.state is LinkState.AUDIO_ONLY
    assert run(judge, [AUDIO_ONLY] * 2, 21)[-1] is Decision.PROBE  # t=22
    # The link recovered: the GP's video takes a moment, then three good samples with a REMB
    # that carries video bring it back.
    no_video_yet = LinkSample(rtt_s=0.02, loss=0.0, fps=0.0, remb_bps=None)
    carries = LinkSample(rtt_s=0.02, loss=0.0, fps=20.0, remb_bps=300_000)
    assert run(judge, [no_video_yet, no_video_yet, carries, carries, carries], 23) == [
        Decision.KEEP
    ] * 4 + [Decision.RESUME]
    assert judge.state is LinkState.VIDEO
    # A low REMB right after video came back is no reason (it climbs for a while).
    low_remb = LinkSample(rtt_s=0.02, loss=0.0, fps=20.0, remb_bps=120_000)
    assert set(run(judge, [low_remb] * 8, 28)) == {Decision.KEEP}


def test_without_a_remb_that_carries_video_the_trial_runs_five_good_seconds() -> None:
    """CI under a 256 kbit/s cap: the GP's video at 30 frames a second and a 2 ms round trip
    for the first seconds of a trial (the GP's browser restarts low and climbs), REMB 58k;
    resumed after two such samples, the GP's video overran the cap a few seconds later."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3 + [AUDIO_ONLY] * 2)  # probing from t=4
    fits_for_now = LinkSample(rtt_s=0.002, loss=0.0, fps=30.0, remb_bps=58_000)
    overrun = LinkSample(rtt_s=0.002, loss=0.11, fps=4.0, remb_bps=58_000)
    assert run(judge, [fits_for_now] * 4 + [overrun] * 2, 5) == [Decision.KEEP] * 5 + [
        Decision.FAIL
    ]
    # On a clean link the same low REMB: video back after five good samples.
    assert run(judge, [AUDIO_ONLY] * 2, 11)[-1] is Decision.PROBE  # t=12
    assert run(judge, [fits_for_now] * 5, 13) == [Decision.KEEP] * 4 + [Decision.RESUME]


def test_a_remb_far_below_video_after_video_ran_a_while_counts() -> None:
    judge = AudioOnlyJudge(warmup_seconds=0)
    low = LinkSample(rtt_s=0.02, loss=0.0, fps=25.0, remb_bps=100_000)
    assert judge.why_bad(low, video_for=3) is None
    assert judge.why_bad(low, video_for=12) == "remb 100 kbit/s"
    assert judge.why_bad(LinkSample(0.02, 0.2, 25.0, None), 0) == "loss 20%"


def test_a_low_remb_over_a_still_picture_is_no_reason() -> None:
    """Chromium's estimate grows to about 1.5 times what it receives: a still resident whose
    picture the encoder sends at 90 kbit/s gets a REMB of ~145 kbit/s on a perfect link. Only a
    REMB that holds the video back (below 1.2 times what was sent) counts."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    still = LinkSample(rtt_s=0.02, loss=0.0, fps=25.0, remb_bps=145_000, sent_bps=90_000)
    assert judge.why_bad(still, video_for=30) is None
    assert set(run(judge, [still] * 10)) == {Decision.KEEP}
    held_back = LinkSample(rtt_s=0.02, loss=0.0, fps=25.0, remb_bps=120_000, sent_bps=140_000)
    assert judge.why_bad(held_back, video_for=30) == "remb 120 kbit/s"
    judge = AudioOnlyJudge(warmup_seconds=0, remb_after_seconds=0)
    assert run(judge, [held_back] * 3)[-1] is Decision.ENTER


def test_a_trial_whose_queue_keeps_growing_does_not_resume() -> None:
    """What CI saw under a 256 kbit/s cap: the trial's round trips 134, 179, 218 ms, each under
    the absolute limit, video arriving, and video was resumed on a link that could not carry
    it. The queue filling (+84 ms in two seconds) now keeps the trial from counting as good."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3)  # audio only at t=2
    on_cap = LinkSample(rtt_s=0.134, loss=0.0, fps=None, remb_bps=None)
    assert run(judge, [on_cap, on_cap], 3)[-1] is Decision.PROBE  # t=4, trial from 134 ms
    trial = [
        LinkSample(rtt_s=0.179, loss=0.0, fps=22.0, remb_bps=79_000),
        LinkSample(rtt_s=0.218, loss=0.0, fps=30.0, remb_bps=79_000),
        LinkSample(rtt_s=0.240, loss=0.0, fps=30.0, remb_bps=79_000),
        LinkSample(rtt_s=0.245, loss=0.0, fps=30.0, remb_bps=79_000),
        LinkSample(rtt_s=0.248, loss=0.0, fps=30.0, remb_bps=79_000),
        LinkSample(rtt_s=0.249, loss=0.0, fps=30.0, remb_bps=79_000),
    ]
    assert run(judge, trial, 5) == [Decision.KEEP] * 6
    assert judge.state is LinkState.PROBING  # never good: the trial runs out
    assert run(judge, trial, 11) == [Decision.KEEP] * 5 + [Decision.FAIL]  # t=16
    assert judge.state is LinkState.AUDIO_ONLY
    # The same start on a link that carries video (the queue does not grow): resumed.
    assert run(judge, [on_cap, on_cap], 17)[-1] is Decision.PROBE  # t=18
    steady = LinkSample(rtt_s=0.150, loss=0.0, fps=25.0, remb_bps=None)
    assert run(judge, [steady] * 5, 19) == [Decision.KEEP] * 4 + [Decision.RESUME]


def test_a_queue_that_drains_and_fills_again_does_not_resume() -> None:
    """CI under a 256 kbit/s cap: a trial began while the queue of the video before was still
    draining (320 → 231 → 219 ms). Measured from the trial's lowest round trip, the queue
    filling again is seen; from its first, every sample below looks good (under 0.25 s, not
    60 ms above 240 ms) and video would be back at the third."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3)  # audio only at t=2
    draining = LinkSample(rtt_s=0.240, loss=0.0, fps=None, remb_bps=None)
    assert run(judge, [draining, draining], 3)[-1] is Decision.PROBE  # t=4, from 240 ms
    trial = [0.200, 0.100, 0.170, 0.180, 0.200, 0.220, 0.230, 0.240, 0.240, 0.240, 0.240, 0.240]
    samples = [LinkSample(rtt_s=r, loss=0.0, fps=30.0, remb_bps=300_000) for r in trial]
    assert run(judge, samples, 5) == [Decision.KEEP] * 11 + [Decision.FAIL]  # t=16


def test_video_that_comes_and_goes_waits_longer_before_the_next_trial() -> None:
    judge = AudioOnlyJudge(warmup_seconds=0)
    assert run(judge, [QUEUED] * 3)[-1] is Decision.ENTER  # t=2
    assert run(judge, [AUDIO_ONLY] * 2, 3)[-1] is Decision.PROBE  # t=4, after 2 s
    assert run(judge, [GOOD] * 3, 5)[-1] is Decision.RESUME  # t=7
    # Bad again 3 s after the resume: audio only, and the next trial after 4 s, not 2.
    assert run(judge, [QUEUED] * 3, 8)[-1] is Decision.ENTER  # t=10
    assert judge.hold == 4.0
    assert run(judge, [AUDIO_ONLY] * 4, 11) == [Decision.KEEP] * 3 + [Decision.PROBE]  # t=14
    assert run(judge, [GOOD] * 3, 15)[-1] is Decision.RESUME  # t=17
    assert run(judge, [QUEUED] * 3, 18)[-1] is Decision.ENTER  # t=20: 8 s now
    assert judge.hold == 8.0
    assert run(judge, [AUDIO_ONLY] * 8, 21)[-1] is Decision.PROBE  # t=28
    assert run(judge, [GOOD] * 3, 29)[-1] is Decision.RESUME  # t=31
    # Video that lasts half a minute: the wait is back to 2 s.
    assert set(run(judge, [GOOD] * 31, 32)) == {Decision.KEEP}
    assert judge.hold == 2.0


def test_a_jittery_link_without_a_queue_resumes() -> None:
    """CI under 5 % loss and 50 ± 50 ms of delay each way: round trips spread over 0-200 ms
    with no queue, and trials failed as "rising" (a sample 60 ms above the trial's lowest).
    The jitter both ways, measured with audio alone on the link when the trial starts (33 ms
    each way here), widens the trial's limits; the same samples without it still fail."""
    rtts = [0.100, 0.180, 0.030, 0.170, 0.190, 0.060, 0.150, 0.020, 0.185, 0.120]

    def trial(jitter_s: float | None) -> list[Decision]:
        judge = AudioOnlyJudge(warmup_seconds=0)
        run(judge, [QUEUED] * 3)  # audio only at t=2
        audio = LinkSample(rtt_s=0.100, loss=0.02, fps=None, remb_bps=None, jitter_s=jitter_s)
        assert run(judge, [audio, audio], 3)[-1] is Decision.PROBE  # t=4
        samples = [
            # The trial's own video: its bursts make the audio's jitter larger still.
            LinkSample(rtt_s=r, loss=0.05, fps=25.0, remb_bps=None, jitter_s=0.2)
            for r in rtts
        ]
        return run(judge, samples, 5)

    assert trial(0.066)[:5] == [Decision.KEEP] * 4 + [Decision.RESUME]
    # Without the measured jitter (None, or what a trial's own video adds, not counted):
    # the second sample is "rising", and five good in a row never come.
    assert Decision.RESUME not in trial(None)


def test_jitter_from_the_trials_own_video_does_not_hide_a_queue() -> None:
    """On a capped link the trial's video makes the audio's jitter grow (its packets wait
    behind video bursts); only the jitter before the trial widens the limits, so the queue of
    the growing-queue case is still seen."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3)  # audio only at t=2
    on_cap = LinkSample(rtt_s=0.134, loss=0.0, fps=None, remb_bps=None, jitter_s=0.002)
    assert run(judge, [on_cap, on_cap], 3)[-1] is Decision.PROBE
    growing = [0.179, 0.218, 0.240, 0.245, 0.248, 0.249, 0.249, 0.249, 0.249, 0.249, 0.249]
    samples = [
        LinkSample(rtt_s=r, loss=0.0, fps=30.0, remb_bps=79_000, jitter_s=0.04) for r in growing
    ]
    assert run(judge, samples, 5) == [Decision.KEEP] * 11
    assert judge.state is LinkState.PROBING


def test_a_jitter_measured_wrong_widens_the_limits_only_so_far() -> None:
    """A stale or wrong jitter (a report from before audio only, say) must not hide a queue:
    the widening stops at 150 ms."""
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3)  # audio only at t=2
    wrong = LinkSample(rtt_s=0.100, loss=0.0, fps=None, remb_bps=None, jitter_s=1.0)
    assert run(judge, [wrong, wrong], 3)[-1] is Decision.PROBE
    queued = LinkSample(rtt_s=0.350, loss=0.0, fps=30.0, remb_bps=300_000, jitter_s=1.0)
    assert run(judge, [queued] * 3, 5) == [Decision.KEEP] * 3


def test_the_gps_jitter_report_counts_only_while_recent() -> None:
    """The station's audio at the GP: its receiver report's jitter when it is under 1.5 s
    old; else the jitter here stands in for both ways."""
    now = datetime.now(UTC)
    assert _recent(SimpleNamespace(timestamp=now - timedelta(seconds=0.5)))
    assert not _recent(SimpleNamespace(timestamp=now - timedelta(seconds=4)))
    assert not _recent(SimpleNamespace())
    assert _both_ways(480, 960) == 0.03  # 10 ms here, 20 ms there
    assert _both_ways(480, None) == 0.02  # no recent report: 10 ms each way
    assert _both_ways(None, 960) is None


def test_a_remb_still_climbing_after_audio_only_is_no_reason() -> None:
    """``bench/network.py --transitions`` (2026-12-07): after 20 s of audio only Chromium's
    estimate restarted at 27 kbit/s and was 151 kbit/s ten seconds after video was back, on a
    link with a 5 ms round trip, and video paused again. A REMB that grows each second is the
    estimate catching up; one that stops growing below the lowest rung is the link's limit."""
    judge = AudioOnlyJudge(warmup_seconds=0, remb_after_seconds=0)
    climbing = [
        LinkSample(rtt_s=0.005, loss=0.0, fps=30.0, remb_bps=r, sent_bps=200_000)
        for r in (60_000, 75_000, 95_000, 120_000, 151_000, 185_000)
    ]
    assert set(run(judge, climbing)) == {Decision.KEEP}
    assert judge.reason is None
    stuck = LinkSample(rtt_s=0.005, loss=0.0, fps=30.0, remb_bps=150_000, sent_bps=200_000)
    assert run(judge, [stuck] * 3, 6) == [Decision.KEEP] * 2 + [Decision.ENTER]
    assert judge.reason == "remb 150 kbit/s"
    # A saw-tooth (an estimate that overshoots the link, drops and grows again) is no climb,
    # with the statistics a little over a second apart as they come.
    judge = AudioOnlyJudge(warmup_seconds=0, remb_after_seconds=0)
    saw = [120_000, 150_000, 170_000, 183_000, 157_000, 175_000, 183_000, 160_000, 178_000]
    samples = [LinkSample(0.005, 0.0, 30.0, r, sent_bps=170_000) for r in saw]
    decisions = [judge.feed(i * 1.02, sample) for i, sample in enumerate(samples)]
    assert decisions[:4] == [Decision.KEEP] * 4  # climbing: not the link
    assert Decision.ENTER in decisions
