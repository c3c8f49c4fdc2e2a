"""TLS for the embedded local store: a private CA and a server certificate for 127.0.0.1.

O3 is HTTPS; so is its stand-in. ``ensure(directory)`` creates (once) a CA key and self-signed CA
certificate, and a server key and certificate signed by it for ``127.0.0.1``, ``::1`` and
``localhost``, with the `cryptography` library. Keys are written 0600 before their first byte.
Clients trust the CA through ``AWS_CA_BUNDLE`` (boto3, DVC/s3fs and the aws CLI all read it);
`zkml-dvc store env` exports it.

    ca.pem        the CA certificate (what clients trust)
    ca.key        the CA's private key (0600; signs only this store's certificate)
    server.pem    the server certificate, then the CA certificate (the chain SeaweedFS serves)
    server.key    the server's private key (0600)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from .fsutil import atomic_write_bytes

VALID_DAYS = 825  # under the 825-day limit clients apply to server certificates
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def files(directory: Path) -> TlsFiles:
    return TlsFiles(ca=directory / "ca.pem", cert=directory / "server.pem",
                    key=directory / "server.key")


def _valid(paths: TlsFiles) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        x509.load_pem_x509_certificate(paths.ca.read_bytes())
    except (OSError, ValueError):
        return False
    return paths.key.exists() and (
        cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE)


def ensure(directory: Path) -> TlsFiles:
    """The CA and server certificate in ``directory``, created (or renewed when they expire
    within 30 days) as needed."""
    paths = files(directory)
    if _valid(paths):
        return paths
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            "zkml-dvc local store CA (this machine only)")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM

    def private(k: ec.EllipticCurvePrivateKey) -> bytes:
        return k.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write_bytes(directory / "ca.key", private(ca_key), mode=0o600)
    atomic_write_bytes(paths.key, private(key), mode=0o600)
    atomic_write_bytes(paths.ca, ca_cert.public_bytes(pem))
    atomic_write_bytes(paths.cert, cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    return paths
