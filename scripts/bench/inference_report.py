"""The inference benchmark's report: markdown tables per section and the interpretation of what
was measured, against the targets."""

from __future__ import annotations

import statistics

import aiohttp
import grpc
import httpx
from inference_load import DOOR_INFO, PATH_INFO, RELAY_PROC, Plan, Rep, Results, Series

TTFT_TARGET_MS = 2.0
RELAY_TARGET_TPS = 30_000
# Section 4 (issue 16): added TTFT p50 at one stream, and streams/s at 16 streams as a share of
# direct, per front door; the mesh's OpenAI door against LiteLLM's proxy.
DOOR_TARGETS = {"grpc-mesh": (3.0, 0.6), "openai-mesh": (4.0, 0.5)}
LITELLM_TARGET_X = 10.0


def _doors_section(results: Results, plan: Plan) -> list[str]:
    rows = [f"{plan.door_tokens} tokens per stream, token delay 0, {plan.reps} x {plan.door_window_s:g} s per level "
            f"and path; the OpenAI paths' client is {plan.door_client}. *openai-direct* is the baseline: the "
            "simulator's own OpenAI-compatible API. Paths: "
            + "; ".join(f"*{n}* = {d}" for n, d in DOOR_INFO.items()) + ".", "",
            "*CPU monolith* is the mesh's process (inference, and the gateway it hosts); *CPU gateway* the "
            "separate gateway process of *openai-gateway*.", "",
            "| streams | path | TTFT p50 (ms) | added TTFT p50 (ms) | streams/s | vs direct | CPU monolith | "
            "CPU gateway | CPU Envoy | CPU others | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    doors = results.doors
    for streams in plan.door_levels:
        base = doors[("openai-direct", streams)]
        for name in DOOR_INFO:
            s = doors.get((name, streams))
            if s is None:
                continue
            added = "" if name == "openai-direct" else f"{s.p50 - base.p50:+.2f}"
            ratio = s.med(lambda r: r.sps) / base.med(lambda r: r.sps)
            rows.append(f"| {streams} | {name} | {s.p50:.2f} | {added} | {s.med(lambda r: r.sps):.1f} | "
                        f"{ratio:.2f}x | {s.med(lambda r: r.cores('inference')):.2f} | "
                        f"{s.med(lambda r: r.cores('gateway')):.2f} | {s.med(lambda r: r.cores('envoy')):.2f} | "
                        f"{s.med(Rep.others):.2f} | {s.errors} |")
    rows += ["", "Targets:", ""]
    one, many = plan.door_levels[0], plan.door_levels[-1]
    for name, (ttft_ms, share) in DOOR_TARGETS.items():
        added = doors[(name, one)].p50 - doors[("openai-direct", one)].p50
        ratio = doors[(name, many)].med(lambda r: r.sps) / doors[("openai-direct", many)].med(lambda r: r.sps)
        rows.append(f"- *{name}*: added TTFT p50 at {one} stream {added:+.2f} ms (target ≤ {ttft_ms:g}: "
                    f"{'met' if added <= ttft_ms else 'missed'}); streams/s at {many} streams {ratio:.2f}x direct "
                    f"(target ≥ {share:g}x: {'met' if ratio >= share else 'missed'}).")
    if ("litellm", many) in doors:
        x = doors[("openai-mesh", many)].med(lambda r: r.sps) / doors[("litellm", many)].med(lambda r: r.sps)
        rows.append(f"- *openai-mesh* vs. *litellm* at {many} streams: {x:.1f}x its streams/s (target ≥ "
                    f"{LITELLM_TARGET_X:g}x: {'met' if x >= LITELLM_TARGET_X else 'missed'}).")
    else:
        rows.append("- *litellm*: not measured (its proxy is not installed, `--litellm install`, or did not start).")
    if ("openai-hosted", many) in doors and ("openai-gateway", many) in doors:
        direct_one = doors[("openai-direct", one)].p50
        hosted_ms, separate_ms = (doors[(n, one)].p50 - direct_one for n in ("openai-hosted", "openai-gateway"))
        x = doors[("openai-hosted", many)].med(lambda r: r.sps) / doors[("openai-gateway", many)].med(lambda r: r.sps)
        rows.append(f"- The two designs side by side, neither behind the ingress: the gateway inside the monolith "
                    f"adds {hosted_ms:+.2f} ms TTFT at {one} stream against {separate_ms:+.2f} ms for a gateway "
                    f"process of its own, and serves {x:.2f}x its streams/s at {many} streams.")
    return rows


def _range(lo: float, hi: float, fmt: str) -> str:
    return f"{lo:{fmt}}-{hi:{fmt}}"


def _latency_table(series: dict[tuple[str, int], Series], levels: tuple[int, ...]) -> list[str]:
    rows = ["| streams | path | TTFT p50 (ms) | TTFT p95 (ms) | added TTFT p50 vs direct (ms) | tokens/s | "
            "CPU client | CPU inference | CPU Envoy | CPU simulator | CPU others | streams done | errors | re-runs |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for streams in levels:
        base = series[("direct", streams)]
        for name in PATH_INFO:
            s = series.get((name, streams))
            if s is None:
                continue
            added = "" if name == "direct" else f"{s.p50 - base.p50:+.2f}"
            if name == "mesh":
                added = f"**{added}**"
            proc = RELAY_PROC.get(name, "")
            inference = f"{s.med(lambda r, p=proc: r.cores(p)):.2f}" if proc else "-"
            rows.append(
                f"| {streams} | {name} | {s.p50:.2f} | {s.med(lambda r: r.p(95)):.2f} | {added} | "
                f"{s.tps:,.0f} ({_range(*s.spread(lambda r: r.tps), ',.0f')}) | "
                f"{s.med(lambda r: r.cores('client')):.2f} | {inference} | {s.med(lambda r: r.cores('envoy')):.2f} | "
                f"{s.med(lambda r: r.cores('simulator')):.2f} | {s.med(lambda r: r.others()):.2f} | "
                f"{s.streams_done} | {s.errors} | {s.reruns} |")
    return rows


def interpretation(results: Results, plan: Plan, env: dict[str, str], variants_doc: bool) -> str:
    lat, levels = results.latency, plan.levels
    added = {n: lat[("mesh", n)].p50 - lat[("direct", n)].p50 for n in levels}
    low, high = levels[0], levels[-1]
    ref = 16 if 16 in levels else high
    text = [
        "With fast tokens the added median TTFT is "
        + ", ".join(f"{added[n]:+.1f} ms at {n} stream{'s' if n > 1 else ''}" for n in levels) + ".",
    ]
    if low == 1:
        svc = lat[("service", 1)].p50 - lat[("direct", 1)].p50
        egr = lat[("egress", 1)].p50 - lat[("service", 1)].p50
        ing = lat[("mesh", 1)].p50 - lat[("egress", 1)].p50
        text.append(
            f"The 1-stream figure is the closest to a per-request cost (no other streams, though the stream's own "
            "burst of zero-delay tokens competes with its first one): the inference process adds about "
            f"{svc:.1f} ms, the egress Envoy {egr:.1f} ms and the ingress Envoy {ing:.1f} ms (differences of "
            "medians on a shared machine: a hop whose share comes out negative or differs between runs is below "
            "the noise; the sum is the firmer figure).")
    ratio = lat[("mesh", high)].tps / lat[("direct", high)].tps
    sim_us = lat[("direct", high)].med(lambda r: r.us_per_token("simulator"))
    relay_us = lat[("mesh", high)].med(lambda r: r.us_per_token("inference"))
    text.append(
        f"From {ref} streams on, zero-delay streams keep every process busy, so TTFT there is mostly queueing behind "
        f"other streams' tokens and the \"added\" figure at {ref} streams ({added[ref]:+.1f} ms) measures how each "
        "path's bottleneck schedules a new stream rather than hop latency, so on its own it neither meets nor "
        "misses the target. "
        f"What the mesh really costs at load is throughput: {lat[('mesh', high)].tps:,.0f} tokens/s at {high} "
        f"streams against {lat[('direct', high)].tps:,.0f} direct ({ratio:.0%}), because the inference process "
        f"spends about {relay_us:.0f} µs of CPU per token relayed while the simulator spends about {sim_us:.0f} µs "
        "producing one.")
    if results.paced:
        ps = plan.paced_streams
        mesh_p, direct_p = results.paced[("mesh", ps)], results.paced[("direct", ps)]
        d = mesh_p.p50 - direct_p.p50
        verdict = "within" if d <= TTFT_TARGET_MS else "over"
        busy = max(s.med(Rep.others) for s in (mesh_p, direct_p))
        text.append(
            f"With {ps} streams in flight at {plan.paced_delay_ms} ms per token (not CPU-bound, closer to a GPU "
            f"backend) the mesh adds {d:+.1f} ms at p50, {verdict} the {TTFT_TARGET_MS:g} ms target; that is the "
            "figure to hold against it"
            + (f", with the caveat that other processes used up to {busy:.2f} cores meanwhile, and a path "
               "through five processes waits for a CPU at every hop while the direct path has two, so a quiet "
               "machine would likely show less." if busy > plan.max_others else "."))
    relay = [s for (name, _), s in results.relay.items() if name == "egress"]
    if relay:
        s = max(relay, key=lambda x: x.streams)
        us = s.med(lambda r: r.us_per_token("inference"))
        text.append(
            f"One inference process relayed {s.tps:,.0f} tokens/s with {s.streams} streams "
            f"({'meets' if s.tps >= RELAY_TARGET_TPS else 'misses'} the {RELAY_TARGET_TPS:,} target), using "
            f"{s.med(lambda r: r.cores('inference')):.2f} of a core at {us:.0f} µs of CPU per token; "
            + (f"even with a whole core to itself that caps it near {1e6 / us:,.0f} tokens/s, so the target is "
               "out of reach for the current per-token code path, not only for this crowded machine."
               if 1e6 / us < RELAY_TARGET_TPS else
               f"with a whole core to itself that is about {1e6 / us:,.0f} tokens/s."))
        bypass = [x for (name, n), x in results.relay.items() if name == "service" and n == s.streams]
        if bypass:
            us_direct = bypass[0].med(lambda r: r.us_per_token("inference-direct"))
            if us_direct > us * 1.05:
                text.append(
                    f"Reading the simulator directly instead of through the egress costs the process more, "
                    f"{us_direct:.0f} µs per token: the simulator sends one HTTP chunk per token and the backend "
                    "client (aiohttp) pays per chunk, while Envoy forwards whatever has arrived in larger reads.")
        client = statistics.median(r.cores("client") for x in relay for r in x.reps)
        others = statistics.median(r.others() for x in lat.values() for r in x.reps)
        text.append(
            f"The benchmark's own client took {client:.2f} cores in that phase, and processes outside the benchmark "
            f"took a median {others:.2f} of the machine's {env['nproc']} cores during phase 1, so absolute tokens/s "
            "are lower bounds and vary run to run; the µs-per-token figures travel better.")
    if variants_doc:
        text.append("Where that per-token CPU goes, and what removing it buys, is measured in "
                    "[inference-variants.md](inference-variants.md).")
    return " ".join(text)


def render(results: Results, plan: Plan, env: dict[str, str], variants_doc: bool) -> str:
    out: list[str] = []
    w = out.append
    w("# Inference benchmark")
    w("")
    w(f"- **Date**: {env['date']}")
    w(f"- **Machine**: {env['nproc']} CPUs ({env['cpu']}); load average {env['load_before']} before the run, "
      f"{env['load_after']} after; other processes were using {env['busy_before']} cores just before it started. "
      f"Python {env['python']}, grpcio {grpc.__version__}, httpx {httpx.__version__}, aiohttp {aiohttp.__version__}, "
      f"Envoy {env['envoy']}.")
    w("- **Setup**: `./scripts/bench-inference` starts the mesh as `./scripts/up --backend sim` does (monolith, "
      "one Ollama simulator, Envoy ingress + egress, free ports on 127.0.0.1), sets the simulator's instance "
      "fault `token_delay_ms=0` (fast tokens) and a script rule so that bench prompts get exactly the requested "
      "number of one-word tokens, one NDJSON line each. A second, inference-only process calls the simulator "
      f"directly, so the path can be taken apart hop by hop. Processes started: {env['processes']} (*llmmesh* "
      "is the monolith; a process on no measured path idles).")
    w("- **Paths**: " + "; ".join(f"*{n}* = {d}" for n, d in PATH_INFO.items())
      + ". *mesh* is the deployed path; *direct* is the baseline.")
    w(f"- **Method**: per level and path, a {plan.warmup_s:g} s warm-up, then {plan.reps} repetitions of a "
      f"closed-loop window: each of N workers starts streams back to back; streams in flight at the end finish, "
      "but only tokens received inside the window count. Paths interleave with a rotating order. TTFT = call "
      "started → first token received, on the client. Figures are medians over repetitions (throughput range in "
      "brackets). CPU is from `/proc/<pid>/stat` over each repetition, in cores (1.00 = one core busy); *client* "
      "is the benchmark process itself; *others* is busy CPU of processes outside the benchmark (`/proc/stat`). "
      f"A repetition during which *others* exceeded {plan.max_others:g} cores was run once more and the less "
      "contended attempt kept (*re-runs*), while the run was within its time budget.")
    w("")
    w("## 1. Time to first token and throughput, fast tokens: mesh vs. direct")
    w("")
    w(f"{plan.tokens} tokens per stream, token delay 0, {plan.reps} x {plan.window_s:g} s per level and path.")
    w("")
    out.extend(_latency_table(results.latency, plan.levels))
    w("")
    w(f"Target: at most {TTFT_TARGET_MS:g} ms added TTFT at p50 with 16 streams (bold).")
    w("")
    w("## 2. Tokens/s relayed by one inference process")
    w("")
    w(f"Streams of {plan.relay_tokens} tokens sent straight to an inference process's gRPC port (no ingress), "
      f"{plan.reps} x {plan.relay_window_s:g} s windows after a warm-up. *egress*: the monolith, calling the "
      "simulator through Envoy's egress as deployed; *service*: the inference-only process with the egress "
      "bypassed. *µs CPU/token* is that process's CPU time divided by the tokens it relayed; *tokens per CPU-s* "
      "is what it could relay with one whole core to itself.")
    w("")
    w("| path | streams | tokens/s | inference CPU (cores) | µs CPU/token | tokens per CPU-s | "
      "CPU client | CPU Envoy | CPU simulator | CPU others | errors | re-runs |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (name, streams), s in results.relay.items():
        proc = RELAY_PROC[name]
        us = s.med(lambda r, p=proc: r.us_per_token(p))
        w(f"| {name} | {streams} | {s.tps:,.0f} ({_range(*s.spread(lambda r: r.tps), ',.0f')}) | "
          f"{s.med(lambda r, p=proc: r.cores(p)):.2f} | {us:.1f} | {1e6 / us:,.0f} | "
          f"{s.med(lambda r: r.cores('client')):.2f} | {s.med(lambda r: r.cores('envoy')):.2f} | "
          f"{s.med(lambda r: r.cores('simulator')):.2f} | {s.med(lambda r: r.others()):.2f} | {s.errors} | "
          f"{s.reruns} |")
    w("")
    w(f"Target: ≥ {RELAY_TARGET_TPS:,} tokens/s per inference process.")
    w("")
    if results.paced:
        w("## 3. Supplement: TTFT with streams in flight that are not CPU-bound")
        w("")
        w(f"Same comparison with the simulator at `token_delay_ms={plan.paced_delay_ms}` "
          f"(~{1000 // max(1, plan.paced_delay_ms)} tokens/s per stream, GPU-like), {plan.paced_tokens} tokens per "
          f"stream, {plan.reps} x {plan.paced_window_s:g} s; workers start staggered over one stream's duration so "
          "that streams do not begin in lockstep. Both paths include the simulator's delay before the first token.")
        w("")
        out.extend(_latency_table(results.paced, (plan.paced_streams,)))
        w("")
    if results.doors:
        w("## 4. Front doors: gRPC and OpenAI through the ingress, against the backend and LiteLLM")
        w("")
        out.extend(_doors_section(results, plan))
        w("")
    w("## Interpretation")
    w("")
    w(interpretation(results, plan, env, variants_doc))
    w("")
    return "\n".join(out)
