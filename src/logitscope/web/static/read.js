// Read a text: tokens coloured by the model's numbers, a tooltip on hover, the full
// distribution of a position on click, a summary line, downloads, two models side by side.
//
// Offsets: the API's `start`/`end` count Unicode code points (Python str indices), not the
// UTF-16 code units JavaScript strings index by, so the text is cut as an array of code points
// (Array.from). The pieces are views/text.display_pieces': the text between tokens stays, and a
// character split over several byte-level tokens is shown whole, once, in the box of the first
// of them; the box lists the others (class "bytes", tooltip).
import {$, el, api, bars, download, fmt, fmtProb, jobResult, model, showError, showToken, streamJob} from "./common.js";
import {setPalette, swatches, textOn, tokenColour} from "./colours.js";

const LEGEND_TITLES = {prob: "Probability of each token (log scale):", rank: "Rank of each token (GLTR buckets):",
                       entropy: "Entropy of the distribution it came from:", surprisal: "Surprisal −log₂ p:"};
let readings = [];  // [{model, data}] of the last read
let fileText = null;  // the exact text of the last file loaded (a textarea turns CR LF into LF)

// -- the pieces of the text -----------------------------------------------------------------------
export function pieces(score) {
  const chars = Array.from((score.context || "") + score.text);  // code points, as the offsets count
  const out = [];
  let shown = 0;
  score.tokens.forEach((tok, i) => {
    if (tok.role === "prefix") return;
    if (tok.start > shown) out.push({text: chars.slice(shown, tok.start).join(""), index: null});
    const text = chars.slice(Math.max(tok.start, shown), tok.end).join("");
    if (text) out.push({text, index: i, more: []});
    else if (out.length && out.at(-1).index !== null) out.at(-1).more.push(i);  // the rest of a split character
    shown = Math.max(shown, tok.end);
  });
  if (chars.length > shown) out.push({text: chars.slice(shown).join(""), index: null});
  return out;
}

function legend(mode) {
  const box = $("legend");
  box.replaceChildren(el("span", {text: LEGEND_TITLES[mode]}), ...swatches(mode).map(([label, bg]) =>
    el("span", {class: "swatch", text: label, style: `background:${bg};color:${textOn(bg)}`})));
}

function renderTokens(reading, mode) {
  const score = reading.data.score;
  const flagged = new Set(reading.data.flagged);
  const box = el("div", {class: "tokens mono", tabindex: "0", role: "group",
                         "aria-label": `Tokens read by ${reading.model}; arrow keys move, Enter opens, Escape closes`});
  for (const piece of pieces(score)) {
    const tok = piece.index === null ? null : score.tokens[piece.index];
    if (!tok || tok.logprob === null) { box.append(piece.index === null ? piece.text : el("span", {class: "ctx", text: piece.text})); continue; }
    const span = el("span", {class: "tok" + (flagged.has(tok.position) ? " flagged" : "") + (piece.more.length ? " bytes" : ""),
                             text: piece.text});
    span.dataset.i = piece.index;
    if (piece.more.length) span.dataset.more = piece.more.join(",");
    const bg = tokenColour(tok, mode);
    span.style.background = bg;
    span.style.color = textOn(bg);
    box.append(span);
  }
  box.addEventListener("mouseover", (e) => e.target.classList.contains("tok") && hover(reading, e.target));
  box.addEventListener("mouseleave", () => { $("tip").hidden = true; });
  box.addEventListener("click", (e) => e.target.classList.contains("tok") && openSide(reading, +e.target.dataset.i, e.target));
  box.addEventListener("keydown", (e) => keys(e, reading, box));
  return box;
}

function keys(e, reading, box) {
  const spans = [...box.querySelectorAll(".tok")];
  let i = spans.findIndex((s) => s.classList.contains("cursor"));
  const moves = {ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: spans.length - 1};
  if (e.key in moves) {
    i = Math.min(spans.length - 1, Math.max(0, moves[e.key]));
    spans.forEach((s) => s.classList.remove("cursor"));
    spans[i].classList.add("cursor");
    spans[i].scrollIntoView({block: "nearest"});
    hover(reading, spans[i]);
    e.preventDefault();
  } else if (e.key === "Enter" && i >= 0) {
    openSide(reading, +spans[i].dataset.i, spans[i]);
  } else if (e.key === "Escape") {
    $("tip").hidden = true;
  }
}

function tokenLine(tok) {
  return el("div", {}, el("span", {class: "mono", text: showToken(tok.text)}), " p = ",
            el("b", {class: "p", text: fmtProb(tok.prob)}), " rank ", el("b", {class: "rank", text: String(tok.rank)}));
}

