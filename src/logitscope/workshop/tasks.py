"""The from-scratch tasks of the seed course, each graded against the library (the answer key).

    from logitscope.workshop import check, tasks
    check("1.5 stable softmax", softmax, tasks.softmax)

| task          | the learner writes                                        | answer key                          |
|---------------|-----------------------------------------------------------|-------------------------------------|
| softmax       | ``softmax(z)``                                            | ``mathops.softmax``                 |
| temperature   | ``softmax_t(z, tau)``                                     | ``mathops.softmax(temperature=)``   |
| top_k         | ``top_k_filter(logits, k)``                               | ``processors.top_k``                |
| top_p         | ``top_p_filter(logits, p)``                               | ``processors.top_p``                |
| min_p         | ``min_p_filter(logits, m)``                               | ``processors.min_p``                |
| sampling      | ``sample(logits, n, seed)``                               | ``processors.chi_square_gof``       |
| chain         | ``sampler_chain(logits, temperature, top_k, top_p, min_p)`` | ``SamplerConfig(...).stages()``   |
| perplexity    | ``perplexity(logprobs)``                                  | ``mathops.perplexity``              |
| windows       | ``sliding_windows(n_tokens, window, stride)``             | ``boundary.plan_windows``           |
| beam          | ``beam_search(next_probs, width, max_new_tokens, alpha)`` | ``sampling.beam.beam_search``       |
| ece           | ``ece(confidence, correct, bins)``                        | ``calibration_math.expected_calibration_error`` |
"""

from .tasks_sampling import chain, min_p, sampling, softmax, temperature, top_k, top_p
from .tasks_scoring import beam, ece, perplexity, windows

__all__ = ["softmax", "temperature", "top_k", "top_p", "min_p", "sampling", "chain",
           "perplexity", "windows", "beam", "ece"]
