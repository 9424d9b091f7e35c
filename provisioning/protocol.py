"""The provisioning wire protocol, shared by the station's agent and the hub.

Pure: cryptography, pydantic and the standard library only (the hub imports it, so it must
never reach the station's vault, store or keyring).

Three signed things:

* **Station requests.** Every request a station makes is signed with its Ed25519 identity
  key over ``method, path+query, counter, time, SHA-256(body)`` (:func:`request_message`),
  sent as ``X-KS-Key`` (raw public key, base64url), ``X-KS-Counter``, ``X-KS-Time`` and
  ``X-KS-Signature``. The counter is strictly increasing per station and persisted *before*
  it is used, so a replay (same counter) or a cloned identity (two devices continuing from
  one copied counter) is caught by the hub's compare-and-set on the last counter.
* **Configurations** and **commands**: canonical JSON signed by IT's signing key, which IT
  keeps off the hub (:class:`SignedEnvelope`), with a domain string per kind so a command can
  never be passed off as a configuration (nor a stored ``layer`` as either). Stations trust a
  list of keys, so IT's key can rotate.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

from provisioning.errors import SignatureInvalid

__all__ = [
    "API_PREFIX",
    "AUDIT_HEAD_DOMAIN",
    "COMMAND_DOMAIN",
    "CONFIG_DOMAIN",
    "HEADER_COUNTER",
    "HEADER_KEY",
    "HEADER_SIGNATURE",
    "HEADER_TIME",
    "LAYER_DOMAIN",
    "PUBLIC_KEY_BYTES",
    "SignedEnvelope",
    "b64decode",
    "b64encode",
    "canonical_json",
    "fingerprint",
    "open_envelope",
    "public_key_bytes",
    "request_message",
    "seal_envelope",
    "sign_audit_head",
    "sign_request",
    "station_id_for",
    "verify_audit_head",
    "verify_request",
]

PUBLIC_KEY_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64
CONFIG_DOMAIN: Final = b"kontaktstation config v1"
COMMAND_DOMAIN: Final = b"kontaktstation command v1"
#: IT's signature on one stored configuration layer (kept on the hub, never sent to stations):
#: the admin merges only layers IT signed, so a changed hub database is never signed onwards.
LAYER_DOMAIN: Final = b"kontaktstation layer v1"
_REQUEST_DOMAIN: Final = b"kontaktstation request v1"
AUDIT_HEAD_DOMAIN: Final = b"kontaktstation audit head v1"

#: Where the hub serves the provisioning API; the hub's router and the station's client both
#: take it from here, so the two ends of the API cannot name different paths.
API_PREFIX: Final = "/api/provisioning/v1"

HEADER_KEY: Final = "X-KS-Key"
HEADER_COUNTER: Final = "X-KS-Counter"
HEADER_TIME: Final = "X-KS-Time"
HEADER_SIGNATURE: Final = "X-KS-Signature"

#: The largest counter a request may carry (far inside every database's 64-bit integer).
MAX_COUNTER: Final = 2**62


def b64encode(data: bytes) -> str:
    """URL-safe base64 without padding (fits headers, paths and JSON)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, *, length: int | None = None) -> bytes:
    """Inverse of :func:`b64encode`; :class:`SignatureInvalid` for anything malformed."""
    if not isinstance(text, str) or len(text) > 1 << 20:
        raise SignatureInvalid("malformed base64")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureInvalid("malformed base64") from None
    if b64encode(data) != text.rstrip("="):
        raise SignatureInvalid("non-canonical base64")
    if length is not None and len(data) != length:
        raise SignatureInvalid(f"expected {length} bytes, got {len(data)}")
    return data


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8. What gets signed."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The raw 32-byte public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public_key: bytes) -> str:
    """A key's short, human-comparable form: base32 of SHA-256's first 15 bytes, in fours.

    ``ABCD-EFGH-IJKL-MNOP-QRST-UVWX``: 120 bits, read aloud or compared on the lock screen.
    """
    digest = hashlib.sha256(b"kontaktstation key\n" + public_key).digest()[:15]
    text = base64.b32encode(digest).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def station_id_for(public_key: bytes) -> str:
    """The station's id on the hub: its fingerprint, lower case, without dashes.

    Derived from the key so the id needs no extra secret; base32 (letters and 2-7) can never
    look like a CPR number.
    """
    return fingerprint(public_key).replace("-", "").lower()


