"""The station's call engine: one aiortc peer connection per attempt, signaling with the hub.

* :mod:`station.call.engine`: :class:`~station.call.engine.CallEngine` (the call's life: start,
  end, re-dial with back-off, the GP's presence), built on :mod:`station.call.attempt` (one
  peer connection: offer, answer, media watchdog, statistics), :mod:`station.call.controls`
  (data-channel notices, mute, camera, volume) and :mod:`station.call.state` (what they
  share); :mod:`station.call.quality` grades the call;
* :mod:`station.call.config`: :class:`~station.call.config.CallConfig` (hub, ICE servers);
* :mod:`station.call.ice`: explicit RTC configurations (never an implicit public STUN);
* :mod:`station.call.probe`: STUN/TURN reachability, so a dead server cannot stall set-up;
* :mod:`station.call.hub`: the hub's station API; :mod:`station.call.media`: the tracks.

Nothing in this package is imported by the station's domain (``station.core``): aiortc is an
adapter concern. stationd wires it in :mod:`station.daemon.calls` (its endpoints:
``station.daemon.routes.call``). Who is waiting arrives as the contract's
:class:`stationapi.models.WaitingResident` (the call's start request).
"""

from __future__ import annotations

__all__: list[str] = []
