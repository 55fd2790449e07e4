# %% [markdown]
# # Lesson 6 — The probability math behind language models
#
# **What you will see.** The theory notebook's computations, each done by the library:
#
# 1. the chain rule on the toy dictionary model (`toydata.seed_table_model`) versus an
#    "independence" product; the add-α bigram model (`toydata.seed_bigram_model`);
# 2. cross-entropy = entropy + KL, and perplexity, for a good and a bad predictor;
# 3. the cross-entropy gradient p − y, checked with autograd;
# 4. masked (answer-only) loss, tied input/output embeddings (on the bundled model),
#    length normalisation;
# 5. expected calibration error (ECE) with a reliability diagram;
# 6. why per-token perplexity depends on the tokenizer, and bits per byte;
# 7. the seed's implementation checklist, as checks that run.
#
# You write perplexity from token log-probs and the ECE yourself, checked against the library.
# Runs in about 7 seconds of one CPU core with one torch thread (the bundled model is loaded once,
# for parts 4, 6 and 7).

# %%
%matplotlib inline
import json
import math

import numpy as np
import pandas as pd
import torch

import logitscope as ls
from logitscope.backends import toydata
from logitscope.core import calibration_math, mathops
from logitscope.sampling.beam import normalized_score
from logitscope.views import plots
from logitscope import workshop
from logitscope.workshop import check, claim, close_to, equal, satisfies, tasks

lesson = workshop.begin("06_probability_math", edition="solutions")
checks = {}

# %% [markdown]
# ## 1. A tiny autoregressive model and the chain rule
#
# `toydata.SEED_TABLE` is the theory notebook's dictionary: each prefix maps to a next-word
# distribution. `seed_table_model()` turns it into a logitscope backend, so every analysis works on it.

# %%
table = ls.from_backend(toydata.seed_table_model())
scored = table.score("the cat sat <EOS>", bos=True)
scored.to_dataframe()[["text", "prob", "logprob"]]

# %%
chain = math.exp(scored.total_logprob)
independent = 0.40 * 0.30 * 0.10 * 0.20  # the seed's "independence-style" unigram guesses
print(f"chain rule: P = 0.90 x 0.75 x 0.55 x 0.80 = {chain:.4f}  (log P = {scored.total_logprob:.4f})")
print(f"independence-style product: {independent:.4f};  ratio {chain / independent:.2f}")
checks["chain_rule_prob"] = chain
checks["chain_vs_independent_ratio"] = chain / independent
claim("P = 0.90 x 0.75 x 0.55 x 0.80", chain, close_to(0.90 * 0.75 * 0.55 * 0.80, 1e-9))

# %% [markdown]
# The chain rule is exact; what a model approximates is each conditional. The add-α bigram model
# estimates P(w | previous word) = (count + α) / (total + α·|V|) from four sentences:

# %%
bigram = ls.from_backend(toydata.seed_bigram_model(alpha=0.5))
after_the = bigram.next_token("the", top_k=10, bos=True)
table_the = after_the.to_dataframe()[["text", "prob"]]
print("sentences:", toydata.SEED_CORPUS, " normalisation:", round(table_the["prob"].sum(), 6))
checks["bigram_after_the"] = {r.text: round(r.prob, 4) for r in table_the.itertuples()}
table_the

# %% [markdown]
# ## 2. Entropy, cross-entropy, KL and perplexity
#
# True distribution q = (0.70, 0.20, 0.10). Entropy H(q) = −Σ q log q; cross-entropy
# H(q, p) = −Σ q log p; Kullback–Leibler divergence KL(q ‖ p) = Σ q log(q / p) ≥ 0. Then
# H(q, p) = H(q) + KL(q ‖ p): the irreducible uncertainty plus the model's mismatch. Perplexity =
# exp(cross-entropy). All in nats (natural log).

# %%
q = torch.tensor([0.70, 0.20, 0.10], dtype=torch.float64).log()
rows = []
for name, p in [("good", [0.65, 0.25, 0.10]), ("bad", [0.20, 0.30, 0.50])]:
    lp = torch.tensor(p, dtype=torch.float64).log()
    ce = float(mathops.cross_entropy(q, lp))
    rows.append({"model": name, "CE": ce, "H(q)": float(mathops.entropy(q)), "KL(q||p)": float(mathops.kl_divergence(q, lp)),
                 "PPL": mathops.perplexity(ce, 1)})
ce_table = pd.DataFrame(rows).round(4)
checks["ce"] = {r["model"]: r["CE"] for r in rows}
checks["ppl"] = {r["model"]: r["PPL"] for r in rows}
checks["h_plus_kl"] = {r["model"]: r["H(q)"] + r["KL(q||p)"] for r in rows}
claim("CE = H + KL", max(abs(r["CE"] - r["H(q)"] - r["KL(q||p)"]) for r in rows), close_to(0.0, 1e-12))
ce_table

