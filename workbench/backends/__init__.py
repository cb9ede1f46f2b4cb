"""Generators backed by model servers (survey §4: meta-generators over black-box generators).

`CompletionsGenerator` talks to any OpenAI-compatible ``/v1/completions`` server (vLLM,
SGLang, ``transformers serve``, llama.cpp, ...) and plugs into every meta-generator of
`workbench.meta`.  See ``docs/servers.md``.
"""
from .completions import (TRANSFORMERS_SERVE_SAMPLING, BackendError, CompletionsGenerator,
                          ModelNotServed, ServerUnavailable)

__all__ = ["CompletionsGenerator", "BackendError", "ServerUnavailable", "ModelNotServed",
           "TRANSFORMERS_SERVE_SAMPLING"]
