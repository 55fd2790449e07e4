# %% [markdown]
# # Lesson 8 — Exercise: logits and perplexity
#
# **What you will see.** The seed exercise ("Logits and Perplexity in Causal Language Models"),
# tasks 1–10 and questions Q1–Q5, done with logitscope: the `[1, T, V]` logits tensor, the most
# likely next tokens, the loss of one token, a per-token surprise table, perplexity of three texts
# (and what "perplexity 2" means for a coin), and the quantization sweep — every parameter of the
# model rounded to 32 … 1 bits, perplexity measured at each width.
#
# The tasks are posed first; worked solutions follow each task in this version (the student
# version is the same notebook with the solution cells cleared). Runs in about 40 seconds.

# %%
%matplotlib inline
import json
import math

import pandas as pd
import torch

import logitscope as ls
from logitscope.workshop import load_preferred
from logitscope.core import mathops
from logitscope.evaluation.quantization import simulated_quantization
from logitscope.scoring.logits import text_ids

checks = {}
model, note = load_preferred()
print(note)
n_params = sum(p.numel() for p in {id(p): p for p in model.backend.model.parameters()}.values())
print(f"The tokenizer has {model.backend.vocab_size:,} tokens; the model has {n_params:,} parameters.")

# %% [markdown]
# ## Tasks 1–2: tokens in, logits out
#
# **1.** Tokenize the phrase. **2.** Get the logits and examine their shape: what does each number mean?

# %%
phrase = "This weekend I plan to"
tokens = model.tokenize(phrase)
print(tokens.ids)
print([t.text for t in tokens.tokens])
logits = model.logits(phrase, bos="auto")  # "auto": <bos> in front when the model was trained with one (Gemma)
print(f"logits shape: {list(logits.shape)}")
checks["logits_shape_ok"] = list(logits.shape) == [1, len(text_ids(model.backend, phrase, "auto")), model.backend.vocab_size]

# %% [markdown]
# **Q1.** The shape is `[batch, positions, vocabulary]`: 1 text in the batch, one row per input token
# (row t holds the model's scores for the token *after* token t), one logit per vocabulary entry.
#
# ## Tasks 3–5: the next token
#
# **3.** Take the logits of the last position. **4.** Find the most likely next token and its
# probability. **5.** List the top 10.

# %%
last_token_logits = logits[0, -1]  # (V,)
last_token_probabilities = mathops.softmax(last_token_logits.double())
most_likely_token_id = int(last_token_logits.argmax())
print(f"Most likely next token: {most_likely_token_id}, which corresponds to "
      f"{model.backend.token_text(most_likely_token_id)!r}, with probability "
      f"{float(last_token_probabilities[most_likely_token_id]):.2%}")
nxt = model.next_token(phrase, top_k=10)  # the library's view of the same row
checks["argmax_is_next_token_top"] = nxt.top[0].token_id == most_likely_token_id
checks["next_token_prob_matches"] = math.isclose(nxt.top[0].prob, float(last_token_probabilities[most_likely_token_id]), abs_tol=1e-5)
nxt.to_dataframe()[["text", "prob"]]

# %% [markdown]
# **Q2.** `logits[0, -3]` holds the scores after the *third-to-last* token ("weekend I" → what follows
# "I" here): a better name is `logits_after_token_minus_3`; its argmax is the model's guess for the
# token at position −2, which we can compare with the real one.

# %%
guess = int(logits[0, -3].argmax())
print(f"after {model.tokenize(phrase).tokens[-3].text!r}: the model guesses {model.backend.token_text(guess)!r}; "
      f"the text has {tokens.tokens[-2].text!r}")

# %% [markdown]
# ## Task 6: a function
#
# Write `predict_next_tokens(phrase, k)` returning a DataFrame of the top-k tokens and probabilities.

# %%
def predict_next_tokens(phrase, k):
    """Top-k next tokens of ``phrase`` with their probabilities."""
    return model.next_token(phrase, top_k=k).to_dataframe()[["text", "prob"]]


for p in ("This weekend I plan to", "To be or not to", "For God so loved the"):
    print(p, "->", ", ".join(f"{t!r} {pr:.3f}" for t, pr in predict_next_tokens(p, 5).itertuples(index=False)))

# %% [markdown]
# ## Task 7: the loss of one token
#
# How surprised is the model by the last token of a sentence? loss = −log P(token | context).

