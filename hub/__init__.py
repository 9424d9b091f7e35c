"""The municipality's server: provisioning API, admin CLI, rendezvous and the GP's web page."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the hub (``kontaktstation hub``); see :func:`hub.server.main`."""
    # Imported here so ``import hub`` stays cheap and loads no web framework.
    from hub.server import main as server_main

    return server_main(argv)
