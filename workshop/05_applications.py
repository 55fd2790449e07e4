# %% [markdown]
# # Lesson 5 — Applications of token probabilities
#
# **What you will see.** What token probabilities are *for*:
#
# 1. perplexity of different kinds of text (and why the corpus perplexity is not the mean of
#    per-text perplexities);
# 2. a confidence heatmap that colours each token by its probability;
# 3. uncertainty flags: spans where the model was unsure;
# 4. true versus false statements: does the model prefer the true one?
# 5. ranking candidate completions;
# 6. answers with and without retrieved context (how much a passage lifts the answer);
# 7. calibration on multiple-choice questions, with the reliability diagram.
#
# Confidence is not correctness: every section shows where the signal helps and where it misleads.
# Runs in about 30 seconds of one CPU core with one torch thread (most of it the three calibrations).

# %%
%matplotlib inline
import json
import math
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd
from IPython.display import HTML, display

import logitscope as ls
from logitscope import workshop
from logitscope.workshop import check, claim, equal, lazy, load_preferred, satisfies

lesson = workshop.begin("05_applications", edition="solutions")
checks = {}
model, note = load_preferred()
print(note)
work = Path(tempfile.mkdtemp(prefix="logitscope-lesson5-"))

# %% [markdown]
# ## 1. Perplexity across kinds of text

# %%
texts = {
    "everyday": "The cat sat on the mat and looked out of the window.",
    "technical": "The eigenvalues of a symmetric matrix are real and its eigenvectors are orthogonal.",
    "scrambled": "window the of out looked and mat the on sat cat The.",
    "gibberish": "Flurb zazzle moop tink wob grashel vint.",
}
scores = {k: model.score(t) for k, t in texts.items()}
table = pd.DataFrame([{"kind": k, "tokens": s.num_scored, "perplexity": s.perplexity, "bits/byte": s.bits_per_byte}
                      for k, s in scores.items()]).sort_values("perplexity")
corpus = model.perplexity(texts=list(texts.values()))
documents = corpus.sources[0].documents
token_weighted = math.exp(sum(d.counts.nll for d in documents) / sum(d.counts.num_scored for d in documents))
print(f"corpus perplexity (token-weighted): {corpus.total.perplexity:.2f}; "
      f"mean of the {len(documents)} per-text perplexities: {corpus.mean_document_perplexity:.2f}")
checks["corpus_is_token_weighted"] = math.isclose(corpus.total.perplexity, token_weighted, rel_tol=1e-9)
checks["mean_is_not_corpus"] = not math.isclose(corpus.total.perplexity, corpus.mean_document_perplexity, rel_tol=1e-3)
checks["gibberish_worst"] = table["kind"].iloc[-1] == "gibberish"
checks["scrambled_worse_than_everyday"] = scores["scrambled"].perplexity > scores["everyday"].perplexity
claim("the corpus perplexity is not the mean of the per-text perplexities", checks["mean_is_not_corpus"])
table.round(3)

# %% [markdown]
# ## 2. A confidence heatmap
#
# Each token coloured by the probability the model gave it (hover a token for its alternatives).

# %%
heat = model.heatmap_html("The Eiffel Tower is located in Berlin and was built in 1889.", work / "heatmap.html")
display(HTML(Path(heat).read_text(encoding="utf-8")))

# %% [markdown]
# ## 3. Uncertainty flags
#
# Tokens with p < 0.1 or entropy above 4 nats, merged into word spans: places to double-check.

# %%
flags = model.uncertain("Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.")
for span in flags.spans:
    print(f"{span.text!r:18} min p = {span.min_prob:.3f}, max entropy = {span.max_entropy:.2f} nats")
checks["flags_inside_text"] = all(flags.scored.text[s.start:s.end] == s.text for s in flags.spans)
flags.plot()  # flagged tokens in red, with the two thresholds

# %% [markdown]
# ## 4. True versus false statements
#
# Twenty pairs from the bundled set: the model "prefers" the statement with the higher score.
# *Pair accuracy* is the share of pairs where the true statement scores higher. **AUROC** (area under
# the ROC curve) pools all 40 statements: it is the probability that a randomly chosen true
# statement scores higher than a randomly chosen false one (ties count half); 0.5 is chance, 1 is a
# perfect separation.

# %%
pairs_file = work / "pairs.jsonl"
lines = resources.files("logitscope").joinpath("data/truth_pairs.jsonl").read_text(encoding="utf-8").splitlines()
pairs_file.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
truth = model.truth(pairs_file)
truth_table = pd.DataFrame([{"measure": r.measure, "pair accuracy": r.pair_accuracy, "AUROC": r.auroc} for r in truth.reports])
checks["truth_pairs"] = truth.num_pairs == 20
truth_table.round(3)

# %% [markdown]
# ## 5. Ranking completions

# %%
ranked = model.rank("The capital of France is", [" Paris", " Lyon", " London", " a beautiful city"])
rank_table = pd.DataFrame([{"candidate": c.candidate, "log p": c.result.total_logprob, "tokens": c.result.num_scored,
                            "per token": c.result.mean_logprob} for c in ranked.candidates])
checks["paris_first"] = rank_table.sort_values("log p", ascending=False)["candidate"].iloc[0] == " Paris"
display(rank_table)
ranked.plot()

# %% [markdown]
# Longer candidates pay for every token: compare the total with the per-token column.
#
# ## 6. With and without retrieved context
#
# The lift of a context is log p(answer | context, question) − log p(answer | question): how much the
# passage made the answer more likely (pointwise mutual information, in nats).

# %%
lift = model.context_lift("Q: Who wrote the novel Dune?\nA:", " Frank Herbert",
                          ["Dune is a 1965 science-fiction novel by the American author Frank Herbert.",
                           "The Eiffel Tower is in Paris."])
