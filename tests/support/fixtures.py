"""Fixtures shared by test folders that talk to the local LLM server on the shared span pipeline.

A folder's conftest imports them: ``from tests.support.fixtures import instrumented, llm_server, server``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def llm_server():
    """One local OpenAI/Anthropic-speaking server for the session (tests queue their replies)."""
    from tests.support.llm_server import LLMServer

    with LLMServer() as server:
        yield server


@pytest.fixture
def server(llm_server):
    """The session server with its queue, request log and reply function reset."""
    llm_server.reset()
    return llm_server


@pytest.fixture(scope="session")
def instrumented():
    """Every lightspan instrumentor applied (patching on import) on the shared in-memory provider."""
    from lightspan.instrumentation import instrument
    from tests.support.spans import memory_provider

    memory_provider()
    return instrument()
