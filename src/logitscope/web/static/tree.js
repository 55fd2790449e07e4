// A tree drawn as SVG, left to right: one box per token, edges as wide as the token's probability
// (and labelled with it), the path's probability on hover or focus; every node is a keyboard button.
// The SVG is drawn at the page's own type size (no viewBox scaling), inside a box that scrolls.
import {el, scrollBox, svgEl} from "./common.js";

const MAX_LABEL = 16;  // characters of a token shown in its box

// node: {label, prob (edge into it, or null for the root), pathText (shown on hover and focus), children: [node],
//        cls, attrs, title (its accessible name: starts with the label)}
export function drawTree(root, {label, onPick}) {
  const size = parseFloat(getComputedStyle(document.body).fontSize);
  const charW = 0.62 * size, rowH = 2.1 * size, boxH = 1.6 * size, pad = size / 2;
  const placed = [];
  let leaves = 0, widest = 0;
  (function place(node, depth) {
    const text = node.label.length > MAX_LABEL ? node.label.slice(0, MAX_LABEL - 1) + "…" : node.label;
    const item = {node, depth, text, w: text.length * charW + 2 * pad};
    placed.push(item);  // depth first, parents before children: the order Tab walks them
    widest = Math.max(widest, item.w);
    item.kids = node.children.map((c) => place(c, depth + 1));
    item.y = item.kids.length ? (item.kids[0].y + item.kids.at(-1).y) / 2 : (leaves++) * rowH + rowH / 2;
    return item;
  })(root, 0);
  const colW = widest + 6 * charW;  // room for the edge and its label
  const depth = Math.max(...placed.map((p) => p.depth));
  const svg = svgEl("svg", {class: "tree-svg", width: (depth * colW + widest + 2).toFixed(0),
                            height: (leaves * rowH).toFixed(0), role: "group", "aria-label": label});
  const info = el("p", {class: "tree-info", "aria-live": "polite"});
  const edges = svgEl("g", {class: "edges"}), nodes = svgEl("g");
  for (const item of placed) item.x = item.depth * colW;
  for (const item of placed) for (const kid of item.kids) edges.append(...edge(item, kid, size));
  for (const item of placed) nodes.append(nodeBox(item, boxH, pad, size, info, onPick));
  svg.append(edges, nodes);
  return el("div", {class: "tree"}, scrollBox(label, svg), info);
}

function edge(parent, kid, size) {
  const x1 = parent.x + parent.w, x2 = kid.x, mid = (x1 + x2) / 2;
  const p = kid.node.prob;
  const path = svgEl("path", {d: `M${x1},${parent.y} C${mid},${parent.y} ${mid},${kid.y} ${x2},${kid.y}`,
                              class: "edge" + (kid.node.cls && kid.node.cls.includes("onpath") ? " onpath" : "")});
  path.style.strokeWidth = `${1 + 0.5 * size * p}px`;  // as wide as the probability: up to half the type size
  const text = svgEl("text", {x: x2 - 0.3 * size, y: kid.y - 0.35 * size, "text-anchor": "end", class: "edge-label"});
  text.textContent = p >= 0.01 ? p.toFixed(2) : p.toExponential(0);
  return [path, text];
}

function nodeBox(item, boxH, pad, size, info, onPick) {
  const n = item.node;
  const g = svgEl("g", {class: `tnode ${n.cls || ""}`, tabindex: "0", role: "button", "aria-label": n.title,
                        transform: `translate(${item.x},${item.y - boxH / 2})`, ...(n.attrs || {})});
  const rect = svgEl("rect", {width: item.w, height: boxH, rx: 4});
  const text = svgEl("text", {x: pad, y: boxH / 2 + 0.35 * size, class: "mono"});
  text.textContent = item.text;
  g.append(rect, text);
  const tell = () => { info.textContent = n.pathText; };
  g.addEventListener("mouseenter", tell);
  g.addEventListener("focus", tell);
  g.addEventListener("click", () => onPick(n));
  g.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(n); }
  });
  return g;
}
