"""An OpenAI-compatible HTTP server over logitscope models (``logitscope serve``).

    protocol.py            the wire format (pydantic models) and nothing else
    serving_completion.py  /v1/completions     serving_chat.py  /v1/chat/completions
    serving_tokens.py      /v1/models /tokenize /detokenize /tokenizer_info
    engine.py              one worker thread per model: bounded queue, dynamic batching
    decode.py              step-wise generation (OpenAI stop rules)   tokens.py  prompts and token bytes
    errors.py              every exception -> {"error": {...}}        app.py     routes, auth, limits
"""

from .app import create_app, model_worker

__all__ = ["create_app", "model_worker"]
