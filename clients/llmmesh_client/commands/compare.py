"""`compare`: one prompt to several models; the answers are scored by a jury and ranked.

Progress (each model answered, scored, each pairwise comparison) goes to stderr, the ranking to
stdout; `--json` prints every event, `--unary` calls the unary RPC.
"""

from __future__ import annotations

import argparse
from typing import Any

from llmmesh_client.client import LlmMesh
from llmmesh_client.commands import generation_options, json_argument, text_argument
from llmmesh_client.commands.output import Output
from llmmesh_client.commands.pattern_runs import drive, pattern_parser, preset_argument, score_text, store_field, unary


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = pattern_parser(sub, common, "compare", "one prompt to several models, answers scored and ranked", compare,
                       model=False)
    p.add_argument("prompt", nargs="?", help="the prompt ('-' reads stdin)")
    p.add_argument("-m", "--model", dest="models", action="append", default=[], metavar="MODEL",
                   help="a model or alias to compare (repeat: two or more)")
    p.add_argument("--system", default="")
    p.add_argument("--criterion", action="append", default=[], help="a built-in criterion (repeatable)")
    p.add_argument("--rubric", help="a criterion of your own as JSON (inline or @file)")
    p.add_argument("--reference", default="", help="a reference answer")
    p.add_argument("--judge", action="append", default=[], help="a judge model (repeatable; default the server's)")
    p.add_argument("--pairwise", action="store_true", help="also compare every pair of answers and count wins")
    p.add_argument("--answers", action="store_true", help="print each model's answer after the ranking")
    preset_argument(p, "its models, criteria and judges, unless given here")


def compare(client: LlmMesh, args: argparse.Namespace, out: Output) -> int:
    fields = {"prompt": text_argument(args.prompt, "prompt"), "models": args.models, "system": args.system,
              "criteria": args.criterion, "rubric": json_argument(args.rubric, "--rubric"),
              "reference": args.reference, "judges": args.judge, "pairwise": args.pairwise or None,
              "options": generation_options(args), "store": store_field(args), "preset": args.preset}

    def print_result(result: Any, out: Output) -> None:
        out.table(("RANK", "MODEL", "SCORE", "WINS", "LATENCY", "TOK/S", "TOKENS"),
                  [(r.rank, r.model, score_text(r.score), r.wins if args.pairwise else "-", f"{r.latency_ms:.0f} ms",
                    f"{r.tokens_per_second:.0f}", r.output_tokens) for r in result.ranking])
        if args.answers:
            for a in result.answers:
                out.line(f"\n--- {a.model} ---\n{a.text}")
        out.progress(f"[run {result.run_id}]")

    if args.unary:
        return unary(client.compare.run(**fields), out, print_result)

    def render(event: Any, out: Output) -> None:
        kind = event.WhichOneof("event")
        if kind == "answer":
            a = event.answer
            out.progress(f"{a.model}: answered, {a.output_tokens} tokens in {a.latency_ms:.0f} ms")
        elif kind == "score":
            out.progress(f"{event.score.model}: scored {score_text(event.score.score)}")
        elif kind == "comparison":
            c = event.comparison
            out.progress(f"{c.model_a} vs {c.model_b}: {c.winner or 'tie'}")

    result = drive(client.compare.run_stream(**fields), out, render)
    if result is not None and not out.json:
        print_result(result, out)
    return 0
