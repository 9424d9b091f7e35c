"""Rules both ends of a connection check the same way: a base URL, an endpoint URL, a token.

The hub checks its own public URL and the station the hub's; the signed configuration's EOJ
section and the station's own ``export.json`` check the care record's endpoints; both ends
refuse a short station token. In the core (the bottom layer) so the hub, the provisioning
documents, the call engine and the export each use this one copy.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from station.core.text import has_control

__all__ = ["check_base_url", "check_endpoint_url", "check_station_token"]


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(name: str, value: str) -> str:
    """An http(s) base URL (the hub's) without query or fragment, without its trailing slash.

    Both ends check it the same way: the hub its own public URL, the station the hub's URL.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or fragment")
    return value.rstrip("/")


def check_station_token(token: str) -> None:
    """INTERIM: the hub's one shared station credential; both ends refuse a short one."""
    if len(token) < 32:
        raise ValueError("the station token must be at least 32 characters (use 256 random bits)")


def check_endpoint_url(name: str, url: str, *, allow_insecure_loopback: bool) -> None:
    """The rule for the care record's endpoints (``ValueError`` naming ``name``, never ``url``).

    An absolute https URL without credentials in it; plain http only to a loopback address,
    and only with ``allow_insecure_loopback`` (tests). The signed configuration's ``eoj``
    section and the station's own ``export.json`` (:mod:`station.export.config`) both use it.
    """
    if has_control(url):
        raise ValueError(f"{name}: control characters are not allowed")
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError(f"{name} must be an absolute https URL")
    if parts.username or parts.password:
        raise ValueError(f"{name} must not carry credentials")
    if parts.scheme == "http" and not (allow_insecure_loopback and _is_loopback(parts.hostname)):
        raise ValueError(
            f"{name} must use https (plain http is allowed only to a loopback address with "
            "allow_insecure_loopback, in tests)"
        )
