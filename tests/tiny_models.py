"""Tiny random transformers models with a real (byte-level BPE) tokenizer, built in memory.

They exercise the transformers backend's whole contract in the fast suite: batching,
right padding, the fast Llama-family forward, the blocked-vocabulary NLL, KV-cache reuse.
Nothing is downloaded; weights are seeded, so every run sees the same numbers.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

CORPUS = ["The capital of France is Paris.", "The cat sat on the mat.", "To be or not to be, that is the question.",
          "Once upon a time there was a small model.", "Numbers: 1 2 3 4 5 6 7 8 9 10.",
          "Tokenization isn't always intuitive; emoji 🙂 and Hebrew שלום too."]
FAMILIES = ("llama", "qwen2", "gpt2")


@functools.lru_cache(maxsize=None)
def tiny_tokenizer():
    """A byte-level BPE tokenizer (~330 tokens) with <s> (BOS) and </s> (EOS), trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=330, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")


def tiny_model(family: str, **overrides) -> nn.Module:
    """A seeded random causal LM of one family over the tiny tokenizer's vocabulary."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    vocab = len(tiny_tokenizer())
    common = dict(vocab_size=vocab, bos_token_id=0, eos_token_id=1)
    if family == "gpt2":
        config = GPT2Config(n_embd=48, n_layer=2, n_head=4, n_positions=96, **common, **overrides)
        cls = GPT2LMHeadModel
    else:
        sizes = dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=96)
        config_cls, cls = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[family]
        config = config_cls(**sizes, **common, **overrides)
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():  # sharper than the default init, so ranks, top-k and entropies differ visibly
        for p in model.parameters():
            p.mul_(4.0) if p.dim() > 1 else p.normal_(0, 0.3)
    return model


def naive_logprobs(model: nn.Module, ids: list[int]) -> torch.Tensor:
    """The reference: log_softmax(model(ids).logits) in float64, (T, V); row t predicts ids[t+1]."""
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.double(), dim=-1)
