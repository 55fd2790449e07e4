# %% [markdown]
# # Lesson 2 — Tokens and next-token prediction
#
# **What you will see.** The whole pipeline of a causal language model: text → tokens → a forward pass
# → the logits tensor `[1, T, V]` → probabilities. You will see that the model predicts the next token
# at *every* position at once (row t predicts token t+1), check that the library's per-token scores are
# exactly those rows, and compare how confident the model is on a factual prompt versus an open one.
#
# Runs in about 5 seconds of one CPU core with one torch thread.

# %%
%matplotlib inline
import json
import math

import pandas as pd
from IPython.display import display

import logitscope as ls
from logitscope import workshop
from logitscope.core import mathops
from logitscope.scoring.logits import text_ids
from logitscope.workshop import check, claim, equal, load_preferred, satisfies

lesson = workshop.begin("02_tokens_and_prediction", edition="solutions")
checks = {}
model, note = load_preferred()
print(note)

# %% [markdown]
# ## 1. Tokenization
#
# A BPE tokenizer cuts text into pieces from a fixed vocabulary: common words are one token (usually
# *with* their leading space), rare words several.

# %%
for text in ["Hello world", "Hello  world", " unbelievably", "Muskegon, Michigan", "12345678"]:
    tok = model.tokenize(text)
    print(f"{text!r:22} -> {[t.text for t in tok.tokens]}")
tokens = model.tokenize("The capital of France is")
checks["roundtrip"] = model.backend.detokenize(tokens.ids) == "The capital of France is"
tokens.to_dataframe()

# %% [markdown]
# ## 2. The logits tensor
#
# `model.logits(text)` runs one forward pass and returns every position's scores:
# shape `[batch = 1, T tokens, V vocabulary entries]`. `bos="auto"` puts the tokenizer's
# beginning-of-sequence token in front when the model was trained with one: Gemma was (`<bos>`),
# GPT-2 and SmolLM2 were not. Without it Gemma's first predictions are poor.

# %%
text = "The capital of France is Paris"
logits = model.logits(text, bos="auto")
ids = text_ids(model.backend, text, "auto")  # the ids the model saw, <bos> included when there is one
print("shape:", list(logits.shape), f"= [1 text, {len(ids)} tokens, {model.backend.vocab_size:,} vocabulary entries]")
checks["logits_shape"] = list(logits.shape) == [1, len(ids), model.backend.vocab_size]

# %% [markdown]
# Row t holds the model's guess for token t+1, having seen tokens 0..t (and nothing after: the
# attention is causal). Read every row:

# %%
logp = mathops.log_softmax(logits[0].double())  # (T, V)
rows = []
for t in range(len(ids)):
    best = int(logp[t].argmax())
    actual = ids[t + 1] if t + 1 < len(ids) else None
    rows.append({"seen so far": model.backend.detokenize(ids[: t + 1]),
                 "model's top guess": model.backend.token_text(best), "p(top)": math.exp(logp[t, best]),
                 "actual next": None if actual is None else model.backend.token_text(actual),
                 "p(actual)": None if actual is None else math.exp(logp[t, actual])})
pd.DataFrame(rows).round(4)

# %% [markdown]
# `model.score(text)` gives the same "p(actual)" column without materialising the whole tensor
# (it projects only the rows it needs):

# %%
scored = model.score(text, bos="auto")
same = all(math.isclose(tk.logprob, float(logp[tk.position - 1, tk.token_id]), abs_tol=1e-4) for tk in scored.scored_tokens)
print("score() equals the logits rows:", same)
checks["score_matches_rows"] = same and list(scored.input_ids) == ids  # the same ids, <bos> and all
checks["next_token_matches_last_row"] = model.next_token(text, top_k=1, bos="auto").top[0].token_id == int(logp[-1].argmax())

# %% [markdown]
# ## 3. Factual versus open-ended prompts
#
# A factual prompt has one right continuation; an open one many. The entropy H = −Σ p log₂ p, in
# bits here (1 bit = ln 2 ≈ 0.693 nats), measures the spread: a fair coin has 1 bit, a uniform choice
# among 8 tokens 3 bits.

