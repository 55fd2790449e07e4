# %% [markdown]
# # Lesson 4 — Autoregressive generation
#
# **What you will see.** Generation is next-token prediction in a loop. You will
#
# 1. trace a generation step by step: each token's probability, rank, the entropy of the
#    distribution it came from, and the alternatives it beat;
# 2. measure the KV-cache speed-up live (the same tokens with and without the cache);
# 3. draw the tree of the most likely continuations;
# 4. score an existing text and see that scoring the generated text gives back the generation's own
#    log-probability.
#
# Runs in about 30 seconds.

# %%
%matplotlib inline
import json
import math
import time

import pandas as pd

import logitscope as ls
from logitscope import SamplerConfig
from logitscope.workshop import load_preferred
from logitscope.views.text import tree_text

checks = {}
model, note = load_preferred()
print(note)

# %% [markdown]
# ## 1. A traced generation

# %%
prompt = "The capital of France is"
greedy = model.generate(prompt, max_new_tokens=12, sampler=SamplerConfig.greedy(), top_alternatives=3)
print(repr(prompt + greedy.text), "| stop:", greedy.stop_reason)
trace = pd.DataFrame([{"step": s.step, "token": s.text, "prob": s.prob, "rank": s.rank,
                       "entropy (nats)": s.entropy, "alternatives": [f"{a.text!r} {a.prob:.2f}" for a in s.alternatives]}
                      for s in greedy.steps])
checks["greedy_ranks_all_1"] = bool((trace["rank"] == 1).all())
trace

# %% [markdown]
# Each step's probability, the probability of the whole text so far (their running product, on a log
# axis: it only falls), and each step's entropy:

# %%
greedy.plot(running=True)

# %% [markdown]
# Sampling instead of greedy: the chosen token is no longer always rank 1, and a seed makes it
# reproducible.

# %%
sampled = model.generate(prompt, max_new_tokens=12, sampler=SamplerConfig(temperature=0.9, top_p=0.95), seed=3)
print(repr(prompt + sampled.text))
print("ranks of the sampled tokens:", [s.rank for s in sampled.steps])

# %% [markdown]
# ## 2. The KV cache
#
# Without a cache every step re-reads the whole prefix (quadratic work); with it each step processes
# one new token and reuses the stored keys and values.

# %%
n = 40
timings = {}
for use_cache in (True, False):
    start = time.perf_counter()
    out = model.generate(prompt, max_new_tokens=n, sampler=SamplerConfig.greedy(), use_cache=use_cache,
                         top_alternatives=0, stop=())
    timings[use_cache] = (time.perf_counter() - start, out.token_ids)
print(f"{len(timings[True][1])} tokens: with cache {timings[True][0]:.2f} s, without {timings[False][0]:.2f} s, "
      f"speed-up x{timings[False][0] / timings[True][0]:.1f}")
checks["cache_same_tokens"] = timings[True][1] == timings[False][1]

# %% [markdown]
# ## 3. The tree of possibilities
#
# The top 3 tokens at each step, 3 steps deep (siblings share their parent's KV cache).

# %%
tree = model.tree("See you", depth=3, branch=3)
print(tree_text(tree))

# %%
checks["tree_nodes"] = len(list(tree.nodes()))
tree.plot()  # line width grows with the probability of each branch

# %% [markdown]
# ## 4. Scoring existing text
#
# `score(text, context=prompt)` asks how likely the model finds a given continuation. Scored on the
# greedy text, it returns the generation's own log-probability.

# %%
rescored = model.score(greedy.text, context=prompt)
print(f"generation: log p = {greedy.total_logprob:.4f};  score(): log p = {rescored.total_logprob:.4f}")
checks["score_equals_generation"] = math.isclose(greedy.total_logprob, rescored.total_logprob, abs_tol=1e-3)
for cont in [" Paris.", " a city in Europe.", " Berlin."]:
    s = model.score(cont, context=prompt)
    print(f"{cont!r:22} log p = {s.total_logprob:8.3f}   per token {s.mean_logprob:7.3f}")

# %% [markdown]
# ## Exercises
#
# 1. Generate 20 tokens from "Once upon a time" with T = 0.3, 1.0 and 1.5 (same seed). How do the
#    ranks and entropies change?
# 2. Time the cache for 10 and for 80 new tokens. Does the speed-up grow with length? Why?
# 3. Which leaf of the tree has the highest path probability? Is it greedy's continuation?

# %% [markdown] collapsed
# ## Solutions (collapsed: click the heading to open)

# %%
# 1.
for t in (0.3, 1.0, 1.5):
    g = model.generate("Once upon a time", max_new_tokens=20, sampler=SamplerConfig(temperature=t), seed=0)
    print(t, round(sum(s.rank for s in g.steps) / len(g.steps), 1), round(sum(s.entropy for s in g.steps) / len(g.steps), 2), repr(g.text[:60]))

# %%
# 2. Without a cache step i costs ~i tokens of work, so the total grows as n²; with it, as n.
for n in (10, 80):
    t = {}
    for c in (True, False):
        s0 = time.perf_counter()
        model.generate(prompt, max_new_tokens=n, sampler=SamplerConfig.greedy(), use_cache=c, top_alternatives=0)
        t[c] = time.perf_counter() - s0
    print(n, f"x{t[False] / t[True]:.1f}")

# %%
# 3. Greedy picks the best child at each step; the best *path* can differ.
leaves = [(path + (node,)) for path, node in tree.nodes() if not node.children]
best = max(leaves, key=lambda p: p[-1].cum_logprob)
g3 = model.generate("See you", max_new_tokens=3, sampler=SamplerConfig.greedy())
print("best leaf:", repr("".join(n.text for n in best)), f"{best[-1].cum_prob:.4f}", "| greedy:", repr(g3.text))

# %% tags=["checks"]
print(json.dumps(checks, default=lambda v: v.item()))  # numpy scalars -> Python
