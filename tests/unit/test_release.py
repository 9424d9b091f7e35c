"""Release archives (issue 15 item 3): what IT builds is exactly what a station accepts."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from provisioning.release import LOCK_FILE, ReleaseInvalid, build_release, read_release
from tests.releases import make_release, make_wheel


def test_a_release_names_every_wheel_by_hash_and_takes_the_project_wheels_version(
    tmp_path: Path,
) -> None:
    release = make_release(tmp_path, "1.2.3")
    assert release.version == "1.2.3"
    assert sorted(release.wheels) == [
        "kontaktstation-1.2.3-py3-none-any.whl",
        "ks_release_dep-1.0-py3-none-any.whl",
    ]
    with tarfile.open(tmp_path / "release-1.2.3.tar") as tar:
        lock = tar.extractfile(LOCK_FILE)
        assert lock is not None
        lines = lock.read().decode().splitlines()
    assert lines[0].startswith("kontaktstation==1.2.3 --hash=sha256:")
    assert read_release(tmp_path / "release-1.2.3.tar", sha256=release.sha256) == release


def test_the_same_wheels_make_the_same_bytes(tmp_path: Path) -> None:
    first = make_release(tmp_path / "a", "1.0")
    again = build_release(tmp_path / "a" / "wheels-1.0", tmp_path / "b.tar", changelog="v1.0")
    assert first.sha256 == again.sha256


def test_a_release_needs_its_project_wheel_once(tmp_path: Path) -> None:
    make_wheel(tmp_path / "w", "ks-release-dep", "1.0", {"a.py": ""})
    with pytest.raises(ReleaseInvalid, match="exactly one kontaktstation wheel"):
        build_release(tmp_path / "w", tmp_path / "r.tar")


def _rewrite(
    source: Path, target: Path, change: dict[str, bytes | None], *, link: str = ""
) -> None:
    """``source`` with members replaced (bytes), removed (None) or added; and a symlink."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for member in old:
            file = old.extractfile(member)
            assert file is not None
            data = change.pop(member.name, file.read())
            if data is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        for name, data in change.items():
            assert data is not None
            info = tarfile.TarInfo(name)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/shadow"
            new.addfile(info)


@pytest.mark.parametrize(
    ("change", "link", "refusal"),
    [
        # A file slipped in beside the wheels (a script a careless unpacker would run).
        ({"install.sh": b"#!/bin/sh\nrm -rf /\n"}, "", "not part of a release"),
        # A wheel swapped for another build: the lock no longer names its hash.
        ({"wheels/ks_release_dep-1.0-py3-none-any.whl": b"PK\x05\x06" + bytes(18)}, "",
         "does not name exactly"),
        # A path out of the release's directory.
        ({"wheels/../../etc/cron.d/x.whl": b"x"}, "", "not part of a release|not a wheel"),
        # A link among the wheels.
        ({}, "wheels/evil-1.0-py3-none-any.whl", "not a regular file"),
        # The lock left out.
        ({LOCK_FILE: None}, "", "no release.json or requirements.lock"),
    ],
)  # fmt: skip
def test_a_changed_archive_is_refused(
    tmp_path: Path, change: dict[str, bytes | None], link: str, refusal: str
) -> None:
    make_release(tmp_path, "1.0")
    changed = tmp_path / "changed.tar"
    _rewrite(tmp_path / "release-1.0.tar", changed, dict(change), link=link)
    with pytest.raises(ReleaseInvalid, match=refusal):
        read_release(changed)


def test_an_archive_that_is_not_the_signed_hash_is_refused(tmp_path: Path) -> None:
    one = make_release(tmp_path / "one", "1.0")
    make_release(tmp_path / "two", "1.0", marker="other")
    with pytest.raises(ReleaseInvalid, match="SHA-256"):
        read_release(tmp_path / "two" / "release-1.0.tar", sha256=one.sha256)


def test_the_hub_keeps_one_build_per_version(tmp_path: Path) -> None:
    """Stations tell releases apart by version: a second build under it is refused."""
    from hub.provisioning.releases import ReleaseShelf

    shelf = ReleaseShelf(tmp_path / "shelf")
    first = make_release(tmp_path / "a", "2.0")
    make_release(tmp_path / "b", "2.0", marker="rebuilt")
    assert shelf.add(tmp_path / "a" / "release-2.0.tar") == first
    assert shelf.add(tmp_path / "a" / "release-2.0.tar") == first  # the same: idempotent
    with pytest.raises(ReleaseInvalid, match="another build"):
        shelf.add(tmp_path / "b" / "release-2.0.tar")
    assert [r.sha256 for r in shelf.list()] == [first.sha256]
    assert sorted(p.name for p in shelf.directory.iterdir()) == [
        f"{first.sha256}.json",
        f"{first.sha256}.tar",
    ]
