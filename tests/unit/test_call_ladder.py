"""The video ladder: down when a REMB holds the video back, up one rung at a time on room."""

from __future__ import annotations

import itertools

import pytest

from station.call.ladder import RUNGS, Rung, VideoLadder, scaled_size


def feed(ladder: VideoLadder, start: float, seconds: int, remb: float, sent: float) -> list[int]:
    """One REMB a second; the bitrates of the rungs it changed to."""
    changes = []
    for i in range(seconds):
        rung = ladder.feed(start + i, remb, sent)
        if rung is not None:
            changes.append(rung.bitrate)
    return changes


def test_an_overuse_steps_down_to_the_rung_the_remb_carries() -> None:
    ladder = VideoLadder(warmup_seconds=0)
    assert ladder.rung == Rung(700_000, 1.0)
    # Steady state: REMB a little above what is sent. Nothing moves.
    assert feed(ladder, 0, 10, 740_000, 700_000) == []
    # A 400 kbit/s cap: Chromium's estimate falls to 0.85 x the throughput.
    assert feed(ladder, 10, 1, 320_000, 380_000) == [300_000]
    assert ladder.rung.scale == 0.5
    # Below the lowest rung it stays there (the judge takes the call to audio only).
    assert feed(ladder, 11, 1, 60_000, 300_000) == [200_000]
    assert feed(ladder, 12, 3, 40_000, 200_000) == []


def test_nothing_moves_in_the_first_seconds_of_video() -> None:
    """Chromium's first REMBs are below what is sent on any link (194k while 401k was sent,
    measured on a clean veth), and so are the first after a pause (they measured audio)."""
    ladder = VideoLadder()
    assert feed(ladder, 0, 6, 194_000, 401_000) == []
    assert feed(ladder, 6, 1, 194_000, 401_000) == [200_000]
    ladder = VideoLadder()
    assert feed(ladder, 0, 10, 740_000, 700_000) == []
    ladder.video_restarted()  # audio only, then video again
    assert feed(ladder, 20, 6, 60_000, 700_000) == []
    assert feed(ladder, 26, 1, 60_000, 700_000) == [200_000]


def test_a_still_picture_is_not_taken_for_a_slow_link() -> None:
    """A still picture sent at 90 kbit/s gets a REMB of 145k on a perfect link (the estimate
    stays under 1.5 times what it receives). That is the picture, not the link."""
    ladder = VideoLadder(warmup_seconds=0)
    assert feed(ladder, 0, 30, 145_000, 90_000) == []
    assert ladder.rung == Rung(700_000, 1.0)


def test_it_climbs_one_rung_on_room_held_for_two_seconds() -> None:
    ladder = VideoLadder(start_bitrate=300_000, warmup_seconds=0)
    # REMB climbing towards 1.5 x sent: room for a trial of the next rung.
    assert feed(ladder, 0, 2, 360_000, 300_000) == []  # under 1.3 x 300k
    assert feed(ladder, 2, 3, 400_000, 300_000) == [450_000]  # t=4
    assert ladder.rung.scale == 0.75
    assert feed(ladder, 5, 3, 590_000, 450_000) == [700_000]
    assert ladder.rung.scale == 1.0
    # Steady at 700k (REMB 1.05 x): no climb, no fall.
    assert feed(ladder, 8, 20, 735_000, 700_000) == []


def test_a_simple_picture_climbs_back_to_full_size() -> None:
    """The test pattern fills 65 % of the 450k rung; Chromium's REMB stays under 1.5 times
    what it receives, never 1.3 times the rung. Room over what is sent is enough to try the
    larger picture (bench/network.py: after a 200 ms delay step the picture stayed at 480x360
    for good). At full size the cap alone does not climb."""
    ladder = VideoLadder(start_bitrate=450_000, warmup_seconds=0)
    assert feed(ladder, 0, 3, 435_000, 290_000) == [700_000]  # t=2
    assert ladder.rung.scale == 1.0
    assert feed(ladder, 3, 30, 645_000, 430_000) == []  # 1M would be the same size
    ladder = VideoLadder(start_bitrate=300_000, warmup_seconds=0)
    assert feed(ladder, 0, 3, 300_000, 200_000) == [450_000]
    # A picture that fills its rung still needs 1.3 times the rung.
    ladder = VideoLadder(start_bitrate=450_000, warmup_seconds=0)
    assert feed(ladder, 0, 10, 560_000, 440_000) == []


