"""Small fake OpenAI-compatible servers for the remote backend's tests.

Each speaks one server's documented wire format over the exact toy bigram model, so what
the remote backend parses can be checked against the toy model's own numbers:

* ``VLLMFake``: vLLM's entrypoints/openai shapes: ``max_model_len`` on the model card,
  ``/tokenize`` -> {count, max_model_len, tokens}, ``/detokenize`` -> {prompt}, no
  /tokenizer_info (off by default), ``prompt_logprobs`` keyed by id with rank and
  decoded_token, ``token_id:<id>`` labels, ``-9999.0`` for log(0), ``max_tokens`` >= 1,
  errors as {"error": {message, type: "BadRequestError", param, code: 400}} and
  "Requested ... logprobs of N, which is greater than max allowed: 20".
* ``LlamaCppFake``: llama.cpp's tools/server: ``meta.n_ctx_train`` on the card,
  ``/tokenize`` {content, add_special} -> {tokens}, ``/detokenize`` -> {content},
  ``/props`` with bos/eos strings, echo refused ("Only no echo is supported"), and
  chat-shaped log-probs on /v1/completions ({"content": [{id, token, logprob, top_logprobs}]}).

``fault`` makes /v1/completions misbehave after the probe: "500", "hang", "garbage",
"short" (one token too few), "503-once" (503 + Retry-After, then normal).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from logitscope import LogitscopeError
from logitscope.backends.toydata import demo_ngram

TOY = demo_ngram()
CLAMP_BELOW = -4.0  # toy log-probs below this go on the wire as vLLM's -9999.0 (what it sends for log 0)


class FakeServer:
    def __init__(self):
        self.fault: str | None = None
        self.requests: list[tuple[str, str, dict | None]] = []
        handler = self._handler_class()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, method: str, path: str, body: dict | None):  # -> (status, payload, headers)
        raise NotImplementedError

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method):
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                fake.requests.append((method, self.path, body))
                status, payload, headers = fake.dispatch(method, self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in {"content-type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        return Handler

    def dispatch(self, method, path, body):
        if path.endswith("/completions") and self.fault:
            fault = self.fault
            if fault == "500":
                return 500, {"error": {"message": "CUDA out of memory", "type": "InternalServerError",
                                       "param": None, "code": 500}}, {}
            if fault == "hang":
                time.sleep(3)
                return 200, {}, {}
            if fault == "garbage":
                return 200, b"<html>proxy error</html>", {}
            if fault == "503-once":
                self.fault = None
                return 503, {"error": {"message": "busy", "type": "service_unavailable_error"}}, {"Retry-After": "0"}
        try:
            status, payload = self.route(method, path, body)
        except LogitscopeError as exc:  # e.g. a word outside the toy vocabulary
            status, payload = 400, {"error": {"message": str(exc), "type": "BadRequestError", "param": None,
                                              "code": 400}}
        if self.fault == "retokenize" and path.endswith("/completions") and status == 200:
            for c in payload["choices"]:
                if c.get("logprobs") and len(c["logprobs"]["tokens"]) > 3:
                    c["logprobs"]["tokens"][2] = "ca"
        if self.fault == "short" and path.endswith("/completions") and status == 200:
            for c in payload["choices"]:
                if c.get("prompt_logprobs"):
                    c["prompt_logprobs"] = c["prompt_logprobs"][:-1]
                if c.get("logprobs") and "token_logprobs" in c["logprobs"]:
                    c["logprobs"] = {key: v[:-2] for key, v in c["logprobs"].items()}
        return status, payload, {}


def prompts_of(prompt) -> list:
    """OpenAI's prompt forms as a list of prompts (each a str or a list of ids)."""
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        return [prompt]
    return list(prompt)


def toy_ids(prompt, special: bool) -> list[int]:
    return prompt if isinstance(prompt, list) else ([TOY.bos_token_id] if special else []) + TOY.tokenize(prompt).ids


def wire(lp: float) -> float:
    return -9999.0 if lp < CLAMP_BELOW else lp


def toy_top(prefix: list[int], k: int) -> list[tuple[int, float]]:
    ids, lps = TOY.next_top_k([prefix], k)
    return list(zip(ids[0].tolist(), lps[0].tolist()))


