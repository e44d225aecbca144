"""TLS contexts from the deployment's certificates, for hastack's own HTTPS channels."""

from __future__ import annotations

import ssl
from pathlib import Path

from hastack.pki.layout import Layout


def server_context(layout: Layout, host: str) -> ssl.SSLContext:
    """Serving as `host`, with its certificate; TLS 1.2 at least."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(layout.host_cert(host), layout.host_key(host))
    return context


def client_context(ca: Path, identity: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """Trusting `ca` only (not the system's CAs), checking the server's name or address, and showing the
    `identity` (certificate, key) to a server that asks for one."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        context.load_cert_chain(*identity)
    return context
