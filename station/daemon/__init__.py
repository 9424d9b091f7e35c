"""stationd: the daemon that owns the hardware, the call and the blind store, and serves the UIs."""
