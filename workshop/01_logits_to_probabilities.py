# %% [markdown]
# # Lesson 1 — From logits to probabilities
#
# **What you will see.** A model's last layer gives one raw score (a *logit*) per token of its
# vocabulary. In this lesson you will
#
# 1. walk through the softmax by hand (exponentiate, sum, divide) and check it against
#    `logitscope.core.mathops.softmax`;
# 2. see why the *stable* softmax subtracts the largest logit, on the logits `[1002, 1001, 999, 995]`;
# 3. sweep the temperature τ and watch the entropy of the distribution grow with τ;
# 4. look at a real next-token distribution over a vocabulary of tens of thousands of tokens and find
#    how much probability the top 10 tokens hold (the class slide's "Total" row).
#
# Runs in about 15 seconds on a laptop CPU (most of it loading the model once).

# %%
%matplotlib inline
import json
import math

import pandas as pd
import torch

import logitscope as ls
from logitscope.workshop import load_preferred
from logitscope.core import mathops
from logitscope.views import plots  # pictures of logits and of every result (result.plot())

checks = {}  # numbers the test suite compares with the seed notebooks

# %% [markdown]
# ## 1. The softmax, one step at a time
#
# softmax(z)ᵢ = exp(zᵢ) / Σⱼ exp(zⱼ). Three logits, three steps:

# %%
logits = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64)
steps = pd.DataFrame({"logit": logits, "exp(logit)": logits.exp()})
steps["÷ sum"] = steps["exp(logit)"] / steps["exp(logit)"].sum()
steps["mathops.softmax"] = mathops.softmax(logits)
print("sum of exp:", float(logits.exp().sum()))
steps

# %% [markdown]
# The same three steps as pictures: the logits, their exponentials (all positive), and each divided by
# the sum.

# %%
plots.softmax_steps(logits, ["A", "B", "C"])

# %% [markdown]
# Softmax only cares about *differences* between logits: adding the same number to every logit
# changes nothing. That is what makes the stable version possible.

# %%
print(mathops.softmax(logits + 100.0) - mathops.softmax(logits))

# %% [markdown]
# ## 2. The stable softmax
#
# exp(1002) overflows a float64 (it is about 10⁴³⁵). The naive formula gives `inf / inf = nan`.
# `mathops.softmax` subtracts the largest logit first, so the biggest term is exp(0) = 1.

# %%
big = torch.tensor([1002.0, 1001.0, 999.0, 995.0], dtype=torch.float64)
naive = big.exp() / big.exp().sum()
stable = mathops.softmax(big)
log_probs = mathops.log_softmax(big)
print("naive:        ", naive.numpy())
print("stable:       ", stable.numpy().round(6), "sum =", float(stable.sum()))
print("log probs:    ", log_probs.numpy().round(6))
print("exp(log probs)", log_probs.exp().numpy().round(6))
checks["stable_softmax"] = [round(float(p), 6) for p in stable]
checks["stable_log_softmax"] = [round(float(p), 6) for p in log_probs]
plots.softmax_steps(big)  # exp(1002) is inf, so the picture shifts by the max too (its middle title says so)

# %% [markdown]
# ## 3. Temperature
#
# Dividing the logits by τ before the softmax sharpens the distribution (τ < 1) or flattens it
# (τ > 1). The entropy H = −Σ p log p (in nats) measures how spread out it is.

# %%
temps = [0.4, 0.7, 1.0, 1.5, 2.5]
base_logits = torch.tensor([3.0, 2.0, 1.0, 0.0, -1.0], dtype=torch.float64)
rows = []
for tau in temps:
    lp = mathops.log_softmax(base_logits, temperature=tau)
    rows.append({"tau": tau, "entropy (nats)": float(mathops.entropy(lp)), "top prob": float(lp.exp().max())})
sweep = pd.DataFrame(rows)
checks["entropy_by_tau"] = [round(r["entropy (nats)"], 3) for r in rows]
checks["top_prob_by_tau"] = [round(r["top prob"], 3) for r in rows]
sweep

