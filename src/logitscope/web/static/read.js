// Read a text: tokens coloured by the model's numbers, a tooltip on hover, the full
// distribution of a position on click, a summary line, downloads, two models side by side.
import {$, el, api, bars, cancellable, download, fmt, fmtProb, model, showError, showToken, streamJob} from "./common.js";

const RANK_BUCKETS = [[10, "#2da44e", "top-10"], [100, "#d4a72c", "top-100"],
                      [1000, "#cf222e", "top-1000"], [Infinity, "#8250df", ">1000"]];
const PROB_FLOOR_LOG10 = -4, ENTROPY_CEILING = 6, SURPRISAL_CEILING = 13.3;  // as views/colours.py
let readings = [];  // [{model, data}] of the last read
let active = null;  // {reading, token} under the pointer or the keyboard cursor

// -- colours (the CLI heatmap's scales; surprisal in bits added) ----------------------------
function colour(tok, mode) {
  if (mode === "rank") return RANK_BUCKETS.find(([limit]) => tok.rank <= limit)[1];
  if (mode === "entropy") {
    const share = Math.min(Math.max(tok.entropy, 0) / ENTROPY_CEILING, 1);
    return `hsl(215 70% ${88 - 55 * share}%)`;
  }
  if (mode === "surprisal") {
    const share = Math.min(tok.surprisal_bits / SURPRISAL_CEILING, 1);
    return `hsl(28 90% ${92 - 50 * share}%)`;
  }
  const share = (Math.max(Math.log10(Math.max(tok.prob, 1e-300)), PROB_FLOOR_LOG10) - PROB_FLOOR_LOG10) / -PROB_FLOOR_LOG10;
  return `hsl(${120 * share} 65% 42%)`;
}
const darkText = (mode) => mode === "entropy" || mode === "surprisal";

function legend(mode) {
  const box = $("legend");
  box.replaceChildren();
  const swatch = (bg, text) => el("span", {class: "swatch", style: `background:${bg}`, text});
  if (mode === "rank") RANK_BUCKETS.forEach(([, c, name]) => box.append(swatch(c, name)));
  else if (mode === "prob") [1e-4, 1e-3, 1e-2, 0.1, 1].forEach((p) => box.append(swatch(colour({prob: p}, mode), `p=${p}`)));
  else if (mode === "entropy") [0, 1.5, 3, 4.5, 6].forEach((h) => box.append(swatch(colour({entropy: h}, mode), `${h} nats`)));
  else [0, 3, 6, 9, 13].forEach((b) => box.append(swatch(colour({surprisal_bits: b}, mode), `${b} bits`)));
  box.prepend(el("span", {text: {prob: "Probability of each token (log scale):", rank: "Rank of each token (GLTR buckets):",
    entropy: "Entropy of the distribution it came from:", surprisal: "Surprisal −log₂ p:"}[mode]}));
}

// -- the token view ------------------------------------------------------------------------------
function renderTokens(reading, mode) {
  const score = reading.data.score;
  const full = (score.context || "") + score.text;
  const flagged = new Set(reading.data.flagged);
  const box = el("div", {class: "tokens mono", tabindex: "0", role: "group",
                         "aria-label": `Tokens read by ${reading.model}; arrow keys move, Enter opens`});
  let at = 0;
  score.tokens.forEach((tok, i) => {
    if (tok.role === "prefix") return;
    if (tok.start > at) box.append(full.slice(at, tok.start));
    const piece = full.slice(tok.start, tok.end) || tok.text;
    at = Math.max(at, tok.end);
    if (tok.logprob === null) { box.append(el("span", {class: "ctx", text: piece})); return; }
    const span = el("span", {class: "tok" + (flagged.has(tok.position) ? " flagged" : ""), text: piece});
    span.dataset.i = i;
    span.style.background = colour(tok, mode);
    span.style.color = darkText(mode) ? "#111" : "#fff";
    box.append(span);
  });
  if (full.length > at) box.append(full.slice(at));
  box.addEventListener("mouseover", (e) => e.target.classList.contains("tok") && hover(reading, e.target));
  box.addEventListener("mouseleave", () => { $("tip").hidden = true; });
  box.addEventListener("click", (e) => e.target.classList.contains("tok") && openSide(reading, +e.target.dataset.i));
  box.addEventListener("keydown", (e) => keys(e, reading, box));
  return box;
}

function keys(e, reading, box) {
  const spans = [...box.querySelectorAll(".tok")];
  let i = spans.findIndex((s) => s.classList.contains("cursor"));
  if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    i = Math.min(spans.length - 1, Math.max(0, i + (e.key === "ArrowRight" ? 1 : -1)));
    spans.forEach((s) => s.classList.remove("cursor"));
    spans[i].classList.add("cursor");
    hover(reading, spans[i]);
    e.preventDefault();
  } else if (e.key === "Enter" && i >= 0) openSide(reading, +spans[i].dataset.i);
}

function hover(reading, span) {
  const tok = reading.data.score.tokens[+span.dataset.i];
  active = {reading, tok};
  const tip = $("tip");
  const alts = el("ol", {class: "alts"}, ...tok.alternatives.map((a) =>
    el("li", {}, el("span", {class: "mono", text: showToken(a.text)}), ` ${fmtProb(a.prob)}`)));
  tip.replaceChildren(
    el("div", {class: "mono", text: showToken(tok.text)}),
    el("div", {}, "p = ", el("b", {class: "p", text: fmtProb(tok.prob)}), "  rank ", el("b", {class: "rank", text: String(tok.rank)})),
    el("div", {}, `entropy ${fmt(tok.entropy / Math.LN2, 2)} bits · surprisal ${fmt(tok.surprisal_bits, 2)} bits`),
    el("div", {class: "muted", text: `top ${tok.alternatives.length}:`}), alts);
  tip.hidden = false;
  const r = span.getBoundingClientRect();
  const left = Math.min(window.scrollX + r.left, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 8);
  tip.style.left = `${Math.max(4, left)}px`;
  tip.style.top = `${window.scrollY + r.bottom + 6}px`;
}

