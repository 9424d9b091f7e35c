"""The station's hardware: camera, audio, privacy button and LED; each a real backend and a fake."""
