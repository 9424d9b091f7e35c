"""Frames from stationd to the video-surface process: shared memory, newest frame wins.

Over 500 lines for one job, the shared-memory transport: the writer and the reader are two
ends of one file format (header, slots, sequence numbers), kept side by side so a change to
one cannot miss the other.

Why this transport (and not frames over a socket): a 640x480 picture is 460 KB and a 1280x720
one 1.4 MB in ``yuv420p``. A Unix datagram that large exceeds the default socket buffers, and
a stream socket queues, which is exactly the latency build-up the surface must never have.
Shared memory keeps one copy per frame, needs no encoding (no JPEG: the picture stays as the
decoder made it) and lets the writer overwrite what the reader has not taken yet.

Layout, one file per role (``remote.frames``, ``self.frames``) in a tmpfs directory
(``/run/kontaktstation/surface``: RAM only, so no picture ever reaches the SD card)::

    file header (64 B): magic "KSVF", version, slot capacity, slot count, latest frame number
    3 slots, each: slot header (64 B: begin, width, height, end) + packed I420 data

The writer puts frame *n* into slot ``n % 3``: it sets the slot's ``begin`` to *n*, writes the
size and the pixels, sets ``end`` to *n*, then publishes *n* as ``latest`` and sends a one-word
wake-up datagram (``remote``, ``self`` or ``state``) to the surface's socket ``wake.sock``.
The reader takes ``latest``, checks the slot's ``end``, copies the pixels out and then checks
that ``begin`` is still *n*: if the writer lapped it meanwhile (two newer frames during one
copy) the copy is thrown away and the newest is taken instead. Nothing ever waits for the
other side: the writer never blocks on the reader (a dead or slow surface just misses frames),
and the reader never sees a torn picture. The wake-up datagram also orders memory: the kernel
delivers it only after the writer's stores, so on the Pi's weakly ordered ARM cores a reader
woken by it sees the frame it announces; the ``begin``/``end`` check covers the rest.

The overlay state (private call, connection quality) is a tiny JSON file replaced atomically
(``state.json``); it changes a few times per call, never per frame.

Files are made by the writer (stationd), group-readable; the reader (the surface, another user
in the same group) only reads them. The slots are reserved with ``posix_fallocate`` so a full
tmpfs shows up as an error at start, not as SIGBUS in the middle of a call.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import mmap
import os
import select
import socket
import stat
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from hardware.errors import HardwareError
from hardware.video import QUALITIES, FrameRole, OverlayState, Quality
from station.i18n import N_

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_SURFACE_DIR",
    "QUALITIES",
    "ROLES",
    "SURFACE_DIR_ENV",
    "FrameSlotReader",
    "FrameSlotWriter",
    "OverlayState",
    "Quality",
    "ReceivedFrame",
    "SharedMemoryFrameSink",
    "SurfaceError",
    "WakeListener",
    "frame_file",
    "read_overlay",
    "surface_dir",
    "write_overlay",
]

_log = logging.getLogger(__name__)

SURFACE_DIR_ENV: Final = "KONTAKTSTATION_SURFACE_DIR"
#: Inside stationd's ``RuntimeDirectory=kontaktstation`` (tmpfs).
DEFAULT_SURFACE_DIR: Final = Path("/run/kontaktstation/surface")
#: Largest picture a slot holds; bigger ones are scaled down by the writer. The GP page caps
#: its send resolution well below this, and the self-view is 640x480.
DEFAULT_MAX_SIZE: Final = (1280, 720)
ROLES: Final[tuple[FrameRole, ...]] = ("remote", "self")


_MAGIC: Final = b"KSVF"
_VERSION: Final = 1
_SLOTS: Final = 3
_HEADER = struct.Struct("<4sIQQQ")  # magic, version, capacity, slots, latest
_HEADER_SIZE: Final = 64
_LATEST_AT: Final = 24
_SLOT_HEADER_SIZE: Final = 64
_BEGIN = struct.Struct("<Q")  # slot + 0
_SIZE = struct.Struct("<II")  # slot + 8: width, height (0x0: the role is cleared)
_END_AT: Final = 16  # slot + 16: end
_PAGE: Final = 4096


class SurfaceError(HardwareError):
    """The frame transport to the video surface cannot be set up."""

    default_user_message = N_(
        "The screen with the doctor's video could not start. The call goes on; contact IT."
    )


def surface_dir(environ: dict[str, str] | None = None) -> Path:
    """``KONTAKTSTATION_SURFACE_DIR`` or the production default."""
    env = os.environ if environ is None else environ
    value = env.get(SURFACE_DIR_ENV, "")
    return Path(value) if value else DEFAULT_SURFACE_DIR


def frame_file(directory: Path, role: FrameRole) -> Path:
    """The shared-memory file of ``role`` in ``directory``."""
    return directory / f"{role}.frames"


def _capacity(max_size: tuple[int, int]) -> int:
    width, height = max_size
    need = width * height * 3 // 2
    return -(-need // _PAGE) * _PAGE


def _fit_even(width: int, height: int, max_size: tuple[int, int]) -> tuple[int, int]:
    """The size a frame is stored at: within ``max_size`` (aspect kept), both sides even."""
    max_w, max_h = max_size
    scale = min(1.0, max_w / width, max_h / height)
    w = max(2, int(width * scale) & ~1)
    h = max(2, int(height * scale) & ~1)
    return w, h


# --------------------------------------------------------------------------- writer


class FrameSlotWriter:
    """stationd's side of one role's file: ``write(frame)`` copies it into the next slot."""

    def __init__(self, path: Path, *, max_size: tuple[int, int] = DEFAULT_MAX_SIZE) -> None:
        self.path = path
        self.max_size = max_size
        self._capacity = _capacity(max_size)
        self._slot_stride = _SLOT_HEADER_SIZE + self._capacity
        size = _HEADER_SIZE + _SLOTS * self._slot_stride
        self._map, self._latest = self._open(path, size)

    def _open(self, path: Path, size: int) -> tuple[mmap.mmap, int]:
        # Reuse a valid file from a previous stationd run: its inode stays the same, so a
        # running surface keeps its mapping; a new file is built aside and renamed in.
        with contextlib.suppress(FileNotFoundError, OSError, ValueError):
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                if os.fstat(fd).st_size == size:
                    with contextlib.suppress(OSError):
                        os.fchmod(fd, 0o640)  # one an older stationd left 0600 (see below)
                    mapped = mmap.mmap(fd, size)
                    magic, version, capacity, slots, latest = _HEADER.unpack_from(mapped, 0)
                    if (magic, version, capacity, slots) == (
                        _MAGIC,
                        _VERSION,
                        self._capacity,
                        _SLOTS,
                    ):
                        return mapped, int(latest)
                    mapped.close()
            finally:
                os.close(fd)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise SurfaceError(f"cannot create {tmp}: {exc.strerror}") from None
        try:
            # Group-readable whatever the umask: stationd runs with UMask=0077, and the surface
            # (another user, in stationd's group) must read the frames (found in the booted
            # appliance, tests/vm: files 0600, no picture ever reached the screen).
            os.fchmod(fd, 0o640)
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                raise SurfaceError(
                    f"cannot reserve {size} bytes for {path.name}: {exc.strerror}"
                ) from None
            mapped = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        _HEADER.pack_into(mapped, 0, _MAGIC, _VERSION, self._capacity, _SLOTS, 0)
        os.replace(tmp, path)
        return mapped, 0

    @property
    def latest(self) -> int:
        """Number of the last frame written (0: none yet)."""
        return self._latest

    def write(self, frame: av.VideoFrame | None) -> int:
        """Store ``frame`` (``None``: clear the role) as the newest; its frame number."""
        n = self._latest + 1
        base = _HEADER_SIZE + (n % _SLOTS) * self._slot_stride
        mapped = self._map
        _BEGIN.pack_into(mapped, base, n)
        if frame is None:
            _SIZE.pack_into(mapped, base + 8, 0, 0)
        else:
            frame = self._normalise(frame)
            width, height = frame.width, frame.height
            _SIZE.pack_into(mapped, base + 8, width, height)
            data = base + _SLOT_HEADER_SIZE
            for index, (pw, ph) in enumerate(
                ((width, height), (width // 2, height // 2), (width // 2, height // 2))
            ):
                plane = frame.planes[index]
                source = np.frombuffer(memoryview(plane), dtype=np.uint8)
                source = source.reshape(ph, plane.line_size)[:, :pw]
                target = np.frombuffer(mapped, dtype=np.uint8, count=pw * ph, offset=data)
                target.reshape(ph, pw)[:] = source
                del target  # an exported buffer would keep the map from closing
                data += pw * ph
        _BEGIN.pack_into(mapped, base + _END_AT, n)
        _BEGIN.pack_into(mapped, _LATEST_AT, n)
        self._latest = n
        return n

    def _normalise(self, frame: av.VideoFrame) -> av.VideoFrame:
        width, height = _fit_even(frame.width, frame.height, self.max_size)
        if frame.format.name != "yuv420p" or (width, height) != (frame.width, frame.height):
            # Decoders hand over yuv420p at the sent size; anything else is converted once here.
            return frame.reformat(width=width, height=height, format="yuv420p")
        return frame

    def close(self) -> None:
        """Unmap the file (it stays, so a restarted stationd reuses it)."""
        self._map.close()


# --------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class ReceivedFrame:
    """A frame the surface took from a slot; ``frame`` is None when the role was cleared."""

    number: int
    frame: av.VideoFrame | None


class FrameSlotReader:
    """The surface's side of one role's file: ``read_new()`` gives the newest unseen frame."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._inode: tuple[int, int] | None = None
        self._seen = 0
        #: Copies discarded because the writer overwrote the slot during the copy.
        self.torn = 0

    def _attach(self) -> bool:
        """Map the file if it is there (again, if stationd replaced it); False if absent."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._detach()
            return False
        inode = (info.st_dev, info.st_ino)
        if self._map is not None and inode == self._inode:
            return True
        self._detach()
        if not stat.S_ISREG(info.st_mode) or info.st_size < _HEADER_SIZE:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return False
        try:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        magic, version, capacity, slots, _latest = _HEADER.unpack_from(mapped, 0)
        if magic != _MAGIC or version != _VERSION or slots != _SLOTS:
            mapped.close()
            return False
        if mapped.size() < _HEADER_SIZE + slots * (_SLOT_HEADER_SIZE + capacity):
            mapped.close()
            return False
        self._map, self._inode = mapped, inode
        self._stride = _SLOT_HEADER_SIZE + int(capacity)
        self._seen = 0  # a new file: its first frame is new to us
        return True

    def _detach(self) -> None:
        if self._map is not None:
            self._map.close()
        self._map = None
        self._inode = None

    def latest(self) -> int:
        """The writer's newest frame number (0 when there is none or no file)."""
        if self._map is None and not self._attach():
            return 0
        assert self._map is not None
        return int(_BEGIN.unpack_from(self._map, _LATEST_AT)[0])

    def read_new(self, *, recheck_file: bool = False) -> ReceivedFrame | None:
        """The newest frame if it is newer than the last one returned, else None.

        ``recheck_file`` also notices a file that stationd replaced (call it now and then).
        """
        if (recheck_file or self._map is None) and not self._attach():
            return None
        mapped = self._map
        assert mapped is not None
        # Lapping needs the writer to store three frames during one copy (100 ms at 30 fps),
        # so a retry nearly always succeeds; the bound only guards against a runaway writer.
        for _attempt in range(8):
            n = int(_BEGIN.unpack_from(mapped, _LATEST_AT)[0])
            if n == 0 or n == self._seen:
                return None
            base = _HEADER_SIZE + (n % _SLOTS) * self._stride
            if _BEGIN.unpack_from(mapped, base + _END_AT)[0] != n:
                self.torn += 1
                continue
            width, height = _SIZE.unpack_from(mapped, base + 8)
            frame: av.VideoFrame | None = None
            if width and height:
                count = width * height * 3 // 2
                view: npt.NDArray[np.uint8] = np.frombuffer(
                    mapped, dtype=np.uint8, count=count, offset=base + _SLOT_HEADER_SIZE
                )
                frame = av.VideoFrame.from_ndarray(
                    view.reshape(height * 3 // 2, width), format="yuv420p"
                )
                del view
            if _BEGIN.unpack_from(mapped, base)[0] != n:
                self.torn += 1  # overwritten while we copied: take the newer one
                continue
            self._seen = n
            return ReceivedFrame(n, frame)
        return None

    def close(self) -> None:
        """Unmap the file."""
        self._detach()


# --------------------------------------------------------------------------- overlay state


_STATE_FILE: Final = "state.json"


def write_overlay(directory: Path, state: OverlayState) -> None:
    """Replace the overlay state file atomically (rename), group-readable."""
    path = directory / _STATE_FILE
    tmp = directory / f".{_STATE_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    payload = json.dumps(
        {
            "private_call": state.private_call,
            "quality": state.quality,
            "audio_only": state.audio_only,
        }
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    try:
        os.fchmod(fd, 0o640)  # the surface reads it whatever stationd's umask (0077)
        os.write(fd, payload.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_overlay(directory: Path) -> OverlayState:
    """The current overlay state; the default (no badge, quality unknown) if absent or bad."""
    try:
        data = json.loads((directory / _STATE_FILE).read_bytes())
        return OverlayState(bool(data["private_call"]), data["quality"], data.get("audio_only"))
    except (OSError, ValueError, KeyError, TypeError):
        return OverlayState()


# --------------------------------------------------------------------------- the sink


class SharedMemoryFrameSink:
    """stationd's :class:`~hardware.video.FrameSink` for the real screen.

    ``show()`` copies the frame into the role's shared-memory slot and sends a wake-up
    datagram; it returns at once whether or not a surface is running, and never raises (a
    failure is counted and logged once). ``set_overlay()`` and ``clear()`` do the same for
    the overlay state and for the end of a call.
    """

    #: Its name for ``KONTAKTSTATION_FRAME_SINK`` and the health report.
    name: Final = "shm"

    def __init__(
        self, directory: Path | None = None, *, max_size: tuple[int, int] = DEFAULT_MAX_SIZE
    ) -> None:
        self.directory = directory or surface_dir()
        try:
            # Group-writable: the surface (another user, in stationd's group) binds its
            # wake-up socket here. No setgid bit: stationd's unit forbids setting one
            # (RestrictSUIDSGID=yes makes chmod/mkdir with S_ISGID fail with EPERM); the
            # surface makes its socket reachable by mode instead (see WakeListener).
            self.directory.mkdir(mode=0o770, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o770)  # noqa: S103
        except OSError as exc:
            raise SurfaceError(f"cannot prepare {self.directory}: {exc.strerror}") from None
        self._writers = {
            role: FrameSlotWriter(frame_file(self.directory, role), max_size=max_size)
            for role in ROLES
        }
        self._locks = {role: threading.Lock() for role in ROLES}
        self._wake = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self._wake_path = str(self.directory / "wake.sock")
        self._wake_messages = {role: role.encode() for role in ROLES}
        #: Frames that could not be stored (counted, never raised).
        self.failures = 0
        self._closed = False

    def show(self, frame: av.VideoFrame, role: FrameRole) -> None:
        """Make ``frame`` the newest of ``role`` and wake the surface; returns at once."""
        self._store(frame, role)

    def clear(self, role: FrameRole) -> None:
        """Stop showing ``role`` (the call ended, or the camera is off)."""
        self._store(None, role)

    def _store(self, frame: av.VideoFrame | None, role: FrameRole) -> None:
        if self._closed:
            return
        try:
            with self._locks[role]:
                self._writers[role].write(frame)
        except Exception:
            self.failures += 1
            if self.failures == 1:
                _log.exception("storing a %s frame for the video surface failed", role)
            return
        self._notify(self._wake_messages[role])

    def set_overlay(self, state: OverlayState) -> None:
        """Show or hide the private-call badge and the connection quality."""
        try:
            write_overlay(self.directory, state)
        except OSError as exc:
            _log.warning("cannot write the surface overlay state: %s", exc.strerror)
            return
        self._notify(b"state")

    def _notify(self, message: bytes) -> None:
        try:
            self._wake.sendto(message, self._wake_path)
        except OSError as exc:
            # No surface (ENOENT, ECONNREFUSED) or a full queue (EAGAIN): the frame is in its
            # slot and a (re)started surface takes it from there.
            if exc.errno not in (
                errno.ENOENT,
                errno.ECONNREFUSED,
                errno.EAGAIN,
                errno.ENOBUFS,
                errno.EACCES,
                errno.EPERM,
                errno.ENOTCONN,
            ):
                _log.debug("surface wake-up failed: %s", exc.strerror)

    def latest(self, role: FrameRole) -> int:
        """Number of the last frame stored for ``role``."""
        return self._writers[role].latest

    def close(self) -> None:
        """Stop sending; the files stay for the next stationd."""
        if self._closed:
            return
        self._closed = True
        self._wake.close()
        for role, writer in self._writers.items():
            with self._locks[role]:
                writer.close()


# --------------------------------------------------------------------------- wake-up


class WakeListener:
    """The surface's wake-up socket: ``wait(timeout)`` returns what changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._inode: int | None = None
        self.bind()

    def bind(self) -> None:
        """(Re)bind the socket, replacing a stale file.

        Mode 0666, yet only stationd's group reaches it: it lives in stationd's directory,
        which is 0770 and of that group. (The socket's own group is the surface's user's:
        making it stationd's group would need chown, which the surface's unit forbids, or a
        setgid directory, which stationd's unit forbids.)
        """
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        old = os.umask(0o111)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise SurfaceError(f"cannot bind {self.path}: {exc.strerror}") from None
        finally:
            os.umask(old)
        self._sock = sock
        self._inode = os.lstat(self.path).st_ino

    def check(self) -> None:
        """Rebind if the socket file vanished (stationd's runtime directory was recreated)."""
        try:
            inode: int | None = os.lstat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if inode != self._inode:
            with contextlib.suppress(SurfaceError):
                self.bind()

    def fileno(self) -> int:
        """The socket's descriptor (for ``select``)."""
        assert self._sock is not None
        return self._sock.fileno()

    def wait(self, timeout: float) -> set[str]:
        """Wait up to ``timeout`` s for wake-ups; the set of words received (may be empty)."""
        if self._sock is None:
            return set()
        ready, _, _ = select.select([self._sock], [], [], timeout)
        words: set[str] = set()
        if not ready:
            return words
        while True:
            try:
                data = self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return words
            words.add(data.decode("ascii", "replace"))

    def close(self) -> None:
        """Close and remove the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(self.path).st_ino == self._inode:
                    self.path.unlink()
