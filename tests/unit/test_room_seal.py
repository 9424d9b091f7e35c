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
    sealer = RoomSealer(key, "r1")
    box = sealer.seal("waiting", ROUND)
    assert box.startswith("v1.") and "Ingrid" not in box and "Stue" not in box
    assert RoomSealer(key, "r1").open("waiting", box) == ROUND
    # The hostile hub's moves: the round passed off as the current resident, a box from
    # another room (another key), one changed byte.
    with pytest.raises(SealError):
        sealer.open("current_resident", box)
    with pytest.raises(SealError):
        RoomSealer(new_room_key(), "r2").open("waiting", box)
    flipped = box[:-3] + ("A" if box[-3] != "A" else "B") + box[-2:]
    with pytest.raises(SealError):
        sealer.open("waiting", flipped)
    with pytest.raises(SealError):
        sealer.open("waiting", "v1.AAAA")


def test_every_box_has_its_own_nonce() -> None:
    sealer = RoomSealer(new_room_key(), "r1")
    assert sealer.seal("waiting", ROUND) != sealer.seal("waiting", ROUND)


def test_the_key_rides_in_the_links_fragment_after_the_token() -> None:
    key = new_room_key()
    link = link_with_key("https://hub.example/gp/#tok_en-123", key)
    assert link == f"https://hub.example/gp/#tok_en-123.{encode_room_key(key)}"
    assert decode_room_key(link.rsplit(".", 1)[1]) == key
    assert "secret" in repr(RoomSealer(key, "r1")) and encode_room_key(key) not in repr(
        RoomSealer(key, "r1")
    )
    for bad in ("https://hub.example/gp/", "https://hub.example/gp/#a.b"):
        with pytest.raises(SealError):
            link_with_key(bad, key)
    for bad in ("", "short", encode_room_key(key) + "A", "+" * 43):
        with pytest.raises(SealError):
            decode_room_key(bad)
    with pytest.raises(SealError):
        RoomSealer(b"short", "r1")
