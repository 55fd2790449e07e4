"""lm-evaluation-harness's ``local-completions`` against the server equals lm-eval's own ``hf`` model.

lm-eval is heavy, so it lives in the contenders environment built by
benchmarks/setup_contenders.sh (default /work/venv-contenders, or $LOGITSCOPE_CONTENDERS);
without it this test is skipped. The task is local: tests/data/lm_eval_task (YAML over JSONL).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from logitscope.loading import bundled_gguf_path, converted_dir_for
from logitscope.server import create_app
from server_util import LiveServer
from tolerances import FLOAT32_TOKEN

TASK_DIR = Path(__file__).parent / "data" / "lm_eval_task"
CONTENDERS = Path(os.environ.get("LOGITSCOPE_CONTENDERS", "/work/venv-contenders"))
PYTHON = CONTENDERS / "bin" / "python"


def _lm_eval_ready() -> str | None:
    """None when lm-eval (with its API extras) can run; otherwise why not."""
    if not PYTHON.exists():
        return f"no contenders environment at {CONTENDERS} (run benchmarks/setup_contenders.sh)"
    probe = subprocess.run([str(PYTHON), "-c", "import lm_eval, tenacity, aiohttp"], capture_output=True)
    if probe.returncode != 0:
        return f"lm-eval with its API extras is not importable in {CONTENDERS} (pip install 'lm-eval[api]')"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.contenders,
              pytest.mark.skipif(_lm_eval_ready() is not None, reason=str(_lm_eval_ready()))]


def _run_lm_eval(out: Path, model: str, model_args: str) -> list[dict]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("PYTHONPATH", None)  # logitscope's src/ is not for the contenders' Python
    done = subprocess.run([str(PYTHON), "-m", "lm_eval", "--model", model, "--model_args", model_args,
                           "--device", "cpu", "--include_path", ".", "--tasks", "logitscope_mcq", "--output_path",
                           str(out), "--log_samples"], cwd=TASK_DIR, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    samples = next(out.rglob("samples_logitscope_mcq_*.jsonl"))
    return [json.loads(line) for line in samples.read_text().splitlines()]


def _answers(samples: list[dict]) -> list[tuple[float, bool]]:
    return [(float(ll), greedy == "True") for s in sorted(samples, key=lambda s: s["doc_id"])
            for ll, greedy in s["filtered_resps"]]


def _accuracy(samples: list[dict]) -> list[float]:
    return [s["acc"] for s in sorted(samples, key=lambda s: s["doc_id"])]


def test_local_completions_equals_hf(smol, tmp_path):
    reference = _run_lm_eval(tmp_path / "hf", "hf",
                             f"pretrained={converted_dir_for(bundled_gguf_path())},dtype=float32")
    app = create_app({"smol": smol})
    runs = {}
    with LiveServer(app) as server:
        url = f"{server.base_url}/v1/completions"
        for name, args in {"tokenized-1": "tokenized_requests=True,num_concurrent=1",
                           "tokenized-8": "tokenized_requests=True,num_concurrent=8",
                           "text-8": "tokenized_requests=False,num_concurrent=8"}.items():
            runs[name] = _run_lm_eval(tmp_path / name, "local-completions",
                                      f"model=smol,base_url={url},tokenizer_backend=remote,max_retries=1,{args}")
    expected = _answers(reference)
    for name, samples in runs.items():
        got = _answers(samples)
        assert [g for _, g in got] == [g for _, g in expected], name  # is_greedy identical
        assert [ll for ll, _ in got] == FLOAT32_TOKEN.approx([ll for ll, _ in expected]), name
        assert _accuracy(samples) == _accuracy(reference), name
    assert app.state.engine.workers["smol"].stats.largest_batch > 1  # num_concurrent=8 shared passes
