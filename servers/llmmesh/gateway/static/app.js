// The playground page: pick a pattern and a model, fill the form (or edit the exact JSON body),
// run it, and watch the SSE stream render live. Backend health refreshes every few seconds.
import { COMPARE_PATH, CompareView, compareBody, renderCriteriaChoices, renderModelChoices } from "./compare.js";
import { History } from "./history.js";
import { PATTERNS } from "./patterns.js";
import { RunView, el } from "./render.js";
import { sseEvents } from "./sse.js";

const SERVED_BASE = document.querySelector('meta[name="llmmesh-api-base"]').content;
const BACKENDS_EVERY_MS = 5000;
const RELOAD_AFTER_TYPING_MS = 400;
const $ = (sel) => document.querySelector(sel);

const state = { pattern: "chat", bodyEdited: false, abort: null, reload: null };

// --- the connection: API base URL and API key ---------------------------------------------------
// Both live in sessionStorage: this tab only, gone when it closes (never localStorage). The key is
// attached in apiFetch alone, so it goes nowhere but the API.

const STORED = { base: "llmmesh.apiBase", key: "llmmesh.apiKey" };
const trimBase = (url) => url.trim().replace(/\/+$/, "");

function apiBase() {
  return trimBase(sessionStorage.getItem(STORED.base) ?? SERVED_BASE);
}

function apiKey() {
  return sessionStorage.getItem(STORED.key) || "";
}

function crossOrigin() {
  try {
    return new URL(apiBase() || location.href, location.href).origin !== location.origin;
  } catch {
    return false;
  }
}

function apiFetch(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const key = apiKey();
  if (key) headers.set("authorization", `Bearer ${key}`);
  // No cookies, same origin or not: the key is the only credential.
  return fetch(apiBase() + path, { ...init, headers, credentials: "omit" });
}

function remember(name, value) {
  if (value) sessionStorage.setItem(name, value);
  else sessionStorage.removeItem(name);
}

function setConnection(text, tone = "") {
  const s = $("#connection-status");
  s.textContent = text;
  s.className = `status ${tone}`;
  $("#api-key").classList.toggle("bad", tone === "bad");
}

// What an answer says about the key; a refused key is the first thing to show.
function noteAuth(status) {
  if (status === 401) setConnection(`HTTP 401: the API needs a valid key${apiKey() ? " (this one was refused)" : ""}`, "bad");
  else if (status === 403) setConnection("HTTP 403: this key may not call that service", "bad");
  else if (status < 400) setConnection(apiKey() ? "key sent with every call" : "", "ok");
}

// A failed answer in words: HTTP status, the mesh's own message, what to do about it.
function httpProblem(res, body) {
  const hint = { 401: " (enter an API key above)", 403: " (the key lacks this service's scope)" }[res.status] || "";
  return `HTTP ${res.status}${body.message ? `: ${body.message}` : ` ${res.statusText}`}${hint}`;
}

// fetch() says only "Failed to fetch" when the browser refused the answer (CORS) or none came.
function networkProblem(err) {
  if (!crossOrigin()) return err.message;
  return `${err.message}: no answer from ${apiBase()}, or its CORS policy does not allow this page's origin ` +
    `(${location.origin})`;
}

function initConnection() {
  const base = $("#api-base");
  const key = $("#api-key");
  base.value = sessionStorage.getItem(STORED.base) ?? "";
  if (SERVED_BASE) base.placeholder = SERVED_BASE;
  key.value = apiKey();
  const reloadSoon = () => {
    clearTimeout(state.reload);
    state.reload = setTimeout(() => { loadModels(); refreshBackends(); }, RELOAD_AFTER_TYPING_MS);
  };
  base.addEventListener("input", () => {
    const value = trimBase(base.value);
    let ok = value === "";
    try { ok = ok || ["http:", "https:"].includes(new URL(value).protocol); } catch { ok = false; }
    base.classList.toggle("bad", !ok);
    if (!ok) return setConnection("the API base URL must be http(s)://host[:port]", "bad");
    remember(STORED.base, value);
    reloadSoon();
  });
  key.addEventListener("input", () => { remember(STORED.key, key.value.trim()); reloadSoon(); });
  $("#forget-key").addEventListener("click", () => { key.value = ""; remember(STORED.key, ""); reloadSoon(); });
}

