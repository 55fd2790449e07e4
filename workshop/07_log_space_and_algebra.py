# %% [markdown]
# # Lesson 7 — Log space and algebra
#
# **What you will see.** Why language models work with *log*-probabilities, and what "the algebra"
# of a computation means:
#
# 1. the sigmoid is the softmax of two logits;
# 2. a product of many probabilities underflows to 0, the sum of their logs does not;
# 3. on a small graph, the **log semiring** (⊕ = logaddexp, ⊗ = +) adds up every path's probability,
#    while the **tropical / max semiring** (⊕ = max, ⊗ = +) finds the single best path — both with
#    `mathops.lattice_score`, and a drawing of the two answers;
# 4. decibels: a log scale engineers use every day (a plot of linear vs log vs dB);
# 5. a custom algebra a ⊕ b = a + b + ab/4 and which laws it keeps.
#
# No model is loaded; runs in a few seconds.

# %%
import itertools
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

from logitscope import workshop
from logitscope.core import mathops
from logitscope.workshop import check, claim, close_to, equal, satisfies

lesson = workshop.begin("07_log_space_and_algebra", edition="solutions")
checks = {}

# %% [markdown]
# ## 1. The sigmoid is a two-token softmax
#
# σ(z) = 1 / (1 + e⁻ᶻ) = softmax([z, 0])₀. A yes/no classifier is a language model with a two-word
# vocabulary.

# %%
z = torch.linspace(-8, 8, 161, dtype=torch.float64)
two = torch.stack([z, torch.zeros_like(z)], dim=-1)  # (161, 2): logits of "yes" and "no"
via_softmax = mathops.softmax(two)[:, 0]
print("max |sigmoid - softmax([z, 0])| =", float((torch.sigmoid(z) - via_softmax).abs().max()))
checks["sigmoid_is_softmax"] = float((torch.sigmoid(z) - via_softmax).abs().max()) < 1e-12
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(z, torch.sigmoid(z), label="σ(z)")
ax.plot(z, mathops.log_softmax(two)[:, 0].exp(), "--", label="softmax([z, 0])₀")
ax.set(xlabel="logit z", ylabel="probability")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. Products underflow, sums of logs do not
#
# The probability of a 400-token text is a product of 400 conditional probabilities. At a typical
# 0.1 each, that is 10⁻⁴⁰⁰: below the smallest float64 (about 10⁻³⁰⁸).

# %%
p = torch.full((400,), 0.1, dtype=torch.float64)
product = torch.prod(p)
log_sum = torch.log(p).sum()
print("product of probabilities:", float(product))
print("sum of log-probabilities:", float(log_sum), "nats =", mathops.nats_to_bits(float(log_sum)), "bits")
checks["product_underflows"] = float(product) == 0.0
checks["log_sum_400"] = float(log_sum)

# %%
lengths = np.arange(1, 401)
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
a.plot(lengths, np.cumprod(np.full(400, 0.1)))
a.set(title="product (linear axis)", xlabel="tokens")
b.plot(lengths, np.cumsum(np.log(np.full(400, 0.1))))
b.set(title="sum of logs", xlabel="tokens", ylabel="nats")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Semirings on a graph
#
# A small lattice: four ways from `S` to `E`. Edges carry log-probabilities. "Sum" over paths and
# "best" path are the same dynamic program with different ⊕:
#
# | semiring | ⊕ (combine alternatives) | ⊗ (extend a path) | answers |
# |---|---|---|---|
# | log | logaddexp | + | log P(reach E) over all paths |
# | tropical (max) | max | + | best path and its log-probability (Viterbi) |

# %%
edge_probs = {
    "S": [("a", 0.6), ("b", 0.4)],
    "a": [("c", 0.5), ("d", 0.5)],
    "b": [("c", 0.9), ("d", 0.1)],
    "c": [("E", 0.7)],
    "d": [("E", 0.9)],
}
edges = {u: [(v, math.log(p)) for v, p in out] for u, out in edge_probs.items()}
total, _ = mathops.lattice_score(edges, "S", "E", semiring="log")
best, best_path = mathops.lattice_score(edges, "S", "E", semiring="max")


def all_paths(node, path=("S",), logp=0.0):
    if node == "E":
        yield path, logp
    for nxt, lp in edges.get(node, ()):
        yield from all_paths(nxt, path + (nxt,), logp + lp)


paths = sorted(all_paths("S"), key=lambda x: -x[1])
for path, logp in paths:
    print(" -> ".join(path), f"p = {math.exp(logp):.3f}")
