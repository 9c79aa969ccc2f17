#!/usr/bin/env python3
"""Generate Python stubs (.py, .pyi, _grpc.py) and Envoy's descriptor set from proto/.

The one code generator of the project. Output is committed; `--check` regenerates into a
temporary directory and fails if anything differs, which is how CI keeps the two from drifting.
`--lint` also runs `buf lint` over proto/ with the googleapis imports made visible to buf.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools
from google.api import annotations_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PY_OUT = ROOT / "servers"
DESCRIPTOR_OUT = ROOT / "envoy" / "llmmesh.pb"
# google/api and google/rpc protos ship inside googleapis-common-protos.
GOOGLEAPIS_DIR = Path(annotations_pb2.__file__).resolve().parent.parent.parent
WELL_KNOWN_DIR = Path(grpc_tools.__file__).resolve().parent / "_proto"
# Types that must be in Envoy's descriptor set so error details transcode to JSON.
EXTRA_FOR_ENVOY = ["google/rpc/error_details.proto", "google/rpc/status.proto"]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def run_protoc(py_out: Path, descriptor_out: Path) -> None:
    files = proto_files()
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{GOOGLEAPIS_DIR}",
        f"-I{WELL_KNOWN_DIR}",
        f"--python_out={py_out}",
        f"--pyi_out={py_out}",
        f"--grpc_python_out={py_out}",
        *files,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed generating Python stubs")
    descriptor_out.parent.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{GOOGLEAPIS_DIR}",
        f"-I{WELL_KNOWN_DIR}",
        "--include_imports",
        f"--descriptor_set_out={descriptor_out}",
        *files,
        *EXTRA_FOR_ENVOY,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed writing the descriptor set")
    # protoc writes no packages markers; every generated directory becomes a regular package.
    for f in files:
        pkg = py_out / Path(f).parent
        while pkg != py_out:
            init = pkg / "__init__.py"
            if not init.exists():
                init.write_text("")
            pkg = pkg.parent


def generated_paths(py_out: Path) -> list[Path]:
    out = []
    for f in proto_files():
        stem = py_out / f.removesuffix(".proto")
        out += [Path(f"{stem}_pb2.py"), Path(f"{stem}_pb2.pyi"), Path(f"{stem}_pb2_grpc.py")]
    return out


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_py, tmp_desc = Path(tmp) / "py", Path(tmp) / "llmmesh.pb"
        tmp_py.mkdir()
        run_protoc(tmp_py, tmp_desc)
        stale = [
            str(committed.relative_to(ROOT))
            for fresh, committed in zip(generated_paths(tmp_py), generated_paths(PY_OUT), strict=True)
            if not committed.exists() or not filecmp.cmp(fresh, committed, shallow=False)
        ]
        if not DESCRIPTOR_OUT.exists() or not filecmp.cmp(tmp_desc, DESCRIPTOR_OUT, shallow=False):
            stale.append(str(DESCRIPTOR_OUT.relative_to(ROOT)))
    if stale:
        print("generated code is stale; run scripts/gen_proto.py:\n  " + "\n  ".join(stale))
        return 1
    print("generated code matches proto/")
    return 0


def lint() -> int:
    """buf lint over proto/, with googleapis copied into a second, unlinted module."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(PROTO_DIR, work / "proto")
        third = work / "third_party"
        for sub in ("google/api", "google/rpc"):
            shutil.copytree(GOOGLEAPIS_DIR / sub, third / sub, ignore=shutil.ignore_patterns("*.py*"))
        (work / "buf.yaml").write_text(
            (ROOT / "buf.yaml").read_text() + "  - path: third_party\n    lint:\n      ignore: [third_party]\n"
        )
        return subprocess.call([str(Path(sys.executable).parent / "buf"), "lint"], cwd=work)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed output is stale")
    parser.add_argument("--lint", action="store_true", help="run buf lint")
    args = parser.parse_args()
    if args.lint:
        return lint()
    if args.check:
        return check()
    run_protoc(PY_OUT, DESCRIPTOR_OUT)
    print(f"generated {len(proto_files())} protos into {PY_OUT} and {DESCRIPTOR_OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
