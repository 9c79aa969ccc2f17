// Renders the events of one streamed run into #output. Every stream message has exactly one
// object-valued event field (`delta`, `juror_verdict`, `plan`, …); `result`, `done` and `error`
// are terminal. Text always goes in through textContent, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const TERMINAL = new Set(["result", "done", "error"]);
// What to do about an error, by gRPC code (the mesh's REST errors carry it too).
const ERROR_HINTS = {
  16: "The API needs an API key: enter it under API key above (it stays in this browser tab).",
  7: "This API key may not call this service: use a key with its scope.",
};
const GRPC_CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

const fmt = (n, digits = 2) => (typeof n === "number" ? Number(n.toFixed(digits)).toString() : String(n ?? ""));
const short = (s) => (s || "").replace(/^(STEP_STATUS|REFLECTION_STOP_REASON|STOP_REASON|AGGREGATION|STRATEGY|VERDICT)_/, "")
  .toLowerCase();
const args = (a) => JSON.stringify(a ?? {});

// The event's kind: its one object-valued field (ChatResponse also has a numeric `turn`).
export function kindOf(event) {
  for (const [k, v] of Object.entries(event)) if (v !== null && typeof v === "object") return k;
  return Object.keys(event)[0] || "unknown";
}

function pill(text, tone = "") {
  return el("span", { class: `pill ${tone}`, text });
}

function details(summary, value) {
  return el("details", {}, el("summary", { text: summary }), el("pre", { text: JSON.stringify(value, null, 2) }));
}

export class RunView {
  constructor(root) {
    this.root = root;
    this.root.replaceChildren();
    this.tokens = null; // the token block being appended to
    this.tokenSource = null;
    this.steps = new Map(); // plan step id -> <li>
    this.rounds = new Map(); // reflection round -> card
    this.terminal = null;
    this.queued = null; // the admission queue's line, while waiting
    this.httpStatus = null; // set when the request itself was refused (no stream at all)
    this.count = 0;
  }

  add(node) {
    this.root.append(node);
    node.scrollIntoView?.({ block: "nearest" });
    return node;
  }

  // A new token block labelled `label` (the next deltas go there).
  block(label) {
    const text = el("div", { class: "tokens", "data-testid": "tokens" });
    this.add(el("section", { class: "event event-tokens" }, label ? el("h4", { text: label }) : null, text));
    this.tokens = text;
    return text;
  }

  append(delta, fallbackLabel = "") {
    const source = delta.source || "";
    if (!this.tokens || source !== this.tokenSource) {
      this.block(source || fallbackLabel);
      this.tokenSource = source;
    }
    this.tokens.textContent += delta.text || "";
  }

  boundary() {
    this.tokens = null;
  }

  event(ev) {
    this.count += 1;
    const kind = kindOf(ev);
    const value = ev[kind];
    const handler = this[`on_${kind}`];
    if (handler) handler.call(this, value, ev);
    else this.add(el("section", { class: "event" }, details(kind, value)));
    if (TERMINAL.has(kind)) this.terminal = kind;
    return kind;
  }

  // --- tokens -------------------------------------------------------------------------------
  on_delta(d) { this.append(d, "output"); }
  on_reasoning(d) { this.append(d, "judge reasoning"); }
  on_answer(d) { this.append(d, "answer"); }

  // --- inference ----------------------------------------------------------------------------
  // Waiting in the admission queue (every backend busy): one line, updated in place.
  on_queued(q) {
    const text = `waiting for a backend: ${q.position ?? 0} of ${q.queue_length ?? 0} in the queue`;
    if (this.queued) this.queued.textContent = text;
    else this.queued = this.add(el("p", { class: "muted event-queued", "data-testid": "queued", text }));
  }

  on_tool_calls(v) {
    this.boundary();
    for (const c of v.tool_calls || []) {
      this.add(el("section", { class: "event event-tool" }, pill("tool call"), el("code", { text: `${c.name}(${args(c.arguments)})` })));
    }
  }

