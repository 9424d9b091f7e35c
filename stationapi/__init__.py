"""The contract between stationd and its UIs: the wire models and a client per UI.

- :mod:`stationapi.models`: every request and response body (pydantic); stationd's routes
  declare them, so its OpenAPI description is complete, and the clients build and parse them.
- :mod:`stationapi.locked`: :class:`~stationapi.locked.LockedClient`, the locked UI's (and
  the UI supervisor's) client: open endpoints only, no unlock, no records, no token.
- :mod:`stationapi.staff`: :class:`~stationapi.staff.StaffClient`, the staff UI's client:
  every endpoint, typed, with the staff token.
- :mod:`stationapi.errors`, :mod:`stationapi.events`: what both clients raise and stream.

Imported by stationd (which serves it) and by both UIs (which call it), nothing else. It
imports nothing of stationd's wiring, storage or keys (an import-linter contract says so):
only ``station.core`` (ids) and ``station.errors``.
"""
