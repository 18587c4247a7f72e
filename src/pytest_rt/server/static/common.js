// Shared helpers for the pytest-rt dashboard pages.
//
// Everything that comes from a test run (node ids, messages, custom data, env
// names) is untrusted: it reaches the DOM only through textContent and
// createElement, never as HTML. URLs are built with encodeURIComponent.

// The dashboard's root: "/", or "/rt/" when a proxy serves it under a path
// (pytest-rt serve --root-path /rt). This module is <root>/static/common.js, so every
// page and API URL is built from here, whatever page loaded it.
export const BASE = new URL("../", import.meta.url).pathname;

// ---- statuses ---------------------------------------------------------------
//
// Which statuses and outcomes exist is the protocol's (pytest_rt/protocol.py): every
// page's shell carries its vocabulary() in <meta name="pytest-rt-protocol">, the
// document /protocol.json serves. What is below is how the dashboard shows them.

/** The protocol's words: statuses, shown_statuses, job_statuses, outcomes, status_of... */
export const PROTOCOL = JSON.parse(document.querySelector('meta[name="pytest-rt-protocol"]').content);

// The one status table: each word's label, and whether a test with it failed (its
// message is open to read) or is not over yet. A word it does not know shows as itself.
const STATUS = {
  passed: { label: "Passed" },
  failed: { label: "Failed", failure: true },
  error: { label: "Error", failure: true },
  skipped: { label: "Skipped" },
  running: { label: "Running", unfinished: true },
  not_started: { label: "Not started", unfinished: true },
  aborted: { label: "Aborted", failure: true },
  interrupted: { label: "Interrupted" },
  abandoned: { label: "Abandoned" },
  xfailed: { label: "xfail" },
  xpassed: { label: "xpass" },
};

// The orders statuses are shown in: the status filter puts failures first, counts and
// progress bars begin with the passes; the jobs list shows running jobs first, then
// abandoned ones (runs the receiver stopped hearing from, --stale-after), then the rest.
const FILTER_ORDER = ["failed", "error", "passed", "skipped", "running", "not_started", "aborted"];
const COUNT_ORDER = ["passed", "failed", "error", "skipped", "running", "aborted", "not_started"];
export const JOB_RANK = { running: 0, abandoned: 1 };

/** `words` in `order` (words it does not name last, as they come). */
function ordered(words, order) {
  const rank = (word) => (order.includes(word) ? order.indexOf(word) : order.length);
  return [...words].sort((a, b) => rank(a) - rank(b));
}

/** A test's statuses as the status filter lists them. */
export const TEST_STATUSES = ordered(PROTOCOL.shown_statuses, FILTER_ORDER);
/** A test's statuses as counts list them. */
const COUNTED = ordered(PROTOCOL.shown_statuses, COUNT_ORDER);

/** The table's entry of a word (a status comes from the run: never "__proto__"'s). */
function entry(status) {
  return Object.hasOwn(STATUS, status) ? STATUS[status] : {};
}

/** A human label for a status or outcome. */
export function label(status) {
  return entry(status).label || String(status);
}

/** A test that failed (failed, error, aborted): its message is worth opening. */
export function isFailure(status) {
  return Boolean(entry(status).failure);
}

/** A test not over yet (running, not started): no result, no final duration. */
export function isUnfinished(status) {
  return Boolean(entry(status).unfinished);
}

/** A status pytest gave the test (not one the receiver shows: running, aborted...). */
export function isResult(status) {
  return PROTOCOL.statuses.includes(status);
}