  on_done(d) {
    this.boundary();
    const facts = [
      ["model", d.model], ["backend", (d.backends && d.backends.length ? d.backends : [d.backend]).join(" → ")],
      ["finish", d.done_reason], ["tokens", `${d.prompt_tokens} in · ${d.output_tokens} out`],
      ["time to first token", `${fmt(d.time_to_first_token_ms, 0)} ms`], ["speed", `${fmt(d.tokens_per_second, 1)} tok/s`],
    ];
    if (d.failed_over) facts.push(["failover", `yes, ${d.attempts} attempts`]);
    if (d.queue_wait_ms) facts.push(["queue wait", `${fmt(d.queue_wait_ms, 0)} ms`]);
    this.add(el("section", { class: "event terminal event-done", "data-testid": "terminal" },
      el("h4", {}, pill("done", "ok")), facts_table(facts)));
  }

  on_error(s) {
    this.boundary();
    const code = GRPC_CODES[s.code] || `code ${s.code}`;
    this.httpStatus = s.http_status || null;
    const node = el("section", { class: "event terminal event-error", "data-testid": "terminal" },
      el("h4", {}, pill("error", "bad"), ` ${code} `, s.http_status ? pill(`HTTP ${s.http_status}`, "bad") : null),
      el("p", { class: "message", text: s.message || "" }));
    if (ERROR_HINTS[s.code]) node.append(el("p", { class: "hint", "data-testid": "error-hint", text: ERROR_HINTS[s.code] }));
    for (const d of s.details || []) {
      for (const v of d.field_violations || []) node.append(el("p", { text: `${v.field}: ${v.description}` }));
    }
    this.add(node);
  }

  // --- judge & jury ---------------------------------------------------------------------------
  on_order_verdict(o) {
    this.boundary();
    this.add(el("section", { class: "event card verdict" }, el("h4", { text: `order ${o.order}` }),
      el("p", {}, "winner: ", pill(short(o.winner), "ok")), el("p", { class: "muted", text: o.reasoning })));
  }

  on_juror_verdict(v) {
    this.boundary();
    const tone = v.error ? "bad" : v.verdict === "VERDICT_PASS" ? "ok" : "warn";
    const card = el("section", { class: "event card verdict", "data-testid": "juror" },
      el("h4", { text: v.juror }), el("p", {}, pill(v.error ? "failed" : short(v.verdict), tone),
        v.error ? "" : ` score ${fmt(v.score)} (normalised ${fmt(v.normalized_score)})`),
      el("p", { class: "muted", text: v.error ? v.error.message : v.reasoning }));
    (this.verdicts ||= this.add(el("div", { class: "cards" }))).append(card);
  }

  // --- tool use -------------------------------------------------------------------------------
  on_tool_call(c) {
    this.boundary();
    this.add(el("section", { class: "event event-tool" }, pill(`step ${c.step}`), " ",
      el("code", { text: `→ ${c.name}(${args(c.arguments)})` })));
  }

  on_tool_result(r) {
    this.add(el("section", { class: "event event-tool" }, pill(r.error ? "tool error" : "result", r.error ? "bad" : "ok"),
      " ", el("code", { text: `← ${r.name}: ${r.error ? r.error.message : r.output}` })));
  }

  // --- plan & execute -------------------------------------------------------------------------
  on_plan(p) {
    this.boundary();
    const plan = p.plan || {};
    const ol = el("ol", { class: "steps" });
    for (const s of plan.steps || []) {
      const what = s.kind === "STEP_KIND_TOOL" ? `${s.tool}(${args(s.arguments)})` : s.description;
      const li = el("li", { "data-step": s.id }, pill("pending"), " ", el("strong", { text: s.id }), ` ${what}`,
        s.depends_on && s.depends_on.length ? el("span", { class: "muted", text: ` ← ${s.depends_on.join(", ")}` }) : null,
        el("div", { class: "step-output muted" }));
      this.steps.set(s.id, li);
      ol.append(li);
    }
    const title = `plan${plan.revision ? ` (revision ${plan.revision})` : ""}${p.awaiting_approval ? " — awaiting approval" : ""}`;
    this.add(el("section", { class: "event card" }, el("h4", { text: title }), ol));
  }

