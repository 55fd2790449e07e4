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
# Along the way you write the stable softmax and the temperature yourself; a check under each
# exercise compares your function with the library's on ordinary and awkward inputs and says what
# differs. Runs in about 5 seconds of one CPU core with one torch thread (half of it importing
# torch and transformers); longer on a busy machine.

# %%
%matplotlib inline
import json
import math

import pandas as pd
import torch

import logitscope as ls
from logitscope import workshop
from logitscope.core import mathops
from logitscope.views import plots  # pictures of logits and of every result (result.plot())
from logitscope.workshop import check, claim, close_to, equal, load_preferred, satisfies, tasks

lesson = workshop.begin("01_logits_to_probabilities", edition="solutions")  # one torch thread; checks on
checks = {}  # numbers the test suite compares with the seed notebooks

# %% [markdown]
# ## 1. The softmax, one step at a time
#
# A *logit* zᵢ is a raw score, any real number. The softmax turns a vector of logits into
# probabilities: softmax(z)ᵢ = exp(zᵢ) / Σⱼ exp(zⱼ). Three logits, three steps:

# %%
logits = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64)
steps = pd.DataFrame({"logit": logits, "exp(logit)": logits.exp()})
steps["÷ sum"] = steps["exp(logit)"] / steps["exp(logit)"].sum()
steps["mathops.softmax"] = mathops.softmax(logits)
print(f"sum of exp: {float(logits.exp().sum()):.4f}")
steps.round(4)

# %% [markdown]
# The same three steps as pictures: the logits, their exponentials (all positive), and each divided by
# the sum.

# %%
plots.softmax_steps(logits, ["A", "B", "C"])

# %% [markdown]
# Softmax only cares about *differences* between logits: adding the same number to every logit
# changes nothing. That is what makes the stable version possible.

# %%
shift = float((mathops.softmax(logits + 100.0) - mathops.softmax(logits)).abs().max())
print(f"largest change after adding 100 to every logit: {shift:.1e}")
claim("adding the same number to every logit changes nothing", shift, close_to(0.0, 1e-12))

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
print("naive:         ", naive.tolist())
def six(t):
    return "[" + ", ".join(f"{float(x):.6f}" for x in t) + "]"


print("stable:        ", six(stable), f"sum = {float(stable.sum()):.6f}")
print("log probs:     ", six(log_probs))
print("exp(log probs):", six(log_probs.exp()))
checks["stable_softmax"] = [round(float(p), 6) for p in stable]
checks["stable_log_softmax"] = [round(float(p), 6) for p in log_probs]
claim("the naive formula gives nan", bool(naive.isnan().all()))
plots.softmax_steps(big)  # exp(1002) is inf, so the picture shifts by the max too (its middle title says so)

# %% [markdown]
# ### Exercise 1.1 — your own stable softmax
#
# Write `softmax(z)` for a 1-D float64 tensor of logits, from `exp`, `sum` and `max` only (not
# `torch.softmax`). It must survive `[1002, 1001, 999, 995]`, give 0 to a logit of `-inf`, and
# work for a single token. The check runs your function and `mathops.softmax` on the same inputs.

# %% tags=["solution"]
def softmax(z):
    """Probabilities from logits (V,) -> (V,), stable for large logits."""
    # BEGIN SOLUTION
    z = z - z.max()  # the largest logit becomes 0: exp never overflows
    e = z.exp()  # -inf -> 0
    return e / e.sum()
    # END SOLUTION

# %%
check("1.1 stable softmax", softmax, tasks.softmax)

# %% [markdown]
# ## 3. Temperature
#
# The **temperature** τ > 0 divides every logit before the softmax:
# p_τ(i) = exp(zᵢ / τ) / Σⱼ exp(zⱼ / τ). τ < 1 sharpens the distribution (as τ → 0 all the mass goes
# to the largest logit: greedy), τ > 1 flattens it (as τ → ∞ it becomes uniform), τ = 1 leaves it
# as it is. The **entropy** H = −Σ p log p measures how spread out a distribution is; with the
# natural log its unit is the *nat* (1 nat = 1/ln 2 ≈ 1.443 bits).

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
claim("the entropy grows with τ", sweep["entropy (nats)"].is_monotonic_increasing)
sweep.round(3)

# %%
plots.temperature_sweep(base_logits, temps)  # one line per τ; the legend repeats each entropy

# %% [markdown]
# ### Exercise 1.2 — temperature
#
# Write `softmax_t(z, tau)`: the softmax of z / τ, stable for every τ > 0 (think of τ = 0.001).

