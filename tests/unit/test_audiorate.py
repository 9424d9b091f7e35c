"""The station's Opus settings follow the GP's receiver reports (issue 18 item 2)."""

from __future__ import annotations

from station.call.audiorate import BITRATES, START, AudioRate, AudioTarget
from station.call.opus import DEFAULT_BITRATE, DEFAULT_PACKET_LOSS_PERCENT, FecOpusEncoder


def test_the_encoder_starts_where_the_follower_does() -> None:
    assert (DEFAULT_BITRATE, DEFAULT_PACKET_LOSS_PERCENT) == START == (32_000, 10)
    encoder = FecOpusEncoder()
    assert (encoder.bitrate, encoder.packet_loss_percent) == START
    assert AudioRate().target == AudioTarget(*START)


def test_a_clean_link_gets_the_clean_rung_and_the_floor() -> None:
    rate = AudioRate()
    assert rate.feed(0.0) == AudioTarget(32_000, 2)
    assert rate.feed(0.0) is None  # nothing changed, nothing to set


def test_loss_climbs_the_ladder_and_the_redundancy_follows_it() -> None:
    rate = AudioRate()
    targets = [rate.feed(0.12) for _ in range(3)]
    # The first report alone is already past both steps (12 %).
    assert targets[0] == AudioTarget(BITRATES[2], 12)
    assert rate.target.bitrate == 48_000 and rate.target.loss_percent == 12


def test_one_report_of_moderate_loss_takes_one_rung() -> None:
    rate = AudioRate()
    rate.feed(0.0)
    target = rate.feed(0.08)  # smoothed: 4 %
    assert target == AudioTarget(40_000, 4)


def test_a_link_near_a_threshold_does_not_flap() -> None:
    rate = AudioRate()
    rate.feed(0.035)  # 3.5 %: the second rung
    assert rate.target.bitrate == 40_000
    bitrates = set()
    for fraction in (0.025, 0.035, 0.02, 0.03, 0.025) * 4:
        rate.feed(fraction)
        bitrates.add(rate.target.bitrate)
    assert bitrates == {40_000}  # never below 1.5 %, so never back down


def test_the_loss_gone_brings_the_clean_rung_back_within_a_few_reports() -> None:
    rate = AudioRate()
    for _ in range(4):
        rate.feed(0.15)
    assert rate.target.bitrate == 48_000
    reports = 0
    while rate.target.bitrate != 32_000:
        rate.feed(0.0)
        reports += 1
        assert reports <= 6
    assert rate.target.loss_percent == 2
    assert reports >= 2  # smoothed: one clean report is not enough


def test_audio_only_keeps_the_clean_rung_but_the_redundancy() -> None:
    rate = AudioRate()
    target = rate.feed(0.2, audio_only=True)
    assert target == AudioTarget(32_000, 20)


def test_the_expected_loss_is_held_to_its_range() -> None:
    rate = AudioRate(smoothing=1.0)
    assert rate.feed(0.9) == AudioTarget(48_000, 30)
    assert rate.feed(-1.0) == AudioTarget(32_000, 2)


def test_the_encoder_takes_the_settings_live() -> None:
    encoder = FecOpusEncoder()
    target = AudioRate().feed(0.12)
    assert target is not None
    encoder.set_bitrate(target.bitrate)
    encoder.set_packet_loss(target.loss_percent)
    assert (encoder.bitrate, encoder.packet_loss_percent) == (48_000, 12)