# %%
plots.temperature_sweep(base_logits, temps)  # one line per τ; the legend repeats each entropy

# %% [markdown]
# ## 4. A real vocabulary
#
# Now a real model. The lessons prefer Gemma 3 270M *base* when you have added it
# (`logitscope models add gemma3-270m`); otherwise they use the bundled SmolLM2-135M-Instruct and
# say so. The seed used GPT-2, another base model.

# %%
model, note = load_preferred()
print(note)
print(model)

# %%
prompt = "See you"
nxt = model.next_token(prompt, top_k=10)
probs = nxt.logprobs.double().exp()  # the full distribution, one entry per vocabulary token
print(f"vocabulary: {probs.numel():,} tokens, probabilities sum to {float(probs.sum()):.6f}")
print(f"entropy: {nxt.entropy:.3f} nats = {nxt.entropy_bits:.2f} bits")
top10 = nxt.to_dataframe()[["text", "prob"]]
print(f"Total of the top 10: {top10['prob'].sum():.4f}")
top10

# %% [markdown]
# How many tokens does it take to cover half, 90 % and 99 % of the probability?

# %%
sorted_p = probs.sort(descending=True).values
cumulative = sorted_p.cumsum(0)
for mass in (0.5, 0.9, 0.99):
    print(f"{mass:.0%} of the mass: top {int((cumulative < mass).sum()) + 1:,} tokens")
checks["real_probs_sum"] = round(float(probs.sum()), 6)
checks["top10_total_matches"] = abs(float(cumulative[9]) - float(top10["prob"].sum())) < 1e-6

# %% [markdown]
# The result draws itself: the top 10 as bars, the same distribution at other temperatures, and the
# cumulative mass (the dots mark 50 %, 90 % and 99 %).

# %%
nxt.plot(temperatures=(0.5, 1.0, 2.0), mass=True)

# %% [markdown]
# ## Exercises
#
# 1. Compute the stable softmax of `[1002, 1001, 999, 995]` at τ = 0.5 and at τ = 5. Which token
#    gains and which loses? Use `mathops.softmax(..., temperature=...)`.
# 2. Find (by trying values) the temperature at which the top token of `base_logits` has
#    probability 0.9.
# 3. How many tokens cover 90 % of the mass after "The first president of the United States was George"?
#    Compare with "See you".
#    Why is one so much smaller?
# 4. Is `argmax(logits) == argmax(softmax(logits))` always true? Check it on `nxt.logprobs` and explain.

# %% [markdown] collapsed
# ## Solutions (collapsed: click the heading to open)

# %%
# 1. A low temperature sharpens towards the largest logit, a high one flattens.
for tau in (0.5, 5.0):
    print(tau, mathops.softmax(big, temperature=tau).numpy().round(4))

# %%
# 2. The top probability falls as τ grows; bisect on τ.
lo, hi = 0.05, 1.0
for _ in range(50):
    mid = (lo + hi) / 2
    top = float(mathops.softmax(base_logits, temperature=mid).max())
    lo, hi = (mid, hi) if top > 0.9 else (lo, mid)
print(f"τ ≈ {mid:.3f} gives top probability {top:.3f}")
checks["tau_for_top_0_9"] = round(mid, 3)

# %%
# 3. A factual prompt concentrates the mass on few tokens; an open one spreads it.
for p in ("The first president of the United States was George", "See you"):
    lp = model.next_token(p, top_k=1).logprobs.double().exp().sort(descending=True).values
    print(f"{p!r}: top {int((lp.cumsum(0) < 0.9).sum()) + 1:,} tokens hold 90%")

# %%
# 4. Yes: softmax is strictly increasing in each logit, so the order (and the argmax) is kept.
print(int(nxt.logprobs.argmax()) == int(mathops.softmax(nxt.logprobs).argmax()) == nxt.top[0].token_id)

# %% tags=["checks"]
print(json.dumps(checks, default=lambda v: v.item()))  # numpy scalars -> Python
