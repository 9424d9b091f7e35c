"""Key files: one reader and one creator for the small secrets kept in files (0600).

The device secret (where no hardware key exists), the outbox key, the station's identity key
and IT's configuration signing key are each a few bytes in a file that only their owner may
read. A leaked, swapped or widened file must never be used silently, and two processes
creating the same secret must never overwrite each other: :func:`read_private_file` refuses
anything but a 0600 regular file of the right size owned by this user, and
:func:`load_or_create_private_file` creates with a hard link (never a rename over an
existing file). Storage, not key material: these functions move bytes, they hold no key.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from station.errors import StationError
from station.storage.durable import atomic_write

__all__ = ["load_or_create_private_file", "read_private_file", "write_private_file"]


def write_private_file(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to ``path`` (mode 0600) so a power cut leaves the old or the new file.

    A temporary file beside it is created with O_EXCL, written and fsynced, then moved into
    place and the directory fsynced. With ``replace=False`` the move is a hard link, which
    fails if ``path`` exists: two processes creating the same secret cannot overwrite each
    other (a plain rename would silently replace the first one's file).
    """
    atomic_write(path, data, replace=replace, mode=0o600)


def read_private_file(
    path: Path,
    *,
    what: str,
    error: type[StationError],
    size: int | None = None,
    up_to: int | None = None,
) -> bytes:
    """Read a private file (a key of exactly ``size`` bytes, or a document of at most ``up_to``)
    that only this user can read or write.

    Refuses (``error``) a symlink, anything but a regular file, group or other access, another
    owner, or the wrong size: a leaked or swapped secret must never be used silently. A missing
    file raises ``FileNotFoundError`` so callers can create it (or do without).
    """
    if (size is None) == (up_to is None):
        raise ValueError("give exactly one of size and up_to")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise error(f"cannot open the {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path} is not a regular file")
        if info.st_mode & 0o077:
            raise error(
                f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; "
                "it must be 0600 (no access for group or others)"
            )
        if info.st_uid != os.geteuid():
            raise error(f"{what} {path} is owned by another user")
        if size is not None and info.st_size != size:
            raise error(f"{what} {path} is {info.st_size} bytes, expected {size}")
        limit = size if size is not None else up_to
        assert limit is not None
        if info.st_size > limit:
            raise error(f"{what} {path} is larger than {limit} bytes")
        data = _read_all(fd, limit + 1)
    finally:
        os.close(fd)
    if size is not None and len(data) != size:
        raise error(f"{what} {path} could not be read in full")
    return data


def _read_all(fd: int, limit: int) -> bytes:
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def load_or_create_private_file(
    path: Path,
    *,
    make: Callable[[], bytes],
    size: int,
    what: str,
    error: type[StationError],
) -> bytes:
    """The key in ``path`` (see :func:`read_private_file`), made with ``make()`` and written
    atomically (0600) on first use; if another process creates it first, theirs is used."""
    try:
        return read_private_file(path, size=size, what=what, error=error)
    except FileNotFoundError:
        pass  # first use: create it below
    try:
        write_private_file(path, make(), replace=False)
    except FileExistsError:
        pass  # another process created it first; use theirs
    except OSError as exc:
        raise error(f"cannot create the {what} {path}: {exc.strerror}") from None
    try:
        return read_private_file(path, size=size, what=what, error=error)
    except FileNotFoundError:
        raise error(f"{what} {path} vanished after creation") from None
