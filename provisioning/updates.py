"""The station's side of a software update: follow the release IT's configuration names.

stationd runs as an unprivileged user and cannot install software; the updater
(``provisioning/updater.py``, a root unit started by a path unit when a request appears)
can. Between them, two small files:

* ``<data dir>/updates/request.json`` (:class:`UpdateRequest`), written by stationd when the
  archive is fetched and checked and the station is locked with no call (never during a call
  or a staff member's session): the release,
  the archive's file name beside it, and the signed configuration that names it. The updater
  trusts none of it but what IT's signature covers: it verifies that configuration itself
  against IT's keys from the set-up (root's, not stationd's), so a compromised stationd cannot
  make root install anything else, nor an older release again.
* ``/var/lib/kontaktstation-update/status.json`` (:class:`UpdateStatus`), written by the
  updater: what became of the last release it was asked to install. stationd reads it for the
  heartbeat and never asks again for a release that failed or was rolled back: IT names
  another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provisioning.client import HubClient
from provisioning.errors import EnrollmentError, HubUnreachable
from provisioning.protocol import SignedEnvelope
from provisioning.release import MAX_RELEASE_BYTES, ReleaseInvalid, read_release
from provisioning.schema import SoftwareRelease, UpdateReport
from station.storage.durable import atomic_write

__all__ = [
    "KEYCHAIN_FILE",
    "REQUEST_FILE",
    "KeyChain",
    "ReleaseFollower",
    "UpdateRequest",
    "UpdateStatus",
    "read_status",
]

_log = logging.getLogger(__name__)

REQUEST_FILE: Final = "request.json"
KEYCHAIN_FILE: Final = "keychain.json"


class UpdateRequest(BaseModel):
    """stationd → updater: install this release (IT's signed configuration names it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: SoftwareRelease
    #: The archive's file name in the same directory.
    archive: Annotated[str, Field(pattern=r"^[0-9a-f]{64}\.tar$")]
    #: The signed configuration naming the release, exactly as the hub delivered it.
    config: SignedEnvelope


class KeyChain(BaseModel):
    """stationd → updater, beside the request (:data:`KEYCHAIN_FILE`): the configurations that
    changed IT's keys, in the order stationd committed them, as signed
    (:meth:`provisioning.configstore.ConfigStore.key_chain`). How the updater follows a key
    rotation that came in configurations naming no release. A file of its own, not a field of
    the request: an updater from before it (the set-up's release, ``extra="forbid"``) reads
    the request as before and never sees this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    links: tuple[SignedEnvelope, ...]


class UpdateStatus(BaseModel):
    """updater → stationd: the last release it was asked for, and what became of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: SoftwareRelease
    outcome: Literal["installing", "installed", "rolled_back", "failed"]
    reason: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]*$")] = ""
    #: The version of the configuration that named the release (0: not verified).
    config_version: int = Field(default=0, ge=0)


def read_status(path: Path) -> UpdateStatus | None:
    """The updater's status file (None: none yet, or unreadable)."""
    try:
        return UpdateStatus.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError):
        _log.warning("%s is unreadable; taken as no status", path)
        return None


