// msgstatus support desk: find a message by id, phone number or reference key.
// One ES module, no framework, no build step; it calls the read API's JSON endpoints
// (docs/design.md §3) on this origin only. The API key lives in this tab's sessionStorage:
// never in a URL, never in a log.

const API = "/api/messagestatus";
const KEY_STORE = "msgstatus-desk-key";
const PAGE = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PHONE = /^\+?[0-9\s().-]+$/;
const SEPARATORS = /[\s().-]/g;

// The status model (docs/design.md §2): a higher rank wins; REJECTED and UNDELIVERED tie.
const RANK = { PROVIDER_ACCEPTANCE: 0, SENT: 1, REJECTED: 2, UNDELIVERED: 2, DELIVERED: 3, READ: 4 };
const FINAL = new Set(["REJECTED", "UNDELIVERED", "DELIVERED", "READ"]);
const HELP = {
  PROVIDER_ACCEPTANCE:
    "The provider accepted the message for sending. No delivery report has arrived yet.",
  SENT: "The provider handed the message to the operator network. A delivery report may still " +
    "come; some operators never send one, so SENT can be the last word.",
  DELIVERED: "The operator reports the message reached the phone.",
  READ: "The recipient opened the message (RCS read receipt). It was delivered too.",
  UNDELIVERED: "The message was handed to the operator but did not reach the phone (phone off " +
    "or unreachable until it expired, number no longer in use...). See the provider's code below.",
  REJECTED: "The message was refused before it was sent on (invalid number, blocked sender, " +
    "filtering, account limits). It was never transmitted.",
};

// Country calling codes of one and two digits (ITU-T E.164); all others have three.
const CC1 = new Set(["1", "7"]);
const CC2 = new Set(("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 " +
  "57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98").split(" "));

const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  search: null, // {kind: "id" | "phone" | "reference", value, label}
  rows: [],
  next: null,
  codes: null,
};

// --- small helpers ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function classify(text) {
  const value = text.trim();
  if (UUID.test(value)) return { kind: "id", value: value.toLowerCase(), label: value.toLowerCase() };
  if (PHONE.test(value) && /[0-9]/.test(value)) {
    let compact = value.replace(SEPARATORS, "");
    if (compact.startsWith("00")) compact = "+" + compact.slice(2);
    else if (!compact.startsWith("+")) compact = "+" + compact;
    return { kind: "phone", value: compact, label: maskPhone(compact) };
  }
  return { kind: "reference", value, label: `reference ${value}` };
}

export function maskPhone(e164) {
  const digits = e164.replace(/^\+/, "");
  let cc = digits.slice(0, 3);
  if (CC1.has(digits.slice(0, 1))) cc = digits.slice(0, 1);
  else if (CC2.has(digits.slice(0, 2))) cc = digits.slice(0, 2);
  const rest = digits.slice(cc.length);
  if (rest.length <= 4) return `+${cc} ${"•".repeat(rest.length)}`;
  return `+${cc} ••• ••• ${rest.slice(-4)}`;
}

function utc(iso) {
  // "2026-11-30T10:15:02Z" or with milliseconds -> "2026-11-30 10:15:02 UTC"
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "$1 UTC") : "";
}

function timeCell(tag, iso) {
  const cell = el(tag, { class: "time", text: utc(iso) });
  if (iso) {
    const time = new Date(iso);
    if (!Number.isNaN(time.getTime())) cell.title = `Your time: ${time.toLocaleString()}`;
  }
  return cell;
}