/**
 * Create an element. `props` holds className, text, href, title and
 * data-/aria- attributes; children are nodes or strings (added as text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else if (key === "open") node.open = Boolean(value);
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `node`. */
export function setChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** Set textContent only when it changes (keeps text selections stable). */
export function setText(node, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function jobUrl(jobId) {
  return BASE + "jobs/" + encodeURIComponent(jobId);
}

/** A test's history page; of one project (and branch) when given, as history is kept. */
export function testUrl(nodeid, { project = null, branch = null } = {}) {
  const params = new URLSearchParams({ nodeid });
  if (project) params.set("project", project);
  if (branch) params.set("branch", branch);
  return BASE + "tests?" + params;
}

/**
 * A job's title, the one every page shows: its custom id when given, else
 * "project · branch · #build" (the parts known), else "Job 1a2b3c4d". Of a Job, or of
 * a result of a test's history (its job's branch and build beside its other fields).
 */
export function jobTitle(job) {
  if (job.custom_id) return String(job.custom_id);
  const ci = job.ci || { branch: job.branch, build: job.build };
  const parts = [job.project, ci.branch, ci.build ? `#${ci.build}` : null].filter(Boolean);
  return parts.length ? parts.join(" · ") : `Job ${String(job.job_id).slice(0, 8)}`;
}

/**
 * `url` when it is an absolute http(s) URL, else null. A build URL comes from the
 * client that posted the run: anything else (javascript:, data:...) is never a link.
 */
export function safeHttpUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * Where a job comes from, as small labelled parts: project, branch, short commit
 * (linked to the CI build when its URL is known), pull request, custom id.
 */
export function identityParts(job, { withCustomId = true } = {}) {
  const ci = job.ci || {};
  const parts = [];
  if (job.project) parts.push(el("span", { className: "tag id-project", title: "project" }, job.project));
  if (ci.branch) parts.push(el("span", { className: "id-branch", title: "branch" }, ci.branch));
  const link = safeHttpUrl(ci.build_url);
  if (ci.commit) {
    const short = String(ci.commit).slice(0, 8);
    const title = `commit ${ci.commit}${link ? " · open the CI build" : ""}`;
    parts.push(link
      ? el("a", { className: "id-commit mono", href: link, title, rel: "noopener noreferrer", target: "_blank" }, short)
      : el("span", { className: "id-commit mono", title }, short));
  } else if (link) {
    parts.push(el("a", { className: "id-commit", href: link, rel: "noopener noreferrer", target: "_blank" },
      ci.build ? `build #${ci.build}` : "CI build"));
  }
  if (ci.pull_request) parts.push(el("span", { className: "id-pr", title: "pull request" }, `PR ${ci.pull_request}`));
  if (withCustomId && job.custom_id) {
    parts.push(el("span", { className: "id-custom", title: "custom id (--rt-custom-id)" }, job.custom_id));
  }
  return parts;
}

/** A "Loading…" line with a spinner, for a part of a page waiting for its first answer. */
export function loadingIndicator(text = "Loading…") {
  return el("div", { className: "loading", role: "status" }, el("span", { className: "spinner", "aria-hidden": "true" }), text);
}

/** A status pill: "Passed", "Failed"... coloured by status. */
export function badge(status, extraClass = "") {
  return el("span", {
    className: `badge badge-${safeToken(status)} ${extraClass}`.trim(),
    text: label(status),
  });
}

/** Reduce a value to a CSS class token, so data never picks an arbitrary class. */
export function safeToken(value) {
  return String(value).toLowerCase().replace(/[^a-z0-9_-]/g, "") || "unknown";
}

/** 0.412 -> "412 ms", 3.2 -> "3.2 s", 125 -> "2m 05s", 3720 -> "1h 02m". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  }
  const h = Math.floor(s / 3600);
  return `${h}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

const DATE_FMT = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const TIME_FMT = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const SHORT_DATE_FMT = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});
const SHORT_TIME_FMT = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/**
 * Unix seconds -> local date and time; today's times without the date.
 * `short` leaves out the seconds and the year, for lists.
 */
export function fmtTime(unixSeconds, { short = false } = {}) {
  if (unixSeconds === null || unixSeconds === undefined || !Number.isFinite(unixSeconds)) {
    return "–";
  }
  const date = new Date(unixSeconds * 1000);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) {
    return `today ${(short ? SHORT_TIME_FMT : TIME_FMT).format(date)}`;
  }
  return (short ? SHORT_DATE_FMT : DATE_FMT).format(date);
}

/** Unix seconds -> ISO string, for title tooltips. */
export function isoTime(unixSeconds) {
  if (!Number.isFinite(unixSeconds)) return "";
  return new Date(unixSeconds * 1000).toISOString();
}

export function nowSeconds() {
  return Date.now() / 1000;
}

/** Number of tests that have a final result (passed, failed, ... aborted). */
export function finishedCount(job) {
  const counts = job.counts || {};
  return COUNTED.filter((status) => !isUnfinished(status))
    .reduce((sum, status) => sum + (counts[status] || 0), 0);
}

/**
 * Accept `next` over `prev` for the same job unless it is an older snapshot:
 * an event that was already on its way when a fresh JSON copy arrived.
 */
export function isNewerJob(prev, next) {
  if (!prev) return true;
  // An abandoned job that was heard from again: its aborted tests run again.
  if (prev.status === "abandoned" && next.status === "running") return true;
  if ((next.total || 0) !== (prev.total || 0)) return (next.total || 0) > (prev.total || 0);
  const a = finishedCount(prev);
  const b = finishedCount(next);
  if (b !== a) return b > a;
  if (prev.status !== "running" && next.status === "running") return false;
  return true;
}

const TEST_RANK = { not_started: 0, running: 1 };

/** Same for a test: a test never goes back from finished to running. */
export function isNewerTest(prev, next) {
  if (!prev) return true;
  if (prev.status === "aborted" && next.status === "running") return true; // job revived
  const a = TEST_RANK[prev.status] ?? 2;
  const b = TEST_RANK[next.status] ?? 2;
  return b >= a;
}

/**
 * The line of a pytest failure text that says most: its first "E   ..." line
 * (the exception and its message), else the last line.
 */
export function headline(msg) {
  if (!msg) return "";
  const lines = String(msg).split("\n").map((line) => line.trimEnd()).filter(Boolean);
  const error = lines.find((line) => /^E\s/.test(line));
  const pick = error ? error.replace(/^E\s+/, "") : lines[lines.length - 1];
  return (pick || "").slice(0, 300);
}

/**
 * A failure's message, folded to its headline (or `empty` when it has none): the whole
 * text shows when opened, then `more` (the captured output...).
 */
