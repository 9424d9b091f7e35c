"""The wire protocol and the station's identity: signatures, envelopes, keys on disk, counters."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from provisioning.errors import IdentityError, SignatureInvalid
from provisioning.identity import FileIdentity, RequestCounter, StationIdentity, fingerprint_line
from provisioning.protocol import (
    b64decode,
    b64encode,
    canonical_json,
    fingerprint,
    open_envelope,
    public_key_bytes,
    seal_envelope,
    sign_request,
    station_id_for,
    verify_request,
)
from station.core.ids import is_opaque_id

KEY = Ed25519PrivateKey.generate()


def test_signed_request_verifies_and_any_change_breaks_it() -> None:
    headers = sign_request(KEY, "POST", "/api/x?a=1", 7, 1_700_000_000, b'{"a":1}')
    public, counter, time = verify_request(dict(headers), "POST", "/api/x?a=1", b'{"a":1}')
    assert public == public_key_bytes(KEY) and counter == 7 and time == 1_700_000_000
    for method, target, body in (
        ("GET", "/api/x?a=1", b'{"a":1}'),
        ("POST", "/api/x?a=2", b'{"a":1}'),
        ("POST", "/api/x?a=1", b'{"a":2}'),
    ):
        with pytest.raises(SignatureInvalid):
            verify_request(dict(headers), method, target, body)
    for name, value in (("X-KS-Counter", "8"), ("X-KS-Time", "1700000001")):
        with pytest.raises(SignatureInvalid):
            verify_request({**headers, name: value}, "POST", "/api/x?a=1", b'{"a":1}')
    for name, value in (("X-KS-Counter", "-1"), ("X-KS-Counter", "1e3"), ("X-KS-Key", "!!")):
        with pytest.raises(SignatureInvalid):
            verify_request({**headers, name: value}, "POST", "/api/x?a=1", b'{"a":1}')
    with pytest.raises(SignatureInvalid):
        verify_request({}, "POST", "/api/x", b"")


@given(st.binary(max_size=64))
def test_base64_round_trips_and_is_canonical(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


def test_non_canonical_base64_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        b64decode("AB")  # trailing bits set: two encodings would map to one value
    with pytest.raises(SignatureInvalid):
        b64decode("a b")


def test_fingerprint_and_station_id() -> None:
    raw = public_key_bytes(KEY)
    fp = fingerprint(raw)
    assert len(fp) == 29 and fp.count("-") == 5 and fp == fp.upper()
    assert station_id_for(raw) == fp.replace("-", "").lower()
    assert is_opaque_id(station_id_for(raw))


def test_envelopes_are_bound_to_their_kind_and_key() -> None:
    envelope = seal_envelope(KEY, "command", {"b": 1, "a": "å"})
    trusted = [public_key_bytes(KEY)]
    assert open_envelope(envelope, "command", trusted) == {"a": "å", "b": 1}
    with pytest.raises(SignatureInvalid):
        open_envelope(envelope, "config", trusted)
    relabelled = envelope.model_copy(update={"kind": "config"})
    with pytest.raises(SignatureInvalid):
        open_envelope(relabelled, "config", trusted)
    with pytest.raises(SignatureInvalid):
        open_envelope(envelope, "command", [public_key_bytes(Ed25519PrivateKey.generate())])
    # A validly signed but non-canonical payload is refused (one value, one byte form).
    data = b'{"a": 1}'
    odd = envelope.model_copy(
        update={
            "payload": b64encode(data),
            "signature": b64encode(KEY.sign(b"kontaktstation command v1\n" + data)),
        }
    )
    with pytest.raises(SignatureInvalid):
        open_envelope(odd, "command", trusted)
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'


def test_identity_is_made_once_0600_and_stable(data_dir: Path) -> None:
    assert "not made yet" in fingerprint_line(data_dir)
    assert not (data_dir / "provisioning" / "identity.key").exists()
    first = FileIdentity(data_dir).load()
    again = FileIdentity(data_dir).load()
    assert first.public_key == again.public_key
    path = data_dir / "provisioning" / "identity.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert first.fingerprint in repr(first) and "PrivateKey" not in repr(first)
    assert first.fingerprint in fingerprint_line(data_dir)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_unsafe_identity_files_are_refused(data_dir: Path) -> None:
    identity = FileIdentity(data_dir)
    identity.load()
    os.chmod(identity.path, 0o644)
    with pytest.raises(IdentityError):
        identity.load()
    os.chmod(identity.path, 0o600)
    identity.path.write_bytes(b"short")
    with pytest.raises(IdentityError):
        identity.load()
    assert "FAIL" in fingerprint_line(data_dir)


def test_destroy_makes_a_new_identity(data_dir: Path) -> None:
    identity = FileIdentity(data_dir)
    old = identity.load()
    identity.destroy()
    assert identity.load().public_key != old.public_key


def test_counter_is_strictly_increasing_and_persistent(data_dir: Path) -> None:
    counter = RequestCounter(data_dir)
    values = [counter.next() for _ in range(5)]
    assert values == [1, 2, 3, 4, 5]
    assert RequestCounter(data_dir).next() == 6
    counter.path.write_text("garbage")
    with pytest.raises(IdentityError):
        counter.next()


def test_station_identity_signs_what_the_hub_verifies() -> None:
    identity = StationIdentity(KEY)
    headers = identity.sign_request("GET", "/c", 3, 10, b"")
    assert verify_request(dict(headers), "GET", "/c", b"")[0] == identity.public_key