function elapsed(fromIso, toIso) {
  const ms = new Date(toIso).getTime() - new Date(fromIso).getTime();
  if (!Number.isFinite(ms)) return "";
  const sign = ms < 0 ? "-" : "+";
  let s = Math.round(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  parts.push(`${s}s`);
  return sign + parts.join(" ");
}

function badge(status) {
  const final = FINAL.has(status);
  return el("span", { class: `badge ${status.toLowerCase()}`, title: HELP[status] || "" },
    status, el("span", { class: "phase", text: final ? " · final" : " · in flight" }));
}

function reference(ref) {
  const parts = ["service", "action", "key"].map((k) => ref?.[k] ?? "");
  return parts.some(Boolean) ? parts.join(" / ") : "—";
}

// --- talking to the API ----------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path) {
  let response;
  try {
    response = await fetch(path, {
      headers: { "X-Api-Key": state.key, "X-Msgstatus-Client": "desk", Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new Problem(0, null);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new Problem(response.status, body);
  return { body, link: response.headers.get("Link") };
}

function nextLink(header) {
  const match = /<([^>]+)>\s*;\s*rel="next"/.exec(header || "");
  // Only ever follow a path of this API on this origin.
  return match && match[1].startsWith(`${API}/`) ? match[1] : null;
}

function explain(error, search) {
  if (!(error instanceof Problem)) return "Something went wrong in this page; reload it.";
  const detail = error.body?.detail ? ` ${error.body.detail}.` : "";
  switch (error.status) {
    case 0:
      return "The API cannot be reached (network error). Check the connection and try again.";
    case 403:
      return "The API key was refused (403). Enter a valid key above.";
    case 404:
      return `No message with id ${search.value} (404). It may be older than the retention ` +
        "period, or not accepted yet.";
    case 400:
      return `The search was not accepted (400).${detail}`;
    case 503:
      return "The status store is unavailable right now (503). Try again in a few seconds.";
    default:
      return `The API answered ${error.status}.${detail}`;
  }
}

// --- showing things --------------------------------------------------------------------

function notice(text) {
  const box = $("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

function show(section) {
  $("results").hidden = section !== "results";
  $("detail").hidden = section !== "detail";
}

function keyState() {
  $("key-state").textContent = state.key ? "Key set for this tab." : "No key set.";
}

function rowFor(doc) {
  const m = doc.message;
  const open = el("button", { type: "button", class: "open", text: "Open" });
  open.setAttribute("aria-label", `Open message ${m.id}`);
  open.addEventListener("click", () => go(m.id));
  const provider = m.provider || {};
  return el("tr", {},
    timeCell("td", m.providerAcceptanceAt),
    el("td", {}, badge(m.status)),
    el("td", { text: m.channel }),
    el("td", { class: "time", text: state.search.kind === "phone" ? maskPhone(state.search.value) : "" }),
    el("td", { text: reference(m.reference) }),
    el("td", {}, el("span", { text: provider.name || "" }), el("br"),
      el("code", { text: provider.id || "" })),
    timeCell("td", m.statusChangedAt),
    el("td", { text: m.sms?.segments ?? "" }),
    el("td", {}, open));
}

function renderRows() {
  const body = $("rows").tBodies[0];
  body.replaceChildren(...state.rows.map(rowFor));
  $("older").hidden = !state.next;
  $("results-title").textContent = `Messages for ${state.search.label}`;
  const n = state.rows.length;
  $("count").textContent = n === 0
    ? `No messages for ${state.search.label}.`
    : `${n} message${n === 1 ? "" : "s"} for ${state.search.label}, newest first` +
      (state.next ? "; older ones can be loaded." : ".");
}

async function loadCodes() {
  if (state.codes === null) {
    try {
      const response = await fetch("/desk/provider-codes.json", { cache: "no-store" });
      state.codes = response.ok ? (await response.json()).rows : [];
    } catch {
      state.codes = [];
    }
  }
  return state.codes;
}

function copyButton(text, what) {
  const button = el("button", { type: "button", class: "copy", text: "Copy" });
  button.setAttribute("aria-label", `Copy ${what}`);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      // No clipboard permission: select the text so Ctrl+C copies it.
      const selection = window.getSelection();
      const range = document.createRange();
      range.selectNodeContents(button.previousElementSibling);
      selection.removeAllRanges();
      selection.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
  });
  return button;
}

function fact(term, ...value) {
  return [el("dt", { text: term }), el("dd", {}, ...value)];
}

async function renderDetail(doc, history) {
  const m = doc.message;
  const provider = m.provider || {};
  $("detail-title").textContent = `Message ${m.id}`;
  $("facts").replaceChildren(
    ...fact("Message id", el("code", { text: m.id }), " ", copyButton(m.id, "message id")),
    ...fact("Status", badge(m.status)),
    ...fact("Channel", m.channel),
    ...fact("Sent (provider acceptance)", timeCell("span", m.providerAcceptanceAt)),
    ...fact("Last change", timeCell("span", m.statusChangedAt)),
    ...fact("Reference", reference(m.reference)),
    ...fact("Provider", provider.name || ""),
    ...fact("Provider id", el("code", { text: provider.id || "" }), " ",
      provider.id ? copyButton(provider.id, "provider id") : null),
    ...fact("Provider status", [provider.status, provider.code && `code ${provider.code}`,
      provider.message].filter(Boolean).join(" · ")),
    ...(m.sms ? fact("Segments", String(m.sms.segments)) : []),
  );
  $("status-help").textContent = HELP[m.status] || "";

  const events = history.events || [];
  const accepted = events.find((e) => e.status === "PROVIDER_ACCEPTANCE")?.occurredAt
    || m.providerAcceptanceAt;
  let best = -1;
  const rows = events.map((event) => {
    const rank = RANK[event.status] ?? 0;
    const late = rank < best;
    best = Math.max(best, rank);
    const p = event.provider || {};
    const row = el("tr", late ? { class: "late" } : {},
      el("td", {}, badge(event.status)),
      timeCell("td", event.occurredAt),
      el("td", { text: elapsed(accepted, event.occurredAt) }),
      el("td", { text: p.status || "" }),
      el("td", { text: p.code || "" }),
      el("td", { text: p.message || "" }),
      el("td", { text: late ? "Late: reported after a higher status; did not change the status" : "" }));
    return row;
  });
  $("timeline").tBodies[0].replaceChildren(...rows);

  const name = (provider.name || "").toLowerCase();
  const word = (provider.status || "").toLowerCase();
  const codes = (await loadCodes()).filter((r) => r.provider === name || r.provider.startsWith(`${name}-`));
  $("codes-title").textContent = codes.length
    ? `What ${provider.name}'s statuses mean`
    : `No status table for provider ${provider.name || "(none)"}`;
  $("codes").tBodies[0].replaceChildren(...codes.map((r) => {
    const words = [...r.when.matchAll(/`([^`]+)`/g)].map((x) => x[1].toLowerCase());
    const current = word && words.some((w) => w === word || (w.endsWith("*") && word.startsWith(w.slice(0, -1))));
    return el("tr", current ? { class: "current" } : {},
      el("td", { text: r.when.replaceAll("`", "") + (current ? " (this message)" : "") }),
      el("td", { text: r.status }),
      el("td", { text: r.retry ? `${r.retry}: ${r.retryNote}` : "—" }),
      el("td", { text: r.why.replaceAll("`", "") }));
  }));
}

// --- push deliveries (GET .../deliveries, docs/push.md) -----------------------------------

const PUSH_STATE = {
  pending: "waiting for its next attempt",
  delivered: "the endpoint answered 2xx",
  dead: "given up after the last attempt",
  gone: "the endpoint answered 410 Gone and is disabled",
};

function msTime(tag, ms) {
  return timeCell(tag, Number.isFinite(ms) ? new Date(ms).toISOString() : "");
}

function latency(ms) {
  if (!Number.isFinite(ms)) return "";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function renderDeliveries(found) {
  const endpoints = found.body?.endpoints || [];
  const attempts = found.body?.attempts || [];
  $("push-tables").hidden = !(endpoints.length || attempts.length);
  if (found.error) {
    $("push-state").textContent = `The delivery log could not be loaded (${explainShort(found.error)}).`;
  } else if (!endpoints.length && !attempts.length) {
    $("push-state").textContent = "No push deliveries for this message: its acceptance named " +
      "no webhook and no subscription matches it, or its status has not changed since acceptance.";
  } else {
    const n = attempts.length;
    $("push-state").textContent = `${endpoints.length} endpoint${endpoints.length === 1 ? "" : "s"}, ` +
      `${n} attempt${n === 1 ? "" : "s"} recorded.`;
  }
  const hostOf = new Map();
  for (const a of [...attempts].reverse()) hostOf.set(a.endpoint, a.host);
  $("push-endpoints").tBodies[0].replaceChildren(...endpoints.map((e) => el("tr", {},
    el("td", {}, el("code", { text: e.endpoint })),
    el("td", { text: hostOf.get(e.endpoint) || "" }),
    el("td", {}, el("span", { class: `outcome ${e.state}`, text: e.state }),
      ` · ${PUSH_STATE[e.state] || ""}`),
    el("td", { text: String(e.attempts ?? "") }),
    e.state === "pending" && Number.isFinite(e.nextAttemptAt)
      ? msTime("td", e.nextAttemptAt) : el("td", { text: "—" }))));
  $("push-log").tBodies[0].replaceChildren(...attempts.map((a) => el("tr", {},
    msTime("td", a.at),
    el("td", { text: a.host || "" }),
    el("td", {}, el("code", { text: a.endpoint })),
    el("td", {}, el("span", { class: `outcome ${a.outcome}`, text: a.outcome })),
    el("td", { text: a.httpStatus ? String(a.httpStatus) : "—" }),
    el("td", { text: latency(a.latencyMs) }),
    el("td", { text: a.error || "" }))));
}

function explainShort(error) {
  return error instanceof Problem && error.status ? `HTTP ${error.status}` : "network error";
}

// --- the flow --------------------------------------------------------------------------

function listPath(search) {
  const segment = encodeURIComponent(search.value); // "/" becomes %2F: one key
  const kind = search.kind === "phone" ? "phonenumber" : "reference";
  return `${API}/${kind}/${segment}?count=${PAGE}`;
}

async function run(text) {
  notice("");
  $("count").textContent = "";
  show(null);
  if (!text.trim()) return;
  const search = classify(text);
  state.search = search;
  if (!state.key) {
    notice("Enter the API key above to search.");
    return;
  }
  try {
    if (search.kind === "id") {
      const path = `${API}/${encodeURIComponent(search.value)}`;
      // A failing delivery log never hides the message: it is reported in its own section.
      const pushed = api(`${path}/deliveries`).then((r) => ({ body: r.body }), (error) => ({ error }));
      const [doc, history] = await Promise.all([api(path), api(`${path}/history`)]);
      await renderDetail(doc.body, history.body);
      renderDeliveries(await pushed);
      $("count").textContent = `Message ${search.value}: ${doc.body.message.status}.`;
      show("detail");
    } else {
      const { body, link } = await api(listPath(search));
      state.rows = body.messages || [];
      state.next = nextLink(link);
      renderRows();
      show(state.rows.length ? "results" : null);
    }
  } catch (error) {
    notice(explain(error, search));
  }
}

async function older() {
  if (!state.next) return;
  try {
    const { body, link } = await api(state.next);
    state.rows = state.rows.concat(body.messages || []);
    state.next = nextLink(link);
    renderRows();
  } catch (error) {
    notice(explain(error, state.search));
  }
}

function csvField(value, guard) {
  let text = String(value ?? "");
  // A spreadsheet would run a cell starting with = + - @ as a formula.
  if (guard && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(rows, search) {
  const header = ["sent_utc", "status", "final", "channel", "number", "reference_service",
    "reference_action", "reference_key", "provider", "provider_id", "last_change_utc", "segments"];
  const lines = [header.join(",")];
  for (const doc of rows) {
    const m = doc.message;
    const ref = m.reference || {};
    lines.push([
      csvField(m.providerAcceptanceAt), csvField(m.status), csvField(FINAL.has(m.status) ? "yes" : "no"),
      csvField(m.channel), csvField(search.kind === "phone" ? maskPhone(search.value) : ""),
      csvField(ref.service, true), csvField(ref.action, true), csvField(ref.key, true),
      csvField(m.provider?.name, true), csvField(m.provider?.id, true),
      csvField(m.statusChangedAt), csvField(m.sms?.segments ?? ""),
    ].join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

function exportCsv() {
  const blob = new Blob(["\ufeff", toCsv(state.rows, state.search)], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: `msgstatus-${state.search.kind}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function queryFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("q") || "";
}

function go(text) {
  const hash = `#q=${encodeURIComponent(text.trim())}`;
  if (location.hash === hash) run(text);
  else location.hash = hash; // -> hashchange -> run
}

function start() {
  for (const [status, text] of Object.entries(HELP)) {
    $("status-list").append(el("dt", {}, badge(status)), el("dd", { text }));
  }
  keyState();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("api-key").value.trim();
    $("api-key").value = "";
    if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
    else sessionStorage.removeItem(KEY_STORE);
    keyState();
    const q = queryFromHash();
    if (q) run(q);
    else notice("");
  });
  $("forget-key").addEventListener("click", () => {
    state.key = "";
    sessionStorage.removeItem(KEY_STORE);
    keyState();
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    go($("q").value);
  });
  $("older").addEventListener("click", older);
  $("export").addEventListener("click", exportCsv);
  $("back").addEventListener("click", () => history.back());
  window.addEventListener("hashchange", () => {
    const q = queryFromHash();
    $("q").value = q;
    run(q);
  });
  const q = queryFromHash();
  if (q) {
    $("q").value = q;
    run(q);
  } else if (!state.key) {
    notice("Enter the API key above to search.");
  }
  document.documentElement.dataset.ready = "true";
}

start();
