"""The automatic audio-only judge: hysteresis in, probing out."""

from __future__ import annotations

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
    # A 5 s trial on a still-bad link where no GP video arrives: audio only again.
    judge = AudioOnlyJudge(warmup_seconds=0)
    run(judge, [QUEUED] * 3 + [AUDIO_ONLY] * 2)  # probing from t=4
    assert run(judge, [SLOW_VIDEO] * 5, 5) == [Decision.KEEP] * 4 + [Decision.FAIL]  # t=9
    # Two clearly bad samples (a queue) end a trial early.
    assert run(judge, [AUDIO_ONLY] * 2, 10)[-1] is Decision.PROBE  # t=11
    assert run(judge, [QUEUED, QUEUED], 12) == [Decision.KEEP, Decision.FAIL]  # t=13
    assert judge.state is LinkState.AUDIO_ONLY
    assert run(judge, [AUDIO_ONLY] * 2, 14)[-1] is Decision.PROBE  # t=15
    # The link recovered: the GP's video takes a moment, then two good samples bring it back.
    no_video_yet = LinkSample(rtt_s=0.02, loss=0.0, fps=0.0, remb_bps=None)
    low_remb = LinkSample(rtt_s=0.02, loss=0.0, fps=20.0, remb_bps=120_000)
    assert run(judge, [no_video_yet, no_video_yet, low_remb, low_remb], 16) == [
        Decision.KEEP
    ] * 3 + [Decision.RESUME]
    assert judge.state is LinkState.VIDEO
    # A low REMB right after video came back is no reason (it climbs for a while).
    assert set(run(judge, [low_remb] * 8, 20)) == {Decision.KEEP}


def test_a_remb_far_below_video_after_video_ran_a_while_counts() -> None:
    judge = AudioOnlyJudge(warmup_seconds=0)
    low = LinkSample(rtt_s=0.02, loss=0.0, fps=25.0, remb_bps=100_000)
    assert judge.why_bad(low, video_for=3) is None
    assert judge.why_bad(low, video_for=12) == "remb 100 kbit/s"
    assert judge.why_bad(LinkSample(0.02, 0.2, 25.0, None), 0) == "loss 20%"


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
    ]
    assert run(judge, trial, 5) == [Decision.KEEP] * 4 + [Decision.FAIL]
    assert judge.state is LinkState.AUDIO_ONLY
    # The same start on a link that carries video (the queue does not grow): resumed.
    assert run(judge, [on_cap, on_cap], 10)[-1] is Decision.PROBE
    steady = LinkSample(rtt_s=0.150, loss=0.0, fps=25.0, remb_bps=None)
    assert run(judge, [steady, steady], 12) == [Decision.KEEP, Decision.RESUME]