export function failureMessage(msg, { open = false, empty = "", more = null } = {}) {
  return el("details", { className: "msg", open },
    el("summary", {}, el("span", { className: "msg-head" }, headline(msg) || empty)),
    msg ? el("pre", { className: "msg-body" }, msg) : null,
    more);
}

/** GET a JSON document; throws an Error with the HTTP status on failure. */
export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

/**
 * Follow server-sent events at `url`. `onEvent(data)` gets each parsed event;
 * `onSync()` runs on every (re)connection, so the page catches up with what it
 * missed by fetching the JSON again; `onState("live"|"reconnecting")` drives
 * the connection indicator. EventSource reconnects by itself after network
 * errors; when it gives up (an HTTP error answer) this reopens it later.
 */
export function follow(url, { onEvent, onSync, onState }) {
  let source = null;
  let retry = null;
  const open = () => {
    retry = null;
    source = new EventSource(url);
    source.onopen = () => {
      onState("live");
      onSync();
    };
    source.onmessage = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return; // a ping or a line this page does not understand
      }
      if (data && typeof data === "object") onEvent(data);
    };
    source.onerror = () => {
      onState("reconnecting");
      if (source.readyState === EventSource.CLOSED && retry === null) {
        retry = setTimeout(open, 3000);
      }
    };
  };
  open();
  window.addEventListener("pagehide", () => source && source.close());
}

/** The connection indicator in the page header. */
export function connectionIndicator() {
  const node = document.getElementById("connection");
  return (state) => {
    if (!node) return;
    node.dataset.state = state;
    setText(node, state === "live" ? "Live" : "Reconnecting…");
    node.title = state === "live"
      ? "Receiving updates from the server as they happen"
      : "Lost the connection to the server; retrying";
  };
}

/**
 * A segmented progress bar: one segment per final status, sized by its share
 * of `total`, plus a striped segment for running tests. Widths are set through
 * the CSSOM (element.style), which the page's style-src 'self' policy allows.
 */
export function progressBar() {
  const bar = el("div", { className: "progress", role: "progressbar", "aria-valuemin": 0 });
  const segments = {};
  // Tests not started are the bar's empty part.
  for (const status of COUNTED.filter((s) => s !== "not_started")) {
    segments[status] = el("span", { className: `seg seg-${safeToken(status)}` });
    bar.append(segments[status]);
  }
  bar.update = (job) => {
    const total = Math.max(job.total || 0, 0);
    const counts = job.counts || {};
    for (const [status, seg] of Object.entries(segments)) {
      const share = total ? (100 * (counts[status] || 0)) / total : 0;
      seg.style.width = `${share}%`;
    }
    const done = finishedCount(job);
    bar.setAttribute("aria-valuemax", String(total));
    bar.setAttribute("aria-valuenow", String(done));
    bar.title = `${done} of ${total} tests finished`;
  };
  return bar;
}

// pytest's outcomes that another status holds (protocol's status_of): an xfail is a skip,
// an xpass a pass.
const INSIDE = Object.entries(PROTOCOL.status_of).filter(([outcome, status]) => outcome !== status);

/**
 * Small coloured count chips: "6 passed", "2 failed", "4 skipped (1 xfailed)"... (zeros
 * left out). One set of counts that adds up to the job's total: xfailed and xpassed
 * are shown inside the status that holds them, never beside it.
 */
export function countChips(job) {
  const counts = job.counts || {};
  const outcomes = job.outcome_counts || {};
  const chips = [];
  for (const status of COUNTED) {
    const n = counts[status] || 0;
    if (!n) continue;
    const inner = INSIDE.filter(([outcome, holder]) => holder === status && outcomes[outcome])
      .map(([outcome]) => `${outcomes[outcome]} ${outcome}`);
    const sub = inner.length ? ` (${inner.join(", ")})` : "";
    chips.push(el("span", { className: `chip chip-${safeToken(status)}`, title: label(status), "data-status": status },
      el("strong", { text: n }), ` ${label(status).toLowerCase()}`,
      sub ? el("span", { className: "chip-sub" }, sub) : null));
  }
  return chips;
}

/** Seconds a job has been running, or its final duration. */
export function jobDuration(job, receivedAt) {
  if (job.status === "running") {
    if (Number.isFinite(job.start_time)) return Math.max(0, nowSeconds() - job.start_time);
    if (Number.isFinite(job.duration)) return job.duration + (nowSeconds() - receivedAt);
    return null;
  }
  if (Number.isFinite(job.duration)) return job.duration;
  if (Number.isFinite(job.start_time) && Number.isFinite(job.stop_time)) {
    return job.stop_time - job.start_time;
  }
  return null;
}

/** The ETA text of a running job, counting down from when it was received. */
export function jobEta(job, receivedAt) {
  if (job.status !== "running" || !Number.isFinite(job.eta_seconds)) return "";
  const left = job.eta_seconds - (nowSeconds() - receivedAt);
  return left <= 1 ? "any moment" : `~${fmtDuration(left)} left`;
}

/** Run `fn` at most once per animation frame however often it is asked for. */
export function batched(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}
