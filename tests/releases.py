"""Small real wheels and releases for the update tests (pip installs them for real)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from provisioning.release import Release, build_release

__all__ = ["make_release", "make_wheel"]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def make_wheel(directory: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel (PEP 427) of ``files`` (path -> text), installable by pip."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name.replace('-', '_')}-{version}"
    members = {path: text.encode() for path, text in files.items()}
    members[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    )
    members[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = f"{dist}.dist-info/RECORD"
    lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members.items()]
    members[record] = ("\n".join([*lines, f"{record},,"]) + "\n").encode()
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in sorted(members.items()):
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def make_release(directory: Path, version: str, *, marker: str = "ok") -> Release:
    """A release whose project wheel (``kontaktstation``) holds one module,
    ``ks_release_probe``, saying ``marker``; and one dependency wheel."""
    wheels = directory / f"wheels-{version}"
    make_wheel(wheels, "kontaktstation", version, {"ks_release_probe.py": f"MARKER = {marker!r}\n"})
    make_wheel(wheels, "ks-release-dep", "1.0", {"ks_release_dep.py": "VALUE = 1\n"})
    return build_release(wheels, directory / f"release-{version}.tar", changelog=f"v{version}")
