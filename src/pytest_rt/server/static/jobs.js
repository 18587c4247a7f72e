// The jobs page: every job, running first, each with a live progress bar.
import {
  BASE, JOB_RANK, PROTOCOL, badge, batched, connectionIndicator, countChips, el, fmtDuration, fmtTime, finishedCount,
  follow, getJSON, identityParts, isNewerJob, isoTime, jobDuration, jobEta, jobTitle, jobUrl,
  label, progressBar, setChildren, setText,
} from "./common.js";

const LIMIT = 50;

const state = {
  jobs: new Map(), // job_id -> {job, receivedAt, row}
  total: 0,
  offset: 0,
  status: "",
  env: "",
  project: "",
  branch: "",
  loaded: false, // the first answer came: until then the page says it is loading
};

const list = document.getElementById("jobs");
const setConnection = connectionIndicator();

function makeRow(jobId) {
  const refs = {
    status: el("div", { className: "cell-status" }),
    title: el("a", { className: "job-title", href: jobUrl(jobId) }),
    meta: el("div", { className: "job-meta" }),
    bar: progressBar(),
    tally: el("span", { className: "tally" }),
    chips: el("span", { className: "chips" }),
    duration: el("div", { className: "duration" }),
    eta: el("div", { className: "eta" }),
    heard: el("div", { className: "heard" }),
  };
  refs.li = el("li", { className: "job-row", "data-job-id": jobId },
    refs.status,
    el("div", { className: "cell-job" }, refs.title, refs.meta),
    el("div", { className: "cell-progress" }, refs.bar,
      el("div", { className: "progress-legend" }, refs.tally, refs.chips)),
    el("div", { className: "cell-time num" }, refs.duration, refs.eta, refs.heard));
  return refs;
}

function fillRow(entry) {
  const { job, row } = entry;
  row.li.dataset.status = job.status;
  setChildren(row.status, badge(job.status));
  setText(row.title, jobTitle(job));
  row.title.title = job.job_id;
  // The custom id is the title when given: the meta line names the project and branch.
  const meta = identityParts(job, { withCustomId: false });
  if (job.env) meta.push(el("span", { className: "tag", title: "env" }, job.env));
  meta.push(el("span", { title: `started ${isoTime(job.start_time)}` }, fmtTime(job.start_time, { short: true })));
  if (job.xdist) meta.push(el("span", {}, `${job.workers} workers`));
  if (job.custom_id) meta.push(el("span", { className: "mono muted" }, String(job.job_id).slice(0, 8)));
  if ((job.collect_errors || []).length) {
    meta.push(el("span", { className: "warn" }, `${job.collect_errors.length} collection errors`));
  }
  setChildren(row.meta, meta);
  row.bar.update(job);
  const abandoned = job.status === "abandoned";
  setText(row.heard, abandoned ? `last heard ${fmtTime(job.last_heard, { short: true })}` : "");
  row.heard.title = abandoned ? `Nothing heard since ${isoTime(job.last_heard)}` : "";
  setText(row.tally, `${finishedCount(job)} / ${job.total || 0}`);
  setChildren(row.chips, countChips(job));
  tickRow(entry);
}

/** The parts that change with the clock alone. */
function tickRow(entry) {
  setText(entry.row.duration, fmtDuration(jobDuration(entry.job, entry.receivedAt)));
  setText(entry.row.eta, jobEta(entry.job, entry.receivedAt));
}

function sortKey(job) {
  return [JOB_RANK[job.status] ?? 2, -(job.start_time || 0)];
}

function compareJobs(a, b) {
  const [ra, ta] = sortKey(a.job);
  const [rb, tb] = sortKey(b.job);
  return ra - rb || ta - tb;
}

const render = batched(() => {
  const entries = [...state.jobs.values()].sort(compareJobs);
  // Keep only one page: a live insert may push the oldest off the page.
  for (const stale of entries.splice(LIMIT)) state.jobs.delete(stale.job.job_id);
  entries.forEach((entry, index) => {
    if (list.children[index] !== entry.row.li) list.insertBefore(entry.row.li, list.children[index] || null);
  });
  while (list.children.length > entries.length) list.lastElementChild.remove();
  const filtered = Boolean(state.status || state.env || state.project || state.branch || state.offset);
  document.getElementById("loading").hidden = state.loaded;
  document.getElementById("empty").hidden = !state.loaded || entries.length > 0 || filtered;
  document.getElementById("no-match").hidden = !state.loaded || entries.length > 0 || !filtered;
  suggest(entries.map((entry) => entry.job));
  document.getElementById("list-head").hidden = entries.length === 0;
  renderPager();
});

function renderPager() {
  const pager = document.getElementById("pager");
  pager.hidden = state.total <= LIMIT && state.offset === 0;
  const shown = state.jobs.size;
  setText(document.getElementById("range"),
    shown ? `${state.offset + 1}–${state.offset + shown} of ${state.total}` : "");
  document.getElementById("newer").disabled = state.offset === 0;
  document.getElementById("older").disabled = state.offset + LIMIT >= state.total;
  const running = [...state.jobs.values()].filter((e) => e.job.status === "running").length;
  document.title = running ? `(${running} running) Jobs · pytest-rt` : "Jobs · pytest-rt";
}

