"""The rendezvous: rooms for booked calls, offer/answer relay, and who may do what when.

Over 600 lines for one job, the rules of a room for both its sides: the station's and the GP's
halves of each exchange change the same record by compare-and-set, so they stay side by side.

One room serves one booked call (a consultation or a round). The station creates it and gets
the GP's link; the station posts its complete offer (the station is always the offerer) and
the GP page sees "the station is waiting"; only when the GP admits the station is the offer
delivered, to that one browser; the page answers; either side can end. If media stops, the
station re-dials by posting a new offer *generation* to the same room, and the admitted page
replaces its peer connection.

Every change is a compare-and-set on the room's version followed by a wake-up through the
:class:`~hub.notifier.RoomNotifier`, so long-polls return as soon as something happens and no
request ever loops on the database.

Nothing logged here names a resident or carries a token: room ids are random and say nothing.
Who is waiting reaches the hub only sealed for the GP page (:class:`hub.models.SealedBox`); the
hub never holds the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hub.codes import CodeBook, CodeRefused
from hub.errors import (
    BookingInvalid,
    CallEnded,
    GenerationStale,
    InvalidSessionDescription,
    LinkExpired,
    LinkNotYetValid,
    LinkRevoked,
    NotAdmittedBrowser,
    RoomAlreadyAdmitted,
    RoomStoreError,
    StationNotWaiting,
    TooManyCandidates,
    UnknownLink,
    UnknownRoom,
)
from hub.models import (
    FINAL_STATES,
    CandidateBody,
    CurrentResidentNotice,
    GpLanguage,
    GpRoomView,
    Notice,
    OfferView,
    PrivateNotice,
    RoomCreate,
    RoomState,
    SealedBox,
    SessionDescriptionView,
    StaffPresentNotice,
    StationRoomView,
)
from hub.notifier import RoomNotifier
from hub.sdp import validate_candidate, validate_session_description
from hub.settings import HubSettings
from hub.station_auth import SHARED_TOKEN_STATION, turn_credential
from hub.store import RoomRecord, RoomStore
from station.core.clock import Clock

__all__ = ["GpAccess", "NewRoom", "Rendezvous", "hash_secret"]

_log = logging.getLogger(__name__)

_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")
_MAX_BOOKING = timedelta(hours=12)
_MAX_AHEAD = timedelta(days=400)
_CAS_ATTEMPTS = 8


def hash_secret(secret: str) -> bytes:
    """SHA-256 of a link token or GP session: what the database keeps instead of the secret.

    The secrets carry 256 (token) or 192 (session) random bits, so a plain hash is enough: no
    salt or slow KDF is needed against guessing.
    """
    return hashlib.sha256(secret.encode("ascii")).digest()


@dataclass(frozen=True, slots=True)
class NewRoom:
    """A created room and its GP link (the only time the token exists outside the GP's mail)."""

    record: RoomRecord
    gp_url: str
    #: The short code for ``/kode`` (``ABCD-EFGH``), living no longer than the link.
    gp_code: str = ""


@dataclass(frozen=True, slots=True)
class GpAccess:
    """A room as reached through a GP link, and whether the caller is the admitted browser."""

    record: RoomRecord
    is_admitted_browser: bool


class Rendezvous:
    """The rendezvous service; the HTTP layer (:mod:`hub.app`) is a thin shell around it."""

    def __init__(
        self, settings: HubSettings, store: RoomStore, notifier: RoomNotifier, clock: Clock
    ) -> None:
        self._settings = settings
        self._store = store
        self._notifier = notifier
        self._clock = clock
        self.codes = CodeBook()

    @property
    def store(self) -> RoomStore:
        """The room store (for the app's lifespan and tests)."""
        return self._store

    # -- station side -----------------------------------------------------------------------

    async def create_room(self, request: RoomCreate, station_id: str) -> NewRoom:
        """A room for one booked appointment or round, owned by ``station_id``."""
        now = self._clock.now()
        starts_at, ends_at = request.starts_at, request.ends_at
        if ends_at <= starts_at:
            raise BookingInvalid("appointment must end after it starts")
        if ends_at - starts_at > _MAX_BOOKING:
            raise BookingInvalid("appointment longer than 12 hours")
        if starts_at - now > _MAX_AHEAD:
            raise BookingInvalid("appointment more than 400 days ahead")
        valid_from = starts_at - self._settings.link_opens_before_start
        valid_until = max(starts_at + self._settings.link_closes_after_start, ends_at)
        if valid_until <= now:
            raise BookingInvalid("appointment is already over")
        token = secrets.token_urlsafe(32)  # 256 random bits
        record = RoomRecord(
            room_id=secrets.token_hex(12),
            token_hash=hash_secret(token),
            starts_at=starts_at,
            ends_at=ends_at,
            valid_from=valid_from,
            valid_until=valid_until,
            created_at=now,
            language=request.language,
            state=RoomState.BOOKED,
            station_id=station_id,
        )
        await self._store.insert(record)
        _log.info(
            "room %s created for a booking starting %s", record.room_id, starts_at.isoformat()
        )
        query = "?lang=en" if request.language is GpLanguage.EN else ""
        # The token travels in the URL *fragment*: browsers never send it to a server, so it
        # stays out of access logs, proxies and Referer headers; the page sends it as a header.
        gp_url = f"{self._settings.public_base_url}/gp/{query}#{token}"
        code = self.codes.issue(record.room_id, gp_url, record.valid_until)
        return NewRoom(record=record, gp_url=gp_url, gp_code=code)

    async def redeem_code(self, typed: str, address: str) -> str:
        """The GP link behind a short code typed at ``/kode`` (see :mod:`hub.codes`)."""
        room_id, gp_url = self.codes.redeem(typed, address, self._clock.now())
        record = await self._store.get(room_id)
        if record is None or record.state in FINAL_STATES or record.state is RoomState.ADMITTED:
            self.codes.forget_room(room_id)
            raise CodeRefused("unknown")
        return gp_url

    async def check_owner(self, room_id: str, station_id: str) -> None:
        """:class:`UnknownRoom` unless ``station_id`` created the room: another station learns
        nothing, not even whether the room exists. Rooms made before rooms had owners belong
        to the legacy shared token."""
        record = await self._store.get(room_id)
        owner = None if record is None else (record.station_id or SHARED_TOKEN_STATION)
        if owner is None or not hmac.compare_digest(owner, station_id):
            raise UnknownRoom()

    def turn_servers(self, record: RoomRecord) -> list[dict[str, object]]:
        """This room's TURN servers with a credential valid until the link closes (+ margin)."""
        secret = self._settings.turn_secret
        if secret is None or not self._settings.turn_urls:
            return []
        expires = record.valid_until + self._settings.turn_credential_margin
        username, password = turn_credential(
            secret.get_secret_value().encode("utf-8"), record.room_id, expires
        )
        return [
            {"urls": list(self._settings.turn_urls), "username": username, "credential": password}
        ]

    async def station_room(self, room_id: str) -> RoomRecord:
        """The room for the station (final rooms too, so it can see how the call ended)."""
        record = await self._store.get(room_id)
        if record is None:
            raise UnknownRoom()
        return await self._expire_if_due(record)

    async def wait_station_room(self, room_id: str, since: int, wait_seconds: float) -> RoomRecord:
        """Long-poll: the room once its version exceeds ``since``, or as it is after the wait."""
        deadline = self._deadline(wait_seconds)
        while True:
            waiter = self._notifier.listen(room_id)
            record = await self.station_room(room_id)
            remaining = deadline - asyncio.get_running_loop().time()
            if record.version > since or record.state in FINAL_STATES or remaining <= 0:
                return record
            await waiter.wait(remaining)

    async def post_offer(self, room_id: str, sdp: str, waiting: SealedBox | None) -> RoomRecord:
        """Store the station's complete offer as a new generation; the station is now waiting."""
        validate_session_description(sdp, "offer", max_bytes=self._settings.max_sdp_bytes)

        def change(record: RoomRecord) -> RoomRecord:
            _raise_if_final(record)
            return replace(
                record,
                state=RoomState.WAITING if record.state is RoomState.BOOKED else record.state,
                offer_generation=record.offer_generation + 1,
                offer_sdp=sdp,
                answer_sdp=None,
                waiting=waiting if waiting is not None else record.waiting,
            )

        record = await self._update_station_room(room_id, change)
        _log.info("room %s: station offer generation %d", room_id, record.offer_generation)
        return record

    async def wait_answer(
        self, room_id: str, generation: int, wait_seconds: float
    ) -> RoomRecord | None:
        """Long-poll for the GP's answer to offer ``generation``; None when the time is up."""
        deadline = self._deadline(wait_seconds)
        while True:
            waiter = self._notifier.listen(room_id)
            record = await self.station_room(room_id)
            _raise_if_final(record)
            if record.offer_generation != generation:
                raise GenerationStale(f"offer generation {generation} is not the current one")
            if record.answer_generation == generation and record.answer_sdp is not None:
                return record
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            await waiter.wait(remaining)

    async def post_notice(self, room_id: str, notice: Notice) -> RoomRecord:
        """The hub's copy of a data-channel notice (the fallback path to the GP page)."""

        def change(record: RoomRecord) -> RoomRecord:
            _raise_if_final(record)
            if isinstance(notice, PrivateNotice):
                return replace(record, private=True)
            if isinstance(notice, StaffPresentNotice):
                return replace(record, private=False)
            assert isinstance(notice, CurrentResidentNotice)
            return replace(record, current_resident=SealedBox(sealed=notice.sealed))

        record = await self._update_station_room(room_id, change)
        _log.info("room %s: station notice %s", room_id, notice.type)
        return record

    async def end_call(self, room_id: str) -> RoomRecord:
        """The station ended the call (idempotent)."""
        return await self._finish_station_room(room_id, RoomState.ENDED, "station_ended")

    async def revoke(self, room_id: str) -> RoomRecord:
        """The appointment was cancelled: the link stops working (idempotent)."""
        return await self._finish_station_room(room_id, RoomState.REVOKED, "revoked")

    async def gp_candidates(self, room_id: str, generation: int) -> list[dict[str, object]]:
        """The GP's trickled candidates for one offer generation (for the station)."""
        await self.station_room(room_id)
        texts = await self._store.gp_candidates(room_id, generation)
        return [json.loads(text) for text in texts]

    async def station_view(self, record: RoomRecord) -> StationRoomView:
        """What the station is shown of a room."""
        answer = None
        if record.answer_sdp is not None and record.answer_generation == record.offer_generation:
            answer = SessionDescriptionView(
                generation=record.answer_generation, type="answer", sdp=record.answer_sdp
            )
        # Counted after ``record`` was read, so the count may be newer than ``version``,
        # never older: a station that sees a candidate under the old version just polls
        # again and returns at once, while the reverse order could lose a wake-up.
        count = (
            await self._store.count_gp_candidates(record.room_id, record.offer_generation)
            if record.state is RoomState.ADMITTED
            else 0
        )
        admitted = record.state is RoomState.ADMITTED
        seen_ago = None
        if admitted and record.gp_seen_at is not None:
            seen_ago = max(0.0, (self._clock.now() - record.gp_seen_at).total_seconds())
        return StationRoomView(
            room_id=record.room_id,
            state=record.state,
            version=record.version,
            offer_generation=record.offer_generation,
            answer=answer,
            gp_candidate_count=count,
            gp_admitted=admitted,
            end_reason=record.end_reason,
            gp_left=admitted and record.gp_left_at is not None,
            gp_seen_seconds_ago=None if seen_ago is None else round(seen_ago, 1),
            ice_servers=[] if record.state in FINAL_STATES else self.turn_servers(record),
        )

    # -- GP side ----------------------------------------------------------------------------

    async def gp_room(
        self, token: str | None, session: str | None, *, contact: bool = True
    ) -> GpAccess:
        """The room behind a GP link, if the link is valid now.

        ``contact``: this is a new request from the page, so the admitted page is there now
        (seen, and back if it had said goodbye). A long-poll re-reading the room after a
        wake-up is not: the page may have been closed while the request was held (its own
        goodbye wakes it), and must not be taken for a page that came back.
        """
        record = await self._gp_lookup(token)
        admitted = _session_matches(record, session)
        if admitted and contact:
            now = self._clock.now()
            if record.gp_left_at is not None:
                record = await self._gp_back(record.room_id, session, now)
            else:
                await self._store.touch_gp_session(record.room_id, now)
        return GpAccess(record=record, is_admitted_browser=admitted)

    async def _gp_back(self, room_id: str, session: str | None, now: datetime) -> RoomRecord:
        """The page that said it left is here again (a reload): the station is told."""

        def change(current: RoomRecord) -> RoomRecord:
            if current.state in FINAL_STATES or not _session_matches(current, session):
                return current
            return replace(current, gp_left_at=None, gp_seen_at=now)

        record = await self._update(room_id, change)
        _log.info("room %s: the GP page is back", room_id)
        return record

    async def wait_gp_room(
        self, token: str | None, session: str | None, since: int, wait_seconds: float
    ) -> GpAccess:
        """Long-poll for the GP page: returns when the room changes, ends, or time is up."""
        deadline = self._deadline(wait_seconds)
        access = await self.gp_room(token, session)
        room_id = access.record.room_id
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if access.record.version > since or remaining <= 0:
                return access
            waiter = self._notifier.listen(room_id)
            # Read again after listening, so a change in between cannot be missed.
            access = await self.gp_room(token, session, contact=False)
            if access.record.version > since:
                return access
            await waiter.wait(remaining)
            access = await self.gp_room(token, session, contact=False)

    async def admit(self, token: str | None, session: str | None) -> tuple[str, RoomRecord]:
        """The GP admits the waiting station; returns this browser's session and the room.

        Only one browser can be in the call: a second one is refused while the first is
        present (it polls at least every ``long_poll_max_seconds``), and — whatever its
        silence — while its answer to the station's current offer stands: that call is still
        up as far as anyone can tell, and a holder of the GP link must not take it over by
        waiting out a quiet minute (issue 14, item 4). When the first browser is really gone
        (a crashed laptop), the station's media watchdog re-dials with a fresh offer it does
        not answer; once it has also been silent longer than the lease, a new browser may
        take over and answers that offer. A page that said goodbye is replaced at once.
        """
        record = await self._gp_lookup(token)
        now = self._clock.now()
        if record.state is RoomState.BOOKED:
            raise StationNotWaiting()
        if record.state is RoomState.ADMITTED and _session_matches(record, session):
            await self._store.touch_gp_session(record.room_id, now)
            assert session is not None
            return session, record  # a repeated click, or a reload of the admitted page
        new_session = secrets.token_urlsafe(24)

        def change(current: RoomRecord) -> RoomRecord:
            _raise_for_gp(current, now)
            if current.state is RoomState.BOOKED:
                raise StationNotWaiting()
            if current.state is RoomState.ADMITTED:
                seen = current.gp_seen_at or current.created_at
                left = current.gp_left_at is not None
                # The admitted browser's answer to the station's current offer: in the call.
                in_call = (
                    current.offer_generation > 0
                    and current.answer_generation == current.offer_generation
                    and current.answer_sdp is not None
                )
                if not left and (in_call or now - seen < self._settings.gp_session_lease):
                    raise RoomAlreadyAdmitted()
                _log.info("room %s: admitted browser gone, another takes over", current.room_id)
            return replace(
                current,
                state=RoomState.ADMITTED,
                gp_session_hash=hash_secret(new_session),
                gp_seen_at=now,
                gp_left_at=None,
            )

        updated = await self._update(record.room_id, change)
        self.codes.forget_room(updated.room_id)  # the GP is in: the code has done its job
        _log.info("room %s: GP admitted the station", updated.room_id)
        return new_session, updated

    async def gp_answer(
        self, token: str | None, session: str | None, generation: int, sdp: str
    ) -> RoomRecord:
        """The admitted page's answer to offer ``generation``."""
        access = await self._admitted(token, session)
        answer = validate_session_description(sdp, "answer", max_bytes=self._settings.max_sdp_bytes)
        now = self._clock.now()

        def change(current: RoomRecord) -> RoomRecord:
            _raise_for_gp(current, now)
            if not _session_matches(current, session):
                raise NotAdmittedBrowser()
            if generation != current.offer_generation or current.answer_sdp is not None:
                raise GenerationStale(f"offer generation {generation} is not awaiting an answer")
            assert current.offer_sdp is not None
            offer = validate_session_description(
                current.offer_sdp, "offer", max_bytes=self._settings.max_sdp_bytes
            )
            if offer.media_kinds != answer.media_kinds:
                raise InvalidSessionDescription("answer's media sections do not match the offer")
            return replace(current, answer_generation=generation, answer_sdp=sdp, gp_seen_at=now)

        updated = await self._update(access.record.room_id, change)
        _log.info("room %s: GP answered generation %d", updated.room_id, generation)
        return updated

    async def gp_candidate(
        self, token: str | None, session: str | None, body: CandidateBody
    ) -> None:
        """Keep one trickled candidate from the admitted page, for the station to fetch.

        The page sends its answer only once ICE gathering is complete (or after a bounded
        wait), so for today's station (aiortc, which cannot use trickled candidates well) these
        are a late-candidate fallback and the way to trickle once the call engine supports it.
        """
        access = await self._admitted(token, session)
        validate_candidate(body.candidate)
        record = access.record
        if body.generation != record.offer_generation:
            raise GenerationStale(f"offer generation {body.generation} is not the current one")
        added = await self._store.add_gp_candidate(
            record.room_id,
            body.generation,
            body.model_dump_json(exclude={"generation"}),
            limit=self._settings.max_gp_candidates,
        )
        if not added:
            raise TooManyCandidates()
        # A version bump wakes the station's long-poll so it can fetch the candidate.
        await self._update(record.room_id, lambda current: current)

    async def gp_leave(self, token: str | None, session: str | None) -> RoomRecord:
        """The admitted page is being closed (its ``pagehide``): the GP left, maybe for good.

        Not an end: a reload comes back within seconds (:meth:`gp_room` clears the mark), and
        the GP may open the link again in a new tab, which may then admit the station at once
        (no lease to wait out). The version bump wakes the station's long-poll, so the station
        knows even when its data channel did not carry the page's goodbye.
        """
        record = await self._gp_lookup(token)
        if record.state is not RoomState.ADMITTED or not _session_matches(record, session):
            raise NotAdmittedBrowser()
        now = self._clock.now()

        def change(current: RoomRecord) -> RoomRecord:
            _raise_for_gp(current, now)
            if not _session_matches(current, session):
                raise NotAdmittedBrowser()
            return replace(current, gp_left_at=now)

        updated = await self._update(record.room_id, change)
        _log.info("room %s: the GP page was closed", updated.room_id)
        return updated

    async def gp_hangup(self, token: str | None, session: str | None) -> RoomRecord:
        """The admitted page ended the call."""
        access = await self._admitted(token, session)
        record = await self._finish(access.record.room_id, RoomState.ENDED, "gp_hung_up")
        return record

    def gp_view(self, access: GpAccess) -> GpRoomView:
        """What the GP page is shown of a room.

        The offer goes only to the admitted browser and only while it awaits an answer; who
        is waiting is shown while the station waits, and afterwards only to the admitted
        browser.
        """
        record = access.record
        admitted_here = access.is_admitted_browser and record.state is RoomState.ADMITTED
        # The admitted page said it was closed: another page with the link (the GP opening
        # it again) sees the station waiting, as before the first admission, and may admit.
        vacant = (
            record.state is RoomState.ADMITTED
            and not admitted_here
            and record.gp_left_at is not None
        )
        admitted_elsewhere = record.state is RoomState.ADMITTED and not admitted_here and not vacant
        offer = None
        if admitted_here and record.offer_sdp is not None and record.answer_sdp is None:
            offer = OfferView(
                generation=record.offer_generation, type="offer", sdp=record.offer_sdp
            )
        show_people = record.state is RoomState.WAITING or admitted_here or vacant
        return GpRoomView(
            state=RoomState.WAITING if vacant else record.state,
            version=record.version,
            starts_at=record.starts_at,
            ends_at=record.ends_at,
            valid_until=record.valid_until,
            language=record.language,
            waiting=record.waiting if show_people else None,
            current_resident=record.current_resident if admitted_here else None,
            private=record.private if admitted_here else False,
            admitted_by_you=admitted_here,
            admitted_elsewhere=admitted_elsewhere,
            offer=offer,
            ice_servers=[
                *[server.model_dump(exclude_none=True) for server in self._settings.gp_ice_servers],
                # The call's TURN credential only for the admitted browser.
                *(self.turn_servers(record) if admitted_here else []),
            ],
            media_watchdog_seconds=self._settings.media_watchdog_seconds,
        )

    # -- housekeeping -----------------------------------------------------------------------

    async def purge(self) -> int:
        """Expire rooms whose link has closed (their personal data goes) and delete old ones."""
        now = self._clock.now()
        expired = 0
        for room_id in await self._store.active_room_ids_past(now):
            record = await self._store.get(room_id)
            if record is not None and record.state not in FINAL_STATES:
                await self._finish(room_id, RoomState.EXPIRED, "expired")
                expired += 1
        deleted = await self._store.delete_finished(now - self._settings.finished_room_retention)
        if expired or deleted:
            _log.info("purge: %d rooms expired, %d finished rooms deleted", expired, deleted)
        return expired

    # -- internals --------------------------------------------------------------------------

    def _deadline(self, wait_seconds: float) -> float:
        wait_seconds = max(0.0, min(wait_seconds, self._settings.long_poll_max_seconds))
        return asyncio.get_running_loop().time() + wait_seconds

    async def _gp_lookup(self, token: str | None) -> RoomRecord:
        if token is None or not _TOKEN_SHAPE.fullmatch(token):
            raise UnknownLink()
        record = await self._store.find_by_token_hash(hash_secret(token))
        if record is None:
            raise UnknownLink()
        record = await self._expire_if_due(record)
        _raise_for_gp(record, self._clock.now())
        return record

    async def _admitted(self, token: str | None, session: str | None) -> GpAccess:
        access = await self.gp_room(token, session)
        if access.record.state is not RoomState.ADMITTED or not access.is_admitted_browser:
            raise NotAdmittedBrowser()
        return access

    async def _expire_if_due(self, record: RoomRecord) -> RoomRecord:
        if record.state not in FINAL_STATES and self._clock.now() > record.valid_until:
            return await self._finish(record.room_id, RoomState.EXPIRED, "expired")
        return record

    async def _update_station_room(
        self, room_id: str, change: Callable[[RoomRecord], RoomRecord]
    ) -> RoomRecord:
        await self.station_room(room_id)  # expires it first if due
        return await self._update(room_id, change)

    async def _finish_station_room(self, room_id: str, state: RoomState, reason: str) -> RoomRecord:
        record = await self.station_room(room_id)
        if record.state in FINAL_STATES:
            return record
        return await self._finish(room_id, state, reason)

    async def _finish(self, room_id: str, state: RoomState, reason: str) -> RoomRecord:
        """Make a room final and drop everything personal or call-specific it held."""
        now = self._clock.now()

        def change(record: RoomRecord) -> RoomRecord:
            if record.state in FINAL_STATES:
                return record
            return replace(
                record,
                state=state,
                end_reason=reason,
                finished_at=now,
                waiting=None,
                current_resident=None,
                private=False,
                offer_sdp=None,
                answer_sdp=None,
                gp_session_hash=None,
                gp_left_at=None,
            )

        record = await self._update(room_id, change)
        self.codes.forget_room(room_id)
        await self._store.delete_gp_candidates(room_id)
        _log.info("room %s: %s (%s)", room_id, state.value, reason)
        return record

    async def _update(self, room_id: str, change: Callable[[RoomRecord], RoomRecord]) -> RoomRecord:
        """Read, change, compare-and-set with a version bump, then wake the room's waiters."""
        for _ in range(_CAS_ATTEMPTS):
            current = await self._store.get(room_id)
            if current is None:
                raise UnknownRoom()
            changed = change(current)
            if changed is current and current.state in FINAL_STATES:
                return current  # nothing to do on a finished room
            updated = replace(changed, version=current.version + 1)
            if await self._store.replace(updated, expected_version=current.version):
                await self._notifier.publish(room_id)
                return updated
        raise RoomStoreError("room changed too often to update")


def _session_matches(record: RoomRecord, session: str | None) -> bool:
    if session is None or record.gp_session_hash is None or len(session) > 128:
        return False
    try:
        candidate = hash_secret(session)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(candidate, record.gp_session_hash)


def _raise_if_final(record: RoomRecord) -> None:
    if record.state is RoomState.ENDED:
        raise CallEnded()
    if record.state is RoomState.REVOKED:
        raise LinkRevoked()
    if record.state is RoomState.EXPIRED:
        raise LinkExpired()


def _raise_for_gp(record: RoomRecord, now: datetime) -> None:
    _raise_if_final(record)
    if now > record.valid_until:
        raise LinkExpired()
    if now < record.valid_from:
        raise LinkNotYetValid(record.valid_from)
