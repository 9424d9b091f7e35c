"""The call engine's judgements about the GP: frozen video, what the answer sends, messages."""

from __future__ import annotations

import pytest

from station.call.config import CallConfig
from station.call.engine import grade_quality
from station.call.liveness import (
    MAX_GP_MESSAGE,
    StallAction,
    VideoWatch,
    answer_sends_video,
    parse_gp_message,
)

ANSWER = """v=0\r
o=- 1 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
m=audio 9 UDP/TLS/RTP/SAVPF 111\r
a={audio}\r
m=video {port} UDP/TLS/RTP/SAVPF 96\r
{video}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
a=sctp-port:5000\r
"""


def answer(video: str = "a=sendrecv\r\n", port: str = "9", audio: str = "sendrecv") -> str:
    return ANSWER.format(video=video, port=port, audio=audio)


@pytest.mark.parametrize(
    ("video", "port", "sends"),
    [
        ("a=sendrecv\r\n", "9", True),
        ("a=sendonly\r\n", "9", True),
        ("", "9", True),  # no direction: sendrecv
        ("a=recvonly\r\n", "9", False),  # a GP without a camera
        ("a=inactive\r\n", "9", False),
        ("a=sendrecv\r\n", "0", False),  # rejected section
    ],
)
def test_answer_sends_video_reads_the_video_section_only(
    video: str, port: str, sends: bool
) -> None:
    assert answer_sends_video(answer(video, port)) is sends
    # The audio section's direction does not matter.
    assert answer_sends_video(answer(video, port, audio="recvonly")) is sends


def test_answer_without_video_sends_none() -> None:
    assert answer_sends_video("v=0\r\nm=audio 9 RTP/AVP 0\r\na=sendrecv\r\n") is False
    assert answer_sends_video("") is False


def watch() -> VideoWatch:
    return VideoWatch(stall_seconds=2.0, keyframe_wait_seconds=3.0, repeat_seconds=1.0)


def test_frozen_video_asks_for_keyframes_then_redials() -> None:
    video = watch()
    alive = {"expected": True, "reference": 0.0, "others_alive": True}
    assert video.judge(1.9, **alive) is StallAction.NONE
    assert video.judge(2.0, **alive) is StallAction.KEYFRAME
    assert video.stalled and video.requests == 1
    assert video.judge(2.5, **alive) is StallAction.NONE
    assert video.judge(3.0, **alive) is StallAction.KEYFRAME  # repeated every second
    assert video.judge(4.0, **alive) is StallAction.KEYFRAME
    assert video.judge(4.9, **alive) is StallAction.NONE
    assert video.judge(5.0, **alive) is StallAction.REDIAL
    assert video.requests == 3


def test_frames_after_a_keyframe_request_are_a_recovery() -> None:
    video = watch()
    assert video.judge(2.0, expected=True, reference=0.0, others_alive=True) is (
        StallAction.KEYFRAME
    )
    # A frame arrived at 2.3 s.
    assert video.judge(2.4, expected=True, reference=2.3, others_alive=True) is (
        StallAction.RECOVERED
    )
    assert not video.stalled
    assert video.judge(2.5, expected=True, reference=2.3, others_alive=True) is StallAction.NONE


def test_no_judgement_without_expected_video_or_while_everything_is_silent() -> None:
    video = watch()
    assert video.judge(10.0, expected=False, reference=0.0, others_alive=True) is (StallAction.NONE)
    # The whole connection is silent: the media watchdog's case, not frozen video.
    assert video.judge(10.0, expected=True, reference=0.0, others_alive=False) is (StallAction.NONE)
    assert video.judge(10.0, expected=True, reference=0.0, others_alive=True) is (
        StallAction.KEYFRAME
    )
    # Silent after the request: nothing judged, the request stays pending.
    assert video.judge(20.0, expected=True, reference=0.0, others_alive=False) is (StallAction.NONE)
    assert video.stalled
    # Camera switched off: forgotten.
    assert video.judge(21.0, expected=False, reference=0.0, others_alive=True) is (StallAction.NONE)
    assert not video.stalled


def test_gp_messages_are_small_json_objects() -> None:
    assert parse_gp_message('{"type":"gp_alive","video":true,"audio":false}') == {
        "type": "gp_alive",
        "video": True,
        "audio": False,
    }
    for bad in ("[1, 2]", "not json", b'{"type":"gp_leaving"}', None, "x" * (MAX_GP_MESSAGE + 1)):
        assert parse_gp_message(bad) is None


def test_quality_ignores_the_frame_rate_when_the_gp_sends_no_video() -> None:
    assert grade_quality(20.0, 0.0, 0.0, 0.2) == "poor"
    assert grade_quality(20.0, 0.0, 0.0, 0.2, video_expected=False) == "good"
    assert grade_quality(20.0, 0.0, 0.0, None, video_expected=False) == "lost"


def test_gp_left_settings_have_defaults_and_bounds() -> None:
    base = {"hub_url": "http://hub.test", "station_token": "t" * 32}
    config = CallConfig.model_validate(base)
    assert config.gp_left_end_seconds == 60.0
    assert config.gp_absent_seconds == 15.0
    assert config.video_stall_seconds == 2.0
    assert config.video_keyframe_wait_seconds == 3.0
    for field, value in (
        ("gp_left_end_seconds", 4),
        ("gp_left_end_seconds", 601),
        ("gp_absent_seconds", 7),
        ("video_stall_seconds", 0.1),
        ("video_keyframe_wait_seconds", 31),
    ):
        with pytest.raises(ValueError):
            CallConfig.model_validate({**base, field: value})