print(f"log semiring: log P = {total:.4f}, P = {math.exp(total):.4f}")
print(f"max semiring: best = {' -> '.join(best_path)}, log p = {best:.4f}, p = {math.exp(best):.4f}")
print("enumerated: logsumexp =", round(mathops.logsumexp_paths([lp for _, lp in paths]), 4))
checks["lattice_log_total"] = total
checks["lattice_best"] = best
checks["lattice_best_path"] = best_path
checks["lattice_enumerated_total"] = mathops.logsumexp_paths([lp for _, lp in paths])

# %%
pos = {"S": (0, 0), "a": (1, 1), "b": (1, -1), "c": (2, 1), "d": (2, -1), "E": (3, 0)}
on_best = set(zip(best_path, best_path[1:]))
fig, ax = plt.subplots(figsize=(7, 3.5))
for u, out in edge_probs.items():
    for v, p in out:
        (x0, y0), (x1, y1) = pos[u], pos[v]
        ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", lw=1 + 4 * p,
                    color="crimson" if (u, v) in on_best else "grey"))
        t = 0.3 if (u, v) in (("a", "d"), ("b", "c")) else 0.5  # the crossing edges: labels apart
        ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0) + 0.1, f"{p}", ha="center", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))
for n, (x, y) in pos.items():
    ax.text(x, y, n, ha="center", va="center", bbox=dict(boxstyle="circle", fc="white"))
ax.set_title(f"best path (max semiring, red) p = {math.exp(best):.3f};  all paths (log semiring) P = {math.exp(total):.3f}")
ax.set(xlim=(-0.3, 3.3), ylim=(-1.5, 1.5))
ax.axis("off")
plt.show()

# %% [markdown]
# The same structure scores a language model's sequences: chaining token log-probabilities is ⊗,
# and the probability of a *string* that several tokenizations can produce is the ⊕ over them.
#
# ## 4. Decibels: a log scale in daily use
#
# Power ratio in dB = 10·log₁₀(P/P₀); amplitude ratio = 20·log₁₀(A/A₀) (power goes as amplitude²).
# Log-probabilities are the same idea: nats = ln p, bits = log₂ p; 10 dB is a factor of 10.

# %%
ratio = np.logspace(-3, 3, 200)
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
axes[0].plot(ratio, ratio)
axes[0].set(title="linear", xlabel="power ratio")
axes[1].loglog(ratio, ratio)
axes[1].set(title="log–log", xlabel="power ratio")
axes[2].semilogx(ratio, 10 * np.log10(ratio))
axes[2].set(title="decibels", xlabel="power ratio", ylabel="dB")
fig.tight_layout()
plt.show()
checks["db_of_power_x2"] = round(10 * math.log10(2), 3)
checks["db_of_amplitude_x2"] = round(20 * math.log10(2), 3)
print("double the power:", checks["db_of_power_x2"], "dB; double the amplitude:", checks["db_of_amplitude_x2"], "dB")

# %% [markdown]
# ## 5. A custom algebra: a ⊕ b = a + b + ab/4
#
# Change the rule and see which laws survive. We check them on a grid of numbers.

# %%
def oplus(a, b):
    return a + b + a * b / 4


grid = np.linspace(-6, 6, 25)
commutative = all(math.isclose(oplus(a, b), oplus(b, a)) for a, b in itertools.product(grid, grid))
associative = all(math.isclose(oplus(oplus(a, b), c), oplus(a, oplus(b, c)), abs_tol=1e-9)
                  for a, b, c in itertools.product(grid[::3], grid[::3], grid[::3]))
identity = all(oplus(a, 0.0) == a for a in grid)
absorbing = all(oplus(a, -4.0) == -4.0 for a in grid)  # -4 swallows everything, like 0 in multiplication
print(f"commutative {commutative}, associative {associative}, identity 0 {identity}, absorbing -4 {absorbing}")
checks["algebra_laws"] = [commutative, associative, identity, absorbing]

# %% [markdown]
# Why: with f(a) = 1 + a/4, f(a ⊕ b) = f(a)·f(b). The custom ⊕ *is* multiplication in disguise — just
# as log turns multiplication into +. Repeating x ⊕ x ⊕ … grows geometrically:

# %%
x, values = 1.0, [0.0]
for _ in range(10):
    values.append(oplus(values[-1], x))
closed_form = [4 * ((1 + x / 4) ** n - 1) for n in range(11)]
print(np.round(values, 4))
checks["repeated_composition_matches"] = bool(np.allclose(values, closed_form))
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(values, "o-", label="x ⊕ x ⊕ … (n times)")
ax.plot(np.arange(11) * x, ":", label="ordinary n·x")
ax.set(xlabel="n")
ax.legend()
plt.show()

