"""Where the deployment's certificates live, in one directory (`paths.pki_dir`). Pure.

- `ca.pem`: the CA's certificate, which every daemon and client trusts (public);
- `ca-key.pem`: the CA's key, kept by the operator, needed only to issue (0600);
- `HOST.pem`, `HOST-key.pem`: each host's certificate for its address and name, for serving and for
  calling its peers (etcd's peer traffic and its gRPC gateway dial with it);
- `HOST-bundle.pem`: the same certificate and key in one file, as HAProxy reads them;
- `client.pem`, `client-key.pem`: hastack's clients of etcd (node agents, controllers, `ctl`, the lab).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hastack.model import Deployment
from hastack.store.etcd import ClientTls


@dataclass(frozen=True)
class Layout:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    def host_cert(self, host: str) -> Path:
        return self.dir / f"{host}.pem"

    def host_key(self, host: str) -> Path:
        return self.dir / f"{host}-key.pem"

    def host_bundle(self, host: str) -> Path:
        return self.dir / f"{host}-bundle.pem"

    @property
    def client_cert(self) -> Path:
        return self.dir / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.dir / "client-key.pem"

    @classmethod
    def of(cls, dep: Deployment) -> Layout:
        """The deployment's: in its `paths.pki_dir`."""
        return cls(Path(dep.inventory.paths.pki_dir))

    def client_tls(self) -> ClientTls:
        """What a hastack client of etcd shows and trusts."""
        return ClientTls(self.ca, self.client_cert, self.client_key)

    def files(self, hosts: list[str]) -> list[Path]:
        """Every file a complete PKI for these hosts holds."""
        per_host = [f(h) for h in hosts for f in (self.host_cert, self.host_key, self.host_bundle)]
        return [self.ca, self.ca_key, *per_host, self.client_cert, self.client_key]
