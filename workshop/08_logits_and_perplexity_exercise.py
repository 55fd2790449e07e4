# %% [markdown]
# # Lesson 8 — Exercise: logits and perplexity
#
# **What you will see.** The seed exercise ("Logits and Perplexity in Causal Language Models"),
# tasks 1–10 and questions Q1–Q5, done with logitscope: the `[1, T, V]` logits tensor, the most
# likely next tokens, the loss of one token, a per-token surprise table, perplexity of three texts
# (and what "perplexity 2" means for a coin), and the quantization sweep — every parameter of the
# model rounded to 32 … 1 bits, perplexity measured at each width.
#
# The tasks are posed first; worked solutions follow each task in this edition; the student edition
# (`logitscope workshop DIR --student`) has `...` where the solutions are, and the checks under
# them say "not done yet", or what is wrong. Runs in about 30 seconds of one CPU core with one
# torch thread (most of it the quantization sweep).

# %%
%matplotlib inline
import json
import math

import pandas as pd
import torch

import logitscope as ls
from logitscope import workshop
from logitscope.core import mathops
from logitscope.evaluation.quantization import quantize_tensor, simulated_quantization
from logitscope.scoring.logits import text_ids
from logitscope.workshop import (all_of, check, claim, close_to, equal, lazy, load_preferred, only_globals, satisfies,
                                 say, tasks)

lesson = workshop.begin("08_logits_and_perplexity_exercise", edition="solutions")
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

# %% tags=["solution"]
def predict_next_tokens(phrase, k):
    """Top-k next tokens of ``phrase`` with their probabilities."""
    # BEGIN SOLUTION
    last = model.logits(phrase, bos="auto")[0, -1].double()  # the row after the last token, (V,)
    probs = mathops.softmax(last)
    top = probs.topk(k)
    return pd.DataFrame({"text": [model.backend.token_text(int(i)) for i in top.indices],
                         "prob": top.values.tolist()})
    # END SOLUTION


# %%
def same_top_tokens(fn):
    """The seed's check_global_vars, then the function's table against the library's next_token."""
    for p in ("This weekend I plan to", "To be or not to", "For God so loved the"):
        got, ref = fn(p, 5), model.next_token(p, top_k=5)
        if list(got["text"]) != [c.text for c in ref.top]:
            return f"after {p!r} your top 5 is {list(got['text'])}, the library's {[c.text for c in ref.top]}"
        if any(abs(a - c.prob) > 1e-4 for a, c in zip(got["prob"], ref.top)):
            return f"after {p!r} your probabilities differ from the library's"
    return None


check("task 6: predict_next_tokens", predict_next_tokens,
      all_of(only_globals(["model", "pd", "torch", "mathops", "math"]), same_top_tokens))
for p in ("This weekend I plan to", "To be or not to", "For God so loved the"):
    print(p, "->", ", ".join(f"{c.text!r} {c.prob:.3f}" for c in model.next_token(p, top_k=5).top))

# %% [markdown]
# ## Task 7: the loss of one token
#
# How surprised is the model by the last token of a sentence? loss = −log P(token | context), in
# nats. From the logits: the row *before* the last token (`logits[0, -2]`) scores it. Put the loss in
# `last_token_loss`.

# %% tags=["solution"]
text = "Let's stop for lunch because I'm getting hungry"
text_logits = model.logits(text, bos="auto")  # (1, T, V)
last_id = text_ids(model.backend, text, "auto")[-1]
last_token_loss = -float(mathops.log_softmax(text_logits[0, -2].double())[last_id])  # SOLUTION

# %%
scored = model.score(text, top_k=1)
last = scored.tokens[-1]
check("task 7: the loss of the last token", last_token_loss, close_to(-last.logprob, 1e-4, "your loss"))
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
# **Q3.** Which token has the highest surprise, which the lowest, and why?

# %%
worst = max(scored.scored_tokens, key=lambda t: -t.logprob)
least = min(scored.scored_tokens, key=lambda t: -t.logprob)
say(f"On this model the highest surprise is {worst.text!r} ({-worst.logprob:.2f} nats, p = {worst.prob:.4f}) "
    f"and the lowest {least.text!r} ({-least.logprob:.2f} nats, p = {least.prob:.4f}). "
    f"The last token {last.text!r} costs {-last.logprob:.2f} nats: "
    + ("cheap: the model saw it coming." if last.prob > 0.3 else
       "not cheap: the model did not see it coming, although a reader does."))

# %% [markdown] tags=["solution"]
# Surprise is high where the text could have gone many ways (what do we stop *for*? why?) and low
# where the words before leave one natural continuation (a fixed phrase, the second half of a word).