# %% [markdown]
# ### Exercise 6.1 — perplexity from token log-probs
# Write `perplexity(logprobs)`: exp of the mean negative log-prob of a list of token log-probs
# (natural log). It must work for 2,000 tokens of p = 0.1 (where multiplying the probabilities
# underflows to 0) and give infinity when a token has log-prob −∞.

# %% tags=["solution"]
def perplexity(logprobs):
    # BEGIN SOLUTION
    return math.exp(-sum(logprobs) / len(logprobs))
    # END SOLUTION

# %%
check("6.1 perplexity from token log-probs", perplexity, tasks.perplexity)

# %% [markdown]
# ## 3. The cross-entropy gradient is p − y
#
# For a target token, loss = −log softmax(z)[target] and ∂loss/∂z = softmax(z) − one_hot(target).
# Autograd agrees:

# %%
z = torch.tensor([1.2, -0.3, 0.7, 2.1], dtype=torch.float64, requires_grad=True)
target = 3
loss = -mathops.log_softmax(z)[target]
loss.backward()
analytic = mathops.softmax(z.detach()) - torch.nn.functional.one_hot(torch.tensor(target), 4)
print("probabilities:", mathops.softmax(z.detach()).numpy().round(5))
print("autograd:     ", z.grad.numpy().round(5))
print("p - y:        ", analytic.numpy().round(5))
checks["grad_max_error"] = float((z.grad - analytic).abs().max())
checks["grad"] = [round(float(g), 5) for g in z.grad]

# %% [markdown]
# ## 4. Masks, tied embeddings, length normalisation
#
# **Masked loss.** Padding (or the prompt, in answer-only scoring) must not enter the mean.

# %%
token_losses = np.array([[1.1, 0.9, 0.7, 0.0], [1.5, 1.3, 0.0, 0.0]])
mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
masked_mean = (token_losses * mask).sum() / mask.sum()
print("masked mean:", masked_mean, " unmasked mean:", token_losses.mean())
checks["masked_mean"] = masked_mean
checks["unmasked_mean"] = token_losses.mean()

# %% [markdown]
# logitscope applies that mask for you: `score(answer, context=prompt)` scores only the answer's tokens.

# %%
model = ls.load()  # the bundled SmolLM2-135M-Instruct
full = model.score("The capital of France is Paris")
answer = model.score(" Paris", context="The capital of France is")
print(f"whole sentence: {full.num_scored} tokens, mean log-prob {full.mean_logprob:.3f}")
print(f"answer only:    {answer.num_scored} token,  mean log-prob {answer.mean_logprob:.3f}")
checks["answer_only_tokens"] = answer.num_scored

# %% [markdown]
# **Tied embeddings.** SmolLM2 uses one matrix E both to embed input tokens and as the LM head:
# logits = h · Eᵀ. Check it on the real model:

# %%
net = model.backend.model
E = net.get_input_embeddings().weight  # (V, H)
print("same tensor:", net.get_output_embeddings().weight is E, tuple(E.shape))
with torch.no_grad():
    h = net.get_decoder()(torch.tensor([model.tokenize("The cat sat").ids])).last_hidden_state[0, -1]  # (H,)
    by_hand = h @ E.T  # (V,)
print("max |h·Eᵀ - model.logits| =", float((by_hand - model.logits("The cat sat")[0, -1]).abs().max()))
checks["tied"] = net.get_output_embeddings().weight is E
checks["tied_logits_match"] = float((by_hand - model.logits("The cat sat")[0, -1]).abs().max()) < 1e-3

# %% [markdown]
# **Length normalisation.** A raw log-probability sum favours short outputs; beam search divides by
# length^α (`normalized_score`; α = 0 is the raw sum, α = 1 the mean per token).

# %%
candidates = {"short": [-0.20, -0.40], "long": [-0.32, -0.34, -0.35, -0.33, -0.34, -0.32]}
rows = [{"candidate": k, "total": sum(v), "alpha=0": normalized_score(sum(v), len(v), 0.0),
         "alpha=1 (mean)": normalized_score(sum(v), len(v), 1.0),
         "perplexity": mathops.perplexity(-sum(v), len(v))} for k, v in candidates.items()]
checks["length_norm"] = {r["candidate"]: [round(r["total"], 4), round(r["alpha=1 (mean)"], 4), round(r["perplexity"], 4)] for r in rows}
pd.DataFrame(rows).round(4)

# %% [markdown]
# ## 5. Expected calibration error
#
# Ten predictions with their confidences and whether they were right. Five equal-width bins;
# ECE = Σ (bin share) · |accuracy − confidence|.

