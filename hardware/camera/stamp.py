"""A machine-readable capture stamp drawn into the picture, robust to lossy video coding.

The test-pattern camera writes each frame's capture time (wall clock, microseconds since the
Unix epoch) and its sequence number into the top of the picture as large black and white
blocks, so a receiver (the call engine, the GP browser tests) can measure latency and loss from
the decoded picture alone, whatever the codec and transport did in between.

Layout (relative to the width, so a scaled picture still decodes):

- 3 rows of 40 square cells across the full width at the top of the frame; a cell is
  ``width / 40`` pixels wide and high (16x16 px at 640x480, the size of a codec macroblock).
  Pictures narrower than 640 px use 6 rows of 20 cells instead, so a cell never shrinks below
  8 px and stays at least 16 px down to 320 px wide (smaller cells did not survive VP8 at
  250 kbps). The decoder tries both layouts.
- 120 cells = 8 sync cells (a fixed pattern, which also calibrates black and white) + 64 bits
  capture time + 32 bits sequence number + 16 bits CRC-16/CCITT over those 12 bytes, most
  significant bit first, row by row.
- Black is luma 16, white luma 235 (video range). Only the luma (Y) plane is written or read.

Decoding samples a 4x4 grid in the middle half of each cell, so ringing at block edges does not
matter, and takes the midpoint between the sync cells' black and white as the threshold.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import av
import numpy as np
import numpy.typing as npt

__all__ = [
    "STAMP_BLACK",
    "STAMP_COLUMNS",
    "STAMP_ROWS",
    "STAMP_WHITE",
    "Stamp",
    "decode_stamp",
    "decode_stamp_luma",
    "draw_stamp",
    "stamp_band_height",
]

STAMP_COLUMNS = 40
STAMP_ROWS = 3
#: The layout for pictures narrower than 640 px: (columns, rows).
_NARROW = (20, 6)
_WIDE = (STAMP_COLUMNS, STAMP_ROWS)
STAMP_BLACK = 16
STAMP_WHITE = 235

_SYNC = (1, 0, 1, 1, 0, 0, 1, 0)
_CELLS = STAMP_COLUMNS * STAMP_ROWS
_PAYLOAD_BITS = 64 + 32 + 16
assert len(_SYNC) + _PAYLOAD_BITS == _CELLS
#: The smallest black/white difference (of luma means) accepted as a stamp at all.
_MIN_CONTRAST = 60.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SYNC_ARRAY = np.array(_SYNC, dtype=np.uint8)
_LEVELS = np.array([STAMP_BLACK, STAMP_WHITE], dtype=np.uint8)

_UInt8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a stamped frame says about itself."""

    #: Capture time, microseconds since the Unix epoch (wall clock).
    capture_us: int
    #: Sequence number of the frame since the camera started (wraps at 2**32).
    seq: int

    @property
    def capture_time(self) -> datetime:
        """The capture time as an aware UTC datetime."""
        return _EPOCH + timedelta(microseconds=self.capture_us)

    def latency_us(self, now: datetime) -> int:
        """Microseconds from capture to ``now`` (an aware datetime)."""
        return (now - _EPOCH) // timedelta(microseconds=1) - self.capture_us


