"""Scoring text: per-token log-probs (score.py) and corpus perplexity under each convention (perplexity.py)."""
