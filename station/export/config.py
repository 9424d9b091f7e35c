"""The export's configuration: where the care record (EOJ) is and how to authenticate.

It is a JSON file, ``export.json`` in the data directory (mode 0600: it holds the OAuth2
client secret). Provisioning's signed configuration writes it (:func:`save_export_config`,
atomically) when IT sets the ``eoj`` section; a hand-made file works the same way. No file
means no endpoint: the staff UI shows the plain-text summary instead.

Safety rules the model enforces, so a typo cannot send a note in clear over the network:

- the FHIR base URL and the token URL must be ``https`` (TLS, certificates verified by
  httpx's default context or the configured CA bundle);
- the one exception is ``allow_insecure_loopback=true`` (tests only), which admits plain
  ``http`` to 127.0.0.1, ::1 or localhost and nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from station.core.rules import check_endpoint_url
from station.export.errors import ExportConfigError
from station.storage.datadir import DataDir
from station.storage.private_files import read_private_file, write_private_file

__all__ = [
    "DEFAULT_STAFF_IDENTIFIER_SYSTEM",
    "EXPORT_CONFIG_FILENAME",
    "CareHome",
    "ExportConfig",
    "load_export_config",
    "save_export_config",
]

EXPORT_CONFIG_FILENAME: Final = DataDir.EXPORT_CONFIG
#: Staff members are named in the EOJ by their station staff id under this system, until
#: the municipality's signed configuration names its own (e.g. its user directory's OID).
DEFAULT_STAFF_IDENTIFIER_SYSTEM: Final = "urn:kontaktstation:staff-id"

_SOR_RE: Final = r"^[0-9]{6,18}$"


# provisioning.schema has a CareHome too: the care home as IT's configuration names it (an
# id and a name). This one is what the EOJ needs (a name and the SOR code), kept in the
# station's export.json; stationd builds it from the configuration's name and the eoj
# section's SOR code. Two documents, each with the fields it is read for.
class CareHome(BaseModel):
    """The care home as the EOJ knows it: the encounter's service provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    #: The care home's SOR code (Sundhedsvæsenets Organisationsregister), urn:oid:1.2.208.176.1.1.
    sor: str = Field(pattern=_SOR_RE)


class ExportConfig(BaseModel):
    """Where to deliver and how; see the module docs for the https rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: The FHIR server's base URL; a transaction Bundle is POSTed to it.
    fhir_base_url: str
    #: OAuth2 token endpoint (client-credentials grant, RFC 6749 section 4.4).
    token_url: str
    client_id: str = Field(min_length=1, max_length=256)
    client_secret: SecretStr
    scope: str | None = Field(default=None, max_length=512)
    care_home: CareHome
    staff_identifier_system: str = DEFAULT_STAFF_IDENTIFIER_SYSTEM
    #: Per-request timeout (connect, write, read) in seconds.
    timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    #: A PEM file of CA certificates to trust instead of the system's (a municipal CA).
    ca_bundle: Path | None = None
    #: Tests only: allow plain http to a loopback address. Never set in production.
    allow_insecure_loopback: bool = False

    @model_validator(mode="after")
    def _check_urls(self) -> ExportConfig:
        for name in ("fhir_base_url", "token_url"):
            check_endpoint_url(
                name, getattr(self, name), allow_insecure_loopback=self.allow_insecure_loopback
            )
        if not urlsplit(self.staff_identifier_system).scheme:
            raise ValueError("staff_identifier_system must be a URI")
        return self

    @property
    def verify(self) -> bool | str:
        """httpx's ``verify``: the CA bundle's path, else the default verified context."""
        return str(self.ca_bundle) if self.ca_bundle is not None else True

    @classmethod
    def parse(cls, data: object) -> ExportConfig:
        """Validate ``data``; :class:`ExportConfigError` naming the fields, never the values."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            parts = []
            for err in exc.errors(include_url=False, include_input=False)[:5]:
                where = ".".join(str(p) for p in err.get("loc", ())) or "config"
                parts.append(f"{where}: {err.get('msg', 'invalid')}")
            raise ExportConfigError("invalid export configuration: " + "; ".join(parts)) from None


def load_export_config(path: Path) -> ExportConfig | None:
    """The configuration in ``path``, or None if the file does not exist.

    Refuses (:class:`ExportConfigError`) a file others may read: it holds the client secret.
    """
    try:
        raw = read_private_file(
            path, what="export configuration", error=ExportConfigError, up_to=1024 * 1024
        )
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ExportConfigError(f"export configuration {path} is not valid JSON") from None
    return ExportConfig.parse(data)


def save_export_config(path: Path, config: ExportConfig) -> None:
    """Write ``config`` to ``path`` atomically, mode 0600 from the first byte.

    A temporary file in the same directory (created 0600, exclusive), fsync, rename over
    ``path``, fsync of the directory: a crash leaves the old file or the new one, never half
    of either. Errors name the path, never the content.
    """
    data = config.model_dump(mode="json")
    data["client_secret"] = config.client_secret.get_secret_value()
    body = json.dumps(data, sort_keys=True, indent=2).encode() + b"\n"
    try:
        write_private_file(path, body, replace=True)
    except OSError as exc:
        raise ExportConfigError(
            f"cannot write export configuration {path}: {exc.strerror}"
        ) from None