def _public_key(raw: bytes) -> Ed25519PublicKey:
    if len(raw) != PUBLIC_KEY_BYTES:
        raise SignatureInvalid("an Ed25519 public key is 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SignatureInvalid("not an Ed25519 public key") from None


# --------------------------------------------------------------------------- requests


def request_message(method: str, target: str, counter: int, time: int, body: bytes) -> bytes:
    """What a station signs: method, path with query, counter, time and the body's hash."""
    return b"\n".join(
        (
            _REQUEST_DOMAIN,
            method.upper().encode("ascii"),
            target.encode("utf-8"),
            str(counter).encode("ascii"),
            str(time).encode("ascii"),
            hashlib.sha256(body).hexdigest().encode("ascii"),
        )
    )


def sign_request(
    key: Ed25519PrivateKey, method: str, target: str, counter: int, time: int, body: bytes
) -> dict[str, str]:
    """The four headers of a signed station request."""
    signature = key.sign(request_message(method, target, counter, time, body))
    return {
        HEADER_KEY: b64encode(public_key_bytes(key)),
        HEADER_COUNTER: str(counter),
        HEADER_TIME: str(time),
        HEADER_SIGNATURE: b64encode(signature),
    }


def _int_header(value: str | None, name: str) -> int:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        raise SignatureInvalid(f"missing or malformed {name}")
    number = int(value)
    if number > MAX_COUNTER:
        raise SignatureInvalid(f"{name} out of range")
    return number


def verify_request(
    headers: dict[str, str | None], method: str, target: str, body: bytes
) -> tuple[bytes, int, int]:
    """Check a signed request; return ``(public key, counter, time)``.

    Only the signature is checked here; whether the key is known, the counter fresh and the
    time plausible is the hub's business (it holds the state).
    """
    key_text = headers.get(HEADER_KEY)
    signature_text = headers.get(HEADER_SIGNATURE)
    if not key_text or not signature_text:
        raise SignatureInvalid("unsigned request")
    public = b64decode(key_text, length=PUBLIC_KEY_BYTES)
    signature = b64decode(signature_text, length=SIGNATURE_BYTES)
    counter = _int_header(headers.get(HEADER_COUNTER), "counter")
    time = _int_header(headers.get(HEADER_TIME), "time")
    try:
        _public_key(public).verify(signature, request_message(method, target, counter, time, body))
    except InvalidSignature:
        raise SignatureInvalid("request signature does not verify") from None
    return public, counter, time


# --------------------------------------------------------------------------- envelopes


#: What an envelope holds: a station's configuration, a command, or (on the hub only) a layer.
EnvelopeKind = Literal["config", "command", "layer"]


class SignedEnvelope(BaseModel):
    """A hub-signed payload: canonical JSON (base64url), the signing key's id, the signature."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EnvelopeKind
    payload: str = Field(max_length=256 * 1024, description="base64url of canonical JSON")
    key_id: str = Field(max_length=64, description="fingerprint of the signing key")
    signature: str = Field(max_length=128, description="base64url Ed25519 signature")


def _domain(kind: str) -> bytes:
    return {"config": CONFIG_DOMAIN, "command": COMMAND_DOMAIN, "layer": LAYER_DOMAIN}[kind]


def seal_envelope(
    key: Ed25519PrivateKey, kind: EnvelopeKind, payload: dict[str, Any]
) -> SignedEnvelope:
    """Sign ``payload`` (a JSON-able dict) as a ``kind`` envelope."""
    data = canonical_json(payload)
    signature = key.sign(_domain(kind) + b"\n" + data)
    return SignedEnvelope(
        kind=kind,
        payload=b64encode(data),
        key_id=fingerprint(public_key_bytes(key)),
        signature=b64encode(signature),
    )


def open_envelope(
    envelope: SignedEnvelope, kind: EnvelopeKind, trusted_keys: list[bytes]
) -> dict[str, Any]:
    """Verify ``envelope`` against the trusted keys and return its payload.

    Refuses (:class:`SignatureInvalid`) another kind, an unknown key, a bad signature and a
    payload that is not the canonical JSON of an object (so one payload has one byte form).
    """
    if envelope.kind != kind:
        raise SignatureInvalid(f"expected a {kind} envelope, got {envelope.kind}")
    by_id = {fingerprint(raw): raw for raw in trusted_keys}
    raw_key = by_id.get(envelope.key_id)
    if raw_key is None:
        raise SignatureInvalid("signed by a key this station does not trust")
    data = b64decode(envelope.payload)
    signature = b64decode(envelope.signature, length=SIGNATURE_BYTES)
    try:
        _public_key(raw_key).verify(signature, _domain(kind) + b"\n" + data)
    except InvalidSignature:
        raise SignatureInvalid(f"{kind} signature does not verify") from None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SignatureInvalid(f"{kind} payload is not JSON") from None
    if not isinstance(value, dict) or canonical_json(value) != data:
        raise SignatureInvalid(f"{kind} payload is not canonical JSON of an object")
    return value


# --------------------------------------------------------------------------- audit heads


def _audit_head_message(station_id: str, seq: int, digest: str) -> bytes:
    return AUDIT_HEAD_DOMAIN + b"\n" + canonical_json([station_id, seq, digest])


def sign_audit_head(key: Ed25519PrivateKey, station_id: str, seq: int, digest: str) -> str:
    """The station's signature (base64url) over its audit log's head ``(seq, digest)``.

    The hub keeps it with the head it anchors, so the history of heads is the station's own
    word: the hub cannot make one up, and the station cannot later deny one.
    """
    return b64encode(key.sign(_audit_head_message(station_id, seq, digest)))


def verify_audit_head(
    public_key: bytes, station_id: str, seq: int, digest: str, signature: str
) -> bool:
    """Whether ``signature`` is the station's over ``(seq, digest)``."""
    try:
        raw = b64decode(signature, length=SIGNATURE_BYTES)
        _public_key(public_key).verify(raw, _audit_head_message(station_id, seq, digest))
    except (SignatureInvalid, InvalidSignature, ValueError):
        return False
    return True
