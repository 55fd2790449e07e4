// The sampler lab: the prompt's distribution after each stage of the library's chain.
// The server keeps the prompt's logits; a slider change only re-runs the processors.
import {$, el, api, bars, fmt, fmtProb, model, showError, showToken, svgEl} from "./common.js";

const SLIDERS = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty"];
let inFlight = false, pending = false, rev = 0;

function parseBias(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const at = line.lastIndexOf("=");
    if (at < 0) throw new Error(`logit bias line ${JSON.stringify(line)} needs token=value`);
    const key = line.slice(0, at), raw = line.slice(at + 1).trim();
    const value = raw === "-inf" ? "-inf" : Number(raw);  // JSON has no -Infinity
    if (Number.isNaN(value)) throw new Error(`logit bias value ${JSON.stringify(raw)} is not a number`);
    out.push([/^\d+$/.test(key.trim()) ? Number(key.trim()) : key, value]);
  }
  return out;
}

export function settings() {
  const s = {model: model(), prompt: $("lab-prompt").value};
  for (const name of SLIDERS) s[name] = Number($(`lab-${name}`).value);
  if (s.top_k === 0) s.top_k = null;
  s.bias = parseBias($("lab-bias").value);
  return s;
}

function showValues() {
  for (const name of SLIDERS) {
    const v = $(`lab-${name}`).value;
    $(`lab-${name}`).nextElementSibling.textContent = name === "top_k" && v === "0" ? "off" : v;
  }
}

function stageCard(stage) {
  const mass = stage.top.reduce((a, c) => a + c.prob, 0);
  const svg = svgEl("svg", {role: "img", "aria-label": `distribution after ${stage.stage}`});
  const card = el("figure", {class: "stage"},
    el("figcaption", {}, el("b", {text: stage.stage}),
       ` · ${stage.survivors} survivor${stage.survivors === 1 ? "" : "s"} · H ${fmt(stage.entropy / Math.LN2, 2)} bits · ` +
       `top ${stage.top.length} hold ${fmt(100 * mass, 1)}%`), svg);
  bars(svg, stage.top.map((c) => ({label: showToken(c.text), value: c.prob, note: fmtProb(c.prob)})), 360);
  return card;
}

function render(result) {
  const last = result.stages.at(-1);
  $("lab-stages").replaceChildren(...result.stages.map(stageCard));
  $("lab-summary").replaceChildren("After the chain: ", el("b", {id: "lab-survivors", text: String(last.survivors)}),
    " survivors; top token ", el("span", {class: "mono", text: showToken(last.top[0].text)}), " p = ",
    el("b", {id: "lab-top-prob", text: fmtProb(last.top[0].prob)}));
  $("lab-stages").dataset.rev = String(++rev);
}

// Coalesce: while one request runs, remember only that the settings changed again.
export async function refresh() {
  $("lab-stages").classList.add("stale");  // dimmed until the numbers match the sliders again
  if (inFlight) { pending = true; return; }
  inFlight = true;
  try {
    render(await api("/api/lab/chain", {...settings(), top: 15}));
    showError(null);
  } catch (err) { showError(err); } finally {
    inFlight = false;
    if (pending) { pending = false; refresh(); } else $("lab-stages").classList.remove("stale");
  }
}

function verdict(r) {
  if (r.dof === 0) return "(one bin: nothing to test)";
  return `p = ${fmt(r.p_value, 3)} ${r.p_value > 0.01 ? "(consistent with the distribution)" : "(unlikely under it: a sampler bug?)"}`;
}

async function draw() {
  try {
    const r = await api("/api/lab/sample", {...settings(), n: 1000, seed: 0});
    const rows = r.rows.slice(0, 15);
    const table = el("table", {class: "draws"},
      el("caption", {text: `${r.n} draws (seed ${r.seed}): χ² = ${fmt(r.chi_square, 2)}, dof ${r.dof}, ` + verdict(r)}),
      el("tr", {}, el("th", {text: "token"}), el("th", {text: "expected"}), el("th", {text: "drawn"})),
      ...rows.map((c) => el("tr", {}, el("td", {class: "mono", text: showToken(c.text)}),
                             el("td", {text: fmt(c.prob * r.n, 1)}), el("td", {text: String(c.count)}))));
    $("lab-draws").replaceChildren(table);
  } catch (err) { showError(err); }
}

export function initLab() {
  for (const name of SLIDERS) $(`lab-${name}`).addEventListener("input", () => { showValues(); refresh(); });
  $("lab-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("lab-bias").addEventListener("change", refresh);
  $("lab-draw").addEventListener("click", draw);
  showValues();
}
