# %% [markdown]
# # Lesson 4 — Autoregressive generation
#
# **What you will see.** Generation is next-token prediction in a loop. You will
#
# 1. trace a generation step by step: each token's probability, rank, the entropy of the
#    distribution it came from, and the alternatives it beat;
# 2. measure the KV-cache speed-up live (the same tokens with and without the cache) and see it grow
#    with the length;
# 3. draw the tree of the most likely continuations, by path probability, and write beam search
#    yourself;
# 4. score an existing text and see that scoring the generated text gives back the generation's own
#    log-probability.
#
# Runs in about 25 seconds of one CPU core with one torch thread (most of it the KV-cache timing).

# %%
%matplotlib inline
import json
import math
import time

import pandas as pd

import logitscope as ls
from logitscope import SamplerConfig, workshop
from logitscope.views.text import tree_text
from logitscope.workshop import check, claim, equal, lazy, load_preferred, satisfies, tasks

lesson = workshop.begin("04_generation", edition="solutions")
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
                       "entropy (nats)": s.entropy, "alternatives": ", ".join(f"{a.text!r} {a.prob:.2f}" for a in s.alternatives)}
                      for s in greedy.steps])
checks["greedy_ranks_all_1"] = bool((trace["rank"] == 1).all())
trace.round(3)

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
claim("the chosen token is no longer always rank 1", max(s.rank for s in sampled.steps) > 1)

# %% [markdown]
# ## 2. The KV cache
#
# Without a cache every step feeds the whole text so far through the model again: for a prompt of
# P tokens and n new ones that is nP + n(n − 1)/2 token positions, quadratic in n. With it each step
# feeds one new token and reuses the keys and values stored for the others: P + n positions. Same
# tokens, less work, and the saving grows with the length. We time both on CPU seconds of this
# process (`time.process_time`), which other programs on the machine do not inflate.

# %%
cache_prompt = "Once upon a time"
P = len(model.tokenize(cache_prompt).ids)
rows = []
for n in (10, 50):
    seconds, tokens = {}, {}
    for use_cache in (True, False):
        start = time.process_time()
        out = model.generate(cache_prompt, max_new_tokens=n, sampler=SamplerConfig.greedy(), use_cache=use_cache,
                             top_alternatives=0)
        seconds[use_cache], tokens[use_cache] = time.process_time() - start, out.token_ids
    rows.append({"new tokens": len(tokens[True]), "positions fed, cache": P + n,
                 "positions fed, no cache": n * P + n * (n - 1) // 2, "CPU s, cache": seconds[True],
                 "CPU s, no cache": seconds[False], "speed-up": seconds[False] / seconds[True],
                 "same tokens": tokens[True] == tokens[False]})
cache_table = pd.DataFrame(rows)
checks["cache_same_tokens"] = bool(cache_table["same tokens"].all())
claim("each run generates the tokens it was asked for", cache_table["new tokens"].tolist(), equal([10, 50]))
claim("the speed-up grows with the length", cache_table["speed-up"].is_monotonic_increasing)
cache_table.round(2)

# %% [markdown]
# ## 3. The tree of possibilities
#
# The top 3 tokens at each step, 3 steps deep (siblings share their parent's KV cache). A node's
# **path probability** is the product of the conditional probabilities from the prompt down to it:
# p(a, b, c | prompt) = p(a | prompt) · p(b | prompt, a) · p(c | prompt, a, b).

# %%
tree = model.tree("See you", depth=3, branch=3)
print(tree_text(tree))

# %%
checks["tree_nodes"] = len(list(tree.nodes()))
tree.plot(by="path")  # line width and colour by path probability; tree.plot() draws each branch by p(token | path)

# %% [markdown]
# ## 4. Scoring existing text
#
# `score(text, context=prompt)` asks how likely the model finds a given continuation. Scored on the
# greedy text, it returns the generation's own log-probability.

# %%
rescored = model.score(greedy.text, context=prompt)
print(f"generation: log p = {greedy.total_logprob:.4f} nats;  score(): log p = {rescored.total_logprob:.4f} nats")
checks["score_equals_generation"] = math.isclose(greedy.total_logprob, rescored.total_logprob, abs_tol=1e-3)
for cont in [" Paris.", " a city in Europe.", " Berlin."]:
    s = model.score(cont, context=prompt)
    print(f"{cont!r:22} log p = {s.total_logprob:8.3f} nats   per token {s.mean_logprob:7.3f} nats")

