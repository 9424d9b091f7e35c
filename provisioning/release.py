"""A release of the station's software: one archive IT builds, the hub relays, stations install.

The archive is an uncompressed tar (the wheels in it are compressed already) with exactly:

* ``release.json``: ``{"format": "kontaktstation-release-1", "version", "changelog"}``;
* ``requirements.lock``: one ``name==version --hash=sha256:...`` line per wheel, which pip
  installs with ``--require-hashes --no-index`` (every station installs the same bytes);
* ``wheels/<file>.whl``: the project's own wheel and every dependency for one target (board,
  CPU, Python); nothing else, no directories, links or other paths.

No signature of its own: IT's signed configuration names the archive by its SHA-256
(``StationConfig.software``), so the hub (or anyone between) cannot change a byte of it
without the station noticing, and rolling a release out to a group of stations first is
setting it in that group's configuration layer. Shared by ``kontaktstation admin`` (build,
add), the hub (serve) and the station's updater (check, unpack): stdlib and pydantic only.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "LOCK_FILE",
    "MANIFEST_FILE",
    "RELEASE_FORMAT",
    "Release",
    "ReleaseInvalid",
    "ReleaseManifest",
    "build_release",
    "file_sha256",
    "read_release",
    "unpack_release",
]

RELEASE_FORMAT: Final = "kontaktstation-release-1"
MANIFEST_FILE: Final = "release.json"
LOCK_FILE: Final = "requirements.lock"
WHEELS: Final = "wheels"
#: The project's distribution: its wheel's version is the release's version.
PROJECT: Final = "kontaktstation"
#: A release bigger than this is refused before it is read (a full cp313 wheelhouse is ~90 MB).
MAX_RELEASE_BYTES: Final = 512 * 1024 * 1024
#: A wheel's file name: name-version[-build]-python-abi-platform.whl (PEP 427).
_WHEEL = re.compile(
    r"(?P<name>[A-Za-z0-9_.]+)-(?P<version>[A-Za-z0-9_.!+]+)(-\d[^-]*)?-[^-/]+-[^-/]+-[^-/]+\.whl",
    re.ASCII,
)
VersionText = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z.+!-]+$")]


class ReleaseInvalid(ValueError):
    """The archive is not a release this station or hub accepts (English, for IT and logs)."""


class ReleaseManifest(BaseModel):
    """``release.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["kontaktstation-release-1"] = RELEASE_FORMAT
    version: VersionText
    #: What changed, for IT (``kontaktstation admin release list``); never shown to staff.
    changelog: Annotated[str, Field(max_length=4000)] = ""


@dataclass(frozen=True, slots=True)
class Release:
    """A checked release archive."""

    manifest: ReleaseManifest
    sha256: str
    size: int
    #: Wheel file name -> its SHA-256, as the lock names them.
    wheels: dict[str, str]

    @property
    def version(self) -> str:
        return self.manifest.version


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _wheel_parts(name: str) -> tuple[str, str]:
    match = _WHEEL.fullmatch(name)
    if match is None:
        raise ReleaseInvalid(f"{name}: not a wheel file name")
    return match["name"], match["version"]


def _lock_text(wheels: dict[str, str]) -> str:
    lines = []
    for file, digest in sorted(wheels.items()):
        name, version = _wheel_parts(file)
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


