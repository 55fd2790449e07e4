# %% [markdown]
# # Lesson 3 — Sampling: choosing the next token
#
# **What you will see.** The same next-token distribution turned into a choice by different
# strategies — greedy, pure sampling, top-k, top-p (nucleus), min-p, and the combination production
# APIs use — each as a `logitscope.core.processors` transform `(input_ids, logits) -> logits`.
# You will check the seed's top-k/top-p numbers, draw seeded samples, ban a token with a logit bias,
# compare beam search with greedy on the seed's toy transitions, and answer the class slides'
# questions with the model. You write top-k, top-p, min-p, a seeded sampler and the sampler chain
# yourself; each is checked against the library's own implementation.
#
# Runs in about 6 seconds of one CPU core with one torch thread.

# %%
%matplotlib inline
import json
import math

import matplotlib.pyplot as plt
import pandas as pd
import torch

import logitscope as ls
from logitscope import SamplerConfig, workshop
from logitscope.backends.toy import ToyBackend
from logitscope.core import mathops, processors
from logitscope.workshop import check, claim, close_to, equal, load_preferred, satisfies, tasks

lesson = workshop.begin("03_sampling", edition="solutions")
checks = {}

# %% [markdown]
# ## 1. Filters on a small distribution (the theory notebook's example)
#
# Every processor maps logits to logits; a removed token gets −∞, so the softmax renormalises over
# the survivors. With p = softmax(z) sorted from the most likely token down:
#
# * **greedy** keeps only the most likely token (argmax z);
# * **temperature** τ divides the logits, z / τ, before the softmax (τ < 1 sharpens, τ > 1 flattens);
# * **top-k** keeps the k tokens with the largest logits (and any token tied with the k-th);
# * **top-p** (nucleus) keeps the smallest set of most likely tokens whose probabilities add up to at
#   least p: token i stays while the mass *before* it, p₍₁₎ + … + p₍ᵢ₋₁₎, is below p — so the token
#   that crosses p stays;
# * **min-p** keeps every token with pᵢ ≥ min_p · p_max, a floor relative to the top token.

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
# ### Exercise 3.1 — top-k
# Write `top_k_filter(logits, k)` for one row of logits (a 1-D tensor): every token below the k-th
# largest logit gets `-inf`; tokens tied with the k-th stay; k larger than the vocabulary keeps
# everything. Do not change the input tensor (work on a copy).

# %% tags=["solution"]
NEG_INF = float("-inf")


def top_k_filter(logits, k):
    # BEGIN SOLUTION
    if k >= logits.numel():
        return logits.clone()
    kth = logits.sort(descending=True).values[k - 1]  # the k-th largest logit
    return logits.masked_fill(logits < kth, NEG_INF)  # ties with the k-th survive
    # END SOLUTION

# %%
check("3.1 top-k", top_k_filter, tasks.top_k)

# %% [markdown]
# ### Exercise 3.2 — top-p (nucleus)
# Write `top_p_filter(logits, p)`. Sort the probabilities from the largest down (equal ones: lower
# token id first, `stable=True`), keep each token while the mass before it is below p.

# %% tags=["solution"]
def top_p_filter(logits, p):
    # BEGIN SOLUTION
    probs = mathops.softmax(logits)
    order = probs.argsort(descending=True, stable=True)
    before = probs[order].cumsum(0) - probs[order]  # mass strictly ahead of each token
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order] = before < p  # the crossing token has before < p: it stays
    return logits.masked_fill(~keep, NEG_INF)
    # END SOLUTION

# %%
check("3.2 top-p", top_p_filter, tasks.top_p)

# %% [markdown]
# ### Exercise 3.3 — min-p
# Write `min_p_filter(logits, m)`: keep the tokens with probability at least m times the top one.

# %% tags=["solution"]
def min_p_filter(logits, m):
    # BEGIN SOLUTION
    probs = mathops.softmax(logits)
    return logits.masked_fill(probs < m * probs.max(), NEG_INF)
    # END SOLUTION

# %%
check("3.3 min-p", min_p_filter, tasks.min_p)

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
pd.DataFrame([{"stage": s.stage, "survivors": s.survivors, "entropy (nats)": round(s.entropy, 3),
               "top": ", ".join(f"{c.text!r} {c.prob:.2f}" for c in s.top)} for s in chain.stages])

# %%
chain.plot()  # the same stages as pictures: each filter renormalises over fewer tokens

