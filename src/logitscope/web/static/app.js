// The page: tabs, the model picker, the busy bar. Each view lives in its own module.
import {$, el, cancel, showError} from "./common.js";
import {initRead} from "./read.js";
import {initLab} from "./lab.js";
import {initStep} from "./step.js";
import {initRank} from "./rank.js";

const TABS = ["read", "lab", "step", "rank"];

function selectTab(name) {
  for (const t of TABS) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(t).hidden = t !== name;
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

function init() {
  for (const t of TABS) $(`tab-${t}`).addEventListener("click", () => selectTab(t));
  $("cancel").addEventListener("click", cancel);
  initRead();
  initLab();
  initStep();
  initRank();
  loadModels().catch(showError);
}

init();
