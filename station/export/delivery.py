"""Delivering the outbox to the care record: an OAuth2-authenticated FHIR client and a worker.

:class:`FhirClient` POSTs one transaction Bundle to the configured FHIR base URL with httpx:
TLS verified (httpx's default context or the configured CA bundle), a bearer token from the
OAuth2 client-credentials grant (client id and secret sent with HTTP Basic, RFC 6749 section
2.3.1), cached until shortly before it expires and dropped when the server answers 401.
Every failure becomes a :class:`DeliveryFailed` with a short outcome code for the audit log.

:class:`DeliveryWorker` drains the outbox: for each due export it opens the sealed payload
with the outbox key (in memory, for this attempt only), builds and validates the Bundle,
sends it, and records the result (delivered: the sealed payload is deleted; failed: the next
attempt is scheduled with back-off). It never logs a payload, a Bundle, a response body or
an exception text that could quote one: logs and audit carry export ids and outcome codes.

Exactly once, as the receiver sees it: a crash (even SIGKILL) between the server storing a
Bundle and the outbox recording it leaves the export pending; the retry sends the identical
Bundle, whose conditional creates match what is already there, so nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx

from station.core.clock import Clock
from station.core.ports import AuditSink
from station.export.config import ExportConfig
from station.export.errors import DeliveryFailed, ExportError
from station.export.fhir import build_bundle, validate_bundle
from station.export.keys import OutboxKey
from station.export.outbox import Outbox, OutboxEntry, backoff_delay
from station.export.payload import open_export

__all__ = ["DeliveryReport", "DeliveryWorker", "FhirClient"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: A token is renewed this long before the server says it expires.
_TOKEN_MARGIN_SECONDS: Final = 30.0
_FHIR_JSON: Final = "application/fhir+json"
#: Largest response we read (a transaction-response is small).
_MAX_RESPONSE_BYTES: Final = 1024 * 1024


def _pseudonym(entry_id: str | None) -> str | None:
    """The queue entry id as the audit log's resident pseudonym (as stationd's API does)."""
    if entry_id is None:
        return None
    lowered = entry_id.lower()
    return lowered if lowered[:1].isalnum() else None


class FhirClient:
    """Sends transaction Bundles to one FHIR endpoint (see the module docs)."""

    def __init__(
        self, config: ExportConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        timeout = httpx.Timeout(config.timeout_seconds)
        # TLS: the CA bundle IT configured, else the OS's CA store (not certifi's copy);
        # proxies: the environment's (HTTPS_PROXY, NO_PROXY in station.env), as a
        # municipality's network needs. httpx no longer reads .netrc.
        ca_bundle = config.ca_bundle
        self._http = httpx.AsyncClient(
            timeout=timeout,
            verify=ssl.create_default_context(
                cafile=str(ca_bundle) if ca_bundle is not None else None
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=True,
        )
        self._token: str | None = None
        self._token_expires = 0.0

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def drop_token(self) -> None:
        """Forget the cached access token (the server refused it)."""
        self._token = None

    async def _access_token(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        cfg = self._config
        form = {"grant_type": "client_credentials"}
        if cfg.scope:
            form["scope"] = cfg.scope
        try:
            response = await self._http.post(
                cfg.token_url,
                data=form,
                auth=(cfg.client_id, cfg.client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise DeliveryFailed("token request timed out", "failed_token_timeout") from None
        except httpx.TransportError as exc:
            raise DeliveryFailed(
                f"token request failed: {type(exc).__name__}", "failed_token_unreachable"
            ) from None
        if response.status_code != 200:
            raise DeliveryFailed(
                f"token endpoint answered HTTP {response.status_code}", "failed_token_refused"
            )
        try:
            body = response.json()
            token = body["access_token"]
            kind = str(body.get("token_type", "bearer")).lower()
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise DeliveryFailed(
                "token endpoint sent no usable token", "failed_token_invalid"
            ) from None
        if not isinstance(token, str) or not token or kind != "bearer":
            raise DeliveryFailed("token endpoint sent no bearer token", "failed_token_invalid")
        self._token = token
        self._token_expires = time.monotonic() + max(0.0, lifetime - _TOKEN_MARGIN_SECONDS)
        return token

    async def send_transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST ``bundle``; the server's transaction-response, or :class:`DeliveryFailed`."""
        token = await self._access_token()
        try:
            response = await self._http.post(
                self._config.fhir_base_url,
                json=bundle,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": _FHIR_JSON,
                    "Accept": _FHIR_JSON,
                },
            )
        except httpx.TimeoutException:
            raise DeliveryFailed("FHIR request timed out", "failed_timeout") from None
        except httpx.ConnectError:
            raise DeliveryFailed("FHIR endpoint unreachable", "failed_connect") from None
        except httpx.TransportError as exc:
            # The connection broke mid-request or mid-response: the server may or may not
            # have stored the Bundle. The retry's conditional creates settle it.
            raise DeliveryFailed(
                f"FHIR connection dropped: {type(exc).__name__}", "failed_dropped"
            ) from None
        status = response.status_code
        if status in (401, 403):
            self.drop_token()
            raise DeliveryFailed(f"FHIR endpoint refused the token (HTTP {status})", "failed_auth")
        if status == 429:
            raise DeliveryFailed("FHIR endpoint is throttling (HTTP 429)", "failed_throttled")
        if status >= 500:
            raise DeliveryFailed(f"FHIR endpoint failed (HTTP {status})", "failed_server_error")
        if status != 200:
            # 4xx: the server rejects the Bundle. Kept and retried (hourly, after the first
            # few): a fixed configuration or server makes it go through; IT sees the code.
            raise DeliveryFailed(
                f"FHIR endpoint rejected the Bundle (HTTP {status})", "failed_rejected"
            )
        if len(response.content) > _MAX_RESPONSE_BYTES:
            raise DeliveryFailed("FHIR response too large", "failed_protocol")
        try:
            body = response.json()
        except ValueError:
            raise DeliveryFailed("FHIR response is not JSON", "failed_protocol") from None
        _check_transaction_response(body, len(bundle.get("entry", [])))
        return dict(body)


