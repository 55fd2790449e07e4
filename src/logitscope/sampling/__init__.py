"""Sampling and generation: the sampler chain, traced generation, beam search, the tree of possibilities."""
