"""The delivery worker on its own: ``python -m station.export --data-dir DIR``.

stationd runs the same worker on its loop; this entry point runs it alone (for tests that
kill the delivering process, and for IT draining an outbox by hand). It delivers until
SIGTERM/SIGINT, or with ``--once`` makes one pass and exits (status 0 when nothing pending
failed in that pass).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from station.core.clock import SystemClock
from station.errors import StationError

__all__ = ["main"]


async def _run(data_dir: Path, once: bool, max_sleep: float) -> int:
    from station.export.errors import ExportNotConfigured
    from station.export.service import ExportService
    from station.storage.audit import AuditLog

    clock = SystemClock()
    audit = AuditLog.open(data_dir, clock=clock)
    service = ExportService.open(data_dir, clock=clock, audit=audit)
    try:
        if service.config is None:
            raise ExportNotConfigured(f"no export configuration in {data_dir}")
        if once:
            worker = service.build_worker()
            assert worker is not None
            report = await worker.run_once()
            return 0 if report.failed == 0 else 3
        await service.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # The service started a worker task already; wait for the stop signal.
        await stop.wait()
        return 0
    finally:
        await service.stop()
        service.close()
        audit.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export delivery worker; the exit status."""
    from station.storage.datadir import data_dir

    parser = argparse.ArgumentParser(
        prog="python -m station.export", description="Deliver the export outbox to the EOJ."
    )
    parser.add_argument("--data-dir", type=Path, default=data_dir())
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--max-sleep", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_run(args.data_dir, args.once, args.max_sleep))
    except StationError as exc:
        logging.getLogger("station.export").error("export worker stopped: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
