// The History tab: past runs from the run store (GET /api/v1/runs, a page at a time), one opened
// again (GET /api/v1/runs/{id}: its request, then its stored events and result replayed through
// the same views as a live run), and deleted (DELETE /api/v1/runs/{id}).
import { CompareView } from "./compare.js";
import { RunView, el } from "./render.js";

const PAGE_SIZE = 20;
const short = (s) => (s || "").replace(/^RUN_STATUS_/, "").toLowerCase();
const TONE = { succeeded: "ok", failed: "bad", cancelled: "warn" };

export class History {
  // getJSON(path, init) → the parsed JSON body, or throws with the problem in words.
  constructor(getJSON, $) {
    this.getJSON = getJSON;
    this.$ = $;
    this.next = "";
  }

  async refresh(more = false) {
    const $ = this.$;
    const query = new URLSearchParams({ page_size: String(PAGE_SIZE) });
    const pattern = $("#history-pattern").value;
    if (pattern) query.set("pattern", pattern);
    if (more && this.next) query.set("page_token", this.next);
    const body = $("#history tbody");
    try {
      const { runs = [], next_page_token: next = "" } = await this.getJSON(`/api/v1/runs?${query}`);
      const rows = runs.map((r) => this.row(r));
      if (more) body.append(...rows);
      else body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted", text: "no runs stored yet" }))]));
      this.next = next;
      $("#history-more").disabled = !next;
      $("#history").dataset.loaded = "true";
    } catch (err) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "bad-text", text: `unavailable: ${err.message}` })));
    }
  }

  row(r) {
    const status = short(r.status);
    const open = el("button", { type: "button", class: "secondary", "data-action": "open", text: "Open" });
    const del = el("button", { type: "button", class: "secondary", "data-action": "delete", text: "Delete" });
    open.addEventListener("click", () => this.open(r.run_id));
    del.addEventListener("click", () => this.remove(r.run_id));
    return el("tr", { "data-run-id": r.run_id, "data-pattern": r.pattern },
      el("td", { text: r.created_at ? new Date(r.created_at).toLocaleString() : "" }),
      el("td", { text: `${r.pattern} (${r.method})` }),
      el("td", {}, el("span", { class: `pill ${TONE[status] || ""}`, text: status })),
      el("td", { text: (r.models || []).join(", ") }),
      el("td", { text: r.duration_ms !== undefined ? `${Math.round(r.duration_ms)} ms` : "" }),
      el("td", {}, open, " ", del));
  }

  async open(id) {
    const $ = this.$;
    const out = $("#history-run");
    out.dataset.terminal = "loading";
    try {
      const { run } = await this.getJSON(`/api/v1/runs/${encodeURIComponent(id)}`);
      $("#history-request").textContent = JSON.stringify(run.request ?? {}, null, 2);
      $("#history-title").textContent = `${run.pattern} (${run.method}) · ${short(run.status)} · ${run.run_id}`;
      const models = run.pattern === "compare" ? run.request?.models || [] : [];
      const view = run.pattern === "compare" ? new CompareView(out, models) : new RunView(out);
      for (const ev of run.events || []) view.event(ev);
      if (run.result) view.event({ result: run.result });
      else if (run.error) view.event({ error: run.error });
      out.dataset.runId = run.run_id;
      out.dataset.terminal = view.terminal || "none";
    } catch (err) {
      out.replaceChildren(el("p", { class: "bad-text", text: err.message }));
      out.dataset.terminal = "error";
    }
  }

  async remove(id) {
    try {
      await this.getJSON(`/api/v1/runs/${encodeURIComponent(id)}`, { method: "DELETE" });
      if (this.$("#history-run").dataset.runId === id) {
        this.$("#history-run").replaceChildren();
        this.$("#history-request").textContent = "";
        this.$("#history-title").textContent = "";
      }
    } catch (err) {
      this.$("#history-title").textContent = `delete failed: ${err.message}`;
    }
    await this.refresh();
  }
}
