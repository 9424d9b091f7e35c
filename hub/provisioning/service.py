"""The hub's provisioning rules: enrollment, signed configuration, heartbeats, commands, staff.

Used by two front ends: the station API (:mod:`hub.provisioning.api`, signed requests:
:mod:`hub.provisioning.station_requests`) and the admin CLI (:mod:`hub.admin`, run by IT on
the hub's host with access to its database and key: :mod:`hub.provisioning.admin_actions`).
Both stand on :mod:`hub.provisioning.layers` (the shared state and the configuration
layering). Every admin action is recorded in ``prov_admin_audit``.

Request authentication (:meth:`ProvisioningService.authenticate`) is a compare-and-set on the
station's last counter in one transaction: a counter above the last one is accepted; the very
same request again is a replay (409); a *different* validly signed request at or below the
last counter means the identity is used by two devices (or traffic was captured and replayed)
and the station is flagged ``clone_suspected`` and refused until IT acts.

Configuration is layered: municipality defaults, then the care home, then the station, then
the station's enrolled staff (pseudonymous ids) from ``prov_staff``. Every change that alters
a station's merged configuration publishes a new signed version for it; a rollback publishes
an older content under its old version number with ``rollback_of`` set to the current one.
"""

from __future__ import annotations

from hub.provisioning.admin_actions import AdminActions, AdminAuditEntry
from hub.provisioning.keys import CODE_ALPHABET, format_code
from hub.provisioning.layers import LAYER_SCOPES, ProvisioningSettings
from hub.provisioning.station_requests import StationRequests

__all__ = [
    "CODE_ALPHABET",
    "LAYER_SCOPES",
    "AdminAuditEntry",
    "ProvisioningService",
    "ProvisioningSettings",
    "format_code",
]


class ProvisioningService(StationRequests, AdminActions):
    """Provisioning on one :class:`~hub.db.Database`: the station side and the admin side."""