# %% [markdown]
# ### Exercise 3.4 — the sampler chain
# Production samplers apply the stages in one fixed order: temperature → top-k → top-p → min-p
# (each stage sees the previous stage's output). Write `sampler_chain(logits, temperature, top_k,
# top_p, min_p)` from your filters. The check names the order your chain really used if it differs.

# %% tags=["solution"]
def sampler_chain(logits, temperature, top_k, top_p, min_p):
    # BEGIN SOLUTION
    z = logits / temperature
    z = top_k_filter(z, top_k)
    z = top_p_filter(z, top_p)
    return min_p_filter(z, min_p)
    # END SOLUTION

# %%
check("3.4 the chain's order", sampler_chain, tasks.chain)

# %% [markdown]
# Each strategy, 500 seeded draws: how many tokens can still be picked, and what was picked. The last
# column is a **χ² goodness-of-fit test**: χ² = Σ (observed − expected)² / expected over the tokens,
# with expected = 500 · p after the strategy's filters; its p-value is the chance of a χ² at least
# this large if the draws really follow those probabilities. A tiny p-value (say below 0.001) would
# mean the sampler is broken; values spread over (0, 1) are what a correct sampler gives.

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
claim("no p-value is tiny", min(r["χ² p-value"] for r in rows if r["χ² p-value"] == r["χ² p-value"]), satisfies(lambda p: p >= 0.001, "a p-value is below 0.001"))
pd.DataFrame(rows)

# %% [markdown]
# Same seed, same draws — a generation can be replayed exactly:

# %%
a = model.generate(prompt, max_new_tokens=8, sampler=SamplerConfig(top_p=0.9), seed=7)
b = model.generate(prompt, max_new_tokens=8, sampler=SamplerConfig(top_p=0.9), seed=7)
print(repr(a.text))
print(repr(b.text))
checks["seeded_replay"] = a.token_ids == b.token_ids
claim("same seed, same draws", checks["seeded_replay"])

# %% [markdown]
# ### Exercise 3.5 — sampling with a seed
# Write `sample(logits, n, seed)`: n token ids drawn with replacement in proportion to
# softmax(logits), reproducible from the seed (`torch.Generator().manual_seed(seed)` and
# `torch.multinomial(..., generator=...)`). The check draws 4,000 times and tests the counts with
# the χ² test above.

# %% tags=["solution"]
def sample(logits, n, seed):
    # BEGIN SOLUTION
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(mathops.softmax(logits), n, replacement=True, generator=generator)
    # END SOLUTION

# %%
check("3.5 seeded sampling", sample, tasks.sampling)

# %% [markdown]
# ## 3. Logit bias: banning a token
#
# Adding −20 to a logit multiplies its odds against every other token by e⁻²⁰ ≈ 2·10⁻⁹ (−∞ bans it
# outright).

# %%
labels = ["safe", "maybe", "banned", "other"]
lg = torch.tensor([[2.0, 1.5, 1.2, 0.5]], dtype=torch.float64)
after = mathops.softmax(processors.logit_bias({2: -20.0})(no_history, lg))[0]
before = mathops.softmax(lg)[0]
for lab, p0, p1 in zip(labels, before, after):
    print(f"{lab:>6s}: before={p0:.4f}, after={p1:.8f}")
checks["bias_after"] = [round(float(p), 8) for p in after]
claim("the ratio is e⁻²⁰ ≈ 2·10⁻⁹", float(after[2] / after[0]) / float(before[2] / before[0]), close_to(math.exp(-20), 1e-15))

# %% [markdown]
# ## 4. Beam search versus greedy (the theory notebook's transitions)
#
# Greedy takes "A" (0.55) and then "x" (0.52): P = 0.55 · 0.52 = 0.286. Beam search with two beams
# keeps "B" alive and finds "B x" with P = 0.45 · 0.90 = 0.405.

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
claim("greedy finds 'A x' with P = 0.286", (beam.greedy.text, round(beam.greedy.prob, 3)), equal(("A x", 0.286)))
claim("beam search finds 'B x' with P = 0.405", (beam.best.text, round(beam.best.prob, 3)), equal(("B x", 0.405)))
beam.plot()  # log p of each beam and of greedy (α = 0: the raw sum)

# %% [markdown]
# ## 5. The class slides' questions
#
# **Slide 1.** What are likely next tokens after "See you", p(t₃ | "See", " you")?

# %%
nxt = model.next_token(prompt, top_k=10)
top10 = nxt.to_dataframe()[["text", "prob"]]
print(f"Total of the top 10: {top10['prob'].sum():.4f}")
top10.round(4)

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
# they hold more than half of the mass, not all of it.

