"""Probes behind benchmarks/generation.md's "what stands in the way" (issue 16), 1 or 2 threads:

    python benchmarks/decode_probes.py matvec          # every weight of a step read once, cold, per row count
    python benchmarks/decode_probes.py drafter [T]     # an int8 weight-only copy as a drafter: step cost, verify cost
    python benchmarks/decode_probes.py verify [T]      # fast_decode steps of 1..7 rows, x @ W.T against W @ x.T

``matvec`` multiplies 1, 2 and 6 rows by 30 layers' worth of SmolLM2-135M-shaped random float32
matrices plus the 49,152 x 576 head (540 MB: more than any cache, as in a real decode step) as
``F.linear(x, W)``, ``torch.mv`` and ``W @ x.T``. ``drafter`` builds an int8 copy of the bundled
model (per-row symmetric int8 weights, ``torch._weight_int8pack_mm`` with bfloat16 activations,
norms and embedding shared) and times one-token steps of both through ``fast_decode``, the
greedy agreement of the two, and a float32 verification of 1, 5 and 9 rows.
"""

import copy
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

SHAPES = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]


def matvec() -> None:
    torch.manual_seed(0)
    layers = [[torch.randn(o, i) for o, i in SHAPES] for _ in range(30)]
    head = torch.randn(49152, 576)
    ways = {"F.linear": lambda x, w: F.linear(x, w),
            "torch.mv": lambda x, w: torch.mv(w, x[0]) if len(x) == 1 else F.linear(x, w),
            "W @ x.T": lambda x, w: w @ x.t()}

    def one_pass(rows, fn):
        x, x2 = torch.randn(rows, 576), torch.randn(rows, 1536)
        for ws in layers:
            for w in ws:
                fn(x2 if w.shape[1] == 1536 else x, w)
        fn(x, head)

    for threads in (1, 2):
        torch.set_num_threads(threads)
        for rows in (1, 2, 6):
            cells = []
            for name, fn in ways.items():
                one_pass(rows, fn)
                best = min(_timed(lambda: one_pass(rows, fn)) for _ in range(5))
                cells.append(f"{name} {best * 1000:6.1f} ms")
            print(f"threads={threads} rows={rows}: " + "   ".join(cells))


class Int8Linear(nn.Linear):
    """Weight-only int8 (per output row, symmetric) with bfloat16 activations: a drafter's layer."""

    def __init__(self, linear: nn.Linear):
        nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        self.register_buffer("qweight", (w / scale[:, None]).round().clamp(-127, 127).to(torch.int8).contiguous())
        self.register_buffer("qscale", scale.bfloat16())
        self.bias = linear.bias

    def forward(self, x):
        shape = x.shape
        y = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]).bfloat16(), self.qweight, self.qscale).float()
        if self.bias is not None:
            y += self.bias
        return y.view(*shape[:-1], self.out_features)


def drafter(threads: int) -> None:
    import logitscope
    from logitscope.backends.fast_decode import StaticCacheDecoder

    torch.set_num_threads(threads)
    backend = logitscope.load().backend
    model = backend.torch_module
    int8 = copy.deepcopy(model, memo={id(p): p for p in model.parameters()})  # shares every float tensor
    for module in list(int8.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, Int8Linear(child))
    full, draft = StaticCacheDecoder.for_model(model), StaticCacheDecoder.for_model(int8)
    ids = backend.tokenize("The history of the printing press begins").ids

    def greedy(decoder, n=40):
        cache = decoder.new_cache(len(ids) + n + 8)
        token = int(decoder.project(decoder.step(cache, ids)[-1:])[0].argmax())
        out, start = [token], time.perf_counter()
        for _ in range(n):
            token = int(decoder.project(decoder.step(cache, [token])[-1:])[0].argmax())
            out.append(token)
        return (time.perf_counter() - start) / n * 1000, out

    for _ in range(2):
        (f_ms, f_out), (d_ms, d_out) = greedy(full), greedy(draft)
        first = next((i for i, (a, b) in enumerate(zip(f_out, d_out)) if a != b), None)
        print(f"threads={threads}: float32 step {f_ms:.1f} ms, int8 step {d_ms:.1f} ms ({f_ms / d_ms:.2f}x); "
              f"greedy tokens agree up to token {first}")
    for rows in (1, 5, 9):
        cache = full.new_cache(len(ids) + 64)
        full.step(cache, ids)

        def verify():
            full.project(full.step(cache, f_out[:rows]))
            cache.truncate(len(ids))
        print(f"threads={threads}: float32 verification of {rows} rows {min(_timed(verify) for _ in range(5)) * 1000:.1f} ms")


def verify(threads: int) -> None:
    """One fast_decode step of 1, 2, 4 and 7 rows after a 40-token prompt, with the few-row
    W @ x.T products (fast_decode.FEW_ROWS = 16) and without (FEW_ROWS = 1), interleaved."""
    import logitscope
    from logitscope.backends import fast_decode

    torch.set_num_threads(threads)
    backend = logitscope.load().backend
    decoder = fast_decode.StaticCacheDecoder.for_model(backend.torch_module)
    ids = backend.tokenize("The history of the printing press begins with movable type in " * 4).ids[:40]
    cache = decoder.new_cache(64)
    decoder.step(cache, ids)
    for rows in (1, 2, 4, 7):
        cells = {}
        for _ in range(3):
            for few in (1, 16):
                fast_decode.FEW_ROWS = few

                def step():
                    decoder.project(decoder.step(cache, ids[:rows]))
                    cache.truncate(len(ids))
                step()
                cells[few] = min(cells.get(few, float("inf")), _timed(step))
        print(f"threads={threads} rows={rows}: x @ W.T {cells[1] * 1000:6.1f} ms   W @ x.T {cells[16] * 1000:6.1f} ms "
              f"({cells[1] / cells[16]:.2f}x)")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    if sys.argv[1:2] == ["matvec"]:
        matvec()
    elif sys.argv[1:2] == ["verify"]:
        verify(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    elif sys.argv[1:2] == ["drafter"]:
        drafter(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    else:
        sys.exit(__doc__)
