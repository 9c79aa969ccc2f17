"""A stand-in venv for running the project's own scripts (./scripts/up, ./scripts/demo) from tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_VENV = ROOT / ".venv"


def shadow_venv(where: Path) -> Path:
    """A venv for LLMMESH_VENV whose python runs the project's real venv, stamped as up to date.

    The scripts bootstrap first: with a stale stamp (pyproject.toml edited since the last
    `./scripts/test`) they would pip-install into .venv from inside a test. Here the bootstrap runs
    for real but finds its stamp current, and its python refuses `-m pip` outright, so a change in
    the bootstrap's stamp scheme fails the test loudly instead of installing anything.
    """
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then\n'
        '  echo "e2e: refusing to pip-install into the real venv from a test" >&2; exit 97\n'
        "fi\n"
        f'exec "{REAL_VENV / "bin" / "python"}" "$@"\n'
    )
    python.chmod(0o755)
    for tool in ("envoy", "grpcurl"):
        (bin_dir / tool).symlink_to(REAL_VENV / "bin" / tool)
    # Same key as scripts/lib/bootstrap.sh: the first 16 hex digits of the sha256 of the server's
    # and the SDK's pyproject.toml, one after the other.
    both = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "clients" / "pyproject.toml").read_bytes()
    key = hashlib.sha256(both).hexdigest()[:16]
    (where / ".stamp-dev").write_text(key + "\n")
    return where
