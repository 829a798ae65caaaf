"""A small tool-using agent, instrumented only by a third-party package and the official OTLP exporter.

Runs inside that package's own virtual environment (tests/foreign/venvs.py), so it imports nothing of
lightspan (except the ``+lightspan`` mode, which runs lightspan's own instrumentation beside the
third-party one). ``python agent.py INSTRUMENTATION EPISODES``; the endpoint settings come from the standard
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``). Each episode asks
``What is {k}+3?``; the model (the test's local server) calls the ``add`` tool, then answers. The
episode's root span carries a ``gen_ai.evaluation.result`` event (the conventions' form of a reward).
"""

# This file runs in the third-party venvs only; lightspan's type checker cannot resolve their packages.
# pyright: reportMissingImports=false, reportArgumentType=false, reportOptionalSubscript=false
# pyright: reportAttributeAccessIssue=false, reportCallIssue=false

from __future__ import annotations

import json
import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}
SYSTEM = "You are a calculator. Use the add tool."


def evaluate(span: trace.Span, k: int) -> None:
    """The conventions' evaluation event on the span it judges (here the episode's root span)."""
    span.add_event(
        "gen_ai.evaluation.result",
        {"gen_ai.evaluation.name": "primary", "gen_ai.evaluation.score.value": 1.0 if k % 2 == 0 else 0.0},
    )


def openai_episode(tracer: trace.Tracer, k: int, session: object | None, *, judge: bool = True) -> None:
    """``judge=False``: lightspan's emit_reward gives the reward, and requests ask for vLLM token ids."""
    import openai

    extra = {} if judge else {"extra_body": {"return_token_ids": True}}
    client = openai.OpenAI(max_retries=0)
    with tracer.start_as_current_span(f"episode {k}") as root:
        messages: list[dict] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What is {k}+3?"},
        ]
        first = client.chat.completions.create(model="tiny", messages=messages, tools=[ADD_TOOL], **extra)
        call = first.choices[0].message.tool_calls[0]
        args = json.loads(call.function.arguments)
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": "add", "arguments": call.function.arguments},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call.id, "content": str(args["a"] + args["b"])})
        client.chat.completions.create(model="tiny", messages=messages, tools=[ADD_TOOL], **extra)
        if judge:
            evaluate(root, k)


def langchain_episode(tracer: trace.Tracer, k: int) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    llm = ChatOpenAI(model="tiny", max_retries=0).bind_tools([add])

    def run(question: str) -> str:
        messages = [SystemMessage(SYSTEM), HumanMessage(question)]
        ai = llm.invoke(messages)
        messages.append(ai)
        for tc in ai.tool_calls:
            messages.append(add.invoke(tc))
        return str(llm.invoke(messages).content)

    with tracer.start_as_current_span(f"episode {k}") as root:
        RunnableLambda(run, name="calculator").invoke(f"What is {k}+3?")
        evaluate(root, k)


def main() -> None:
    name, episodes = sys.argv[1], int(sys.argv[2])
    service = os.environ.get("FOREIGN_AGENT_SERVICE", f"foreign-{name}")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    logger_provider = None
    if name == "openinference-openai":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif name == "openinference-openai+lightspan":  # a second instrumentation beside lightspan's own
        from openinference.instrumentation.openai import OpenAIInstrumentor

        import lightspan.instrumentation as ls

        OpenAIInstrumentor().instrument(tracer_provider=provider)
        ls.configure()  # the provider is already global: lightspan adds its rollout stamping and instruments
    elif name == "openllmetry-openai":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif name == "openai-v2":
        if (
            os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
            .lower()
            .startswith("event")
        ):
            from opentelemetry._logs import set_logger_provider
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

            logger_provider = LoggerProvider(resource=provider.resource)
            logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter()))
            set_logger_provider(logger_provider)
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif name == "openinference-langchain":
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
    else:
        raise SystemExit(f"unknown instrumentation {name!r}")
    tracer = provider.get_tracer("foreign-agent")
    for k in range(episodes):
        if name == "openinference-langchain":
            from openinference.instrumentation import using_attributes

            with using_attributes(
                session_id=f"{service}-session-{k}", metadata={"task_id": "add-3", "attempt": k}
            ):
                langchain_episode(tracer, k)
        elif name == "openinference-openai+lightspan":
            import lightspan.instrumentation as ls

            with ls.rollout("add-3", rollout_id=f"{service}-r{k}", attempt=k, agent_name="calculator"):
                openai_episode(tracer, k, None, judge=False)
                ls.emit_reward(1.0 if k % 2 == 0 else 0.0)
        elif name == "openinference-openai":
            from openinference.instrumentation import using_attributes

            with using_attributes(
                session_id=f"{service}-session-{k}", metadata={"task_id": "add-3", "attempt": k}
            ):
                openai_episode(tracer, k, None)
        else:
            openai_episode(tracer, k, None)
    provider.shutdown()
    if logger_provider is not None:
        logger_provider.shutdown()


if __name__ == "__main__":
    main()
