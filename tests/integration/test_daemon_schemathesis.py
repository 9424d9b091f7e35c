"""stationd's whole local API fuzzed from its own OpenAPI description (schemathesis).

A real stationd (fake hardware, a real store, keyring and outbox) runs on its own loop in a
thread and serves its socket; the fuzzer talks HTTP over that Unix socket, as the UIs do. The
description is the app's own (``GET /v1/openapi.json``). Half of the generated requests carry
a valid staff token (if a fuzzed lock revoked it, the station is unlocked again in-process,
past the PIN guard, which the fuzzed wrong PINs throttle), so the staff handlers and their
validation are reached, not just the 401; the other half go without one.

Every answer must be: no 500 (a 503 from a part stationd runs without, the call engine here,
is an answer), a status the description documents, the content type and schema it documents,
and no error body that quotes a PIN or another value of the request, or anything shaped like
a CPR number. The event stream is left out (it never ends); its tests are in
``test_daemon_api.py``.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, settings
from requests.adapters import HTTPAdapter

from station.core.clock import FakeClock
from station.core.session import LockReason
from station.daemon.api import OPENAPI_PATH
from tests.integration.daemon_harness import STAFF_ID, enrol, short_socket_dir
from tests.tui.test_locked_harness import DaemonThread

pytestmark = pytest.mark.slow

BASE_URL = "http://stationd"
#: Ten digits in a row, with or without the hyphen: a CPR number's shape.
CPR_LIKE = re.compile(r"[0-9]{6}-?[0-9]{4}")
#: (method, path template, status) of every fuzzed answer, to prove the staff handlers ran.
SEEN: list[tuple[str, str, int]] = []
_FLIP = itertools.cycle((True, False))
#: The description as text: its own words (enum values, field names) may appear in errors.
DESCRIPTION: list[str] = []


# ------------------------------------------------------------------ HTTP over the socket


class _UnixConnection(urllib3.connection.HTTPConnection):
    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__("stationd", **kwargs)
        self._path = path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10.0)
        sock.connect(self._path)
        return sock


class _UnixPool(urllib3.HTTPConnectionPool):
    def __init__(self, path: str) -> None:
        super().__init__("stationd")
        self._path = path

    def _new_conn(self) -> _UnixConnection:
        return _UnixConnection(self._path)


class _UnixAdapter(HTTPAdapter):
    """``requests`` over a Unix socket (what the UIs' httpx does with ``uds=``)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._pool = _UnixPool(path)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        return self._pool

    def close(self) -> None:
        self._pool.close()
        super().close()


class Stationd:
    """The fuzzed daemon: its thread, and a staff token on demand."""

    def __init__(self, thread: DaemonThread) -> None:
        self.thread = thread
        self._token: str | None = None

    def token(self) -> str:
        """A live staff token; unlocks in-process first if a fuzzed request locked."""

        async def mint() -> str:
            assert self.thread.running is not None
            service = self.thread.running.daemon.service
            session = service.session
            if not session.is_locked and session.staff != STAFF_ID:
                service.request_lock(LockReason.STAFF_ACTION)
            if session.is_locked:
                # Past the PIN guard on purpose: the fuzzed wrong PINs throttle unlocking.
                session.unlock(STAFF_ID)
                self._token = None
            if self._token is None or service.tokens.verify(self._token) is None:
                self._token = service.tokens.issue(STAFF_ID, service.clock.now())
            return self._token

        return self.thread.run(mint())

    def session(self) -> requests.Session:
        """A ``requests`` session on the socket; every other request with the staff token."""
        stationd = self

        class _Session(requests.Session):
            def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:  # type: ignore[override]
                if next(_FLIP):
                    request.headers["Authorization"] = f"Bearer {stationd.token()}"
                return super().send(request, **kwargs)

        session = _Session()
        session.mount(f"{BASE_URL}/", _UnixAdapter(str(self.thread.socket_path)))
        return session


@pytest.fixture(scope="module")
def stationd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stationd]:
    data_dir: Path = tmp_path_factory.mktemp("stationd")
    enrol(data_dir)
    clock = FakeClock(datetime(2026, 11, 25, 8, 50, tzinfo=UTC))
    with short_socket_dir() as socket_dir, DaemonThread(data_dir, socket_dir, clock) as thread:
        assert thread.running is not None
        thread.run(thread.running.put_clinic())
        yield Stationd(thread)


@pytest.fixture(scope="module")
def stationd_schema(stationd: Stationd) -> Any:
    with stationd.session() as session:
        description = session.get(f"{BASE_URL}{OPENAPI_PATH}", timeout=10).json()
    DESCRIPTION.append(json.dumps(description))
    return schemathesis.openapi.from_dict(description)


schema = schemathesis.pytest.from_fixture("stationd_schema").exclude(path="/v1/events")


# ------------------------------------------------------------------ checks


def no_internal_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 500 is a bug in stationd (a 503 is a part it runs without, and says so)."""
    if response.status_code == 500:
        raise AssertionError(f"500 from {case.operation.label}: {response.text[:200]}")
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def nothing_personal_in_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """An error body never quotes what was sent (a PIN, a name, a CPR number)."""
    if response.status_code < 400:
        return None
    text = response.text
    assert not CPR_LIKE.search(text), f"CPR-like digits in {case.operation.label}: {text}"
    sent = itertools.chain(
        _strings(case.body),
        _strings(case.query or {}),
        _strings(case.path_parameters or {}),
    )
    for value in sent:
        # Short values and the description's own words (enum values, field names) can appear
        # in any message; anything else from the request must not.
        if len(value) < 4 or any(value in words for words in DESCRIPTION):
            continue
        assert value not in text, f"{case.operation.label} echoed a sent value: {text}"
    return None


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_no_schema_violations(case: Any, stationd: Stationd) -> None:
    with stationd.session() as session:
        response = case.call_and_validate(
            base_url=BASE_URL,
            session=session,
            checks=[
                no_internal_error,
                nothing_personal_in_errors,
                schemathesis.checks.status_code_conformance,
                schemathesis.checks.content_type_conformance,
                schemathesis.checks.response_schema_conformance,
            ],
            timeout=30,
        )
    SEEN.append((case.operation.method.upper(), case.operation.path, response.status_code))


STAFF_ONLY = re.compile(r"^/v1/(clinics|consultations|entries|session|precheck|exports)")


def test_the_fuzzing_reached_the_staff_handlers() -> None:
    staff = [(path, status) for _m, path, status in SEEN if STAFF_ONLY.match(path)]
    assert staff, "no staff operation was fuzzed"
    assert any(status == 401 for _p, status in staff)  # the half without a token
    reached = {path for path, status in staff if status != 401}
    # Past the token: validation, the store and the handlers answered.
    assert len(reached) >= 15, reached
    assert any(200 <= status < 300 for _p, status in staff)
    assert any(status == 422 for _p, status in staff)


def test_a_refused_unlock_never_echoes_the_pin(stationd: Stationd) -> None:
    with stationd.session() as session:
        for pin in ("12ab34", "0101901234", "9" * 40):
            response = session.post(
                f"{BASE_URL}/v1/unlock",
                json={"staff_id": "010190-1234", "pin": pin},
                timeout=10,
            )
            assert response.status_code in (401, 422, 429), response.text
            assert pin not in response.text and "010190" not in response.text
            body = response.json()
            assert set(body) == {"error", "user_message", "code", "retry_after_seconds"}
