"""A local FHIR-shaped receiver for the export tests: a small ASGI app served by uvicorn.

It plays the municipality's care record (EOJ) on 127.0.0.1:

- ``POST /token``: OAuth2 client credentials (HTTP Basic client authentication), issues
  bearer tokens;
- ``POST /fhir``: a transaction Bundle. Parsed with fhir.resources (R4B); each entry's
  conditional create (``ifNoneExist: identifier=system|value``) is honoured like a real FHIR
  server: an identifier already stored creates nothing new (``200 OK``), a new one is stored
  (``201 Created``); ``urn:uuid:`` references are rewritten to the server's ids. The whole
  transaction is applied at once or not at all;
- ``GET /fhir/{type}?identifier=system|value``: a searchset, for looking around.

It can be told to misbehave on the next FHIR requests (:meth:`FhirReceiver.fail_next`):
``500``/``503``/``400``/``401``, ``timeout_before_store``/``slow_after_store`` (answer only
after ``hold_seconds``), ``drop_before_store``/``drop_after_store`` (the connection breaks
in the middle of the response), ``hang_before_store``/``hang_after_store`` (wait for
:meth:`release`, for tests that kill the sender meanwhile).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FhirReceiver", "running_receiver"]

CLIENT_ID = "station-test"
CLIENT_SECRET = "s3cret-for-tests-only"

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass
class FhirReceiver:
    """The receiver's state and its ASGI app (see the module docs)."""

    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    #: How long the ``timeout_*`` / ``slow_*`` behaviours wait before answering.
    hold_seconds: float = 3.0
    token_lifetime: int = 300
    #: type -> server id -> resource as stored.
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Every FHIR POST body received, raw.
    bodies: list[bytes] = field(default_factory=list)
    #: Behaviour of each FHIR request, in order, as it was applied.
    log: list[str] = field(default_factory=list)
    #: monotonic time at which each Bundle id was first stored.
    stored_at: dict[str, float] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    _plan: deque[str] = field(default_factory=deque)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    stored: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    down: bool = False

    # ------------------------------------------------------------------ test controls

    def fail_next(self, *behaviours: str) -> None:
        """Apply these behaviours to the next FHIR requests, in order (then ``ok``)."""
        self._plan.extend(behaviours)

    def release(self) -> None:
        """Let a ``hang_*`` request go on."""
        self._release.set()

    def revoke_tokens(self) -> None:
        """Forget every issued token (the next FHIR request gets 401)."""
        self.tokens.clear()

    def find(self, rtype: str, system: str, value: str) -> list[dict[str, Any]]:
        """Stored resources of ``rtype`` carrying the identifier ``system|value``."""
        return [
            r
            for r in self.resources.get(rtype, {}).values()
            if any(
                i.get("system") == system and i.get("value") == value
                for i in r.get("identifier", [])
            )
        ]

    def count(self, rtype: str) -> int:
        """How many resources of ``rtype`` are stored."""
        return len(self.resources.get(rtype, {}))

    # ------------------------------------------------------------------ the app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if path == "/token" and method == "POST":
            await self._token(headers, bytes(body), send)
        elif path == "/fhir" and method == "POST":
            await self._transaction(headers, bytes(body), send)
        elif path.startswith("/fhir/") and method == "GET":
            await self._search(path[len("/fhir/") :], scope.get("query_string", b""), send)
        else:
            await _respond(send, 404, {"error": "not found"})

    async def _token(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        self.token_requests += 1
        form = parse_qs(body.decode())
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            await _respond(send, 401, {"error": "invalid_client"})
            return
        if form.get("grant_type") != ["client_credentials"]:
            await _respond(send, 400, {"error": "unsupported_grant_type"})
            return
        token = uuid.uuid4().hex
        self.tokens.add(token)
        await _respond(
            send,
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
        )

    async def _transaction(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        self.bodies.append(body)
        behaviour = self._plan.popleft() if self._plan else "ok"
        self.log.append(behaviour)
        self.entered.set()
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            await _respond(send, 401, _outcome("login", "token missing or unknown"))
            return
        if behaviour in ("500", "503", "400", "401"):
            await _respond(send, int(behaviour), _outcome("exception", f"told to {behaviour}"))
            return
        if behaviour == "timeout_before_store":
            await asyncio.sleep(self.hold_seconds)
            await _respond(send, 504, _outcome("timeout", "too slow"))
            return
        if behaviour == "drop_before_store":
            await _drop(send)
            return
        if behaviour == "hang_before_store":
            await self._release.wait()
            await _drop(send)
            return
        try:
            bundle = json.loads(body)
            response = self._apply(bundle)
        except Exception as exc:
            await _respond(send, 400, _outcome("invalid", type(exc).__name__))
            return
        self.stored_at.setdefault(str(bundle.get("id")), time.monotonic())
        self.stored.set()
        if behaviour == "drop_after_store":
            await _drop(send)
            return
        if behaviour == "slow_after_store":
            await asyncio.sleep(self.hold_seconds)
        if behaviour == "hang_after_store":
            await self._release.wait()
        await _respond(send, 200, response)

    def _apply(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply one transaction, all or nothing (like a FHIR server)."""
        from fhir.resources.R4B import get_fhir_model_class

        get_fhir_model_class("Bundle").model_validate(bundle)
        if bundle.get("type") != "transaction":
            raise ValueError("not a transaction")
        mapping: dict[str, str] = {}
        new: list[tuple[str, str, dict[str, Any]]] = []
        answers: list[dict[str, Any]] = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            rtype = resource["resourceType"]
            get_fhir_model_class(rtype).model_validate(resource)
            request = entry["request"]
            if request["method"] != "POST" or request["url"] != rtype:
                raise ValueError("only conditional creates are supported")
            condition = request.get("ifNoneExist", "")
            key, _, ident = condition.partition("=")
            system, _, value = ident.partition("|")
            if key != "identifier" or not system or not value:
                raise ValueError("ifNoneExist must be identifier=system|value")
            matches = self.find(rtype, system, value) + [
                r
                for t, _, r in new
                if t == rtype
                and any(
                    i.get("system") == system and i.get("value") == value
                    for i in r.get("identifier", [])
                )
            ]
            if len(matches) > 1:
                raise ValueError("ifNoneExist matched more than one resource (412)")
            if matches:
                server_id = matches[0]["id"]
                status = "200 OK"
            else:
                server_id = uuid.uuid4().hex
                stored = json.loads(json.dumps(resource))
                stored["id"] = server_id
                new.append((rtype, server_id, stored))
                status = "201 Created"
            mapping[entry["fullUrl"]] = f"{rtype}/{server_id}"
            answers.append({"response": {"status": status, "location": f"{rtype}/{server_id}"}})
        for rtype, server_id, resource in new:
            _rewrite_refs(resource, mapping)
            self.resources.setdefault(rtype, {})[server_id] = resource
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}

    async def _search(self, rtype: str, query: bytes, send: Send) -> None:
        params = parse_qs(query.decode())
        found = list(self.resources.get(rtype, {}).values())
        if "identifier" in params:
            system, _, value = params["identifier"][0].partition("|")
            found = self.find(rtype, system, value)
        await _respond(
            send,
            200,
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(found),
                "entry": [{"resource": r} for r in found],
            },
        )


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _rewrite_refs(node: Any, mapping: dict[str, str]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and ref in mapping:
            node["reference"] = mapping[ref]
        for value in node.values():
            _rewrite_refs(value, mapping)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, mapping)


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/fhir+json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _drop(send: Send) -> None:
    """Break the connection mid-response: promise 4 KiB, send 10 bytes, stop."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/fhir+json"), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"resource', "more_body": True})
    # Returning without finishing makes uvicorn close the connection.


@dataclass(frozen=True)
class RunningReceiver:
    """Where the receiver listens."""

    receiver: FhirReceiver
    base_url: str

    @property
    def fhir_url(self) -> str:
        """The FHIR base URL."""
        return f"{self.base_url}/fhir"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"{self.base_url}/token"


@asynccontextmanager
async def running_receiver(receiver: FhirReceiver | None = None) -> AsyncIterator[RunningReceiver]:
    """Serve a :class:`FhirReceiver` on 127.0.0.1 (a free port) until the block ends."""
    receiver = receiver or FhirReceiver()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        receiver,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield RunningReceiver(receiver, f"http://127.0.0.1:{port}")
    finally:
        receiver.release()
        server.should_exit = True
        await task
        sock.close()