# %% [markdown]
# ## Task 9: perplexity
#
# Perplexity = exp(mean token loss): the model's effective number of equally likely choices.

# %% [markdown]
# Write `compute_perplexity(text)` from the logits: the log-prob of every token given the tokens
# before it (row t − 1 scores token t; the first text token is scored only when a BOS is in front), then
# exp of the mean negative log-prob. Use only `model`, `torch`, `math`, `mathops` and `text_ids`.

# %% tags=["solution"]
def compute_perplexity(text):
    # BEGIN SOLUTION
    ids = text_ids(model.backend, text, "auto")  # what the model sees, BOS included when it has one
    logp = mathops.log_softmax(model.logits(text, bos="auto")[0].double())  # (T, V)
    token_logprobs = [float(logp[t - 1, ids[t]]) for t in range(1, len(ids))]  # row t - 1 scores token t
    return math.exp(-sum(token_logprobs) / len(token_logprobs))
    # END SOLUTION


# %%
texts = ["The cat sat on the mat.", "The cat computed the eigenvalue.", "Flurb zazzle moop tink wob."]
check("task 9: compute_perplexity", compute_perplexity,
      all_of(only_globals(["model", "torch", "math", "mathops", "text_ids"]),
             satisfies(lambda f: all(math.isclose(f(t), model.score(t).perplexity, rel_tol=1e-4) for t in texts),
                       lambda f: "your perplexities " + str([round(f(t), 3) for t in texts]) + " differ from model.score's "
                                 + str([round(model.score(t).perplexity, 3) for t in texts]))))
ppl = pd.DataFrame({"text": texts, "perplexity": [model.score(t).perplexity for t in texts]}).sort_values("perplexity")
bpb = {t: model.score(t).bits_per_byte for t in texts}
checks["gibberish_most_bits_per_byte"] = max(bpb, key=bpb.get) == texts[2]
claim("per byte the gibberish is the hardest", checks["gibberish_most_bits_per_byte"])
ppl.assign(bits_per_byte=ppl["text"].map(bpb)).round(3)

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
print(f"coin: {coin:g}   die: {die:g}   this model on the cat sentence: {model.score(texts[0]).perplexity:.1f} 'options' per token")
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
# Now round **every parameter** (weights, biases, norm scales, embeddings) to 2^b evenly spaced
# values between its min and max (2^b − 1 equal steps), as the seed does, and measure perplexity at
# each width.

# %%
three_bit = quantize_tensor(torch.linspace(-1, 1, 1000), 3)
print(f"3 bits: {three_bit.unique().numel()} distinct values: {[round(v, 3) for v in three_bit.unique().tolist()]}")
claim("b bits give 2^b values", three_bit.unique().numel(), equal(2 ** 3))
# `model.quantization_impact(text, which="all")` runs the whole sweep: it rounds the parameters in
# place, scores the text, restores them, and also compares every token's distribution with the
# float32 model's (KL divergence, same top token).

# %%
quant_test_text = "The cat sat on the mat."
widths = [32, 24, 16, 8, 4, 2, 1]
report = model.quantization_impact(quant_test_text, bits=widths, which="all", int8=False)
sweep = report.to_dataframe()[["bits", "perplexity", "kl_mean", "same_top"]]
base_ppl = model.score(quant_test_text).perplexity
print(f"float32: {base_ppl:.2f}   (inf: some token got probability 0; NaN: the forward pass itself overflowed)")
checks["ppl_32bit_matches"] = math.isclose(sweep["perplexity"].iloc[0], base_ppl, rel_tol=1e-3)
checks["ppl_1bit_much_worse"] = not sweep["perplexity"].iloc[-1] <= 10 * base_ppl  # NaN counts as broken too
checks["restored"] = math.isclose(base_ppl, ppl["perplexity"][ppl["text"] == quant_test_text].iloc[0], rel_tol=1e-9)
claim("from 32 down to 16 bits the perplexity barely moves (within 1 %)",
      sweep["perplexity"].iloc[:3].tolist(), satisfies(lambda v: max(v) <= 1.01 * min(v), lambda v: f"the perplexities are {v}"))
claim("at 4 bits the model is already broken (perplexity at least 10 times the float model's)",
      sweep["perplexity"][widths.index(4)], satisfies(lambda v: not v < 10 * base_ppl, lambda v: f"it is {v:.4g}"))
sweep

# %% [markdown]
# One width by hand, the seed's way: `simulated_quantization(..., which="all")` changes the weights in
# place inside the `with` block and restores them after it.

# %%
with simulated_quantization(model.backend.model, 4, which="all"):
    by_hand = model.score(quant_test_text).perplexity
