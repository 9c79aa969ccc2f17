#!/usr/bin/env python3
"""The contracts' compatibility guard: `buf breaking` against the last release's image.

    scripts/proto_release.py           # at a release: write proto/release/llmmesh-v1.binpb from proto/
    scripts/proto_release.py --check   # fail when proto/ breaks that image (tests/contracts runs it)

The image is committed, so the check needs no git history and no network. It holds the released
descriptors without source info (so it changes only when a contract does), with their imports
(so buf can read it on its own). The rules are `breaking:` in buf.yaml.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from gen_proto import BUF, PROTO_DIR, buf_workspace

BASELINE = PROTO_DIR / "release" / "llmmesh-v1.binpb"


def cut(proto_dir: Path, baseline: Path) -> int:
    with buf_workspace(proto_dir) as work:
        out = work / baseline.name
        rc = subprocess.call([str(BUF), "build", "proto", "--exclude-source-info", "-o", str(out)], cwd=work)
        if rc == 0:
            baseline.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out, baseline)
            print(f"wrote {baseline}: the release `--check` now guards")
    return rc


def check(proto_dir: Path, baseline: Path) -> int:
    if not baseline.exists():
        print(f"no release image at {baseline}; cut one with scripts/proto_release.py")
        return 2
    with buf_workspace(proto_dir) as work:
        rc = subprocess.call([str(BUF), "breaking", "proto", "--against", str(baseline.resolve())], cwd=work)
    if rc == 0:
        print(f"no breaking change against {baseline.name}")
    else:
        print("breaking change(s) against the last release (above). Keep old clients working: add fields,\n"
              "values and methods; reserve what you remove. A release that breaks on purpose re-cuts the\n"
              "image: scripts/proto_release.py")
    return rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="run buf breaking against the release image")
    parser.add_argument("--proto", type=Path, default=PROTO_DIR, help="the contracts (default: proto/)")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="release image (default: %(default)s)")
    args = parser.parse_args()
    return check(args.proto, args.baseline) if args.check else cut(args.proto, args.baseline)


if __name__ == "__main__":
    sys.exit(main())
