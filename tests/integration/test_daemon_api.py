"""stationd's local API, through httpx over the real Unix socket of a running daemon.

The daemon runs in the test's loop with the shipped fake hardware (gpiozero MockFactory,
test-pattern camera, synthetic audio), a real data directory (SQLite store and audit log)
and a real keyring (with cheap Argon2 parameters, recorded in the slot).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from station.core.clock import FakeClock
from station.daemon.app import bind_unix_socket
from station.daemon.errors import DaemonError
from station.daemon.events import EventBroker, EventKind
from station.keys.crypto import FieldRef, seal_field
from station.keys.vault import VaultKey
from stationapi.errors import StationApiError, StationLocked
from stationapi.events import ApiEvent
from stationapi.staff import StaffClient
from tests.integration.daemon_harness import (
    CLINIC,
    STAFF_ID,
    STAFF_NUMBER,
    STAFF_PIN,
    Running,
    enrol,
    running_daemon,
    short_socket_dir,
)

# What the sealed test fields say inside; none of it may ever appear in clear.
PLAINTEXT_MARKERS = ("Anna Hansen", "010190-1234", "0101901234", "Stue 12", "Hjertebanken")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    with short_socket_dir() as path:
        yield path


@pytest.fixture
def vault_key(data_dir: Path) -> VaultKey:
    return enrol(data_dir)


@pytest.fixture
async def station(data_dir: Path, socket_dir: Path, vault_key: VaultKey) -> AsyncIterator[Running]:
    async with running_daemon(data_dir, socket_dir) as running:
        await running.put_clinic()
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sealed(text: str, table: str, row: str, field: str, key: bytes | None = None) -> bytes:
    """A real sealed field (what the staff UI would send), under a throwaway data key."""
    return seal_field(key or secrets.token_bytes(32), text.encode(), FieldRef(table, row, field))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_refusal(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A 4xx with both texts; never a 5xx."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["user_message"], str) and body["user_message"]
    assert body["code"]
    return body


async def new_consultation(
    station: Running, token: str, *, starts_in: timedelta = timedelta(hours=1)
) -> dict[str, Any]:
    now = datetime.now(UTC)
    response = await station.http.post(
        "/v1/consultations",
        headers=bearer(token),
        json={
            "clinic_id": CLINIC.id,
            "starts_at": (now + starts_in).isoformat(),
            "ends_at": (now + starts_in + timedelta(minutes=20)).isoformat(),
            "consultation_type": "video_consultation",
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# ----------------------------------------------------------------------------- basics


async def test_boots_locked_and_state_holds_clear_ids_only(station: Running) -> None:
    response = await station.http.get("/v1/state")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "locked"
    assert body["locked"] is True
    assert body["private"] is False
    assert body["appointment_id"] is None
    assert set(body) == {
        "state",
        "since",
        "locked",
        "private",
        "appointment_id",
        "call_admitted",
        "pending_wrap_ups",
        "idle_remaining_seconds",
    }


async def test_socket_is_0660(station: Running) -> None:
    mode = os.stat(station.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


def test_bind_creates_parent_0750_replaces_stale_and_refuses_live(socket_dir: Path) -> None:
    path = socket_dir / "run" / "stationd.sock"
    sock = bind_unix_socket(path)
    try:
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o750
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with pytest.raises(DaemonError, match="already serving"):
            bind_unix_socket(path)
    finally:
        sock.close()
    # Closed without unlinking, as after a crash: a stale socket is replaced.
    assert path.exists()
    sock = bind_unix_socket(path)
    sock.close()
    other = socket_dir / "not-a-socket"
    other.write_text("x")
    with pytest.raises(DaemonError, match="not a socket"):
        bind_unix_socket(other)
    with pytest.raises(DaemonError, match="at most"):
        bind_unix_socket(socket_dir / ("x" * 120))


async def test_unlock_hands_the_vault_key_over_with_the_token(
    station: Running, vault_key: VaultKey
) -> None:
    response = await station.http.post(
        "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "staff_id", "state", "vault_key"}
    assert body["state"] == "staff"
    assert len(body["token"]) >= 40
    key = bytes(vault_key._material())
    # The key hand-over: the staff UI gets the vault key itself, once, with its token.
    assert base64.b64decode(body["vault_key"]) == key
    assert body["token"] not in (b64(key), key.hex())
    state = (await station.http.get("/v1/state")).json()
    assert state["state"] == "staff" and state["locked"] is False


async def test_wrong_pins_are_refused_then_throttled(station: Running) -> None:
    for _ in range(3):
        response = await station.http.post(
            "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": "0000"}
        )
        body = assert_refusal(response, 401)
        assert body["code"] == "wrong_pin"
        assert "Forkert PIN-kode" in body["user_message"]
        assert "vault_key" not in body  # a refusal never carries the key
    response = await station.http.post(
        "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
    )
    body = assert_refusal(response, 429)
    assert "vault_key" not in body
    assert int(response.headers["Retry-After"]) > 0
    assert body["retry_after_seconds"] > 0
    assert (await station.http.get("/v1/state")).json()["state"] == "locked"


async def test_unknown_staff_looks_like_a_wrong_pin_and_is_not_echoed(station: Running) -> None:
    response = await station.http.post("/v1/unlock", json={"staff_number": "9876", "pin": "1234"})
    body = assert_refusal(response, 401)
    assert body["code"] == "wrong_pin"
    assert "9876" not in response.text
    await asyncio.sleep(0.05)  # the queued audit entry
    entries = station.daemon._audit.entries()
    failed = [e for e in entries if e.action == "unlock_failed"]
    assert failed and all(e.staff is None for e in failed)


async def test_unlocking_twice_is_a_conflict(station: Running) -> None:
    await station.unlock()
    response = await station.http.post(
        "/v1/unlock", json={"staff_number": STAFF_NUMBER, "pin": STAFF_PIN}
    )
    assert_refusal(response, 409)


# ------------------------------------------------------------------------- bad requests


BAD_OPEN_REQUESTS: list[tuple[str, str, dict[str, Any], int]] = [
    (
        "POST",
        "/v1/unlock",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "POST",
        "/v1/unlock",
        {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
        400,
    ),
    ("POST", "/v1/unlock", {"json": ["staff-a", "4711"]}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": STAFF_NUMBER}}, 422),
    # The pseudonymous id is no way in any more: only the number is.
    ("POST", "/v1/unlock", {"json": {"staff_id": STAFF_ID, "pin": STAFF_PIN}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": "12", "pin": "4711"}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": "12345", "pin": "4711"}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": "010190-1234", "pin": "4711"}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": STAFF_NUMBER, "pin": 4711}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": STAFF_NUMBER, "pin": "47a1"}}, 422),
    ("POST", "/v1/unlock", {"json": {"staff_number": "1 2", "pin": "4711"}}, 422),
    (
        "POST",
        "/v1/unlock",
        {"json": {"staff_number": STAFF_NUMBER, "pin": "4711", "admin": True}},
        422,
    ),
    (
        "POST",
        "/v1/unlock",
        {
            "content": b'{"staff_number":"101","pin":"1234"}',
            "headers": {"content-type": "text/plain"},
        },
        415,
    ),
    (
        "POST",
        "/v1/unlock",
        {"content": b"[" * 100_000, "headers": {"content-type": "application/json"}},
        400,
    ),
    ("POST", "/v1/lock", {"json": {"reason": "because"}}, 422),
    ("POST", "/v1/lock", {"json": {"reason": None}}, 422),
    (
        "POST",
        "/v1/lock",
        {"content": b"x" * (600 * 1024), "headers": {"content-type": "application/json"}},
        413,
    ),
    ("GET", "/v1/upcoming?limit=abc", {}, 422),
    ("GET", "/v1/upcoming?limit=0", {}, 422),
    ("GET", "/v1/upcoming?limit=100000", {}, 422),
    ("GET", "/v1/nowhere", {}, 404),
    ("GET", "/v2/state", {}, 404),
    ("DELETE", "/v1/state", {}, 405),
    ("GET", "/v1/unlock", {}, 405),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), BAD_OPEN_REQUESTS)
async def test_bad_open_requests_get_a_clear_4xx(
    station: Running, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await station.http.request(method, path, **kwargs)
    assert_refusal(response, status)
    # The daemon is unharmed and still locked.
    state = await station.http.get("/v1/state")
    assert state.status_code == 200 and state.json()["state"] == "locked"


async def test_oversized_body_streamed_without_length_is_refused(station: Running) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 10_000

    response = await station.http.post(
        "/v1/lock", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_refusal(response, 413)


STAFF_ENDPOINTS: list[tuple[str, str]] = [
    ("GET", "/v1/clinics"),
    ("GET", "/v1/missed"),
    ("POST", "/v1/missed/acknowledge"),
    ("GET", "/v1/consultations"),
    ("POST", "/v1/consultations"),
    ("GET", "/v1/consultations/c1"),
    ("PATCH", "/v1/consultations/c1"),
    ("PUT", "/v1/consultations/c1/status"),
    ("POST", "/v1/consultations/c1/documented"),
    ("PUT", "/v1/consultations/c1/key"),
    ("GET", "/v1/consultations/c1/key"),
    ("POST", "/v1/consultations/c1/entries"),
    ("GET", "/v1/consultations/c1/entries"),
    ("PUT", "/v1/consultations/c1/entries/order"),
    ("POST", "/v1/consultations/c1/notes"),
    ("GET", "/v1/consultations/c1/notes"),
    ("GET", "/v1/consultations/c1/sealed-events"),
    ("GET", "/v1/entries/e1"),
    ("PATCH", "/v1/entries/e1"),
    ("DELETE", "/v1/entries/e1"),
    ("PUT", "/v1/entries/e1/status"),
    ("POST", "/v1/session/begin-check"),
    ("POST", "/v1/session/check-passed"),
    ("POST", "/v1/session/cancel"),
    ("POST", "/v1/session/resume-wrap-up"),
    ("POST", "/v1/session/finish-wrap-up"),
    ("POST", "/v1/session/touch"),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic c3RhZmYtYTo0NzEx"},
        {"Authorization": "Bearer " + "A" * 5000},
    ],
    ids=["absent", "empty", "wrong", "basic", "huge"],
)
async def test_staff_endpoints_need_a_valid_token(
    station: Running, headers: dict[str, str]
) -> None:
    for method, path in STAFF_ENDPOINTS:
        response = await station.http.request(method, path, headers=headers, json={})
        body = assert_refusal(response, 401)
        assert body["user_message"].startswith("Stationen er låst")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_every_staff_endpoint_is_refused_after_a_lock(station: Running) -> None:
    token = await station.unlock()
    assert (await station.http.get("/v1/clinics", headers=bearer(token))).status_code == 200
    response = await station.http.post("/v1/lock", json={"reason": "staff_action"})
    assert response.json() == {"state": "locked", "changed": True}
    for method, path in STAFF_ENDPOINTS:
        response = await station.http.request(method, path, headers=bearer(token), json={})
        body = assert_refusal(response, 401)
        assert body["user_message"] == "Stationen er låst. Lås op med din PIN-kode."
    # A second lock changes nothing and never fails.
    response = await station.http.post("/v1/lock")
    assert response.json() == {"state": "locked", "changed": False}


async def test_bad_staff_requests_get_a_clear_4xx(station: Running) -> None:
    token = await station.unlock()
    h = bearer(token)
    consultation = await new_consultation(station, token)
    cid = consultation["id"]
    now = datetime.now(UTC)
    good_field = b64(sealed("Anna Hansen", "queue_entries", "e-x", "display_name"))
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        # Consultations: wrong types, naive or impossible times, unknown references.
        ("POST", "/v1/consultations", {"json": {"clinic_id": CLINIC.id}}, 422),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "clinic_id": CLINIC.id,
                    "starts_at": "tomorrow",
                    "ends_at": "later",
                    "consultation_type": "video_consultation",
                }
            },
            422,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "clinic_id": CLINIC.id,
                    "starts_at": "2030-01-01T10:00:00",
                    "ends_at": "2030-01-01T10:30:00",
                    "consultation_type": "video_consultation",
                }
            },
            422,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "clinic_id": CLINIC.id,
                    "starts_at": now.isoformat(),
                    "ends_at": (now - timedelta(hours=1)).isoformat(),
                    "consultation_type": "video_consultation",
                }
            },
            422,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "clinic_id": CLINIC.id,
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "consultation_type": "phone",
                }
            },
            422,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "clinic_id": "no-such-clinic",
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "consultation_type": "video_consultation",
                }
            },
            409,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "id": cid,
                    "clinic_id": CLINIC.id,
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "consultation_type": "video_consultation",
                }
            },
            409,
        ),
        (
            "POST",
            "/v1/consultations",
            {
                "json": {
                    "id": "0101901234",
                    "clinic_id": CLINIC.id,
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "consultation_type": "video_consultation",
                }
            },
            422,
        ),
        ("GET", "/v1/consultations?from=yesterday", {}, 422),
        ("GET", "/v1/consultations?status=lost", {}, 422),
        # Unknown and malformed ids.
        ("GET", "/v1/consultations/nosuchid", {}, 404),
        ("GET", "/v1/consultations/010190-1234", {}, 404),
        ("GET", "/v1/consultations/a%20b", {}, 404),
        ("GET", "/v1/entries/nosuchentry", {}, 404),
        ("GET", f"/v1/consultations/{cid}/key", {}, 404),
        (
            "PUT",
            "/v1/consultations/nosuchid/key",
            {"json": {"wrapped_key": b64(secrets.token_bytes(61))}},
            404,
        ),
        ("PUT", f"/v1/consultations/{cid}/status", {"json": {"status": "documented"}}, 422),
        ("PUT", f"/v1/consultations/{cid}/status", {"json": {"status": 7}}, 422),
        (
            "PATCH",
            f"/v1/consultations/{cid}",
            {"json": {"starts_at": "2030-13-45T00:00:00+00:00"}},
            422,
        ),
        # Sealed fields: bad base64, empty, plaintext, unknown field names, too big.
        ("PUT", f"/v1/consultations/{cid}/key", {"json": {"wrapped_key": "not base64!"}}, 422),
        ("PUT", f"/v1/consultations/{cid}/key", {"json": {"wrapped_key": "QUJD"}}, 422),
        ("PUT", f"/v1/consultations/{cid}/key", {"json": {"wrapped_key": 12345}}, 422),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"display_name": "QUJD="}}},
            422,
        ),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"display_name": ""}}},
            422,
        ),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"display_name": b64(b"Anna Hansen, Stue 12, 010190-1234")}}},
            422,
        ),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"name": good_field}}},
            422,
        ),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"display_name": good_field}, "status": "gone"}},
            422,
        ),
        (
            "POST",
            f"/v1/consultations/{cid}/entries",
            {"json": {"sealed": {"note": b64(b"\x01" + secrets.token_bytes(70 * 1024))}}},
            422,
        ),
        (
            "POST",
            "/v1/consultations/nosuchid/entries",
            {"json": {"sealed": {"display_name": good_field}}},
            404,
        ),
        ("POST", f"/v1/consultations/{cid}/entries", {"json": {"sealed": "everything"}}, 422),
        (
            "PUT",
            f"/v1/consultations/{cid}/entries/order",
            {"json": {"entry_ids": ["nosuchentry"]}},
            409,
        ),
        ("PUT", f"/v1/consultations/{cid}/entries/order", {"json": {"entry_ids": "e1"}}, 422),
        ("PUT", "/v1/entries/nosuchentry/status", {"json": {"status": "done"}}, 404),
        ("PUT", "/v1/entries/nosuchentry/status", {"json": {"status": "finished"}}, 422),
        ("POST", f"/v1/consultations/{cid}/notes", {"json": {"body": "%%%"}}, 422),
        (
            "POST",
            f"/v1/consultations/{cid}/notes",
            {"json": {"body": good_field, "entry_id": "nosuchentry"}},
            404,
        ),
        # Session transitions in the wrong state, or with a bad body.
        ("POST", "/v1/session/check-passed", {}, 409),
        ("POST", "/v1/session/finish-wrap-up", {}, 409),
        ("POST", "/v1/session/cancel", {"json": {"reason": "Fordi"}}, 422),
        ("POST", "/v1/session/cancel", {}, 409),
        ("POST", "/v1/session/resume-wrap-up", {}, 409),
        ("POST", "/v1/session/begin-check", {"json": {}}, 422),
        ("POST", "/v1/session/begin-check", {"json": {"appointment_id": "nosuchid"}}, 404),
        ("POST", "/v1/session/check-passed", {"json": {"unexpected": 1}}, 422),
    ]
    for method, path, kwargs, status in cases:
        response = await station.http.request(method, path, headers=h, **kwargs)
        body = assert_refusal(response, status)
        # No refusal quotes what was sent (it may be personal data).
        for marker in PLAINTEXT_MARKERS:
            assert marker not in response.text, (method, path)
        assert "010190" not in body["error"]
    # Still unlocked, still serving.
    assert (await station.http.get("/v1/state")).json()["state"] == "staff"


# --------------------------------------------------------------------------- blobs


async def test_blobs_round_trip_byte_exact_and_never_as_plaintext(
    station: Running, data_dir: Path
) -> None:
    token = await station.unlock()
    h = bearer(token)
    responses: list[httpx.Response] = []

    async def call(method: str, path: str, **kwargs: Any) -> Any:
        response = await station.http.request(method, path, headers=h, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        responses.append(response)
        return response.json() if response.content else None

    clinics = await call("GET", "/v1/clinics")
    assert clinics["items"][0]["name"] == CLINIC.name
    consultation = await new_consultation(station, token)
    cid = consultation["id"]
    data_key = secrets.token_bytes(32)
    wrapped = sealed(data_key.hex(), "consultation_keys", cid, "data_key")
    put = await call("PUT", f"/v1/consultations/{cid}/key", json={"wrapped_key": b64(wrapped)})
    assert base64.b64decode(put["wrapped_key"]) == wrapped
    got = await call("GET", f"/v1/consultations/{cid}/key")
    assert base64.b64decode(got["wrapped_key"]) == wrapped

    residents = [
        {"display_name": "Anna Hansen", "room": "Stue 12", "cpr": "010190-1234"},
        {"display_name": "Bent Olsen", "birth_date": "1931-04-02", "reason": "Hjertebanken"},
        {"display_name": "Carla Møller", "note": "x" * 5000},
    ]
    sent: dict[str, dict[str, bytes]] = {}
    for index, fields in enumerate(residents):
        entry_id = f"entry-{index}"
        blobs = {
            name: sealed(text, "queue_entries", entry_id, name, data_key)
            for name, text in fields.items()
        }
        created = await call(
            "POST",
            f"/v1/consultations/{cid}/entries",
            json={"id": entry_id, "sealed": {k: b64(v) for k, v in blobs.items()}},
        )
        assert created["position"] == index and created["status"] == "waiting"
        sent[entry_id] = blobs
    listed = await call("GET", f"/v1/consultations/{cid}/entries")
    assert [e["id"] for e in listed["items"]] == ["entry-0", "entry-1", "entry-2"]
    for item in listed["items"]:
        assert {k: base64.b64decode(v) for k, v in item["sealed"].items()} == sent[item["id"]]

    reordered = await call(
        "PUT",
        f"/v1/consultations/{cid}/entries/order",
        json={"entry_ids": ["entry-2", "entry-0", "entry-1"]},
    )
    assert [e["id"] for e in reordered["items"]] == ["entry-2", "entry-0", "entry-1"]
    status = await call("PUT", "/v1/entries/entry-0/status", json={"status": "in_call"})
    assert status["status"] == "in_call"
    replacement = sealed("Stue 14", "queue_entries", "entry-0", "room", data_key)
    patched = await call(
        "PATCH",
        "/v1/entries/entry-0",
        json={"sealed": {"room": b64(replacement)}, "remove_fields": ["cpr"]},
    )
    assert base64.b64decode(patched["sealed"]["room"]) == replacement
    assert "cpr" not in patched["sealed"]
    one = await call("GET", "/v1/entries/entry-1")
    assert base64.b64decode(one["sealed"]["reason"]) == sent["entry-1"]["reason"]

    note_blob = sealed("Lægen ordinerer ...", "notes", "note-1", "body", data_key)
    await call(
        "POST",
        f"/v1/consultations/{cid}/notes",
        json={"id": "note-1", "entry_id": "entry-1", "body": b64(note_blob)},
    )
    notes = await call("GET", f"/v1/consultations/{cid}/notes")
    assert [base64.b64decode(n["body"]) for n in notes["items"]] == [note_blob]
    assert notes["items"][0]["entry_id"] == "entry-1"
    assert (await call("GET", f"/v1/consultations/{cid}/sealed-events"))["items"] == []

    await call("DELETE", "/v1/entries/entry-2")
    listed = await call("GET", f"/v1/consultations/{cid}/entries")
    assert [e["id"] for e in listed["items"]] == ["entry-0", "entry-1"]
    documented = await call("POST", f"/v1/consultations/{cid}/documented")
    assert documented["status"] == "documented" and documented["documented_at"]
    listed_c = await call("GET", "/v1/consultations", params={"status": ["documented"]})
    assert [c["id"] for c in listed_c["items"]] == [cid]

    # No response, and nothing on disk, holds any plaintext personal data.
    for response in responses:
        for marker in PLAINTEXT_MARKERS:
            assert marker not in response.text
    for path in data_dir.iterdir():
        if path.is_file():
            content = path.read_bytes()
            for marker in PLAINTEXT_MARKERS:
                assert marker.encode() not in content, path.name

    # The audit trail names the staff member and pseudonymous entry ids, never content.
    await asyncio.sleep(0.05)
    entries = station.daemon._audit.entries()
    actions = [e.action for e in entries]
    assert "record_created" in actions and "record_opened" in actions
    assert any(e.resident == "entry-1" for e in entries)


async def test_upcoming_shows_times_and_clinic_names_only(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey
) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with running_daemon(data_dir, socket_dir, clock=clock) as station:
        await station.put_clinic()
        token = await station.unlock()
        now = clock.now()
        plan = {
            "soon": now + timedelta(minutes=10),
            "later": now + timedelta(hours=2),
            "over": now - timedelta(hours=2),
            "cancelled": now + timedelta(minutes=5),
        }
        for name, start in plan.items():
            response = await station.http.post(
                "/v1/consultations",
                headers=bearer(token),
                json={
                    "id": name,
                    "clinic_id": CLINIC.id,
                    "starts_at": start.isoformat(),
                    "ends_at": (start + timedelta(minutes=30)).isoformat(),
                    "consultation_type": "assisted_consultation",
                },
            )
            assert response.status_code == 201
        await station.http.put(
            "/v1/consultations/cancelled/status",
            headers=bearer(token),
            json={"status": "cancelled"},
        )
        await station.http.post("/v1/lock")
        # No token needed: this is the lock screen's endpoint.
        body = (await station.http.get("/v1/upcoming")).json()
        items = body["items"]
        assert [i["starts_at"] for i in items] == [
            plan["soon"].isoformat().replace("+00:00", "Z"),
            plan["later"].isoformat().replace("+00:00", "Z"),
        ]
        assert [i["due_soon"] for i in items] == [True, False]
        assert all(set(i) == {"starts_at", "ends_at", "clinic_name", "due_soon"} for i in items)
        assert all(i["clinic_name"] == CLINIC.name for i in items)
        # Time passes: the later one becomes due.
        clock.advance(timedelta(minutes=110))
        items = (await station.http.get("/v1/upcoming?limit=1")).json()["items"]
        assert len(items) == 1 and items[0]["due_soon"] is True


async def test_health_reports_every_part_in_both_languages(station: Running) -> None:
    body = (await station.http.get("/v1/health")).json()
    names = [c["name"] for c in body["checks"]]
    assert names == ["camera", "microphone", "loudspeaker", "button", "led", "speech"]
    assert body["ok"] is True and body["checked_at"]
    assert all(set(c) == {"name", "ok", "detail", "hint", "missing"} for c in body["checks"])
    assert not any(c["missing"] for c in body["checks"])


async def test_idle_timeout_locks_and_revokes(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey
) -> None:
    clock = FakeClock(datetime.now(UTC))
    async with running_daemon(
        data_dir, socket_dir, clock=clock, idle_timeout=timedelta(minutes=5), tick_seconds=0.02
    ) as station:
        token = await station.unlock()
        clock.advance(timedelta(minutes=4))
        # The staff UI's report of a person's input is activity: it postpones the idle lock.
        assert (
            await station.http.post("/v1/session/touch", headers=bearer(token))
        ).status_code == 200
        clock.advance(timedelta(minutes=4))
        # Any other request is not (screens poll): it leaves the idle clock alone.
        for _ in range(5):
            assert (await station.http.get("/v1/clinics", headers=bearer(token))).status_code == 200
        await asyncio.sleep(0.1)
        assert (await station.http.get("/v1/state")).json()["state"] == "staff"
        clock.advance(timedelta(minutes=1, seconds=1))
        for _ in range(200):
            if (await station.http.get("/v1/state")).json()["state"] == "locked":
                break
            await asyncio.sleep(0.02)
        assert (await station.http.get("/v1/state")).json()["state"] == "locked"
        body = assert_refusal(await station.http.get("/v1/clinics", headers=bearer(token)), 401)
        assert body["user_message"].startswith("Stationen er låst")


# --------------------------------------------------------------------------- events


async def collect_events(
    station: Running, until: str, into: list[ApiEvent], *, started: asyncio.Event
) -> None:
    async with StaffClient(station.socket_path) as client:
        async for event in client.events():
            into.append(event)
            if event.kind == "snapshot":
                started.set()
            if event.kind == until:
                return


async def test_event_stream_carries_transitions(station: Running) -> None:
    events: list[ApiEvent] = []
    started = asyncio.Event()
    listener = asyncio.create_task(collect_events(station, "locked", events, started=started))
    await asyncio.wait_for(started.wait(), 10)
    await station.unlock()
    await station.http.post("/v1/lock", json={"reason": "leave"})
    await asyncio.wait_for(listener, 10)
    kinds = [e.kind for e in events]
    assert kinds == ["snapshot", "state", "locked"]
    assert events[0].data["state"] == "locked"
    assert events[1].data["state"] == "staff" and events[1].data["transition"] == "unlock"
    assert events[2].data["reason"] == "staff_action"
    # Sequence numbers increase; nothing personal in any event.
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)
    assert all(
        set(e.data)
        <= {
            "seq",
            "kind",
            "at",
            "state",
            "since",
            "locked",
            "private",
            "appointment_id",
            "call_admitted",
            "pending_wrap_ups",
            "idle_remaining_seconds",
            "transition",
            "from_state",
            "reason",
        }
        for e in events
    )


async def test_event_stream_heartbeats_and_ends_on_shutdown(
    data_dir: Path, socket_dir: Path, vault_key: VaultKey
) -> None:
    lines: list[str] = []
    async with running_daemon(data_dir, socket_dir, heartbeat_seconds=0.05) as station:

        async def read() -> None:
            async with station.http.stream("GET", "/v1/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    lines.append(line)

        reader = asyncio.create_task(read())
        for _ in range(200):
            if lines.count(": keepalive") >= 2:
                break
            await asyncio.sleep(0.02)
        assert lines.count(": keepalive") >= 2
        await station.daemon.stop()
        # The stream ends by itself when the daemon stops; the reader returns.
        await asyncio.wait_for(reader, 10)
    assert "event: shutdown" in lines


def test_slow_subscriber_is_bounded_and_told_it_lagged() -> None:
    async def scenario() -> list[Any]:
        broker = EventBroker()
        slow = broker.subscribe(maxsize=4)
        for n in range(10):
            broker.publish(EventKind.STATE, {"n": n})
        broker.publish(EventKind.LOCKED, {"reason": "button"})
        assert slow.pending == 4
        got = []
        while (event := slow.get_nowait()) is not None:
            got.append((event.kind, dict(event.data)))
        broker.close()
        assert await slow.get() is None
        return got

    got = asyncio.run(scenario())
    assert got[0] == ("lagged", {"missed": 7})
    # The newest events, the lock last, survive.
    assert got[1:] == [
        ("state", {"n": 7}),
        ("state", {"n": 8}),
        ("state", {"n": 9}),
        ("locked", {"reason": "button"}),
    ]


# --------------------------------------------------------------------------- the client


async def test_client_typed_methods_and_errors(station: Running) -> None:
    async with StaffClient(station.socket_path) as client:
        assert (await client.state()).state == "locked"
        with pytest.raises(StationLocked) as locked:
            await client.clinics()
        assert locked.value.user_message.startswith("Stationen er låst")
        with pytest.raises(StationApiError) as wrong:
            await client.unlock(STAFF_NUMBER, "0000")
        assert wrong.value.status == 401 and wrong.value.code == "wrong_pin"
        unlocked = await client.unlock(STAFF_NUMBER, STAFF_PIN)
        assert unlocked.state == "staff" and client.token == unlocked.token
        assert unlocked.staff_id == STAFF_ID  # the number's pseudonymous id
        now = datetime.now(UTC)
        c = await client.create_consultation(
            clinic_id=CLINIC.id,
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            consultation_type="video_conference",
        )
        blob = sealed("Anna Hansen", "queue_entries", "e1", "display_name")
        entry = await client.add_entry(c.id, {"display_name": blob}, entry_id="e1")
        assert entry.sealed == {"display_name": blob}
        assert [e.id for e in await client.entries(c.id)] == ["e1"]
        assert (await client.consultation(c.id)).consultation_type == "video_conference"
        assert [x.id for x in await client.consultations(statuses=["booked"])] == [c.id]
        assert (await client.upcoming()).items[0].clinic_name == CLINIC.name
        assert (await client.health()).ok
        lock = await client.lock()
        assert lock.state == "locked" and client.token is None
    with pytest.raises(Exception) as unreachable:
        async with StaffClient(station.socket_path.with_name("missing.sock")) as client:
            await client.state()
    assert type(unreachable.value).__name__ == "StationUnavailable"


def test_error_bodies_never_echo_a_pin() -> None:
    # Pydantic's errors carry the input; the API strips it. Checked at the source.
    from pydantic import ValidationError

    from station.daemon import api
    from stationapi import models

    try:
        models.UnlockRequest.model_validate({"staff_number": "101", "pin": "12ab34"})
    except ValidationError as exc:
        message = api.validation_message(exc.errors())
    assert "12ab34" not in message and "pin" in message
    assert json.dumps({"m": message})  # plain text