# %%
text = "Let's stop for lunch because I'm getting hungry"
scored = model.score(text, top_k=1)
last = scored.tokens[-1]
print("Actual last token:", repr(last.text))
print(f"Token with highest probability: {last.alternatives[0].text!r}, with probability {last.alternatives[0].prob:.4f}")
print(f"P(actual token | previous context): {last.prob:.4f}")
print(f"Token loss = -log(P): {-last.logprob:.4f}")
lp_by_hand = float(mathops.log_softmax(model.logits(text, bos="auto")[0, -2].double())[last.token_id])
checks["token_loss_matches_logits"] = math.isclose(-last.logprob, -lp_by_hand, abs_tol=1e-4)

# %% [markdown]
# A loss of 0 would mean P = 1: the model was certain of "hungry". A certain *wrong* prediction gives
# P → 0 and an unbounded loss.
#
# ## Task 8: surprise of every token

# %%
surprise = scored.to_dataframe()[["text", "prob", "logprob"]].assign(surprise=lambda d: -d["logprob"])
checks["surprise_rows"] = int(surprise["surprise"].notna().sum()) == scored.num_scored
surprise

# %% [markdown]
# **Q3.** The highest-surprise token is usually the first content word after a generic opening (the
# model cannot know what we stop *for*); predictable continuations ("getting" → "hungry") are cheap.

# %%
worst = max(scored.scored_tokens, key=lambda t: -t.logprob)
print(f"highest surprise: {worst.text!r} ({-worst.logprob:.2f} nats)")

# %% [markdown]
# ## Task 9: perplexity
#
# Perplexity = exp(mean token loss): the model's effective number of equally likely choices.

# %%
def compute_perplexity(text):
    return model.score(text).perplexity


texts = ["The cat sat on the mat.", "The cat computed the eigenvalue.", "Flurb zazzle moop tink wob."]
ppl = pd.DataFrame({"text": texts, "perplexity": [compute_perplexity(t) for t in texts]}).sort_values("perplexity")
bpb = {t: model.score(t).bits_per_byte for t in texts}
checks["gibberish_most_bits_per_byte"] = max(bpb, key=bpb.get) == texts[2]
ppl.assign(bits_per_byte=ppl["text"].map(bpb))

# %% [markdown]
# Per *token*, the gibberish need not be the worst: the tokenizer cuts it into many short pieces, and
# after "Fl" the piece "urb" is not that surprising. Per *byte* (bits per byte) the texts compare
# fairly, and the gibberish is clearly the hardest.
#
# **A coin and a die.** A fair coin has perplexity 2, a fair die 6: a model that spreads its
# probability evenly over n options has perplexity exactly n.

# %%
coin = mathops.perplexity(10 * -math.log(1 / 2), 10)
die = mathops.perplexity(10 * -math.log(1 / 6), 10)
print(f"coin: {coin:g}   die: {die:g}   this model on the cat sentence: {ppl['perplexity'].iloc[0]:.1f} 'options' per token")
checks["coin_die"] = [coin, die]

# %% [markdown]
# ## Task 10: break the model, measure the damage
#
# Sizes first: bytes = parameters × bits / 8.

# %%
sizes = pd.DataFrame({"bits per parameter": [32, 24, 16, 8, 4, 2, 1]})
sizes["model size (MB)"] = sizes["bits per parameter"] * n_params / 8 / 1e6
sizes.round(1)

# %% [markdown]
# Now round **every parameter** (weights, biases, norm scales, embeddings) to 2^b − 1 evenly spaced
# levels between its min and max, as the seed does, and measure perplexity at each width.
# `model.quantization_impact(text, which="all")` runs the whole sweep: it rounds the parameters in
# place, scores the text, restores them, and also compares every token's distribution with the
# float32 model's (KL divergence, same top token).

# %%
quant_test_text = "The cat sat on the mat."
widths = [32, 24, 16, 8, 4, 2, 1]
report = model.quantization_impact(quant_test_text, bits=widths, which="all", int8=False)
sweep = report.to_dataframe()[["bits", "perplexity", "kl_mean", "same_top"]]
base_ppl = compute_perplexity(quant_test_text)
print(f"float32: {base_ppl:.2f}   (inf: some token got probability 0; NaN: the forward pass itself overflowed)")
checks["ppl_32bit_matches"] = math.isclose(sweep["perplexity"].iloc[0], base_ppl, rel_tol=1e-3)
checks["ppl_1bit_much_worse"] = not sweep["perplexity"].iloc[-1] <= 10 * base_ppl  # NaN counts as broken too
checks["restored"] = math.isclose(base_ppl, ppl["perplexity"][ppl["text"] == quant_test_text].iloc[0], rel_tol=1e-9)
sweep

