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
# Runs in about 20 seconds (the bundled model is loaded once, for parts 4, 6 and 7).

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
# True distribution q = (0.70, 0.20, 0.10). Cross-entropy H(q, p) = H(q) + KL(q ‖ p): the
# irreducible uncertainty plus the model's mismatch. Perplexity = exp(cross-entropy).

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
ce_table

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
print(f"ECE = {ece:.4f}")
checks["ece"] = ece
checks["ece_bins"] = [[b.count, None if b.count == 0 else round(b.accuracy, 3), None if b.count == 0 else round(b.confidence, 3)] for b in bins]
pd.DataFrame([{"bin": f"({b.low:.1f}, {b.high:.1f}]", "n": b.count, "accuracy": b.accuracy, "confidence": b.confidence} for b in bins])

# %%
plots.reliability_diagram(bins, title=f"Reliability diagram, ECE = {ece:.3f}")

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
# On real tokenizers: the same sentence under the bundled model's BPE tokenizer and under the toy
# word-level model, and the bundled model's NLL divided per token, per word and per byte.

# %%
sentence = "the cat sat on the mat"
toy = ls.load("toy")
rows = []
for name, m in [("SmolLM2 BPE", model), ("toy words", toy)]:
    s = m.score(sentence, bos=True)
    rows.append({"tokenizer": name, "tokens": s.num_scored, "NLL (nats)": -s.total_logprob,
                 "PPL per token": s.perplexity, "bits/byte": s.bits_per_byte})
long_text = "Photosynthesis converts electromagnetic radiation into chemical energy."
s = model.score(long_text, bos=True)
words = len(long_text.split())
print(f"{long_text!r}: {s.num_scored} tokens, {words} words, {s.num_bytes} bytes")
print(f"  per token PPL {s.perplexity:.2f}, per word PPL {mathops.perplexity(-s.total_logprob, words):.2f}, "
      f"bits/byte {s.bits_per_byte:.3f}")
checks["bpb_matches_formula"] = math.isclose(s.bits_per_byte, mathops.bits_per_byte(-s.total_logprob, len(long_text.encode())))
pd.DataFrame(rows).round(3)

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
# 1. With the table model, what is P("the cat slept <EOS>")? Why is it *not* 0.9 · 0.75 · 0.35 · 1?
# 2. Re-fit the bigram with α = 0.1 and α = 5. What happens to P(cat | the) and P(slept | the)?
# 3. Make a "good" predictor that beats (0.65, 0.25, 0.10) on the CE to q. What is the best possible CE?
# 4. Show with autograd that the gradient of the mean CE over a *masked* batch is zero at padded positions.
# 5. Change one confidence so that ECE rises above 0.3.

# %% [markdown] collapsed
# ## Solutions (collapsed: click the heading to open)

# %%
# 1. After "the cat slept" the table has no entry, so the default predicts <EOS> with certainty:
#    0.9 · 0.75 · 0.35 · 1.0.  (It *is* that product: the chain rule, with P(<EOS> | ...) = 1.)
print(math.exp(table.score("the cat slept <EOS>", bos=True).total_logprob), 0.9 * 0.75 * 0.35)

# %%
# 2. Small α trusts the counts; large α pulls everything towards uniform (1/7).
for alpha in (0.1, 0.5, 5.0):
    top = ls.from_backend(toydata.seed_bigram_model(alpha)).next_token("the", top_k=10, bos=True).to_dataframe()
    print(alpha, dict(zip(top.text, top.prob.round(3))))

# %%
# 3. The best possible CE is H(q) itself, reached when p = q (KL = 0).
print(float(mathops.entropy(q)), float(mathops.cross_entropy(q, q)))

# %%
# 4.
z = torch.randn(2, 4, 5, requires_grad=True)
targets = torch.randint(0, 5, (2, 4))
m = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.float64)
nll = -mathops.log_softmax(z).gather(-1, targets[..., None])[..., 0]
((nll * m).sum() / m.sum()).backward()
print(z.grad[0, 3].abs().max().item(), z.grad[1, 2:].abs().max().item())

# %%
# 5. An overconfident wrong answer in the top bin.
conf2 = list(conf)
conf2[2] = 0.99
print(calibration_math.expected_calibration_error(conf2, correct, bins=5))

# %% tags=["checks"]
print(json.dumps(checks, default=lambda v: v.item()))  # numpy scalars -> Python
