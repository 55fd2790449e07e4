// The sampler lab: the prompt's next-token distribution through each stage of the library's chain.
// The server keeps the prompt's logits; a slider change only re-runs the processors. Every number
// (logits, probabilities, cumulative masses, cut-offs) is the library's (ChainResult.to_dict):
// this file only lays them out. The same tokens stay in every card, so a token can be followed
// from its logit to the end; a token a stage removes stays at its place, greyed, with the cut line.
import {$, el, api, fmt, fmtProb, model, scrollBox, showError, showToken} from "./common.js";

const SLIDERS = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty"];
const FILTERS = new Set(["top-k", "top-p", "min-p", "greedy"]);
const LOG_FLOOR = -6;  // log-scale bars start at p = 1e-6
let inFlight = false, pending = false, rev = 0, last = null;

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
    $(`lab-${name}`).previousElementSibling.textContent = name === "top_k" && v === "0" ? "off" : v;
  }
}

// -- one card per stage --------------------------------------------------------------------------
function barWidth(p) {
  if (!p) return 0;
  return $("lab-log").checked ? Math.max(0, (Math.log10(p) - LOG_FLOOR) / -LOG_FLOOR) : p;
}

// What a stage does, in one line, with the library's cut-off numbers.
function explain(stage) {
  const c = stage.cut || {}, v = stage.parameter;
  switch (stage.kind) {
    case "raw": return "The model's logits z; softmax turns them into p = e^z / Σ e^z.";
    case "bias": return "Logit bias: the listed tokens' logits get their value added (−inf bans).";
    case "repetition": return `Repetition penalty: logits of tokens already in the prompt are divided by ${v} (negative ones multiplied).`;
    case "temperature": return `Temperature: every logit is divided by T = ${v} (T < 1 sharpens, T > 1 flattens).`;
    case "greedy": return "Temperature 0 is greedy: only the most likely token survives.";
    case "top-k": return `Top-k keeps the ${v} highest logits (ties at the boundary kept): ${c.kept} kept, ` +
                         `down to logit ${fmt(c.kth_logit, 2)}.`;
    case "top-p": return `Top-p keeps the most likely tokens until their mass reaches ${v}: ${c.kept} token${c.kept === 1 ? " holds" : "s hold"} ` +
                         `${fmt(c.kept_mass, 4)} (without the last one ${fmt(c.mass_before_last, 4)} < ${v}).`;
    case "min-p": return `Min-p keeps tokens with p ≥ min_p × p_max = ${v} × ${fmtProb(c.p_max)} = ${fmtProb(c.threshold)}: ` +
                         `${c.kept} kept.`;
    default: return "";
  }
}

function cutLabel(stage) {
  const c = stage.cut, v = stage.parameter;
  if (stage.kind === "top-k") return `top-k boundary: the ${v} highest logits above, the rest below`;
  if (stage.kind === "top-p") return `top-p cut: cumulative mass ${fmt(c.kept_mass, 4)} ≥ p = ${v}`;
  if (stage.kind === "min-p") return `min-p threshold: p_max × min_p = ${fmtProb(c.threshold)}`;
  return "greedy: only the top token";
}

// A row: token, logit, bar, probability, cumulative mass.
function row(r, stage, filter, final) {
  const state = r.removed_by === null ? "kept" : r.removed_by === stage.stage && !final ? "removed" : "gone";
  const shown = state === "gone" ? 0 : filter || state === "removed" ? r.prob_in : r.prob;
  const logit = filter || state === "removed" ? r.logit_in : r.logit;
  const cum = filter ? r.cum_in : r.cum;
  const fill = el("span", {class: "bfill"});
  fill.style.width = `${100 * Math.min(1, barWidth(shown))}%`;
  const why = state === "removed" ? ` removed by ${stage.stage}` : state === "gone" ? ` removed earlier (${r.removed_by})` : "";
  return el("div", {class: `lrow ${state}`, role: "listitem", "data-token": r.token_id, title: `${showToken(r.text)}${why}`},
    el("span", {class: "blabel mono", text: showToken(r.text)}),
    el("span", {class: "lnum logit", text: logit === null ? "−∞" : fmt(logit, 2)}),
    el("span", {class: "btrack"}, fill),
    el("span", {class: "lnum prob", text: state === "gone" ? "0" : fmtProb(shown)}),
    el("span", {class: "lnum cum", text: state === "gone" ? "" : fmt(cum, 3)}));
}

