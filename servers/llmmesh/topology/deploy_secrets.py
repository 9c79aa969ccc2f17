"""Make the secrets that the secured deployments mount, in one directory (default ./secrets/):

    python -m llmmesh.topology.deploy_secrets [--dir secrets] [--ingress-host mesh.example.com ...]

    file                       what                                              compose secret / Kubernetes Secret
    api-keys.json              the API key file, with an `admin` key (scope *)   llmmesh-auth
                               printed once; add more with `llmmesh-keys`
    service.key                the mesh's internal service key                   llmmesh-auth
    ingress.crt, ingress.key   the ingress certificate: localhost, 127.0.0.1     llmmesh-ingress-tls
                               and every --ingress-host
    mesh.crt, mesh.key         mutual TLS: one certificate naming every          llmmesh-mesh-tls
                               container the services are dialled by
    ca.crt, ca.key             the private CA that signed both (ca.key never     ca.crt: llmmesh-mesh-tls
                               leaves this directory)

compose.secure.yaml and compose.mtls.yaml mount these files; deploy/k8s-secure and deploy/k8s-mtls
generate their Secrets from them. A file that exists is kept, so a real ingress certificate put
there first stays (the mesh certificate needs only the private CA). The directory is the owner's
alone (0700); the files in it are readable (0644, ca.key 0600) because compose bind-mounts them
as they are, and the containers run as other users (llmmesh uid 10001, Envoy uid 101).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from llmmesh.framework import keys_cli
from llmmesh.topology.envoy_parts import is_ip
from llmmesh.topology.presets import mesh_certificate_names

DEFAULT_DIR = Path("secrets")
API_KEYS, SERVICE_KEY = "api-keys.json", "service.key"
CA_CERT, CA_KEY = "ca.crt", "ca.key"
INGRESS_CERT, INGRESS_KEY = "ingress.crt", "ingress.key"
MESH_CERT, MESH_KEY = "mesh.crt", "mesh.key"
INGRESS_NAMES = ("localhost", "127.0.0.1")
CA_DAYS, LEAF_DAYS = 3650, 825
# Readable by the containers' users (compose mounts the host files as they are).
MOUNTED_MODE = 0o644


class SecretsError(RuntimeError):
    pass


def _openssl(*args: str) -> None:
    try:
        done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise SecretsError("the openssl command is needed to make certificates") from None
    if done.returncode != 0:
        raise SecretsError(f"openssl {args[0]} failed: {done.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def subject_alt_names(names: Sequence[str]) -> str:
    """`DNS:a,IP:127.0.0.1,…` for openssl's subjectAltName."""
    return ",".join(f"IP:{n}" if is_ip(n) else f"DNS:{n}" for n in dict.fromkeys(names))


def _make_ca(out: Path) -> None:
    _new_key(out / CA_KEY)
    _openssl("req", "-x509", "-new", "-key", str(out / CA_KEY), "-out", str(out / CA_CERT), "-days", str(CA_DAYS),
             "-subj", "/CN=llmmesh private CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _make_leaf(out: Path, cert: str, key: str, common_name: str, names: Sequence[str]) -> None:
    """A certificate of the CA for `names`, for servers and clients alike (mutual TLS uses one
    certificate both ways)."""
    _new_key(out / key)
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "ext.cnf"
        ext.write_text(f"subjectAltName={subject_alt_names(names)}\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("req", "-new", "-key", str(out / key), "-out", str(csr), "-subj", f"/CN={common_name}")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(out / CA_CERT), "-CAkey", str(out / CA_KEY),
                 "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(LEAF_DAYS), "-extfile", str(ext),
                 "-out", str(out / cert))


def make_secrets(out: Path, ingress_hosts: Sequence[str] = ()) -> list[str]:
    """Create what is missing in `out`; returns the names of the files made. Prints the admin
    API key (only when it makes the key file)."""
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    made: list[str] = []
    if not (out / API_KEYS).exists():
        if keys_cli.main(["--file", str(out / API_KEYS), "add", "admin", "--scopes", "*"]) != 0:
            raise SecretsError(f"could not write {out / API_KEYS}")
        made.append(API_KEYS)
    if not (out / SERVICE_KEY).exists():
        (out / SERVICE_KEY).write_text(secrets.token_urlsafe(32) + "\n")
        made.append(SERVICE_KEY)
    if not (out / CA_CERT).exists():
        _make_ca(out)
        made += [CA_CERT, CA_KEY]
    if not (out / INGRESS_CERT).exists():
        _make_leaf(out, INGRESS_CERT, INGRESS_KEY, "llmmesh ingress", (*ingress_hosts, *INGRESS_NAMES))
        made += [INGRESS_CERT, INGRESS_KEY]
    if not (out / MESH_CERT).exists():
        if not (out / CA_KEY).exists():
            raise SecretsError(f"{out / CA_KEY} is missing: the mesh certificate is signed by the private CA")
        _make_leaf(out, MESH_CERT, MESH_KEY, "llmmesh mesh", mesh_certificate_names())
        made += [MESH_CERT, MESH_KEY]
    for name in (API_KEYS, SERVICE_KEY, CA_CERT, INGRESS_CERT, INGRESS_KEY, MESH_CERT, MESH_KEY):
        (out / name).chmod(MOUNTED_MODE)
    (out / CA_KEY).chmod(0o600)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m llmmesh.topology.deploy_secrets", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where to write them (default: ./secrets)")
    p.add_argument("--ingress-host", action="append", default=[], metavar="NAME",
                   help="a host name (or IP) clients reach the ingress by (repeatable)")
    args = p.parse_args(argv)
    try:
        made = make_secrets(args.dir, args.ingress_host)
    except (SecretsError, OSError) as exc:
        print(f"deploy_secrets: {exc}", file=sys.stderr)
        return 1
    kept = sorted(set(os.listdir(args.dir)) - set(made))
    print(f"{args.dir}: made {', '.join(made) or 'nothing'}" + (f"; kept {', '.join(kept)}" if kept else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
