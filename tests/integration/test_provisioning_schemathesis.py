"""The hub's whole API fuzzed from its own OpenAPI description (schemathesis): no 5xx, ever.

A real hub (uvicorn on 127.0.0.1, in a thread) serves the schema and the requests. Half of the
generated requests are signed by an approved station's real key (the signing happens on the
final bytes, so the fuzzed bodies and parameters reach the provisioning handlers and their
validation, not just the signature check); the rest go unsigned. Bounded examples per
operation; long-polls are capped at a fraction of a second so the run stays short.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings

from hub.app import create_app
from hub.provisioning.api import open_provisioning
from hub.settings import HubSettings
from provisioning.identity import StationIdentity
from station.core.clock import SystemClock
from tests.integration.hub_server import it_key

pytestmark = pytest.mark.slow

TOKEN = "test-station-token-0123456789abcdefghijklmnop"
IDENTITY = StationIdentity(Ed25519PrivateKey.generate())
_COUNTER = itertools.count(int(time.time() * 1000))
#: (path, status) of every fuzzed response, to prove the signed ones got past the signature.
SEEN: list[tuple[str, int]] = []
_FLIP = itertools.cycle((True, False))


class SigningSession(requests.Session):
    """Signs every other request with the approved station's key, over the final bytes."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if next(_FLIP):
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            headers = IDENTITY.sign_request(
                request.method or "GET",
                request.path_url,
                next(_COUNTER),
                int(time.time()),
                body,
            )
            request.headers.update(headers)
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("hub")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    hub_settings = HubSettings(
        data_dir=data_dir,
        station_token=TOKEN,
        allow_shared_station_token=True,
        public_base_url=url,
        long_poll_max_seconds=0.1,
    )
    admin = open_provisioning(hub_settings, SystemClock(), signer=it_key(hub_settings))

    async def approve() -> None:
        await admin.start()
        await admin.preauthorise(IDENTITY.fingerprint, "solhaven", "Stue 1", "it")
        await admin.close()

    asyncio.run(approve())
    server = uvicorn.Server(
        uvicorn.Config(create_app(hub_settings), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    # First contact: the pre-authorised key is accepted.
    session = SigningSession()
    enrolled = session.post(f"{url}/api/provisioning/v1/enroll", json={"software_version": "1"})
    assert enrolled.json()["status"] == "approved", enrolled.text
    session.close()
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def hub_schema(hub_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{hub_url}/api/openapi.json")


schema = schemathesis.pytest.from_fixture("hub_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case: Any, hub_url: str) -> None:
    with SigningSession() as session:
        response = case.call_and_validate(
            base_url=hub_url,
            session=session,
            checks=[schemathesis.checks.not_a_server_error],
            timeout=10,
        )
    SEEN.append((case.operation.path, response.status_code))


def test_the_fuzzing_reached_the_provisioning_handlers() -> None:
    provisioning = [status for path, status in SEEN if path.startswith("/api/provisioning")]
    assert provisioning, "no provisioning operation was fuzzed"
    assert any(status in (200, 204, 404, 409, 422) for status in provisioning), provisioning
    assert any(status == 401 for status in provisioning)  # the unsigned half
