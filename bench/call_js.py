"""The JavaScript ``bench/call.py`` runs in Chromium (kept apart so call.py stays readable).

Every time taken in a page is ``performance.timeOrigin + performance.now()`` (the page's wall
clock in ms); call.py measures each page's offset to the bench's ``time.time()`` and puts all
marks on that one clock.
"""

from __future__ import annotations

from tests.integration.gp_stamps import STAMP_DECODER_JS

__all__ = [
    "CANVAS_CAMERA_JS",
    "GP_INIT_JS",
    "GP_STAMP_READER_JS",
    "JS_STATION_PREPARE",
    "JS_STATION_START",
    "frame_times_js",
]


def frame_times_js(name: str) -> str:
    """A JS function ``name(now, meta)`` turning a requestVideoFrameCallback into wall times.

    ``presentation`` is when Chromium handed the frame to its compositor
    (``metadata.presentationTime``), the point call.py compares with stationd handing a frame
    to its frame sink; ``callback`` is when the callback ran, ``expected`` when Chromium
    expects it on the glass, ``receive`` when its last packet arrived.
    """
    return f"""
  function {name}(now, meta) {{
    const o = performance.timeOrigin;
    return {{callback: o + now, presentation: o + meta.presentationTime,
             expected: o + meta.expectedDisplayTime,
             receive: typeof meta.receiveTime === "number" ? o + meta.receiveTime : null,
             processing: typeof meta.processingDuration === "number"
               ? meta.processingDuration * 1000 : null,
             width: meta.width, height: meta.height}};
  }}"""


#: Installed in every GP page before gp.js runs: timestamps of the GP page's own steps
#: (lists of every occurrence), the first remote frame's times, and the GP's click on Admit a
#: fixed pause after the waiting room appears (``__ADMIT_MS__``; the page clicks it itself, so
#: no round trip to the bench sits between the decision and the click).
GP_INIT_JS = (
    """
(() => {
  const bench = window.__bench = {marks: {}, firstFrame: null, waitingShown: null};
  const now = () => performance.timeOrigin + performance.now();
  const mark = (name) => { (bench.marks[name] = bench.marks[name] || []).push(now()); };
"""
    + frame_times_js("frameTimes")
    + """
  const originalFetch = window.fetch;
  window.fetch = async (input, init) => {
    const path = new URL(String(input instanceof Request ? input.url : input), location.href)
      .pathname;
    const kind = /\\/api\\/gp\\/(admit|answer)$/.exec(path);
    if (kind) mark(kind[1] + "_posted");
    const response = await originalFetch(input, init);
    if (kind) mark(kind[1] + "_answered");
    return response;
  };
  const proto = RTCPeerConnection.prototype;
  for (const name of ["setRemoteDescription", "createAnswer", "setLocalDescription"]) {
    const original = proto[name];
    proto[name] = async function (...args) {
      mark(name + "_start");
      const result = await original.apply(this, args);
      mark(name + "_done");
      return result;
    };
  }
  const Original = window.RTCPeerConnection;
  function Traced(...args) {
    const pc = new Original(...args);
    pc.addEventListener("icegatheringstatechange", () => mark("gathering_" + pc.iceGatheringState));
    pc.addEventListener("iceconnectionstatechange", () => mark("ice_" + pc.iceConnectionState));
    pc.addEventListener("connectionstatechange", () => mark("pc_" + pc.connectionState));
    return pc;
  }
  Traced.prototype = Original.prototype;
  window.RTCPeerConnection = Traced;
  const admitAfter = __ADMIT_MS__;
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(() => {
      if (document.body.dataset.view !== "waiting" || bench.waitingShown !== null) return;
      bench.waitingShown = now();
      if (admitAfter !== null) {
        setTimeout(() => document.getElementById("admit").click(), admitAfter);
      }
    }).observe(document.body, {attributes: true, attributeFilter: ["data-view"]});
    const video = document.getElementById("remote-video");
    video.requestVideoFrameCallback((t, meta) => { bench.firstFrame = frameTimes(t, meta); });
  });
})();
"""
)

