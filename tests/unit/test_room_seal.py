"""The round sealed for the GP page: only the key in the GP link opens it, nothing else does."""

from __future__ import annotations

import pytest

from station.keys.crypto import SealError
from station.keys.room_seal import (
    RoomSealer,
    decode_room_key,
    encode_room_key,
    link_with_key,
    new_room_key,
)

ROUND = {"residents": [{"display_name": "Ingrid Sørensen", "room": "Stue 14B"}]}


def test_a_box_opens_with_its_rooms_key_and_purpose_only() -> None:
    key = new_room_key()
    sealer = RoomSealer(key)
    box = sealer.seal("waiting", ROUND)
    assert box.startswith("v1.") and "Ingrid" not in box and "Stue" not in box
    assert RoomSealer(key).open("waiting", box) == ROUND
    # The hostile hub's moves: the round passed off as the current resident, a box from
    # another room (another key), one changed byte.
    with pytest.raises(SealError):
        sealer.open("current_resident", box)
    with pytest.raises(SealError):
        RoomSealer(new_room_key()).open("waiting", box)
    flipped = box[:-3] + ("A" if box[-3] != "A" else "B") + box[-2:]
    with pytest.raises(SealError):
        sealer.open("waiting", flipped)
    with pytest.raises(SealError):
        sealer.open("waiting", "v1.AAAA")


def test_every_box_has_its_own_nonce() -> None:
    sealer = RoomSealer(new_room_key())
    assert sealer.seal("waiting", ROUND) != sealer.seal("waiting", ROUND)


def test_the_key_rides_in_the_links_fragment_after_the_token() -> None:
    key = new_room_key()
    link = link_with_key("https://hub.example/gp/#tok_en-123", key)
    assert link == f"https://hub.example/gp/#tok_en-123.{encode_room_key(key)}"
    assert decode_room_key(link.rsplit(".", 1)[1]) == key
    assert "secret" in repr(RoomSealer(key)) and encode_room_key(key) not in repr(RoomSealer(key))
    for bad in ("https://hub.example/gp/", "https://hub.example/gp/#a.b"):
        with pytest.raises(SealError):
            link_with_key(bad, key)
    for bad in ("", "short", encode_room_key(key) + "A", "+" * 43):
        with pytest.raises(SealError):
            decode_room_key(bad)
    with pytest.raises(SealError):
        RoomSealer(b"short")


def test_the_largest_round_the_station_accepts_fits_the_hubs_limits() -> None:
    # Bad input loses nothing: whatever the staff UI may send (stationapi's WaitingResident,
    # MAX_RESIDENTS of them) must reach the GP page through the hub, sealed.
    from hub.models import OfferBody
    from hub.settings import HubSettings
    from station.core.waiting_room import MAX_RESIDENTS, WaitingInfo, WaitingResident

    widest = "😀"  # 4 bytes in UTF-8, the worst case per character
    fields = WaitingResident.model_fields
    limit = {
        name: next(m.max_length for m in fields[name].metadata if hasattr(m, "max_length"))
        for name in ("display_name", "room", "reason")
    }
    resident = WaitingResident(
        display_name=widest * limit["display_name"],
        birth_date="1931-04-02",  # type: ignore[arg-type]
        room=widest * limit["room"],
        reason=widest * limit["reason"],
    )
    worst = WaitingInfo(residents=[resident] * MAX_RESIDENTS)
    box = RoomSealer(new_room_key()).seal(
        "waiting", {"residents": [r.for_hub() for r in worst.residents]}
    )
    sdp = "v=0\r\n" + "a=x\r\n" * 1200  # a Chromium-sized offer, ~6 kB
    body = OfferBody.model_validate({"type": "offer", "sdp": sdp, "waiting": {"sealed": box}})
    assert len(body.model_dump_json()) < HubSettings.model_fields["max_body_bytes"].default


def test_room_keys_at_rest_open_only_with_the_device_secret_and_their_booking() -> None:
    from station.keys.room_seal import RoomKeyWrap

    secret = bytes(range(32))
    key = new_room_key()
    wrap = RoomKeyWrap(secret)
    wrapped = wrap.wrap(key, "booking-1")
    assert wrapped.startswith("w1.") and encode_room_key(key) not in wrapped
    assert wrap.wrap(key, "booking-1") != wrapped  # a fresh nonce each time
    assert RoomKeyWrap(secret).unwrap(wrapped, "booking-1") == key
    for opener, booking in ((RoomKeyWrap(bytes(32)), "booking-1"), (wrap, "booking-2")):
        with pytest.raises(SealError):
            opener.unwrap(wrapped, booking)
    tampered = wrapped[:-2] + ("AA" if not wrapped.endswith("AA") else "BB")
    for bad in (tampered, "v1." + wrapped[3:], "w1.%%%", "w1."):
        with pytest.raises(SealError):
            wrap.unwrap(bad, "booking-1")
    with pytest.raises(SealError):
        RoomKeyWrap(b"short")
    with pytest.raises(SealError):
        wrap.wrap(b"x" * 16, "booking-1")
    assert "secret" in repr(wrap)
