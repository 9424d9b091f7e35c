"""Camera costs: test-pattern frames, stamp decoding, and VP8/H.264 encoding for reference.

Prints one JSON object per line. Run: ``.venv/bin/python bench/camera.py [--frames N]``.
Each figure is the median over N frames of the wall time per frame, in microseconds.
"""

from __future__ import annotations

import argparse
import fractions
import json
import platform
import statistics
import time
from collections.abc import Callable

import av
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from hardware.camera import TestPattern, decode_stamp

T0 = 1_795_000_000_000_000


def measure(run: Callable[[int], object], frames: int) -> tuple[float, float]:
    """Median and 90th percentile of ``run(i)``'s wall time, microseconds."""
    for i in range(min(10, frames)):  # warm caches and codec state
        run(i)
    samples = []
    for i in range(frames):
        start = time.perf_counter_ns()
        run(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def emit(metric: str, width: int, height: int, frames: int, result: tuple[float, float]) -> None:
    print(
        json.dumps(
            {
                "bench": "camera",
                "metric": metric,
                "size": f"{width}x{height}",
                "frames": frames,
                "median_us": round(result[0], 1),
                "p90_us": round(result[1], 1),
                "machine": platform.machine(),
            }
        ),
        flush=True,
    )


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    n = args.frames

    for width, height in ((640, 480), (1280, 720)):
        pattern = TestPattern(width, height)
        emit(
            "testpattern_generate_and_stamp",
            width,
            height,
            n,
            measure(lambda i, p=pattern: p.render(i, T0 + i), n),  # type: ignore[misc]
        )
        frames = [pattern.render(i, T0 + i) for i in range(32)]
        emit(
            "stamp_decode",
            width,
            height,
            n,
            measure(lambda i, f=frames: decode_stamp(f[i % 32]), n),  # type: ignore[misc]
        )

    width, height = 640, 480
    pattern = TestPattern(width, height)
    for mime, bitrate in (("video/VP8", 500_000), ("video/H264", 1_000_000)):
        encoder = get_encoder(RTCRtpCodecParameters(mimeType=mime, clockRate=90000, payloadType=96))
        encoder.target_bitrate = bitrate  # type: ignore[attr-defined]
        pictures = [pattern.render(i, T0 + i) for i in range(60)]

        def encode(i: int, enc: object = encoder, pics: list[av.VideoFrame] = pictures) -> None:
            frame = pics[i % 60]
            frame.pts = i * 3000
            frame.time_base = fractions.Fraction(1, 90000)
            enc.encode(frame, force_keyframe=(i == 0))  # type: ignore[attr-defined]

        name = "vp8_encode_aiortc" if mime == "video/VP8" else "h264_encode_aiortc_libx264"
        emit(name, width, height, n, measure(encode, n))


if __name__ == "__main__":
    main()