# %% [markdown]
# ## Exercises
#
# ### Exercise 7.1
# What is the log-probability, in bits (`bits_1000`), of a 1,000-token text whose tokens each have
# p = 0.5?

# %% tags=["solution"]
bits_1000 = mathops.nats_to_bits(1000 * math.log(0.5))  # SOLUTION

# %%
if check("7.1 log2 P of 1,000 coin flips", bits_1000, close_to(-1000.0, 1e-9)):
    print(f"{bits_1000:g} bits: p = 2^-1000 = {0.5 ** 1000:.3g} is still a float64, but 2^-1100 = {0.5 ** 1100} is not; "
          "the log is fine either way")

# %% [markdown]
# ### Exercise 7.2
# In the lattice, change P(b → c) and P(b → d) to 0.5 each. Give the new best path (`best2`, a list of
# nodes) and the new total probability (`total2`).

# %% tags=["solution"]
edges2 = dict(edges, b=[("c", math.log(0.5)), ("d", math.log(0.5))])
best2 = mathops.lattice_score(edges2, "S", "E", "max")[1]  # SOLUTION
total2 = math.exp(mathops.lattice_score(edges2, "S", "E", "log")[0])  # SOLUTION

# %%
paths2 = {("S", "a", "c", "E"): .6 * .5 * .7, ("S", "a", "d", "E"): .6 * .5 * .9, ("S", "b", "c", "E"): .4 * .5 * .7,
          ("S", "b", "d", "E"): .4 * .5 * .9}
if check("7.2 the changed lattice", (best2, total2),
         satisfies(lambda a: tuple(a[0]) == max(paths2, key=paths2.get) and abs(a[1] - sum(paths2.values())) < 1e-6,
                   lambda a: f"by enumeration the best path is {max(paths2, key=paths2.get)} and the total {sum(paths2.values()):.3f}")):
    print(f"best path {' -> '.join(best2)}, total P = {total2:.3f}")

# %% [markdown]
# ### Exercise 7.3
# Add an edge `S -> E` with probability 0.01. What is the log-semiring total now (`total3`, a
# probability)? Is the graph still a distribution over paths? Why does `lattice_score` not mind?

# %% tags=["solution"]
edges3 = dict(edges, S=edges["S"] + [("E", math.log(0.01))])
total3 = math.exp(mathops.lattice_score(edges3, "S", "E", "log")[0])  # SOLUTION

# %%
if check("7.3 the total with a shortcut", total3, close_to(math.exp(total) + 0.01, 1e-6)):
    print(f"total P = {total3:.3f} (before: {math.exp(total):.3f})")

# %% [markdown] tags=["solution"]
# The total grows by exactly 0.01, to more than the 0.768 of before, and the outgoing probabilities
# of S now add up to 1.01: no longer a distribution. A semiring only adds and multiplies the weights
# it is given; normalisation is the model's business, not the algebra's.

# %% [markdown]
# ### Exercise 7.4
# Find the inverse of a = 2 under ⊕ (the b with a ⊕ b = 0), as `inverse_of_2`. Which a has none?

# %% tags=["solution"]
inverse_of_2 = -4 * 2.0 / (4 + 2.0)  # SOLUTION

# %%
if check("7.4 the inverse of 2", inverse_of_2, satisfies(lambda b: abs(oplus(2.0, b)) < 1e-12,
                                                         lambda b: f"2 ⊕ {b} = {oplus(2.0, b):.4g}, not 0")):
    print(f"2 ⊕ {inverse_of_2:.4f} = {oplus(2.0, inverse_of_2):g}")

# %% [markdown] tags=["solution"]
# a ⊕ b = 0 ⟺ b = −a / (1 + a/4) = −4a / (4 + a); a = −4 has none, as 0 has no inverse under ×.

# %% [markdown]
# ### Exercise 7.5
# Is logaddexp associative? Check it numerically with `torch.logaddexp` on three numbers and put
# the difference between the two groupings in `assoc_gap`.

# %% tags=["solution"]
t3 = torch.tensor([0.3, -2.0, 5.0], dtype=torch.float64)
assoc_gap = float(torch.logaddexp(torch.logaddexp(t3[0], t3[1]), t3[2]) - torch.logaddexp(t3[0], torch.logaddexp(t3[1], t3[2])))  # SOLUTION

# %%
if check("7.5 logaddexp is associative", assoc_gap, close_to(0.0, 1e-12)):
    print(f"(a ⊕ b) ⊕ c − a ⊕ (b ⊕ c) = {assoc_gap:g}")

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
