"""Shared test helpers (real servers, no mocks). See each module's docstring:

- ``tests.support.spans``: one process-wide in-memory OTel pipeline (``memory_exporter()``).
- ``tests.support.llm_server``: a local HTTP server speaking the OpenAI and Anthropic APIs.
- ``tests.support.otlp_sink``: a real OTLP/gRPC TraceService that records what it receives.
"""
