"""Real microphone and loudspeaker through PyAV's ALSA devices (no extra dependency).

PyAV's wheels carry their own alsa-lib, built to look for its configuration under
``/tmp/vendor``; without help it knows no device at all ("Unknown PCM default").
:func:`apply_alsa_environment` points it at the system's configuration and plugins
(``ALSA_CONFIG_PATH``, ``ALSA_CONFIG_DIR``, ``ALSA_PLUGIN_DIR``) unless they are already set,
so ``default`` reaches PipeWire (and its echo-cancel source and sink) through the
``pipewire`` ALSA plugin, and ``plughw:CARD=...`` reaches a USB speakerphone directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import glob
import logging
import os
import queue
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import av

from .._capture import CapturedTrack
from .._queue import LatestQueue
from .._thread import Emit
from ..errors import AudioUnavailableError
from ._player import TrackPlayer
from .base import AUDIO_PTIME, AUDIO_SAMPLE_RATE

__all__ = [
    "DEFAULT_AUDIO_DEVICE",
    "PyAVMicrophone",
    "PyAVSpeaker",
    "alsa_environment",
    "apply_alsa_environment",
    "probe_alsa",
]

DEFAULT_AUDIO_DEVICE = "default"
_FRAME_SAMPLES = int(AUDIO_SAMPLE_RATE * AUDIO_PTIME)
_TIME_BASE = fractions.Fraction(1, AUDIO_SAMPLE_RATE)
_log = logging.getLogger(__name__)
_env_lock = threading.Lock()


def alsa_environment(env: Mapping[str, str], root: Path = Path("/")) -> dict[str, str]:
    """The ALSA variables PyAV's bundled alsa-lib needs that ``env`` does not set yet."""
    wanted: dict[str, str] = {}
    config = root / "usr/share/alsa/alsa.conf"
    if "ALSA_CONFIG_PATH" not in env and config.is_file():
        wanted["ALSA_CONFIG_PATH"] = str(config)
    if "ALSA_CONFIG_DIR" not in env and config.is_file():
        wanted["ALSA_CONFIG_DIR"] = str(config.parent)
    if "ALSA_PLUGIN_DIR" not in env:
        candidates = sorted(glob.glob(str(root / "usr/lib/*-linux-gnu/alsa-lib")))
        for candidate in [*candidates, str(root / "usr/lib/alsa-lib")]:
            if Path(candidate).is_dir():
                wanted["ALSA_PLUGIN_DIR"] = candidate
                break
    return wanted