# %% [markdown]
# ## Exercises
#
# ### Exercise 4.1 — beam search with length normalisation
# Greedy keeps one hypothesis; beam search keeps the `width` best. Write `beam_search(next_probs,
# width, max_new_tokens, alpha)` where `next_probs(prefix)` returns a dict {token: probability} for a
# tuple of tokens so far and `"<EOS>"` ends a hypothesis. Each step: extend every alive hypothesis by
# every token, keep the best 2·width candidates by total log-prob; a candidate ending in `"<EOS>"`
# is finished if it is among the first `width`, the others (up to `width`) stay alive. Stop after
# `max_new_tokens` steps or once `width` hypotheses have finished. Return `(tokens, logprob)` of the
# finished or alive hypothesis with the best **length-normalised score** logprob / len(tokens)^alpha
# (alpha = 0: the raw sum, which favours short answers; alpha = 1: the mean log-prob per token).
# The check compares it with `Model.beam_search` on toy tables.

# %% tags=["solution"]
def beam_search(next_probs, width, max_new_tokens, alpha):
    # BEGIN SOLUTION
    alive, finished = [((), 0.0)], []
    for _ in range(max_new_tokens):
        candidates = sorted(((tokens + (t,), logprob + math.log(p)) for tokens, logprob in alive
                             for t, p in next_probs(tokens).items() if p > 0), key=lambda c: -c[1])[:2 * width]
        alive = []
        for rank, (tokens, logprob) in enumerate(candidates):
            if tokens[-1] == "<EOS>":
                if rank < width:
                    finished.append((tokens, logprob))
            elif len(alive) < width:
                alive.append((tokens, logprob))
        if len(finished) >= width or not alive:
            break
    return max(finished + alive, key=lambda h: h[1] / len(h[0]) ** alpha)
    # END SOLUTION

# %%
check("4.1 beam search", beam_search, tasks.beam)

# %% [markdown]
# ### Exercise 4.2
# Generate 20 tokens from "Once upon a time" at T = 0.3, 1.0 and 1.5 (same seed). Put the mean rank
# of the chosen tokens at each temperature in `mean_ranks` (a list of three numbers). How do the
# ranks change with T?

# %% tags=["solution"]
# BEGIN SOLUTION
def mean_rank(t):
    g = model.generate("Once upon a time", max_new_tokens=20, sampler=SamplerConfig(temperature=t), seed=0)
    return sum(s.rank for s in g.steps) / len(g.steps)
# END SOLUTION


mean_ranks = [mean_rank(t) for t in (0.3, 1.0, 1.5)]  # SOLUTION

# %%
def same_ranks():
    runs = [model.generate("Once upon a time", max_new_tokens=20, sampler=SamplerConfig(temperature=t), seed=0).steps
            for t in (0.3, 1.0, 1.5)]
    reference = [sum(s.rank for s in steps) / len(steps) for steps in runs]
    return satisfies(lambda r: len(r) == 3 and all(abs(a - b) < 1e-9 for a, b in zip(r, reference)),
                     "those are not the mean ranks of the three generations (20 tokens, seed 0)")


if check("4.2 mean ranks at T = 0.3, 1, 1.5", mean_ranks, lazy(same_ranks)):
    print("mean rank at T = 0.3, 1, 1.5:", [round(r, 1) for r in mean_ranks])
    claim("a higher temperature picks less likely tokens (the mean rank at T = 1.5 is above that at T = 0.3)",
          mean_ranks, satisfies(lambda r: r[0] < r[2], lambda r: f"the mean ranks are {r}"))

# %% [markdown]
# ### Exercise 4.3
# Which leaf of the tree of section 3 has the highest path probability? Put its text (the three
# tokens joined) in `best_leaf`. Is it greedy's continuation?

# %% tags=["solution"]
leaves = [(path + (node,)) for path, node in tree.nodes() if not node.children]
best = max(leaves, key=lambda p: p[-1].cum_logprob)
best_leaf = "".join(n.text for n in best)  # SOLUTION

# %%
likeliest = max((path + (node,) for path, node in tree.nodes() if not node.children), key=lambda p: p[-1].cum_logprob)
if check("4.3 the likeliest leaf", best_leaf, equal("".join(n.text for n in likeliest))):
    g3 = model.generate("See you", max_new_tokens=3, sampler=SamplerConfig.greedy())
    print(f"best leaf: {best_leaf!r} (path probability {likeliest[-1].cum_prob:.4f}) | greedy: {g3.text!r}")

# %% [markdown] tags=["solution"]
# Greedy picks the best *child* at each step; the best *path* can start with a less likely first
# token whose continuations are much surer. Compare the two on your model above.

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
