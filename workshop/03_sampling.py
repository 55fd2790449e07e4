# %% [markdown]
# # Lesson 3 — Sampling: choosing the next token
#
# **What you will see.** The same next-token distribution turned into a choice by different
# strategies — greedy, pure sampling, top-k, top-p (nucleus), min-p, and the combination production
# APIs use — each as a `logitscope.core.processors` transform `(input_ids, logits) -> logits`.
# You will check the seed's top-k/top-p numbers, draw seeded samples, ban a token with a logit bias,
# compare beam search with greedy on the seed's toy transitions, and answer the class slides'
# questions with the model.
#
# Runs in about 20 seconds.

# %%
%matplotlib inline
import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch

import logitscope as ls
from logitscope import SamplerConfig
from logitscope.workshop import load_preferred
from logitscope.backends.toy import ToyBackend
from logitscope.core import mathops, processors

checks = {}

# %% [markdown]
# ## 1. Filters on a small distribution (the theory notebook's example)
#
# Every processor maps logits to logits; a removed token gets −∞, so the softmax renormalises over
# the survivors.

# %%
logits = torch.tensor([[4.0, 3.0, 2.2, 1.5, 0.5, -0.5]], dtype=torch.float64)  # (B=1, V=6)
no_history = torch.zeros(1, 0, dtype=torch.long)
views = {
    "base": logits,
    "top-k 3": processors.top_k(3)(no_history, logits),
    "top-p 0.82": processors.top_p(0.82)(no_history, logits),
    "min-p 0.2": processors.min_p(0.2)(no_history, logits),
    "T=0.5": processors.temperature(0.5)(no_history, logits),
    "greedy": processors.greedy(no_history, logits),
}
filtered = pd.DataFrame({k: mathops.softmax(v)[0].numpy().round(3) for k, v in views.items()})
checks["filters"] = {k: filtered[k].tolist() for k in ("base", "top-k 3", "top-p 0.82")}
filtered

# %%
ax = filtered.plot.bar(figsize=(9, 3.5), width=0.85)
ax.set(xlabel="token", ylabel="probability", title="How each strategy reshapes the same distribution")
plt.show()

# %% [markdown]
# ## 2. On a real model
#
# "See you ___": a base model (the seeds used GPT-2) spreads its mass over many sensible words.

# %%
model, note = load_preferred()
print(note)
prompt = "See you"
combined = SamplerConfig(temperature=0.7, top_k=50, top_p=0.9, min_p=0.05)
chain = model.chain(prompt, combined, top=5)
pd.DataFrame([{"stage": s.stage, "survivors": s.survivors, "entropy": round(s.entropy, 3),
               "top": ", ".join(f"{c.text!r} {c.prob:.2f}" for c in s.top)} for s in chain.stages])

# %%
chain.plot()  # the same stages as pictures: each filter renormalises over fewer tokens

# %% [markdown]
# Each strategy, 500 seeded draws: how many tokens can still be picked, and what was picked.

# %%
strategies = {
    "greedy": SamplerConfig.greedy(),
    "pure": SamplerConfig(),
    "top-k 5": SamplerConfig(top_k=5),
    "top-p 0.9": SamplerConfig(top_p=0.9),
    "min-p 0.1": SamplerConfig(min_p=0.1),
    "T=0.7 + top-p 0.9": SamplerConfig(temperature=0.7, top_p=0.9),
}
rows = []
for name, cfg in strategies.items():
    s = model.sample(prompt, n=500, sampler=cfg, seed=0)
    drawn = sorted(s.rows, key=lambda r: -r.count)[:4]
    rows.append({"strategy": name, "survivors": s.survivors, "distinct drawn": sum(r.count > 0 for r in s.rows),
                 "most drawn": ", ".join(f"{r.text!r}×{r.count}" for r in drawn), "χ² p-value": round(s.p_value, 3)})
checks["greedy_survivors"] = rows[0]["survivors"]
checks["pure_survivors_is_vocab"] = rows[1]["survivors"] == model.backend.vocab_size
pd.DataFrame(rows)

# %% [markdown]
# Same seed, same draws — a generation can be replayed exactly:

# %%
a = model.generate(prompt, max_new_tokens=8, sampler=SamplerConfig(top_p=0.9), seed=7)
b = model.generate(prompt, max_new_tokens=8, sampler=SamplerConfig(top_p=0.9), seed=7)
print(repr(a.text), "\n", repr(b.text))
checks["seeded_replay"] = a.token_ids == b.token_ids

# %% [markdown]
# ## 3. Logit bias: banning a token
#
# Adding −20 to a logit multiplies its probability by e⁻²⁰ ≈ 2·10⁻⁹ (−∞ bans it outright).

# %%
labels = ["safe", "maybe", "banned", "other"]
lg = torch.tensor([[2.0, 1.5, 1.2, 0.5]], dtype=torch.float64)
after = mathops.softmax(processors.logit_bias({2: -20.0})(no_history, lg))[0]
before = mathops.softmax(lg)[0]
for lab, p0, p1 in zip(labels, before, after):
    print(f"{lab:>6s}: before={p0:.4f}, after={p1:.8f}")
checks["bias_after"] = [round(float(p), 8) for p in after]

