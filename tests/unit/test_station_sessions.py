"""The rendezvous session tokens (hub/station_auth.py): expiry, tampering, another key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.station_auth import SessionTokens, turn_credential

STATION = "abcdefghijklmnopqrstuvwx"


def test_a_token_holds_for_its_station_until_it_expires() -> None:
    tokens = SessionTokens(b"k" * 32, timedelta(minutes=15))
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    token, expires = tokens.issue(STATION, now)
    assert expires == now + timedelta(minutes=15)
    assert tokens.verify(token, now + timedelta(minutes=14)) == STATION
    assert tokens.verify(token, now + timedelta(minutes=15)) is None  # expired


def test_tampered_tokens_and_other_hubs_tokens_are_refused() -> None:
    tokens = SessionTokens(b"k" * 32, timedelta(minutes=15))
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    token = tokens.issue(STATION, now)[0]
    version, station, expires, mac = token.split(".")
    other_station = "zyxwvutsrqponmlkjihgfedc"
    assert tokens.verify(f"{version}.{other_station}.{expires}.{mac}", now) is None
    assert tokens.verify(f"{version}.{station}.{int(expires) + 3600}.{mac}", now) is None
    assert tokens.verify(token + "x", now) is None
    assert SessionTokens(b"j" * 32, timedelta(minutes=15)).verify(token, now) is None
    for garbage in ("", "v1", "v1...", "v2." + token[3:], "é" * 10, "v1." + "a" * 300):
        assert tokens.verify(garbage, now) is None


def test_turn_credential_is_coturns_rest_format() -> None:
    # RFC-draft "TURN REST API" as coturn implements it (use-auth-secret): the known vector
    # below was computed independently with `openssl dgst -sha1 -hmac secret -binary | base64`.
    expires = datetime.fromtimestamp(1_800_000_000, tz=UTC)
    username, password = turn_credential(b"secret", "room", expires)
    assert username == "1800000000:room"
    assert password == VECTOR


VECTOR = "zgmO4fsfhR7y8IitbWVWRxmUhZE="
