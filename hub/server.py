"""``kontaktstation hub``: run the hub with uvicorn on 127.0.0.1 (a TLS proxy sits in front)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

__all__ = ["main"]

DEFAULT_PORT = 8470


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kontaktstation hub",
        description=(
            "Run the municipality's server: the rendezvous for station calls and the GP's web "
            "page. Settings come from KONTAKTSTATION_HUB_* variables (secrets from *_FILE ones, "
            "never the command line). Stations sign in with their enrolled identity keys."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--data-dir", type=Path, help="directory for the SQLite database")
    parser.add_argument("--public-url", help="URL GPs reach the hub at (GP links start with it)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, build the settings and serve until interrupted; returns the exit code."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides: dict[str, Any] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.public_url is not None:
        overrides["public_base_url"] = args.public_url

    from hub.settings import HubSettings

    try:
        settings = HubSettings.from_env(**overrides)
    except ValidationError as exc:
        # Field and reason only: pydantic's message would quote the value (maybe the token).
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"kontaktstation hub: {where}: {error['msg']}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kontaktstation hub: cannot read a secret file: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from hub.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,  # keep the logging configured above
        access_log=False,  # GPs' addresses are personal data; the app logs what matters
        server_header=False,
        timeout_graceful_shutdown=5,  # long-polls are cut short on shutdown
    )
    return 0
