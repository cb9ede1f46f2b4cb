"""Generators backed by model servers (survey §4: meta-generators over black-box generators).

`CompletionsGenerator` talks to any OpenAI-compatible ``/v1/completions`` server (vLLM,
SGLang, ``transformers serve``, llama.cpp, ...) and plugs into every meta-generator of
`workbench.meta`; `ChatGenerator` does the same over ``/v1/chat/completions``, and
`ServerLogProbScorer` scores texts by the server's prompt log-probs (vLLM's echo);
`ServerRewardScorer` and `ServerProcessScorer` score them with a reward model that vLLM serves
as a pooling model (``/classify``, ``/pooling``).
See ``docs/servers.md``.
"""
from .completions import (TRANSFORMERS_SERVE_SAMPLING, BackendError, ChatGenerator,
                          CompletionsGenerator, ModelNotServed, ServerLogProbScorer,
                          ServerClient, ServerUnavailable)
from .rewards import ServerProcessScorer, ServerRewardScorer

__all__ = ["CompletionsGenerator", "ChatGenerator", "ServerLogProbScorer", "ServerRewardScorer",
           "ServerProcessScorer", "ServerClient", "BackendError", "ServerUnavailable",
           "ModelNotServed", "TRANSFORMERS_SERVE_SAMPLING"]
