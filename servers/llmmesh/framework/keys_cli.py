"""`llmmesh-keys`: manage the API key file the services read (LLMMESH_API_KEYS_FILE).

    llmmesh-keys add ci --scopes judge,jury --rps 5 --burst 10 --tokens-per-minute 20000
    llmmesh-keys add nightly --scopes inference --weight 0.5 --max-priority batch
    llmmesh-keys list
    llmmesh-keys remove ci

`add` prints the new key once, on stdout, and stores only its SHA-256: a lost key cannot be
recovered, only replaced. The file is rewritten atomically (created with mode 0600, its mode kept
after that). Services read it at start-up: restart them (or `./scripts/up`) after a change.
`--file` defaults to $LLMMESH_API_KEYS_FILE, else ./llmmesh-keys.json.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from llmmesh.framework import keyfile
from llmmesh.framework.auth import hash_key
from llmmesh.framework.principal import KeyLimits

KEY_PREFIX = "llmm_"
DEFAULT_FILE = "llmmesh-keys.json"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmmesh-keys", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", type=Path, default=Path(os.environ.get("LLMMESH_API_KEYS_FILE") or DEFAULT_FILE),
                   help="the key file (default: $LLMMESH_API_KEYS_FILE, else ./llmmesh-keys.json)")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create a key and print it once")
    add.add_argument("name")
    add.add_argument("--scopes", required=True,
                     help=f"comma-separated services the key may call, or '*' ({', '.join(sorted(keyfile.SCOPES))})")
    add.add_argument("--rps", type=float, help="requests per second (per service process)")
    add.add_argument("--burst", type=int, help="requests allowed at once above the rate (default: the rate)")
    add.add_argument("--tokens-per-minute", type=int, help="prompt + output tokens per minute")
    add.add_argument("--tokens-per-day", type=int, help="prompt + output tokens per day")
    add.add_argument("--weight", type=float,
                     help="share of busy backends against other keys in the admission queue (default 1)")
    add.add_argument("--max-priority", choices=["interactive", "batch"],
                     help="the most urgent admission class the key may ask for, and its default "
                          "(default interactive)")
    sub.add_parser("list", help="names, scopes and limits (never keys)")
    remove = sub.add_parser("remove", help="delete a key")
    remove.add_argument("name")
    return p


def _add(path: Path, args: argparse.Namespace) -> int:
    doc = keyfile.read_document(path)
    if any(entry["name"] == args.name for entry in doc["keys"]):
        print(f"llmmesh-keys: a key named {args.name!r} exists in {path}; remove it first", file=sys.stderr)
        return 1
    key = new_key()
    entry: dict[str, object] = {"name": args.name, "sha256": hash_key(key),
                                "scopes": keyfile.scopes_of(args.scopes.split(",")),
                                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    limits = keyfile.limits_dict(KeyLimits(args.rps, args.burst, args.tokens_per_minute, args.tokens_per_day))
    if limits:
        entry["limits"] = limits
    if args.weight is not None:
        entry["weight"] = args.weight
    if args.max_priority is not None:
        entry["max_priority"] = args.max_priority
    doc["keys"].append(entry)
    keyfile.write_document(path, doc)  # validates: unknown scopes, bad limits, bad name
    print(key)
    print(f"added key {args.name!r} to {path}; the key above is shown only once", file=sys.stderr)
    return 0


def _list(path: Path) -> int:
    for entry in keyfile.read_document(path)["keys"]:
        limits = ", ".join(f"{k}={v}" for k, v in entry.get("limits", {}).items()) or "no limits"
        admission = f"weight={entry.get('weight', 1)}, max_priority={entry.get('max_priority', 'interactive')}"
        print(f"{entry['name']}\tscopes={','.join(entry.get('scopes', [])) or '-'}\t{limits}\t{admission}")
    return 0


def _remove(path: Path, name: str) -> int:
    doc = keyfile.read_document(path)
    kept = [entry for entry in doc["keys"] if entry["name"] != name]
    if len(kept) == len(doc["keys"]):
        print(f"llmmesh-keys: no key named {name!r} in {path}", file=sys.stderr)
        return 1
    keyfile.write_document(path, {**doc, "keys": kept})
    print(f"removed key {name!r} from {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "add":
            return _add(args.file, args)
        if args.command == "list":
            return _list(args.file)
        return _remove(args.file, args.name)
    except (keyfile.KeyFileError, ValueError, OSError) as exc:
        print(f"llmmesh-keys: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
