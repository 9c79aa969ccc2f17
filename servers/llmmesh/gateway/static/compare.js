// The Compare tab: one prompt to several models (CompareService.RunStream over SSE). Each model's
// answer streams into its own column (deltas whose `source` is the model), its figures and jury
// score appear as they come, and the result's ranking fills a table.
import { el } from "./render.js";

export const CRITERIA = ["helpfulness", "factual", "clarity", "relevance", "safety"];
export const COMPARE_PATH = "/api/v1/compare/run:stream";

const fmt = (n, digits = 2) => (typeof n === "number" ? Number(n.toFixed(digits)).toString() : String(n ?? ""));

// Renders a comparison's events; the same interface as RunView (event, count, terminal), so a
// stored comparison replays through it too.
export class CompareView {
  constructor(root, models = []) {
    this.root = root;
    this.columns = new Map();
    this.terminal = null;
    this.httpStatus = null; // set when the request itself was refused (no stream at all)
    this.count = 0;
    this.grid = el("div", { class: "answers", "data-testid": "answers" });
    this.ranking = el("div", { class: "ranking" });
    this.root.replaceChildren(this.grid, this.ranking);
    for (const m of models) this.column(m);
  }

  column(model) {
    if (!this.columns.has(model)) {
      const col = el("section", { class: "event answer-col", "data-model": model },
        el("h4", { text: model }), el("div", { class: "tokens", "data-testid": "answer-text" }),
        el("p", { class: "muted figures" }), el("p", { class: "score" }));
      this.grid.append(col);
      this.columns.set(model, col);
    }
    return this.columns.get(model);
  }

  event(ev) {
    this.count += 1;
    const kind = Object.keys(ev).find((k) => ev[k] !== null && typeof ev[k] === "object") || "unknown";
    const v = ev[kind];
    if (kind === "delta") this.column(v.source || "?").querySelector(".tokens").textContent += v.text || "";
    else if (kind === "answer") this.answer(v);
    else if (kind === "score") this.column(v.model).querySelector(".score").textContent = `score ${fmt(v.score)}`;
    else if (kind === "result") this.result(v);
    else if (kind === "error") this.error(v);
    if (["result", "error"].includes(kind)) this.terminal = kind;
    return kind;
  }

  // A whole answer and its figures (also from the result, for a stored run without its deltas).
  answer(a) {
    const col = this.column(a.model);
    col.querySelector(".tokens").textContent = a.text || "";
    col.querySelector(".figures").textContent = `${a.output_tokens ?? 0} tokens · ${fmt(a.latency_ms, 0)} ms · ` +
      `first token ${fmt(a.time_to_first_token_ms, 0)} ms · ${fmt(a.tokens_per_second, 1)} tok/s`;
  }

  result(r) {
    for (const a of r.answers || []) this.answer(a);
    const rows = (r.ranking || []).map((e) => el("tr", { "data-model": e.model },
      ...[e.rank, e.model, fmt(e.score), e.wins ?? 0, `${fmt(e.latency_ms, 0)} ms`, fmt(e.tokens_per_second, 1),
        e.output_tokens ?? 0].map((x) => el("td", { text: String(x) }))));
    this.ranking.replaceChildren(el("h4", { text: `ranking on ${(r.criteria || []).join(", ")}` }),
      el("table", { id: "ranking", "data-testid": "ranking" },
        el("thead", {}, el("tr", {}, ...["rank", "model", "score", "wins", "latency", "tok/s", "tokens"]
          .map((h) => el("th", { text: h })))),
        el("tbody", {}, ...rows)),
      r.run_id ? el("p", { class: "muted", text: `run ${r.run_id}` }) : null);
  }

  error(s) {
    this.httpStatus = s.http_status || null;
    const node = el("section", { class: "event terminal event-error", "data-testid": "terminal" },
      el("p", { class: "message", text: s.message || `error ${s.code}` }));
    for (const d of s.details || []) {
      for (const fv of d.field_violations || []) node.append(el("p", { text: `${fv.field}: ${fv.description}` }));
    }
    this.ranking.replaceChildren(node);
  }
}

// The form's request: the prompt, the checked models and criteria, an optional preset.
export function compareBody(form) {
  const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
  const run = { prompt: form.querySelector("#compare-prompt").value, models: checked("model"),
    criteria: checked("criterion") };
  const preset = form.querySelector("#compare-preset").value.trim();
  if (preset) run.preset = preset;
  return [{ run }];
}

// The model checkboxes, from GET /api/v1/inference/models (names and aliases).
export function renderModelChoices(root, names) {
  root.replaceChildren(...names.map((n, i) => el("label", { class: "check" },
    Object.assign(el("input", { type: "checkbox", name: "model", value: n }), { checked: i < 2 }), ` ${n}`)));
  root.dataset.loaded = "true";
}

export function renderCriteriaChoices(root) {
  root.replaceChildren(...CRITERIA.map((c, i) => el("label", { class: "check" },
    Object.assign(el("input", { type: "checkbox", name: "criterion", value: c }), { checked: i === 0 }), ` ${c}`)));
}
