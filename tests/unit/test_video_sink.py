"""The frame sinks: chosen by name, the recording one keeps counts and only the newest frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

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


def test_the_sink_is_chosen_by_name_and_shared_memory_is_the_default(tmp_path: Path) -> None:
    from hardware.surface.select import build_frame_sink
    from hardware.surface.transport import SharedMemoryFrameSink

    name, sink = build_frame_sink({}, directory=tmp_path / "surface")
    assert name == "shm" and isinstance(sink, SharedMemoryFrameSink)
    assert (tmp_path / "surface" / "remote.frames").exists()
    sink.close()
    name, sink = build_frame_sink({"KONTAKTSTATION_FRAME_SINK": "recording"})
    assert name == "recording" and isinstance(sink, RecordingFrameSink)


def test_an_unknown_or_unusable_sink_is_an_error_never_a_fallback(tmp_path: Path) -> None:
    from hardware.errors import UnknownBackendError
    from hardware.surface.select import build_frame_sink
    from hardware.surface.transport import SurfaceError

    with pytest.raises(UnknownBackendError):
        build_frame_sink({"KONTAKTSTATION_FRAME_SINK": "window"})
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SurfaceError):
        build_frame_sink({"KONTAKTSTATION_SURFACE_DIR": str(blocker / "surface")})


def test_clear_forgets_the_newest_frame_and_overlays_are_kept() -> None:
    from hardware.video import OverlayState

    sink = RecordingFrameSink()
    sink.show(av.VideoFrame(64, 48, "yuv420p"), "remote")
    sink.clear("remote")
    sink.set_overlay(OverlayState(private_call=True))
    assert sink.newest("remote") is None and sink.stats("remote").cleared == 1
    assert sink.overlays == [OverlayState(private_call=True)]