def datetime_to_us(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def _layout(width: int) -> tuple[int, int]:
    return _WIDE if width >= 640 else _NARROW


def stamp_band_height(width: int) -> int:
    """Height in pixels of the stamp band drawn at the top of a frame ``width`` pixels wide."""
    columns, rows = _layout(width)
    return round(rows * width / columns)


def _payload_bits(capture_us: int, seq: int) -> _UInt8Array:
    body = struct.pack(">QI", capture_us & 0xFFFF_FFFF_FFFF_FFFF, seq & 0xFFFF_FFFF)
    crc = binascii.crc_hqx(body, 0xFFFF)
    data = np.frombuffer(body + struct.pack(">H", crc), dtype=np.uint8)
    return np.concatenate([_SYNC_ARRAY, np.unpackbits(data)])


@lru_cache(maxsize=16)
def _draw_index(width: int) -> tuple[npt.NDArray[np.intp], int]:
    """Cell index (0..119) of each pixel of the band, for a frame ``width`` pixels wide."""
    columns, rows_n = _layout(width)
    height = stamp_band_height(width)
    cols = np.minimum((np.arange(width) * columns) // width, columns - 1)
    rows = np.minimum((np.arange(height) * columns) // width, rows_n - 1)
    index = rows[:, None] * columns + cols[None, :]
    return index.astype(np.intp), height


def draw_stamp(luma: _UInt8Array, capture_us: int, seq: int) -> None:
    """Write the stamp for ``capture_us``/``seq`` into the top of a luma plane, in place.

    ``luma`` is a 2-D uint8 array (height x width); it must be at least
    ``stamp_band_height(width)`` rows high.
    """
    height_px, width = luma.shape
    index, band = _draw_index(width)
    if height_px < band:
        raise ValueError(f"a {width}px wide frame needs at least {band} rows for the stamp")
    cells = _LEVELS[_payload_bits(capture_us, seq)]
    luma[:band, :width] = cells[index]


@lru_cache(maxsize=32)
def _sample_points(
    width: int, layout: tuple[int, int]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row and column of a 4x4 sample grid in the middle half of every cell."""
    columns, _rows = layout
    cell = width / columns
    offsets = (np.array([0.3, 0.43, 0.57, 0.7]) * cell).astype(np.float64)
    ys: list[npt.NDArray[np.float64]] = []
    xs: list[npt.NDArray[np.float64]] = []
    for i in range(_CELLS):
        row, col = divmod(i, columns)
        gy, gx = np.meshgrid(row * cell + offsets, col * cell + offsets, indexing="ij")
        ys.append(gy.ravel())
        xs.append(gx.ravel())
    rows = np.clip(np.concatenate(ys).astype(np.intp), 0, None)
    cols = np.clip(np.concatenate(xs).astype(np.intp), 0, width - 1)
    return rows, cols


def decode_stamp_luma(luma: npt.NDArray[np.uint8]) -> Stamp | None:
    """Read the stamp from a 2-D luma array; ``None`` if there is none or it is damaged."""
    if luma.ndim != 2:
        return None
    height, width = luma.shape
    for layout in (_WIDE, _NARROW):
        columns, rows_n = layout
        if width < columns * 4 or height < round(rows_n * width / columns):
            continue
        stamp = _decode_layout(luma, width, layout)
        if stamp is not None:
            return stamp
    return None


def _decode_layout(
    luma: npt.NDArray[np.uint8], width: int, layout: tuple[int, int]
) -> Stamp | None:
    rows, cols = _sample_points(width, layout)
    means = luma[rows, cols].reshape(_CELLS, 16).mean(axis=1)
    sync = means[: len(_SYNC)]
    white = float(sync[_SYNC_ARRAY == 1].mean())
    black = float(sync[_SYNC_ARRAY == 0].mean())
    if white - black < _MIN_CONTRAST:
        return None
    bits = (means > (white + black) / 2).astype(np.uint8)
    if not np.array_equal(bits[: len(_SYNC)], _SYNC_ARRAY):
        return None
    data = np.packbits(bits[len(_SYNC) :]).tobytes()
    body, (crc,) = data[:12], struct.unpack(">H", data[12:14])
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        return None
    capture_us, seq = struct.unpack(">QI", body)
    return Stamp(capture_us=capture_us, seq=seq)


_PLANAR_LUMA_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21", "gray"}
)


def frame_luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The luma plane of ``frame`` as a 2-D uint8 array (a view where the format allows)."""
    if frame.format.name in _PLANAR_LUMA_FORMATS:
        plane = frame.planes[0]
        raw = np.frombuffer(memoryview(plane), dtype=np.uint8)
        return raw.reshape(plane.height, plane.line_size)[:, : frame.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


def decode_stamp(frame: av.VideoFrame) -> Stamp | None:
    """Read the capture stamp from a decoded video frame; ``None`` if absent or damaged.

    Works on any pixel format PyAV can turn into grey (decoded VP8/H.264 is ``yuv420p``, read
    without conversion).
    """
    return decode_stamp_luma(frame_luma(frame))
