"""The station's hardware: camera, audio, privacy button and LED; each a real backend and a fake.

Each part is a port (a ``typing.Protocol``), a real backend and a shipped fake, chosen by name
from the environment, gpiozero-style, with a documented fallback order:

- :mod:`hardware.camera`: ``KONTAKTSTATION_CAMERA=picamera2|v4l2|testpattern`` (unset:
  picamera2, then v4l2; the test pattern only when asked for). Tracks are aiortc
  ``MediaStreamTrack``s; the test pattern stamps capture time and sequence number into the
  picture (:func:`hardware.camera.decode_stamp`).
- :mod:`hardware.audio`: ``KONTAKTSTATION_AUDIO=pyav|fake`` (unset: pyav). The module
  docstring says where echo cancellation comes from (not from aiortc).
- :mod:`hardware.button` and :mod:`hardware.led`: gpiozero, ``GPIOZERO_PIN_FACTORY`` (unset:
  lgpio, then rpigpio; ``mock`` off the Pi). The first press edge locks; nothing unlocks.
- :mod:`hardware.health`: checks, a pass/fail table, and ``kontaktstation hw-check``.
- :mod:`hardware.bundle`: :class:`~hardware.bundle.Hardware` and ``build_hardware(env)`` for
  the composition root. ``KONTAKTSTATION_HARDWARE=fake`` makes every part its fake (demo).
  A part whose device is not there is *missing* (reported, refusing, re-probed with
  ``Hardware.reprobe``), never replaced by its fake; a configuration error still raises.

Hardware that exists only on a Pi (picamera2, libcamera, lgpio) is imported inside the
functions that need it, so this package installs and tests on any Linux machine.
"""