# %%
prompts = {"factual": "The first president of the United States was George", "open": "My favourite food is"}
results = {k: model.next_token(p, top_k=8) for k, p in prompts.items()}
for kind, r in results.items():
    print(f"{kind}: entropy {r.entropy_bits:.2f} bits")
    display(r.plot())  # each result draws its own bar chart
checks["factual_less_uncertain"] = results["factual"].entropy < results["open"].entropy
claim("the factual prompt is less uncertain", checks["factual_less_uncertain"])

# %% [markdown]
# ## Exercises
#
# ### Exercise 2.1
# Which of these is a single token: " Paris", "Paris", " paris", " Muskegon"? Predict first, then
# check with `model.tokenize`; put the single-token ones in the set `single_tokens`.

# %% tags=["solution"]
print({w: len(model.tokenize(w).ids) for w in [" Paris", "Paris", " paris", " Muskegon"]})
single_tokens = {w for w in [" Paris", "Paris", " paris", " Muskegon"] if len(model.tokenize(w).ids) == 1}  # SOLUTION

# %%
check("2.1 single tokens", single_tokens,
      equal({w for w in [" Paris", "Paris", " paris", " Muskegon"] if len(model.tokenize(w).ids) == 1}))

# %% [markdown]
# ### Exercise 2.2
# How many rows (`n_rows`) does the logits tensor of "To be or not to be" have (no BOS:
# `model.logits(text)`)? Which row (`row_of_last_be`, counting from 0) predicts the last " be"?

# %% tags=["solution"]
be_ids = model.tokenize("To be or not to be").ids
lg = model.logits("To be or not to be")
n_rows = lg.shape[1]  # SOLUTION
row_of_last_be = len(be_ids) - 2  # SOLUTION

# %%
n_be = len(model.tokenize("To be or not to be").ids)
if check("2.2 rows and the row that predicts the last token", (n_rows, row_of_last_be), equal((n_be, n_be - 2))):
    guess = model.backend.token_text(int(model.logits("To be or not to be")[0, row_of_last_be].argmax()))
    print(f"{n_rows} rows; row {row_of_last_be} predicts the last token, its top guess: {guess!r}")

# %% [markdown] tags=["solution"]
# One row per token; row t predicts token t + 1, so the row *before* the last token predicts it.

# %% [markdown]
# ### Exercise 2.3
# In the table of section 2, at which position (`most_wrong`, the row's index) did the model give
# the actual next token its lowest probability?

# %% tags=["solution"]
most_wrong = min((i for i, r in enumerate(rows) if r["p(actual)"] is not None), key=lambda i: rows[i]["p(actual)"])  # SOLUTION

# %%
if check("2.3 the most surprising position", most_wrong,
         satisfies(lambda i: rows[i]["p(actual)"] == min(r["p(actual)"] for r in rows if r["p(actual)"] is not None),
                   lambda i: f"row {i} gives the actual token p = {rows[i]['p(actual)']:.4f}; another row gives it less")):
    print(rows[most_wrong])

# %% [markdown] tags=["solution"]
# Usually the first content word: after "The", nothing tells the model the sentence is about a
# capital, while "of" after "The capital" or "Paris" after "France is" follow from what came before.

# %% [markdown]
# ### Exercise 2.4
# Find a prompt (`low_prompt`) whose next-token entropy is below 1 bit.

# %% tags=["solution"]
low_prompt = "Monday, Tuesday, Wednesday, Thursday,"  # SOLUTION

# %%
if check("2.4 a prompt below 1 bit", low_prompt,
         satisfies(lambda p: model.next_token(p, top_k=1).entropy_bits < 1.0,
                   lambda p: f"the next-token entropy after {p!r} is {model.next_token(p, top_k=1).entropy_bits:.3f} bits, "
                             "not below 1: try a list whose next item is obvious")):
    print(f"after {low_prompt!r}: {model.next_token(low_prompt, top_k=1).entropy_bits:.3f} bits")

# %% [markdown] tags=["solution"]
# A list whose next item is obvious leaves the model little choice (" Friday"). A famous quotation
# is not always enough: compare the entropy after "To be or not to" on your model.

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
