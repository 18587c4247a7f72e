// The job page: the job's header and every test, updated live from events.
import {
  BASE, TEST_STATUSES, badge, batched, connectionIndicator, countChips, el, failureMessage,
  fmtDuration, fmtTime, finishedCount, follow, getJSON, headline, identityParts, isFailure,
  isNewerJob, isNewerTest, isResult, isUnfinished, isoTime, jobDuration, jobEta, jobTitle, jobUrl,
  label, nowSeconds, progressBar, safeToken, setChildren, setText, testUrl,
} from "./common.js";

const jobId = decodeURIComponent(location.pathname.slice(BASE.length).replace(/^jobs\//, "").replace(/\/$/, ""));

// Tests come in pages of the API (run order); a job of 100,000 tests shows the
// first page and a button for the next, instead of one 30 MB answer.
const PAGE = 1000;

const state = {
  job: null,
  receivedAt: 0,
  tests: new Map(), // nodeid -> {test, row, open, signature}
  loaded: 0, // tests of the run-order pages fetched so far
  testsTotal: 0,
  deleted: false,
  filter: "all",
  change: "", // "", or a change since the previous job: new, still_failing, fixed
  changes: { previous_job_id: null, new: 0, still_failing: 0, fixed: 0 },
  query: "",
};

// What changed since the previous finished job of the same project and branch.
const CHANGES = ["new", "still_failing", "fixed"];
const CHANGE_LABELS = { new: "New", still_failing: "Still failing", fixed: "Fixed" };
const CHANGE_TITLES = {
  new: "Fails here, and passed or did not run in the previous job",
  still_failing: "Failed in the previous job too",
  fixed: "Passes here, and failed in the previous job",
};

const body = document.getElementById("tests-body");
const bar = progressBar();
document.getElementById("job-progress").append(bar);
const setConnection = connectionIndicator();

// ---- header -------------------------------------------------------------

function fact(name, value, extra = {}) {
  return [el("dt", {}, name), el("dd", extra, value)];
}

function renderHead() {
  const job = state.job;
  document.getElementById("job-head").hidden = false;
  document.getElementById("job-body").hidden = false;
  document.getElementById("waiting").hidden = true;
  document.getElementById("loading").hidden = true;
  setText(document.getElementById("job-title"), jobTitle(job));
  setChildren(document.getElementById("job-identity"), identityParts(job, { withCustomId: false }));
  const junit = document.getElementById("junit");
  junit.hidden = job.status === "running";
  junit.href = `${BASE}api/jobs/${encodeURIComponent(jobId)}/junit.xml`;
  setText(document.getElementById("job-id"), `job ${job.job_id}`);
  setText(document.getElementById("crumb"), jobTitle(job));
  setChildren(document.getElementById("job-status"), badge(job.status, "badge-large"));
  const facts = [
    fact("Env", job.env || "–"),
    fact("Started", fmtTime(job.start_time), { title: isoTime(job.start_time) }),
    fact("Duration", el("span", { id: "job-duration" })),
  ];
  if (job.status === "running") facts.push(fact("ETA", el("span", { id: "job-eta" })));
  else if (job.status === "abandoned") {
    facts.push(fact("Last heard", fmtTime(job.last_heard), { title: isoTime(job.last_heard), id: "last-heard" }));
  } else facts.push(fact("Finished", fmtTime(job.stop_time), { title: isoTime(job.stop_time) }));
  facts.push(fact("Tests", String(job.total ?? 0)));
  if (job.exitstatus !== null && job.exitstatus !== undefined) {
    facts.push(fact("Exit status", String(job.exitstatus)));
  }
  if (job.xdist) facts.push(fact("Workers", String(job.workers)));
  if (job.custom_id) facts.push(fact("Custom id", job.custom_id));
  const previous = state.changes.previous_job_id;
  if (previous) {
    facts.push(fact("Compared with", el("a", { href: jobUrl(previous), className: "mono", title: previous },
      String(previous).slice(0, 8))));
  }
  setChildren(document.getElementById("facts"), facts);
  bar.update(job);
  setText(document.getElementById("job-tally"), `${finishedCount(job)} / ${job.total || 0} finished`);
  setChildren(document.getElementById("job-chips"), countChips(job));
  renderCustomData(job.custom_data);
  renderCollectErrors(job.collect_errors || []);
  tickHead();
}

function tickHead() {
  const job = state.job;
  if (!job) return;
  const duration = document.getElementById("job-duration");
  if (duration) setText(duration, fmtDuration(jobDuration(job, state.receivedAt)));
  const eta = document.getElementById("job-eta");
  if (eta) setText(eta, jobEta(job, state.receivedAt) || "–");
  const done = finishedCount(job);
  document.title = job.status === "running"
    ? `(${done}/${job.total || 0}) ${jobTitle(job)} · pytest-rt`
    : `${label(job.status)} · ${jobTitle(job)} · pytest-rt`;
}

function renderCustomData(data) {
  const card = document.getElementById("custom-data-card");
  const tbody = document.querySelector("#custom-data tbody");
  if (!data || typeof data !== "object" || !Object.keys(data).length) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const rows = Object.entries(data).map(([key, value]) => {
    const shown = value !== null && typeof value === "object"
      ? el("pre", { className: "kv-json" }, JSON.stringify(value, null, 2))
      : String(value);
    return el("tr", {}, el("th", { scope: "row" }, key), el("td", {}, shown));
  });
  setChildren(tbody, rows);
}

function renderCollectErrors(errors) {
  const card = document.getElementById("collect-errors");
  card.hidden = errors.length === 0;
  setChildren(document.getElementById("collect-errors-list"), errors.map((error) =>
    el("details", { className: "msg", open: errors.length <= 3 },
      el("summary", {}, el("span", { className: "mono" }, error.nodeid || "(collection)")),
      el("pre", { className: "msg-body" }, error.msg || ""))));
}

// ---- test rows ----------------------------------------------------------

function nameParts(nodeid) {
  const at = nodeid.indexOf("::");
  if (at < 0) return [el("span", { className: "test-leaf" }, nodeid)];
  return [
    el("span", { className: "test-file" }, nodeid.slice(0, at + 2)),
    el("span", { className: "test-leaf" }, nodeid.slice(at + 2)),
  ];
}

function makeRow(nodeid) {
  const row = {
    tr: el("tr", { className: "test-row" }),
    status: el("td", { className: "col-status" }),
    name: el("td", { className: "col-name" }),
    duration: el("td", { className: "num col-duration" }),
    worker: el("td", { className: "col-worker mono" }),
  };
  row.tr.dataset.nodeid = nodeid;
  row.tr.append(row.status, row.name, row.duration, row.worker);
  return row;
}

/**
 * What pytest captured (stdout, stderr, log, per phase) as tabs, one per section,
 * titled as pytest titles them ("Captured stdout call"); the text is text, never HTML.
 */
function sectionTabs(entry) {
  const sections = entry.test.sections || [];
  if (!sections.length) return null;
  const selected = Math.min(entry.tab || 0, sections.length - 1);
  const panel = el("pre", { className: "section-body", role: "tabpanel" }, sections[selected].text);
  const tabs = sections.map((section, i) => {
    const tab = el("button", {
      type: "button", className: "section-tab", role: "tab",
      "aria-selected": String(i === selected), "data-section": i,
    }, section.name || `Section ${i + 1}`);
    tab.addEventListener("click", () => {
      entry.tab = i;
      for (const other of tabs) other.setAttribute("aria-selected", String(other === tab));
      setText(panel, section.text);
    });
    return tab;
  });
  return el("div", { className: "sections" }, el("div", { className: "section-tabs", role: "tablist" }, tabs), panel);
}

function messageBlock(entry) {
  const { test } = entry;
  const parts = [];
  if (isFailure(test.status) && (test.msg || (test.sections || []).length)) {
    const details = failureMessage(test.msg,
      { open: entry.open, empty: "Captured output", more: sectionTabs(entry) });
    details.addEventListener("toggle", () => { entry.open = details.open; });
    parts.push(details);
  } else {
    if (test.msg) {
      const what = test.outcome === "xfailed" ? "Expected failure" : label(test.status);
      parts.push(el("div", { className: "reason" }, `${what}: ${headline(test.msg)}`));
    }
    const tabs = sectionTabs(entry); // --rt-capture all: every test's output
    if (tabs) {
      parts.push(el("details", { className: "msg msg-captured" },
        el("summary", {}, `Captured output (${test.sections.length})`), tabs));
    }
  }
  const reruns = test.rerun_msgs || [];
  if (reruns.length) {
    parts.push(el("details", { className: "msg msg-reruns" },
      el("summary", {}, `Failed ${reruns.length} ${reruns.length === 1 ? "time" : "times"} before this result`),
      reruns.map((text, i) => [el("div", { className: "small muted" }, `Attempt ${i + 1}`),
        el("pre", { className: "msg-body" }, text)])));
  }
  return parts;
}

function fillRow(entry) {
  const { test, row } = entry;
  const signature = JSON.stringify([test.status, test.outcome, test.msg, test.duration,
    test.worker, test.reruns, test.history_median, test.description, (test.rerun_msgs || []).length,
    test.change, (test.sections || []).length]);
  if (signature === entry.signature) return;
  entry.signature = signature;
  row.tr.dataset.status = safeToken(test.status);
  const outcome = test.outcome && test.outcome !== test.status && test.outcome !== "error"
    ? el("span", { className: `outcome outcome-${safeToken(test.outcome)}` }, label(test.outcome))
    : null;
  row.tr.dataset.change = test.change || "";
  const change = test.change
    ? el("span", { className: `change change-${safeToken(test.change)}`, title: CHANGE_TITLES[test.change] || "" },
      (CHANGE_LABELS[test.change] || test.change).toLowerCase())
    : null;
  setChildren(row.status, badge(test.status), outcome, change);
  const reruns = test.reruns
    ? el("span", { className: "rerun-tag", title: "Attempts re-run by pytest-rerunfailures" },
      `${test.reruns} ${test.reruns === 1 ? "rerun" : "reruns"}`)
    : null;
  setChildren(row.name,
    el("a", { className: "test-name", href: historyUrl(test.nodeid), title: test.nodeid }, nameParts(test.nodeid)),
    reruns,
    test.description ? el("div", { className: "test-desc" }, test.description.split("\n")[0]) : null,
    messageBlock(entry));
  setText(row.worker, test.worker || "");
  tickRow(entry);
}

// A test's usual duration is shown when it says something: how long a
// running test should take, or that a finished one was notably slower.
function tickRow(entry) {
  const { test, row } = entry;
  const median = Number.isFinite(test.history_median) ? test.history_median : null;
  let text = "";
  let note = null;
  if (test.status === "running" && Number.isFinite(test.start_time)) {
    text = fmtDuration(Math.max(0, nowSeconds() - test.start_time));
    if (median !== null) note = el("div", { className: "typical" }, `usually ${fmtDuration(median)}`);
  } else if (test.status !== "not_started") {
    text = fmtDuration(test.duration);
    if (median !== null && test.duration > 1.5 * median + 0.1) {
      note = el("div", { className: "typical typical-slow" }, `usually ${fmtDuration(median)}`);
    }
  } else if (median !== null) {
    note = el("div", { className: "typical" }, `~${fmtDuration(median)}`);
  }
  setChildren(row.duration, text, note);
  row.duration.title = median !== null
    ? `Median of its last 3 durations: ${fmtDuration(median)}` : "";
}

function upsertTest(test, { live = false } = {}) {
  if (!test || typeof test.nodeid !== "string") return;
  let entry = state.tests.get(test.nodeid);
  if (entry && !isNewerTest(entry.test, test)) return;
  // A live change of a test on a page not fetched yet: it shows when its page does.
  if (!entry && live && state.loaded < state.testsTotal) return;
  // Live events do not say what changed (the job page's read does): keep the mark.
  if (entry && test.change == null && entry.test.change && test.status === entry.test.status) {
    test.change = entry.test.change;
  }
  if (!entry) {
    entry = { test, row: makeRow(test.nodeid), open: false, signature: "", tab: 0 };
    state.tests.set(test.nodeid, entry);
    body.append(entry.row.tr);
  }
  entry.test = test;
  fillRow(entry);
}

// ---- filters, search, slowest -------------------------------------------

const filterButtons = new Map();

function buildFilterButtons() {
  const group = document.getElementById("filter-buttons");
  for (const status of ["all", ...TEST_STATUSES]) {
    const count = el("span", { className: "count" }, "0");
    const button = el("button", { type: "button", className: "seg-btn", "data-status": status },
      status === "all" ? null : el("span", { className: `dot dot-${status}` }),
      status === "all" ? "All" : label(status), count);
    button.addEventListener("click", () => {
      state.filter = status;
      writeUrl();
      refresh();
      if (status !== "all") fetchStatus(status);
    });
    filterButtons.set(status, { button, count });
    group.append(button);
  }
}

/** The history of a test of this job: of the job's project, as history is kept per project. */
function historyUrl(nodeid) {
  return testUrl(nodeid, { project: state.job ? state.job.project : null });
}

const changeButtons = new Map();

function buildChangeButtons() {
  const group = document.getElementById("change-buttons");
  for (const change of CHANGES) {
    const count = el("span", { className: "count" }, "0");
    const button = el("button", {
      type: "button", className: `seg-btn change-btn change-btn-${change}`, "data-change": change,
      title: CHANGE_TITLES[change],
    }, CHANGE_LABELS[change], count);
    button.addEventListener("click", () => {
      state.change = state.change === change ? "" : change;
      writeUrl();
      refresh();
      if (state.change) fetchChange(state.change);
    });
    changeButtons.set(change, { button, count });
    group.append(button);
  }
}

function renderChangeButtons() {
  const group = document.getElementById("change-buttons");
  group.hidden = !state.changes.previous_job_id;
  for (const [change, { button, count }] of changeButtons) {
    const n = state.changes[change] || 0;
    setText(count, String(n));
    button.setAttribute("aria-pressed", String(state.change === change));
    button.classList.toggle("is-empty", n === 0);
  }
}

function matches(test) {
  if (state.filter !== "all" && test.status !== state.filter) return false;
  if (state.change && test.change !== state.change) return false;
  if (!state.query) return true;
  const q = state.query.toLowerCase();
  return test.nodeid.toLowerCase().includes(q)
    || (test.description || "").toLowerCase().includes(q);
}

function applyFilter() {
  const partial = state.loaded < state.testsTotal && state.job;
  const counts = partial ? { ...state.job.counts, all: state.job.total } : { all: 0 };
  let visible = 0;
  for (const entry of state.tests.values()) {
    if (!partial) {
      counts.all += 1;
      counts[entry.test.status] = (counts[entry.test.status] || 0) + 1;
    }
    const show = matches(entry.test);
    entry.row.tr.hidden = !show;
    if (show) visible += 1;
  }
  for (const [status, { button, count }] of filterButtons) {
    const n = counts[status] || 0;
    setText(count, String(n));
    button.setAttribute("aria-pressed", String(state.filter === status));
    // Statuses that are not a result of the run (running, not started, aborted) stay out
    // of the way when no test has them.
    button.hidden = status !== "all" && n === 0 && state.filter !== status && !isResult(status);
    button.classList.toggle("is-empty", n === 0);
  }
  document.getElementById("no-tests").hidden = visible > 0 || state.tests.size === 0;
}

function renderSlowest() {
  const finished = [...state.tests.values()]
    .map((entry) => entry.test)
    .filter((test) => Number.isFinite(test.duration) && !isUnfinished(test.status))
    .sort((a, b) => b.duration - a.duration)
    .slice(0, 10);
  const max = finished.length ? finished[0].duration || 1 : 1;
  setChildren(document.getElementById("slowest"), finished.map((test) => {
    const fill = el("span", { className: `slow-fill fill-${safeToken(test.status)}` });
    fill.style.width = `${Math.max(2, (100 * test.duration) / max)}%`;
    const leaf = test.nodeid.includes("::") ? test.nodeid.slice(test.nodeid.indexOf("::") + 2) : test.nodeid;
    return el("li", {},
      el("div", { className: "slow-line" },
        el("a", { href: historyUrl(test.nodeid), title: test.nodeid, className: "slow-name" }, leaf),
        el("span", { className: "slow-time num" }, fmtDuration(test.duration))),
      el("div", { className: "slow-bar" }, fill));
  }));
  document.getElementById("slowest-empty").hidden = finished.length > 0;
}

const refresh = batched(() => {
  applyFilter();
  renderChangeButtons();
  renderSlowest();
  updateExpandButton();
});

function updateExpandButton() {
  const button = document.getElementById("expand-all");
  const failures = [...state.tests.values()].filter((e) => !e.row.tr.hidden && e.row.tr.querySelector("details.msg:not(.msg-reruns)"));
  button.hidden = failures.length === 0;
  const allOpen = failures.length > 0 && failures.every((e) => e.open);
  setText(button, allOpen ? "Collapse failures" : "Expand failures");
  return { failures, allOpen };
}

function toggleAll() {
  const { failures, allOpen } = updateExpandButton();
  for (const entry of failures) {
    entry.open = !allOpen;
    const details = entry.row.tr.querySelector("details.msg:not(.msg-reruns)");
    if (details) details.open = !allOpen;
  }
  updateExpandButton();
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  const status = params.get("status");
  state.filter = status && ["all", ...TEST_STATUSES].includes(status) ? status : "all";
  const change = params.get("change");
  state.change = CHANGES.includes(change) ? change : "";
  state.query = params.get("q") || "";
  document.getElementById("search").value = state.query;
}

function writeUrl() {
  const params = new URLSearchParams();
  if (state.filter !== "all") params.set("status", state.filter);
  if (state.change) params.set("change", state.change);
  if (state.query) params.set("q", state.query);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

// ---- data ---------------------------------------------------------------

function setJob(job, receivedAt) {
  if (!job || state.deleted || (state.job && !isNewerJob(state.job, job))) return;
  state.job = job;
  state.receivedAt = receivedAt;
  renderHead();
}

function testsUrl(offset, extra = {}) {
  const params = new URLSearchParams({ offset, limit: PAGE, ...extra });
  return `${BASE}api/jobs/${encodeURIComponent(jobId)}?${params}`;
}

async function sync() {
  const errorBox = document.getElementById("error");
  // Fetch again what is shown: the first page, and those after it already shown.
  const want = Math.max(PAGE, state.loaded);
  const order = [];
  let data;
  try {
    for (let offset = 0; offset < want; offset += PAGE) {
      data = await getJSON(testsUrl(offset));
      if (offset === 0) {
        if (data.changes) state.changes = data.changes;
        setJob(data.job, nowSeconds());
      }
      state.testsTotal = data.tests_total ?? (data.tests || []).length;
      for (const test of data.tests || []) {
        upsertTest(test);
        order.push(test.nodeid);
      }
      if ((data.tests || []).length < PAGE) break;
    }
  } catch (error) {
    document.getElementById("loading").hidden = true;
    if (error.status === 404) {
      errorBox.hidden = true;
      document.getElementById("waiting").hidden = state.job !== null || state.deleted;
    } else {
      errorBox.hidden = false;
      setText(errorBox, `Could not load this job (${error.message}). Retrying when the server answers.`);
    }
    return;
  }
  errorBox.hidden = true;
  state.loaded = Math.max(state.loaded, order.length);
  // Keep the run order of the JSON (events may have added rows before it came).
  for (const nodeid of order) body.append(state.tests.get(nodeid).row.tr);
  updateMore();
  refresh();
}

async function loadMore() {
  const data = await getJSON(testsUrl(state.loaded));
  state.testsTotal = data.tests_total ?? state.testsTotal;
  for (const test of data.tests || []) {
    upsertTest(test);
    body.append(state.tests.get(test.nodeid).row.tr);
  }
  state.loaded += (data.tests || []).length;
  updateMore();
  refresh();
}

/** With a change filter on a job not all loaded: its tests of that change, from the server. */
async function fetchChange(change) {
  if (state.loaded >= state.testsTotal) return;
  const data = await getJSON(testsUrl(0, { change }));
  for (const test of data.tests || []) upsertTest(test);
  refresh();
}

let marking = null;
/** A failure that arrived live is marked new or still failing by the next read of the job. */
function markSoon() {
  if (marking !== null || !state.changes.previous_job_id || state.testsTotal > PAGE) return;
  marking = setTimeout(() => {
    marking = null;
    sync();
  }, 2000);
}

/** With a status filter on a job not all loaded: its tests of that status, from the server. */
async function fetchStatus(status) {
  if (state.loaded >= state.testsTotal) return;
  const data = await getJSON(testsUrl(0, { status }));
  for (const test of data.tests || []) upsertTest(test);
  refresh();
}

function updateMore() {
  const left = Math.max(0, state.testsTotal - state.loaded);
  document.getElementById("more-box").hidden = left === 0;
  setText(document.getElementById("more"), `Show ${Math.min(PAGE, left)} more (${left} not shown)`);
}

async function deleteJob() {
  const job = state.job;
  const what = job ? `${jobTitle(job)} (${job.total || 0} tests)` : jobId;
  if (!confirm(`Delete ${what}, its tests and its event ids? This cannot be undone.`)) return;
  const url = `${BASE}api/jobs/${encodeURIComponent(jobId)}`;
  let response = await fetch(url, { method: "DELETE" });
  if (response.status === 401) {
    // The receiver has a token (--token): the same one POST /loader takes.
    const token = prompt("This receiver needs its token to delete a job:");
    if (!token) return;
    response = await fetch(url, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
  }
  if (!response.ok && response.status !== 404) {
    const errorBox = document.getElementById("error");
    errorBox.hidden = false;
    setText(errorBox, `Could not delete this job (${response.status}).`);
    return;
  }
  showDeleted();
}

function showDeleted() {
  state.deleted = true;
  document.getElementById("deleted").hidden = false;
  document.getElementById("job-head").hidden = true;
  document.getElementById("job-body").hidden = true;
  document.getElementById("collect-errors").hidden = true;
  document.getElementById("waiting").hidden = true;
}

function onEvent(event) {
  if (event.job_id !== undefined && event.job_id !== jobId) return;
  if (event.kind === "job_deleted") {
    showDeleted();
    return;
  }
  if (state.deleted) return;
  const first = state.job === null;
  setJob(event.job, nowSeconds());
  // One message per job per short window: each test that moved, in its latest state.
  for (const test of event.tests || []) {
    upsertTest(test, { live: true });
    if (isResult(test.status) && isFailure(test.status)) markSoon();
  }
  refresh();
  // The first sign of a job this page waited for, or another shard of it
  // joining: fetch the list of tests (events carry only the tests that move).
  // A job that ended (or was abandoned) shows its running tests as aborted: fetch them.
  const kinds = event.kinds || [event.kind];
  if (first || kinds.includes("job_started") || kinds.includes("job_finished")) sync();
}

function setup() {
  buildFilterButtons();
  buildChangeButtons();
  readUrl();
  let typing = null;
  document.getElementById("search").addEventListener("input", (event) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.query = event.target.value.trim();
      writeUrl();
      refresh();
    }, 120);
  });
  document.getElementById("expand-all").addEventListener("click", toggleAll);
  document.getElementById("delete-job").addEventListener("click", deleteJob);
  document.getElementById("more").addEventListener("click", loadMore);
  // "/" jumps to the search box, as on most sites with one.
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      document.getElementById("search").focus();
    }
  });
  body.addEventListener("toggle", updateExpandButton, true);
  setText(document.getElementById("crumb"), jobId);
  setInterval(() => {
    tickHead();
    for (const entry of state.tests.values()) if (entry.test.status === "running") tickRow(entry);
  }, 1000);
  refresh();
  sync();
  follow(`${BASE}api/events?job=${encodeURIComponent(jobId)}`, { onEvent, onSync: sync, onState: setConnection });
}

setup();
