"""Audio gaps as a listener hears them: a tone's continuity at the receiver, in a page.

The sender plays a steady tone (stationd's fake microphone: a sine at -20 dBFS RMS; a bench's
Chromium station an oscillator at the same level). In the receiving page a
``ScriptProcessorNode`` (not an ``AudioWorklet``: the GP page's content security policy
forbids loading its module from a ``blob:``) takes the remote audio track block by block (128
samples, 2.7 ms at 48 kHz) and counts runs of blocks whose RMS is under -40 dBFS: a gap is
what reaches the ear as silence, after the receiver's jitter buffer and its loss concealment
(a lost packet that concealment or FEC covers is no gap; a stall is).

``TONE_METER_INSTALL_JS(track)`` starts the meter on a ``MediaStreamTrack`` (``window.toneMeter``),
``TONE_METER_READ_JS()`` gives ``{seconds, gaps_ms, silent_now_ms}`` since the last read and
starts counting again.
"""

from __future__ import annotations

__all__ = ["GP_REMOTE_AUDIO_TRACK_JS", "TONE_METER_INSTALL_JS", "TONE_METER_READ_JS"]

TONE_METER_INSTALL_JS = """
async (track) => {
  const context = new AudioContext({sampleRate: 48000});
  const source = context.createMediaStreamSource(new MediaStream([track]));
  const node = context.createScriptProcessor(1024, 1, 1);
  const meter = {blocks: 0, silent: 0, gaps: [], rate: context.sampleRate};
  node.onaudioprocess = (event) => {
    const samples = event.inputBuffer.getChannelData(0);
    for (let start = 0; start < samples.length; start += 128) {
      let sum = 0;
      for (let i = start; i < start + 128; i++) sum += samples[i] * samples[i];
      meter.blocks++;
      if (Math.sqrt(sum / 128) < 0.01) meter.silent++;
      else { if (meter.silent) meter.gaps.push(meter.silent); meter.silent = 0; }
    }
  };
  const mute = context.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(context.destination);  // pulled, not heard
  await context.resume();
  window.toneMeter = {
    context, node, source,
    read: () => {
      const r = {blocks: meter.blocks, gaps: meter.gaps, silent: meter.silent, rate: meter.rate};
      meter.blocks = 0; meter.gaps = [];
      return r;
    },
  };
  return context.state;
}
"""

TONE_METER_READ_JS = """
async () => {
  const r = window.toneMeter.read();
  const ms = (blocks) => blocks * 128 / r.rate * 1000;
  return {seconds: ms(r.blocks) / 1000, gaps_ms: r.gaps.map(ms), silent_now_ms: ms(r.silent)};
}
"""

#: The GP page's received audio track.
GP_REMOTE_AUDIO_TRACK_JS = """
() => window.kontaktGp.peerConnection().getReceivers().find((r) => r.track.kind === "audio").track
"""