# %% tags=["solution"]
def softmax_t(z, tau):
    """softmax(z / tau) for a 1-D tensor of logits and tau > 0."""
    # BEGIN SOLUTION
    return softmax(z / tau)  # dividing first, then subtracting the max, keeps it stable
    # END SOLUTION

# %%
check("1.2 softmax with temperature", softmax_t, tasks.temperature)

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
top10.round(4)

# %% [markdown]
# How many tokens does it take to cover half, 90 % and 99 % of the probability?

# %%
sorted_p = probs.sort(descending=True).values
cumulative = sorted_p.cumsum(0)
def tokens_for(mass, sorted_probs):
    """How many of the most likely tokens it takes to reach ``mass``."""
    return int((sorted_probs.cumsum(0) < mass).sum()) + 1


for mass in (0.5, 0.9, 0.99):
    print(f"{mass:.0%} of the mass: top {tokens_for(mass, sorted_p):,} tokens")
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
# Each exercise has a cell for your answer (replace the `...`) and a check under it.
#
# ### Exercise 1.3
# Compute the stable softmax of `big = [1002, 1001, 999, 995]` at τ = 0.5 and at τ = 5
# (`mathops.softmax(big, temperature=...)`). Which token (give its index) *gains* probability when
# τ goes from 1 down to 0.5?

# %% tags=["solution"]
for tau in (0.5, 5.0):
    print(tau, mathops.softmax(big, temperature=tau).numpy().round(4))
gains_at_low_tau = 0  # SOLUTION

# %%
check("1.3 the token that gains at τ = 0.5", gains_at_low_tau,
      satisfies(lambda i: float(mathops.softmax(big, temperature=0.5)[i]) > float(stable[i]),
                "that token's probability does not grow at τ = 0.5: a low temperature moves mass to the largest logit"))

# %% [markdown]
# ### Exercise 1.4
# Find (by trying values, or by bisection) the temperature `tau_09` at which the top token of
# `base_logits` has probability 0.9 (to within 0.005).

# %% tags=["solution"]
# BEGIN SOLUTION
lo, hi = 0.05, 1.0  # the top probability falls as τ grows: bisect
for _ in range(50):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if float(mathops.softmax(base_logits, temperature=mid).max()) > 0.9 else (lo, mid)
# END SOLUTION
tau_09 = mid  # SOLUTION

# %%
check("1.4 τ for a top probability of 0.9", tau_09,
      satisfies(lambda t: abs(float(mathops.softmax(base_logits, temperature=t).max()) - 0.9) < 0.005,
                lambda t: f"at τ = {t:.3f} the top probability is {float(mathops.softmax(base_logits, temperature=t).max()):.3f}"))
checks["tau_for_top_0_9"] = round(tau_09, 3) if isinstance(tau_09, float) else None

# %% [markdown]
# ### Exercise 1.5
# How many tokens cover 90 % of the mass after "The first president of the United States was
# George" (`n90_factual`), and after "See you" (`n90_open`)? Use `tokens_for` from section 4.

# %% tags=["solution"]
def sorted_next_probs(prompt):
    return model.next_token(prompt, top_k=1).logprobs.double().exp().sort(descending=True).values


n90_factual = tokens_for(0.9, sorted_next_probs("The first president of the United States was George"))  # SOLUTION
n90_open = tokens_for(0.9, sorted_next_probs("See you"))  # SOLUTION

# %%
factual_90 = tokens_for(0.9, model.next_token("The first president of the United States was George",
                                              top_k=1).logprobs.double().exp().sort(descending=True).values)
check("1.5 tokens for 90 % of the mass", (n90_factual, n90_open),
      equal((factual_90, tokens_for(0.9, sorted_p)), "your (factual, open) counts"))
claim("one is so much smaller (at most a fifth)", factual_90 * 5 <= tokens_for(0.9, sorted_p))

# %% [markdown] tags=["solution"]
# Why is one so much smaller? The factual prompt has essentially one right continuation, so the
# model puts most of its mass on it; after "See you" many words are fine.

# %% [markdown]
# ### Exercise 1.6
# Is `argmax(logits) == argmax(softmax(logits))` always true? Check it on `nxt.logprobs` and set
# `argmax_kept` to what you found (`True` or `False`).

# %% tags=["solution"]
argmax_kept = int(nxt.logprobs.argmax()) == int(mathops.softmax(nxt.logprobs).argmax()) == nxt.top[0].token_id  # SOLUTION

# %%
check("1.6 softmax keeps the argmax", argmax_kept,
      equal(True, "your answer"))

# %% [markdown] tags=["solution"]
# Yes, always: softmax is strictly increasing in each logit (exp is increasing and every token is
# divided by the same sum), so the order of tokens, and with it the argmax, is kept.

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