class VLLMFake(FakeServer):
    model = "meta-llama/Llama-3.1-8B"

    def __init__(self, text_only: bool = False):
        """``text_only``: an older OpenAI-style server: text prompts only, labels are token
        texts, no prompt_logprobs (the echo path with the round trip checked)."""
        super().__init__()
        self.text_only = text_only

    def route(self, method, path, body):
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model", "created": 1,
                                                     "owned_by": "vllm", "root": self.model, "parent": None,
                                                     "max_model_len": 512, "permission": []}]}
        if path == "/tokenize":
            ids = toy_ids(body["prompt"], body.get("add_special_tokens", True))
            return 200, {"count": len(ids), "max_model_len": 512, "tokens": ids, "token_strs": None}
        if path == "/detokenize":
            return 200, {"prompt": TOY.detokenize(body["tokens"])}
        if path == "/v1/completions":
            return self.complete(body)
        return 404, {"detail": "Not Found"}

    def complete(self, body):
        k = max(body.get("logprobs") or 0, body.get("prompt_logprobs") or 0)
        for name in ("logprobs", "prompt_logprobs"):
            if (body.get(name) or 0) > 20:
                kind = "sample" if name == "logprobs" else "prompt"
                return 400, {"error": {"message": f"Requested {kind} logprobs of {body[name]}, which is greater "
                                                  f"than max allowed: 20", "type": "BadRequestError",
                                       "param": None, "code": 400}}
        if body.get("max_tokens") == 0:
            return 400, {"error": {"message": "max_tokens must be at least 1, got 0.", "type": "BadRequestError",
                                   "param": None, "code": 400}}
        as_ids = body.get("return_tokens_as_token_ids", False) and not self.text_only
        if self.text_only:
            if any(isinstance(p, list) for p in prompts_of(body["prompt"])):
                return 400, {"error": {"message": "prompt must be a string or a list of strings",
                                       "type": "BadRequestError", "param": "prompt", "code": 400}}
            body = {k: v for k, v in body.items() if k != "prompt_logprobs"}
        choices = [self.choice(i, toy_ids(p, True), body, k, as_ids) for i, p in enumerate(prompts_of(body["prompt"]))]
        return 200, {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": self.model,
                     "choices": choices, "usage": {"prompt_tokens": 1, "total_tokens": 2, "completion_tokens": 1}}

    def choice(self, index, ids, body, k, as_ids):
        label = (lambda t: f"token_id:{t}") if as_ids else TOY.token_text
        gen_top = toy_top(ids, max(k, 1))
        gen = gen_top[0][0]
        choice = {"index": index, "text": TOY.token_text(gen), "finish_reason": "length", "stop_reason": None,
                  "prompt_logprobs": None, "logprobs": None}
        if body.get("prompt_logprobs") is not None:
            s = TOY.score_positions([ids], [1], body["prompt_logprobs"])[0]
            rows = [None]
            for r, tid in enumerate(ids[1:]):
                entry = {str(tid): {"logprob": wire(float(s.logprob[r])), "rank": int(s.rank[r]),
                                    "decoded_token": TOY.token_text(tid)}}
                for j, (alt, lp) in enumerate(zip(s.top_ids[r].tolist(), s.top_logprobs[r].tolist())):
                    entry.setdefault(str(alt), {"logprob": wire(lp), "rank": j + 1, "decoded_token": TOY.token_text(alt)})
                rows.append(entry)
            choice["prompt_logprobs"] = rows
        if body.get("logprobs") is not None:
            n = body["logprobs"]
            tokens, values, tops = [label(gen)], [gen_top[0][1]], [{label(t): wire(lp) for t, lp in gen_top[:n]}]
            if body.get("echo"):
                s = TOY.score_positions([ids], [1], n)[0]
                tokens = [label(t) for t in ids] + tokens
                values = [None] + [wire(v) for v in s.logprob.tolist()] + values
                tops = [None] + [{label(t): wire(lp) for t, lp in zip(a, b)} | {label(ids[r + 1]): wire(s.logprob[r].item())}
                                 for r, (a, b) in enumerate(zip(s.top_ids.tolist(), s.top_logprobs.tolist()))] + tops
            choice["logprobs"] = {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops,
                                  "text_offset": list(range(len(tokens)))}
        return choice


class LlamaCppFake(FakeServer):
    model = "smollm2-135m-q4_1.gguf"

    def route(self, method, path, body):
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.model, "object": "model", "created": 1,
                                                     "owned_by": "llamacpp",
                                                     "meta": {"vocab_type": 2, "n_vocab": TOY.vocab_size,
                                                              "n_ctx_train": 512, "n_embd": 8}}]}
        if path == "/tokenize":
            return 200, {"tokens": toy_ids(body["content"], body.get("add_special", False))}
        if path == "/detokenize":
            return 200, {"content": TOY.detokenize(body["tokens"])}
        if path == "/props":
            return 200, {"bos_token": "<BOS>", "eos_token": "<EOS>",
                         "default_generation_settings": {"n_ctx": 512}, "total_slots": 1}
        if path == "/v1/completions":
            if body.get("echo"):
                return 400, {"error": {"code": 400, "message": "Only no echo is supported",
                                       "type": "invalid_request_error"}}
            prompts = prompts_of(body["prompt"])
            return 200, {"id": "chatcmpl-1", "object": "text_completion", "created": 1, "model": self.model,
                         "choices": [self.choice(i, toy_ids(p, True), body.get("logprobs"))
                                     for i, p in enumerate(prompts)]}
        return 404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}

    def choice(self, index, ids, n):
        top = toy_top(ids, max(n or 0, 1))
        choice = {"index": index, "text": TOY.token_text(top[0][0]), "finish_reason": "length", "logprobs": None}
        if n:
            alts = [{"id": t, "token": TOY.token_text(t), "logprob": lp, "bytes": list(TOY.token_text(t).encode())}
                    for t, lp in top[:n]]
            choice["logprobs"] = {"content": [{**alts[0], "top_logprobs": alts}]}
        return choice