class ReleaseFollower:
    """Fetch the release the configuration names and hand it to the updater when idle.

    ``status_file``: where the updater reports (None: no updater on this machine, e.g. a
    development run; the heartbeat then says ``failed``/``no_updater`` when IT names a
    release, and nothing is fetched).
    """

    def __init__(self, spool: Path, status_file: Path | None, running: str) -> None:
        self.spool = spool
        self.status_file = status_file
        self.running = running
        self.report: UpdateReport | None = None

    def _set(self, release: SoftwareRelease, state: str, reason: str = "") -> None:
        report = UpdateReport(version=release.version, state=state, reason=reason)  # type: ignore[arg-type]
        if report != self.report:
            _log.info("release %s: %s %s", release.version, state, reason)
        self.report = report

    def _clear(self) -> None:
        if not self.spool.is_dir():
            return
        for path in self.spool.iterdir():
            if path.name != REQUEST_FILE:
                with contextlib.suppress(OSError):
                    path.unlink()

    async def follow(
        self,
        client: HubClient,
        wanted: SoftwareRelease | None,
        envelope: SignedEnvelope | None,
        *,
        config_version: int,
        busy: bool,
        chain: Sequence[SignedEnvelope] = (),
    ) -> None:
        """One step: report, fetch, or hand over; never raises for the hub's or the disk's
        trouble (the agent's loop must go on: heartbeats, remote locks and wipes)."""
        try:
            await self._follow(client, wanted, envelope, config_version, busy, tuple(chain))
        except OSError as exc:
            if wanted is not None:
                self._set(wanted, "failed", "disk_error")
            _log.error("release not followed: %s", exc.strerror or type(exc).__name__)

    async def _follow(
        self,
        client: HubClient,
        wanted: SoftwareRelease | None,
        envelope: SignedEnvelope | None,
        config_version: int,
        busy: bool,
        chain: tuple[SignedEnvelope, ...] = (),
    ) -> None:
        if wanted is None:
            self.report = None
            await asyncio.to_thread(self._clear)
            return
        if wanted.version == self.running:
            self._set(wanted, "installed")
            await asyncio.to_thread(self._clear)
            return
        if self.status_file is None:
            self._set(wanted, "failed", "no_updater")
            return
        status = await asyncio.to_thread(read_status, self.status_file)
        if (
            status is not None
            and status.release == wanted
            and status.outcome in ("rolled_back", "failed")
            # A newer configuration naming it again (IT's word) asks once more.
            and status.config_version >= config_version
        ):
            self._set(wanted, status.outcome, status.reason)
            await asyncio.to_thread(self._clear)
            return
        if (self.spool / REQUEST_FILE).exists():
            self._set(wanted, "installing")
            return
        if busy:  # nothing fetched or handed over during a call or a staff session
            self._set(wanted, "waiting")
            return
        archive = self.spool / f"{wanted.sha256}.tar"
        if not archive.exists():
            self._set(wanted, "downloading")
            try:
                await self._fetch(client, wanted, archive)
            except (HubUnreachable, EnrollmentError) as exc:
                self._set(wanted, "failed", "download_failed")
                _log.warning("release %s not fetched: %s", wanted.version, exc)
                return
            except ReleaseInvalid as exc:
                self._set(wanted, "failed", "release_invalid")
                _log.error("release %s refused: %s", wanted.version, exc)
                return
        if envelope is None:  # the configuration naming it is not on disk: next time
            return
        request = UpdateRequest(release=wanted, archive=archive.name, config=envelope)
        keychain = self.spool / KEYCHAIN_FILE
        if chain:  # first: the request starts the updater
            links = KeyChain(links=chain).model_dump_json().encode()
            await asyncio.to_thread(atomic_write, keychain, links, replace=True, mode=0o600)
        else:
            await asyncio.to_thread(keychain.unlink, missing_ok=True)
        await asyncio.to_thread(
            atomic_write,
            self.spool / REQUEST_FILE,
            request.model_dump_json().encode(),
            replace=True,
            mode=0o600,
        )
        self._set(wanted, "installing")

    async def _fetch(self, client: HubClient, wanted: SoftwareRelease, archive: Path) -> None:
        await asyncio.to_thread(self._clear)
        self.spool.mkdir(mode=0o700, exist_ok=True)
        partial = archive.with_name(archive.name + ".part")
        try:
            with partial.open("wb") as stream:
                await client.download_release(wanted.sha256, stream, limit=MAX_RELEASE_BYTES)
            release = await asyncio.to_thread(read_release, partial, sha256=wanted.sha256)
            if release.version != wanted.version:
                raise ReleaseInvalid(f"the archive is {release.version}, not {wanted.version}")
            partial.replace(archive)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