#: The station's test-pattern stamp (hardware/camera/stamp.py), read from every frame the GP
#: page shows: capture time and the frame's times, for the station -> GP glass-to-glass latency.
GP_STAMP_READER_JS = (
    """
() => {
"""
    + frame_times_js("frameTimes")
    + """
  const video = document.getElementById("remote-video");
  const out = window.benchStamps = {samples: [], frames: 0, decoded: 0, width: 0, height: 0,
                                    startedAt: performance.timeOrigin + performance.now()};
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
"""
    + STAMP_DECODER_JS
    + """
  function onFrame(now, meta) {
    out.frames += 1;
    const w = video.videoWidth, h = video.videoHeight;
    out.width = w; out.height = h;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(video, 0, 0, w, h);
    const captureUs = decodeLayout(w, h, 40, 3) ?? decodeLayout(w, h, 20, 6);
    if (captureUs !== null && out.samples.length < 200000) {
      out.decoded += 1;
      const t = frameTimes(now, meta);
      out.samples.push([captureUs / 1000, t.presentation, t.expected]);
    }
    video.requestVideoFrameCallback(onFrame);
  }
  video.requestVideoFrameCallback(onFrame);
}
"""
)

#: Replaces the GP page's camera (an init script, before gp.js): a 640x480 canvas at 30 fps
#: with colour bars, a moving box and the station's own stamp layout (hardware/camera/stamp.py:
#: 40x3 cells, sync, 64-bit capture time in microseconds, 32-bit sequence, CRC-16), whose time
#: is the page's wall clock when the picture is drawn; the microphone stays Chromium's fake one.
CANVAS_CAMERA_JS = """
(() => {
  const W = 640, H = 480, COLS = 40, ROWS = 3, CELL = W / COLS, BAND = ROWS * CELL;
  const SYNC = [1, 0, 1, 1, 0, 0, 1, 0];
  const BARS = ["#bfbfbf", "#bfbf00", "#00bfbf", "#00bf00", "#bf00bf", "#bf0000", "#0000bf"];
  function crc(bytes) {
    let c = 0xffff;
    for (const b of bytes) {
      c ^= b << 8;
      for (let i = 0; i < 8; i++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    }
    return c;
  }
  function stampBits(captureUs, seq) {
    const bytes = [];
    const us = BigInt(captureUs);
    for (let i = 7; i >= 0; i--) bytes.push(Number((us >> BigInt(8 * i)) & 0xffn));
    for (let i = 3; i >= 0; i--) bytes.push((seq >>> (8 * i)) & 0xff);
    const c = crc(bytes);
    bytes.push(c >> 8, c & 0xff);
    const bits = [...SYNC];
    for (const b of bytes) for (let i = 7; i >= 0; i--) bits.push((b >> i) & 1);
    return bits;
  }
  function draw(ctx, seq, captureUs) {
    BARS.forEach((colour, i) => {
      ctx.fillStyle = colour;
      ctx.fillRect(Math.floor((i * W) / 7), 0, Math.ceil(W / 7) + 1, H);
    });
    ctx.fillStyle = "#808080";
    ctx.fillRect(0, 0, W, BAND + 4);
    const span = W - 64, step = (seq * 8) % (2 * span);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(step < span ? step : 2 * span - step, 240, 64, 64);
    ctx.fillStyle = "#282828";
    ctx.fillRect(0, BAND + 8 + ((seq * 4) % (H - BAND - 12)), W, 4);
    stampBits(captureUs, seq).forEach((bit, i) => {
      ctx.fillStyle = bit ? "#ffffff" : "#000000";
      ctx.fillRect((i % COLS) * CELL, Math.floor(i / COLS) * CELL, CELL, CELL);
    });
  }
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const audio = constraints && constraints.audio ? await original({audio: constraints.audio})
                                                   : null;
    if (!constraints || !constraints.video) return audio;
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext("2d");
    const stream = canvas.captureStream(30);
    let seq = 0, last = 0;
    const tick = () => {
      const t = performance.timeOrigin + performance.now();
      if (t - last >= 30) { last = t; draw(ctx, seq, Math.round(t * 1000)); seq += 1; }
      requestAnimationFrame(tick);
    };
    tick();
    if (audio) for (const track of audio.getAudioTracks()) stream.addTrack(track);
    window.__benchCamera = {drawn: () => seq};
    return stream;
  };
})();
"""

