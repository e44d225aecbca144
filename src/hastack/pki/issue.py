"""Issuing the deployment's certificates with the `cryptography` library: ECDSA P-256 keys, a CA valid ten
years, leaf certificates valid 825 days. `ensure` adds what is missing and never replaces a file: an
operator's own CA (its `ca.pem` and `ca-key.pem` put there first) issues the rest just the same.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hastack.pki.layout import Layout

CA_DAYS = 3650
LEAF_DAYS = 825
Key = ec.EllipticCurvePrivateKey


class PkiError(Exception):
    """The directory holds something hastack cannot issue from or would have to replace."""


def ensure(
    deployment: str,
    hosts: Sequence[tuple[str, str]],
    layout: Layout,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> list[Path]:
    """Make every file of `layout` for `hosts` ((name, address) pairs) that is missing; the paths written.
    An existing certificate is checked (issued by this CA, for this host's address), never replaced."""
    layout.dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    ca_cert, ca_key = _ca(deployment, layout, now(), written)
    for name, address in hosts:
        cert, key = layout.host_cert(name), layout.host_key(name)
        if cert.exists() or key.exists():
            _check_leaf(cert, key, ca_cert, address)
        else:
            leaf = _leaf(ca_cert, ca_key, name, address, now())
            _write(key, _key_pem(leaf[1]), 0o600, written)
            _write(cert, _cert_pem(leaf[0]), 0o644, written)
        bundle = layout.host_bundle(name)
        if not bundle.exists():
            _write(bundle, cert.read_bytes() + key.read_bytes(), 0o600, written)
    if layout.client_cert.exists() or layout.client_key.exists():
        _check_leaf(layout.client_cert, layout.client_key, ca_cert, None)
    else:
        client = _leaf(ca_cert, ca_key, f"hastack-client-{deployment}", None, now())
        _write(layout.client_key, _key_pem(client[1]), 0o600, written)
        _write(layout.client_cert, _cert_pem(client[0]), 0o644, written)
    return written


def _ca(
    deployment: str, layout: Layout, at: datetime.datetime, written: list[Path]
) -> tuple[x509.Certificate, Key | None]:
    if layout.ca.exists():
        cert = _load_cert(layout.ca)
        key = _load_key(layout.ca_key) if layout.ca_key.exists() else None
        return cert, key
    if layout.ca_key.exists():
        raise PkiError(f"{layout.ca_key} exists without {layout.ca}: put the CA's certificate beside it")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hastack CA {deployment}")])
    cert = (
        _builder(name, name, key.public_key(), at, CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write(layout.ca_key, _key_pem(key), 0o600, written)
    _write(layout.ca, _cert_pem(cert), 0o644, written)
    return cert, key


def _leaf(
    ca: x509.Certificate, ca_key: Key | None, name: str, address: str | None, at: datetime.datetime
) -> tuple[x509.Certificate, Key]:
    if ca_key is None:
        raise PkiError(f"cannot issue a certificate for {name}: the CA's key (ca-key.pem) is not there")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    # Both usages for a host: etcd's peers and its gRPC gateway dial other members with the host's own
    # certificate, and refuse one that may only serve.
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if address else [])
    builder = (
        _builder(subject, ca.subject, key.public_key(), at, LEAF_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if address is not None:
        sans = [x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, at: datetime.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(at - datetime.timedelta(minutes=5))  # a peer's clock a little behind
        .not_valid_after(at + datetime.timedelta(days=days))
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _check_leaf(cert_path: Path, key_path: Path, ca: x509.Certificate, address: str | None) -> None:
    """An existing certificate must come with its key, from this CA, and name the host's address."""
    for path in (cert_path, key_path):
        if not path.exists():
            raise PkiError(f"{path} is missing while its pair is there: remove both to issue them again")
    cert, key = _load_cert(cert_path), _load_key(key_path)
    if cert.issuer != ca.subject:
        raise PkiError(f"{cert_path} was not issued by the CA in {cert_path.parent / 'ca.pem'}")
    if cert.public_key() != key.public_key():
        raise PkiError(f"{key_path} is not the key of {cert_path}")
    if address is not None:
        try:
            ips = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            named = ipaddress.ip_address(address) in ips.get_values_for_type(x509.IPAddress)
        except x509.ExtensionNotFound:
            named = False
        if not named:
            raise PkiError(f"{cert_path} does not name {address}: remove it and its key to issue it again")


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as e:
        raise PkiError(f"{path}: cannot read: {e.strerror}") from e
    except ValueError as e:
        raise PkiError(f"{path}: not a PEM certificate") from e


def _load_key(path: Path) -> Key:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as e:
        raise PkiError(f"{path}: cannot read: {e.strerror}") from e
    except (ValueError, TypeError) as e:
        raise PkiError(f"{path}: not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: an elliptic-curve key is expected")
    return key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int, written: list[Path]) -> None:
    """Create `path` with `mode` from the first byte (a key is never readable by others), never replace."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as e:
        raise PkiError(f"{path} appeared meanwhile: not replaced") from e
    except OSError as e:
        raise PkiError(f"cannot write {path}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    written.append(path)
