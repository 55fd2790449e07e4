// Shared helpers: the JSON API, number formats, inline errors, the busy bar, bar lists.
// Every number the page shows comes from the API; this file only formats it.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;  // CSSOM: allowed by the page's CSP, unlike a style attribute
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);  // strings become text nodes: never parsed as HTML
  return node;
}

export const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};

export function fmtProb(p) {
  if (p === null || p === undefined) return "–";
  return p >= 1e-3 || p === 0 ? p.toFixed(4) : p.toExponential(2);
}
export const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
export const showToken = (t) => JSON.stringify(t);  // quotes make spaces and newlines visible

// A box whose content may be wider than a phone: it scrolls sideways inside itself (and takes focus,
// so the keyboard can scroll it too).
export const scrollBox = (label, ...children) =>
  el("div", {class: "scroll", tabindex: "0", role: "region", "aria-label": label}, ...children);

export class ApiError extends Error {}

export function model() { return $("model").value || null; }

async function post(path, body, signal, asText = false) {
  const res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(body), signal});
  if (res.ok && asText) return res.text();
  const data = await res.json().catch(() => ({error: {message: `HTTP ${res.status}`}}));
  if (!res.ok) throw new ApiError(data.error ? data.error.message : `HTTP ${res.status}`);
  return data;
}

export function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  if (err.name === "AbortError") return;
  box.textContent = err instanceof ApiError ? err.message : `error: ${err.message}`;
  box.hidden = false;
}

// -- the busy bar -------------------------------------------------------------------------------------
// Every request is a task: the bar (label, progress, Cancel) shows once any task has run for BUSY_AFTER ms,
// so quick answers never flash it. Cancel (or Escape) cancels every running task.
export const BUSY_AFTER = 300;
const tasks = new Set();
let shownTimer = null;

function updateBusy() {
  const latest = [...tasks].at(-1);
  if (!latest) {
    clearTimeout(shownTimer);
    shownTimer = null;
    $("busy").hidden = true;
    return;
  }
  $("busy-label").textContent = latest.label;
  if ($("busy").hidden && !shownTimer) {
    shownTimer = setTimeout(() => { shownTimer = null; if (tasks.size) $("busy").hidden = false; }, BUSY_AFTER);
  }
}

function startTask(label, cancel) {
  const task = {label, cancel};
  tasks.add(task);
  $("busy-progress").removeAttribute("value");
  updateBusy();
  return task;
}

function endTask(task) { tasks.delete(task); updateBusy(); }

export function progress(done, total) {
  const bar = $("busy-progress");
  bar.max = total;
  bar.value = done;
  $("busy-label").textContent = `${[...tasks].at(-1)?.label || ""} ${done} / ${total}`;
}

export function cancelAll() { for (const t of tasks) t.cancel(); }
export const isBusy = () => tasks.size > 0;

// One request as a task: resolves to the JSON (or the text), or throws AbortError when cancelled.
export async function api(path, body, label = "Working…", asText = false) {
  const ctrl = new AbortController();
  const task = startTask(label, () => ctrl.abort());
  try { return await post(path, body, ctrl.signal, asText); } finally { endTask(task); }
}

// A stepped job on the server (POST with JSON lines back): progress in the busy bar, Cancel
// asks the server to stop it. Resolves to the terminal line: {result}, {cancelled} or {error}.
export async function streamJob(label, path, body, onLine = () => {}) {
  const ctrl = new AbortController();
  let job = null;
  const task = startTask(label, () => {
    if (job) fetch(`/api/jobs/${job}/cancel`, {method: "POST"}).catch(() => {});
    else ctrl.abort();
  });
  try {
    const res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                   body: JSON.stringify(body), signal: ctrl.signal});
    if (!res.ok) throw new ApiError((await res.json()).error.message);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", last = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines.filter(Boolean)) {
        last = JSON.parse(line);
        if (last.job) job = last.job;
        if (last.progress) progress(last.progress, last.of);
        onLine(last);
      }
    }
    if (last && last.error) throw new ApiError(last.error.message);
    return last;
  } finally { endTask(task); }
}

// The result of a cancellable job, or null when it was cancelled (said in ``where``).
export async function jobResult(label, path, body, where) {
  const last = await streamJob(label, path, body);
  if (last.cancelled) {
    if (where) where.replaceChildren(el("p", {class: "notes", text: `${label.replace("…", "")}: cancelled.`}));
    return null;
  }
  return last.result;
}

export function download(name, type, content) {
  const url = URL.createObjectURL(new Blob([content], {type}));
  const a = el("a", {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Horizontal bars as HTML rows (text sizes follow the page's type, so presentation mode enlarges them):
// rows of {label, value (0..1 of the track), note, cls, title}.
export function bars(box, rows) {
  box.replaceChildren(...rows.map((r) => {
    const fill = el("span", {class: "bfill"});
    fill.style.width = `${100 * Math.min(1, Math.max(0, r.value))}%`;
    return el("div", {class: `brow ${r.cls || ""}`, role: "listitem", ...(r.title ? {title: r.title} : {})},
      el("span", {class: "blabel mono", text: r.label}), el("span", {class: "btrack"}, fill),
      el("span", {class: "bnote", text: r.note}));
  }));
}
