// Generate step by step: draw or force one token at a time; every branch stays in the tree.
import {$, el, api, fmt, fmtProb, jobResult, model, scrollBox, showError, showToken, streamJob} from "./common.js";
import {drawTree} from "./tree.js";

let session = null;

function samplerBody() {
  const topK = Number($("step-top_k").value);
  return {model: model(), prompt: $("step-prompt").value, temperature: Number($("step-temperature").value),
          top_k: topK > 0 ? topK : null, top_p: Number($("step-top_p").value), seed: Number($("step-seed").value)};
}

function render(s) {
  session = s;
  const byId = s.nodes;
  $("step-text").replaceChildren(el("span", {class: "muted", text: s.prompt}),
    ...s.path.map((id) => el("span", {class: "gen", text: byId[id].text || "⏎EOS", title: `p = ${fmtProb(byId[id].prob)}`})));
  const d = s.distribution;
  $("step-meta").textContent = d ? `${d.survivors} survivors · entropy ${fmt(d.entropy / Math.LN2, 2)} bits (raw ${fmt(d.raw_entropy / Math.LN2, 2)}) · click a token to force it`
                                 : (s.ended ? "this branch ended with EOS" : "the context is full");
  $("step-dist").replaceChildren(...(d ? d.top : []).map((c) => el("li", {},
    el("button", {type: "button", class: "cand", "data-token": c.token_id, onclick: () => act("step", {token_id: c.token_id})},
      el("span", {class: "mono", text: showToken(c.text)}), ` ${fmtProb(c.prob)}`),
    el("span", {class: "muted", text: ` raw ${fmtProb(c.raw_prob)}`}))));
  $("step-tree").replaceChildren(drawTree(explored(s, 0), {label: "Explored tree: every branch drawn so far",
                                                           onPick: (n) => act("goto", {node: n.id})}));
  for (const b of ["step-one", "step-run", "step-tree-go"]) $(b).disabled = !d;
  $("step-undo").disabled = s.current === 0;
}

// The session's nodes as drawTree nodes (the root is the prompt).
function explored(s, id) {
  const node = s.nodes[id], onPath = s.path.includes(id), token = showToken(node.text || "EOS");
  const where = id === 0 ? "prompt: the prompt" : `${token}: p = ${fmtProb(node.prob)}, path p = ${fmtProb(node.cum_prob)} ` +
                                                   `(Σ log p = ${fmt(node.cum_logprob, 2)})`;
  return {id, label: id === 0 ? "prompt" : token, prob: id === 0 ? null : node.prob, pathText: where,
          title: `${where}${id === s.current ? " · current" : ""}; go to this node`,
          cls: "node" + (id === s.current ? " current" : "") + (onPath ? " onpath" : ""), attrs: {"data-node": id},
          children: node.children.map((c) => explored(s, c))};
}

async function start(e) {
  e.preventDefault();
  showError(null);
  $("step-beams").replaceChildren();
  $("step-possible").replaceChildren();
  try { render(await api("/api/step", samplerBody(), "Starting…")); } catch (err) { showError(err); }
}

async function act(action, body = {}) {
  if (!session) return;
  try { render(await api(`/api/step/${session.id}/${action}`, body, "Stepping…")); showError(null); } catch (err) { showError(err); }
}

// Run N: one token per worker step, progress as it goes; Cancel keeps what was drawn.
async function runN() {
  const n = Number($("step-n").value);
  try {
    const last = await streamJob(`Running ${n} steps…`, `/api/step/${session.id}/run`, {n}, (msg) => {
      if (msg.session) render(msg.session);
    });
    if (last.result) render(last.result);
    if (last.cancelled) $("step-meta").textContent += " (run cancelled)";
  } catch (err) { showError(err); }
}

// The tree of possibilities (Model.tree) after the current node; clicking a branch forces its path.
async function possibilities() {
  const body = {depth: Number($("step-tree-depth").value), branch: Number($("step-tree-branch").value), stream: true};
  try {
    const t = await jobResult("Growing the tree…", `/api/step/${session.id}/tree`, body, $("step-possible"));
    if (!t) return;
    const from = session.nodes[t.node];
    const where = t.node === 0 ? "the prompt" : `node ${t.node} (${showToken(from.text || "EOS")})`;
    const label = t.node === 0 ? "prompt" : showToken(from.text || "EOS");
    const root = {label, prob: null, pathText: `from ${where}`, title: `${label}: ${where}, where the tree grows from`,
                  cls: "branch root", children: t.children.map((c) => branch(c, [])), path: []};
    $("step-possible").replaceChildren(el("h2", {text: `Tree after ${where}: top ${t.branch}, ${t.depth} deep`}),
      el("p", {class: "muted", text: "The model's own probabilities (no sampler); edges as wide as p. Click a branch to follow it."}),
      drawTree(root, {label: "Tree of possibilities", onPick: (n) => n.path.length && follow(t.node, n.path)}));
    showError(null);
  } catch (err) { showError(err); }
}

function branch(node, above) {
  const path = [...above, node.token_id];
  const pathText = `${showToken(node.text)}: p = ${fmtProb(node.prob)}, path p = ${fmtProb(node.cum_prob)}`;
  return {label: showToken(node.text), prob: node.prob, pathText, title: `${pathText}; follow this branch`, path,
          cls: "branch", attrs: {"data-path": path.join(",")}, children: node.children.map((c) => branch(c, path))};
}

async function follow(from, tokens) {
  try {
    let s = await api(`/api/step/${session.id}/goto`, {node: from}, "Following the branch…");
    for (const token_id of tokens) s = await api(`/api/step/${session.id}/step`, {token_id}, "Following the branch…");
    render(s);
    showError(null);
  } catch (err) { showError(err); }
}

async function beams() {
  const body = {model: model(), prompt: $("step-prompt").value, num_beams: 4, max_new_tokens: 12, stream: true};
  try {
    const r = await jobResult("Greedy vs beam…", "/api/beam", body, $("step-beams"));
    if (!r) return;
    const row = (name, b) => el("tr", {}, el("td", {text: name}), el("td", {class: "mono", text: b.text}),
      el("td", {text: fmt(b.logprob, 3)}), el("td", {text: fmt(b.normalized, 3)}));
    $("step-beams").replaceChildren(scrollBox("Greedy vs beam search", el("table", {},
      el("caption", {text: `Greedy vs beam search (${r.num_beams} beams, ${r.max_new_tokens} tokens)`}),
      el("tr", {}, ...["decoder", "text", "Σ log p", "normalised"].map((h) => el("th", {text: h}))),
      row("greedy", r.greedy), ...r.beams.map((b, i) => row(`beam ${i + 1}`, b)))));
  } catch (err) { showError(err); }
}

export function initStep() {
  $("step-form").addEventListener("submit", start);
  $("step-one").addEventListener("click", () => act("step"));
  $("step-undo").addEventListener("click", () => act("undo"));
  $("step-run").addEventListener("click", runN);
  $("step-beam").addEventListener("click", beams);
  $("step-tree-go").addEventListener("click", possibilities);
}
