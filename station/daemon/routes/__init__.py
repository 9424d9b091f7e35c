"""stationd's local API, one FastAPI router per capability (assembled by ``station.daemon.api``).

=====================  ====================================================================
module                 endpoints
=====================  ====================================================================
``session``            state, lock, unlock, the session transitions staff drive, touch
``info``               what the lock screen reads: settings, upcoming, health, enrollment
``events``             the event stream (server-sent events)
``records``            the blind store: clinics, consultations, keys, entries, notes,
                       sealed events
``call``               the call engine (``/v1/call``)
``precheck``           the pre-call check's camera, microphone, tone and network
``export``             the care-record export (``/v1/exports``)
``provisioning``       a new staff member's enrollment (``/v1/staff/enroll``)
=====================  ====================================================================

Every request and response body is a model of :mod:`stationapi.models`; who may call what is
a dependency of :mod:`station.daemon.routes.deps` (a staff token, or staff-or-private for the
resident's call controls), never a check repeated in a handler.
"""
