"""What the surface's overlay shows follows the call engine's statuses (stationd's
``CallController.status``): the private badge, the line quality, and audio only with why."""

from __future__ import annotations

from hardware.video import OverlayState
from station.daemon.calls import _overlay_after

CONTROLS = {"muted": False, "camera_off": False, "volume": 5}


def test_audio_only_comes_and_goes_with_the_controls_status() -> None:
    overlay = _overlay_after(OverlayState(), "private", {})
    assert overlay == OverlayState(private_call=True)
    poor = {**CONTROLS, "audio_only": True, "audio_only_reason": "poor_connection"}
    overlay = _overlay_after(overlay, "controls", poor)
    assert overlay == OverlayState(private_call=True, audio_only="poor_connection")
    chosen = {**CONTROLS, "audio_only": True, "audio_only_reason": "choice"}
    assert _overlay_after(overlay, "controls", chosen).audio_only == "choice"
    back = {**CONTROLS, "audio_only": False, "audio_only_reason": None}
    assert _overlay_after(overlay, "controls", back) == OverlayState(private_call=True)
    # A controls status that says nothing of audio only (an older engine) leaves it alone,
    # and an unknown reason is not drawn.
    assert _overlay_after(overlay, "controls", CONTROLS) == overlay
    odd = {**CONTROLS, "audio_only": True, "audio_only_reason": "weather"}
    assert _overlay_after(overlay, "controls", odd).audio_only is None


def test_the_overlay_file_carries_it(tmp_path: object) -> None:
    from pathlib import Path

    from hardware.surface.transport import read_overlay, write_overlay

    directory = Path(str(tmp_path))
    state = OverlayState(private_call=True, quality="poor", audio_only="poor_connection")
    write_overlay(directory, state)
    assert read_overlay(directory) == state
    # A file from before (no audio_only key) still reads.
    (directory / "state.json").write_text('{"private_call": false, "quality": "good"}')
    assert read_overlay(directory) == OverlayState(quality="good")
