// The page: view buttons, the model picker, presentation mode, the busy bar. Each view lives in its own module.
import {$, el, cancelAll, isBusy, showError} from "./common.js";
import {loadScales} from "./colours.js";
import {initRead} from "./read.js";
import {initLab} from "./lab.js";
import {initStep} from "./step.js";
import {initRank} from "./rank.js";

const VIEWS = ["read", "lab", "step", "rank"];

function selectView(name) {
  for (const v of VIEWS) {
    $(`tab-${v}`).setAttribute("aria-pressed", String(v === name));
    $(v).hidden = v !== name;
  }
  showError(null);
}

async function loadModels() {
  const res = await fetch("/api/models");
  const {models} = await res.json();
  for (const m of models) {
    const label = `${m.name} (context ${m.context_length})`;
    $("model").append(el("option", {value: m.name, text: label}));
    $("compare").append(el("option", {value: m.name, text: label}));
  }
}

// Presentation mode: large type and high contrast for a projector; kept across reloads.
function present(on) {
  document.documentElement.classList.toggle("present", on);
  $("present").setAttribute("aria-pressed", String(on));
  try { localStorage.setItem("logitscope-present", on ? "1" : ""); } catch { /* storage refused: fine */ }
}

async function init() {
  for (const v of VIEWS) $(`tab-${v}`).addEventListener("click", () => selectView(v));
  $("cancel").addEventListener("click", cancelAll);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isBusy()) cancelAll();
  });
  $("present").addEventListener("click", () => present(!document.documentElement.classList.contains("present")));
  try { present(localStorage.getItem("logitscope-present") === "1"); } catch { present(false); }
  await loadScales();
  initRead();
  initLab();
  initStep();
  initRank();
  await loadModels();
  document.body.dataset.ready = "1";
}

init().catch(showError);
