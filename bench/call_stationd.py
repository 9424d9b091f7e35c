"""stationd for ``bench/call.py``: ``python -m station.daemon.app`` with three bench-only options.

Without options this is exactly ``kontaktstation daemon`` (``station.daemon.app.main``). The
options change nothing in the product's code paths; they only add what the bench needs:

``--fake-picamera2``
    The picamera2 backend on the shipped fake API (``hardware.camera.fake_picamera2``: the
    stamped test pattern as the "sensor", libx264 standing in for the Pi 4's VideoCore
    encoder). stationd has no switch for it, because on a station picamera2 is the real one.
``--name-encoder-thread``
    The fake's encoder thread (sensor picture + libx264) gets the kernel thread name
    ``ks-fake-vc``, so the bench can find it in ``/proc/<pid>/task`` and account for it apart
    (on a Pi 4 that work is done by the ISP and the VideoCore, not by an ARM core).
``--trace FILE``
    Appends one JSON line per set-up step (``{"step": ..., "t": time.time()}``): the answer
    read from the hub, the remote description set, ICE and DTLS connected, the first camera
    frame and the first encoded frame sent, the first RTP packet of the GP's video, its first
    decoded frame. For finding where the set-up time goes; the figures are measured without it.
"""

from __future__ import annotations

import ctypes
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

ENCODER_THREAD_NAME = b"ks-fake-vc"


def _install_fake_picamera2(name_thread: bool) -> None:
    from hardware.camera import fake_picamera2, picamera2_backend

    api = fake_picamera2.fake_picamera2_api()
    picamera2_backend.load_picamera2_api = lambda: api
    if not name_thread:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    record = fake_picamera2.FakePicamera2._record

    @functools.wraps(record)
    def named_record(self: Any, encoder: Any, output: Any) -> None:
        libc.prctl(15, ctypes.c_char_p(ENCODER_THREAD_NAME), 0, 0, 0)  # PR_SET_NAME
        record(self, encoder, output)

    fake_picamera2.FakePicamera2._record = named_record  # type: ignore[method-assign]


class _Trace:
    def __init__(self, path: Path) -> None:
        self._file = path.open("a", buffering=1)
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def mark(self, step: str, once: bool = True, **extra: Any) -> None:
        t = time.time()
        with self._lock:
            if once and step in self._seen:
                return
            self._seen.add(step)
            self._file.write(json.dumps({"step": step, "t": t, **extra}) + "\n")

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


def _wrap_async(
    owner: Any, name: str, before: Callable[..., None] | None, after: Callable[..., None] | None
) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(self, *args)
        result = await original(self, *args, **kwargs)
        if after is not None:
            after(self, result, *args)
        return result

    setattr(owner, name, wrapper)


def _install_trace(path: Path) -> None:
    import aiortc
    from aiortc import rtcdtlstransport, rtcicetransport, rtcrtpreceiver, rtcrtpsender

    from station.call import engine, hub, media

    trace = _Trace(path)

    def answer_done(_self: Any, result: Any, *_args: Any) -> None:
        if result is not None:
            trace.reset()
            trace.mark("answer_received")

    _wrap_async(hub.HubClient, "answer", None, answer_done)

    def srd_before(_self: Any, description: Any, *_a: Any) -> None:
        if description.type == "answer":
            trace.mark("remote_description_start")

    def srd_after(_self: Any, _r: Any, description: Any, *_a: Any) -> None:
        if description.type == "answer":
            trace.mark("remote_description_set")

    _wrap_async(aiortc.RTCPeerConnection, "setRemoteDescription", srd_before, srd_after)
    _wrap_async(
        rtcicetransport.RTCIceTransport,
        "start",
        lambda *_: trace.mark("ice_start"),
        lambda *_: trace.mark("ice_connected"),
    )
    _wrap_async(
        rtcdtlstransport.RTCDtlsTransport,
        "start",
        lambda *_: trace.mark("dtls_start"),
        lambda *_: trace.mark("dtls_connected"),
    )
    _wrap_async(
        media.CameraFeed,
        "recv",
        lambda *_: trace.mark("camera_recv_called"),
        lambda *_: trace.mark("camera_first_frame"),
    )

    send_rtp = rtcdtlstransport.RTCDtlsTransport._send_rtp

    async def traced_send_rtp(self: Any, data: bytes) -> None:
        await send_rtp(self, data)
        if len(data) > 200:  # a video packet (audio and RTCP are smaller)
            trace.mark("first_video_rtp_sent")

    rtcdtlstransport.RTCDtlsTransport._send_rtp = traced_send_rtp  # type: ignore[method-assign]

    handle = rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet

    async def traced_handle(self: Any, packet: Any, arrival_time_ms: int) -> None:
        if len(packet.payload) > 200:
            trace.mark("first_video_rtp_received")
        await handle(self, packet, arrival_time_ms)

    rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = traced_handle  # type: ignore[method-assign]

    video = media.MediaClock.video

    def traced_video(self: Any) -> None:
        video(self)
        trace.mark("first_video_decoded")

    media.MediaClock.video = traced_video  # type: ignore[method-assign]
    del engine, rtcrtpsender


def main() -> None:
    args = sys.argv[1:]
    if "--fake-picamera2" in args:
        args.remove("--fake-picamera2")
        name = "--name-encoder-thread" in args
        if name:
            args.remove("--name-encoder-thread")
        _install_fake_picamera2(name)
    if "--trace" in args:
        index = args.index("--trace")
        _install_trace(Path(args[index + 1]))
        del args[index : index + 2]
    from station.daemon.app import main as daemon_main

    sys.argv = [sys.argv[0], *args]
    raise SystemExit(daemon_main())


if __name__ == "__main__":
    main()
