"""The call in stationd: the call engine wired to the session (its endpoints are
``station.daemon.routes.call``).

:class:`CallController` owns the :class:`~station.call.engine.CallEngine` and maps it onto the
session: the GP's admission is ``call_gp_admitted``, the end of a call is ``call_ended`` (or a
``cancel`` when the GP never admitted the station while staff were present), call status and
statistics go out as ``call`` events. It also listens to the session: going private during a
call sends the GP the ``private`` notice, staff unlocking again sends ``staff_present``, and a
call cancelled by staff hangs up.

A call needs the camera and the speakerphone: while either is missing (see
``station.daemon.hardware``) :meth:`CallController.start` refuses with 503
``hardware_missing``, the reason (English) and what to check (Danish), and
:meth:`CallController.call_status` lists them under ``missing``. A missing privacy button or
lamp does not stop a call (the lock screen and the heartbeat say so).

stationd is blind: the residents in the start request (display name, birth date, room,
reason) go to the hub sealed for the GP and on the data channel, and are never stored or
logged. The GP's
link is returned once, when the room is made; stationd keeps only the room's id
(``call_rooms.json`` in the data directory: consultation id → room id, validity and the key
that seals the round for the GP, :mod:`station.keys.room_seal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from hardware.video import (
    AUDIO_ONLY_REASONS,
    QUALITIES,
    AudioOnly,
    FrameSink,
    OverlayState,
    Quality,
)
from station.call.config import CallConfig, call_config_from_env
from station.call.engine import CallEngine, CallMedia
from station.call.errors import CallError, CallFinished, HubRefused
from station.call.hub import StationCredentials
from station.call.ice import IceServerConfig
from station.core.session import CallOutcome, SessionState, Transition
from station.daemon.errors import ApiError
from station.daemon.hardware import CALL_PARTS, MissingPart, refuse_if_missing
from station.errors import StationError
from station.i18n import N_
from station.keys.room_seal import RoomKeyWrap, RoomSealer, link_with_key, new_room_key
from station.storage.datadir import DataDir
from stationapi import models as m

__all__ = ["ROOMS_FILE", "CallController", "build_call_controller"]

_log = logging.getLogger(__name__)

#: Consultation id → hub room id (and until when its link works); no link, no personal data.
ROOMS_FILE: Final = DataDir.CALL_ROOMS

_CALL_STATES: Final = frozenset(
    {SessionState.WAITING_FOR_GP, SessionState.IN_CALL_ATTENDED, SessionState.IN_CALL_PRIVATE}
)


class CallController:
    """The call engine inside stationd; see the module docs."""

    def __init__(
        self,
        service: Any,
        engine: CallEngine | None,
        *,
        rooms_path: Path,
        unavailable: str | None = None,
        sink: FrameSink | None = None,
        hardware: Any = None,
        room_keys: Callable[[], RoomKeyWrap] | None = None,
    ) -> None:
        self._service = service
        #: Makes the wrap for room keys at rest (from the device secret), when first needed.
        self._room_keys_source = room_keys
        self._room_keys: RoomKeyWrap | None = None
        self.engine = engine
        #: The daemon's hardware link: which parts a call needs are missing now.
        self._hardware = hardware
        #: The screen the call draws on: its overlay follows the call, and a call's pictures
        #: leave it when the call ends (a locked station must not keep showing them).
        self.sink = sink
        self._overlay = OverlayState()
        self._rooms_path = rooms_path
        self._unavailable = unavailable or "no call configuration"
        self._consultation_id: str | None = None
        self._ending = False
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Settings from IT's configuration that arrived during a call: the next call's.
        self._pending: CallConfig | None = None
        service.session.subscribe(self._on_transition)

    # ------------------------------------------------------------------ configuration

    @property
    def next_config(self) -> CallConfig | None:
        """The configuration the next call starts with (None: calls are not available)."""
        if self.engine is None:
            return None
        return self._pending or self.engine.config

    def apply_settings(
        self,
        *,
        ice_servers: Sequence[IceServerConfig],
        relay_only: bool,
        language: Literal["da", "en"],
        connect_timeout_seconds: float | None = None,
    ) -> None:
        """Adopt IT's ICE servers, relay-only, language and connect timeout for the next call.

        A running call keeps its configuration (its re-dials too): nothing changes under
        a call; the settings wait and the next :meth:`start` takes them.
        """
        if self.engine is None:
            _log.info("call settings from the configuration kept aside: %s", self._unavailable)
            return
        base = self._pending or self.engine.config
        update: dict[str, Any] = {
            "ice_servers": tuple(ice_servers),
            "relay_only": relay_only,
            "language": language,
        }
        if connect_timeout_seconds is not None:
            update["connect_timeout_seconds"] = connect_timeout_seconds
        updated = base.model_copy(update=update)
        # model_copy skips validation; validate the result as a whole.
        updated = CallConfig.model_validate(updated.model_dump())
        if self.engine.active:
            self._pending = updated
        else:
            self.engine.config = updated
            self._pending = None

    def _take_pending(self, engine: CallEngine) -> None:
        if self._pending is not None and not engine.active:
            engine.config, self._pending = self._pending, None

    # ------------------------------------------------------------------ engine → session

    def admitted(self) -> None:
        """The GP admitted the station."""
        try:
            self._service.call_gp_admitted()
        except Exception as exc:
            _log.warning("GP admitted, but the session refused it: %s", type(exc).__name__)

    def ended(self, outcome: CallOutcome) -> None:
        """The engine's call is over: move the session on."""
        self._ending = True
        try:
            state = self._service.session.state
            if state in (SessionState.IN_CALL_ATTENDED, SessionState.IN_CALL_PRIVATE):
                self._service.call_ended(outcome)
            elif state is SessionState.WAITING_FOR_GP:
                # Staff are here and the GP never admitted the station: back to the list.
                self._service.session.cancel(f"call_{outcome.value}"[:40])
            self._set_consultation_status(outcome)
        except Exception as exc:
            _log.error("call ended, but the session refused it: %s", type(exc).__name__)
        finally:
            self._ending = False
            self._consultation_id = None
            self._clear_screen()

    def status(self, status: str, data: dict[str, Any]) -> None:
        """Pass the engine's status to the UIs' event stream, and to the surface's overlay."""
        self._service.publish_call_status(status, **data)
        overlay = _overlay_after(self._overlay, status, data)
        if overlay != self._overlay:
            self._overlay = overlay
            if self.sink is not None:
                self.sink.set_overlay(overlay)

    def _clear_screen(self) -> None:
        """The call is over: its pictures and its badges leave the screen."""
        self._overlay = OverlayState()
        if self.sink is None:
            return
        self.sink.clear("remote")
        self.sink.clear("self")
        self.sink.set_overlay(self._overlay)

    def _set_consultation_status(self, outcome: CallOutcome) -> None:
        consultation_id = self._consultation_id
        if consultation_id is None:
            return
        status = "ended" if self.engine is not None and self.engine.admitted else "booked"

        async def update() -> None:
            with contextlib.suppress(Exception):
                await self._service.db(
                    self._service.store.set_consultation_status, consultation_id, status
                )

        self._spawn(update())

    # ------------------------------------------------------------------ session → engine

    def _on_transition(self, transition: Transition) -> None:
        engine = self.engine
        if engine is None or not engine.active or self._ending:
            return
        if transition.to_state is SessionState.IN_CALL_PRIVATE:
            engine.set_private(True)
        elif transition.from_state is SessionState.IN_CALL_PRIVATE and (
            transition.to_state in _CALL_STATES
        ):
            engine.set_private(False)
        elif transition.to_state not in _CALL_STATES and transition.name != "call_ended":
            # Staff cancelled the call (or anything else left the call states): hang up.
            self._spawn(engine.hang_up())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Shutdown: hang up a running call."""
        if self.engine is not None:
            with contextlib.suppress(Exception):
                await self.engine.aclose()
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=2.0)

    # ------------------------------------------------------------------ rooms

    def _rooms(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._rooms_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_rooms(self, rooms: Mapping[str, Mapping[str, str]]) -> None:
        now = self._service.clock.now()
        # Only rooms whose link still works are worth keeping, and only with a wrapped key
        # (a room key in clear, from before the wrap, leaves the card here).
        kept = {
            cid: room
            for cid, room in rooms.items()
            if datetime.fromisoformat(room["valid_until"]) > now and "room_key_wrapped" in room
        }
        directory = self._rooms_path.parent
        fd, tmp = tempfile.mkstemp(prefix=".call_rooms.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(kept, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._rooms_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _known_room(self, consultation_id: str) -> str | None:
        room = self._rooms().get(consultation_id)
        if room is None or "room_key_wrapped" not in room:  # from before the key was wrapped
            return None
        if datetime.fromisoformat(room["valid_until"]) <= self._service.clock.now():
            return None
        return room["room_id"]

    def _wrap(self) -> RoomKeyWrap:
        if self._room_keys is None:
            if self._room_keys_source is None:
                raise ApiError(503, "calls_unavailable", "no device secret to wrap room keys")
            try:
                self._room_keys = self._room_keys_source()
            except StationError as exc:  # the OTP key unreadable, a bad secret file
                _log.error("room keys cannot be wrapped: %s", exc)
                raise ApiError(
                    503, "calls_unavailable", f"room keys cannot be wrapped: {exc}"
                ) from None
        return self._room_keys

    def _sealer(self, consultation_id: str) -> RoomSealer:
        """What seals this booking's round for the GP (the key in the GP link's fragment)."""
        wrapped = self._rooms()[consultation_id]["room_key_wrapped"]
        return RoomSealer(self._wrap().unwrap(wrapped, consultation_id))

    async def _create_room(self, consultation_id: str) -> m.CallRoomOut:
        engine = self._engine()
        consultation = await self._consultation(consultation_id)
        try:
            created = await engine.create_room(consultation.starts_at, consultation.ends_at)
        except CallError as exc:
            raise _api_error(exc) from None
        # The round goes to the hub sealed with a key only the GP link carries (its fragment):
        # see station.keys.room_seal. Kept with the room, wrapped under the device secret
        # (the file is wiped with the data; a copied card without the OTP key opens nothing).
        room_key = new_room_key()
        wrapped = await asyncio.to_thread(self._wrap().wrap, room_key, consultation_id)
        rooms = self._rooms()
        rooms[consultation_id] = {
            "room_id": created.room_id,
            "valid_until": created.valid_until.isoformat(),
            "room_key_wrapped": wrapped,
        }
        await asyncio.to_thread(self._save_rooms, rooms)
        return m.CallRoomOut(
            consultation_id=consultation_id,
            room_id=created.room_id,
            gp_url=link_with_key(created.gp_url, room_key),
            gp_code=created.gp_code,
            gp_code_url=created.gp_code_url,
            valid_from=created.valid_from,
            valid_until=created.valid_until,
        )

    async def _consultation(self, consultation_id: str) -> Any:
        try:
            return await self._service.db(self._service.store.get_consultation, consultation_id)
        except ApiError:
            raise
        except StationError as exc:
            raise ApiError(404, "not_found", str(exc), exc.user_message) from None

    def _engine(self) -> CallEngine:
        if self.engine is None:
            raise ApiError.unavailable(
                f"calls are not available: {self._unavailable}",
                N_("The station is not set up for video calls. Contact IT."),
            )
        return self.engine

    # ------------------------------------------------------------------ actions

    async def make_room(self, request: m.CallRoomRequest) -> m.CallRoomOut:
        """The GP link for a consultation (once; ``renew`` revokes the old one)."""
        engine = self._engine()
        existing = self._known_room(request.consultation_id)
        if existing is not None:
            if not request.renew:
                raise ApiError.conflict(
                    "a GP link was already issued for this consultation; renew=true replaces it",
                    N_("A link for the doctor has already been made for this appointment."),
                )
            if engine.active and engine.room_id == existing:
                raise ApiError.conflict(
                    "the call in this room is running", N_("The call is running. End it first.")
                )
            with contextlib.suppress(CallError):
                await engine.revoke_room(existing)
        return await self._create_room(request.consultation_id)

    async def start(self, request: m.CallStartRequest) -> m.CallStartOut:
        """Start the call; returns the room (and the GP link if it was made now)."""
        engine = self._engine()
        session = self._service.session
        cid = request.consultation_id
        if engine.active:
            raise ApiError.conflict("a call is already running", N_("A call is already running."))
        # Before anything reaches the hub: a call without camera or speakerphone cannot work.
        refuse_if_missing(self._hardware, CALL_PARTS, "call")
        # IT's configuration that arrived during the previous call applies from this one.
        self._take_pending(engine)
        if session.state not in (SessionState.PRE_CALL_CHECK, SessionState.WAITING_FOR_GP):
            raise ApiError.conflict(
                f"a call starts after the pre-call check, not in {session.state.value}",
                N_("Start the pre-call check for the appointment first."),
            )
        if session.appointment_id != cid:
            raise ApiError.conflict(
                "the pre-call check is for another consultation",
                N_("The pre-call check belongs to another appointment."),
            )
        consultation = await self._consultation(cid)
        if request.consultation_type and (
            request.consultation_type != consultation.consultation_type.value
        ):
            await self._service.db(
                self._service.store.update_consultation,
                cid,
                consultation_type=request.consultation_type,
            )
        created: m.CallRoomOut | None = None
        room_id = self._known_room(cid)
        if room_id is None:
            created = await self._create_room(cid)
            room_id = created.room_id
        if session.state is SessionState.PRE_CALL_CHECK:
            self._service.transition(session.check_passed)
        self._consultation_id = cid
        valid_until = datetime.fromisoformat(self._rooms()[cid]["valid_until"])
        await engine.start(
            room_id, request.residents, slot_ends_at=valid_until, seal=self._sealer(cid).seal
        )
        return m.CallStartOut(
            room_id=room_id,
            gp_url=created.gp_url if created else None,
            gp_code=created.gp_code if created else None,
            gp_code_url=created.gp_code_url if created else None,
            call=m.CallStatusOut.model_validate(engine.status()),
        )

    def _active(self) -> CallEngine:
        engine = self._engine()
        if not engine.active:
            raise ApiError.conflict("no call is running", N_("No call is running."))
        return engine

    def active_engine(self) -> CallEngine:
        """The engine of the running call; 409 when no call runs (503 without calls)."""
        return self._active()

    def call_status(self) -> m.CallStatusOut:
        """``GET /v1/call``: whether calls work here, and the running call (no personal data).

        Without calls only ``available``, ``reason`` and ``active`` are set (and sent).
        """
        if self.engine is None:
            return m.CallStatusOut(available=False, reason=self._unavailable, active=False)
        missing: Sequence[MissingPart] = getattr(self._hardware, "missing_parts", list)()
        return m.CallStatusOut.model_validate(
            {
                "available": True,
                **self.engine.status(),
                "missing": [part.part for part in missing if part.part in CALL_PARTS],
            }
        )


def _overlay_after(current: OverlayState, status: str, data: Mapping[str, Any]) -> OverlayState:
    """The surface's overlay after one of the engine's status events."""
    if status == "private":
        return replace(current, private_call=True)
    if status == "staff_present":
        return replace(current, private_call=False)
    if status == "reconnecting":
        return replace(current, quality="reconnecting")
    if status == "controls" and "audio_only" in data:
        reason = data.get("audio_only_reason")
        if data["audio_only"] and reason in AUDIO_ONLY_REASONS:
            return replace(current, audio_only=cast(AudioOnly, reason))
        return replace(current, audio_only=None)
    if status == "quality":
        level = data.get("level")
        quality = "reconnecting" if level == "lost" else level
        if quality in QUALITIES:
            return replace(current, quality=cast(Quality, quality))
    return current


def _api_error(exc: CallError) -> ApiError:
    if isinstance(exc, HubRefused):
        return ApiError(409 if exc.status == 409 else 422, exc.hub_code, str(exc), exc.user_message)
    if isinstance(exc, CallFinished):
        return ApiError(409, exc.reason, str(exc), exc.user_message)
    return ApiError(503, exc.code, str(exc), exc.user_message)


def build_call_controller(
    service: Any,
    hardware: Any,
    *,
    data_dir: Path,
    sink: Callable[[], FrameSink],
    config: CallConfig | None = None,
    environ: Mapping[str, str] | None = None,
    credentials: StationCredentials | None = None,
    room_keys: Callable[[], RoomKeyWrap] | None = None,
) -> CallController:
    """The controller for a daemon: an engine when calls are configured and hardware exists.

    ``config`` defaults to :func:`station.call.config.call_config_from_env`. ``sink`` makes
    the frame sink the call draws into, and is called only when calls are available (no
    hub, no screen to prepare); whatever it raises (a screen that cannot be prepared) is
    raised here: stationd does not start a call engine that nobody could see.
    """
    rooms_path = DataDir(data_dir).call_rooms
    media: CallMedia | None = getattr(hardware, "hw", None)
    if config is None:
        try:
            config = call_config_from_env(environ)
        except CallError as exc:
            _log.error("calls disabled: %s", exc)
            return CallController(service, None, rooms_path=rooms_path, unavailable=str(exc))
    if config is None:
        return CallController(service, None, rooms_path=rooms_path, unavailable="no hub configured")
    if media is None:
        return CallController(
            service, None, rooms_path=rooms_path, unavailable="stationd runs without hardware"
        )
    if config.station_token is None and credentials is None:
        # No provisioning agent (so no identity to sign in with) and no legacy token: every
        # request to the hub would be refused. Calls are off, and the reason is reported.
        reason = "no station credentials: not enrolled with a hub, and no legacy station token"
        _log.error("calls disabled: %s", reason)
        return CallController(service, None, rooms_path=rooms_path, unavailable=reason)
    frame_sink = sink()
    controller = CallController(
        service,
        None,
        rooms_path=rooms_path,
        sink=frame_sink,
        hardware=hardware,
        room_keys=room_keys,
    )
    # The station's identity signs in to the rendezvous; a configured legacy shared token
    # (a hub IT has not migrated yet) is used instead when present.
    engine_credentials = credentials if config.station_token is None else None
    controller.engine = CallEngine(
        config, media, frame_sink, controller, credentials=engine_credentials
    )
    return controller