# %%
conf = [0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.55, 0.45, 0.30]
correct = [1, 1, 0, 1, 0, 1, 0, 0, 0, 0]
bins = calibration_math.reliability_bins(conf, correct, bins=5)
ece = calibration_math.expected_calibration_error(conf, correct, bins=5)
print(f"ECE = {ece:.3f}")
checks["ece"] = ece
checks["ece_bins"] = [[b.count, None if b.count == 0 else round(b.accuracy, 3), None if b.count == 0 else round(b.confidence, 3)] for b in bins]
pd.DataFrame([{"bin": f"({b.low:.1f}, {b.high:.1f}]", "n": b.count, "accuracy": b.accuracy, "confidence": b.confidence} for b in bins]).round(3)

# %%
plots.reliability_diagram(bins, title=f"Reliability diagram, ECE = {ece:.3f}")

# %% [markdown]
# ### Exercise 6.2 — ECE
# Write `ece(confidence, correct, bins)` with equal-width bins (lo, hi] over [0, 1] (a confidence of
# exactly 0 goes to the first bin): ECE = Σ_b (n_b / N) · |accuracy_b − mean confidence_b|.

# %% tags=["solution"]
def ece(confidence, correct, bins):
    # BEGIN SOLUTION
    conf, corr = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)  # (lo, hi] bins
    return sum((which == b).mean() * abs(corr[which == b].mean() - conf[which == b].mean())
               for b in range(bins) if (which == b).any())
    # END SOLUTION

# %%
check("6.2 expected calibration error", ece, tasks.ece)

# %% [markdown]
# ## 6. Perplexity depends on the tokenizer; bits per byte does not
#
# The same total NLL of 12 nats over a text of 32 bytes: tokenizer A cuts it into 6 tokens,
# tokenizer B into 10.

# %%
nll, tokens_a, tokens_b, n_bytes = 12.0, 6, 10, 32
print("PPL tokenizer A:", round(mathops.perplexity(nll, tokens_a), 3))
print("PPL tokenizer B:", round(mathops.perplexity(nll, tokens_b), 3))
print("bits per byte:  ", round(mathops.bits_per_byte(nll, n_bytes), 3))
checks["tokenizer_ppl"] = [mathops.perplexity(nll, tokens_a), mathops.perplexity(nll, tokens_b), mathops.bits_per_byte(nll, n_bytes)]

# %% [markdown]
# On a real text the same total NLL, divided per token, per word or per byte, gives three different
# numbers, because the text has different numbers of each unit.

# %%
long_text = "Photosynthesis converts electromagnetic radiation into chemical energy."
s = model.score(long_text, bos=True)
nll_text = -s.total_logprob
units = {"token": s.num_scored, "word": len(long_text.split()), "byte": s.num_bytes}
unit_table = pd.DataFrame([{"unit": u, "count": n, "NLL per unit (nats)": nll_text / n,
                            "perplexity per unit": mathops.perplexity(nll_text, n)} for u, n in units.items()])
unit_table["bits per unit"] = unit_table["NLL per unit (nats)"] / math.log(2)
checks["bpb_matches_formula"] = math.isclose(s.bits_per_byte, mathops.bits_per_byte(nll_text, len(long_text.encode())))
claim("the per-token and per-word perplexities differ", units["token"] != units["word"])
print(f"{long_text!r}: NLL {nll_text:.2f} nats over {units['token']} tokens, {units['word']} words, {units['byte']} bytes")
unit_table.round(3)

# %% [markdown]
# ## 7. The implementation checklist, as checks that run

# %%
text = "The cat sat on the mat."
logits = model.logits(text)  # (1, T, V)
ids = model.tokenize(text).ids
scored = model.score(text, bos=False)
lp = mathops.log_softmax(logits[0].double())  # (T, V)
shift_ok = all(math.isclose(t.logprob, float(lp[t.position - 1, t.token_id]), abs_tol=1e-4) for t in scored.scored_tokens)
prefix_logits = model.logits("The cat sat")
checklist = {
    "softmax sums to one on the vocabulary axis": bool(torch.allclose(lp.exp().sum(-1), torch.ones(len(ids), dtype=torch.float64))),
    "log-softmax uses log-sum-exp stabilization": bool(torch.isfinite(mathops.log_softmax(torch.tensor([1e4, 0.0]))).all()),
    "targets are shifted by one position": shift_ok,
    "causal mask prevents future leakage": bool(torch.allclose(prefix_logits[0], logits[0, :prefix_logits.shape[1]], atol=1e-4)),
    "padding and prompt masks are applied before averaging": math.isclose(
        model.score_many(["The cat sat", text], bos=False)[0].total_logprob, model.score("The cat sat", bos=False).total_logprob, abs_tol=1e-3),
}
for i, (what, ok) in enumerate(checklist.items(), 1):
    print(f"{i}. {what}: {'ok' if ok else 'FAILED'}")
