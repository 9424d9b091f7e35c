"""The recording frame sink keeps counts and only the newest frame."""

from __future__ import annotations

import av
import numpy as np

from hardware.video import RecordingFrameSink


def _frame(value: int) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, dtype=np.uint8), format="rgb24")


def test_counts_per_role_and_keeps_only_the_newest() -> None:
    sink = RecordingFrameSink()
    for i in range(5):
        sink.show(_frame(i * 10), "remote")
    sink.show(_frame(200), "self")
    assert sink.stats("remote").frames == 5
    assert sink.stats("self").frames == 1
    assert sink.stats("remote").last_size == (64, 48)
    newest = sink.newest("remote")
    assert newest is not None
    assert int(newest.to_ndarray(format="rgb24")[0, 0, 0]) == 40
    assert sink.newest("self") is not None