def build_release(wheel_dir: Path, out: Path, *, changelog: str = "") -> Release:
    """Pack every wheel in ``wheel_dir`` (the project's own among them) into ``out``.

    The version is the project wheel's. Deterministic: the same wheels and changelog give the
    same bytes (sorted members, no times, no owners).
    """
    files = sorted(p for p in wheel_dir.iterdir() if p.name.endswith(".whl") and p.is_file())
    projects = [p for p in files if _wheel_parts(p.name)[0].lower() == PROJECT]
    if len(projects) != 1:
        raise ReleaseInvalid(
            f"{wheel_dir}: needs exactly one {PROJECT} wheel, found {len(projects)}"
        )
    names = [_wheel_parts(p.name)[0].lower().replace("_", "-") for p in files]
    if len(set(names)) != len(names):
        raise ReleaseInvalid(f"{wheel_dir}: two wheels of one distribution")
    manifest = ReleaseManifest(version=_wheel_parts(projects[0].name)[1], changelog=changelog)
    wheels = {p.name: file_sha256(p) for p in files}
    members: list[tuple[str, bytes | Path]] = [
        (MANIFEST_FILE, manifest.model_dump_json(indent=2).encode() + b"\n"),
        (LOCK_FILE, _lock_text(wheels).encode()),
        *((f"{WHEELS}/{p.name}", p) for p in files),
    ]
    tmp = out.with_name(f".{out.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in members:
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return read_release(out)


def read_release(path: Path, *, sha256: str | None = None) -> Release:
    """Check ``path`` is a release (and, given ``sha256``, exactly that one); its contents.

    Refuses any member but the three kinds above, a lock that does not name every wheel with
    its true hash, and a manifest whose version is not the project wheel's.
    """
    size = path.stat().st_size
    if size > MAX_RELEASE_BYTES:
        raise ReleaseInvalid(f"{path.name}: {size} bytes, more than a release may be")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise ReleaseInvalid(
            f"{path.name}: SHA-256 {digest[:12]}..., not the {sha256[:12]}... asked for"
        )
    manifest: ReleaseManifest | None = None
    lock = ""
    wheels: dict[str, str] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                stream = tar.extractfile(member) if member.isreg() else None
                if stream is None:
                    raise ReleaseInvalid(f"{member.name}: not a regular file")
                if member.name == MANIFEST_FILE:
                    manifest = ReleaseManifest.model_validate_json(stream.read())
                elif member.name == LOCK_FILE:
                    lock = stream.read().decode("ascii")
                elif (
                    member.name.startswith(f"{WHEELS}/")
                    and "/" not in member.name[len(WHEELS) + 1 :]
                ):
                    name = member.name[len(WHEELS) + 1 :]
                    _wheel_parts(name)
                    if name in wheels:
                        raise ReleaseInvalid(f"{member.name}: twice")
                    wheels[name] = hashlib.sha256(stream.read()).hexdigest()
                else:
                    raise ReleaseInvalid(f"{member.name}: not part of a release")
    except (tarfile.TarError, UnicodeDecodeError, ValidationError, json.JSONDecodeError) as exc:
        raise ReleaseInvalid(f"{path.name}: unreadable ({type(exc).__name__})") from None
    if manifest is None or not lock:
        raise ReleaseInvalid(f"{path.name}: no {MANIFEST_FILE} or {LOCK_FILE}")
    if lock != _lock_text(wheels):
        raise ReleaseInvalid(f"{path.name}: {LOCK_FILE} does not name exactly its wheels' hashes")
    versions = [_wheel_parts(w)[1] for w in wheels if _wheel_parts(w)[0].lower() == PROJECT]
    if versions != [manifest.version]:
        raise ReleaseInvalid(f"{path.name}: version {manifest.version} is not its project wheel's")
    return Release(manifest, digest, size, wheels)


def unpack_release(path: Path, target: Path, *, sha256: str) -> Release:
    """Check ``path`` is the release ``sha256`` and unpack it into the new directory ``target``."""
    release = read_release(path, sha256=sha256)
    target.mkdir(mode=0o755)
    (target / WHEELS).mkdir(mode=0o755)
    # Only the members read_release allowed (regular files with checked names), written one
    # by one: no link, device, owner or mode from the archive, on every Python (the tarfile
    # "data" filter is newer than Bookworm's 3.11.2). The caller unpacks its own copy (a file
    # in a directory only it writes), so these are the bytes just checked; pip checks each
    # wheel against the lock again.
    with tarfile.open(path, "r:") as tar:
        for member in tar:
            stream = tar.extractfile(member)
            if stream is None or member.name not in _allowed(release):
                raise ReleaseInvalid(f"{member.name}: changed since it was checked")
            with (target / member.name).open("xb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
    return release


def _allowed(release: Release) -> set[str]:
    return {MANIFEST_FILE, LOCK_FILE, *(f"{WHEELS}/{name}" for name in release.wheels)}
