// The test page: one test's results across jobs, and whether it is flaky.
import {
  BASE, badge, connectionIndicator, el, failureMessage, fmtDuration, fmtTime, follow,
  getJSON, headline, isFailure, isResult, isoTime, jobTitle, jobUrl, label, safeToken, setChildren, setText,
  testUrl,
} from "./common.js";

const query = new URLSearchParams(location.search);
const nodeid = query.get("nodeid") || "";
// History (and flakiness) is per project, and per branch when asked: the same node id
// in two projects is two tests.
const project = query.get("project") || "";
const branch = query.get("branch") || "";
const setConnection = connectionIndicator();
const STRIP_LENGTH = 40;

function median(values) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function renderStats(results) {
  // The pass rate counts the results that passed or failed: not skips.
  const decided = results.filter((r) => isResult(r.status) && r.status !== "skipped");
  const passed = decided.filter((r) => r.status === "passed").length;
  const durations = results.map((r) => r.duration).filter(Number.isFinite);
  const last = results[0];
  const stats = [
    [el("dt", {}, "Runs"), el("dd", {}, String(results.length))],
    [el("dt", {}, "Pass rate"),
      el("dd", {}, decided.length ? `${Math.round((100 * passed) / decided.length)}%` : "–")],
    [el("dt", {}, "Median duration"), el("dd", {}, fmtDuration(median(durations)))],
  ];
  if (last) {
    stats.push([el("dt", {}, "Last result"),
      el("dd", {}, badge(last.status), " ", el("span", { className: "muted" }, fmtTime(last.start_time)))]);
  }
  setChildren(document.getElementById("stats"), stats);
}

function renderStrip(results) {
  document.getElementById("strip-wrap").hidden = results.length === 0;
  const recent = results.slice(0, STRIP_LENGTH).reverse();
  setChildren(document.getElementById("strip"), recent.map((r) => {
    const what = [label(r.status), r.env, fmtTime(r.start_time), fmtDuration(r.duration)]
      .filter(Boolean).join(" · ");
    return el("li", {},
      el("a", { href: jobUrl(r.job_id), className: `tick tick-${safeToken(r.status)}`, title: what, "aria-label": what }));
  }));
}

/** Which results are shown: of a project, a branch, or all; with links to widen. */
function renderScope() {
  const parts = [];
  if (project) {
    parts.push(el("span", { className: "tag id-project", title: "project" }, project));
  }
  if (branch) parts.push(el("span", { className: "id-branch", title: "branch" }, branch));
  if (branch) {
    parts.push(el("a", { href: testUrl(nodeid, { project }), className: "small" }, "all branches"));
  }
  if (project || branch) {
    parts.push(el("a", { href: testUrl(nodeid), className: "small" }, "all projects"));
  } else {
    parts.push(el("span", { className: "small muted" }, "every project and branch"));
  }
  setChildren(document.getElementById("scope"), parts);
}

function messageCell(result) {
  if (!result.msg) return "";
  if (isFailure(result.status)) return failureMessage(result.msg);
  return el("span", { className: "reason" }, headline(result.msg));
}

function renderHistory(results) {
  const rows = results.map((r) => {
    const outcome = r.outcome && r.outcome !== r.status && r.outcome !== "error"
      ? el("span", { className: `outcome outcome-${safeToken(r.outcome)}` }, label(r.outcome)) : null;
    const title = jobTitle(r);
    return el("tr", { className: "test-row", "data-status": safeToken(r.status), "data-job-id": r.job_id },
      el("td", { className: "col-status" }, badge(r.status), outcome),
      el("td", {}, el("a", { href: jobUrl(r.job_id), title: r.job_id }, title),
        r.commit ? el("div", { className: "mono muted small", title: r.commit }, String(r.commit).slice(0, 8)) : null),
      el("td", {}, r.branch && !branch
        ? el("a", { href: testUrl(nodeid, { project: project || r.project, branch: r.branch }), title: "Only this branch" }, r.branch)
        : (r.branch || "–")),
      el("td", {}, r.env ? el("span", { className: "tag" }, r.env) : "–"),
      el("td", { title: isoTime(r.start_time) }, fmtTime(r.start_time)),
      el("td", { className: "num col-duration" }, fmtDuration(r.duration)),
      el("td", { className: "col-msg" }, messageCell(r)));
  });
  setChildren(document.getElementById("history"), rows);
  document.getElementById("no-history").hidden = results.length > 0;
}

async function sync() {
  const errorBox = document.getElementById("error");
  let data;
  try {
    const params = new URLSearchParams({ nodeid });
    if (project) params.set("project", project);
    if (branch) params.set("branch", branch);
    data = await getJSON(`${BASE}api/tests/history?${params}`);
  } catch (error) {
    document.getElementById("loading").hidden = true;
    errorBox.hidden = false;
    setText(errorBox, `Could not load this test's history (${error.message}).`);
    return;
  }
  errorBox.hidden = true;
  document.getElementById("loading").hidden = true;
  const results = data.results || [];
  // Re-rendering must not close the messages the reader opened.
  const openJobs = new Set([...document.querySelectorAll("#history tr")]
    .filter((tr) => tr.querySelector("details[open]")).map((tr) => tr.dataset.jobId));
  renderStats(results);
  renderStrip(results);
  renderHistory(results);
  for (const tr of document.querySelectorAll("#history tr")) {
    const details = tr.querySelector("details");
    if (details && openJobs.has(tr.dataset.jobId)) details.open = true;
  }
  document.getElementById("flaky").hidden = !data.flaky;
}

let pending = null;
function syncSoon() {
  clearTimeout(pending);
  pending = setTimeout(sync, 300);
}

function onEvent(event) {
  if (event.nodeid === nodeid || event.kind === "job_finished") syncSoon();
}

function setup() {
  setText(document.getElementById("test-name"), nodeid || "(no test given)");
  renderScope();
  document.title = `${nodeid.split("::").pop() || "Test"} · pytest-rt`;
  if (!nodeid) {
    document.getElementById("loading").hidden = true;
    return;
  }
  sync();
  follow(`${BASE}api/events`, { onEvent, onSync: syncSoon, onState: setConnection });
}

setup();
