"""The hub's shelf of station releases: archives IT added, served to stations by their hash.

The hub only stores and relays: a release is trusted by a station because IT's signed
configuration names its SHA-256 (``provisioning/release.py``), never because the hub has it.
Files: ``<data dir>/releases/<sha256>.tar`` (the archive as IT built it) and
``<sha256>.json`` (its manifest and size, for ``kontaktstation admin release list``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from provisioning.release import Release, ReleaseInvalid, ReleaseManifest, read_release

__all__ = ["ReleaseShelf", "ShelvedRelease"]

_SHA256: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class ShelvedRelease:
    """One release on the shelf."""

    sha256: str
    size: int
    manifest: ReleaseManifest

    @property
    def version(self) -> str:
        return self.manifest.version


class ReleaseShelf:
    """The releases in one directory (made on first use, 0750)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def add(self, archive: Path) -> Release:
        """Check ``archive`` is a release and put a copy on the shelf (idempotent). Refused: a
        second build under a version already on the shelf (stations tell releases apart by
        version: bump it)."""
        release = read_release(archive)
        for shelved in self.list():
            if shelved.version == release.version and shelved.sha256 != release.sha256:
                raise ReleaseInvalid(
                    f"version {release.version} is on the hub already as another build "
                    f"({shelved.sha256[:16]}); give this one a new version"
                )
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        target = self.directory / f"{release.sha256}.tar"
        if not target.exists():
            tmp = self.directory / f".{release.sha256}.tmp"
            try:
                shutil.copyfile(archive, tmp)
                # What was copied is what was checked, or it is not shelved.
                read_release(tmp, sha256=release.sha256)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
        info = {"size": release.size, "manifest": release.manifest.model_dump(mode="json")}
        tmp_info = self.directory / f".{release.sha256}.json.tmp"
        tmp_info.write_text(json.dumps(info, indent=2) + "\n")
        tmp_info.replace(self.directory / f"{release.sha256}.json")
        return release

    def path(self, sha256: str) -> Path | None:
        """The archive with this hash, if shelved."""
        if not _SHA256.fullmatch(sha256):
            return None
        path = self.directory / f"{sha256}.tar"
        return path if path.is_file() else None

    def list(self) -> list[ShelvedRelease]:
        """Every shelved release, newest file first."""
        found = []
        if not self.directory.is_dir():
            return []
        for info in self.directory.glob("*.json"):
            sha256 = info.stem
            if self.path(sha256) is None:
                continue
            data = json.loads(info.read_text())
            found.append(
                ShelvedRelease(sha256, int(data["size"]), ReleaseManifest(**data["manifest"]))
            )
        return sorted(found, key=lambda r: (self.directory / f"{r.sha256}.tar").stat().st_mtime,
                      reverse=True)  # fmt: skip

    def find(self, version: str) -> ShelvedRelease:
        """The shelved release of ``version`` (exactly one)."""
        matches = [r for r in self.list() if r.version == version or r.sha256.startswith(version)]
        if len(matches) != 1:
            what = "no release" if not matches else f"{len(matches)} releases"
            raise ReleaseInvalid(f"{what} on the hub match {version!r} (admin release list)")
        return matches[0]
