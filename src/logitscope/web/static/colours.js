// The heatmap's colour scales, as the library defines them (views/colours.py, sent by GET /api/colours):
// ramps of anchor colours interpolated linearly in sRGB, channels rounded half up, exactly as
// colours.ramp_colour does, so the page, the terminal and the HTML heatmap colour a token alike.
let scales = null;
let current = null;  // the palette in use

export async function loadScales() {
  scales = await (await fetch("/api/colours")).json();
  current = scales.default;
  return scales;
}

export const paletteNames = () => Object.keys(scales.palettes);
export function setPalette(name) { current = name; }

const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

export function ramp(anchors, share) {
  const x = Math.min(Math.max(share, 0), 1) * (anchors.length - 1);
  const i = Math.min(Math.floor(x), anchors.length - 2), t = x - i;
  const lo = rgb(anchors[i]), hi = rgb(anchors[i + 1]);
  return "#" + lo.map((a, c) => Math.floor(a + (hi[c] - a) * t + 0.5).toString(16).padStart(2, "0")).join("");
}

export function rankBucket(rank) {
  const i = scales.rank_limits.findIndex(([limit]) => limit !== null && rank <= limit);
  return i < 0 ? scales.rank_limits.length - 1 : i;
}

// Scale position of each mode's value: 0 = the low end of the ramp.
const SHARE = {
  prob: (v) => (Math.max(Math.log10(Math.max(v, 1e-300)), scales.prob_floor_log10) - scales.prob_floor_log10)
               / -scales.prob_floor_log10,
  surprisal: (v) => v / scales.surprisal_ceiling,
  entropy: (v) => Math.max(v, 0) / scales.entropy_ceiling,
};

export function colourOf(mode, value) {
  const p = scales.palettes[current];
  return mode === "rank" ? p.rank[rankBucket(value)] : ramp(p[mode], SHARE[mode](value));
}

export function tokenColour(tok, mode) {
  const value = {prob: tok.prob, rank: tok.rank, entropy: tok.entropy, surprisal: tok.surprisal_bits}[mode];
  return colourOf(mode, value);
}

// Black or white, whichever has the higher WCAG contrast (colours.text_colour).
function luminance(hex) {
  const [r, g, b] = rgb(hex).map((c) => { const s = c / 255; return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
export function textOn(hex) {
  const l = luminance(hex);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000000" : "#ffffff";
}

// (label, colour) samples of a scale, low to high (colours.legend_swatches, plus surprisal).
export function swatches(mode) {
  if (mode === "rank") return scales.rank_limits.map(([, label], i) => [label, scales.palettes[current].rank[i]]);
  const points = {prob: [[1e-4, "p ≤ 1e-4"], [1e-3, "0.001"], [1e-2, "0.01"], [0.1, "0.1"], [1, "1"]],
                  entropy: [[0, "0"], [1.5, "1.5"], [3, "3"], [4.5, "4.5"], [6, "≥ 6 nats"]],
                  surprisal: [[0, "0"], [3, "3"], [6, "6"], [9, "9"], [13.3, "≥ 13.3 bits"]]}[mode];
  return points.map(([v, label]) => [label, colourOf(mode, v)]);
}