function upsert(job, receivedAt) {
  const entry = state.jobs.get(job.job_id);
  if (entry) {
    if (!isNewerJob(entry.job, job)) return;
    entry.job = job;
    entry.receivedAt = receivedAt;
    fillRow(entry);
    return;
  }
  const fresh = { job, receivedAt, row: makeRow(job.job_id) };
  state.jobs.set(job.job_id, fresh);
  fillRow(fresh);
}

function matchesFilters(job) {
  return (!state.status || job.status === state.status) && (!state.env || job.env === state.env)
    && (!state.project || job.project === state.project)
    && (!state.branch || (job.ci || {}).branch === state.branch);
}

/** The filters' suggestions: the projects and branches of the jobs listed. */
function suggest(jobs) {
  const fill = (id, values) => {
    const options = [...new Set(values.filter(Boolean))].sort().map((value) => el("option", { value }));
    setChildren(document.getElementById(id), options);
  };
  fill("projects", jobs.map((job) => job.project));
  fill("branches", jobs.map((job) => (job.ci || {}).branch));
}

async function sync() {
  const params = new URLSearchParams({ limit: LIMIT, offset: state.offset });
  if (state.status) params.set("status", state.status);
  if (state.env) params.set("env", state.env);
  if (state.project) params.set("project", state.project);
  if (state.branch) params.set("branch", state.branch);
  const errorBox = document.getElementById("error");
  let data;
  try {
    data = await getJSON(`${BASE}api/jobs?${params}`);
  } catch (error) {
    errorBox.hidden = false;
    setText(errorBox, `Could not load the jobs (${error.message}). Retrying when the server answers.`);
    return;
  }
  errorBox.hidden = true;
  state.loaded = true;
  const receivedAt = Date.now() / 1000;
  const seen = new Set();
  for (const job of data.jobs || []) {
    seen.add(job.job_id);
    upsert(job, receivedAt);
  }
  for (const jobId of [...state.jobs.keys()]) if (!seen.has(jobId)) state.jobs.delete(jobId);
  state.total = data.total ?? state.jobs.size;
  render();
}

function onEvent(event) {
  if (event.kind === "job_deleted") {
    if (state.jobs.delete(event.job_id)) {
      state.total = Math.max(0, state.total - 1);
      render();
    }
    return;
  }
  const job = event.job;
  if (!job || !job.job_id) return;
  if (!state.jobs.has(job.job_id)) {
    // A job this page has not listed: show it when it belongs on this page.
    if (state.offset !== 0 || !matchesFilters(job)) return;
    state.total += 1;
  }
  upsert(job, Date.now() / 1000);
  render();
}

function readFilters() {
  const params = new URLSearchParams(location.search);
  state.status = params.get("status") || "";
  state.env = params.get("env") || "";
  state.project = params.get("project") || "";
  state.branch = params.get("branch") || "";
  state.offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const form = document.getElementById("filters");
  form.elements.status.value = state.status;
  form.elements.env.value = state.env;
  form.elements.project.value = state.project;
  form.elements.branch.value = state.branch;
}

function writeFilters() {
  const params = new URLSearchParams();
  if (state.status) params.set("status", state.status);
  if (state.env) params.set("env", state.env);
  if (state.project) params.set("project", state.project);
  if (state.branch) params.set("branch", state.branch);
  if (state.offset) params.set("offset", state.offset);
  const query = params.toString();
  history.replaceState(null, "", query ? `${BASE}?${query}` : BASE);
}

function refilter() {
  writeFilters();
  state.jobs.clear();
  list.replaceChildren();
  sync();
}

function setup() {
  setText(document.getElementById("command"), `pytest --rt --rt-url ${location.origin}${BASE}loader`);
  const form = document.getElementById("filters");
  form.elements.status.append(...PROTOCOL.job_statuses.map((status) => el("option", { value: status }, label(status))));
  readFilters();
  form.addEventListener("submit", (event) => event.preventDefault());
  form.elements.status.addEventListener("change", () => {
    state.status = form.elements.status.value;
    state.offset = 0;
    refilter();
  });
  let typing = null;
  for (const name of ["env", "project", "branch"]) {
    form.elements[name].addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        state[name] = form.elements[name].value.trim();
        state.offset = 0;
        refilter();
      }, 300);
    });
  }
  document.getElementById("newer").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - LIMIT);
    refilter();
  });
  document.getElementById("older").addEventListener("click", () => {
    state.offset += LIMIT;
    refilter();
  });
  setInterval(() => {
    for (const entry of state.jobs.values()) if (entry.job.status === "running") tickRow(entry);
  }, 1000);
  sync();
  follow(`${BASE}api/events`, { onEvent, onSync: sync, onState: setConnection });
}

setup();