print("6. sequence comparisons state the length convention: see normalized_score(alpha=...)")
print("7. perplexity comparisons state tokenizer and dataset:", model.name, "on", repr(text))
checks["checklist"] = list(checklist.values())

# %% [markdown]
# ## Exercises
#
# ### Exercise 6.3
# With the table model, what is P("the cat slept <EOS>") (`p_slept`)? Which of its four factors is
# exactly 1, and why?

# %% tags=["solution"]
p_slept = math.exp(table.score("the cat slept <EOS>", bos=True).total_logprob)  # SOLUTION

# %%
if check("6.3 P(the cat slept <EOS>)", p_slept, close_to(0.9 * 0.75 * 0.35, 1e-9)):
    print(f"P = {p_slept:.5f} = 0.9 x 0.75 x 0.35 x 1.0 = {0.9 * 0.75 * 0.35:.5f}")

# %% [markdown] tags=["solution"]
# The last factor, P(<EOS> | the cat slept), is 1: the table has no entry after "the cat slept", and
# the model predicts <EOS> with certainty after any prefix it does not know. The chain rule still
# holds: the probability is the product of the four conditionals.

# %% [markdown]
# ### Exercise 6.4
# Re-fit the bigram with α = 0.1 and α = 5 (`toydata.seed_bigram_model(alpha)`). Put P(cat | the) at
# α = 0.1 and at α = 5 in `p_cat` (two numbers). What happens to it as α grows?

# %% tags=["solution"]
# BEGIN SOLUTION
def p_after_the(alpha, word):
    top = ls.from_backend(toydata.seed_bigram_model(alpha)).next_token("the", top_k=10, bos=True)
    return next(c.prob for c in top.top if c.text == word)
# END SOLUTION


p_cat = [p_after_the(0.1, "cat"), p_after_the(5.0, "cat")]  # SOLUTION

# %%
if check("6.4 P(cat | the) at α = 0.1 and 5", p_cat,
         satisfies(lambda p: all(math.isclose(a, (3 + al) / (4 + al * 7), abs_tol=1e-6) for a, al in zip(p, (0.1, 5.0))),
                   lambda p: f"expected (3 + α) / (4 + 7α) for α = 0.1 and 5, got {[round(x, 4) for x in p]}")):
    print(f"P(cat | the) = {p_cat[0]:.3f} at α = 0.1, {p_cat[1]:.3f} at α = 5 (uniform: 1/7 = {1 / 7:.3f})")

# %% [markdown] tags=["solution"]
# Small α trusts the counts (3 of the 4 words after "the" were "cat"); large α pulls every word
# towards the uniform 1/7.

# %% [markdown]
# ### Exercise 6.5
# Make a predictor p that beats (0.65, 0.25, 0.10) on the cross-entropy to q. What is the best
# possible cross-entropy (`best_ce`, in nats)?

# %% tags=["solution"]
best_ce = float(mathops.entropy(q))  # SOLUTION

# %%
check("6.5 the best possible cross-entropy", best_ce, close_to(float(mathops.cross_entropy(q, q)), 1e-9))

# %% [markdown] tags=["solution"]
# The best possible cross-entropy is H(q) itself, reached when p = q (then KL = 0).

# %% [markdown]
# ### Exercise 6.6
# Show with autograd that the gradient of the mean CE over a *masked* batch is zero at the padded
# positions: put the largest |gradient| over the padded positions in `padded_grad`.

# %% tags=["solution"]
zb = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
targets = torch.randint(0, 5, (2, 4))
m = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
nll = -mathops.log_softmax(zb).gather(-1, targets[..., None])[..., 0]
((nll * m).sum() / m.sum()).backward()
padded_grad = float(zb.grad[m == 0].abs().max())  # SOLUTION

# %%
if check("6.6 no gradient at padded positions", padded_grad, close_to(0.0, 0.0)):
    print(f"largest |gradient| at a padded position: {padded_grad}; at a kept one: {float(zb.grad[m == 1].abs().max()):.4f}")

# %% [markdown]
# ### Exercise 6.7
# Change one confidence of section 5 so that the ECE rises above 0.3. Put the new list in `conf2`.

# %% tags=["solution"]
conf2 = list(conf)
conf2[8] = 0.95  # SOLUTION

# %%
if check("6.7 one confidence changed, ECE above 0.3", conf2,
         satisfies(lambda c: len(c) == len(conf) and sum(a != b for a, b in zip(c, conf)) == 1
                   and calibration_math.expected_calibration_error(c, correct, bins=5) > 0.3,
                   lambda c: f"{sum(a != b for a, b in zip(c, conf))} confidence(s) changed, ECE "
                             f"{calibration_math.expected_calibration_error(c, correct, bins=5):.3f}")):
    print(f"ECE = {calibration_math.expected_calibration_error(conf2, correct, bins=5):.3f} (section 5: {checks['ece']:.3f})")

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
