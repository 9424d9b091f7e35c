"""Reading the station's test-pattern stamp in a browser page (the GP's view of the station).

The station's test pattern (``hardware/camera/stamp.py``) carries its capture time and a CRC
in a band of black and white cells. :data:`STAMP_JS` decodes it from every frame the page
shows (``requestVideoFrameCallback`` into a canvas) and collects, in ``window.benchStamps``,
how many frames were shown and decoded and their glass-to-glass latency. ``bench/call.py`` and
the system test use it.
"""

from __future__ import annotations

__all__ = ["STAMP_DECODER_JS", "STAMP_JS"]

#: The stamp's decoder (see hardware/camera/stamp.py), one copy for the tests and the bench:
#: ``decodeLayout(w, h, cols, rows)`` reads the capture time in microseconds from the frame drawn
#: into ``ctx``, or null. Spliced into a page function that defines ``ctx`` (a 2D context).
STAMP_DECODER_JS = """
  const SYNC = [1, 0, 1, 1, 0, 0, 1, 0];
  function crc(bytes) {
    let c = 0xffff;
    for (const b of bytes) {
      c ^= b << 8;
      for (let i = 0; i < 8; i++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    }
    return c;
  }
  function decodeLayout(w, h, cols, rows) {
    const cell = w / cols;
    const band = Math.min(h, Math.ceil(rows * cell) + 1);
    const px = ctx.getImageData(0, 0, w, band).data;
    const means = [];
    for (let i = 0; i < cols * rows; i++) {
      const r = Math.floor(i / cols), c = i % cols;
      let sum = 0;
      for (const fy of [0.3, 0.43, 0.57, 0.7]) for (const fx of [0.3, 0.43, 0.57, 0.7]) {
        const y = Math.floor((r + fy) * cell), x = Math.min(w - 1, Math.floor((c + fx) * cell));
        const o = (y * w + x) * 4;
        sum += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
      }
      means.push(sum / 16);
    }
    let white = 0, black = 0;
    SYNC.forEach((bit, i) => { if (bit) white += means[i] / 4; else black += means[i] / 4; });
    if (white - black < 60) return null;
    const mid = (white + black) / 2;
    const bits = means.map((m) => (m > mid ? 1 : 0));
    if (SYNC.some((bit, i) => bits[i] !== bit)) return null;
    const bytes = [];
    for (let i = 0; i < 14; i++) {
      let v = 0;
      for (let j = 0; j < 8; j++) v = (v << 1) | bits[8 + i * 8 + j];
      bytes.push(v);
    }
    if (crc(bytes.slice(0, 12)) !== ((bytes[12] << 8) | bytes[13])) return null;
    let us = 0n;
    for (let i = 0; i < 8; i++) us = (us << 8n) | BigInt(bytes[i]);
    return Number(us);
  }
"""

#: The stamp decoder, run in the GP page for every shown frame (see hardware/camera/stamp.py).
STAMP_JS = (
    """
() => {
  const video = document.getElementById("remote-video");
  const out = window.benchStamps = {latencies: [], times: [], frames: 0, decoded: 0, width: 0,
                                    height: 0, startedAt: performance.now()};
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
"""
    + STAMP_DECODER_JS
    + """  function onFrame(now, meta) {
    out.frames += 1;
    const w = video.videoWidth, h = video.videoHeight;
    out.width = w; out.height = h;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(video, 0, 0, w, h);
    const captureUs = decodeLayout(w, h, ...(w >= 640 ? [40, 3] : [20, 6]));
    if (captureUs !== null) {
      out.decoded += 1;
      const shownMs = performance.timeOrigin + meta.expectedDisplayTime;
      if (out.latencies.length < 100000) out.latencies.push(shownMs - captureUs / 1000);
      if (out.times.length < 100000) out.times.push(now);
    }
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);
}
"""
)
