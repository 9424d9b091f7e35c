"""What the staff UI hands the call engine for one call: who is waiting (personal data).

stationd is blind: these values arrive in the call-start request, are forwarded to the hub
(the GP's waiting room) and the data channel (who is in front of the camera), live only in
the running call's memory, and are never stored or logged.

The model is the waiting room's contract, defined once in :mod:`provisioning.waiting_room`
and shared with the hub; this module names it for the station's call.
"""

from __future__ import annotations

from provisioning.waiting_room import WaitingResident

__all__ = ["WaitingResident"]