# %% [markdown]
# ## 4. Beam search versus greedy (the theory notebook's transitions)
#
# Greedy takes "A" (0.55) and then "x" (0.52): P = 0.286. Beam search with two beams keeps "B"
# alive and finds "B x" with P = 0.45 · 0.90 = 0.405.

# %% [markdown]
# A toy model needs a prompt, so the seed's transitions follow a start word `go`; every prefix
# not in the table ends with `<EOS>`.

# %%
transitions = {
    ("<BOS>", "go"): {"A": 0.55, "B": 0.45},
    ("<BOS>", "go", "A"): {"x": 0.52, "y": 0.48},
    ("<BOS>", "go", "B"): {"x": 0.90, "y": 0.10},
}
toy = ls.from_backend(ToyBackend.from_table(transitions))
beam = toy.beam_search("go", num_beams=2, max_new_tokens=3, alpha=0.0, bos=True)
for b in beam.beams:
    print(f"beam   {b.text!r:8} log p = {b.logprob:.3f}  p = {b.prob:.3f}")
print(f"greedy {beam.greedy.text!r:8} log p = {beam.greedy.logprob:.3f}  p = {beam.greedy.prob:.3f}")
checks["beam_best"] = [beam.best.text, round(beam.best.logprob, 3)]
checks["greedy"] = [beam.greedy.text, round(beam.greedy.logprob, 3)]
beam.plot()  # log p of each beam and of greedy (α = 0: the raw sum)

# %% [markdown]
# ## 5. The class slides' questions
#
# **Slide 1.** What are likely next tokens after "See you", p(t₃ | "See", " you")?

# %%
nxt = model.next_token(prompt, top_k=10)
top10 = nxt.to_dataframe()[["text", "prob"]]
print(f"Total of the top 10: {top10['prob'].sum():.4f}")
top10

# %% [markdown]
# **Slide 2.** True or false: `argmax(logits) == argmax(softmax(logits))`? **True**: softmax is
# monotonic, so the order of tokens is kept (the slide's answer key says B, but its own note explains
# why the answer is A).

# %%
last = model.logits(prompt)[0, -1]
checks["argmax_equal"] = int(last.argmax()) == int(mathops.softmax(last).argmax())
print(checks["argmax_equal"])

# %% [markdown]
# **Slide 3.** The loop appends argmax(logits[:, -1]) to the *whole* input each step: it computes
# tᵢ = argmax p(t | t₁, …, tᵢ₋₁) (answer D), which is `generate` with the greedy sampler. Conditioning
# on the last token only (answer C) gives different text:

# %%
greedy = model.generate(prompt, max_new_tokens=8, sampler=SamplerConfig.greedy())
text_c, last_piece = prompt, prompt
for _ in range(8):
    piece = model.next_token(last_piece, top_k=1, bos=True).top[0].text  # sees only the previous token
    text_c, last_piece = text_c + piece, piece if piece.strip() else "."
print("D, whole context:", repr(prompt + greedy.text))
print("C, last token:   ", repr(text_c))

# %% [markdown]
# **Slide 4.** Pure sampling picks one of the top 10 *more often than any other token*, but not always:
# they hold only part of the mass.

# %%
s = model.sample(prompt, n=2000, sampler=SamplerConfig(), seed=0)
top_ids = {c.token_id for c in nxt.top}
share = sum(r.count for r in s.rows if r.token_id in top_ids) / s.n
print(f"draws that landed in the top 10: {share:.1%} (their probability: {top10['prob'].sum():.1%})")
checks["top10_share_close"] = abs(share - top10["prob"].sum()) < 0.05

# %% [markdown]
# ## Exercises
#
# 1. Which k makes top-k keep exactly the same tokens as top-p 0.82 on the small example?
# 2. Use `processors.compose` to chain temperature 0.5 and top-p 0.82 and print the result. Does the
#    order matter (top-p first, then temperature)?
# 3. With the toy transitions, what beam width is the smallest that finds "B x"? Why?
# 4. Ban the most likely token after "See you" with `SamplerConfig(bias=((token_id, float('-inf')),))`
#    and look at the new top 5 with `model.chain`.

# %% [markdown] collapsed
# ## Solutions (collapsed: click the heading to open)

# %%
# 1. top-p 0.82 keeps the first tokens whose mass reaches 0.82: count them.
kept = int((filtered["top-p 0.82"] > 0).sum())
print(kept, (filtered["top-k 3"] > 0).sum())

# %%
# 2. Order matters: temperature changes the probabilities top-p looks at.
t_then_p = processors.compose([("T", processors.temperature(0.5)), ("p", processors.top_p(0.82))])
p_then_t = processors.compose([("p", processors.top_p(0.82)), ("T", processors.temperature(0.5))])
print(mathops.softmax(t_then_p(no_history, logits)).numpy().round(3))
print(mathops.softmax(p_then_t(no_history, logits)).numpy().round(3))

# %%
# 3. Width 2: with one beam (greedy) "B" is dropped after the first step.
for width in (1, 2):
    print(width, toy.beam_search("go", num_beams=width, max_new_tokens=3, alpha=0.0, bos=True).best.text)

# %%
# 4.
banned = SamplerConfig(bias=((nxt.top[0].token_id, float("-inf")),))
print([(c.text, round(c.prob, 3)) for c in model.chain(prompt, banned, top=5).stages[-1].top])

# %% tags=["checks"]
print(json.dumps(checks, default=lambda v: v.item()))  # numpy scalars -> Python