#: The Chromium station, prepared before Start as the GP page prepares in its waiting room:
#: camera and microphone on, a peer connection with the tracks and the data channel, gathering
#: ahead (``iceCandidatePoolSize: 1``), a video element for the GP's picture. ``{tone: true}``:
#: the microphone is a steady tone at the level of stationd's fake microphone (-20 dBFS RMS; a
#: sine's peak is √2 times its RMS), for measuring audio gaps at the GP (bench/network.py).
JS_STATION_PREPARE = (
    """
async ({tone} = {}) => {
  const state = window.benchStation = {firstFrame: null, frames: 0, error: null, marks: {}};
"""
    + frame_times_js("frameTimes")
    + """
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: !tone, video: {width: 640, height: 480, frameRate: 30}});
  if (tone) {
    const audio = window.benchAudio = new AudioContext({sampleRate: 48000});
    const oscillator = audio.createOscillator();
    const level = audio.createGain();
    level.gain.value = Math.SQRT2 * 0.1;
    const microphone = audio.createMediaStreamDestination();
    oscillator.connect(level).connect(microphone);
    oscillator.start();
    await audio.resume();
    stream.addTrack(microphone.stream.getAudioTracks()[0]);
  }
  const pc = new RTCPeerConnection({iceServers: [], bundlePolicy: "max-bundle",
                                    iceCandidatePoolSize: 1});
  window.benchPc = pc;
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.createDataChannel("control");
  const video = document.createElement("video");
  video.muted = true; video.playsInline = true; document.body.append(video);
  const remote = new MediaStream();
  video.srcObject = remote;
  pc.ontrack = (event) => { remote.addTrack(event.track); video.play().catch(() => {}); };
  const count = (now, meta) => {
    if (state.firstFrame === null) state.firstFrame = frameTimes(now, meta);
    state.frames += 1;
    video.requestVideoFrameCallback(count);
  };
  video.requestVideoFrameCallback(count);
  return true;
}
"""
)

#: Start: the complete offer to the hub (the hub's station API takes complete offers), then
#: the answer by long-poll. Returns the start time (page clock).
JS_STATION_START = """
async ({roomId, token}) => {
  const state = window.benchStation;
  const pc = window.benchPc;
  const now = () => performance.timeOrigin + performance.now();
  state.marks.start = now();
  await pc.setLocalDescription(await pc.createOffer());
  state.marks.offer_made = now();
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
  state.marks.gathered = now();
  const headers = {Authorization: "Bearer " + token, "Content-Type": "application/json"};
  const posted = await fetch(`/api/station/rooms/${roomId}/offer`, {
    method: "POST", headers,
    body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp})});
  const generation = (await posted.json()).generation;
  state.marks.offer_posted = now();
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "connected") state.marks.connected = now();
  });
  (async () => {
    for (;;) {
      const response = await fetch(
        `/api/station/rooms/${roomId}/answer?generation=${generation}&timeout=20`, {headers});
      if (response.status === 204) continue;
      const body = await response.json();
      state.marks.answer_received = now();
      await pc.setRemoteDescription({type: "answer", sdp: body.sdp});
      state.marks.remote_description_set = now();
      return;
    }
  })().catch((error) => { state.error = String(error); });
  return state.marks.start;
}
"""
