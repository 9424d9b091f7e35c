"""What the call tells the GP page, and the controls staff and the resident use during a call.

Notices go on the attempt's data channel (the live path) and, best effort, to the hub (the
page's fallback): private or staff present, which resident of a round is on camera now.
Microphone, camera and volume act on the station's own tracks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from station.call.errors import CallError
from station.call.media import (
    VOLUME_STEPS,
)
from station.call.state import Attempt, CallState
from station.i18n import N_

__all__ = ["CallControls"]

_log = logging.getLogger(__name__)


class CallControls(CallState):
    """The notices and controls of a call (see the module docs)."""

    def _send(self, message: dict[str, Any]) -> bool:
        attempt = self._attempt
        channel = attempt.channel if attempt is not None else None
        if channel is None or channel.readyState != "open":
            return False
        try:
            channel.send(json.dumps(message, separators=(",", ":")))
        except Exception:
            return False
        return True

    def _on_channel_open(self, attempt: Attempt) -> None:
        # A new peer connection (a re-dial) has a new channel: bring the page up to date.
        if self._attempt is not attempt:
            return
        if self._residents:
            # The whole round, end to end to the admitted page: a GP who came by the short
            # code has no key for the sealed copy at the hub (station.keys.room_seal).
            self._send({"type": "round", "residents": [r.for_hub() for r in self._residents]})
            self._send(self._resident_message())
        self._send({"type": "private" if self._private else "staff_present"})
        if self.audio_only:
            self._send(self._audio_only_message())

    def _resident_message(self) -> dict[str, Any]:
        resident = self._residents[self._current]
        message: dict[str, Any] = {
            "type": "current_resident",
            "display_name": resident.display_name,
            "position": self._current + 1,
            "of": len(self._residents),
        }
        if resident.birth_date is not None:
            message["birth_date"] = resident.birth_date.isoformat()
        if resident.room is not None:
            message["room"] = resident.room
        return message

    def _post_notice(self, notice: dict[str, Any]) -> None:
        """The hub's copy (the page's fallback path); best effort, in the background."""
        room_id = self.room_id
        if room_id is None:
            return

        async def post() -> None:
            hub = self._hub()
            try:
                await hub.notice(room_id, notice)
            except CallError as exc:
                _log.warning("notice %s not copied to the hub: %s", notice.get("type"), exc)
            finally:
                await hub.aclose()

        task = asyncio.get_running_loop().create_task(post())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def set_private(self, private: bool) -> None:
        """Staff left (the call is private) or came back: tell the GP page."""
        if not self.active or private == self._private:
            self._private = private
            return
        self._private = private
        notice = {"type": "private" if private else "staff_present"}
        self._send(notice)
        self._post_notice(notice)
        self._publish("private" if private else "staff_present")

    def move_resident(self, step: int) -> dict[str, int]:
        """Next (+1) or previous (-1) resident of a round; the GP page follows."""
        if not self.active:
            raise CallError("no call is running", N_("No call is running."))
        if not self._residents:
            raise CallError("this call has no residents", N_("The call has no residents."))
        target = self._current + step
        if not 0 <= target < len(self._residents):
            raise CallError(
                "no such resident in the round",
                N_("There are no more residents in that direction."),
            )
        self._current = target
        message = self._resident_message()
        self._send(message)
        if self._seal is not None:
            shown = {k: message[k] for k in ("display_name", "position", "of")}
            self._post_notice(
                {"type": "current_resident", "sealed": self._seal("current_resident", shown)}
            )
        position = self._position()
        assert position is not None
        self._publish("resident", **position)
        return position

    def set_muted(self, muted: bool) -> None:
        """Microphone off (silence is sent) or on."""
        self.muted = muted
        self._publish("controls", **self._controls())

    def set_camera_off(self, off: bool) -> None:
        """Camera off (black pictures are sent) or on."""
        self.camera_off = off
        self._publish("controls", **self._controls())

    def set_audio_only(self, on: bool, *, by: str = "staff") -> None:
        """Audio only by choice (``by``: ``staff`` or ``gp``), or video back by choice.

        Either side's choice holds for both; the automatic audio only (a link that cannot
        carry video) is separate and ends by itself.
        """
        if on == self.audio_only_chosen:
            return
        _log.info("audio only %s (chosen by %s)", "on" if on else "off", by)
        self.audio_only_chosen = on
        self._audio_only_changed()

    def set_audio_only_auto(self, on: bool, *, probing: bool = False) -> None:
        """The link cannot (True) or can again (False) carry video at a useful rate;
        ``probing``: still audio only as far as the label goes, but video tries again."""
        if on == self.audio_only_auto and probing == self.audio_only_probing:
            return
        _log.info("audio only %s (link)%s", "on" if on else "off", " probing" if probing else "")
        self.audio_only_auto = on
        self.audio_only_probing = on and probing
        self._audio_only_changed()

    def _audio_only_changed(self) -> None:
        attempt = self._attempt
        if attempt is not None:
            self._apply_audio_only(attempt)
        self._send(self._audio_only_message())
        self._publish("controls", **self._controls())

    def _apply_audio_only(self, attempt: Attempt) -> None:
        """Pause (or resume) the station's video sender on ``attempt``."""
        paused = self.video_paused
        was = attempt.audio_only
        attempt.audio_only = paused
        sender = attempt.video_sender
        if sender is None or not hasattr(sender, "_enabled"):
            return
        # aiortc's sender reads its track and drops the frames while disabled (aiortc 1.16
        # RTCRtpSender._next_encoded_frame): nothing is encoded or sent.
        sender._enabled = not paused
        if not paused and (was or attempt.video_started_at is None):
            attempt.video_started_at = asyncio.get_running_loop().time()
        if was and not paused:
            # The GP's decoder lost its reference pictures: start again from a keyframe.
            # (aiortc's own keyframe request; for a hardware encoder it reaches the camera,
            # see hardware.camera.base.forward_keyframe_requests.)
            with contextlib.suppress(Exception):
                sender._send_keyframe()

    def _audio_only_message(self) -> dict[str, Any]:
        return {
            "type": "audio_only",
            "on": self.audio_only,
            "reason": self.audio_only_reason,
            "paused": self.video_paused,
        }

    def change_volume(self, step: int) -> int:
        """Louder (+1) or softer (-1); returns the new volume step (0..VOLUME_STEPS)."""
        self.volume = max(0, min(VOLUME_STEPS, self.volume + step))
        self._publish("controls", **self._controls())
        return self.volume

    def _controls(self) -> dict[str, Any]:
        return {
            "muted": self.muted,
            "camera_off": self.camera_off,
            "audio_only": self.audio_only,
            "audio_only_reason": self.audio_only_reason,
            "volume": self.volume,
        }