def apply_alsa_environment(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the missing ALSA variables in ``env`` (default ``os.environ``); return what was set."""
    target = os.environ if env is None else env
    with _env_lock:
        wanted = alsa_environment(target)
        target.update(wanted)
    return wanted


def probe_alsa(snd_dir: Path = Path("/dev/snd")) -> str | None:
    """Why there is no usable sound card (English), or ``None`` when one can capture and play."""
    if not snd_dir.is_dir():
        return f"{snd_dir} does not exist (no sound card; is the USB speakerphone plugged in?)"
    capture = list(snd_dir.glob("pcmC*D*c"))
    playback = list(snd_dir.glob("pcmC*D*p"))
    if not capture:
        return "no sound card can record (is the USB speakerphone plugged in?)"
    if not playback:
        return "no sound card can play sound"
    return None


class PyAVMicrophone(CapturedTrack[av.AudioFrame]):
    """A microphone read through PyAV (ALSA by default) as 48 kHz mono 20 ms frames.

    Read on a thread; a queue of a few frames (``queue_frames`` x 20 ms, newest wins) keeps
    latency bounded if the encoder falls behind. ``container_format="lavfi"`` with a filter
    graph as ``device`` runs the same machinery without a sound card (tests, bench).
    """

    kind = "audio"

    def __init__(
        self,
        device: str = DEFAULT_AUDIO_DEVICE,
        *,
        container_format: str = "alsa",
        queue_frames: int = 5,
        open_timeout: float = 5.0,
        read_timeout: float = 2.0,
    ) -> None:
        super().__init__(LatestQueue(queue_frames))
        self.device = device
        self._format = container_format
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout

    @property
    def backend(self) -> str:
        """Always ``"pyav"``."""
        return "pyav"

    @property
    def dropped(self) -> int:
        """Frames dropped because the consumer was too slow."""
        return self._queue.dropped

    def _produce(self, emit: Emit[av.AudioFrame], stopping: threading.Event) -> None:
        options: dict[str, str] = {}
        if self._format == "alsa":
            apply_alsa_environment()
            options = {"sample_rate": str(AUDIO_SAMPLE_RATE), "channels": "1"}
        try:
            container = av.open(
                self.device,
                format=self._format,
                options=options,
                timeout=(self._open_timeout, self._read_timeout),
            )
        except (av.FFmpegError, OSError) as exc:
            raise AudioUnavailableError(f"cannot open microphone {self.device!r}: {exc}") from exc
        try:
            if not container.streams.audio:
                raise AudioUnavailableError(f"{self.device!r} has no audio input")
            resampler = av.AudioResampler(
                format="s16", layout="mono", rate=AUDIO_SAMPLE_RATE, frame_size=_FRAME_SAMPLES
            )
            pts = 0
            for frame in container.decode(audio=0):
                if stopping.is_set():
                    return
                for out in resampler.resample(frame):
                    out.pts = pts
                    out.time_base = _TIME_BASE
                    pts += out.samples
                    if not emit(out):
                        return
            raise AudioUnavailableError(f"microphone {self.device!r} stopped delivering sound")
        except av.FFmpegError as exc:
            raise AudioUnavailableError(
                f"reading microphone {self.device!r} failed: {exc}"
            ) from exc
        finally:
            container.close()

    def _thread_name(self) -> str:
        return f"microphone {self.device}"

    def _failed(self, cause: BaseException | None) -> Exception:
        return AudioUnavailableError(f"microphone {self.device!r} failed: {cause}")

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms; raises ``AudioUnavailableError`` if the device fails."""
        return await self._next(AudioUnavailableError)


class _Output:
    """An open PyAV output device with one 48 kHz s16 stream."""

    def __init__(self, device: str, container_format: str, channels: int) -> None:
        if container_format == "alsa":
            apply_alsa_environment()
        try:
            self.container: Any = av.open(device, "w", format=container_format)
            layout = "mono" if channels == 1 else "stereo"
            self.stream: Any = self.container.add_stream(
                "pcm_s16le", rate=AUDIO_SAMPLE_RATE, layout=layout
            )
            self.container.start_encoding()  # the ALSA muxer opens the device here
        except (av.FFmpegError, OSError) as exc:
            with contextlib.suppress(Exception):
                self.container.close()
            raise AudioUnavailableError(f"cannot open loudspeaker {device!r}: {exc}") from exc

    def write(self, frame: av.AudioFrame) -> None:
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # flushing a vanished device fails; close anyway
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        self.container.close()


class PyAVSpeaker(TrackPlayer):
    """A loudspeaker written through PyAV (ALSA by default).

    Frames are resampled on the loop (cheap) and written by a thread, through a queue of
    ``queue_frames`` x 20 ms that drops the oldest when the device stalls, so the GP's voice
    never lags behind the picture by more than that.
    """

    def __init__(
        self,
        device: str = DEFAULT_AUDIO_DEVICE,
        *,
        container_format: str = "alsa",
        channels: int = 1,
        queue_frames: int = 10,
        open_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if channels not in (1, 2):
            raise ValueError("channels must be 1 or 2")
        self.device = device
        self._format = container_format
        self._channels = channels
        self._open_timeout = open_timeout
        self._frames: queue.Queue[av.AudioFrame] = queue.Queue(maxsize=queue_frames)
        self._resampler: av.AudioResampler | None = None
        self._pts = 0
        self._output: _Output | None = None
        self._writer: threading.Thread | None = None
        self._stopping = threading.Event()
        #: Frames dropped because the device did not keep up.
        self.dropped = 0
        #: Frames written to the device since construction.
        self.written = 0

    @property
    def backend(self) -> str:
        """Always ``"pyav"``."""
        return "pyav"

    async def _open(self) -> _Output:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(_Output, self.device, self._format, self._channels),
                self._open_timeout,
            )
        except TimeoutError:
            raise AudioUnavailableError(
                f"loudspeaker {self.device!r} did not open within {self._open_timeout:g} s"
            ) from None

    async def check(self, open_within: float = 5.0) -> None:
        """Open and close the device (only while nothing is playing)."""
        if self.playing:
            return  # it is open and in use: that is the check passed
        output = await asyncio.wait_for(self._open(), open_within)
        await asyncio.to_thread(output.close)

    async def _opened(self) -> None:
        self._output = await self._open()
        self._resampler = av.AudioResampler(
            format="s16",
            layout="mono" if self._channels == 1 else "stereo",
            rate=AUDIO_SAMPLE_RATE,
            frame_size=_FRAME_SAMPLES,
        )
        self._pts = 0
        self._stopping.clear()
        self._writer = threading.Thread(
            target=self._write_loop, args=(self._output,), name="loudspeaker", daemon=True
        )
        self._writer.start()

    async def _closed(self) -> None:
        self._stopping.set()
        writer, self._writer = self._writer, None
        # The writer thread owns the device: it closes it after its last write. Closing it
        # from here while a write is still blocked in the device (a stalled ALSA device can
        # outlast any join timeout) would free FFmpeg's context under that write: a crash of
        # the whole of stationd, not an error.
        self._output = None
        if writer is not None:
            await asyncio.to_thread(writer.join, 5.0)
            if writer.is_alive():
                _log.warning("loudspeaker %r: a write did not return within 5 s", self.device)
        with contextlib.suppress(queue.Empty):
            while True:
                self._frames.get_nowait()

    def _play(self, frame: av.AudioFrame) -> None:
        if self.error is not None:
            raise self.error
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            out.pts = self._pts
            out.time_base = _TIME_BASE
            self._pts += out.samples
            while True:
                try:
                    self._frames.put_nowait(out)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        self._frames.get_nowait()
                        self.dropped += 1

    def _write_loop(self, output: _Output) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    frame = self._frames.get(timeout=0.1)
                except queue.Empty:
                    continue
                try:
                    output.write(frame)
                except (av.FFmpegError, OSError) as exc:
                    self.error = AudioUnavailableError(f"loudspeaker {self.device!r} failed: {exc}")
                    return
                self.written += 1
        finally:
            with contextlib.suppress(Exception):
                output.close()