function card(stage, final = false) {
  const filter = FILTERS.has(stage.kind) && !final;
  const list = el("div", {class: "lrows", role: "list", "aria-label": `tokens at ${stage.stage}`});
  const cutShown = stage.rows.some((r) => r.removed_by === stage.stage);  // else it falls below the rows shown
  const cut = el("div", {class: "cut", role: "listitem", text: cutLabel(stage) + (cutShown ? "" : " (below the rows shown)")});
  for (const r of stage.rows) {
    if (filter && r.removed_by !== null && !cut.parentNode) list.append(cut);  // between the kept and the rest
    list.append(row(r, stage, filter, final));
  }
  if (filter && !cut.parentNode) list.append(cut);
  const note = final ? `Survivors of ${stage.stage}, each p divided by the mass kept (${fmt(stage.cut.kept_mass, 4)}): ` +
                       "what a draw is made from."
                     : explain(stage) + (filter ? ` Removed mass ${fmt(stage.removed_mass, 4)}.` : "");
  return el("figure", {class: `stage ${filter ? "filter" : ""}`, "data-kind": final ? "final" : stage.kind},
    el("figcaption", {}, el("b", {text: final ? "renormalised survivors" : stage.stage}),
       ` · ${stage.survivors} survivor${stage.survivors === 1 ? "" : "s"} · H ${fmt(stage.entropy / Math.LN2, 2)} bits`,
       el("br"), el("span", {class: "muted", text: note})),
    el("div", {class: "lhead", "aria-hidden": "true"}, el("span", {text: "token"}), el("span", {text: filter ? "logit in" : "logit"}),
       el("span", {text: $("lab-log").checked ? "log scale" : ""}), el("span", {text: filter ? "p in" : "p"}),
       el("span", {text: "Σp"})),
    list);
}

function render(result) {
  last = result;
  const stages = result.stages, end = stages.at(-1);
  const cards = stages.map((s) => card(s));
  if (FILTERS.has(end.kind)) cards.push(card(end, true));
  $("lab-stages").replaceChildren(scrollBox("The distribution after each stage", ...cards));
  const best = end.top[0];
  $("lab-summary").replaceChildren("After the chain: ", el("b", {id: "lab-survivors", text: String(end.survivors)}),
    " survivors; top token ", el("span", {class: "mono", text: showToken(best.text)}), " p = ",
    el("b", {id: "lab-top-prob", text: fmtProb(best.prob)}));
  $("lab-stages").dataset.rev = String(++rev);
}

// Coalesce: while one request runs, remember only that the settings changed again.
export async function refresh() {
  $("lab-stages").classList.add("stale");  // dimmed until the numbers match the sliders again
  if (inFlight) { pending = true; return; }
  inFlight = true;
  try {
    const top = document.documentElement.classList.contains("present") ? 8 : 12;  // rows per card
    render(await api("/api/lab/chain", {...settings(), top}, "Computing the distribution…"));
    showError(null);
  } catch (err) { showError(err); } finally {
    inFlight = false;
    if (pending) { pending = false; refresh(); } else $("lab-stages").classList.remove("stale");
  }
}

// -- drawing samples -------------------------------------------------------------------------------
// What the chi-square p-value says, without crying "bug": p is uniform over seeds when the sampler is right.
export function verdict(r) {
  if (r.dof === 0) return "Every draw is expected in one bin (0 degrees of freedom): there is nothing to test. Keep more tokens or draw more.";
  const p = r.p_value;
  const head = `p = ${p < 0.001 ? p.toExponential(1) : fmt(p, 3)}: the chance of counts at least this far from the expected ones ` +
               "if the draws follow the distribution exactly.";
  if (p >= 0.05) return `${head} The counts fit the distribution.`;
  if (p >= 0.001) return `${head} That happens by chance in ${fmt(100 * p, 1)}% of runs (one seed in twenty gives p < 0.05): ` +
                         "draw again with other seeds before reading anything into it.";
  return `${head} Rare by chance, but one seed in a thousand gives p < 0.001: try a few other seeds. ` +
         "A sampler that is wrong gives a tiny p for almost every seed.";
}

async function draw(e) {
  if (e) e.preventDefault();
  const n = Number($("lab-n").value), seed = Number($("lab-seed").value);
  try {
    const r = await api("/api/lab/sample", {...settings(), n, seed}, `Drawing ${n}…`);
    const rows = r.rows.slice(0, 15);
    $("lab-draws").replaceChildren(
      el("p", {class: "chi", id: "lab-chi"}, el("b", {text: `${r.n} draws, seed ${r.seed}: χ² = ${fmt(r.chi_square, 2)}, dof ${r.dof}. `}),
         verdict(r)),
      scrollBox("Draws against the expected counts", el("table", {class: "draws"},
        el("caption", {text: `Expected and drawn counts (top ${rows.length} of ${r.survivors} survivors)`}),
        el("tr", {}, el("th", {text: "token"}), el("th", {text: "p"}), el("th", {text: "expected"}), el("th", {text: "drawn"})),
        ...rows.map((c) => el("tr", {}, el("td", {class: "mono", text: showToken(c.text)}), el("td", {text: fmtProb(c.prob)}),
                              el("td", {text: fmt(c.prob * r.n, 1)}), el("td", {text: String(c.count)}))))));
  } catch (err) { showError(err); }
}

export function initLab() {
  for (const name of SLIDERS) $(`lab-${name}`).addEventListener("input", () => { showValues(); refresh(); });
  $("lab-form").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("lab-bias").addEventListener("change", refresh);
  $("lab-log").addEventListener("change", () => last && render(last));
  $("draw-form").addEventListener("submit", draw);
  $("lab-reseed").addEventListener("click", () => {
    $("lab-seed").value = String(Math.floor(Math.random() * 2 ** 31));
    draw();
  });
  showValues();
}