// --- models and backends ----------------------------------------------------------------------

async function getJSON(path, init = {}) {
  let res;
  try {
    res = await apiFetch(path, { ...init, headers: { accept: "application/json" } });
  } catch (err) {
    throw new Error(networkProblem(err));
  }
  const body = await res.json().catch(() => ({}));
  noteAuth(res.status);
  if (!res.ok) throw new Error(httpProblem(res, body));
  return body;
}

async function loadModels() {
  const select = $("#model");
  try {
    const { models = [], default_model: def = "" } = await getJSON("/api/v1/inference/models");
    const names = models.flatMap((m) => [m.name, ...(m.aliases || [])]);
    select.replaceChildren(el("option", { value: "", text: `server default${def ? ` (${def})` : ""}` }),
      ...names.map((n) => el("option", { value: n, text: n })));
    if (def && names.includes(def)) select.value = def;
    select.dataset.loaded = "true";
    renderModelChoices($("#compare-models"), names);
  } catch (err) {
    select.replaceChildren(el("option", { value: "", text: `server default (models: ${err.message})` }));
  }
  refreshBody();
}

const HEALTH = { BACKEND_HEALTH_HEALTHY: ["healthy", "ok"], BACKEND_HEALTH_UNHEALTHY: ["unhealthy", "bad"] };