def test_a_simple_picture_on_a_capped_link_tries_the_larger_size_ever_more_rarely() -> None:
    """A 400 kbit/s link that is not full: the REMB is 400k (the estimate would go to 1.5
    times what it receives), enough for a trial; full size sends 430k and does not fit. The
    trial goes back to where it came from (not to 300k, whose bitrate the REMB names), and
    the trials come ever more rarely."""
    ladder = VideoLadder(start_bitrate=450_000, warmup_seconds=0)
    changes: list[tuple[int, int]] = []
    rung = ladder.rung
    for t in range(120):
        sent = 430_000 if rung.scale == 1.0 else 290_000
        new = ladder.feed(t, 400_000, sent)
        if new is not None:
            changes.append((t, new.bitrate))
            rung = new
    assert {bitrate for _, bitrate in changes} == {700_000, 450_000}
    climbs = [t for t, bitrate in changes if bitrate == 700_000]
    waits = [b - a for a, b in itertools.pairwise(climbs)]
    assert waits == sorted(waits) and waits[-1] >= 30, waits


def test_a_climb_needs_a_remb_the_next_rung_would_keep() -> None:
    """Neighbouring rungs are close enough that 1.3 x the rung is at least 0.8 x the next: a
    climb is never undone by the REMB that allowed it."""
    for low, high in itertools.pairwise(RUNGS):
        assert 1.3 * low.bitrate >= 0.8 * high.bitrate, (low, high)
    ladder = VideoLadder(rungs=(Rung(100_000, 0.5), Rung(200_000, 1.0)), warmup_seconds=0)
    ladder.feed(0, 100_000, 100_000)  # on the lower rung
    assert ladder.rung.bitrate == 100_000
    assert feed(ladder, 1, 10, 140_000, 100_000) == []  # 1.3 x 100k, but 0.8 x 200k = 160k


def test_a_failed_climb_doubles_the_wait_until_a_climb_holds() -> None:
    """A 550 kbit/s link: 450k fits, 700k does not. Without the back-off the size would
    switch (a keyframe each time) every few seconds."""
    ladder = VideoLadder(start_bitrate=450_000, warmup_seconds=0)
    assert feed(ladder, 0, 3, 590_000, 450_000) == [700_000]  # t=2: the trial
    assert feed(ladder, 3, 1, 470_000, 640_000) == [450_000]  # t=3: overuse, back down
    assert ladder.up_after == 4.0
    assert feed(ladder, 4, 4, 590_000, 450_000) == []  # room again: waits 4 s, not 2
    assert feed(ladder, 8, 1, 590_000, 450_000) == [700_000]  # t=8
    assert feed(ladder, 9, 1, 470_000, 640_000) == [450_000]  # t=9
    assert ladder.up_after == 8.0
    # Time at the lower rung alone does not reset the wait: only a climb that holds.
    assert feed(ladder, 10, 40, 480_000, 450_000) == []
    assert ladder.up_after == 8.0
    assert feed(ladder, 50, 9, 590_000, 450_000) == [700_000]  # t=58, after 8 s of room
    assert feed(ladder, 59, 20, 735_000, 700_000) == []
    assert ladder.up_after == 2.0


def test_a_camera_that_encodes_itself_tops_the_ladder_at_its_own_rate() -> None:
    ladder = VideoLadder(top_bitrate=800_000)
    assert [r.bitrate for r in ladder.rungs] == [200_000, 300_000, 450_000, 700_000, 800_000]
    assert VideoLadder(top_bitrate=1_000_000).rungs[-1] == Rung(1_000_000, 1.0)
    with pytest.raises(ValueError):
        VideoLadder(rungs=(), top_bitrate=None)


def test_sizes_are_even() -> None:
    assert scaled_size(640, 480, 0.75) == (480, 360)
    assert scaled_size(640, 480, 0.5) == (320, 240)
    assert scaled_size(1280, 720, 0.75) == (960, 540)
    assert all(n % 2 == 0 for n in scaled_size(642, 486, 0.75))
    assert scaled_size(640, 480, 1.0) == (640, 480)