print(f"4-bit by hand: {by_hand:.4g}; in the sweep: {sweep['perplexity'][widths.index(4)]:.4g}")
checks["hand_4bit_matches_sweep"] = math.isclose(by_hand, sweep["perplexity"][widths.index(4)], rel_tol=1e-4)

# %%
report.plot()  # perplexity and KL against bits, log scales (inf and NaN values are left out)

# %% [markdown]
# **Q4.** From 32 down to 16 bits the perplexity barely moves (at 8 bits it moves a little, either
# way, depending on the model); at 4 bits, with one min/max range per tensor, the model is already
# broken, and 2 and 1 bits give
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
# ### Exercise 8.1 — sliding windows
# A text longer than the model's context is scored in overlapping windows. Write
# `sliding_windows(n_tokens, window, stride)` returning `(begin, end, first_target)` triples: the
# model sees ids[begin:end] and scores targets first_target..end − 1. The first window starts at 0
# and scores from target 1; each next window starts `stride` ids after the previous start (but at
# least one id before the previous end, so its first target keeps one token of context) and scores
# only the targets the previous windows did not. Every target 1..n_tokens − 1 is scored exactly once.

# %% tags=["solution"]
def sliding_windows(n_tokens, window, stride):
    # BEGIN SOLUTION
    begin, end = 0, min(window, n_tokens)
    out = [(0, end, 1)]
    while end < n_tokens:
        begin = min(begin + stride, end - 1)
        new_end = min(begin + window, n_tokens)
        out.append((begin, new_end, end))
        end = new_end
    return out
    # END SOLUTION

# %%
check("8.1 sliding windows", sliding_windows, tasks.windows)

# %% [markdown]
# ### Exercise 8.2
# Try the seed's famous GPT-2 prompt "In a shocking finding, scientists discovered a herd of
# unicorns living in" with `predict_next_tokens`. How much probability do the top 5 hold together
# (`top5_mass`)?

# %% tags=["solution"]
unicorns = "In a shocking finding, scientists discovered a herd of unicorns living in"
top5_mass = float(predict_next_tokens(unicorns, 5)["prob"].sum())  # SOLUTION

# %%
top5 = model.next_token(unicorns, top_k=5).top
if check("8.2 the top-5 mass after the unicorn prompt", top5_mass, close_to(sum(c.prob for c in top5), 1e-4)):
    print(f"the top 5 hold {top5_mass:.3f}:", ", ".join(f"{c.text!r} {c.prob:.3f}" for c in top5))

# %% [markdown]
# ### Exercise 8.3
# Repeat the 4-bit step rounding only the weight matrices (`which="matrices"`), then with one range
# per output row (`scheme="per-channel"`). Put the two perplexities in `ppl_matrices` and
# `ppl_per_channel`. What made 4 bits hurt?

# %% tags=["solution"]
def perplexity_at_4_bits(scheme):
    # BEGIN SOLUTION
    with simulated_quantization(model.backend.model, 4, scheme, which="matrices"):
        return compute_perplexity(quant_test_text)
    # END SOLUTION


ppl_matrices = perplexity_at_4_bits("per-tensor")  # SOLUTION
ppl_per_channel = perplexity_at_4_bits("per-channel")  # SOLUTION

# %%
def per_channel_reference():
    with simulated_quantization(model.backend.model, 4, "per-channel", which="matrices"):
        reference = model.score(quant_test_text).perplexity
    return satisfies(lambda v: math.isclose(v[1], reference, rel_tol=1e-3),
                     lambda v: f"per channel the perplexity is {reference:.4g}, you have {v[1]:.4g}")


if check("8.3 per-channel 4-bit perplexity", (ppl_matrices, ppl_per_channel), lazy(per_channel_reference)):
    print(f"4 bits, the matrices only: per tensor {ppl_matrices:.4g}, per channel {ppl_per_channel:.4g} "
          f"(float32: {base_ppl:.4g})")
    claim("a range per output row hurts far less than one per tensor", (ppl_matrices, ppl_per_channel),
          satisfies(lambda v: not v[0] < 10 * v[1], lambda v: f"per tensor {v[0]:.4g}, per channel {v[1]:.4g}"))

# %% [markdown] tags=["solution"]
# Rounding the matrices alone is about as bad: the damage is the coarse per-tensor grid, where a few
# outlier weights stretch the range so most weights land on one or two levels. A range per output
# row is far less damaging, though 4 bits still hurt a model this small.

# %% [markdown]
# ### Exercise 8.4
# Which of the three texts has the highest bits per byte (`hardest_text`)? Is the order the same as
# for perplexity?

# %% tags=["solution"]
hardest_text = max(texts, key=lambda t: model.score(t).bits_per_byte)  # SOLUTION

# %%
check("8.4 the text with the most bits per byte", hardest_text, equal(max(bpb, key=bpb.get)))

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
