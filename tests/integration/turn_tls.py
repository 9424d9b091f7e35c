"""coturn with a certificate, and a firewall between the station's namespace and the rest.

* :func:`make_test_ca`: a CA and a server certificate for an IP address, made at test time with
  ``cryptography`` (nothing checked in). The station trusts the CA the way it trusts the
  municipality's CA in production: through OpenSSL's default store, which ``SSL_CERT_FILE``
  points at in the test (stationd's environment), never by switching verification off.
* :func:`running_coturn_tls`: coturn listening on UDP and TCP 3478 and TLS 443 (root may bind
  443; the tests run as root inside namespaces of their own).
* :class:`Firewall`: what a municipal firewall does to the station's traffic, made with the
  queueing disciplines this machine's kernel has (no nftables, no ``act_gact``): an ``htb``
  root on each end of the veth with a ``u32`` filter sending the blocked traffic to a
  ``pfifo`` queue of length 0. Blocked packets vanish silently at the sender's own interface,
  both directions; nothing answers with an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from station.call.ice import IceServerConfig

from .call_harness import terminate, wait_for

__all__ = ["TLS_PORT", "TURN_PORT", "Firewall", "TlsCoturn", "make_test_ca", "running_coturn_tls"]

TURN_PORT = 3478
TLS_PORT = 443


@dataclass(frozen=True)
class TestCa:
    """Files of a test CA and one server certificate signed by it."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path


def make_test_ca(directory: Path, address: str) -> TestCa:
    """A fresh CA and a certificate for ``address`` (an IP SAN), valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test municipal CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TestCa(directory / "ca.pem", directory / "turn-cert.pem", directory / "turn-key.pem")
    files.ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key_pem.chmod(0o600)
    return files


@dataclass(frozen=True)
class TlsCoturn:
    """coturn on ``address``: UDP and TCP on :data:`TURN_PORT`, TLS on :data:`TLS_PORT`."""

    address: str
    username: str
    password: str
    ca: TestCa
    log: Path

    @property
    def urls(self) -> tuple[str, str, str]:
        """The three paths in the order of preference: UDP, TCP, TLS on 443."""
        return (
            f"turn:{self.address}:{TURN_PORT}",
            f"turn:{self.address}:{TURN_PORT}?transport=tcp",
            f"turns:{self.address}:{TLS_PORT}?transport=tcp",
        )

    def ice_server(self, urls: tuple[str, ...] | None = None) -> IceServerConfig:
        """The station's ICE server entry: all three paths, one credential."""
        return IceServerConfig(
            urls=urls or self.urls, username=self.username, credential=self.password
        )

    def ice_servers_json(self) -> str:
        """``KONTAKTSTATION_ICE_SERVERS`` for stationd's environment."""
        import json

        return json.dumps(
            [{"urls": list(self.urls), "username": self.username, "credential": self.password}]
        )


@contextlib.asynccontextmanager
async def running_coturn_tls(directory: Path, address: str) -> AsyncIterator[TlsCoturn]:
    """coturn with a fresh test certificate for ``address``; stopped by its PID afterwards."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.skip("needs coturn (scripts/ensure-system-deps installs it)")
    ca = make_test_ca(directory / "pki", address)
    password = secrets.token_hex(8)
    log_path = directory / "coturn.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            binary,
            "-n",
            f"--listening-ip={address}",
            f"--listening-port={TURN_PORT}",
            f"--tls-listening-port={TLS_PORT}",
            f"--cert={ca.cert_pem}",
            f"--pkey={ca.key_pem}",
            f"--relay-ip={address}",
            "--allow-loopback-peers",
            "--min-port=49160",
            "--max-port=49200",
            "--lt-cred-mech",
            f"--user=station:{password}",
            "--realm=carehome.test",
            "--fingerprint",
            "--no-cli",
            "--no-dtls",
            "--no-multicast-peers",
            "--log-file=stdout",
            "--simple-log",
            "--verbose",  # the sessions' transports, for the tests' checks
            f"--pidfile={directory / 'turnserver.pid'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        from station.call.probe import probe_url

        async def listening() -> bool:
            return (await probe_url(f"turn:{address}:{TURN_PORT}?transport=tcp", 0.5)).reachable

        await wait_for(listening, timeout=15, what="coturn listening")
        yield TlsCoturn(address, "station", password, ca, log_path)
    finally:
        terminate(process, timeout=5)
        log.close()


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=10)


class Firewall:
    """Blocks the station's TURN paths between the two ends of the veth (see the module docs).

    ``inside`` runs a command in the station's namespace; ``outer`` is the veth end in the
    test's namespace, ``station`` the end in the station's.
    """

    def __init__(self, outer: str, station: str, inside: Callable[..., None]) -> None:
        self.outer = outer
        self.station = station
        self.inside = inside
        for run, dev in ((_run, outer), (inside, station)):
            for command in (
                f"tc qdisc replace dev {dev} root handle 1: htb default 10",
                f"tc class add dev {dev} parent 1: classid 1:10 htb rate 10gbit",
                f"tc class add dev {dev} parent 1: classid 1:20 htb rate 10gbit",
                f"tc qdisc add dev {dev} parent 1:20 handle 20: pfifo limit 0",
            ):
                run(*command.split())
        self._prio = 1

    def _drop(self, dev: str, run: Callable[..., None], match: str) -> None:
        filter_ = f"tc filter add dev {dev} parent 1: protocol ip prio {self._prio} u32"
        run(*filter_.split(), *match.split(), "flowid", "1:20")
        self._prio += 1

    def block_udp(self) -> None:
        """Every UDP packet, both ways (the station's host candidates and TURN over UDP)."""
        for dev, run in ((self.station, self.inside), (self.outer, _run)):
            self._drop(dev, run, "match ip protocol 17 0xff")

    def block_tcp_port(self, port: int) -> None:
        """TCP to ``port`` on the far side (and its answers)."""
        tcp = "match ip protocol 6 0xff"
        self._drop(self.station, self.inside, f"{tcp} match ip dport {port} 0xffff")
        self._drop(self.outer, _run, f"{tcp} match ip sport {port} 0xffff")