function summary(reading) {
  const s = reading.data.score;
  const spans = reading.data.uncertain;
  const line = el("p", {class: "summary"},
    el("b", {text: reading.model}), `: ${s.num_scored} tokens · total log-prob ${fmt(s.total_logprob)} nats · ` +
    `perplexity ${fmt(s.perplexity)} · ${fmt(s.bits_per_byte)} bits/byte · `,
    `${spans.length} uncertain span${spans.length === 1 ? "" : "s"}`);
  if (spans.length) line.append(": ", ...spans.slice(0, 12).flatMap((sp, i) =>
    [i ? ", " : "", el("span", {class: "uncertain", text: sp.text, title: `min p ${fmtProb(sp.min_prob)}`})]));
  return line;
}

function render() {
  const mode = $("colorby").value;
  legend(mode);
  const out = $("readings");
  out.replaceChildren(...readings.map((r) => el("div", {class: "reading"}, summary(r), renderTokens(r, mode))));
  out.classList.toggle("two", readings.length > 1);
  $("read-notes").textContent = readings.flatMap((r) => r.data.notes.map((n) => `${r.model}: ${n}`)).join(" ");
  $("downloads").hidden = readings.length === 0;
}

// -- the side panel: one position's full distribution ------------------------------------------
async function openSide(reading, index) {
  const tok = reading.data.score.tokens[index];
  const ids = reading.data.score.input_ids.slice(0, tok.position);
  try {
    const dist = await api("/api/position", {model: reading.model, ids, top: 50});
    $("side-title").textContent = `Position ${tok.position}: the model read ${showToken(tok.text)}`;
    $("side-meta").textContent = `p = ${fmtProb(tok.prob)}, rank ${tok.rank}; entropy ${fmt(dist.entropy / Math.LN2, 2)} bits; ` +
      `the top 50 hold ${fmt(100 * dist.top.at(-1).cumulative, 1)}% of the mass` +
      (dist.truncated ? ` (last ${dist.prefix_tokens} tokens before it)` : "");
    bars($("side-bars"), dist.top.map((c) => ({label: showToken(c.text), value: c.prob,
      note: `${fmtProb(c.prob)} Σ${fmt(c.cumulative, 2)}`, cls: c.token_id === tok.token_id ? "bar chosen" : "bar"})));
    $("alt").replaceChildren(...dist.top.map((c) => el("option", {value: c.token_id, text: `${showToken(c.text)} (${fmtProb(c.prob)})`})));
    $("side").dataset.ids = JSON.stringify(ids);
    $("side").dataset.model = reading.model;
    $("continuation").textContent = "";
    $("side").hidden = false;
    $("side-close").focus();
  } catch (err) { showError(err); }
}

async function continueFromHere() {
  const ids = [...JSON.parse($("side").dataset.ids), +$("alt").value];
  const alt = $("alt").selectedOptions[0].textContent;
  try {
    const out = await cancellable("Continuing…", "/api/continue", {model: $("side").dataset.model, ids, max_new_tokens: 20});
    $("continuation").replaceChildren(el("b", {text: `…${alt.slice(0, alt.lastIndexOf(" ("))}`}), " → ", out.text);
  } catch (err) { showError(err); }
}

// -- reading ---------------------------------------------------------------------------------------
function body(name) {
  return {model: name, text: $("text").value, context: $("context").value || null, top_k: 10,
          color_by: $("colorby").value};
}

async function read(e) {
  if (e) e.preventDefault();
  showError(null);
  if (!$("text").value.trim()) { showError(new Error("the text is empty: paste or drop a text to read")); return; }
  const names = [model(), $("compare").value].filter((n, i, all) => n !== null && (i === 0 || (n && n !== all[0])));
  try {
    const got = [];
    for (const name of names.length ? names : [null]) {
      const last = await streamJob(`Reading with ${name || "the model"}…`, "/api/read", {...body(name), stream: true});
      if (last.cancelled) { $("read-notes").textContent = "Reading cancelled."; return; }
      got.push({model: last.result.model, data: last.result});
    }
    readings = got;
    $("side").hidden = true;
    render();
  } catch (err) { showError(err); }
}

async function loadFile(file) {
  try {
    const text = new TextDecoder("utf-8", {fatal: true}).decode(await file.arrayBuffer());
    $("text").value = text;
    showError(null);
  } catch (err) {
    showError(new Error(`${file.name} is not UTF-8 text: save it as UTF-8 and drop it again`));
  }
}

export function initRead() {
  $("read-form").addEventListener("submit", read);
  $("colorby").addEventListener("change", () => readings.length && render());
  $("file").addEventListener("change", (e) => e.target.files[0] && loadFile(e.target.files[0]));
  $("text").addEventListener("dragover", (e) => e.preventDefault());
  $("text").addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
  });
  $("side-close").addEventListener("click", () => { $("side").hidden = true; });
  $("continue").addEventListener("click", continueFromHere);
  $("dl-json").addEventListener("click", () =>
    download("logitscope-reading.json", "application/json", JSON.stringify(readings.map((r) => r.data), null, 2)));
  $("dl-html").addEventListener("click", async () => {
    try {
      const res = await fetch("/api/read/html", {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify(body(readings[0].model))});
      download("logitscope-heatmap.html", "text/html", await res.text());
    } catch (err) { showError(err); }
  });
  legend($("colorby").value);
}