# %% [markdown]
# One width by hand, the seed's way: `simulated_quantization(..., which="all")` changes the weights in
# place inside the `with` block and restores them after it.

# %%
with simulated_quantization(model.backend.model, 4, which="all"):
    by_hand = compute_perplexity(quant_test_text)
print(f"4-bit by hand: {by_hand:.4g}; in the sweep: {sweep['perplexity'][widths.index(4)]:.4g}")
checks["hand_4bit_matches_sweep"] = math.isclose(by_hand, sweep["perplexity"][widths.index(4)], rel_tol=1e-4)

# %%
report.plot()  # perplexity and KL against bits, log scales (inf and NaN values are left out)

# %% [markdown]
# **Q4.** From 32 down to 8 bits the perplexity barely moves (a small change either way is noise); at
# 4 bits, with one min/max range per tensor, the model is already broken, and 2 and 1 bits give
# astronomically large perplexities (or NaN, when the rounded model's numbers overflow: Gemma 3 270M
# at 1 bit). One range per tensor is crude: a few outliers stretch the grid,
# so most weights land on one or two levels. Practical formats use a range per row or per small block
# (try `model.quantization_impact(text, scheme="per-channel")`, which also reports the KL divergence).
#
# **Q5.** For "Michigan" in "I visited Muskegon, Michigan": −log P(" Michigan" | "I visited Muskegon,")
# = −(logits[0, t−1, id] − logsumexp(logits[0, t−1, :])), where t is the position of " Michigan"
# (if the word is several tokens, sum over them). You need the logits row *before* the token and the
# token's id.

# %%
q5 = model.score(" Michigan", context="I visited Muskegon,")
print(f"-log P = {-q5.total_logprob:.3f} nats over {q5.num_scored} token(s)")
t = len(text_ids(model.backend, "I visited Muskegon,", "auto"))  # <bos> included when the model uses one
row = model.logits("I visited Muskegon, Michigan", bos="auto")[0, t - 1].double()
first = q5.scored_tokens[0]
by_formula = -(row[first.token_id] - torch.logsumexp(row, 0))
print(f"by the formula, first token: {float(by_formula):.3f}  (library: {-first.logprob:.3f})")
checks["q5_formula_matches"] = math.isclose(float(by_formula), -first.logprob, abs_tol=1e-3)

# %% [markdown]
# ## Exercises
#
# 1. Try the seed's famous GPT-2 prompt "In a shocking finding, scientists discovered a herd of
#    unicorns living in" with `predict_next_tokens`. How peaked is the distribution?
# 2. Repeat the 4-bit step rounding only the weight matrices (`which="matrices"`), then with one
#    range per output row (`scheme="per-channel"`). What made 4 bits hurt?
# 3. Which of the three texts has the highest bits per byte (`model.score(t).bits_per_byte`)? Is the
#    order the same as for perplexity?

# %% [markdown] collapsed
# ## Solutions (collapsed: click the heading to open)

# %%
# 1.
predict_next_tokens("In a shocking finding, scientists discovered a herd of unicorns living in", 5)

# %%
# 2. Matrices only is about as bad: the damage is the coarse per-tensor grid on the matrices.
#    A range per output row is far less damaging (on the bundled model: ~1.7e3 instead of ~1.7e9),
#    though 4 bits still hurt a model this small.
with simulated_quantization(model.backend.model, 4, which="matrices"):
    print("4-bit, matrices only, per tensor: ", f"{compute_perplexity(quant_test_text):.4g}")
with simulated_quantization(model.backend.model, 4, "per-channel", which="matrices"):
    print("4-bit, matrices only, per channel:", f"{compute_perplexity(quant_test_text):.4g}")

# %%
# 3.
print({t: round(model.score(t).bits_per_byte, 3) for t in texts})

# %% tags=["checks"]
print(json.dumps(checks, default=lambda v: v.item()))  # numpy scalars -> Python