# %%
s = model.sample(prompt, n=2000, sampler=SamplerConfig(), seed=0)
top_ids = {c.token_id for c in nxt.top}
share = sum(r.count for r in s.rows if r.token_id in top_ids) / s.n
print(f"draws that landed in the top 10: {share:.1%} (their probability: {top10['prob'].sum():.1%})")
checks["top10_share_close"] = abs(share - top10["prob"].sum()) < 0.05
claim("the top 10 hold more than half of the mass, not all of it", float(top10["prob"].sum()),
      satisfies(lambda m: 0.5 < m < 0.999, lambda m: f"they hold {m:.3f}"))

# %% [markdown]
# ## Exercises
#
# ### Exercise 3.6
# Which k (`k_same`) makes top-k keep exactly the same tokens as top-p 0.82 on the small example of
# section 1?

# %% tags=["solution"]
k_same = int((filtered["top-p 0.82"] > 0).sum())  # SOLUTION

# %%
check("3.6 top-k that equals top-p 0.82", k_same,
      satisfies(lambda k: torch.equal(torch.isfinite(processors.top_k(k)(no_history, logits)), torch.isfinite(views["top-p 0.82"])),
                lambda k: f"top-k {k} keeps {int(torch.isfinite(processors.top_k(k)(no_history, logits)).sum())} tokens, "
                          f"top-p 0.82 keeps {int(torch.isfinite(views['top-p 0.82']).sum())}"))

# %% [markdown]
# ### Exercise 3.7
# Use `processors.compose` to chain temperature 0.5 and top-p 0.82, and the other way round (top-p
# first). Set `order_matters` to whether the two results keep different tokens.

# %% tags=["solution"]
t_then_p = processors.compose([("T", processors.temperature(0.5)), ("p", processors.top_p(0.82))])
p_then_t = processors.compose([("p", processors.top_p(0.82)), ("T", processors.temperature(0.5))])
print(mathops.softmax(t_then_p(no_history, logits)).numpy().round(3))
print(mathops.softmax(p_then_t(no_history, logits)).numpy().round(3))
order_matters = True  # SOLUTION

# %%
survivors = {name: int(torch.isfinite(processors.compose(stages)(no_history, logits)).sum()) for name, stages in
             {"T then p": [("T", processors.temperature(0.5)), ("p", processors.top_p(0.82))],
              "p then T": [("p", processors.top_p(0.82)), ("T", processors.temperature(0.5))]}.items()}
check("3.7 does the order matter", order_matters, equal(survivors["T then p"] != survivors["p then T"]))

# %% [markdown] tags=["solution"]
# It matters: temperature changes the probabilities that top-p adds up. At τ = 0.5 the top token
# alone holds more of the mass, so top-p 0.82 keeps fewer tokens after it than before it.

# %% [markdown]
# ### Exercise 3.8
# With the toy transitions of section 4, what is the smallest beam width (`min_width`) that finds
# "B x"?

# %% tags=["solution"]
for width in (1, 2):
    print(width, toy.beam_search("go", num_beams=width, max_new_tokens=3, alpha=0.0, bos=True).best.text)
min_width = 2  # SOLUTION

# %%
check("3.8 the smallest width that finds 'B x'", min_width,
      satisfies(lambda w: toy.beam_search("go", num_beams=w, max_new_tokens=3, alpha=0.0, bos=True).best.text == "B x"
                and (w == 1 or toy.beam_search("go", num_beams=w - 1, max_new_tokens=3, alpha=0.0, bos=True).best.text != "B x"),
                "that width is not the smallest that finds 'B x'"))

# %% [markdown] tags=["solution"]
# Width 1 is greedy: after the first step it keeps only "A" (0.55 > 0.45) and never sees that "B" is
# followed by "x" with 0.90. Two beams keep "B" alive one step longer.

# %% [markdown]
# ### Exercise 3.9
# Ban the most likely token after "See you" with `SamplerConfig(bias=((token_id, float('-inf')),))`
# and look at the new top 5 with `model.chain`. Set `new_top` to the text of the new most likely
# token.

# %% tags=["solution"]
banned = SamplerConfig(bias=((nxt.top[0].token_id, float("-inf")),))
print([(c.text, round(c.prob, 3)) for c in model.chain(prompt, banned, top=5).stages[-1].top])
new_top = model.chain(prompt, banned, top=5).stages[-1].top[0].text  # SOLUTION

# %%
check("3.9 the top token once the first is banned", new_top, equal(nxt.top[1].text))

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