  step(id, status, tone, output) {
    const li = this.steps.get(id);
    if (!li) return;
    li.querySelector(".pill").replaceWith(pill(status, tone));
    if (output !== undefined) li.querySelector(".step-output").textContent = output;
  }

  on_step_started(s) { this.step(s.step_id, "running", "warn"); }

  on_step_result(r) {
    const ok = r.status === "STEP_STATUS_SUCCEEDED";
    this.step(r.step_id, short(r.status), ok ? "ok" : "bad", r.error ? r.error.message : r.output);
  }

  // --- reflection -----------------------------------------------------------------------------
  round(n) {
    if (!this.rounds.has(n)) {
      this.rounds.set(n, this.add(el("section", { class: "event card round", "data-testid": "round" },
        el("h4", { text: `round ${n}` }))));
    }
    return this.rounds.get(n);
  }

  on_draft(d) {
    // The draft streamed in as tokens; the round card now holds it whole.
    if (this.tokens) this.tokens.parentElement.remove();
    this.boundary();
    this.round(d.round).append(el("p", { class: "draft", text: d.text }));
  }

  on_critique(c) {
    this.boundary();
    this.round(c.round).append(el("p", {}, pill(`score ${fmt(c.score, 1)}`, c.score >= 8 ? "ok" : "warn"), " ",
      el("span", { class: "muted", text: c.feedback })));
  }

  // --- collaboration --------------------------------------------------------------------------
  on_turn_started(t) {
    this.block(`${t.agent} · round ${t.round}`);
    this.tokenSource = t.agent; // its deltas carry the agent as their source
  }

  on_turn(t) {
    if (t.human) this.add(el("section", { class: "event card" }, el("h4", { text: `human · round ${t.round}` }), el("p", { text: t.content })));
    this.boundary();
  }

  on_awaiting_human(a) {
    this.add(el("section", { class: "event card" }, pill("waiting", "warn"),
      ` for a human turn after round ${a.round} (add {"human": {"content": "…"}} to the request array)`));
  }

  // --- the final result -----------------------------------------------------------------------
  on_result(r) {
    this.boundary();
    const facts = [];
    // A debate's verdict is {winner, rationale}; a judge's or jury's an enum name.
    if (r.verdict && typeof r.verdict === "object") facts.push(["winner", r.verdict.winner], ["rationale", r.verdict.rationale]);
    else if (r.verdict !== undefined && r.verdict !== "") facts.push(["verdict", typeof r.verdict === "string" ? short(r.verdict) : r.verdict]);
    if (r.score !== undefined && r.verdicts === undefined) facts.push(["score", `${fmt(r.score)} (${fmt(r.min_score)}–${fmt(r.max_score)})`]);
    if (r.verdicts !== undefined) facts.push(["score", fmt(r.score)], ["agreement", fmt(r.agreement?.verdict_agreement)]);
    if (r.criterion) facts.push(["criterion", r.criterion]);
    if (r.judge) facts.push(["judge", r.judge]);
    if (r.final_score !== undefined) facts.push(["final score", fmt(r.final_score, 1)], ["rounds", r.rounds], ["stop", short(r.stop_reason)]);
    if (r.steps !== undefined && typeof r.steps === "number") facts.push(["steps", r.steps]);
    if (r.usage) facts.push(["usage", `${r.usage.model_calls} model calls · ${r.usage.prompt_tokens} in · ${r.usage.output_tokens} out · ${fmt(r.usage.duration_ms, 0)} ms`]);
    const text = r.answer || r.final_draft || r.reasoning || "";
    this.add(el("section", { class: "event terminal event-result", "data-testid": "terminal" },
      el("h4", {}, pill("result", "ok")), facts_table(facts), text ? el("blockquote", { text }) : null,
      details("full result", r)));
  }
}

function facts_table(rows) {
  return el("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v ?? "") })]));
}
