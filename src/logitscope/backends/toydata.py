"""The two toy language models of the theory notebook (seed 001), ready to use.

    >>> from logitscope.backends.toydata import seed_table_model
    >>> m = seed_table_model()          # P(the | <BOS>) = 0.90, P(cat | the) = 0.75, ...
"""

from __future__ import annotations

from .toy import EOS, ToyBackend

SEED_TABLE = {
    ("<BOS>",): {"the": 0.90, "cat": 0.05, "slept": 0.05},
    ("<BOS>", "the"): {"cat": 0.75, "sat": 0.10, "slept": 0.10, "<EOS>": 0.05},
    ("<BOS>", "the", "cat"): {"sat": 0.55, "slept": 0.35, "<EOS>": 0.10},
    ("<BOS>", "the", "cat", "sat"): {"<EOS>": 0.80, "slept": 0.20},
}

SEED_CORPUS = ["the cat sat", "the cat slept", "the cat sat", "the dog sat"]

DEMO_CORPUS = SEED_CORPUS + [
    "to be or not to be", "the dog slept", "the cat sat on the mat", "the dog sat on the mat",
    "not to be", "the mat sat",
]


def seed_table_model() -> ToyBackend:
    """The dictionary model: unknown prefixes predict <EOS> with certainty."""
    return ToyBackend.from_table(SEED_TABLE, default={EOS: 1.0})


def seed_bigram_model(alpha: float = 0.5) -> ToyBackend:
    """The add-α smoothed bigram model trained on the notebook's four sentences."""
    return ToyBackend.from_ngrams(SEED_CORPUS, order=2, alpha=alpha)


def demo_ngram() -> ToyBackend:
    """A slightly larger bigram model behind ``--model toy`` in the CLI."""
    return ToyBackend.from_ngrams(DEMO_CORPUS, order=2, alpha=0.1)