def _check_transaction_response(body: Any, expected_entries: int) -> None:
    """A 200 counts only with a transaction-response whose every entry succeeded."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise DeliveryFailed("FHIR response is not a Bundle", "failed_protocol")
    if body.get("type") != "transaction-response":
        raise DeliveryFailed("FHIR response is not a transaction-response", "failed_protocol")
    entries = body.get("entry")
    if not isinstance(entries, list) or len(entries) != expected_entries:
        raise DeliveryFailed("FHIR response has the wrong number of entries", "failed_protocol")
    for entry in entries:
        status = str((entry or {}).get("response", {}).get("status", ""))
        if not status[:1] == "2":
            raise DeliveryFailed("FHIR response reports a failed entry", "failed_protocol")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one pass over the outbox did."""

    delivered: int
    failed: int


class DeliveryWorker:
    """Drains the outbox into the EOJ (see the module docs); one per outbox.

    ``run_blocking`` runs the outbox's (blocking SQLite) calls off the loop; it defaults to
    ``asyncio.to_thread``. ``audit`` gets ``export`` entries: ``delivered`` and each
    ``failed_*`` attempt, with the resident as a pseudonym.
    """

    def __init__(
        self,
        *,
        outbox: Outbox,
        key: OutboxKey,
        config: ExportConfig,
        clock: Clock,
        client: FhirClient | None = None,
        audit: AuditSink | None = None,
        rng: random.Random | None = None,
        run_blocking: Callable[..., Awaitable[Any]] | None = None,
        validate: bool = True,
    ) -> None:
        self.outbox = outbox
        self.key = key
        self.config = config
        self.clock = clock
        self.client = client or FhirClient(config)
        self.audit = audit
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrecy)
        self._run_blocking = run_blocking or asyncio.to_thread
        self._validate = validate
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self.delivered_total = 0
        self.failed_total = 0

    async def _blocking(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        result: _T = await self._run_blocking(fn, *args, **kwargs)
        return result

    def wake(self) -> None:
        """Something was enqueued or made due: look at the outbox now."""
        self._wake.set()

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def run_once(self, *, limit: int = 20) -> DeliveryReport:
        """Attempt every export due now (at most ``limit``), one after the other.

        Passes never overlap (a lock): two at once would send the same export twice.
        """
        delivered = failed = 0
        async with self._pass_lock:
            entries = await self._blocking(self.outbox.due, self.clock.now(), limit=limit)
            for entry in entries:
                if await self._attempt(entry):
                    delivered += 1
                else:
                    failed += 1
        return DeliveryReport(delivered, failed)

    async def _attempt(self, entry: OutboxEntry) -> bool:
        try:
            await self._send(entry)
        except DeliveryFailed as exc:
            await self._failed(entry, exc.outcome)
            return False
        except ExportError as exc:
            # The payload could not be opened or is not valid FHIR: kept (nothing is ever
            # dropped) and retried on the slow schedule; IT sees the outcome code.
            _log.error("export %s cannot be prepared: %s", entry.id, type(exc).__name__)
            await self._failed(entry, "failed_unreadable")
            return False
        except Exception as exc:
            # Our bug: logged by type only (an exception text could quote the payload).
            _log.error("export %s failed unexpectedly: %s", entry.id, type(exc).__name__)
            await self._failed(entry, "failed_internal")
            return False
        await self._blocking(self.outbox.mark_delivered, entry.id)
        self.delivered_total += 1
        _log.info("export %s delivered (attempt %d)", entry.id, entry.attempts + 1)
        self._audit("delivered", entry)
        return True

    async def _send(self, entry: OutboxEntry) -> None:
        # Opening, building and validating (fhir.resources: ~10 ms of CPU) run off the loop.
        bundle = await asyncio.to_thread(self._prepare, entry)
        await self.client.send_transaction(bundle)

    def _prepare(self, entry: OutboxEntry) -> dict[str, Any]:
        if entry.sealed is None:
            raise ExportError("a pending export has no sealed payload")
        # The plaintext lives in these locals (and the Bundle) for this attempt only.
        payload = open_export(
            self.key, entry.sealed, export_id=entry.id, consultation_id=entry.consultation_id
        )
        bundle = build_bundle(payload, self.config)
        del payload
        if self._validate:
            validate_bundle(bundle)
        return bundle

    async def _failed(self, entry: OutboxEntry, outcome: str) -> None:
        self.failed_total += 1
        delay = backoff_delay(entry.attempts + 1, self._rng)
        next_at = self.clock.now() + delay
        await self._blocking(
            self.outbox.record_failure, entry.id, outcome=outcome, next_attempt_at=next_at
        )
        _log.warning(
            "export %s attempt %d failed (%s); next in %.0f s",
            entry.id,
            entry.attempts + 1,
            outcome,
            delay.total_seconds(),
        )
        self._audit(outcome, entry)

    def _audit(self, outcome: str, entry: OutboxEntry) -> None:
        if self.audit is None:
            return
        try:
            self.audit.record(
                "export", staff=None, resident=_pseudonym(entry.entry_id), outcome=outcome
            )
        except Exception as exc:
            _log.error("audit of export %s failed: %s", entry.id, type(exc).__name__)

    async def run(self, stop: asyncio.Event, *, max_sleep: float = 60.0) -> None:
        """Deliver until ``stop`` is set: a pass, then sleep until the next export is due.

        Sleeps at most ``max_sleep`` seconds (the wall clock may jump), and wakes at once on
        :meth:`wake` or ``stop``.
        """
        while not stop.is_set():
            # Cleared before the pass: an enqueue during the pass still wakes the next wait.
            self._wake.clear()
            try:
                await self.run_once()
                next_due = await self._blocking(self.outbox.next_due_at)
            except Exception as exc:
                _log.error("outbox pass failed: %s", type(exc).__name__)
                next_due = None
            if next_due is None:
                sleep = max_sleep
            else:
                sleep = min(max_sleep, max(0.0, (next_due - self.clock.now()).total_seconds()))
            if sleep <= 0:
                await asyncio.sleep(0)  # let others run between passes
                continue
            waiters = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=sleep, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiter
