"""The contracts keep the last release's clients working: `buf breaking` against its committed image.

A release that breaks on purpose re-cuts the image with `scripts/proto_release.py`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "proto_release.py"
COMMON = Path("llmmesh") / "common" / "v1" / "common.proto"


def proto_release(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_contracts_do_not_break_the_last_release() -> None:
    out = proto_release("--check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_addition_passes_and_a_breaking_change_fails(tmp_path: Path) -> None:
    proto, baseline = tmp_path / "proto", tmp_path / "release.binpb"
    shutil.copytree(ROOT / "proto", proto, ignore=shutil.ignore_patterns("release"))
    cut = proto_release("--proto", proto, "--baseline", baseline)
    assert cut.returncode == 0 and baseline.stat().st_size > 0, cut.stdout + cut.stderr

    common = proto / COMMON
    common.write_text(common.read_text() + "\nmessage ReleaseProbe {\n  string added = 1;\n}\n")
    added = proto_release("--check", "--proto", proto, "--baseline", baseline)
    assert added.returncode == 0, added.stdout + added.stderr

    field = "message TokenDelta {\n  string text = 1;"
    assert field in common.read_text()
    common.write_text(common.read_text().replace(field, field.replace("string", "int64")))
    broken = proto_release("--check", "--proto", proto, "--baseline", baseline)
    assert broken.returncode != 0
    assert 'name "text" on message "TokenDelta" changed type' in broken.stdout, broken.stdout + broken.stderr
