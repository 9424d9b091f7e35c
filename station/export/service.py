"""The export as stationd runs it: the outbox, its key, the delivery worker, the purge guard.

:class:`ExportService` is what the daemon wires in (``station.daemon.app``) and what the
local API's export endpoints call (``station.daemon.routes.export``). It is blind like the
rest of stationd: it stores what the staff UI sealed and opens it only inside the delivery
worker, at send time.

- No ``export.json`` in the data directory: delivery is off, :attr:`delivery_enabled` is
  False, enqueueing is refused, and the staff UI shows the plain-text summary
  (:func:`station.export.summary.plain_text_summary`).
- With it: the worker runs for the daemon's whole life, locked or not.

The purge guard: :meth:`ExportService.purge_documented` purges only consultations documented
at least ``retention`` ago *and* with no export still waiting; the receipts of what was
purged are dropped from the outbox too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from station.core.clock import Clock
from station.core.ports import AuditSink
from station.core.tasks import cancel_and_wait
from station.export.config import EXPORT_CONFIG_FILENAME, ExportConfig, load_export_config
from station.export.delivery import DeliveryWorker, FhirClient
from station.export.errors import ExportNotConfigured
from station.export.keys import OUTBOX_KEY_FILENAME, OutboxKey
from station.export.outbox import Outbox, OutboxEntry
from station.storage.store import DEFAULT_RETENTION, BlindStore, StoreScrubIncomplete

__all__ = ["ExportService"]

_log = logging.getLogger(__name__)


def _pseudonym(entry_id: str | None) -> str | None:
    if entry_id is None:
        return None
    lowered = entry_id.lower()
    return lowered if lowered[:1].isalnum() else None


class ExportService:
    """The outbox, its key and (when configured) the delivery worker; see the module docs."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        key: OutboxKey,
        config: ExportConfig | None,
        clock: Clock,
        audit: AuditSink | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.outbox = outbox
        self.key = key
        self.config = config
        self.clock = clock
        self.audit = audit
        self._transport = transport
        self.worker: DeliveryWorker | None = None
        #: How long documented consultations stay (IT's configuration may change it).
        self.retention: timedelta = DEFAULT_RETENTION
        self._stop = asyncio.Event()
        self._purge_now = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None
        self._started = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Clock,
        audit: AuditSink | None = None,
        config: ExportConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ExportService:
        """Open the outbox and key in ``data_dir``; the config from ``export.json`` unless given.

        Blocking (SQLite, files): call it off the loop.
        """
        if config is None:
            config = load_export_config(Path(data_dir) / EXPORT_CONFIG_FILENAME)
        key = OutboxKey.load_or_create(Path(data_dir) / OUTBOX_KEY_FILENAME)
        outbox = Outbox.open(Path(data_dir), clock=clock)
        return cls(
            outbox=outbox, key=key, config=config, clock=clock, audit=audit, transport=transport
        )

    # ------------------------------------------------------------------ what the UI sees

    @property
    def delivery_enabled(self) -> bool:
        """Whether a care-record endpoint is configured (else: the plain-text summary)."""
        return self.config is not None

    @property
    def public_key(self) -> bytes:
        """The outbox public key the staff UI seals exports to."""
        return self.key.public_key

    def enqueue(
        self,
        *,
        export_id: str,
        consultation_id: str,
        sealed: bytes,
        entry_id: str | None,
        staff_id: str | None,
    ) -> tuple[OutboxEntry, bool]:
        """Store a sealed export and wake the worker; ``(entry, created)``. Blocking.

        Refused with :class:`ExportNotConfigured` when there is no endpoint: an export that
        can never be delivered would block its consultation's purge for ever.
        """
        if not self.delivery_enabled:
            raise ExportNotConfigured("no care-record endpoint is configured")
        entry, created = self.outbox.enqueue(
            export_id=export_id, consultation_id=consultation_id, sealed=sealed, entry_id=entry_id
        )
        if self.audit is not None:
            self.audit.record(
                "export",
                staff=staff_id,
                resident=_pseudonym(entry_id),
                outcome="queued" if created else "queued_again",
            )
        if self.worker is not None:
            self.worker.wake()
        return entry, created

    def wake(self) -> None:
        """Look at the outbox now (after :meth:`retry_now`, from the loop)."""
        if self.worker is not None:
            self.worker.wake()

    # ------------------------------------------------------------------ life cycle

    def build_worker(self) -> DeliveryWorker | None:
        """Create the delivery worker (None without an endpoint) without starting it.

        :meth:`start` runs it in the background; tests and benchmarks drive its
        ``run_once`` themselves.
        """
        if self.config is None:
            return None
        if self.worker is None:
            self.worker = DeliveryWorker(
                outbox=self.outbox,
                key=self.key,
                config=self.config,
                clock=self.clock,
                client=FhirClient(self.config, transport=self._transport),
                audit=self.audit,
            )
        return self.worker

    async def start(self) -> None:
        """Start the delivery worker (if configured) on the running loop."""
        self._started = True
        if self.build_worker() is None:
            _log.info("no care-record endpoint configured; exports use the plain-text summary")
            return
        assert self.worker is not None
        loop = asyncio.get_running_loop()
        self._worker_task = loop.create_task(self.worker.run(self._stop), name="stationd-export")
        self._tasks.append(self._worker_task)

    async def reload_config(self, config: ExportConfig | None) -> None:
        """Deliver with ``config`` from now on (None: delivery off, the summary instead).

        The running worker stops (an attempt in flight is retried by the new one, as after
        a restart) and a new one starts with the new endpoint and credentials.
        """
        if config == self.config:
            return
        task, self._worker_task = self._worker_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(ValueError):
                self._tasks.remove(task)
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await self.worker.aclose()
            self.worker = None
        self.config = config
        if self._started and not self._stop.is_set():
            await self.start()
        _log.info("export configuration reloaded (delivery %s)", "on" if config else "off")

    def set_retention(self, retention: timedelta) -> None:
        """Purge with ``retention`` from now on, starting with a purge pass at once."""
        if retention <= timedelta(0):
            raise ValueError("retention must be positive")
        self.retention = retention
        self._purge_now.set()

    def start_purge_loop(
        self,
        store: BlindStore,
        run_store: Callable[..., Awaitable[Any]],
        *,
        interval_seconds: float = 3600.0,
        retention: timedelta | None = None,
    ) -> None:
        """Purge documented and delivered consultations every ``interval_seconds``.

        Each pass reads :attr:`retention` (``retention`` given here sets it), so
        :meth:`set_retention` takes effect at once.
        """
        if retention is not None:
            self.retention = retention

        async def loop() -> None:
            while not self._stop.is_set():
                self._purge_now.clear()
                try:
                    await run_store(self.purge_documented, store, self.clock.now(), self.retention)
                except Exception as exc:
                    _log.error("retention purge failed: %s", type(exc).__name__)
                stop = asyncio.ensure_future(self._stop.wait())
                wake = asyncio.ensure_future(self._purge_now.wait())
                try:
                    await asyncio.wait(
                        {stop, wake}, timeout=interval_seconds, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    stop.cancel()
                    wake.cancel()

        self._tasks.append(asyncio.get_running_loop().create_task(loop(), name="stationd-purge"))

    async def stop(self) -> None:
        """Stop the worker (an attempt in flight is abandoned: it is retried next start)."""
        self._stop.set()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self.worker is not None:
            with contextlib.suppress(Exception):
                await self.worker.aclose()

    def close(self) -> None:
        """Close the outbox (after :meth:`stop`)."""
        self.outbox.close()

    # ------------------------------------------------------------------ retention

    def purge_documented(
        self, store: BlindStore, now: datetime, retention: timedelta = DEFAULT_RETENTION
    ) -> int:
        """Purge what is documented ``retention`` ago and fully delivered; how many. Blocking.

        Cancelled consultations go ``retention`` after their slot ended. A consultation with
        an export still pending is kept, however old: the note must reach the care record
        first.
        """
        blocked = self.outbox.blocking_consultations()
        due = store.due_for_purge(now, retention, keep=blocked)
        try:
            purged = store.purge_documented(now, retention, keep=blocked)
        except StoreScrubIncomplete as exc:
            # The rows are gone (only the WAL scrub waits for the next pass): their outbox
            # records and the audit line must not wait with it.
            self._purged(due, exc.purged)
            raise
        self._purged(due, purged)
        return purged

    def _purged(self, due: list[str], purged: int) -> None:
        if purged:
            self.outbox.forget_consultations(due)
            if self.audit is not None:
                self.audit.record("purge", staff=None, resident=None, outcome="retention")
