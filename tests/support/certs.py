"""Test certificates, made with the openssl binary at test time (never committed).

A throwaway CA and two certificates it signs, `server` and `client`, both for 127.0.0.1 and
localhost and without an extended key usage, so either can serve and authenticate as a client (the
mesh's mutual TLS uses one certificate both ways). Valid for one day.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    dir: Path

    def path(self, name: str) -> Path:
        """`ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`."""
        return self.dir / name

    def read(self, name: str) -> bytes:
        return self.path(name).read_bytes()

    def as_bytes(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.dir.iterdir()) if p.suffix in (".pem", ".key")}


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certificates(where: Path, names: tuple[str, ...] = ("server", "client")) -> Certificates:
    where.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(where / "ca.key"), "-out",
             str(where / "ca.pem"), "-days", "1", "-subj", "/CN=llmmesh-test-ca")
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in names:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(where / f"{name}.key"), "-out",
                 str(where / f"{name}.csr"), "-subj", f"/CN={name}")
        _openssl("x509", "-req", "-in", str(where / f"{name}.csr"), "-CA", str(where / "ca.pem"), "-CAkey",
                 str(where / "ca.key"), "-CAcreateserial", "-out", str(where / f"{name}.pem"), "-days", "1",
                 "-extfile", str(where / "san.ext"))
    return Certificates(where)


def other_ca_certificates(where: Path) -> Certificates:
    """A second, unrelated CA with its own `client` certificate: must be refused everywhere."""
    return make_certificates(where, names=("client",))