print(f"without context: log p = {lift.total_without:.3f}")
for c in lift.contexts:
    print(f"lift {c.lift:+.3f} nats  supported={c.supported}  {c.context[:50]!r}")
checks["relevant_context_lifts_more"] = lift.contexts[0].lift > lift.contexts[1].lift

# %% [markdown]
# ## 7. Calibration
#
# Thirty multiple-choice questions: the model's probability for its chosen answer (its *confidence*)
# against how often it is right. A calibrated model's bars follow the diagonal. ECE (expected
# calibration error) is Σ_b (n_b / N) · |accuracy_b − confidence_b| over confidence bins; Brier is
# the mean squared error of the probabilities; NLL the mean −log p of the right answer, in nats.
#
# **The calibration temperature T.** A miscalibrated model can often be repaired with one number:
# divide every choice's score by T before the softmax over the choices (T > 1 flattens
# overconfident probabilities, T < 1 sharpens underconfident ones; the model's answers do not
# change, only how sure it says it is). `calibrate` fits T on a random half of the questions (the T
# with the lowest NLL there) and reports the other half, the *held-out* questions, before and after:
# a T judged on the questions it was fitted to would look better than it is. The diagram's orange
# line is the held-out half after scaling by T.

# %%
mcq_file = work / "mcq.jsonl"
lines = resources.files("logitscope").joinpath("data/mcq.jsonl").read_text(encoding="utf-8").splitlines()
mcq_file.write_text("\n".join(lines[:30]) + "\n", encoding="utf-8")
report = model.calibrate(mcq_file, bins=5)
m, scaled = report.metrics, report.temperature
print(f"accuracy {m.accuracy:.2f}, ECE {m.ece:.3f}, Brier {m.brier:.3f}, NLL {m.nll:.3f} nats")
print(f"T = {scaled.temperature:.2f}, fitted on {scaled.fit_size} questions; on the {scaled.before.n} held-out ones "
      f"ECE {scaled.before.ece:.3f} → {scaled.after.ece:.3f}, NLL {scaled.before.nll:.3f} → {scaled.after.nll:.3f} nats")
checks["calibration_n"] = m.n == 30
claim("T is fitted on a random half of the questions and judged on the other half",
      (scaled.fit_size, scaled.before.n), equal((15, 15)))
report.plot()  # the reliability diagram (bars: accuracy, dots: mean confidence) over the count per bin

# %% [markdown]
# ## Exercises
#
# ### Exercise 5.1
# Find a sentence with a factual error whose *wrong word* the uncertainty flags do not cover. Give the
# sentence (`fluent_error`) and the wrong word (`wrong_word`). What does that say about confidence
# versus correctness?

# %% tags=["solution"]
fluent_error = "The capital of Australia is Sydney."  # SOLUTION
wrong_word = "Sydney"  # SOLUTION

# %%
if check("5.1 a wrong word that is not flagged", (fluent_error, wrong_word),
         satisfies(lambda a: a[1] in a[0] and not any(a[1] in s.text for s in model.uncertain(a[0]).spans),
                   lambda a: f"the flagged spans of {a[0]!r} are {[s.text for s in model.uncertain(a[0]).spans]}")):
    print(f"flagged in {fluent_error!r}:", [s.text for s in model.uncertain(fluent_error).spans])

# %% [markdown] tags=["solution"]
# A fluent falsehood: the model scores the *form* of the text, how usual its words are together, not
# the fact. Low uncertainty is not evidence of truth.

# %% [markdown]
# ### Exercise 5.2
# Rank " Paris" against " Paris, the city of light" after "The capital of France is", with the total
# and with the per-token score. Which candidate wins under each (`winner_total`, `winner_mean`)?

# %% tags=["solution"]
r = model.rank("The capital of France is", [" Paris", " Paris, the city of light"])
print([(c.candidate, round(c.result.total_logprob, 2), round(c.result.mean_logprob, 2)) for c in r.candidates])
winner_total = max(r.candidates, key=lambda c: c.result.total_logprob).candidate  # SOLUTION
winner_mean = max(r.candidates, key=lambda c: c.result.mean_logprob).candidate  # SOLUTION

# %%
def winners():
    ranked = model.rank("The capital of France is", [" Paris", " Paris, the city of light"]).candidates
    return equal((max(ranked, key=lambda c: c.result.total_logprob).candidate,
                  max(ranked, key=lambda c: c.result.mean_logprob).candidate))


if check("5.2 winners by total and per token", (winner_total, winner_mean), lazy(winners)):
    claim("the total punishes the longer candidate", winner_total, equal(" Paris"))

# %% [markdown] tags=["solution"]
# The total punishes the longer candidate (every extra token costs log-probability); the mean per
# token need not. For a multiple-choice test, state the convention: the total compares the
# probability of the whole answers, the mean compares how natural each answer's tokens are.

# %% [markdown]
# ### Exercise 5.3
# Calibrate with `normalize="mean"` instead of the default sum. What is the accuracy now
# (`accuracy_mean`)? Does it change?

# %% tags=["solution"]
accuracy_mean = model.calibrate(mcq_file, normalize="mean", bins=5).metrics.accuracy  # SOLUTION

# %%
if check("5.3 accuracy with mean normalisation", accuracy_mean,
         lazy(lambda: equal(model.calibrate(mcq_file, normalize="mean", bins=5).metrics.accuracy))):
    print(f"accuracy: {accuracy_mean:.2f} with the mean per token, {m.accuracy:.2f} with the sum")

# %% tags=["checks"]
workshop.values(checks)  # the key numbers, for the test suite to compare with the seeds

# %%
workshop.summary()