function hover(reading, span) {
  const tokens = reading.data.score.tokens, tok = tokens[+span.dataset.i];
  const more = span.dataset.more ? span.dataset.more.split(",").map((j) => tokens[+j]) : [];
  const tip = $("tip");
  const alts = el("ol", {class: "alts"}, ...tok.alternatives.map((a) =>
    el("li", {}, el("span", {class: "mono", text: showToken(a.text)}), ` ${fmtProb(a.prob)}`)));
  tip.replaceChildren(tokenLine(tok),
    el("div", {}, `entropy ${fmt(tok.entropy / Math.LN2, 2)} bits · surprisal ${fmt(tok.surprisal_bits, 2)} bits`),
    ...(more.length ? [el("div", {class: "split-note", text: `${showToken(span.textContent)} is ${more.length + 1} ` +
                                  "byte-level tokens; the box shows the first, then:"}), ...more.map(tokenLine)] : []),
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
let sideOpener = null;  // the token box to return the focus to

async function openSide(reading, index, span) {
  const tok = reading.data.score.tokens[index];
  const ids = reading.data.score.input_ids.slice(0, tok.position);
  $("tip").hidden = true;
  try {
    const dist = await api("/api/position", {model: reading.model, ids, top: 50, token_id: tok.token_id},
                           "Reading the distribution…");
    const read = dist.read || tok;  // a top-k-only backend knows no row beyond its top k: the score's numbers
    $("side-title").textContent = `Position ${tok.position}: the model read ${showToken(tok.text)}`;
    $("side-meta").textContent = `p = ${fmtProb(read.prob)}, rank ${read.rank}; entropy ${fmt(dist.entropy / Math.LN2, 2)} bits; ` +
      `the top ${dist.top.length} hold ${fmt(100 * dist.top.at(-1).cumulative, 1)}% of the mass` +
      (dist.truncated ? ` (last ${dist.prefix_tokens} tokens before it)` : "");
    const rows = dist.top.map((c) => ({label: showToken(c.text), value: c.prob, note: `${fmtProb(c.prob)} Σ${fmt(c.cumulative, 2)}`,
                                       cls: c.token_id === tok.token_id ? "chosen" : ""}));
    if (read.rank > dist.top.length) {  // the token read is beyond the top: its own row, after a gap
      rows.push({label: `⋯ ${read.rank - dist.top.length - 1} more ⋯`, value: 0, note: "", cls: "gap"},
                {label: showToken(read.text), value: read.prob, note: `${fmtProb(read.prob)} rank ${read.rank}`, cls: "chosen"});
    }
    bars($("side-bars"), rows);
    $("alt").replaceChildren(...dist.top.map((c) => el("option", {value: c.token_id, text: `${showToken(c.text)} (${fmtProb(c.prob)})`})));
    $("side").dataset.ids = JSON.stringify(ids);
    $("side").dataset.model = reading.model;
    $("continuation").textContent = "";
    $("side").hidden = false;
    sideOpener = span || null;
    $("side-close").focus();
  } catch (err) { showError(err); }
}

function closeSide() {
  $("side").hidden = true;
  if (sideOpener && sideOpener.isConnected) sideOpener.closest(".tokens").focus();
}

async function continueFromHere() {
  const ids = [...JSON.parse($("side").dataset.ids), +$("alt").value];
  const alt = $("alt").selectedOptions[0].textContent;
  try {
    const out = await jobResult("Continuing…", "/api/continue", {model: $("side").dataset.model, ids, max_new_tokens: 20, stream: true},
                                $("continuation"));
    if (out) $("continuation").replaceChildren(el("b", {text: `…${alt.slice(0, alt.lastIndexOf(" ("))}`}), " → ", out.text);
  } catch (err) { showError(err); }
}

// -- reading ---------------------------------------------------------------------------------------
const normalise = (s) => s.replace(/\r\n?/g, "\n");

// The text to read: the file's own text while the box still shows it (its CR LF kept), else the box's.
function textToRead() {
  const shown = $("text").value;
  return fileText !== null && normalise(fileText) === shown ? fileText : shown;
}

function body(name) {
  return {model: name, text: textToRead(), context: $("context").value || null, top_k: 10, color_by: $("colorby").value};
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
    fileText = new TextDecoder("utf-8", {fatal: true}).decode(await file.arrayBuffer());
    $("text").value = fileText;
    showError(null);
  } catch (err) {
    fileText = null;
    showError(new Error(`${file.name} is not UTF-8 text: save it as UTF-8 and drop it again`));
  }
}

export function initRead() {
  $("read-form").addEventListener("submit", read);
  $("colorby").addEventListener("change", () => (readings.length ? render() : legend($("colorby").value)));
  $("palette").addEventListener("change", () => {
    setPalette($("palette").value);
    readings.length ? render() : legend($("colorby").value);
  });
  $("file").addEventListener("change", (e) => e.target.files[0] && loadFile(e.target.files[0]));
  $("text").addEventListener("dragover", (e) => e.preventDefault());
  $("text").addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
  });
  $("side-close").addEventListener("click", closeSide);
  $("side").addEventListener("keydown", (e) => e.key === "Escape" && closeSide());
  $("continue").addEventListener("click", continueFromHere);
  $("dl-json").addEventListener("click", () =>
    download("logitscope-reading.json", "application/json", JSON.stringify(readings.map((r) => r.data), null, 2)));
  $("dl-html").addEventListener("click", async () => {
    try {
      const page = await api("/api/read/html", {...body(readings[0].model), palette: $("palette").value},
                             "Writing the HTML heatmap…", true);
      download("logitscope-heatmap.html", "text/html", page);
    } catch (err) { showError(err); }
  });
  legend($("colorby").value);
}
