"""The scenarios, in the order they are told. Each narrates what it does, runs it through the real
mesh (ingress Envoy -> services -> inference -> egress Envoy -> two Ollama simulators), checks the
outcome and the metrics that show it, and leaves both backends serving for the next one. The backend
kill comes last for that reason: nothing after it depends on whether the killed simulator is
restarted."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmmesh.common.v1 import common_pb2
from llmmesh.inference.v1 import inference_service_pb2 as pb
from llmmesh.inference.v1 import inference_service_pb2_grpc as pb_grpc
from tests.chaos.demo.context import SIMS, Demo, SseReader, route
from tests.chaos.demo.metrics import FAILOVERS, STATUSES, change
from tests.chaos.demo.narration import ScenarioFailed, expect
from tests.chaos.drills import child, rss_mb

GRPC_CODE_INVALID_ARGUMENT = 3


@dataclass(frozen=True)
class Scenario:
    title: str
    run: Callable[[Demo], Awaitable[None]]


# ---- 1. the happy path ----------------------------------------------------------------------

JUDGE_BODY = '{"question": "What is 2+2?", "answer": "4", "judge_type": "factual"}'
CHAT_TOKENS = 12
CHAT_BODY = json.dumps([{"turn": {"messages": [{"role": "ROLE_USER", "content": "Say hello"}],
                                  "options": {"max_tokens": CHAT_TOKENS}}}])


async def happy_path(d: Demo) -> None:
    d.say.explain("A judge call over gRPC: the ingress Envoy routes it to the judge service, which asks the "
                  "inference service for a verdict (the simulator's words are placeholders; every shape is real).")
    out = d.grpcurl("-plaintext", "-d", JUDGE_BODY, d.ingress, "llmmesh.judge.v1.JudgeService/Evaluate")
    verdict = json.loads(out.stdout)
    expect(verdict.get("verdict") in ("VERDICT_PASS", "VERDICT_FAIL"), f"no verdict in {out.stdout[:300]!r}")
    low, high, score = verdict.get("min_score", 0), verdict.get("max_score", 0), verdict.get("score", 0)
    expect(low <= score <= high and low < high, f"score {score} outside the scale {low}..{high}")
    d.say.result(f"{verdict['verdict']}, score {score:g} on {low:g}..{high:g}, by {verdict['judge']}")

    d.say.explain("A streamed chat over REST: Envoy transcodes it to the bidirectional Chat stream and sends every "
                  "token as a Server-Sent Event, then an explicit `done`:")
    events = d.sse("/api/v1/inference/chat:stream", CHAT_BODY)
    kinds = [next(k for k in e if k != "turn") for e in events]
    # Tokens that queued up behind the reader come as one delta: done counts them (checked below).
    expect(set(kinds[:-1]) == {"delta"} and kinds[-1:] == ["done"], f"events {kinds}, not deltas then done")
    done = events[-1]["done"]
    d.saw(done["backends"])
    expect(done["output_tokens"] == CHAT_TOKENS, f"done counts {done['output_tokens']} tokens")
    text = "".join(e["delta"]["text"] for e in events[:-1]).strip()
    d.say.result(f"{CHAT_TOKENS} tokens in {len(events) - 1} events ({text[:60]!r}...), then done: {route(done)}, "
                 f"{done['total_ms']:.0f} ms")


# ---- 2. bad input ---------------------------------------------------------------------------

BAD_REQUESTS = (
    ("/api/v1/judge/evaluate", '{"question": "What is 2+2?", "answer": "4", "judge_type": "truthiness"}',
     "judge_type"),
    ("/api/v1/inference/generate", '{"prompt": "Why is the sky blue?", "options": {"max_tokens": 100000}}',
     "options.max_tokens"),
)


async def validation_error(d: Demo) -> None:
    d.say.explain("Invalid fields: the service refuses them with INVALID_ARGUMENT, which Envoy answers as HTTP 400 "
                  "with the google.rpc.Status as JSON; its BadRequest names the caller's field:")
    for path, body, field in BAD_REQUESTS:
        status, error = d.rest_error(path, body)
        expect(status == 400, f"HTTP {status}, not 400: {error}")
        expect(error.get("code") == GRPC_CODE_INVALID_ARGUMENT, f"gRPC code {error.get('code')}, not 3")
        violations = [v for detail in error.get("details", []) if detail.get("@type", "").endswith("BadRequest")
                      for v in detail.get("field_violations", [])]
        expect([v["field"] for v in violations] == [field], f"field violations {violations}, not one for {field!r}")
        expect("Traceback" not in json.dumps(error), "a stack trace reached the client")
        d.ledger.invalid += 1
        d.say.result(f"400, field_violations: {field}: {violations[0]['description']}")


# ---- 3-5. backends answering errors ---------------------------------------------------------

MAX_TRIES = 8  # generations sent before giving up on one landing on the faulty backend


def until_failed(d: Demo, faulty: str, times: int, label: str) -> None:
    """Generations one at a time until `times` of them were tried on `faulty` first, each of which
    must have been continued on the other backend."""
    failed = 0
    for i in range(1, MAX_TRIES + 1):
        done = d.generate(f"demo {label} #{i}", show=i == 1)
        d.say.result(route(done))
        if done["backends"][0] == faulty:
            expect(done["backends"] == [faulty, d.other(faulty)], f"routed {done['backends']}")
            failed += 1
            if failed == times:
                return
        else:
            expect(done["backends"] == [d.other(faulty)], f"routed {done['backends']}")
    raise ScenarioFailed(f"only {failed} of {MAX_TRIES} generations were sent to {faulty} first")


async def backend_503(d: Demo) -> None:
    threshold = d.settings.breaker_failures
    before = d.metrics()
    d.say.explain("sim1 answers every generation with 503, as Ollama does when its queue is full "
                  "(the simulator's fault control API):")
    d.set_fault("sim1", "status=503")
    try:
        d.say.explain("Envoy ejects a backend after 5xx answers in a row, and sim1 still answers the inference "
                      f"service's inventory probe (every {d.settings.inventory_refresh_s:g} s) with 200, which "
                      "would start that count again: the demo begins right after a probe.")
        await d.after_probe("sim1")
        d.say.explain(f"Generations through the ingress, one at a time, until {threshold} were sent to sim1 first; "
                      "each is retried on sim2 before its first token, so the client sees no error:")
        until_failed(d, "sim1", threshold, "503")
    finally:
        d.set_fault("sim1", "", show=False)
    c = change(before, d.metrics(), "sim1")
    d.say.result("metrics: " + c.describe())
    expect(c.statuses[503] >= threshold, f"Envoy counted {c.statuses[503]} 503s from sim1")
    expect(c.ejections >= 1, f"Envoy did not eject sim1 after {threshold} 5xx in a row")
    d.ledger.statuses["sim1", 503] += threshold
    d.ledger.ejections["sim1"] += 1
    view = d.backends()["sim1"]
    d.say.explain(f"After {threshold} failures in a row the inference service's circuit breaker opens: no generation "
                  f"goes to sim1 for {d.settings.breaker_open_s:g} s. The egress Envoy ejected it as well (outlier "
                  "detection), until its next passing active health check: sim1's /api/tags still answers.")
    d.say.command(["curl", "-s", f"{d.ingress}/api/v1/inference/backends"])
    d.say.command(["curl", "-s", f"localhost:{d.mesh.options.admin_port}/clusters"])
    d.say.result(f"sim1 circuit {view['circuit']}, last error {view['last_error']!r}; Envoy health flags now "
                 f"{d.envoy_flags('sim1')}")
    expect(view["circuit"] == "CIRCUIT_STATE_OPEN", f"sim1's circuit is {view['circuit']}")
    await readmitted(d, "sim1")


async def readmitted(d: Demo, name: str, timeout_s: float = 30.0) -> None:
    """The fault is cleared: wait until generations run on `name` again (the breaker's cool-down
    over, a trial generation passed), with a little load meanwhile."""
    d.say.explain(f"The fault is cleared. {d.settings.breaker_open_s:g} s after it opened, the circuit lets one trial "
                  f"generation through to {name}, and closes when it succeeds; load in the meantime goes to "
                  f"{d.other(name)}:")
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if any(done.backend == name for done in await d.burst(4, f"demo readmit {name}")):
            view = d.backends()[name]
            d.say.result(f"{name} serves again after {time.monotonic() - t0:.1f} s: circuit {view['circuit']}, "
                         f"Envoy health flags {d.envoy_flags(name)}")
            expect(view["circuit"] == "CIRCUIT_STATE_CLOSED", f"{name}'s circuit is {view['circuit']}")
            return
        await asyncio.sleep(0.25)
    raise ScenarioFailed(f"{name} took no generation for {timeout_s:g} s after its fault was cleared")


async def backend_429(d: Demo) -> None:
    before = d.metrics()
    d.say.explain("sim2 answers with 429 Too Many Requests (as an OpenAI-compatible server over its rate limit):")
    d.set_fault("sim2", "status=429")
    try:
        d.say.explain("Generations until one is sent to sim2 first: it is retried on sim1.")
        until_failed(d, "sim2", 1, "429")
    finally:
        d.set_fault("sim2", "", show=False)
    c = change(before, d.metrics(), "sim2")
    d.say.result("metrics: " + c.describe())
    expect(c.statuses[429] >= 1, f"Envoy counted {c.statuses[429]} 429s from sim2")
    expect(c.ejections == 0, "Envoy ejected sim2 for a 429, which is not a server error")
    d.ledger.statuses["sim2", 429] += 1
    d.say.result("a 429 is no 5xx: Envoy keeps sim2 in rotation; one failure does not open its circuit")


async def backend_500_retry(d: Demo) -> None:
    s = d.settings
    before = d.metrics()
    d.say.explain("Both backends answer their next generation with 500 (times=1: once each):")
    for name in SIMS:
        d.set_fault(name, "status=500,times=1")
    backoffs = ", ".join(f"{s.backoff_s * 2 ** i * 1000:.0f} ms" for i in range(s.max_attempts - 1))
    d.say.explain(f"One generation: the inference service retries up to {s.max_attempts} attempts in all, after "
                  f"{backoffs}, on another backend while one is left, else on one that failed before (the egress "
                  "Envoy retries nothing itself: the inference service knows where the model lives):")
    done = d.generate("demo 500", show=True)
    d.say.result(route(done))
    backends = done["backends"]
    expect(done["attempts"] == 3 and len(backends) == 3 and set(backends[:2]) == set(SIMS),
           f"routed {backends} in {done['attempts']} attempts, not both backends then a retry")
    after = d.metrics()
    for name in SIMS:
        c = change(before, after, name)
        d.say.result("metrics: " + c.describe())
        expect(c.statuses[500] == 1, f"Envoy counted {c.statuses[500]} 500s from {name}, not 1")
        expect(d.fault(name) == "", f"{name} still has the fault {d.fault(name)!r}")
        d.ledger.statuses[name, 500] += 1


# ---- 6. a slow client -----------------------------------------------------------------------

SLOW_PROMPT = "demo slow reader"
SLOW_TOKENS = 2000
SLOW_TOKEN_BYTES = 28_000
SLOW_TOKEN_DELAY_MS = 1  # paced, so that a first burst does not autotune the socket buffers to tens of MB
SLOW_MB = SLOW_TOKENS * SLOW_TOKEN_BYTES / 2**20
SLOW_READ_INTERVAL_S = 0.1  # ten tokens a second
SAMPLE_EVERY = 5  # reads, i.e. every half second
# The HTTP/2 windows and socket buffers between the simulator and the client hold several MB. Once
# they are full the backend stalls: it writes (nearly) nothing between two samples. From then on it
# may advance only as fast as the client reads, give or take the bursts in which that slack refills
# (tests/chaos/test_slow_client.py measures the same at length).
STALLED_TOKENS = 20
SLOW_MEASURE_S = 2.0  # read slowly for this long after the stall…
SLOW_MAX_S = 15.0  # …or give up on seeing one
SLOW_BURST_TOKENS = 150  # ~4 MB
# A process on the path may hold a few MB of frames in flight, not the answer.
SLOW_RSS_GROWTH_MB = 16.0


@dataclass(frozen=True)
class Sample:
    t: float
    read: int
    written: int  # frames the simulator has written for the request (its writes returned)


async def slow_client(d: Demo) -> None:
    words = " ".join(f"{i:05d}" + "x" * (SLOW_TOKEN_BYTES - 6) for i in range(SLOW_TOKENS))
    d.add_rules([{"match": SLOW_PROMPT, "response": words, "fault": f"token_delay_ms={SLOW_TOKEN_DELAY_MS}"}])
    keeping_up_s = SLOW_TOKENS * SLOW_TOKEN_DELAY_MS / 1000
    d.say.explain(f"Both simulators answer '{SLOW_PROMPT}' with {SLOW_TOKENS} tokens of {SLOW_TOKEN_BYTES} bytes "
                  f"({SLOW_MB:.0f} MB), written as fast as the reader takes them (~{keeping_up_s:g} s if it keeps "
                  "up). A gRPC client through the ingress reads ten tokens a second until the backend has stalled "
                  f"and {SLOW_MEASURE_S:g} s more, then the rest at full speed. Flow control must hold the backend "
                  "back meanwhile, and no process on the path may buffer the difference.")
    d.say.explain("(Try it over REST with a rate-limited reader:)")
    body = json.dumps({"prompt": SLOW_PROMPT, "options": {"max_tokens": SLOW_TOKENS}})
    d.say.command(["curl", "-sN", "--limit-rate", f"{10 * SLOW_TOKEN_BYTES // 1000}k",
                   f"{d.ingress}/api/v1/inference/generate", "-d", body])
    pids = {name: child(d.mesh, name).proc.pid for name in ("llmmesh", "envoy")}
    rss0 = {name: rss_mb(pid) for name, pid in pids.items()}
    peak = dict(rss0)
    stub = pb_grpc.InferenceServiceStub(d.channel)
    call = stub.Generate(pb.GenerateRequest(prompt=SLOW_PROMPT, options=common_pb2.GenerationOptions(
        max_tokens=SLOW_TOKENS)), timeout=120)
    read, backend_name = 0, ""
    next_sample = SAMPLE_EVERY
    samples: list[Sample] = []
    stalled: Sample | None = None
    slow = True
    done: pb.GenerationDone | None = None
    t0 = time.monotonic()
    try:
        async for ev in call:
            kind = ev.WhichOneof("event")
            if kind == "done":
                done = ev.done
                break
            expect(kind == "delta", f"a {kind} event in the middle of the stream: {ev}")
            # A message may carry several tokens (the relay joins those queued behind a slow reader);
            # each token is one word, and the client paces itself by the tokens it got.
            got = len(ev.delta.text.split())
            read += got
            if not slow or read < next_sample:
                if slow:
                    await asyncio.sleep(SLOW_READ_INTERVAL_S * got)
                continue
            next_sample = read + SAMPLE_EVERY
            serving = d.serving(SLOW_PROMPT)
            expect(serving is not None, f"the backend finished all {SLOW_TOKENS} tokens while the client had read "
                                        f"{read}: nothing held it back")
            assert serving is not None
            backend_name = serving[0]
            samples.append(Sample(time.monotonic() - t0, read, serving[1]["frames"]))
            for name, pid in pids.items():
                peak[name] = max(peak[name], rss_mb(pid))
            if stalled is None and len(samples) > 1 and samples[-1].written - samples[-2].written < STALLED_TOKENS:
                stalled = samples[-1]
            if stalled is not None and samples[-1].t - stalled.t >= SLOW_MEASURE_S:
                slow = False  # from here on, read at full speed
            else:
                expect(samples[-1].t < SLOW_MAX_S, f"the backend never stalled in {SLOW_MAX_S:g} s of slow reading "
                                                   f"({samples[-1].written} tokens written, {read} read)")
                await asyncio.sleep(SLOW_READ_INTERVAL_S * got)
    finally:
        call.cancel()
    expect(stalled is not None and not slow, f"the stream ended during the slow phase after {read} tokens")
    assert stalled is not None
    last = samples[-1]
    ahead_mb = (stalled.written - stalled.read) * SLOW_TOKEN_BYTES / 2**20
    growth = {name: peak[name] - rss0[name] for name in pids}
    d.say.result(f"{backend_name} stalled after {stalled.t:.1f} s, {stalled.written} of {SLOW_TOKENS} tokens written "
                 f"and {stalled.read} read ({ahead_mb:.1f} MB ahead, in the flow-control windows and socket buffers "
                 f"between them); in the {last.t - stalled.t:.1f} s after, the client read "
                 f"{last.read - stalled.read} and the backend wrote {last.written - stalled.written}")
    d.say.result("RSS growth meanwhile: " + ", ".join(f"{n} {g:+.1f} MB" for n, g in growth.items())
                 + f" (the answer is {SLOW_MB:.0f} MB)")
    expect(last.written - stalled.written <= last.read - stalled.read + SLOW_BURST_TOKENS,
           f"after it stalled the backend wrote {last.written - stalled.written} tokens while the client read "
           f"{last.read - stalled.read}: it ran ahead of the reader")
    for name, g in growth.items():
        expect(g < SLOW_RSS_GROWTH_MB, f"{name} grew {g:.1f} MB while the client read slowly")
    expect(done is not None, f"the stream ended without done after {read} tokens")
    assert done is not None
    d.saw(done.backends)
    expect(read == done.output_tokens == SLOW_TOKENS, f"read {read} tokens, done counts {done.output_tokens}")
    d.say.result(f"then read at full speed: done after all {read} tokens, "
                 f"{(time.monotonic() - t0):.1f} s in all, from {done.backend}")


# ---- 7. a backend killed mid-stream ---------------------------------------------------------

KILL_PROMPT = "demo killed backend"
KILL_TOKENS = 40
KILL_AFTER = 8
KILL_TOKEN_DELAY_MS = 50


async def killed_backend(d: Demo) -> None:
    # Every word with its leading space: the survivor answers afresh, and its first word must not glue onto
    # the last one delivered (the simulators' `continuation` is "ignore").
    d.add_rules([{"match": KILL_PROMPT, "response": "".join(f" w{i}" for i in range(2 * KILL_TOKENS)),
                  "fault": f"token_delay_ms={KILL_TOKEN_DELAY_MS}"}])
    body = json.dumps({"prompt": KILL_PROMPT, "options": {"max_tokens": KILL_TOKENS}})
    d.say.explain(f"A streamed generation of {KILL_TOKENS} tokens ({KILL_TOKEN_DELAY_MS} ms each) over REST:")
    d.say.command(["curl", "-sN", f"{d.ingress}/api/v1/inference/generate", "-d", body])
    stream = SseReader(f"http://{d.ingress}/api/v1/inference/generate", body)
    try:
        first = stream.take(KILL_AFTER, timeout_s=15)
        expect(len(first) == KILL_AFTER and all("delta" in e for e in first), f"the stream began with {first}")
        serving = d.serving(KILL_PROMPT)
        expect(serving is not None, "no simulator is generating the stream")
        assert serving is not None
        victim, survivor = serving[0], d.other(serving[0])
        proc = child(d.mesh, f"simulator-{victim}").proc
        before = sum(len(e["delta"]["text"].split()) for e in first)
        d.say.explain(f"After {before} tokens, the backend serving it, {victim}, is killed outright (no goodbye, "
                      "the connection just dies):")
        d.say.command(["kill", "-9", str(proc.pid)])
        proc.send_signal(signal.SIGKILL)
        rest = stream.take(KILL_TOKENS + 1, timeout_s=15)
    finally:
        stream.close()
    events = first + rest
    d.say.result(f"the longest pause between two events: {stream.longest_pause_s() * 1000:.0f} ms "
                 f"(tokens come every {KILL_TOKEN_DELAY_MS} ms)")
    expect(events and "done" in events[-1], f"the stream ended without done: {events[-1:]}")
    done = events[-1]["done"]
    d.saw(done["backends"])
    deltas = sum("delta" in e for e in events)
    # Words, not events: the relay joins the tokens queued behind a reader that lags.
    tokens = sum(len(e["delta"]["text"].split()) for e in events if "delta" in e)
    d.say.result(f"{tokens} tokens in {deltas} events, then {route(done)}")
    expect(done["failed_over"] and done["backends"] == [victim, survivor],
           f"done says failed_over={done['failed_over']}, backends {done['backends']}")
    expect(tokens == done["output_tokens"] == KILL_TOKENS,
           f"{tokens} tokens read, done counts {done['output_tokens']}, asked for {KILL_TOKENS}")
    d.say.explain("The stream went on from the tokens already delivered (sent to the survivor as the start of its "
                  "answer), and the mesh goes on serving:")
    after = d.generate("demo after the kill", show=True)
    d.say.result(route(after))
    d.say.result(f"Envoy health flags for {victim}: {d.envoy_flags(victim) or 'none'} (the launcher may restart "
                 "it; nothing here depends on that)")


# ---- 8. the metrics -------------------------------------------------------------------------

async def metrics_show_it(d: Demo) -> None:
    assert d.baseline is not None
    admin = f"localhost:{d.mesh.options.admin_port}"
    d.say.explain("What the mesh itself recorded since the demo began. Envoy's admin stats of the egress clusters "
                  "(one per backend), and the inference service's Prometheus metrics:")
    d.say.command(["curl", "-s", f"{admin}/stats?filter=^cluster\\.backend_"])
    d.say.command(["curl", "-s", f"localhost:{d.mesh.options.metrics_port}/metrics"])
    now = d.metrics()
    statuses = "".join(f" {code} |" for code in STATUSES)
    rows = [f"| backend | failovers (attempts abandoned) |{statuses} outlier ejections | resets mid-request |",
            "|---|---:|" + "---:|" * (len(STATUSES) + 2)]
    for name in SIMS:
        c = change(d.baseline, now, name)
        rows.append(f"| {name} | {c.failovers:g} |" + "".join(f" {c.statuses[code]} |" for code in STATUSES)
                    + f" {c.ejections} | {c.resets} |")
        expect(c.failovers == d.ledger.failovers[name],
               f"{FAILOVERS} for {name} rose by {c.failovers:g}; the clients saw {d.ledger.failovers[name]} "
               "attempts abandoned there")
        for code in STATUSES:
            caused = d.ledger.statuses[name, code]
            expect(c.statuses[code] >= caused, f"Envoy counted {c.statuses[code]} {code}s from {name}; the demo "
                                               f"caused {caused}")
        expect(c.ejections >= d.ledger.ejections[name], f"Envoy counted {c.ejections} ejections of {name}")
    for row in rows:
        d.say.explain(row)
    d.say.explain("(statuses: Envoy's upstream_rq_<code>; ejections: outlier_detection.ejections_enforced_total; "
                  f"failovers: {FAILOVERS}, equal to what the clients saw in done events)")
    invalid = (now.sample("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT")
               - d.baseline.sample("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT"))
    d.say.result(f"grpc_server_handled_total{{grpc_code=\"INVALID_ARGUMENT\"}} +{invalid:g}")
    expect(invalid >= d.ledger.invalid, f"{invalid:g} INVALID_ARGUMENT answers counted; the demo sent "
                                        f"{d.ledger.invalid}")
    retried = sum(v - d.baseline.envoy.get(k, 0) for k, v in now.envoy.items()
                  if k.startswith("cluster.svc_") and k.endswith(".upstream_rq_retry"))
    d.say.result(f"ingress retries (cluster.svc_*.upstream_rq_retry): +{retried}; the ingress retries only "
                 "connection failures, the inference service retries backend failures")


SCENARIOS = (
    Scenario("the happy path: a judge call and a streamed chat through Envoy", happy_path),
    Scenario("a validation error: HTTP 400 naming the field", validation_error),
    Scenario("a backend answering 503: failover, circuit breaker, ejection, readmission", backend_503),
    Scenario("a backend answering 429: failover", backend_429),
    Scenario("a 500 and its retry", backend_500_retry),
    Scenario("a slow client: backpressure, bounded memory, the stream completes", slow_client),
    Scenario("a backend killed mid-stream: the stream continues on the other", killed_backend),
    Scenario("the metrics that show all of it", metrics_show_it),
)
