// Rank candidate continuations (sum / mean / per byte / PMI) and, with a context, the lift per token.
import {$, el, fmt, jobResult, model, scrollBox, showError, showToken} from "./common.js";

const NORMS = [["sum", "Σ log p"], ["mean", "mean"], ["per_byte", "per byte"], ["pmi", "PMI"]];

function rankTable(r) {
  const place = (norm, i) => r.order[norm].indexOf(i) + 1;
  return el("table", {class: "ranked"},
    el("caption", {text: "Candidates (natural-log scores; the rank under each in brackets, 1 = best)"}),
    el("tr", {}, el("th", {text: "candidate"}), el("th", {text: "tokens"}), ...NORMS.map(([, h]) => el("th", {text: h}))),
    ...r.candidates.map((c, i) => el("tr", {}, el("td", {class: "mono", text: showToken(c.candidate)}),
      el("td", {text: String(c.num_tokens)}),
      ...NORMS.map(([n]) => el("td", {class: place(n, i) === 1 ? "best" : "",
                                      text: `${fmt(c.scores[n], 3)} (${place(n, i)})`})))));
}

function liftTable(lifts) {
  return el("table", {class: "lift"},
    el("caption", {text: "With the retrieved context: lift = log p(with) − log p(without), per token"}),
    el("tr", {}, ...["candidate", "Σ without", "Σ with", "lift", "per token"].map((h) => el("th", {text: h}))),
    ...lifts.map((l) => {
      const c = l.contexts[0];
      return el("tr", {}, el("td", {class: "mono", text: showToken(l.answer)}), el("td", {text: fmt(l.total_without, 3)}),
        el("td", {text: fmt(c.total_with, 3)}), el("td", {class: c.lift > 0 ? "best" : "", text: fmt(c.lift, 3)}),
        el("td", {class: "mono", text: c.tokens.map((t) => `${showToken(t.text)} ${t.lift >= 0 ? "+" : ""}${fmt(t.lift, 2)}`).join("  ")}));
    }));
}

async function rankCandidates(e) {
  e.preventDefault();
  showError(null);
  const candidates = $("rank-candidates").value.split("\n").filter((c) => c.trim());
  if (!candidates.length) { showError(new Error("give at least one candidate, one per line")); return; }
  try {
    const out = await jobResult("Ranking…", "/api/rank",
      {model: model(), prompt: $("rank-prompt").value, candidates, context: $("rank-context").value || null, stream: true}, $("rank-out"));
    if (!out) return;
    $("rank-out").replaceChildren(scrollBox("Ranked candidates", rankTable(out.rank)),
      ...(out.lift ? [scrollBox("Context lift", liftTable(out.lift))] : []),
      ...out.rank.notes.map((n) => el("p", {class: "notes", text: n})));
  } catch (err) { showError(err); }
}

export function initRank() {
  $("rank-form").addEventListener("submit", rankCandidates);
}
