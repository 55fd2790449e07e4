"""Judging text by its token probabilities: ranking, context lift, uncertainty flags, true vs false."""
