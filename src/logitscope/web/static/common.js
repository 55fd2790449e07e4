// Shared helpers: the JSON API, number formats, inline errors, the busy bar.
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

export class ApiError extends Error {}

export function model() { return $("model").value || null; }

export async function api(path, body, signal) {
  const res = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                 body: JSON.stringify(body), signal});
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

// The busy bar: one long task at a time, with progress and a Cancel button.
let cancelHook = null;
export function busy(label, onCancel) {
  $("busy-label").textContent = label;
  $("busy-progress").removeAttribute("value");
  $("busy").hidden = false;
  cancelHook = onCancel;
}
export function progress(done, total) {
  const bar = $("busy-progress");
  bar.max = total;
  bar.value = done;
  $("busy-label").textContent = `${done} / ${total}`;
}
export function idle() { $("busy").hidden = true; cancelHook = null; }
export function cancel() { if (cancelHook) cancelHook(); }

// A long request the user can abort: resolves to the JSON, or throws AbortError.
export async function cancellable(label, path, body) {
  const ctrl = new AbortController();
  busy(label, () => ctrl.abort());
  try { return await api(path, body, ctrl.signal); } finally { idle(); }
}

export function download(name, type, content) {
  const url = URL.createObjectURL(new Blob([content], {type}));
  const a = el("a", {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Horizontal bars as SVG: rows of {label, value (0..1), note}.
export function bars(svg, rows, width = 420) {
  const h = 18, labelW = 130, noteW = 70;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * h + 2}`);
  svg.setAttribute("width", "100%");
  rows.forEach((r, i) => {
    const y = i * h + 1, w = Math.max(0, r.value) * (width - labelW - noteW);
    const label = svgEl("text", {x: labelW - 4, y: y + 13, "text-anchor": "end", class: "bar-label"});
    label.textContent = r.label;
    const rect = svgEl("rect", {x: labelW, y: y + 2, width: w, height: h - 5, class: r.cls || "bar"});
    const note = svgEl("text", {x: labelW + w + 4, y: y + 13, class: "bar-note"});
    note.textContent = r.note;
    svg.append(label, rect, note);
  });
}

// A stepped job on the server (POST with JSON lines back): progress in the busy bar, Cancel
// asks the server to stop it. Resolves to the terminal line: {result}, {cancelled} or {error}.
export async function streamJob(label, path, body, onLine = () => {}) {
  const ctrl = new AbortController();
  let job = null;
  busy(label, () => {
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
  } finally { idle(); }
}
