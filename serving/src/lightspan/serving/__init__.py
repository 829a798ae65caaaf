"""lightspan.serving: a local checkpoint behind an OpenAI-compatible chat-completions endpoint.

The demo's and the tests' stand-in for vLLM: prompt/response token ids (``return_token_ids``) and
logprobs come back the way vLLM returns them, and ``reload`` swaps in a freshly trained checkpoint.
torch, transformers and starlette/uvicorn load only when a server is built.
"""

from __future__ import annotations

from lightspan.serving.engine import Engine, SamplingParams
from lightspan.serving.server import PolicyServer

from .version import __version__ as __version__

__all__ = ["Engine", "PolicyServer", "SamplingParams"]