async function refreshBackends() {
  const body = $("#backends tbody");
  try {
    const { backends = [] } = await getJSON("/api/v1/inference/backends");
    body.replaceChildren(...backends.map((b) => {
      const [health, tone] = HEALTH[b.health] || ["unknown", "warn"];
      const circuit = (b.circuit || "").replace("CIRCUIT_STATE_", "").toLowerCase();
      return el("tr", { "data-backend": b.name },
        el("td", {}, el("span", { class: `dot ${tone}`, title: health }), ` ${b.name}`),
        el("td", { text: health }), el("td", { text: circuit }), el("td", { text: String(b.in_flight ?? 0) }),
        el("td", { class: "muted", text: (b.loaded_models && b.loaded_models.length ? b.loaded_models : b.models || []).join(", ") }),
        el("td", { class: "muted", text: b.last_error || "" }));
    }));
    $("#backends-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "bad-text", text: `unavailable: ${err.message}` })));
  }
}

// --- the form and the request body ------------------------------------------------------------

function renderForm() {
  const p = PATTERNS[state.pattern];
  $("#hint").textContent = p.hint;
  $("#route").textContent = `POST ${p.path}`;
  const form = $("#fields");
  form.replaceChildren(...p.fields.map((f) => {
    let input;
    if (f.kind === "textarea") input = el("textarea", { rows: "3" });
    else if (f.kind === "select") input = el("select", {}, ...f.options.map((o) => el("option", { value: o, text: o })));
    else input = el("input", { type: f.kind === "number" ? "number" : "text", step: f.step || "1" });
    input.name = f.name;
    input.id = `field-${f.name}`;
    input.value = f.value;
    input.addEventListener("input", refreshBody);
    return el("label", { for: input.id }, el("span", { text: f.label }), input);
  }));
  state.bodyEdited = false;
  refreshBody();
}

function formValues() {
  const values = {};
  for (const input of $("#fields").querySelectorAll("[name]")) values[input.name] = input.value;
  return values;
}

// The JSON textarea follows the form until someone edits it by hand.
function refreshBody() {
  if (state.bodyEdited) return;
  const p = PATTERNS[state.pattern];
  $("#body").value = JSON.stringify(p.build(formValues(), $("#model").value), null, 2);
  $("#body-note").textContent = "generated from the form";
}

// --- running a stream -------------------------------------------------------------------------

function setStatus(text, tone = "") {
  const s = $("#status");
  s.textContent = text;
  s.className = `status ${tone}`;
}

function run() {
  let body;
  try {
    body = JSON.parse($("#body").value);
  } catch (err) {
    setStatus(`the request body is not valid JSON: ${err.message}`, "bad");
    return;
  }
  const ui = { output: "#output", run: "#run", cancel: "#cancel", setStatus };
  return stream(PATTERNS[state.pattern].path, body, new RunView($(ui.output)), ui);
}

function runCompare() {
  const body = compareBody($("#compare-form"));
  const ui = { output: "#compare-output", run: "#compare-run", cancel: "#compare-cancel", setStatus: setCompareStatus };
  return stream(COMPARE_PATH, body, new CompareView($(ui.output), body[0].run.models), ui);
}

function setCompareStatus(text, tone = "") {
  const s = $("#compare-status");
  s.textContent = text;
  s.className = `status ${tone}`;
}

// POSTs `body` to the streaming route `path` and renders its SSE events into `view`; `ui` names the
// tab's output, run and cancel buttons, and how it shows its status.
async function stream(path, body, view, ui) {
  const setStatus = ui.setStatus;
  $(ui.output).dataset.terminal = "running";
  const abort = new AbortController();
  state.abort = abort;
  $(ui.run).disabled = true;
  $(ui.cancel).disabled = false;
  const started = performance.now();
  setStatus("connecting…", "warn");
  try {
    const res = await apiFetch(path, {
      method: "POST", headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(body), signal: abort.signal,
    });
    noteAuth(res.status);
    if (!res.ok || !(res.headers.get("content-type") || "").includes("text/event-stream")) {
      const status = await res.json().catch(() => ({ code: 2, message: `${res.status} ${res.statusText}` }));
      const error = status.code !== undefined ? status : { code: 2, message: JSON.stringify(status) };
      view.event({ error: res.ok ? error : { ...error, http_status: res.status } });
    } else {
      setStatus("streaming…", "warn");
      for await (const ev of sseEvents(res)) {
        view.event(ev);
        setStatus(`streaming… ${view.count} events`, "warn");
      }
    }
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    if (view.httpStatus) setStatus(`failed: HTTP ${view.httpStatus} after ${secs} s`, "bad");
    else if (view.terminal === "error") setStatus(`failed after ${secs} s`, "bad");
    else if (view.terminal) setStatus(`${view.terminal} after ${secs} s · ${view.count} events`, "ok");
    else setStatus(`stream ended after ${secs} s without a terminal event`, "bad");
  } catch (err) {
    if (err.name === "AbortError") setStatus("cancelled", "warn");
    else {
      view.event({ error: { code: 14, message: networkProblem(err) } });
      setStatus("failed", "bad");
    }
  } finally {
    state.abort = null;
    $(ui.run).disabled = false;
    $(ui.cancel).disabled = true;
    $(ui.output).dataset.terminal = view.terminal || "none";
  }
}

// --- wiring -----------------------------------------------------------------------------------

function init() {
  const select = $("#pattern");
  select.replaceChildren(...Object.entries(PATTERNS).map(([id, p]) => el("option", { value: id, text: p.label })));
  select.value = state.pattern;
  select.addEventListener("change", () => { state.pattern = select.value; renderForm(); });
  $("#model").addEventListener("change", () => { state.bodyEdited = false; refreshBody(); });
  $("#body").addEventListener("input", () => { state.bodyEdited = true; $("#body-note").textContent = "edited by hand"; });
  $("#reset-body").addEventListener("click", () => { state.bodyEdited = false; refreshBody(); });
  $("#run").addEventListener("click", run);
  $("#cancel").addEventListener("click", () => state.abort?.abort());
  $("#compare-run").addEventListener("click", runCompare);
  $("#compare-cancel").addEventListener("click", () => state.abort?.abort());
  renderCriteriaChoices($("#compare-criteria"));
  const history = new History(getJSON, $);
  $("#history-refresh").addEventListener("click", () => history.refresh());
  $("#history-more").addEventListener("click", () => history.refresh(true));
  $("#history-pattern").addEventListener("change", () => history.refresh());
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll("#tabs button")) t.classList.toggle("active", t === tab);
      for (const view of document.querySelectorAll("main[data-view]")) view.hidden = view.dataset.view !== tab.dataset.tab;
      if (tab.dataset.tab === "history") history.refresh();
    });
  }
  initConnection();
  renderForm();
  loadModels();
  refreshBackends();
  setInterval(refreshBackends, BACKENDS_EVERY_MS);
}

init();
